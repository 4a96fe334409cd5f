"""``gen``'s call protocol: calls from Python, and replies to Erlang's calls.

A call sends ``{'$gen_call', {From, [alias | Mref]}, Request}`` and waits for
``{[alias | Mref], Reply}``, as ``gen:call`` does since OTP 24: ``Mref`` is
both the monitor on the target (so a target that is gone, or whose node is,
ends the call at once instead of at its timeout) and an alias of the
caller, so the server may answer to the alias or to the pid. Calls from this
node share one service process that sorts replies by their reference. When
a call returns, its monitor, its alias and its entry are gone: a reply that
comes later to the alias is dropped by the router, one that comes to the pid
is dropped here, so nothing is left in any mailbox.
"""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

from erldist import telemetry
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
    if type(from_) is tuple and len(from_) == 2 and type(from_[0]) is Pid:
        tag = from_[1]  # OTP 24+'s [alias | Mref], the commonest: checked without match
        if (type(tag) is ImproperList and len(tag.items) == 1 and type(tag.items[0]) is Atom
                and tag.items[0] == _ALIAS and type(tag.tail) is Reference):
            router.send_nowait(sender, tag.tail, (tag, value))
            return
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
    """Makes ``gen_server`` calls and casts on behalf of Python code."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._pending: dict[Reference, asyncio.Future[Any]] = {}
        #: Calls made without a monitor, by the node they wait on.
        self._unmonitored: dict[Reference, str] = {}
        self._deadlines = _Deadlines(self._pending)
        self.process = router.add_service(None, self._receive)

    @property
    def pending(self) -> int:
        """Calls waiting for their reply."""
        return len(self._pending)

    async def call(
        self, dest: Destination, request: Term, timeout: float, *, monitor: bool = True
    ) -> Any:
        """``gen_server:call(Dest, Request, Timeout)``.

        Raises ``CallTimeout`` or ``CallTargetDown`` (``noproc`` at once for a
        target that does not exist, ``noconnection`` when its node is unreachable
        or goes away, else the reason the target exited with).

        ``monitor=False`` is for targets that always exist while their node is up
        (``net_kernel`` for a ping): two control messages fewer per call, and the
        call still ends at once with ``noconnection`` when the node goes away.
        """
        router = self._router
        proc = self.process
        me = proc.pid
        mref = router.alias(proc)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[mref] = fut
        call = (GEN_CALL, (me, ImproperList((_ALIAS,), mref)), request)
        answered = False
        try:
            # Connected and not pushed back (the common case): sent at once, and
            # the deadline is kept by the shared timer. Otherwise the sending
            # (a dial, a full socket or mailbox) waits under the same deadline.
            if monitor:
                sent = router.monitor_and_send_now(proc, dest, mref, call)
            else:
                sent = router.send_now(me, dest, call)
            if not sent:
                async with asyncio.timeout_at(deadline):
                    try:
                        if monitor:
                            # The monitor, then the request, in one write: a target
                            # that is gone, or goes before it answers, gives a DOWN.
                            await router.monitor_and_send(proc, dest, mref, call)
                        else:
                            await router.send(me, dest, call)
                    except ConnectError:
                        raise CallTargetDown(dest, NOCONNECTION) from None
            if not monitor:
                self._unmonitored[mref] = router.resolve(dest)[0]
            self._deadlines.add(loop, deadline, mref)
            value = await fut
            answered = True  # ``_receive`` took the entry out as it answered
            return value
        except TimeoutError:
            telemetry.emit(telemetry.CallTimedOut(max(timeout, 0.0), repr(dest)))
            raise CallTimeout(dest, timeout) from None
        except CallTargetDown as exc:
            telemetry.emit(telemetry.CallTargetDown(repr(dest), repr(exc.reason)))
            raise
        finally:
            if not answered:
                self._pending.pop(mref, None)
            router.unalias(proc, mref)
            if monitor:
                router.demonitor(proc, mref)
            else:
                self._unmonitored.pop(mref, None)

    def node_down(self, node: str) -> None:
        """Unmonitored calls waiting on ``node`` end with ``noconnection``."""
        for ref in [r for r, n in self._unmonitored.items() if n == node]:
            fut = self._pending.pop(ref, None)
            if fut is not None and not fut.done():
                fut.set_exception(CallTargetDown(node, NOCONNECTION))

    async def cast(self, dest: Destination, request: Term) -> None:
        """``gen_server:cast(Dest, Request)``: ``{'$gen_cast', Request}``, no answer.

        Like OTP's, it never fails for a target that does not exist; it raises
        only ``ConnectError`` when the target's node cannot be reached.
        """
        await self._router.send(self.process.pid, dest, (GEN_CAST, request))

    def _receive(self, message: Any, _peer: str | None) -> None:
        if type(message) is tuple and len(message) == 2:  # a reply: checked without match
            tag = message[0]
            if (type(tag) is ImproperList and len(tag.items) == 1
                    and type(tag.items[0]) is Atom and tag.items[0] == _ALIAS
                    and isinstance(tag.tail, Reference)):
                fut = self._pending.pop(tag.tail, None)
                if fut is not None and not fut.done():
                    fut.set_result(message[1])
                return
        match message:
            case (ImproperList(items=[Atom("alias")], tail=Reference() as ref), value):
                fut = self._pending.pop(ref, None)
                if fut is not None and not fut.done():
                    fut.set_result(value)
            case Down(ref=ref, object=target, reason=reason):
                fut = self._pending.pop(ref, None)
                if fut is not None and not fut.done():
                    fut.set_exception(CallTargetDown(target, reason))


class _Deadlines:
    """The deadlines of waiting calls, kept by one timer instead of one per call.

    Calls in a row with the same timeout have deadlines in increasing order,
    so the timer armed for the earliest stays armed: a call costs a heap push,
    not a timer armed and cancelled. When the timer fires, every call past its
    deadline that still waits gets ``TimeoutError``; entries of calls that
    ended are dropped then, and the heap is rebuilt from the waiting calls
    whenever ended ones outnumber them.
    """

    def __init__(self, pending: dict[Reference, asyncio.Future[Any]]) -> None:
        self._pending = pending
        self._heap: list[tuple[float, int, Reference]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._due: float | None = None

    def add(self, loop: asyncio.AbstractEventLoop, deadline: float, ref: Reference) -> None:
        heap = self._heap
        if len(heap) > 2 * len(self._pending) + 64:
            self._heap = heap = [e for e in heap if e[2] in self._pending]
            heapq.heapify(heap)
        self._seq += 1
        heapq.heappush(heap, (deadline, self._seq, ref))
        if self._due is None or deadline < self._due:
            self._arm(loop, deadline)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = when
        self._timer = loop.call_at(when, self._fire, loop, when)

    def _fire(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._timer = self._due = None
        # A loop may run a timer a little before its time (uvloop counts whole
        # milliseconds): what it was armed for is due, as with asyncio.timeout.
        heap, now = self._heap, max(loop.time(), when)
        while heap and heap[0][0] <= now:
            fut = self._pending.get(heapq.heappop(heap)[2])
            if fut is not None and not fut.done():
                fut.set_exception(TimeoutError())
        while heap and heap[0][2] not in self._pending:
            heapq.heappop(heap)
        if heap:
            self._arm(loop, heap[0][0])
