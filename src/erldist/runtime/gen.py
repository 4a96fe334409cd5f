"""``gen``'s call protocol: calls from Python, and replies to Erlang's calls.

A call sends ``{'$gen_call', {From, Tag}, Request}`` and waits for
``{Tag, Reply}``, with a monitor on the target so a target that is gone, or
whose node is, ends the call at once instead of at its timeout (as
``gen:call`` does). Calls from this node share one service process that
sorts replies by their reference; when a call returns, its monitor and its
entry are gone, and a reply that comes later is dropped there, so nothing is
left in any mailbox.
"""

from __future__ import annotations

import asyncio
from typing import Any

from erldist.errors import CallTargetDown, CallTimeout, ConnectError
from erldist.runtime.process import NOCONNECTION, Destination, Down
from erldist.runtime.router import Router
from erldist.term.types import Atom, ImproperList, Pid, Reference, Term

__all__ = ["GEN_CALL", "GEN_CAST", "CallClient", "reply"]

GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
_ALIAS = Atom("alias")


def reply(router: Router, sender: Pid, from_: Any, value: Term) -> None:
    """``gen:reply(From, Reply)``: to the caller's alias when its tag names one."""
    match from_:
        case (Pid(), ImproperList(items=[Atom("alias")], tail=Reference() as alias)):
            router.send_nowait(sender, alias, (from_[1], value))
        case (Pid(), [ImproperList(items=[Atom("alias")], tail=Reference() as alias), *_]):
            router.send_nowait(sender, alias, (from_[1], value))
        case (Pid(), ImproperList(items=[ImproperList(items=[Atom("alias")],
                                                      tail=Reference() as alias), *_])):
            router.send_nowait(sender, alias, (from_[1], value))
        case (Pid() as caller, tag):
            router.send_nowait(sender, caller, (tag, value))


class CallClient:
    """Makes ``gen_server`` calls on behalf of Python code."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._pending: dict[Reference, asyncio.Future[Any]] = {}
        self.process = router.add_service(None, self._receive)

    @property
    def pending(self) -> int:
        """Calls waiting for their reply."""
        return len(self._pending)

    async def call(self, dest: Destination, request: Term, timeout: float) -> Any:
        """``gen_server:call(Dest, Request, Timeout)``.

        Raises ``CallTimeout`` or ``CallTargetDown`` (``noproc`` at once for a
        target that does not exist, ``noconnection`` when its node is unreachable
        or goes away).
        """
        router = self._router
        me = self.process.pid
        ref = router.make_ref()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ref] = fut
        try:
            async with asyncio.timeout(timeout):
                await router.monitor(self.process, dest, ref)
                if not fut.done():
                    try:
                        await router.send(me, dest, (GEN_CALL, (me, ref), request))
                    except ConnectError:
                        raise CallTargetDown(dest, NOCONNECTION) from None
                return await fut
        except TimeoutError:
            raise CallTimeout(dest, timeout) from None
        finally:
            self._pending.pop(ref, None)
            router.demonitor(self.process, ref)

    def _receive(self, message: Any, _peer: str | None) -> None:
        match message:
            case (Reference() as ref, value):
                fut = self._pending.pop(ref, None)
                if fut is not None and not fut.done():
                    fut.set_result(value)
            case Down(ref=ref, object=target, reason=reason):
                fut = self._pending.pop(ref, None)
                if fut is not None and not fut.done():
                    fut.set_exception(CallTargetDown(target, reason))
