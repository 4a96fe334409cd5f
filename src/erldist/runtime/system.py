"""What a node must answer on behalf of the processes every Erlang node has.

``net_kernel`` answers ``is_auth`` (that is what ``net_adm:ping`` asks), ``rex``
answers the feature probe OTP sends on every new connection, monitors of
processes that do not exist get ``noproc`` at once (as OTP does, so a
``gen_server:call`` to a missing name fails fast instead of hanging), and the
new link protocol's ``UNLINK_ID`` is acknowledged. Messages to mailboxes are
delivered; replies to our own calls resolve their futures.

The ``erldist_mesh`` name carries a small gossip between erldist nodes: when
a visible peer comes up, the node tells its other visible peers, and they
connect to it, so Python nodes form a full mesh as OTP nodes do through
``global``. Erlang nodes have no such name and drop those messages silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from erldist.errors import ConnectError
from erldist.names import NameFormatError, parse_node_name
from erldist.protocol import control
from erldist.runtime.mailbox import DEFAULT_MAXSIZE, Mailbox
from erldist.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from erldist.runtime.connection import Connection
    from erldist.runtime.node import Node

log = logging.getLogger("erldist.system")

NET_KERNEL = Atom("net_kernel")
REX = Atom("rex")
MESH = Atom("erldist_mesh")
GEN_CALL = Atom("$gen_call")
#: A system process as a callback: (the connection it came in on, the message).
Service = Callable[["Connection", Any], None]
_SYSTEM_NAMES = frozenset({NET_KERNEL, REX, MESH})
#: A mesh announcement longer than this is ignored: a hostile peer must not
#: make us dial without bound.
_MESH_MAX = 1024


class SystemProcesses:
    """The node's process table: system names, mailboxes, pending calls."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._pid: Pid | None = None
        self._calls: dict[Reference, tuple[str, asyncio.Future[Any]]] = {}
        self._by_pid: dict[Pid, Mailbox] = {}
        self._by_name: dict[Atom, Mailbox] = {}
        self._mesh_tasks: set[asyncio.Task[None]] = set()
        self._services: dict[Pid | Atom, Service] = {}

    @property
    def pid(self) -> Pid:
        """The pid our system calls come from (made once creation is known)."""
        if self._pid is None:
            self._pid = self.node.make_pid()
        return self._pid

    # --- mailboxes -------------------------------------------------------------------

    def mailbox(self, name: str | None = None, maxsize: int = DEFAULT_MAXSIZE) -> Mailbox:
        atom = Atom(name) if name is not None else None
        if atom is not None and (atom in self._by_name or atom in _SYSTEM_NAMES):
            raise ValueError(f"the name {name!r} is already registered on {self.node.name}")
        box = Mailbox(self.node, self.node.make_pid(), atom, maxsize)
        self._by_pid[box.pid] = box
        if atom is not None:
            self._by_name[atom] = box
        return box

    def add_service(self, name: str | None, handler: Service) -> Pid:
        """Route messages for a new pid (and ``name``, if given) to ``handler``.

        A service is a system process written as a callback: it runs on the
        node's loop for each message, with the connection it came in on.
        """
        pid = self.node.make_pid()
        self._services[pid] = handler
        if name is not None:
            atom = Atom(name)
            if atom in self._by_name or atom in self._services:
                raise ValueError(f"the name {name!r} is already registered")
            self._services[atom] = handler
        return pid

    def forget_mailbox(self, box: Mailbox) -> None:
        self._by_pid.pop(box.pid, None)
        if box.name is not None and self._by_name.get(box.name) is box:
            del self._by_name[box.name]

    def whereis(self, name: str) -> Mailbox | None:
        return self._by_name.get(Atom(name))

    def deliver_local(self, to: Pid | Atom, message: Any) -> bool:
        box = self._by_pid.get(to) if isinstance(to, Pid) else self._by_name.get(to)
        if box is None:
            return False
        box.deliver(message)
        return True

    # --- calls -----------------------------------------------------------------------

    async def gen_call(self, conn: Connection, name: Atom, request: Any) -> Any:
        """``gen_server:call({name, peer}, request)``; ``ConnectionError`` on nodedown."""
        ref = self.node.make_ref()
        fut: asyncio.Future[Any] = self.node.loop.create_future()
        peer = conn.peer_name or "?"
        self._calls[ref] = (peer, fut)
        try:
            conn.send(control.reg_send(self.pid, name, (GEN_CALL, (self.pid, ref), request)))
            return await fut
        finally:
            self._calls.pop(ref, None)

    def _reply_to_call(self, message: Any) -> bool:
        if (
            isinstance(message, tuple)
            and len(message) == 2
            and isinstance(message[0], Reference)
        ):
            entry = self._calls.pop(message[0], None)
            if entry is not None:
                if not entry[1].done():
                    entry[1].set_result(message[1])
                return True
        return False

    # --- connection life -------------------------------------------------------------

    def peer_up(self, conn: Connection) -> None:
        if not self.node._is_visible(conn):
            return
        peer = conn.peer_name
        others = [n for n in self.node.nodes() if n != peer]
        announce = (MESH, Atom("nodes"), [Atom(peer)] if peer else [])
        for other in others:
            other_conn = self.node.connection(other)
            if other_conn is not None:
                other_conn.send(control.reg_send(self.pid, MESH, announce))
        if others:
            conn.send(control.reg_send(self.pid, MESH, (MESH, Atom("nodes"),
                                                        [Atom(n) for n in others])))

    def peer_down(self, peer: str) -> None:
        for ref, (owner, fut) in list(self._calls.items()):
            if owner == peer:
                del self._calls[ref]
                if not fut.done():
                    fut.set_exception(ConnectionError(f"{peer} went down"))

    def close(self) -> None:
        for _owner, fut in self._calls.values():
            if not fut.done():
                fut.set_exception(ConnectionError("node stopped"))
        self._calls.clear()
        for task in self._mesh_tasks:
            task.cancel()
        for box in list(self._by_pid.values()):
            box.close()

    # --- incoming signals ------------------------------------------------------------

    def dispatch(self, conn: Connection, msg: control.ControlMessage) -> None:
        if isinstance(msg, control.SendSender | control.Send | control.SendTT
                      | control.SendSenderTT):
            if msg.to_pid == self._pid:
                self._reply_to_call(msg.message)
            elif msg.to_pid in self._services:
                self._services[msg.to_pid](conn, msg.message)
            elif not self.deliver_local(msg.to_pid, msg.message):
                log.debug("message to unknown pid %r dropped", msg.to_pid)
        elif isinstance(msg, control.RegSend | control.RegSendTT):
            self._reg_send(conn, msg.from_pid, msg.to_name, msg.message)
        elif (isinstance(msg, control.MonitorPExit | control.PayloadMonitorPExit)
              and msg.to_pid in self._services):
            down = (Atom("DOWN"), msg.ref, Atom("process"), msg.from_proc, msg.reason)
            self._services[msg.to_pid](conn, down)
        elif isinstance(msg, control.MonitorP):
            if not self._exists(msg.to_proc):
                conn.send(control.monitor_exit(msg.to_proc, msg.from_pid, msg.ref,
                                               Atom("noproc"), conn.flags))
        elif isinstance(msg, control.UnlinkId):
            conn.send(control.UnlinkIdAck(msg.id, msg.to_pid, msg.from_pid))
        elif isinstance(msg, control.Link):
            if not self._exists(msg.to_pid):
                conn.send(control.exit_signal(msg.to_pid, msg.from_pid, Atom("noproc"),
                                              conn.flags))
        elif isinstance(msg, control.SpawnRequest | control.SpawnRequestTT):
            conn.send(control.SpawnReply(msg.req_id, msg.from_pid, 0, Atom("notsup")))
        else:
            log.debug("ignored %s from %s", type(msg).__name__, conn.peer_name)

    def _exists(self, proc: Any) -> bool:
        if isinstance(proc, Pid):
            return proc == self._pid or proc in self._by_pid or proc in self._services
        return proc in _SYSTEM_NAMES or proc in self._by_name or proc in self._services

    def _reg_send(self, conn: Connection, sender: Pid, name: Atom, message: Any) -> None:
        if name == NET_KERNEL:
            self._net_kernel(conn, message)
        elif name == REX:
            self._rex(conn, message)
        elif name == MESH:
            self._mesh(message)
        elif name in self._services:
            self._services[name](conn, message)
        elif not self.deliver_local(name, message):
            log.debug("message from %r to unregistered name %s dropped", sender, name)

    def _net_kernel(self, conn: Connection, message: Any) -> None:
        match message:
            case (Atom("$gen_call"), (Pid() as caller, tag), (Atom("is_auth"), _node)):
                reply_tag = tag
                conn.send(control.send_to_pid(self.pid, caller, (reply_tag, Atom("yes")),
                                              conn.flags))
            case _:
                log.debug("net_kernel request not handled: %r", message)

    def _rex(self, conn: Connection, message: Any) -> None:
        match message:
            case (Pid() as caller, Atom("features_request")):
                conn.send(control.send_to_pid(
                    self.pid, caller, (Atom("features_reply"), self.node.atom, []),
                    conn.flags,
                ))
            case _:
                log.debug("rex request not handled: %r", message)

    def _mesh(self, message: Any) -> None:
        match message:
            case (Atom("erldist_mesh"), Atom("nodes"), list() as names) if len(names) <= _MESH_MAX:
                for name in names:
                    if isinstance(name, str):
                        self._mesh_connect(str(name))
            case _:
                log.debug("mesh message not understood: %r", message)

    def _mesh_connect(self, name: str) -> None:
        node = self.node
        if name == node.name or node.connection(name) is not None:
            return
        try:
            peer = parse_node_name(name)
        except NameFormatError:
            return
        if peer.long != node.node_name.long:
            return

        async def dial() -> None:
            try:
                await node._ensure_connected(peer, None)
            except ConnectError as exc:
                log.info("mesh connect to %s failed: %s", name, exc)

        task = node.loop.create_task(dial())
        self._mesh_tasks.add(task)
        task.add_done_callback(self._mesh_tasks.discard)

