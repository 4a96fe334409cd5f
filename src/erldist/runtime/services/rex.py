"""``rex``: the rpc server's name, for what OTP still sends to it.

On connect OTP asks ``rex`` for its features; the answer lists ``erpc``,
since this node answers erpc's spawn requests (``runtime/rpc.py``), which OTP
23 and 24 check before they use them instead of calls to ``rex``.
``rpc:block_call`` (all releases) and OTP 23/24's fallbacks still call
``rex`` itself with ``{call | block_call, M, F, A, GroupLeader}`` or cast
``{cast, M, F, A, GroupLeader}``: those run the same exposed functions and
answer as ``rex`` does (the value, a thrown value as is, ``{badrpc, {'EXIT',
Reason}}`` for an exit or an error).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from erldist.runtime import gen
from erldist.runtime.router import Router
from erldist.term.types import Atom, Pid, Term

__all__ = ["Rex"]

log = logging.getLogger("erldist.rex")

#: Runs an exposed function: ``(return | throw, V)``, ``(exit, R)``, ``(error, R, Stack)``.
Apply = Callable[[Atom, Atom, list[Term]], Awaitable[tuple[Any, ...]]]

_BADRPC = Atom("badrpc")
_EXIT = Atom("EXIT")


class Rex:
    """Registered as ``rex``: features, and rex-style calls and casts."""

    def __init__(self, router: Router, apply: Apply, max_running: int) -> None:
        self._router = router
        self._apply = apply
        self._max_running = max_running
        self._running: set[asyncio.Task[None]] = set()
        self.process = router.add_service("rex", self._receive)

    def _receive(self, message: Any, _peer: str | None) -> None:
        match message:
            case (Pid() as caller, Atom("features_request")):
                features: list[Atom] = [Atom("erpc")]
                reply = (Atom("features_reply"), self._router.atom, features)
                self._router.send_nowait(self.process.pid, caller, reply)
            case (Atom("$gen_call"), from_,
                  (Atom("call") | Atom("block_call"), Atom() as m, Atom() as f, list() as a, _)):
                if len(self._running) >= self._max_running:
                    gen.reply(self._router, self.process.pid, from_,
                              (_BADRPC, Atom("system_limit")))
                    return
                self._start(self._call(from_, m, f, a))
            case (Atom("$gen_cast"), (Atom("cast"), Atom() as m, Atom() as f, list() as a, _)):
                if len(self._running) < self._max_running:
                    self._start(self._cast(m, f, a))
            case _:
                log.debug("rex request not handled: %r", message)

    def _start(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _call(self, from_: Any, m: Atom, f: Atom, a: list[Term]) -> None:
        outcome = await self._apply(m, f, a)
        match outcome:
            case (Atom("return") | Atom("throw"), value):
                answer = value
            case (Atom("exit"), reason):
                answer = (_BADRPC, (_EXIT, reason))
            case (Atom("error"), reason, stack):
                answer = (_BADRPC, (_EXIT, (reason, stack)))
            case _:
                answer = (_BADRPC, (_EXIT, outcome))
        gen.reply(self._router, self.process.pid, from_, answer)

    async def _cast(self, m: Atom, f: Atom, a: list[Term]) -> None:
        outcome = await self._apply(m, f, a)
        if outcome[0] == Atom("error"):
            log.error("rpc cast %s:%s/%d failed: %r", m, f, len(a), outcome[1])

    def close(self) -> None:
        for task in self._running:
            task.cancel()
