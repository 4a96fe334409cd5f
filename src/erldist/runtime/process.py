"""A Python process: a pid other nodes can send to, link to and monitor.

A ``Process`` has a mailbox with selective receive, links, monitors, a
``trap_exit`` flag and an exit reason, with the BEAM's rules (applied by the
router, which owns every process). It may run code: ``node.spawn(body)``
runs ``body(process)`` as its own task, and what escapes that code becomes
the process's exit reason, never the connection's or the node's problem.

DOWN and EXIT messages arrive as the typed ``Down`` and ``Exit``; a message
from ``monitor_node`` as ``NodeDownMessage``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from erldist.errors import ProcessExited
from erldist.runtime.mailbox import Mailbox, Match
from erldist.term.types import Atom, Pid, Reference, Term

__all__ = [
    "KILL",
    "KILLED",
    "NORMAL",
    "Destination",
    "Down",
    "Exit",
    "NodeDownMessage",
    "Process",
    "ProcessTable",
]

#: Where a message can go: a pid, a local registered name, ``(name, node)``, or
#: a process alias (a reference).
Destination: TypeAlias = Pid | str | tuple[str, str] | Reference

NORMAL = Atom("normal")
KILL = Atom("kill")
KILLED = Atom("killed")
NOPROC = Atom("noproc")
NOCONNECTION = Atom("noconnection")


@dataclass(frozen=True, slots=True)
class Down:
    """``{'DOWN', Ref, process, Object, Reason}``: a monitored process is gone.

    ``object`` is the pid, or ``(name, node)`` for a monitor made by name.
    """

    ref: Reference
    object: Pid | tuple[Atom, Atom]
    reason: Term

    def to_term(self) -> tuple[Any, ...]:
        return (Atom("DOWN"), self.ref, Atom("process"), self.object, self.reason)


@dataclass(frozen=True, slots=True)
class Exit:
    """``{'EXIT', From, Reason}``: an exit signal, received while trapping exits."""

    sender: Pid
    reason: Term

    def to_term(self) -> tuple[Any, ...]:
        return (Atom("EXIT"), self.sender, self.reason)


@dataclass(frozen=True, slots=True)
class NodeDownMessage:
    """``{nodedown, Node}``: a node watched with ``monitor_node`` went away."""

    node: str

    def to_term(self) -> tuple[Any, ...]:
        return (Atom("nodedown"), Atom(self.node))


@dataclass(slots=True)
class _Monitor:
    """A monitor this process holds: whom, and how the DOWN should name it."""

    target: Pid | Atom
    node: str
    object: Pid | tuple[Atom, Atom]


@dataclass(slots=True)
class _Watcher:
    """A monitor on this process: the watcher, and the target as it was named."""

    pid: Pid
    named: Pid | Atom


@dataclass(eq=False, slots=True)
class ProcessState:
    """What the router keeps per process; its rules live in ``router.py``."""

    links: set[Pid] = field(default_factory=set)
    monitors: dict[Reference, _Monitor] = field(default_factory=dict)
    watchers: dict[Reference, _Watcher] = field(default_factory=dict)
    node_monitors: dict[str, int] = field(default_factory=dict)
    names: set[Atom] = field(default_factory=set)
    aliases: set[Reference] = field(default_factory=set)


class ProcessTable(Protocol):
    """What a process asks of the table that owns it (the router)."""

    async def send(self, sender: Pid, to: Destination, message: Term) -> None: ...

    def register(self, name: str, pid: Pid) -> None: ...

    async def link(self, proc: Process, pid: Pid) -> None: ...

    def unlink(self, proc: Process, pid: Pid) -> None: ...

    async def monitor(self, proc: Process, target: Destination) -> Reference: ...

    def demonitor(self, proc: Process, ref: Reference, *, flush: bool = False) -> bool: ...

    async def monitor_node(self, proc: Process, node: str, flag: bool) -> None: ...

    async def send_exit(self, sender: Pid, pid: Pid, reason: Term) -> None: ...

    def terminate(self, proc: Process, reason: Term) -> None: ...


class Process:
    """A process of this node. Make one with ``node.process()`` or ``node.spawn()``."""

    def __init__(self, router: ProcessTable, pid: Pid, mailbox: Mailbox) -> None:
        self._router = router
        self.pid = pid
        self.mailbox = mailbox
        self.trap_exit = False
        self.state = ProcessState()
        #: The exit reason once the process has exited; None while it lives.
        self.exit_reason: Term | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.exit_reason is None

    @property
    def name(self) -> Atom | None:
        """A name it is registered under, if any."""
        return next(iter(self.state.names), None)

    def __repr__(self) -> str:
        label = f" {self.name}" if self.name else ""
        state = "alive" if self.alive else f"exited {self.exit_reason!r}"
        return f"<Process {self.pid!r}{label} {state}>"

    # --- messages ----------------------------------------------------------------------

    async def receive(self, timeout: float | None = None, *, match: Match | None = None) -> Any:
        """The oldest message that ``match`` accepts (any message without one).

        ``TimeoutError`` after ``timeout`` seconds (``0`` only looks);
        ``ProcessExited`` once this process has exited.
        """
        return await self.mailbox.get(timeout, match)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Any]:
        while True:
            try:
                message = await self.mailbox.get()
            except ProcessExited:
                return
            yield message

    async def send(self, to: Destination, message: Term) -> None:
        """Send from this process (see ``Node.send``)."""
        await self._router.send(self.pid, to, message)

    def flush(self, match: Match) -> int:
        """Drop every queued message ``match`` accepts; how many went."""
        return self.mailbox.flush(match)

    # --- names -------------------------------------------------------------------------

    def register(self, name: str) -> None:
        """``erlang:register(Name, self())``; ``NameTaken`` if held by another."""
        self._router.register(name, self.pid)

    # --- links and monitors ------------------------------------------------------------

    async def link(self, pid: Pid) -> None:
        """Link to ``pid``: whichever exits first sends the other an exit signal."""
        await self._router.link(self, pid)

    def unlink(self, pid: Pid) -> None:
        """Remove the link to ``pid`` (the OTP 26+ protocol, UNLINK_ID/ACK).

        An exit signal of that link still on its way is ignored when it arrives.
        """
        self._router.unlink(self, pid)

    async def monitor(self, target: Pid | str | tuple[str, str]) -> Reference:
        """Monitor a pid, a local name, or ``(name, node)``; a ``Down`` arrives once.

        A target that does not exist gets ``Down`` with ``noproc`` at once; a
        node that cannot be reached or goes away, ``noconnection``.
        """
        return await self._router.monitor(self, target)

    def demonitor(self, ref: Reference, *, flush: bool = False) -> bool:
        """Drop the monitor ``ref``; with ``flush``, also its ``Down`` if already queued.

        True when the monitor was still active.
        """
        return self._router.demonitor(self, ref, flush=flush)

    async def monitor_node(self, node: str, flag: bool = True) -> None:
        """``erlang:monitor_node``: a ``NodeDownMessage`` when ``node`` goes away."""
        await self._router.monitor_node(self, node, flag)

    async def send_exit(self, pid: Pid, reason: Term) -> None:
        """``exit(Pid, Reason)``: an exit signal to another process (``kill`` kills)."""
        await self._router.send_exit(self.pid, pid, reason)

    def exit(self, reason: Term = NORMAL) -> None:
        """End this process with ``reason``: links and monitors are told, names go."""
        self._router.terminate(self, reason)

    # --- as a context --------------------------------------------------------------------

    async def __aenter__(self) -> Process:
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self.alive:
            self.exit(NORMAL if exc is None else exception_reason(exc))


def exception_reason(exc: BaseException) -> Term:
    """A readable exit reason for an exception: ``{python, 'Type', <<"message">>}``."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")
    text = str(exc)
    return (Atom("python"), Atom(name[:255]), text.encode("utf-8", "replace")[:4096])
