"""Every exception erldist raises, in one leaf module anyone may import.

Errors say whose fault they are: ``LocalProtocolError`` when the caller asked
for something illegal, ``RemoteProtocolError`` when the peer broke the
protocol. None of them ever carries a cookie.
"""

from __future__ import annotations

__all__ = [
    "AlreadyStarted",
    "ConfigError",
    "ConfigLimitWidened",
    "ConfigSettingFixed",
    "ConnectAtomBudgetExceeded",
    "ConnectError",
    "ConnectFailed",
    "ConnectIgnored",
    "DecodeError",
    "EncodeError",
    "EpmdError",
    "ErldistError",
    "InvalidConfigValue",
    "InvalidCookieFormat",
    "InvalidNodeFormat",
    "InvalidNodeName",
    "LocalProtocolError",
    "NetworkError",
    "ProtocolError",
    "RemoteProtocolError",
    "StartAtomBudgetExceeded",
    "StartError",
    "StartFailed",
    "UnknownConfigField",
    "config_error_to_string",
    "connect_error_to_string",
    "start_error_to_string",
]

ATOM_BUDGET_TEXT = "Atom budget exceeded (raise config.max_distribution_atoms)"


class ErldistError(Exception):
    """Base of every erldist exception."""


# --- terms ---------------------------------------------------------------------------


class DecodeError(ErldistError, ValueError):
    """Bytes that are not a valid (or an acceptably sized) external term."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"cannot decode term at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class EncodeError(ErldistError, ValueError):
    """A Python value that has no external term form."""


# --- protocol ------------------------------------------------------------------------


class ProtocolError(ErldistError):
    """The distribution or EPMD protocol was broken."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class EpmdError(ErldistError):
    """Talking to the port mapper failed; ``kind`` names how."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"EPMD {kind}: {detail}")
        self.kind = kind
        self.detail = detail


# --- the seed's start_node errors ----------------------------------------------------


class StartError(ErldistError):
    """``start_node`` could not make this process a distributed node."""

    def to_string(self) -> str:
        return str(self)


class _ReasonStartError(StartError):
    prefix = ""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{self.prefix}: {reason}")
        self.reason = reason


class InvalidNodeName(_ReasonStartError):
    """The name is not ``<name>@<host>`` in the allowed charset and length."""

    prefix = "Invalid node name"


class InvalidCookieFormat(_ReasonStartError):
    """The cookie is not ``[a-zA-Z0-9_-]+`` of 1..255 bytes."""

    prefix = "Invalid cookie format"


class NetworkError(_ReasonStartError):
    """Listening, EPMD or name resolution failed (port in use, refused, timed out)."""

    prefix = "Network error"


class StartFailed(_ReasonStartError):
    """Starting failed for a reason that is not the network's."""

    prefix = "Node start failed"


class AlreadyStarted(StartError):
    """This process already runs the node ``start_node`` would start."""

    def __init__(self) -> None:
        super().__init__("Node is already started")


class StartAtomBudgetExceeded(StartError):
    """Interning the name or cookie would exceed ``max_distribution_atoms``."""

    def __init__(self) -> None:
        super().__init__(ATOM_BUDGET_TEXT)


# --- the seed's connect errors -------------------------------------------------------


class ConnectError(ErldistError):
    """``connect`` did not produce a connection."""

    def to_string(self) -> str:
        return str(self)


class ConnectFailed(ConnectError):
    """The peer was unreachable, refused, or did not answer.

    As in the seed there is no "not found" variant: at this layer a node that
    does not exist and one that cannot be reached look the same. ``detail``
    says what was observed, for logs.
    """

    def __init__(self, detail: str = "") -> None:
        super().__init__("Connect failed (peer unreachable or refused)")
        self.detail = detail


class ConnectIgnored(ConnectError):
    """The local node is not distributed, so no connection was attempted."""

    def __init__(self) -> None:
        super().__init__("Connect ignored (local node not distributed)")


class InvalidNodeFormat(ConnectError):
    """The node name failed format validation."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid node format: {reason}")
        self.reason = reason


class ConnectAtomBudgetExceeded(ConnectError):
    """A fresh node name would exceed ``max_distribution_atoms``."""

    def __init__(self) -> None:
        super().__init__(ATOM_BUDGET_TEXT)


# --- configuration -------------------------------------------------------------------


class ConfigError(ErldistError, ValueError):
    """``configure`` refused a change; nothing was changed. ``field`` names the setting."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(text)
        self.field = field

    def to_string(self) -> str:
        return str(self)


class UnknownConfigField(ConfigError):
    """A setting that does not exist; ``fields`` lists every unknown one."""

    def __init__(self, fields: tuple[str, ...], known: tuple[str, ...]) -> None:
        super().__init__(
            fields[0],
            f"Unknown config field: {', '.join(fields)} (known: {', '.join(known)})",
        )
        self.fields = fields


class InvalidConfigValue(ConfigError):
    """A value the setting cannot take (wrong type, out of range)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, f"Invalid config value: {reason}")
        self.reason = reason


class ConfigLimitWidened(ConfigError):
    """A safety limit asked to grow after a node started: limits only tighten then."""

    def __init__(self, field: str, current: object, requested: object) -> None:
        super().__init__(
            field,
            f"Config limit cannot be widened after start: {field} is {current}, "
            f"asked for {requested} (a limit may only be tightened once a node has started)",
        )
        self.current = current
        self.requested = requested


class ConfigSettingFixed(ConfigError):
    """A setting that only takes effect when a node starts, changed after one did."""

    def __init__(self, field: str, current: object, requested: object) -> None:
        super().__init__(
            field,
            f"Config setting is fixed after start: {field} is {current}, asked for "
            f"{requested} (it is read when a node starts and cannot change afterwards)",
        )
        self.current = current
        self.requested = requested


def config_error_to_string(err: ConfigError) -> str:
    """The wording for a refused configuration change."""
    return err.to_string()


def start_error_to_string(err: StartError) -> str:
    """The seed's wording for a start error."""
    return err.to_string()


def connect_error_to_string(err: ConnectError) -> str:
    """The seed's wording for a connect error."""
    return err.to_string()
