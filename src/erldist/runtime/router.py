"""The process table and the one place every signal is handled.

Every process of a node, user code and system services alike, lives in one
table here, with its registered names. Every signal for this node, whether it
came over a connection or from a local process, goes through ``dispatch``,
and ``dispatch`` has one handler per signal kind, which applies the BEAM's
rules: links and monitors, exit signals and ``trap_exit``, ``noproc`` for
targets that do not exist, ``noconnection`` when a node goes away.

Signals between local processes go through a queue drained in order, so a
chain of linked processes dying one after another is a loop, not a recursion.
A service (``net_kernel``, ``rex``, ``global``...) is a process whose messages
go to a callback instead of a mailbox; a callback that raises is logged and
counted, and the service goes on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeAlias

from erldist import telemetry
from erldist.config import Config
from erldist.errors import (
    ConnectError,
    InvalidArgument,
    NameTaken,
    NoProcess,
    NotRegistered,
    ProcessExited,
)
from erldist.protocol.control import SPAWN_REPLY_MONITOR
from erldist.protocol.signals import (
    DemonitorSignal,
    DownSignal,
    ExitSignal,
    LinkSignal,
    MessageSignal,
    MonitorSignal,
    Signal,
    SpawnReplySignal,
    SpawnRequestSignal,
    UnlinkAckSignal,
    UnlinkSignal,
)
from erldist.runtime.mailbox import Mailbox, Overflow
from erldist.runtime.process import (
    KILL,
    KILLED,
    NOCONNECTION,
    NOPROC,
    NORMAL,
    Destination,
    Down,
    Exit,
    NodeDownMessage,
    Process,
    _Monitor,
    _Watcher,
    exception_reason,
)
from erldist.term.types import Atom, Pid, Reference, Term

__all__ = ["Origin", "Router", "Service", "SignalLink"]

log = logging.getLogger("erldist.router")

#: A service's callback: the message, and the peer it came in from (None: local).
Service: TypeAlias = Callable[[Any, str | None], None]
#: What answers a SPAWN_REQUEST (set by the RPC layer); None answers ``notsup``.
SpawnHandler: TypeAlias = Callable[[SpawnRequestSignal, str], None]

_NOISE_BYTES = 4096
_ATOMS_KEPT = 1024
#: What a destination that is not a name is: tested with one ``isinstance``.
_ADDRESSES = (Pid, Reference)
_TWO_U32 = struct.Struct(">II")
_SHUTDOWN = Atom("shutdown")
_ABANDONED = Atom("abandoned")
_SPAWN_REPLY = Atom("spawn_reply")


class Origin(Protocol):
    """The connection a signal came in on: who, and how to push back on it."""

    @property
    def peer_name(self) -> str | None: ...

    def pause_delivery(self) -> None: ...

    def resume_delivery(self) -> None: ...


class SignalLink(Protocol):
    """An established connection, as the router writes to it."""

    def send_signal(self, signal: Signal) -> None: ...

    def send_signals(self, *signals: Signal) -> None:
        """Several signals in one write."""
        ...

    @property
    def congested(self) -> bool: ...

    def drain(self) -> Awaitable[None]: ...


class Network(Protocol):
    """The node's connections, as the router needs them."""

    def link_to(self, node: str) -> SignalLink | None:
        """The established connection to ``node``, if any (never dials)."""
        ...

    async def reach(self, node: str) -> SignalLink:
        """The connection to ``node``, dialing if needed; ``ConnectError`` if not."""
        ...


class Router:
    """One node's processes and the dispatch of every signal addressed to them."""

    def __init__(
        self,
        node_name: str,
        creation: int,
        network: Network,
        *,
        settings: Callable[[], Config],
    ) -> None:
        self.name = node_name
        self.atom = Atom(node_name)
        self.creation = creation
        self._net = network
        self._settings = settings
        self._procs: dict[Pid, Process] = {}
        self._names: dict[Atom, Process] = {}
        #: Keyed by the process object, whose hash is its identity (cheaper than a pid's).
        self._services: dict[Process, Service] = {}
        self._aliases: dict[Reference, Process] = {}
        #: Atoms of the names sends address, so a send by name makes none.
        self._atoms: dict[str, Atom] = {}
        self._pid_ids = itertools.count(1)
        self._ref_ids = itertools.count(1)
        self._noise = b""
        self._noise_at = 0
        self._unlink_ids = itertools.count(1)
        self._local: deque[Signal] = deque()
        self._draining = False
        self.spawn_handler: SpawnHandler | None = None
        #: Our spawn requests still waiting for their reply: request id -> requester.
        self._spawning: dict[Reference, tuple[Pid, str]] = {}
        #: Processes that end once nobody monitors them (erpc workers: their
        #: result travels only in the DOWN their caller gave up waiting for).
        self._end_when_unwatched: set[Pid] = set()
        self._table: dict[type, Callable[[Any, Origin | None], None]] = {
            MessageSignal: self._on_message,
            LinkSignal: self._on_link,
            UnlinkSignal: self._on_unlink,
            UnlinkAckSignal: self._on_unlink_ack,
            ExitSignal: self._on_exit,
            MonitorSignal: self._on_monitor,
            DemonitorSignal: self._on_demonitor,
            DownSignal: self._on_down,
            SpawnRequestSignal: self._on_spawn_request,
            SpawnReplySignal: self._on_spawn_reply,
        }

    # --- identities ----------------------------------------------------------------------

    def make_pid(self) -> Pid:
        return Pid(self.atom, next(self._pid_ids) & 0x7FFFFFF, 0, self.creation)

    def make_ref(self) -> Reference:
        # Unguessable: references double as reply tags. The OS's randomness is
        # read 4 KiB at a time, not one system call per reference.
        at = self._noise_at
        if at >= len(self._noise):
            self._noise = secrets.token_bytes(_NOISE_BYTES)
            at = 0
        self._noise_at = at + 8
        high, low = _TWO_U32.unpack_from(self._noise, at)
        return Reference(self.atom, self.creation, (next(self._ref_ids) & 0x3FFFF, high, low))

    def is_local(self, pid: Pid) -> bool:
        return pid.node == self.atom

    # --- the table -----------------------------------------------------------------------

    def new_process(
        self,
        name: str | None = None,
        *,
        maxsize: int | None = None,
        overflow: Overflow | None = None,
        trap_exit: bool = False,
    ) -> Process:
        pid = self.make_pid()
        cfg = self._settings()
        box = Mailbox(pid, maxsize or cfg.mailbox_maxsize,
                      overflow or Overflow(cfg.mailbox_overflow))
        proc = Process(self, pid, box)
        proc.trap_exit = trap_exit
        if name is not None:
            self._check_free(name)
        self._procs[pid] = proc
        if name is not None:
            self.register(name, pid)
        return proc

    def add_service(self, name: str | None, handler: Service) -> Process:
        """A system process whose messages go to ``handler`` on the node's loop."""
        proc = self.new_process(name)
        self._services[proc] = handler
        return proc

    def spawn(
        self,
        body: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        *,
        name: str | None,
        trap_exit: bool,
        maxsize: int | None,
        overflow: Overflow | None,
    ) -> Process:
        proc = self.new_process(name, maxsize=maxsize, overflow=overflow, trap_exit=trap_exit)
        proc.task = asyncio.get_running_loop().create_task(self._run(proc, body, args))
        return proc

    async def _run(
        self, proc: Process, body: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...]
    ) -> None:
        try:
            await body(proc, *args)
        except asyncio.CancelledError:
            if proc.alive:  # cancelled from outside, not by an exit signal
                self.terminate(proc, KILLED)
            return
        except ProcessExited:
            return  # it was ended while it waited; the reason is already set
        except Exception as exc:
            reason = exception_reason(exc)
            if proc.alive:
                log.error("process %r crashed: %r", proc.pid, reason, exc_info=exc)
                telemetry.emit(telemetry.ProcessFailed(repr(proc.pid), repr(reason)))
                self.terminate(proc, reason)
            return
        self.terminate(proc, NORMAL)

    def lookup(self, target: Pid | Atom | Reference) -> Process | None:
        kind = type(target)
        if kind is Pid:
            return self._procs.get(target)  # type: ignore[arg-type]
        if kind is Reference:
            return self._aliases.get(target)  # type: ignore[arg-type]
        return self._names.get(target)  # type: ignore[arg-type]

    def processes(self) -> list[Process]:
        return list(self._procs.values())

    # --- names ---------------------------------------------------------------------------

    def _check_free(self, name: str) -> None:
        if Atom(name) in self._names:
            raise NameTaken(name, self.name)

    def register(self, name: str, pid: Pid) -> None:
        """``erlang:register/2``: one name, one live local process."""
        proc = self._procs.get(pid)
        if proc is None:
            raise NoProcess(pid)
        self._check_free(name)
        atom = Atom(name)
        self._names[atom] = proc
        proc.state.names.add(atom)

    def unregister(self, name: str) -> None:
        proc = self._names.pop(Atom(name), None)
        if proc is None:
            raise NotRegistered(name)
        proc.state.names.discard(Atom(name))

    def whereis(self, name: str) -> Pid | None:
        proc = self._names.get(Atom(name))
        return proc.pid if proc is not None else None

    def alias(self, proc: Process) -> Reference:
        """A new alias of ``proc``: a reference others can send to until ``unalias``."""
        ref = self.make_ref()
        self._aliases[ref] = proc
        proc.state.aliases.add(ref)
        return ref

    def unalias(self, proc: Process, ref: Reference) -> bool:
        found = self._aliases.pop(ref, None)
        if found is not proc:
            if found is not None:
                self._aliases[ref] = found  # another process's alias: left as it was
            return False
        proc.state.aliases.discard(ref)
        return True

    # --- sending ---------------------------------------------------------------------------

    def resolve(self, to: Destination) -> tuple[str, Pid | Atom | Reference]:
        """The node a destination lives on and the pid or name to address there."""
        if type(to) is tuple:  # (name, node), the commonest: no isinstance chain
            name, node = to
            return node, self._atom(name)
        if isinstance(to, _ADDRESSES):
            return to.node, to  # an Atom is the str it names, and keeps its hash
        if isinstance(to, str):
            return self.name, self._atom(to)
        name, node = to
        return node, self._atom(name)

    def _atom(self, name: str) -> Atom:
        """``Atom(name)``, made once per name a sender uses (a bounded table)."""
        atom = self._atoms.get(name)
        if atom is None:
            if len(self._atoms) >= _ATOMS_KEPT:
                self._atoms.clear()
            atom = self._atoms[name] = Atom(name)
        return atom

    async def send(self, sender: Pid, to: Destination, message: Term) -> None:
        """Deliver ``message``; waits while a local mailbox or the socket is full."""
        node, target = self.resolve(to)
        if node == self.name:
            proc = self.lookup(target)
            if (proc is not None and proc not in self._services
                    and proc.mailbox.overflow is Overflow.BLOCK and proc.mailbox.full):
                await proc.mailbox.wait_for_space()
            self._on_message(MessageSignal(sender, target, message), None)
            return
        link = self._net.link_to(node) or await self._net.reach(node)
        link.send_signal(MessageSignal(sender, target, message))
        if link.congested:
            await link.drain()

    def send_now(self, sender: Pid, to: Destination, message: Term) -> bool:
        """``send`` to another node when it need not wait: False (nothing sent) for
        a local destination, a node not connected, or a socket that pushes back."""
        node, target = self.resolve(to)
        link = None if node == self.name else self._link_now(node)
        if link is None:
            return False
        link.send_signal(MessageSignal(sender, target, message))
        return True

    def _link_now(self, node: str) -> SignalLink | None:
        """The link to ``node`` when it is up and takes a write at once, else None."""
        link = self._net.link_to(node)
        return None if link is None or link.congested else link

    def monitor_and_send_now(
        self, proc: Process, to: Destination, ref: Reference, message: Term
    ) -> bool:
        """``monitor_and_send`` when it need not wait, with ``send_now``'s conditions."""
        if type(to) is Reference or proc.exit_reason is not None:
            return False
        node, target = self.resolve(to)
        link = None if node == self.name else self._link_now(node)
        if link is None:
            return False
        assert not isinstance(target, Reference)
        self._note_monitor(proc, ref, node, target)
        link.send_signals(MonitorSignal(proc.pid, target, ref),
                          MessageSignal(proc.pid, target, message))
        return True

    async def monitor_and_send(
        self, proc: Process, to: Destination, ref: Reference, message: Term
    ) -> None:
        """``monitor(process, To)`` under ``ref``, then ``To ! message``, as ``gen:call``
        does: to a remote node both leave in one write.

        Raises ``ConnectError`` when ``to``'s node cannot be reached (the
        monitor is then dropped unsent).
        """
        self._alive(proc)
        if isinstance(to, Reference):
            raise InvalidArgument("monitor a pid, a name or (name, node), not an alias")
        ref, node, target = self._record_monitor(proc, to, ref)
        if node == self.name:
            self._emit(node, MonitorSignal(proc.pid, target, ref))
            await self.send(proc.pid, to, message)
            return
        try:
            link = self._net.link_to(node) or await self._net.reach(node)
        except BaseException:
            proc.state.monitors.pop(ref, None)
            raise
        if ref in proc.state.monitors:
            link.send_signals(MonitorSignal(proc.pid, target, ref),
                              MessageSignal(proc.pid, target, message))
        else:
            link.send_signal(MessageSignal(proc.pid, target, message))
        if link.congested:
            await link.drain()

    def send_nowait(self, sender: Pid, to: Destination, message: Term) -> None:
        """Deliver without waiting (services): a remote one only over a live link."""
        node, target = self.resolve(to)
        self._emit(node, MessageSignal(sender, target, message))

    def emit(self, node: str, signal: Signal) -> None:
        """Hand ``signal`` to ``node`` now: in order if local, only over a live link."""
        self._emit(node, signal)

    def _emit(self, node: str, signal: Signal) -> None:
        """Hand ``signal`` to its node: local ones in order, remote ones if connected."""
        if node == self.name:
            self._local.append(signal)
            if not self._draining:
                self._drain()
            return
        link = self._net.link_to(node)
        if link is not None:
            link.send_signal(signal)

    def _drain(self) -> None:
        self._draining = True
        try:
            while self._local:
                signal = self._local.popleft()
                self._table[type(signal)](signal, None)
        finally:
            self._draining = False

    async def _reach(self, node: str) -> SignalLink | None:
        try:
            return self._net.link_to(node) or await self._net.reach(node)
        except ConnectError as exc:
            log.debug("cannot reach %s: %s", node, exc)
            return None

    # --- incoming --------------------------------------------------------------------------

    def dispatch(self, signal: Signal, origin: Origin | None) -> None:
        """Apply one signal that arrived for this node.

        A link, unlink or exit signal must come from its sender's own node: a
        peer cannot break links or kill processes in another node's name.
        """
        kind = type(signal)
        if origin is not None and kind in _SENDER_CHECKED:
            sender: Pid = signal.sender  # type: ignore[union-attr,assignment]
            if sender.node != origin.peer_name:
                log.debug("%s from %s in the name of %r dropped", kind.__name__,
                          origin.peer_name, sender)
                return
        self._table[kind](signal, origin)

    def _deliver(self, proc: Process, message: Any, origin: Origin | None) -> None:
        service = self._services.get(proc)
        if service is not None:
            try:
                service(message, origin.peer_name if origin is not None else None)
            except Exception as exc:
                log.exception("service %r failed on a message", proc.name or proc.pid)
                telemetry.emit(telemetry.ProcessFailed(repr(proc.pid),
                                                       repr(exception_reason(exc))))
            return
        if not proc.mailbox.put(message, origin):
            if proc.mailbox.dropped == 1 or proc.mailbox.dropped % 10_000 == 0:
                log.warning("mailbox of %r full: %d messages dropped", proc.pid,
                            proc.mailbox.dropped)
            telemetry.emit(telemetry.MessageDropped(repr(proc.pid), "mailbox_full"))

    def _deliver_signal(self, proc: Process, message: Down | Exit | NodeDownMessage) -> None:
        if proc in self._services:
            self._deliver(proc, message, None)
        else:
            proc.mailbox.put_signal(message)

    def _on_message(self, signal: MessageSignal, origin: Origin | None) -> None:
        to = signal.to
        proc = self.lookup(to)
        if proc is None:
            log.debug("message to %r dropped: no such process", to)
            return
        self._deliver(proc, signal.message, origin)

    def _on_link(self, signal: LinkSignal, _origin: Origin | None) -> None:
        proc = self._procs.get(signal.to)
        if proc is None:
            self._emit(str(signal.sender.node),
                       ExitSignal(signal.to, signal.sender, NOPROC, linked=True))
            return
        proc.state.links.add(signal.sender)

    def _on_unlink(self, signal: UnlinkSignal, _origin: Origin | None) -> None:
        proc = self._procs.get(signal.to)
        if proc is not None:
            proc.state.links.discard(signal.sender)
        if signal.id is not None:
            self._emit(str(signal.sender.node),
                       UnlinkAckSignal(signal.to, signal.sender, signal.id))

    def _on_unlink_ack(self, _signal: UnlinkAckSignal, _origin: Origin | None) -> None:
        """Nothing to do: the link went when we sent the unlink, and an exit signal
        from a process we are not linked to is ignored, which settles the race."""

    def _on_exit(self, signal: ExitSignal, _origin: Origin | None) -> None:
        proc = self._procs.get(signal.to)
        if proc is None:
            return
        reason = signal.reason
        if signal.linked:
            if signal.sender not in proc.state.links:
                return  # unlinked meanwhile: the signal belongs to a link that is gone
            proc.state.links.discard(signal.sender)
        elif _is(reason, KILL):
            self.terminate(proc, KILLED)
            return
        if proc.trap_exit:
            self._deliver_signal(proc, Exit(signal.sender, reason))
        elif not _is(reason, NORMAL):
            self.terminate(proc, reason)
        elif not signal.linked and signal.sender == proc.pid:
            self.terminate(proc, NORMAL)  # exit(self(), normal) ends the caller

    def _on_monitor(self, signal: MonitorSignal, _origin: Origin | None) -> None:
        proc = self.lookup(signal.target)
        if proc is None:
            self._emit(str(signal.sender.node),
                       DownSignal(signal.target, signal.sender, signal.ref, NOPROC))
            return
        proc.state.watchers[signal.ref] = _Watcher(signal.sender, signal.target)

    def _on_demonitor(self, signal: DemonitorSignal, _origin: Origin | None) -> None:
        proc = self.lookup(signal.target)
        if proc is not None:
            proc.state.watchers.pop(signal.ref, None)
            self._maybe_unwatched(proc)

    def end_when_unwatched(self, proc: Process) -> None:
        """End ``proc`` (reason ``abandoned``) once its last watcher demonitors or
        goes away: nothing would ever read what it has left to say."""
        self._end_when_unwatched.add(proc.pid)

    def _maybe_unwatched(self, proc: Process) -> None:
        if (self._end_when_unwatched and not proc.state.watchers
                and proc.pid in self._end_when_unwatched):
            self.terminate(proc, _ABANDONED)

    def _on_down(self, signal: DownSignal, origin: Origin | None) -> None:
        proc = self._procs.get(signal.to)
        if proc is None:
            return
        monitor = proc.state.monitors.get(signal.ref)
        if monitor is None or (origin is not None and origin.peer_name != monitor.node):
            return  # only the monitored process's own node can report its death
        del proc.state.monitors[signal.ref]
        self._deliver_signal(proc, Down(signal.ref, monitor.object, signal.reason))

    def _on_spawn_request(self, signal: SpawnRequestSignal, origin: Origin | None) -> None:
        peer = origin.peer_name if origin is not None else None
        if self.spawn_handler is not None and peer is not None:
            self.spawn_handler(signal, peer)
            return
        self._emit(str(signal.sender.node),
                   SpawnReplySignal(signal.req_id, signal.sender, 0, Atom("notsup")))

    def _on_spawn_reply(self, signal: SpawnReplySignal, origin: Origin | None) -> None:
        """``{spawn_reply, ReqId, ok | error, Pid | Reason}`` to the requester, with the
        monitor the reply says was set up; a reply nobody waits for any more has
        its process ended (``abandoned``), as ``spawn_request_abandon`` does."""
        pending = self._spawning.get(signal.req_id)
        result = signal.result
        peer = origin.peer_name if origin is not None else None
        if pending is None or pending[1] != peer:
            if isinstance(result, Pid) and str(result.node) == peer and self.is_local(signal.to):
                self._emit(peer, ExitSignal(signal.to, result, _ABANDONED, linked=False))
            return
        del self._spawning[signal.req_id]
        proc = self._procs.get(pending[0])
        if proc is None:
            if isinstance(result, Pid):
                self._emit(peer, ExitSignal(signal.to, result, _ABANDONED, linked=False))
            return
        if not isinstance(result, Pid):
            self._deliver(proc, (_SPAWN_REPLY, signal.req_id, Atom("error"), result), None)
            return
        if signal.flags & SPAWN_REPLY_MONITOR:
            proc.state.monitors[signal.req_id] = _Monitor(result, str(result.node), result)
        self._deliver(proc, (_SPAWN_REPLY, signal.req_id, Atom("ok"), result), None)

    async def spawn_request(
        self,
        proc: Process,
        node: str,
        mfa: tuple[Atom, Atom],
        args: list[Term],
        *,
        req_id: Reference,
        group_leader: Pid,
        monitor: bool,
    ) -> None:
        """``erlang:spawn_request(Node, M, F, Args, [monitor])`` under ``req_id``.

        The reply arrives as ``{spawn_reply, ReqId, ok, Pid}`` (then, with
        ``monitor``, a ``Down`` under ``ReqId``) or ``{spawn_reply, ReqId,
        error, Reason}``; an unreachable node gives ``error, noconnection``.
        ``req_id`` is a fresh reference of the caller's (``make_ref``).
        """
        self._alive(proc)
        self._spawning[req_id] = (proc.pid, node)
        link = await self._reach(node)
        if req_id not in self._spawning:
            return  # abandoned, or the node went down, while we dialed
        if link is None:
            del self._spawning[req_id]
            self._deliver(proc, (_SPAWN_REPLY, req_id, Atom("error"), NOCONNECTION), None)
            return
        opts: list[Term] = [Atom("monitor")] if monitor else []
        link.send_signal(SpawnRequestSignal(req_id, proc.pid, group_leader, mfa[0], mfa[1],
                                            args, opts))

    def spawn_abandon(self, req_id: Reference) -> bool:
        """``spawn_request_abandon``: True when the reply had not come yet (the
        process it names, if any, is then ended on arrival)."""
        return self._spawning.pop(req_id, None) is not None

    # --- operations of local processes -----------------------------------------------------

    def _alive(self, proc: Process) -> None:
        if not proc.alive:
            raise ProcessExited(proc.pid, proc.exit_reason)

    async def link(self, proc: Process, pid: Pid) -> None:
        self._alive(proc)
        if pid == proc.pid or pid in proc.state.links:
            return
        if self.is_local(pid):
            target = self._procs.get(pid)
            if target is None:
                if not proc.trap_exit:
                    raise NoProcess(pid)
                self._deliver_signal(proc, Exit(pid, NOPROC))
                return
            proc.state.links.add(pid)
            target.state.links.add(proc.pid)
            return
        proc.state.links.add(pid)
        link = await self._reach(str(pid.node))
        if link is None:
            self._emit(self.name, ExitSignal(pid, proc.pid, NOCONNECTION, linked=True))
        elif proc.alive:
            link.send_signal(LinkSignal(proc.pid, pid))

    def unlink(self, proc: Process, pid: Pid) -> None:
        self._alive(proc)
        if pid not in proc.state.links:
            return
        proc.state.links.discard(pid)
        if self.is_local(pid):
            target = self._procs.get(pid)
            if target is not None:
                target.state.links.discard(proc.pid)
            return
        self._emit(str(pid.node), UnlinkSignal(proc.pid, pid, next(self._unlink_ids)))

    async def monitor(
        self, proc: Process, target: Destination, ref: Reference | None = None
    ) -> Reference:
        self._alive(proc)
        if isinstance(target, Reference):
            raise InvalidArgument("monitor a pid, a name or (name, node), not an alias")
        ref, node, to = self._record_monitor(proc, target, ref)
        signal = MonitorSignal(proc.pid, to, ref)
        if node == self.name:
            self._emit(node, signal)
            return ref
        link = await self._reach(node)
        if link is None:
            self._emit(self.name, DownSignal(to, proc.pid, ref, NOCONNECTION))
        elif ref in proc.state.monitors:
            link.send_signal(signal)
        return ref

    def monitor_nowait(
        self, proc: Process, target: Pid | tuple[str, str], ref: Reference | None = None
    ) -> Reference:
        """``monitor`` for services: never dials; an unconnected node is ``noconnection``.

        ``ref`` is for a monitor whose reference was handed out before it could be made.
        """
        ref, node, to = self._record_monitor(proc, target, ref)
        if node == self.name or self._net.link_to(node) is not None:
            self._emit(node, MonitorSignal(proc.pid, to, ref))
        else:
            self._emit(self.name, DownSignal(to, proc.pid, ref, NOCONNECTION))
        return ref

    def _record_monitor(
        self, proc: Process, target: Destination, ref: Reference | None
    ) -> tuple[Reference, str, Pid | Atom]:
        """Note that ``proc`` monitors ``target``: its reference, node and wire name."""
        ref = ref or self.make_ref()
        node, to = self.resolve(target)
        assert not isinstance(to, Reference)
        self._note_monitor(proc, ref, node, to)
        return ref, node, to

    def _note_monitor(self, proc: Process, ref: Reference, node: str, to: Pid | Atom) -> None:
        """Record ``proc``'s monitor of ``to`` on ``node``, with the object its DOWN names."""
        obj: Pid | tuple[Atom, Atom] = to if isinstance(to, Pid) else (to, self._atom(node))
        proc.state.monitors[ref] = _Monitor(to, node, obj)

    def demonitor(self, proc: Process, ref: Reference, *, flush: bool = False) -> bool:
        monitor = proc.state.monitors.pop(ref, None)
        if flush:
            proc.mailbox.flush(lambda m: isinstance(m, Down) and m.ref == ref)
        if monitor is None:
            return False
        self._emit(monitor.node, DemonitorSignal(proc.pid, monitor.target, ref))
        return True

    async def monitor_node(self, proc: Process, node: str, flag: bool) -> None:
        self._alive(proc)
        counts = proc.state.node_monitors
        if not flag:
            if counts.get(node, 0) > 1:
                counts[node] -= 1
            else:
                counts.pop(node, None)
            return
        if node == self.name:
            return
        if await self._reach(node) is None:
            self._deliver_signal(proc, NodeDownMessage(node))
            return
        counts[node] = counts.get(node, 0) + 1

    async def send_exit(self, sender: Pid, pid: Pid, reason: Term) -> None:
        signal = ExitSignal(sender, pid, reason, linked=False)
        if self.is_local(pid):
            self._emit(self.name, signal)
            return
        link = await self._reach(str(pid.node))
        if link is not None:
            link.send_signal(signal)

    def terminate(self, proc: Process, reason: Term) -> None:
        """End ``proc`` with ``reason`` and tell everyone linked to or watching it."""
        if not proc.alive:
            return
        proc.exit_reason = reason
        del self._procs[proc.pid]
        self._services.pop(proc, None)
        for name in proc.state.names:
            self._names.pop(name, None)
        for ref in proc.state.aliases:
            self._aliases.pop(ref, None)
        self._end_when_unwatched.discard(proc.pid)
        state = proc.state
        for pid in state.links:
            self._emit(str(pid.node), ExitSignal(proc.pid, pid, reason, linked=True))
        for ref, watcher in state.watchers.items():
            self._emit(str(watcher.pid.node), DownSignal(watcher.named, watcher.pid, ref, reason))
        for ref, monitor in state.monitors.items():
            self._emit(monitor.node, DemonitorSignal(proc.pid, monitor.target, ref))
        state.links.clear()
        state.watchers.clear()
        state.monitors.clear()
        proc.mailbox.close(reason)
        task = proc.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # --- node-wide events ------------------------------------------------------------------

    def node_down(self, node: str) -> None:
        """Every link, monitor and node monitor across ``node`` fires ``noconnection``."""
        for proc in list(self._procs.values()):
            state = proc.state
            for pid in [p for p in state.links if p.node == node]:
                self._emit(self.name, ExitSignal(pid, proc.pid, NOCONNECTION, linked=True))
            for ref, monitor in list(state.monitors.items()):
                if monitor.node == node:
                    self._emit(self.name, DownSignal(monitor.target, proc.pid, ref,
                                                     NOCONNECTION))
            for ref in [r for r, w in state.watchers.items() if w.pid.node == node]:
                del state.watchers[ref]
            self._maybe_unwatched(proc)
            for _ in range(state.node_monitors.pop(node, 0)):
                self._deliver_signal(proc, NodeDownMessage(node))
        for req_id, (pid, _node) in [i for i in self._spawning.items() if i[1][1] == node]:
            del self._spawning[req_id]
            requester = self._procs.get(pid)
            if requester is not None:
                self._deliver(requester, (_SPAWN_REPLY, req_id, Atom("error"), NOCONNECTION),
                              None)

    def close(self) -> None:
        """The node stops: every process ends with ``shutdown``."""
        for proc in list(self._procs.values()):
            self.terminate(proc, _SHUTDOWN)


#: A set of exact types: a message, the commonest signal, is not in it at one hash.
_SENDER_CHECKED: frozenset[type] = frozenset({
    LinkSignal, UnlinkSignal, UnlinkAckSignal, ExitSignal, MonitorSignal, DemonitorSignal})


def _is(reason: Term, atom: Atom) -> bool:
    return isinstance(reason, Atom) and reason == atom
