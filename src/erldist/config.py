"""Process-wide settings: the seed's ``config.configure(... max_distribution_atoms:)``.

One immutable ``Config`` is current at a time. ``configure`` validates and
swaps it atomically, so a reader never sees half an update and two threads
changing different fields never lose each other's change. Every ``Config``
validates itself on construction, so one passed straight to ``Node.start``
is as safe as one made by ``configure``.

The seed's configuration is write-once, so code that runs after start-up can
never loosen a guardrail. Here, once a node has started in this process
(``mark_started``), a safety limit (``LIMITS``) may still be tightened but
never widened, and a setting read only at start (``FIXED_AFTER_START``) can
no longer change: either attempt raises a typed ``ConfigError`` naming the
field. Every other setting is read live by nodes that follow the process
config, so a change takes effect at the next operation that uses it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace

from erldist.errors import (
    ConfigError,
    ConfigLimitWidened,
    ConfigSettingFixed,
    InvalidConfigValue,
    TlsSettingsError,
    UnknownConfigField,
    config_error_to_string,
)
from erldist.protocol.framing import DEFAULT_MAX_FRAME
from erldist.term.decode import DecodeLimits
from erldist.tls_settings import TlsSettings

__all__ = [
    "FIXED_AFTER_START",
    "LIMITS",
    "Config",
    "ConfigError",
    "ConfigLimitWidened",
    "ConfigSettingFixed",
    "InvalidConfigValue",
    "UnknownConfigField",
    "config_error_to_string",
    "configure",
    "default",
    "get",
    "mark_started",
    "reset",
    "started",
]

#: Inclusive ranges for fields that need more than "positive".
#: OTP accepts any positive tick time, but below 1 s ticks flood a busy link
#: and above an hour a dead peer goes unnoticed for most of a day.
_RANGES: dict[str, tuple[float, float]] = {
    "net_ticktime": (1.0, 3600.0),
    "max_message_bytes": (1.0, 0xFFFFFFFF),
    # Past 10 ms a spin saves nothing a sleep would cost, and burns a core.
    "busy_wait": (0.0, 0.01),
}
#: Fields where 0 means "off" rather than an invalid time.
_MAY_BE_ZERO = frozenset({"busy_wait"})
_OVERFLOW = ("block", "drop")

#: Safety limits: once a node has started they may be lowered, never raised.
#: ``decode_limits`` is one too, compared field by field.
LIMITS = frozenset({
    "max_distribution_atoms",
    "health_parallelism",
    "max_message_bytes",
    "mailbox_maxsize",
    "max_payload_size_bytes",
    "max_decoded_list_elements",
    "decode_limits",
})
#: Read once when a connection is set up, for the connection's whole life: OTP
#: changes it on a running node only through a transition period, which
#: erldist does not implement, so after start it is refused rather than
#: applied to some connections and not others. ``tls`` is read once, when a
#: node starts: a change would not reach the running node, and would let code
#: that runs after start-up turn TLS off for the next one.
FIXED_AFTER_START = frozenset({"net_ticktime", "tls"})


@dataclass(frozen=True, slots=True)
class Config:
    """The settings erldist reads; times are seconds.

    Each field's type is its default's type: ``int`` fields take ints >= 1
    (``bool`` is refused), ``float`` fields take finite numbers > 0 (ints are
    converted; ``busy_wait`` also takes 0, "off").
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
    #: Seconds the event loop keeps polling, instead of sleeping, after an
    #: established connection read or wrote: a reply is then read as it lands,
    #: not after a thread wake-up (the BEAM's schedulers do the same, ``erl
    #: +sbwt``). Costs up to this much of a core after each burst; 0 turns it
    #: off. Read as each connection comes up.
    busy_wait: float = 0.0002
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
    # --- TLS distribution ---
    #: TLS distribution settings (OTP's ``-proto_dist inet_tls`` with its
    #: ``-ssl_dist_optfile``) of a node started without a ``tls`` argument;
    #: None (the default) is plain TCP. ``configure`` also takes a mapping of
    #: ``TlsSettings`` fields (a config file's table, say).
    tls: TlsSettings | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "decode_limits":
                if not isinstance(self.decode_limits, DecodeLimits):
                    raise InvalidConfigValue(
                        f.name, "decode_limits must be a DecodeLimits, not "
                                f"{type(self.decode_limits).__name__}")
            elif f.name == "tls":
                object.__setattr__(self, "tls", _tls(self.tls))
            elif f.name == "mailbox_overflow":
                if self.mailbox_overflow not in _OVERFLOW:
                    raise InvalidConfigValue(
                        f.name, f"mailbox_overflow must be one of {', '.join(_OVERFLOW)}, "
                                f"got {self.mailbox_overflow!r}")
            else:
                object.__setattr__(self, f.name, _checked(f.name, f.default,
                                                          getattr(self, f.name)))


def _tls(value: object) -> TlsSettings | None:
    """``value`` as ``TlsSettings`` (or None), or ``InvalidConfigValue`` naming ``tls``."""
    if value is None or isinstance(value, TlsSettings):
        return value
    if isinstance(value, Mapping):
        try:
            return TlsSettings.from_mapping(value)
        except TlsSettingsError as exc:
            raise InvalidConfigValue("tls", f"tls: {exc}") from None
    raise InvalidConfigValue("tls", "tls must be a TlsSettings, a mapping of its fields, or "
                                    f"None, not {type(value).__name__}")


def _checked(name: str, default: object, value: object) -> int | float:
    """``value`` as the field's type, or ``InvalidConfigValue`` naming the field."""

    def invalid(reason: str) -> InvalidConfigValue:
        return InvalidConfigValue(name, f"{name} {reason}")

    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"must be an int, not {type(value).__name__}")
        if value < 1:
            raise invalid(f"must be >= 1, got {value}")
        low, high = _RANGES.get(name, (1, math.inf))
        if not low <= value <= high:
            raise invalid(f"must be within {low:g}..{high:g}, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"must be a number of seconds, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        raise invalid("must be finite, got an int too large for a float") from None
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and name not in _MAY_BE_ZERO):
        least = ">= 0" if name in _MAY_BE_ZERO else "> 0"
        raise invalid(f"must be a finite number {least}, got {value!r}")
    low, high = _RANGES.get(name, (0.0, math.inf))
    if not low <= seconds <= high:
        raise invalid(f"must be within {low:g}..{high:g} seconds, got {value!r}")
    return seconds


_DEFAULT = Config()
_FIELDS = frozenset(f.name for f in fields(Config))
_lock = threading.Lock()
_current = _DEFAULT
_started = False


def configure(**changes: object) -> Config:
    """Change some settings; returns the new current ``Config``.

    All or nothing: if any key is unknown (``UnknownConfigField``), any value
    invalid (``InvalidConfigValue``), or, once a node has started, a limit
    would grow (``ConfigLimitWidened``) or a start-time setting would change
    (``ConfigSettingFixed``), the error names the field and the current
    config is untouched. This does not reset the distribution-atom budget:
    lowering ``max_distribution_atoms`` below what is already used refuses
    every further fresh name.
    """
    global _current
    unknown = tuple(sorted(changes.keys() - _FIELDS))
    if unknown:
        raise UnknownConfigField(unknown, tuple(sorted(_FIELDS)))
    with _lock:
        # replace() runs __post_init__, which validates and converts the values.
        new = replace(_current, **changes)  # type: ignore[arg-type]
        if _started:
            _check_after_start(_current, new, changes.keys())
        _current = new
        return _current


def _check_after_start(old: Config, new: Config, changed: Iterable[str]) -> None:
    for name in sorted(changed):
        before, after = getattr(old, name), getattr(new, name)
        if name in LIMITS and _wider(before, after):
            raise ConfigLimitWidened(name, before, after)
        if name in FIXED_AFTER_START and after != before:
            raise ConfigSettingFixed(name, before, after)


def _wider(before: object, after: object) -> bool:
    if isinstance(before, DecodeLimits) and isinstance(after, DecodeLimits):
        return any(getattr(after, f.name) > getattr(before, f.name) for f in fields(before))
    return bool(after > before)  # type: ignore[operator]


def mark_started() -> None:
    """Record that a node has started: from now on limits only tighten.

    ``Node.start`` calls this; it lasts for the life of the process (like the
    seed's write-once configuration), except through ``reset``.
    """
    global _started
    with _lock:
        _started = True


def started() -> bool:
    """Whether a node has started in this process (so limits only tighten)."""
    return _started


def get() -> Config:
    """The current settings (an immutable snapshot)."""
    return _current


def reset() -> Config:
    """Back to the defaults, and forget that a node started; returns the defaults.

    For tests only: it is the one way to widen a limit after start, which is
    exactly what running code must never do. It does not reset the
    distribution-atom budget either.
    """
    global _current, _started
    with _lock:
        _current = _DEFAULT
        _started = False
        return _current


def default() -> Config:
    """The documented defaults, whatever is current."""
    return _DEFAULT
