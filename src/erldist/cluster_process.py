"""Processes for plain threaded code: the sync face of ``erldist.Process``.

A ``SyncProcess`` wraps a process of the ``cluster`` module's default node.
Each method hands its work to the node's loop thread and blocks the calling
thread until it is done, like the rest of ``erldist.cluster``. A ``match``
filter given to ``receive`` runs on the loop thread, so it should be quick
and must not block.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from erldist import config
from erldist.gleam.subject import Subject, receive
from erldist.runtime.mailbox import Match
from erldist.runtime.process import NORMAL, Destination, Process, exception_reason
from erldist.term.types import Pid, Reference, Term

__all__ = ["SyncProcess"]

T = TypeVar("T")
#: Runs a coroutine on the default node's loop, waiting at most the given seconds.
Runner = Callable[[Coroutine[Any, Any, Any], float | None], Any]
#: Seconds a blocking call waits for work that has no deadline of its own.
_OPERATION_BUDGET = 30.0
#: Extra seconds past an operation's own deadline, so it reports its own timeout.
_GRACE = 5.0


class SyncProcess:
    """A process of the default node, used from any thread but the loop's own."""

    def __init__(self, process: Process, run: Runner) -> None:
        self._process = process
        self._run = run

    @property
    def pid(self) -> Pid:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.alive

    @property
    def exit_reason(self) -> Term | None:
        return self._process.exit_reason

    @property
    def trap_exit(self) -> bool:
        return self._process.trap_exit

    @trap_exit.setter
    def trap_exit(self, value: bool) -> None:
        self._process.trap_exit = value

    def __repr__(self) -> str:
        return repr(self._process)

    def _call(self, fn: Callable[[], T]) -> T:
        async def on_loop() -> T:
            return fn()

        result: T = self._run(on_loop(), _OPERATION_BUDGET)
        return result

    def receive(self, timeout: float | None = None, *, match: Match | None = None) -> Any:
        """Block until a message (that ``match`` accepts) arrives; see ``Process.receive``."""
        return self._run(self._process.receive(timeout, match=match), timeout)

    def receive_typed(self, subject: Subject[T], timeout: float | None = None) -> T:
        """The next message for a typed subject this process owns, decoded; see
        ``erldist.gleam.receive`` (``DecodeTimeout`` when nothing comes)."""
        budget = config.get().default_call_timeout if timeout is None else max(timeout, 0.0)
        result: T = self._run(receive(self._process, subject, budget), budget + _GRACE)
        return result

    def send(self, to: Destination, message: Term) -> None:
        self._run(self._process.send(to, message), _OPERATION_BUDGET)

    def register(self, name: str) -> None:
        self._call(lambda: self._process.register(name))

    def link(self, pid: Pid) -> None:
        self._run(self._process.link(pid), _OPERATION_BUDGET)

    def unlink(self, pid: Pid) -> None:
        self._call(lambda: self._process.unlink(pid))

    def monitor(self, target: Pid | str | tuple[str, str]) -> Reference:
        ref: Reference = self._run(self._process.monitor(target), _OPERATION_BUDGET)
        return ref

    def demonitor(self, ref: Reference, *, flush: bool = False) -> bool:
        return self._call(lambda: self._process.demonitor(ref, flush=flush))

    def monitor_node(self, node: str, flag: bool = True) -> None:
        self._run(self._process.monitor_node(node, flag), _OPERATION_BUDGET)

    def send_exit(self, pid: Pid, reason: Term) -> None:
        self._run(self._process.send_exit(pid, reason), _OPERATION_BUDGET)

    def exit(self, reason: Term = NORMAL) -> None:
        self._call(lambda: self._process.exit(reason))

    def __enter__(self) -> SyncProcess:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self.alive:
            self.exit(NORMAL if exc is None else exception_reason(exc))
