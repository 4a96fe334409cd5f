"""Every exception erldist raises, in one leaf module anyone may import.

Errors say whose fault they are: ``LocalProtocolError`` when the caller asked
for something illegal, ``RemoteProtocolError`` when the peer broke the
protocol. None of them ever carries a cookie.
"""

from __future__ import annotations

__all__ = [
    "AlreadyStarted",
    "CallError",
    "CallTargetDown",
    "CallTimeout",
    "ConnectAtomBudgetExceeded",
    "ConnectError",
    "ConnectFailed",
    "ConnectIgnored",
    "DecodeError",
    "EncodeError",
    "EpmdError",
    "ErldistError",
    "InvalidCookieFormat",
    "InvalidNodeFormat",
    "InvalidNodeName",
    "LocalProtocolError",
    "NameTaken",
    "NetworkError",
    "NoProcess",
    "NotRegistered",
    "ProcessError",
    "ProcessExited",
    "ProtocolError",
    "RemoteProtocolError",
    "StartAtomBudgetExceeded",
    "StartError",
    "StartFailed",
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


# --- processes -----------------------------------------------------------------------


class ProcessError(ErldistError):
    """A process operation that cannot be done."""


class ProcessExited(ProcessError):
    """The process has exited: ``receive`` and the other operations of a dead process.

    ``reason`` is its exit reason as a term (``normal``, ``killed``, ...).
    """

    def __init__(self, pid: object, reason: object) -> None:
        super().__init__(f"process {pid!r} has exited: {reason!r}")
        self.pid = pid
        self.reason = reason


class NameTaken(ProcessError):
    """``register`` with a name that another process holds (Erlang's ``badarg``)."""

    def __init__(self, name: str, node: str) -> None:
        super().__init__(f"the name {name!r} is already registered on {node}")
        self.name = name


class NotRegistered(ProcessError):
    """``unregister`` of a name that no process holds (Erlang's ``badarg``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no process is registered as {name!r}")
        self.name = name


class NoProcess(ProcessError):
    """The target process does not exist (Erlang's ``noproc``)."""

    def __init__(self, target: object) -> None:
        super().__init__(f"no process {target!r}")
        self.target = target


# --- calls ---------------------------------------------------------------------------


class CallError(ErldistError):
    """A ``call`` that got no reply."""


class CallTimeout(CallError, TimeoutError):
    """No reply within the call's timeout; the call left nothing behind."""

    def __init__(self, target: object, timeout: float) -> None:
        super().__init__(f"call to {target!r} got no reply within {timeout:g} s")
        self.target = target
        self.timeout = timeout


class CallTargetDown(CallError):
    """The target does not exist, exited during the call, or its node went away.

    ``reason`` is the exit reason as a term: ``noproc``, ``noconnection``, or the
    reason the target exited with.
    """

    def __init__(self, target: object, reason: object) -> None:
        super().__init__(f"call to {target!r} failed: target down ({reason!r})")
        self.target = target
        self.reason = reason


def start_error_to_string(err: StartError) -> str:
    """The seed's wording for a start error."""
    return err.to_string()


def connect_error_to_string(err: ConnectError) -> str:
    """The seed's wording for a connect error."""
    return err.to_string()
