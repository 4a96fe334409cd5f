"""A process's message queue: selective receive, any number of receivers, a bound.

Each message is handed to exactly one receiver. A message that arrives is
offered to the waiting receivers in the order they started waiting, and the
first whose ``match`` accepts it takes it; otherwise it is queued. A receiver
scans the queue first, oldest message first, as Erlang's ``receive`` does, so
a message that matches nobody stays queued without blocking the ones behind
it. A receiver that times out or is cancelled just as a message was handed to
it puts that message back where it belongs, so no message is ever lost.

The bound: past ``maxsize`` queued messages the ``drop`` policy refuses new
ones (counted, and reported through telemetry by the caller) and the
``block`` policy still takes them but asks their source (a connection) to
stop reading until the queue is down to half, which pushes back on the
sender through TCP instead of losing anything.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from erldist.errors import ProcessExited

__all__ = ["FlowSource", "Mailbox", "Match", "Overflow"]

#: A receive filter: True for the messages the receiver wants.
Match = Callable[[Any], bool]


class Overflow(enum.Enum):
    """What a full mailbox does with one more message."""

    BLOCK = "block"  #: take it, and pause the source until there is room (nothing lost)
    DROP = "drop"  #: refuse it and count it


class FlowSource(Protocol):
    """Where messages come from in bulk (a connection): it can stop and resume."""

    def pause_delivery(self) -> None: ...

    def resume_delivery(self) -> None: ...


@dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[tuple[int, Any]]
    match: Match | None


class Mailbox:
    """The queue behind ``Process.receive``; owned and closed by its process."""

    def __init__(self, owner: object, maxsize: int, overflow: Overflow) -> None:
        self._owner = owner
        self.maxsize = maxsize
        self.overflow = overflow
        #: Messages refused under the ``drop`` policy.
        self.dropped = 0
        self._queue: deque[tuple[int, Any]] = deque()
        self._seq = itertools.count()
        self._waiters: list[_Waiter] = []
        self._paused: set[FlowSource] = set()
        self._space: list[asyncio.Future[None]] = []
        self._exit_reason: Any = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.maxsize

    # --- putting -----------------------------------------------------------------------

    def put(self, message: Any, source: FlowSource | None = None) -> bool:
        """Deliver ``message``; False when the ``drop`` policy refused it."""
        if self._closed:
            return True  # a dead process's mail vanishes, as in Erlang
        item = (next(self._seq), message)
        if self._hand_over(item):
            return True
        if len(self._queue) >= self.maxsize:
            if self.overflow is Overflow.DROP:
                self.dropped += 1
                return False
            if source is not None and source not in self._paused:
                self._paused.add(source)
                source.pause_delivery()
        self._queue.append(item)
        return True

    def put_signal(self, message: Any) -> None:
        """Deliver a message made from a signal (DOWN, EXIT): never refused."""
        if not self._closed:
            self._offer((next(self._seq), message))

    def _offer(self, item: tuple[int, Any]) -> None:
        if not self._hand_over(item):
            self._queue.append(item)

    def _hand_over(self, item: tuple[int, Any]) -> bool:
        """Give ``item`` to the first waiting receiver that wants it."""
        for waiter in self._waiters:
            if self._accepts(waiter, item[1]):
                self._waiters.remove(waiter)
                waiter.future.set_result(item)
                return True
        return False

    def _accepts(self, waiter: _Waiter, message: Any) -> bool:
        if waiter.future.done():
            return False
        if waiter.match is None:
            return True
        try:
            return bool(waiter.match(message))
        except Exception as exc:
            # The receiver's own filter failed: its receive raises, the message stays.
            waiter.future.set_exception(exc)
            return False

    def _put_back(self, item: tuple[int, Any]) -> None:
        """Return a message taken by a receiver that gave up, in arrival order."""
        if self._closed or self._hand_over(item):
            return
        index = len(self._queue)
        while index > 0 and self._queue[index - 1][0] > item[0]:
            index -= 1
        self._queue.insert(index, item)

    # --- taking ------------------------------------------------------------------------

    def _take(self, match: Match | None) -> tuple[int, Any] | None:
        queue = self._queue
        if match is None:
            item = queue.popleft() if queue else None
        else:
            item = None
            for index, candidate in enumerate(queue):
                if match(candidate[1]):
                    item = candidate
                    del queue[index]
                    break
        if item is not None:
            self._taken()
        return item

    def _taken(self) -> None:
        size = len(self._queue)
        if self._paused and size <= self.maxsize // 2:
            paused, self._paused = self._paused, set()
            for source in paused:
                source.resume_delivery()
        if self._space and size < self.maxsize:
            waiters, self._space = self._space, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def get(self, timeout: float | None = None, match: Match | None = None) -> Any:
        """The oldest message ``match`` accepts (any, without one).

        ``TimeoutError`` after ``timeout`` seconds (0 polls), ``ProcessExited``
        once the owner has exited and nothing matching is queued.
        """
        item = self._take(match)
        if item is not None:
            return item[1]
        if self._closed:
            raise ProcessExited(self._owner, self._exit_reason)
        if timeout is not None and timeout <= 0:
            raise TimeoutError("no matching message")
        waiter = _Waiter(asyncio.get_running_loop().create_future(), match)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                _, message = await waiter.future
        except BaseException:
            fut = waiter.future
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._put_back(fut.result())
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        return message

    def flush(self, match: Match) -> int:
        """Remove every queued message ``match`` accepts; how many went."""
        kept = deque(item for item in self._queue if not match(item[1]))
        removed = len(self._queue) - len(kept)
        self._queue = kept
        if removed:
            self._taken()
        return removed

    async def wait_for_space(self) -> None:
        """Wait until the queue is below its bound (local senders under ``block``)."""
        while not self._closed and len(self._queue) >= self.maxsize:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._space.append(fut)
            await fut

    # --- closing -----------------------------------------------------------------------

    def close(self, reason: Any) -> None:
        """The owner exited: waiting receivers get ``ProcessExited``, sources resume."""
        if self._closed:
            return
        self._closed = True
        self._exit_reason = reason
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_exception(ProcessExited(self._owner, reason))
        self._queue.clear()
        paused, self._paused = self._paused, set()
        for source in paused:
            source.resume_delivery()
        for fut in self._space:
            if not fut.done():
                fut.set_result(None)
        self._space = []
