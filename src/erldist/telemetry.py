"""Machine-readable events about what a node did, for metrics and alerting.

Logging tells a human what happened; telemetry hands a program a typed event
it can count or route. Observing a node must never slow or break it, so
``emit`` only enqueues: handlers run on one telemetry thread, never on a
node's event loop, and a slow handler delays only later handlers. Events are
handled one at a time, in the order they were emitted, each by the handlers
attached when it was emitted, in attach order. The queue is bounded: when
handlers fall that far behind, new events are dropped and counted
(``dropped()``) rather than let memory grow. ``flush`` waits until everything
emitted so far has been handled. A handler that raises is logged (a warning
with the handler and the stack, never the event, which may name nodes) and
keeps being called.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from erldist.events import NodeDown, NodeUp

if TYPE_CHECKING:
    # Only for annotations: names and codec emit telemetry, so a runtime import would be a cycle.
    from erldist.codec.payload import DecodeSite, PayloadSite
    from erldist.names import BudgetSite, InputKind

__all__ = [
    "ActorRegistered",
    "ActorRegistrationFailed",
    "ActorUnregistered",
    "AtomBudgetExhausted",
    "CallTargetDown",
    "CallTimedOut",
    "ConnectAttemptFailed",
    "DecodeFailed",
    "EpmdFallback",
    "GlobalNameConflict",
    "GroupChanged",
    "HandshakeRejected",
    "MessageDropped",
    "NodeDown",
    "NodeUp",
    "PayloadRejected",
    "ProcessFailed",
    "TelemetryEvent",
    "TlsRefused",
    "attach",
    "detach",
    "dropped",
    "emit",
    "flush",
]

log = logging.getLogger("erldist.telemetry")


@dataclass(frozen=True, slots=True)
class AtomBudgetExhausted:
    """A fresh node name or cookie was refused because the atom budget is spent.

    ``attempted_input`` is the offending text itself so a handler can find its
    source; when ``kind`` is a cookie it is never shown by ``repr``/``str``, so
    logging the event cannot leak the secret.
    """

    # repr=False keeps the input out of the generated repr even if __repr__ below is removed.
    attempted_input: str = field(repr=False)
    where: BudgetSite
    kind: InputKind

    def __repr__(self) -> str:
        shown = "<redacted>" if self.kind.secret else repr(self.attempted_input)
        return (
            f"AtomBudgetExhausted(attempted_input={shown}, where={self.where!r}, "
            f"kind={self.kind!r})"
        )


@dataclass(frozen=True, slots=True)
class ConnectAttemptFailed:
    """An outgoing connection to ``node`` could not be set up."""

    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class HandshakeRejected:
    """A handshake with ``node`` failed.

    ``reason`` is a ``HandshakeFailure`` name (``"BAD_COOKIE"``, ...) plus
    detail; it never contains a cookie.
    """

    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class TlsRefused:
    """A TLS distribution connection was refused, by this node or by the peer.

    ``peer`` is the node name when dialing, the address when accepting (the
    name is not known before TLS); ``role`` is ``"dial"`` or ``"accept"``;
    ``failure`` is a ``TlsFailure`` value; ``by_peer`` says who refused.
    """

    peer: str
    role: str
    failure: str
    detail: str
    by_peer: bool


@dataclass(frozen=True, slots=True)
class EpmdFallback:
    """The node started the embedded EPMD, or re-registered with EPMD."""

    detail: str


@dataclass(frozen=True, slots=True)
class MessageDropped:
    """A message that reached this node and was not delivered.

    ``reason`` is ``mailbox_full`` (the receiver's bound, under the ``drop``
    policy) or ``undecodable`` (a term with no Python form); ``target`` names
    the receiver (a pid's repr, or the peer for undecodable ones).
    """

    target: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProcessFailed:
    """A process's code raised: ``reason`` is the exit reason it died with."""

    pid: str
    reason: str


# --- the Gleam library distribute's messaging events ----------------------------------


@dataclass(frozen=True, slots=True)
class PayloadRejected:
    """A payload of ``size`` bytes was over ``config.max_payload_size_bytes`` (``cap``).

    Emitted by ``erldist.codec.encode_payload`` / ``decode_payload``; ``where``
    is the send or receive path that refused it. Nothing was sent or decoded.
    """

    size: int
    cap: int
    where: PayloadSite


@dataclass(frozen=True, slots=True)
class DecodeFailed:
    """A received payload did not decode; the message was dropped.

    ``message`` is the error rendered as distribute renders it (``str`` of the
    ``CodecDecodeError``, e.g. ``"Invalid binary: int64"``). Emitted by
    ``erldist.codec.decode_payload``. Not to be confused with the exception
    ``erldist.errors.DecodeFailed``, one of the errors this event can report.
    """

    message: str
    where: DecodeSite


@dataclass(frozen=True, slots=True)
class CallTimedOut:
    """A call got no reply within ``timeout`` seconds (after clamping negatives to 0).

    ``target`` names what was called (the destination's ``repr``, or
    ``node m:f/arity`` for an rpc); empty when the emitter does not know it.
    """

    timeout: float
    target: str = ""


@dataclass(frozen=True, slots=True)
class CallTargetDown:
    """A call's target process went down (or its node disconnected) before replying.

    ``target`` as in ``CallTimedOut``; ``reason`` is the exit reason's ``repr``
    (``noproc``, ``noconnection``, or what the target exited with).
    """

    target: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ActorRegistered:
    """``name`` was registered globally for an actor."""

    name: str


@dataclass(frozen=True, slots=True)
class ActorRegistrationFailed:
    """Registering ``name`` failed; ``reason`` says why (taken, invalid, tag mismatch)."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class ActorUnregistered:
    """Unregistering ``name`` finished; ``removed`` is False when it was not registered."""

    name: str
    removed: bool


@dataclass(frozen=True, slots=True)
class GlobalNameConflict:
    """Two partitions met holding ``name`` for different pids; ``kept`` is the pid
    that keeps it, or ``"none"`` when the name went."""

    name: str
    kept: str


@dataclass(frozen=True, slots=True)
class GroupChanged:
    """``pids`` joined or left (``action``) ``group`` of the ``pg`` ``scope``."""

    scope: str
    group: str
    action: str
    pids: tuple[str, ...]


TelemetryEvent: TypeAlias = (
    MessageDropped
    | ProcessFailed
    | AtomBudgetExhausted
    | NodeUp
    | NodeDown
    | ConnectAttemptFailed
    | HandshakeRejected
    | TlsRefused
    | EpmdFallback
    | PayloadRejected
    | DecodeFailed
    | CallTimedOut
    | CallTargetDown
    | ActorRegistered
    | ActorRegistrationFailed
    | ActorUnregistered
    | GlobalNameConflict
    | GroupChanged
)
Handler: TypeAlias = Callable[[TelemetryEvent], object]

#: Events waiting for the telemetry thread, at most.
MAX_QUEUED = 10_000

_lock = threading.Lock()
# Replaced, never mutated: emit takes a snapshot without taking the lock.
_handlers: tuple[Handler, ...] = ()
# An event with the handlers to run, or an Event set once all before it are handled.
_Item: TypeAlias = tuple[TelemetryEvent, tuple[Handler, ...]] | threading.Event
_queue: queue.Queue[_Item] = queue.Queue(MAX_QUEUED)
_thread: threading.Thread | None = None
_dropped = 0


def attach(handler: Handler) -> None:
    """Call ``handler`` for every later event; attaching it again changes nothing."""
    global _handlers
    with _lock:
        if handler not in _handlers:
            _handlers = (*_handlers, handler)


def detach(handler: Handler) -> None:
    """Stop calling ``handler``; a handler that is not attached is ignored."""
    global _handlers
    with _lock:
        _handlers = tuple(h for h in _handlers if h != handler)


def emit(event: TelemetryEvent) -> None:
    """Queue ``event`` for every handler attached now; never blocks, never raises."""
    global _dropped
    handlers = _handlers
    if not handlers:
        return
    _ensure_thread()
    try:
        _queue.put_nowait((event, handlers))
    except queue.Full:
        with _lock:
            _dropped += 1
            count = _dropped
        if count == 1 or count % 1000 == 0:
            log.warning("telemetry handlers are %d events behind: %d event(s) dropped so far",
                        MAX_QUEUED, count)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every event emitted before this call has been handled.

    True when done, False if ``timeout`` passed first. Called from a handler
    it returns False at once: the thread cannot wait for itself.
    """
    if threading.current_thread() is _thread:
        return False
    _ensure_thread()
    done = threading.Event()
    try:
        _queue.put(done, timeout=timeout)
    except queue.Full:
        return False
    return done.wait(timeout)


def dropped() -> int:
    """Events dropped because the queue was full, over the process's life."""
    return _dropped


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="erldist-telemetry", daemon=True)
            _thread.start()


def _run() -> None:
    while True:
        item = _queue.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        event, handlers = item
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                log.warning("telemetry handler %r failed on a %s event", handler,
                            type(event).__name__, exc_info=True)
