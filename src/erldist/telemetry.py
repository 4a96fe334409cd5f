"""Machine-readable events about what a node did, for metrics and alerting.

Logging tells a human what happened; telemetry hands a program a typed event
it can count or route. Handlers run synchronously, in attach order, on the
thread that emitted (often a node's event loop), so they should be quick. A
handler that raises is logged and skipped: observing a node must never break it.
"""

from __future__ import annotations

import logging
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
    "attach",
    "detach",
    "emit",
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
    """A call got no reply within ``timeout`` seconds (after clamping negatives to 0)."""

    timeout: float


@dataclass(frozen=True, slots=True)
class CallTargetDown:
    """A call's target process went down (or its node disconnected) before replying."""


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

_lock = threading.Lock()
# Replaced, never mutated: emit iterates a snapshot without taking the lock.
_handlers: tuple[Handler, ...] = ()


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
    """Hand ``event`` to every handler attached when the call starts, in attach order."""
    for handler in _handlers:
        try:
            handler(event)
        except Exception:
            log.exception("telemetry handler %r failed on %r", handler, event)
