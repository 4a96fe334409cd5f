"""``Subject`` inboxes and the ``ClusterMonitor`` that fans NodeUp/NodeDown out to them.

The seed's monitor is an actor with a mailbox: events and subscriptions are
handled one at a time, so every subscriber sees events in the order they
happened. Here one dispatcher thread per monitor plays the actor. Publishing
only enqueues, so a node's event loop never waits for, or runs, subscriber
code; a slow callable delays the others, which is the price of one order.

Order promised: each subscriber gets events in the order they happened, and
every subscriber is handed an event before any is handed the next one. Among
subscribers, an event is handed over in subscription order, oldest first (the
seed goes newest first; code should depend on neither).

Scope: by default a subscriber gets events of visible peers only, exactly the
nodes ``nodes()`` lists, as ``net_kernel:monitor_nodes(true)`` does. Hidden
peers (remote shells, erldist's one-shot commands) are reported only to a
subscriber that asks with ``node_type="hidden"`` or ``"all"``, as
``monitor_nodes(true, [{node_type, all}])`` does.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeAlias, TypeVar

from erldist.errors import ErldistError
from erldist.events import ClusterEvent, NodeDown, NodeTypes, NodeUp, check_node_types, wanted

__all__ = ["ClusterMonitor", "Listener", "Subject", "SubjectClosed"]

log = logging.getLogger("erldist.monitor")

T = TypeVar("T")


class SubjectClosed(ErldistError):
    """The subject is closed and holds nothing more to receive."""


class Subject(Generic[T]):
    """An inbox any thread or event loop may put to and receive from.

    The Python form of the seed's ``process.Subject``. Items come out in the
    order they went in. With ``maxsize`` > 0 a full subject refuses new items
    (``put`` returns False) instead of blocking the sender: a sender is often
    an event loop that must not wait for a slow reader. ``maxsize`` 0 means
    unbounded. After ``close`` nothing more goes in, and what is already
    inside can still be received.
    """

    def __init__(self, maxsize: int = 0) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._cond = threading.Condition(threading.Lock())
        # One future per waiting ``areceive``, each on its own loop. Every put
        # wakes them all, and each re-checks: a waiter that times out or is
        # cancelled can then never strand an item that another waiter wanted.
        self._waiters: set[asyncio.Future[None]] = set()
        self._closed = False
        # Called once on close, so a monitor prunes us at once, not at its next event.
        self._close_hooks: list[Callable[[], object]] = []

    def put(self, item: T) -> bool:
        """Add ``item``; False (and dropped) when the subject is closed or full. Never blocks."""
        with self._cond:
            if self._closed or (self.maxsize and len(self._items) >= self.maxsize):
                return False
            self._items.append(item)
            self._cond.notify()
            waiters = self._take_waiters()
        _wake(waiters)
        return True

    def receive(self, timeout: float | None = None) -> T:
        """The next item, blocking this thread; never call it on an event loop.

        Raises ``TimeoutError`` after ``timeout`` seconds and ``SubjectClosed``
        once closed and drained.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                raise TimeoutError(f"nothing received within {timeout:g} s")
            return self._pop()

    def get_nowait(self) -> T:
        """The next item if there is one, else ``queue.Empty`` (``SubjectClosed`` if closed)."""
        with self._cond:
            if not self._items and not self._closed:
                raise queue.Empty
            return self._pop()

    async def areceive(self, timeout: float | None = None) -> T:
        """The next item, awaited without blocking the running loop (any loop).

        Raises ``TimeoutError`` after ``timeout`` seconds and ``SubjectClosed``
        once closed and drained. Cancelling it loses no item.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        async with asyncio.timeout_at(deadline):
            while True:
                with self._cond:
                    if self._items or self._closed:
                        return self._pop()
                    waiter = loop.create_future()
                    self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    with self._cond:
                        self._waiters.discard(waiter)

    def close(self) -> None:
        """Refuse further puts and wake every waiter; idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            waiters = self._take_waiters()
            hooks, self._close_hooks = self._close_hooks, []
        _wake(waiters)
        for hook in hooks:
            hook()

    def _on_close(self, hook: Callable[[], object]) -> None:
        with self._cond:
            if not self._closed:
                self._close_hooks.append(hook)
                return
        hook()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def _pop(self) -> T:
        """Under the lock, with an item present or the subject closed."""
        if self._items:
            return self._items.popleft()
        raise SubjectClosed("subject is closed")

    def _take_waiters(self) -> tuple[asyncio.Future[None], ...]:
        """Under the lock: the waiters to wake once it is released."""
        waiters = tuple(self._waiters)
        self._waiters.clear()
        return waiters


def _wake(waiters: tuple[asyncio.Future[None], ...]) -> None:
    """Resolve each waiter on its own loop; a waiter whose loop has closed is gone anyway."""
    for waiter in waiters:
        try:
            waiter.get_loop().call_soon_threadsafe(_resolve, waiter)
        except RuntimeError:  # the loop is closed
            continue


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


Listener: TypeAlias = Subject[ClusterEvent] | Callable[[ClusterEvent], object]


class _Subscription:
    """One subscribed listener. A Subject is held weakly: once nothing else
    references it nobody can read it, so it counts as dead and is pruned."""

    __slots__ = ("_callback", "_subject", "node_types")

    def __init__(
        self, listener: Listener, node_types: NodeTypes, on_dead: Callable[[], object]
    ) -> None:
        self.node_types = node_types
        self._subject: weakref.ref[Subject[ClusterEvent]] | None = None
        self._callback: Callable[[ClusterEvent], object] | None = None
        if isinstance(listener, Subject):
            self._subject = weakref.ref(listener, lambda _ref: on_dead())
            listener._on_close(on_dead)
        else:
            self._callback = listener

    def listener(self) -> Listener | None:
        """The listener, or None once a Subject is dead or closed."""
        if self._subject is None:
            return self._callback
        subject = self._subject()
        return None if subject is None or subject.closed else subject

    def is_for(self, listener: Listener) -> bool:
        if self._subject is not None:
            return self._subject() is listener
        return self._callback == listener


class _Subscriptions:
    """State shared by a monitor and its dispatcher thread. The thread holds
    this, never the monitor, so a forgotten monitor can be collected (which
    stops the thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[_Subscription] = []
        self.closed = False

    def prune_locked(self) -> None:
        self.entries = [s for s in self.entries if s.listener() is not None]

    def prune(self) -> None:
        with self.lock:
            self.prune_locked()


_Item: TypeAlias = tuple[ClusterEvent, tuple[_Subscription, ...]] | None


def _dispatch(inbox: queue.SimpleQueue[_Item], subs: _Subscriptions) -> None:
    """The monitor's actor loop: one event at a time, to each subscriber in turn.

    An event goes to those subscribed when it was published and still
    subscribed when their turn comes, so ``unsubscribe`` and ``close`` stop
    deliveries that have not started yet.
    """
    while (item := inbox.get()) is not None:
        event, snapshot = item
        for sub in snapshot:
            with subs.lock:
                if sub not in subs.entries:
                    continue
                listener = sub.listener()
                if listener is None:
                    subs.entries.remove(sub)
                    continue
            if isinstance(listener, Subject):
                if not listener.put(event):
                    _refused(subs, sub, listener, event)
                continue
            try:
                listener(event)
            except Exception:
                log.exception("cluster event listener %r failed on %r", listener, event)


def _refused(
    subs: _Subscriptions, sub: _Subscription, subject: Subject[ClusterEvent], event: ClusterEvent
) -> None:
    """A Subject did not take ``event``: prune it if it closed, else it is full."""
    if subject.closed:
        with subs.lock:
            if sub in subs.entries:
                subs.entries.remove(sub)
    else:
        log.warning("subscriber inbox full (maxsize %d): %r dropped", subject.maxsize, event)


class ClusterMonitor:
    """Broadcasts NodeUp/NodeDown to subscribers, each in the order they happened.

    A listener is a ``Subject[ClusterEvent]`` or a callable taking the event;
    callables run on the monitor's dispatcher thread, never on the
    publisher's. Subscribing twice is ignored; a closed or dead Subject is
    pruned when found; a raising callable is logged and stays subscribed.
    Scope and order: see the module docstring.
    """

    def __init__(self, diagnostic: Callable[[object], object] | None = None) -> None:
        self._diagnostic = diagnostic
        self._subs = _Subscriptions()
        self._inbox: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=_dispatch, args=(self._inbox, self._subs), name="erldist-monitor", daemon=True
        )
        self._thread.start()
        self._stop = weakref.finalize(self, self._inbox.put, None)

    def subscribe(self, listener: Listener, *, node_type: NodeTypes = "visible") -> None:
        """Deliver every later event to ``listener``; no-op if already subscribed or closed.

        ``node_type`` is which peers' events it gets: "visible" (the default,
        the nodes ``nodes()`` lists), "hidden", or "all".
        """
        node_type = check_node_types(node_type)
        with self._subs.lock:
            self._subs.prune_locked()
            if self._subs.closed or any(s.is_for(listener) for s in self._subs.entries):
                return
            if isinstance(listener, Subject) and listener.closed:
                return
            self._subs.entries.append(_Subscription(listener, node_type, self._subs.prune))

    def unsubscribe(self, listener: Listener) -> None:
        """Stop delivering to ``listener``; no-op if it is not subscribed."""
        with self._subs.lock:
            self._subs.entries = [s for s in self._subs.entries if not s.is_for(listener)]

    def publish(self, event: ClusterEvent) -> None:
        """Queue ``event`` for every current subscriber. Never blocks; no-op once closed.

        Anything that is not a NodeUp/NodeDown goes to the ``diagnostic`` hook
        (or the debug log), never silently nowhere.
        """
        if not isinstance(event, NodeUp | NodeDown):
            if self._diagnostic is not None:
                try:
                    self._diagnostic(event)
                except Exception:
                    log.exception("monitor diagnostic hook failed on %r", event)
            else:
                log.debug("monitor got an unknown message: %r", event)
            return
        with self._subs.lock:
            if self._subs.closed:
                return
            targets = tuple(s for s in self._subs.entries if wanted(event, s.node_types))
            if targets:
                self._inbox.put((event, targets))

    def close(self) -> None:
        """Drop all subscribers and undelivered events and end the dispatcher; idempotent.

        A delivery already under way finishes; ``join`` waits for that.
        """
        with self._subs.lock:
            self._subs.closed = True
            self._subs.entries = []
        self._stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the dispatcher thread to end after ``close``; True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._subs.closed

    @property
    def subscribers(self) -> int:
        """Live subscribers (closed or dead Subjects are pruned on the way)."""
        with self._subs.lock:
            self._subs.prune_locked()
            return len(self._subs.entries)
