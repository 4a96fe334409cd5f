"""Process-wide settings: the seed's ``config.configure(... max_distribution_atoms:)``.

One immutable ``Config`` is current at a time. ``configure`` validates and
swaps it atomically, so a reader never sees half an update and two threads
changing different fields never lose each other's change. Every ``Config``
validates itself on construction, so one passed straight to ``Node.start``
is as safe as one made by ``configure``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, fields, replace

from erldist.errors import ErldistError
from erldist.protocol.framing import DEFAULT_MAX_FRAME
from erldist.term.decode import DecodeLimits

__all__ = ["Config", "ConfigError", "configure", "default", "get", "reset"]

#: Inclusive ranges for fields that need more than "positive".
#: OTP accepts any positive tick time, but below 1 s ticks flood a busy link
#: and above an hour a dead peer goes unnoticed for most of a day.
_RANGES: dict[str, tuple[float, float]] = {
    "net_ticktime": (1.0, 3600.0),
    "max_message_bytes": (1.0, 0xFFFFFFFF),
}
_OVERFLOW = ("block", "drop")


class ConfigError(ErldistError, ValueError):
    """A setting that does not exist or a value it cannot take."""


@dataclass(frozen=True, slots=True)
class Config:
    """The settings erldist reads; times are seconds.

    Each field's type is its default's type: ``int`` fields take ints >= 1
    (``bool`` is refused), ``float`` fields take finite numbers > 0 (ints are
    converted).
    """

    #: Fresh node-name/cookie atoms this process may intern over its lifetime
    #: (the seed's guardrail, far below the VM's atom-table cap).
    max_distribution_atoms: int = 10_000
    #: ``health()``'s one absolute deadline for all its pings together.
    health_timeout: float = 8.0
    #: Most pings ``health()`` keeps in flight at once.
    health_parallelism: int = 32
    #: Connection set-up budget (OTP's ``net_setuptime`` default).
    connect_timeout: float = 7.0
    #: ``start_node`` budget: listen, EPMD, name resolution.
    start_timeout: float = 10.0
    #: OTP's ``net_ticktime``: a silent peer is down after about this long.
    net_ticktime: float = 60.0
    #: Budget for one ``ping``.
    ping_timeout: float = 8.0
    #: Largest message (one frame, or one reassembled fragmented message) a peer
    #: may send; a larger one closes the connection.
    max_message_bytes: int = DEFAULT_MAX_FRAME
    #: Caps on decoding a peer's terms (depth, elements, binary and integer
    #: sizes); a message over them is dropped and counted, the link stays.
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)
    #: Messages a process's mailbox holds before ``mailbox_overflow`` applies.
    mailbox_maxsize: int = 100_000
    #: ``"block"``: a full mailbox pauses the connection that feeds it (TCP
    #: pushes back on the sender, nothing is lost); ``"drop"``: new messages
    #: are refused, counted and reported through telemetry.
    mailbox_overflow: str = "block"
    # --- the Gleam library distribute's keys (its ``_ms`` fields are seconds here) ---
    #: Largest payload (codec output) sent or accepted, in bytes; exactly this
    #: many is accepted (distribute's ``max_payload_size_bytes``, 4 MiB).
    max_payload_size_bytes: int = 4 * 1024 * 1024
    #: Most elements one list of a payload codec may declare, checked on both
    #: sides (distribute's ``max_decoded_list_elements``).
    max_decoded_list_elements: int = 10_000
    #: Budget of a call (or receive) given no timeout (``default_call_timeout_ms``).
    default_call_timeout: float = 5.0
    #: Budget of an actor's initialisation (``default_init_timeout_ms``).
    default_init_timeout: float = 5.0
    #: Budget of a user resolver settling a global-name clash; past it the
    #: lowest pid wins (``conflict_resolver_timeout_ms``).
    conflict_resolver_timeout: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "decode_limits":
                if not isinstance(self.decode_limits, DecodeLimits):
                    raise ConfigError("decode_limits must be a DecodeLimits, not "
                                      f"{type(self.decode_limits).__name__}")
            elif f.name == "mailbox_overflow":
                if self.mailbox_overflow not in _OVERFLOW:
                    raise ConfigError(f"mailbox_overflow must be one of {', '.join(_OVERFLOW)}, "
                                      f"got {self.mailbox_overflow!r}")
            else:
                object.__setattr__(self, f.name, _checked(f.name, f.default,
                                                          getattr(self, f.name)))


def _checked(name: str, default: object, value: object) -> int | float:
    """``value`` as the field's type, or ``ConfigError`` naming the field."""
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an int, not {type(value).__name__}")
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
        low, high = _RANGES.get(name, (1, math.inf))
        if not low <= value <= high:
            raise ConfigError(f"{name} must be within {low:g}..{high:g}, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        raise ConfigError(f"{name} must be finite, got an int too large for a float") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    low, high = _RANGES.get(name, (0.0, math.inf))
    if not low <= seconds <= high:
        raise ConfigError(f"{name} must be within {low:g}..{high:g} seconds, got {value!r}")
    return seconds


_DEFAULT = Config()
_FIELDS = frozenset(f.name for f in fields(Config))
_lock = threading.Lock()
_current = _DEFAULT


def configure(**changes: object) -> Config:
    """Change some settings; returns the new current ``Config``.

    All or nothing: if any key is unknown or any value invalid, ``ConfigError``
    is raised and the current config is untouched. This does not reset the
    distribution-atom budget: lowering ``max_distribution_atoms`` below what
    is already used refuses every further fresh name.
    """
    global _current
    unknown = sorted(changes.keys() - _FIELDS)
    if unknown:
        raise ConfigError(
            f"unknown config field(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}"
        )
    with _lock:
        # replace() runs __post_init__, which validates and converts the values.
        _current = replace(_current, **changes)  # type: ignore[arg-type]
        return _current


def get() -> Config:
    """The current settings (an immutable snapshot)."""
    return _current


def reset() -> Config:
    """Back to the defaults; returns them."""
    global _current
    with _lock:
        _current = _DEFAULT
        return _current


def default() -> Config:
    """The documented defaults, whatever is current."""
    return _DEFAULT
