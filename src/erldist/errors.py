"""Every exception erldist raises, in one leaf module anyone may import.

Errors say whose fault they are: ``LocalProtocolError`` when the caller asked
for something illegal, ``RemoteProtocolError`` when the peer broke the
protocol. None of them ever carries a cookie.
"""

from __future__ import annotations

import enum

__all__ = [
    "ActorInitFailed",
    "AlreadyStarted",
    "CallDecodeFailed",
    "CallEncodeFailed",
    "CallError",
    "CallPayloadTooLarge",
    "CallTargetDown",
    "CallTimeout",
    "CodecDecodeError",
    "CodecDefinitionError",
    "CodecEncodeError",
    "CodecError",
    "ConfigError",
    "ConfigLimitWidened",
    "ConfigSettingFixed",
    "ConnectAtomBudgetExceeded",
    "ConnectError",
    "ConnectFailed",
    "ConnectIgnored",
    "DecodeError",
    "DecodeFailed",
    "DecodeTimeout",
    "EncodeError",
    "EncodeFailed",
    "EpmdError",
    "ErldistError",
    "GlobalNameNotRegistered",
    "InsufficientData",
    "InvalidArgument",
    "InvalidBinary",
    "InvalidConfigValue",
    "InvalidCookieFormat",
    "InvalidNodeFormat",
    "InvalidNodeName",
    "InvalidValue",
    "ListTooLong",
    "LocalProtocolError",
    "LookupInvalidPollInterval",
    "LookupInvalidTimeout",
    "LookupNodeDown",
    "LookupNotFound",
    "NameTaken",
    "NetworkError",
    "NoProcess",
    "NotRegistered",
    "PayloadTooLarge",
    "ProcessError",
    "ProcessExited",
    "ProtocolError",
    "RegistryAlreadyExists",
    "RegistryError",
    "RegistryInvalidArgument",
    "RegistryNotFound",
    "RegistryNotOwned",
    "RemoteProtocolError",
    "RpcError",
    "RpcExit",
    "RpcKilled",
    "RpcNodeDown",
    "RpcRaised",
    "RpcRefused",
    "RpcThrow",
    "RpcTimeout",
    "RpcUndefined",
    "SendEncodeFailed",
    "ServerStartFailed",
    "StartAtomBudgetExceeded",
    "StartError",
    "StartFailed",
    "TagMismatch",
    "TlsError",
    "TlsFailure",
    "TlsSettingsError",
    "TypeMismatch",
    "UnknownConfigField",
    "ValueTooLarge",
    "VersionMismatch",
    "WrongThread",
    "config_error_to_string",
    "connect_error_to_string",
    "start_error_to_string",
]

ATOM_BUDGET_TEXT = "Atom budget exceeded (raise config.max_distribution_atoms)"


class ErldistError(Exception):
    """Base of every erldist exception."""


class InvalidArgument(ErldistError, ValueError):
    """A call's argument is outside what the call accepts (the caller's mistake)."""


class WrongThread(ErldistError, RuntimeError):
    """A blocking ``erldist.cluster`` function was called on the loop thread it waits on."""


# --- terms ---------------------------------------------------------------------------


class DecodeError(ErldistError, ValueError):
    """Bytes that are not a valid (or an acceptably sized) external term."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"cannot decode term at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class EncodeError(ErldistError, ValueError):
    """A Python value that has no external term form."""


# --- payload codecs (erldist.codec, the Gleam library distribute's wire) -------------


class CodecError(ErldistError, ValueError):
    """A payload codec failed; ``str()`` is distribute's own rendering of the error.

    ``message`` is the variant's text argument (empty for variants without one).
    """

    prefix = ""

    def __init__(self, message: str = "") -> None:
        self.message = message
        super().__init__(self.to_string())

    def to_string(self) -> str:
        return f"{self.prefix}: {self.message}"


class CodecEncodeError(CodecError):
    """A value could not be encoded (distribute's ``EncodeError``)."""


class InvalidValue(CodecEncodeError):
    """The value is not one the codec can carry (wrong Python type, NaN, lone surrogate)."""

    prefix = "Invalid value"


class EncodeFailed(CodecEncodeError):
    """No case of a variant codec matched the value."""

    prefix = "Encode failed"


class ValueTooLarge(CodecEncodeError):
    """The value exceeds a fixed range: 64-bit int, 32-bit length or version, list cap."""

    prefix = "Value too large"


class CodecDecodeError(CodecError):
    """Bytes that are not a valid payload for the codec (distribute's ``DecodeError``)."""


class InvalidBinary(CodecDecodeError):
    """Malformed bytes: a missing prefix, a bad tag byte, invalid UTF-8, trailing bytes."""

    prefix = "Invalid binary"


class TypeMismatch(CodecDecodeError):
    """Kept for parity with distribute; no codec here raises it."""

    prefix = "Type mismatch"


class DecodeFailed(CodecDecodeError):
    """The payload is well framed but means nothing: a subject that is not a subject."""

    prefix = "Decode failed"


class InsufficientData(CodecDecodeError):
    """A declared length runs past the end of the bytes."""

    prefix = "Insufficient data"


class DecodeTimeout(CodecDecodeError, TimeoutError):
    """Nothing arrived before a receive deadline (also a ``TimeoutError``)."""

    def to_string(self) -> str:
        return "Decode timeout"


class TagMismatch(CodecDecodeError):
    """A tagged frame's tag, or a variant's id, is not the one(s) expected."""

    def __init__(self, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__()

    def to_string(self) -> str:
        return f"Tag mismatch: expected '{self.expected}', got '{self.got}'"


class VersionMismatch(CodecDecodeError):
    """A tagged frame's version is not exactly the expected one."""

    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__()

    def to_string(self) -> str:
        return f"Version mismatch: expected {self.expected}, got {self.got}"


class PayloadTooLarge(CodecDecodeError, CodecEncodeError):
    """A whole payload is over ``config.max_payload_size_bytes``.

    The cap is checked by the receiver before decoding and by the sender after
    encoding, so this is both a decode and an encode error.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__()

    def to_string(self) -> str:
        return f"Payload too large: {self.size} bytes"


class ListTooLong(CodecDecodeError):
    """A list declares more elements than ``config.max_decoded_list_elements`` allows."""

    def __init__(self, count: int, cap: int) -> None:
        self.count = count
        self.cap = cap
        super().__init__()

    def to_string(self) -> str:
        return f"List too long: declared {self.count} elements, cap is {self.cap}"


class CodecDefinitionError(ErldistError, ValueError):
    """A codec was built wrongly (a variant id outside 0..255, a duplicate id, no cases)."""


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


class TlsFailure(enum.Enum):
    """Why a TLS distribution connection was refused (the value is what telemetry reports)."""

    UNTRUSTED_CERTIFICATE = "untrusted_certificate"
    CERTIFICATE_EXPIRED = "certificate_expired"
    WRONG_HOST = "wrong_host"
    NO_PEER_CERTIFICATE = "no_peer_certificate"
    PROTOCOL_MISMATCH = "protocol_mismatch"
    #: This node speaks TLS; the peer answered as plain TCP (or not at all).
    PEER_NOT_TLS = "peer_not_tls"
    #: This node speaks plain TCP; the peer opened with TLS.
    PEER_REQUIRES_TLS = "peer_requires_tls"
    #: Anything else the TLS layer refused; ``detail`` names it.
    HANDSHAKE_FAILED = "handshake_failed"


class TlsError(ConnectFailed):
    """A TLS distribution connection was refused; ``failure`` says why.

    ``by_peer`` is True when the peer refused us (its TLS alert named the
    cause, e.g. it does not trust our certificate), False when this node
    refused the peer. The message names the cause, never a key or the cookie.
    """

    def __init__(self, failure: TlsFailure, peer: str, detail: str, *,
                 by_peer: bool = False) -> None:
        who = "refused by the peer" if by_peer else "refused"
        self.detail = f"TLS {who}: {failure.value} ({detail})"
        ConnectError.__init__(self, f"{self.detail} [{peer}]")
        self.failure = failure
        self.peer = peer
        self.by_peer = by_peer


class TlsSettingsError(ErldistError, ValueError):
    """TLS settings that cannot work: a missing file, a bad key, an unknown version."""


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


class GlobalNameNotRegistered(ProcessError):
    """``global:send`` to a name no process holds (Erlang exits ``{badarg, {Name, Msg}}``)."""

    def __init__(self, name: object) -> None:
        super().__init__(f"no process is registered globally as {name!r}")
        self.name = name


# --- the registry (distribute/registry) -----------------------------------------------


class RegistryError(ErldistError):
    """A registry operation (``erldist.registry``, the seed's ``distribute/registry``)."""


class RegistryInvalidArgument(RegistryError, ValueError):
    """A name breaking the rules: 1..255 bytes of ``[A-Za-z0-9._-]``."""


class RegistryAlreadyExists(RegistryError):
    """The name is held by another process (``global`` said ``no``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the name {name!r} is already registered")
        self.name = name


class RegistryNotFound(RegistryError):
    """No process holds the name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no process is registered as {name!r}")
        self.name = name


class RegistryNotOwned(RegistryError):
    """``unregister`` of a name held by a process of another node."""

    def __init__(self, name: str, owner_node: str) -> None:
        super().__init__(f"the name {name!r} is held on {owner_node}, not on this node")
        self.name = name
        self.owner_node = owner_node


class LookupInvalidTimeout(RegistryError, ValueError):
    """A polling lookup's timeout must be positive."""

    def __init__(self, value: object) -> None:
        super().__init__(f"lookup timeout must be positive, got {value!r}")
        self.value = value


class LookupInvalidPollInterval(RegistryError, ValueError):
    """A polling lookup's poll interval must be positive."""

    def __init__(self, value: object) -> None:
        super().__init__(f"lookup poll interval must be positive, got {value!r}")
        self.value = value


class LookupNotFound(RegistryError, TimeoutError):
    """The name did not appear within the lookup's timeout."""

    def __init__(self, name: str, timeout_ms: int) -> None:
        super().__init__(f"{name!r} was not registered within {timeout_ms} ms")
        self.name = name


class LookupNodeDown(RegistryError):
    """The node expected to host the name went down while the lookup waited."""

    def __init__(self, name: str, node: str) -> None:
        super().__init__(f"{node} went down while waiting for {name!r}")
        self.name = name
        self.node = node


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


# --- distribute messaging (erldist.gleam: subjects, calls, actors) --------------------


class SendEncodeFailed(ErldistError, ValueError):
    """A message for a subject (a send or a reply) could not be encoded: nothing was sent.

    ``error`` is the codec's ``CodecEncodeError`` (also the ``__cause__``).
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(f"send encode failed: {error}")
        self.error = error


class CallEncodeFailed(CallError):
    """A call's request could not be encoded: nothing was sent. ``error`` as above."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"call request encode failed: {error}")
        self.error = error


class CallPayloadTooLarge(CallError):
    """A call's request or response is over ``config.max_payload_size_bytes``."""

    def __init__(self, size: int) -> None:
        super().__init__(f"call payload too large: {size} bytes")
        self.size = size


class CallDecodeFailed(CallError):
    """A call's response did not decode. ``error`` is the codec's ``CodecDecodeError``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"call response decode failed: {error}")
        self.error = error


class ActorInitFailed(ErldistError):
    """An actor or a pool could not be started (distribute's ``InitFailed``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"actor init failed: {reason}")
        self.reason = reason


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


class ServerStartFailed(ProcessError):
    """A Python server's ``init`` raised (``gen_server:start``'s ``{error, Reason}``).

    ``reason`` is the exit reason the server ended with.
    """

    def __init__(self, reason: object) -> None:
        super().__init__(f"server init failed: {reason!r}")
        self.reason = reason


# --- rpc -----------------------------------------------------------------------------


class RpcError(ErldistError):
    """An ``rpc`` from Python that did not return a value."""


class RpcTimeout(RpcError, TimeoutError):
    """No result within the timeout (``{erpc, timeout}``); the remote work was abandoned."""

    def __init__(self, node: str, mfa: str, timeout: float) -> None:
        super().__init__(f"rpc {mfa} on {node} got no result within {timeout:g} s")
        self.node = node
        self.timeout = timeout


class RpcNodeDown(RpcError):
    """The node could not be reached or went away (``{erpc, noconnection}``)."""

    def __init__(self, node: str, mfa: str) -> None:
        super().__init__(f"rpc {mfa}: node {node} is down or unreachable")
        self.node = node


class RpcRefused(RpcError):
    """The node refused the request (``{erpc, Reason}``: ``notsup``, ``badarg``,
    ``system_limit``); ``reason`` is that term."""

    def __init__(self, node: str, mfa: str, reason: object) -> None:
        super().__init__(f"rpc {mfa} refused by {node}: {reason!r}")
        self.node = node
        self.reason = reason


class RpcThrow(RpcError):
    """The function threw ``value`` (``throw(Value)``).

    Raised in an exposed Python function, it answers the Erlang caller with that throw.
    """

    def __init__(self, value: object) -> None:
        super().__init__(f"rpc threw {value!r}")
        self.value = value


class RpcExit(RpcError):
    """The function called ``exit(reason)`` (erpc's ``{exception, Reason}`` exit).

    Raised in an exposed Python function, it answers the Erlang caller with that exit.
    """

    def __init__(self, reason: object) -> None:
        super().__init__(f"rpc exited: {reason!r}")
        self.reason = reason


class RpcRaised(RpcError):
    """The function raised an error (erpc's ``{exception, Reason, Stack}``)."""

    def __init__(self, reason: object, stack: object) -> None:
        super().__init__(f"rpc raised an error: {reason!r}")
        self.reason = reason
        self.stack = stack


class RpcUndefined(RpcRaised):
    """The function does not exist there (``undef``), or, on a Python node, is not
    exposed under that name and arity."""


class RpcKilled(RpcError):
    """The process running the function was ended by an exit signal
    (erpc's ``{signal, Reason}``)."""

    def __init__(self, reason: object) -> None:
        super().__init__(f"rpc process ended by a signal: {reason!r}")
        self.reason = reason


def start_error_to_string(err: StartError) -> str:
    """The seed's wording for a start error."""
    return err.to_string()


def connect_error_to_string(err: ConnectError) -> str:
    """The seed's wording for a connect error."""
    return err.to_string()
