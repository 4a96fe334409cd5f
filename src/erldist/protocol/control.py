"""Control messages: the ``{Op, ...}`` tuples of the connected phase, as dataclasses.

Every op OTP 23-28 can send (1-4, 6-8, 12, 13, 16, 18-37) has a small frozen
dataclass whose fields follow the tuple's order, with the payload term (the
message, exit reason or argument list) as its last field where the op has
one. ``parse`` checks a received tuple's shape and element types, so code
above this layer can trust ``msg.to_pid`` to be a ``Pid``; ``to_terms`` goes
the other way. The helpers at the end pick the op a connection's negotiated
flags call for.

The ``Unused`` element of SEND, SEND_TT, REG_SEND and REG_SEND_TT is kept (as
the trailing ``unused`` field, default ``''`` like modern OTP sends) so a
message survives a round trip unchanged.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, ClassVar, Final

from erldist.errors import LocalProtocolError, RemoteProtocolError
from erldist.protocol.flags import DFlag
from erldist.protocol.framing import NO_PAYLOAD
from erldist.term.types import Atom, Pid, Reference, Term

__all__ = [
    "ALTACT_ALIAS",
    "ALTACT_EXIT",
    "ALTACT_NAME",
    "ALTACT_PRIO",
    "ALTACT_TOKEN",
    "SPAWN_REPLY_LINK",
    "SPAWN_REPLY_MONITOR",
    "UNUSED",
    "AliasSend",
    "AliasSendTT",
    "AltactSigSend",
    "ControlMessage",
    "DemonitorP",
    "Exit",
    "Exit2",
    "Exit2TT",
    "ExitTT",
    "GroupLeader",
    "Link",
    "MonitorP",
    "MonitorPExit",
    "PayloadExit",
    "PayloadExit2",
    "PayloadExit2TT",
    "PayloadExitTT",
    "PayloadMonitorPExit",
    "RegSend",
    "RegSendTT",
    "Send",
    "SendSender",
    "SendSenderTT",
    "SendTT",
    "SpawnReply",
    "SpawnReplyTT",
    "SpawnRequest",
    "SpawnRequestTT",
    "Unlink",
    "UnlinkId",
    "UnlinkIdAck",
    "exit_signal",
    "monitor_exit",
    "parse",
    "reg_send",
    "send_to_pid",
    "to_terms",
]

#: What modern OTP puts in the ``Unused`` slots; receivers ignore it.
UNUSED: Final = Atom("")

#: SPAWN_REPLY flags: what the spawning node set up for the requester.
SPAWN_REPLY_LINK: Final = 1
SPAWN_REPLY_MONITOR: Final = 2

#: ALTACT_SIG_SEND flags (OTP 28, ``ERTS_DOP_ALTACT_SIG_FLG_*``).
ALTACT_PRIO: Final = 1
ALTACT_TOKEN: Final = 2
ALTACT_ALIAS: Final = 4
ALTACT_NAME: Final = 8
ALTACT_EXIT: Final = 16

_Check = Callable[[Any], bool]


def _any(_value: Any) -> bool:
    return True


def _pid(value: Any) -> bool:
    return isinstance(value, Pid)


def _proc(value: Any) -> bool:
    """A monitor target: a pid, or the bare registered name."""
    return isinstance(value, Pid | Atom)


def _ref(value: Any) -> bool:
    return isinstance(value, Reference)


def _atom(value: Any) -> bool:
    return isinstance(value, Atom)


def _uint(value: Any) -> bool:
    return type(value) is int and value >= 0


def _list(value: Any) -> bool:
    return isinstance(value, list)


def _mfa(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 3
        and _atom(value[0])
        and _atom(value[1])
        and _uint(value[2])
    )


class _Brief(reprlib.Repr):
    """A short ``repr`` for error messages that cannot fail on what a peer sends.

    Plain ``repr`` of an integer past ~4300 digits raises ``ValueError``
    (Python's int-to-str limit), and a 4 KiB big integer is a valid term.
    """

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            return f"<integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_brief = _Brief()
_brief.maxstring = _brief.maxother = 60


def _malformed(op_name: str, op: int, detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"malformed {op_name} ({op}) control message: {detail}")


class ControlMessage:
    """Base of every control message; ``op`` and ``op_name`` are OTP's number and name.

    ``_wire`` lists the tuple elements after the op code (field name and type
    check) and ``_payload`` the field carried as the second term, so parsing
    and encoding are written once for all ops.
    """

    __slots__ = ()

    op: ClassVar[int]
    op_name: ClassVar[str]
    _wire: ClassVar[tuple[tuple[str, _Check], ...]]
    _payload: ClassVar[tuple[str, _Check] | None] = None

    @classmethod
    def _from_terms(cls, control: tuple[Any, ...], payload: Any) -> ControlMessage:
        if len(control) != 1 + len(cls._wire):
            raise _malformed(
                cls.op_name, cls.op, f"{len(control)} elements, expected {1 + len(cls._wire)}"
            )
        for (name, check), value in zip(cls._wire, control[1:], strict=True):
            if not check(value):
                raise _malformed(cls.op_name, cls.op, f"bad {name} {_brief.repr(value)}")
        args = control[1:]
        if cls._payload is None:
            if payload is not NO_PAYLOAD:
                raise _malformed(cls.op_name, cls.op, "unexpected payload term")
        else:
            name, check = cls._payload
            if payload is NO_PAYLOAD:
                raise _malformed(cls.op_name, cls.op, f"no {name} term")
            if not check(payload):
                raise _malformed(cls.op_name, cls.op, f"bad {name} {_brief.repr(payload)}")
            args += (payload,)
        if cls in _POSITIONAL:
            return cls(*args)
        names = [name for name, _ in cls._wire]
        if cls._payload is not None:
            names.append(cls._payload[0])
        return cls(**dict(zip(names, args, strict=True)))

    def _to_terms(self) -> tuple[tuple[Any, ...], Any]:
        kind = type(self)
        get = _CONTROL_GETTERS.get(kind)
        if get is None:
            get = _CONTROL_GETTERS[kind] = attrgetter("op", *(n for n, _ in self._wire))
        if self._payload is None:
            return get(self), NO_PAYLOAD
        return get(self), getattr(self, self._payload[0])


#: Per op class: ``op`` and the wire elements read in one C call (``_to_terms``).
_CONTROL_GETTERS: dict[type, Callable[[Any], Any]] = {}


_MESSAGE: Final = ("message", _any)
_REASON: Final = ("reason", _any)
_UNUSED: Final = ("unused", _any)
_TOKEN: Final = ("token", _any)
_FROM_PID: Final = ("from_pid", _pid)
_TO_PID: Final = ("to_pid", _pid)


@dataclass(frozen=True, slots=True)
class Link(ControlMessage):
    """LINK: ``from_pid`` links to ``to_pid`` (also how the new link protocol links)."""

    op: ClassVar[int] = 1
    op_name: ClassVar[str] = "LINK"
    _wire: ClassVar = (_FROM_PID, _TO_PID)

    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class Send(ControlMessage):
    """SEND: a message to a pid from an unnamed sender (peers without SEND_SENDER)."""

    op: ClassVar[int] = 2
    op_name: ClassVar[str] = "SEND"
    _wire: ClassVar = (_UNUSED, _TO_PID)
    _payload: ClassVar = _MESSAGE

    to_pid: Pid
    message: Term
    unused: Term = UNUSED


@dataclass(frozen=True, slots=True)
class Exit(ControlMessage):
    """EXIT: a link broke because ``from_pid`` exited (peers without EXIT_PAYLOAD)."""

    op: ClassVar[int] = 3
    op_name: ClassVar[str] = "EXIT"
    _wire: ClassVar = (_FROM_PID, _TO_PID, _REASON)

    from_pid: Pid
    to_pid: Pid
    reason: Term


@dataclass(frozen=True, slots=True)
class Unlink(ControlMessage):
    """UNLINK: the old link protocol's unlink (not sent by OTP 26+, still decoded)."""

    op: ClassVar[int] = 4
    op_name: ClassVar[str] = "UNLINK"
    _wire: ClassVar = (_FROM_PID, _TO_PID)

    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class RegSend(ControlMessage):
    """REG_SEND: a message to the process registered as ``to_name`` on the receiver."""

    op: ClassVar[int] = 6
    op_name: ClassVar[str] = "REG_SEND"
    _wire: ClassVar = (_FROM_PID, _UNUSED, ("to_name", _atom))
    _payload: ClassVar = _MESSAGE

    from_pid: Pid
    to_name: Atom
    message: Term
    unused: Term = UNUSED


@dataclass(frozen=True, slots=True)
class GroupLeader(ControlMessage):
    """GROUP_LEADER: make ``from_pid`` the group leader of ``to_pid``."""

    op: ClassVar[int] = 7
    op_name: ClassVar[str] = "GROUP_LEADER"
    _wire: ClassVar = (_FROM_PID, _TO_PID)

    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class Exit2(ControlMessage):
    """EXIT2: ``exit(ToPid, Reason)`` (peers without EXIT_PAYLOAD)."""

    op: ClassVar[int] = 8
    op_name: ClassVar[str] = "EXIT2"
    _wire: ClassVar = (_FROM_PID, _TO_PID, _REASON)

    from_pid: Pid
    to_pid: Pid
    reason: Term


@dataclass(frozen=True, slots=True)
class SendTT(ControlMessage):
    """SEND_TT: SEND with a seq_trace token."""

    op: ClassVar[int] = 12
    op_name: ClassVar[str] = "SEND_TT"
    _wire: ClassVar = (_UNUSED, _TO_PID, _TOKEN)
    _payload: ClassVar = _MESSAGE

    to_pid: Pid
    token: Term
    message: Term
    unused: Term = UNUSED


@dataclass(frozen=True, slots=True)
class ExitTT(ControlMessage):
    """EXIT_TT: EXIT with a seq_trace token."""

    op: ClassVar[int] = 13
    op_name: ClassVar[str] = "EXIT_TT"
    _wire: ClassVar = (_FROM_PID, _TO_PID, _TOKEN, _REASON)

    from_pid: Pid
    to_pid: Pid
    token: Term
    reason: Term


@dataclass(frozen=True, slots=True)
class RegSendTT(ControlMessage):
    """REG_SEND_TT: REG_SEND with a seq_trace token."""

    op: ClassVar[int] = 16
    op_name: ClassVar[str] = "REG_SEND_TT"
    _wire: ClassVar = (_FROM_PID, _UNUSED, ("to_name", _atom), _TOKEN)
    _payload: ClassVar = _MESSAGE

    from_pid: Pid
    to_name: Atom
    token: Term
    message: Term
    unused: Term = UNUSED


@dataclass(frozen=True, slots=True)
class Exit2TT(ControlMessage):
    """EXIT2_TT: EXIT2 with a seq_trace token."""

    op: ClassVar[int] = 18
    op_name: ClassVar[str] = "EXIT2_TT"
    _wire: ClassVar = (_FROM_PID, _TO_PID, _TOKEN, _REASON)

    from_pid: Pid
    to_pid: Pid
    token: Term
    reason: Term


@dataclass(frozen=True, slots=True)
class MonitorP(ControlMessage):
    """MONITOR_P: ``from_pid`` monitors ``to_proc`` (a pid, or a bare registered name)."""

    op: ClassVar[int] = 19
    op_name: ClassVar[str] = "MONITOR_P"
    _wire: ClassVar = (_FROM_PID, ("to_proc", _proc), ("ref", _ref))

    from_pid: Pid
    to_proc: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True)
class DemonitorP(ControlMessage):
    """DEMONITOR_P: drop the monitor ``ref``."""

    op: ClassVar[int] = 20
    op_name: ClassVar[str] = "DEMONITOR_P"
    _wire: ClassVar = (_FROM_PID, ("to_proc", _proc), ("ref", _ref))

    from_pid: Pid
    to_proc: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True)
class MonitorPExit(ControlMessage):
    """MONITOR_P_EXIT: the monitored ``from_proc`` is gone (peers without EXIT_PAYLOAD)."""

    op: ClassVar[int] = 21
    op_name: ClassVar[str] = "MONITOR_P_EXIT"
    _wire: ClassVar = (("from_proc", _proc), _TO_PID, ("ref", _ref), _REASON)

    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference
    reason: Term


@dataclass(frozen=True, slots=True)
class SendSender(ControlMessage):
    """SEND_SENDER: a message to a pid naming its sender (with SEND_SENDER)."""

    op: ClassVar[int] = 22
    op_name: ClassVar[str] = "SEND_SENDER"
    _wire: ClassVar = (_FROM_PID, _TO_PID)
    _payload: ClassVar = _MESSAGE

    from_pid: Pid
    to_pid: Pid
    message: Term


@dataclass(frozen=True, slots=True)
class SendSenderTT(ControlMessage):
    """SEND_SENDER_TT: SEND_SENDER with a seq_trace token."""

    op: ClassVar[int] = 23
    op_name: ClassVar[str] = "SEND_SENDER_TT"
    _wire: ClassVar = (_FROM_PID, _TO_PID, _TOKEN)
    _payload: ClassVar = _MESSAGE

    from_pid: Pid
    to_pid: Pid
    token: Term
    message: Term


@dataclass(frozen=True, slots=True)
class PayloadExit(ControlMessage):
    """PAYLOAD_EXIT: EXIT with the reason as a payload term (with EXIT_PAYLOAD)."""

    op: ClassVar[int] = 24
    op_name: ClassVar[str] = "PAYLOAD_EXIT"
    _wire: ClassVar = (_FROM_PID, _TO_PID)
    _payload: ClassVar = _REASON

    from_pid: Pid
    to_pid: Pid
    reason: Term


@dataclass(frozen=True, slots=True)
class PayloadExitTT(ControlMessage):
    """PAYLOAD_EXIT_TT: PAYLOAD_EXIT with a seq_trace token."""

    op: ClassVar[int] = 25
    op_name: ClassVar[str] = "PAYLOAD_EXIT_TT"
    _wire: ClassVar = (_FROM_PID, _TO_PID, _TOKEN)
    _payload: ClassVar = _REASON

    from_pid: Pid
    to_pid: Pid
    token: Term
    reason: Term


@dataclass(frozen=True, slots=True)
class PayloadExit2(ControlMessage):
    """PAYLOAD_EXIT2: EXIT2 with the reason as a payload term (with EXIT_PAYLOAD)."""

    op: ClassVar[int] = 26
    op_name: ClassVar[str] = "PAYLOAD_EXIT2"
    _wire: ClassVar = (_FROM_PID, _TO_PID)
    _payload: ClassVar = _REASON

    from_pid: Pid
    to_pid: Pid
    reason: Term


@dataclass(frozen=True, slots=True)
class PayloadExit2TT(ControlMessage):
    """PAYLOAD_EXIT2_TT: PAYLOAD_EXIT2 with a seq_trace token."""

    op: ClassVar[int] = 27
    op_name: ClassVar[str] = "PAYLOAD_EXIT2_TT"
    _wire: ClassVar = (_FROM_PID, _TO_PID, _TOKEN)
    _payload: ClassVar = _REASON

    from_pid: Pid
    to_pid: Pid
    token: Term
    reason: Term


@dataclass(frozen=True, slots=True)
class PayloadMonitorPExit(ControlMessage):
    """PAYLOAD_MONITOR_P_EXIT: MONITOR_P_EXIT with the reason as a payload term."""

    op: ClassVar[int] = 28
    op_name: ClassVar[str] = "PAYLOAD_MONITOR_P_EXIT"
    _wire: ClassVar = (("from_proc", _proc), _TO_PID, ("ref", _ref))
    _payload: ClassVar = _REASON

    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference
    reason: Term


@dataclass(frozen=True, slots=True)
class SpawnRequest(ControlMessage):
    """SPAWN_REQUEST: spawn ``mfa`` (``(Module, Function, Arity)``) with ``args``.

    ``req_id`` doubles as the monitor reference when ``opts`` has ``monitor``.
    """

    op: ClassVar[int] = 29
    op_name: ClassVar[str] = "SPAWN_REQUEST"
    _wire: ClassVar = (
        ("req_id", _ref), _FROM_PID, ("group_leader", _pid), ("mfa", _mfa), ("opts", _list),
    )
    _payload: ClassVar = ("args", _list)

    req_id: Reference
    from_pid: Pid
    group_leader: Pid
    mfa: tuple[Atom, Atom, int]
    opts: list[Term]
    args: list[Term]


@dataclass(frozen=True, slots=True)
class SpawnRequestTT(ControlMessage):
    """SPAWN_REQUEST_TT: SPAWN_REQUEST with a seq_trace token."""

    op: ClassVar[int] = 30
    op_name: ClassVar[str] = "SPAWN_REQUEST_TT"
    _wire: ClassVar = (
        ("req_id", _ref), _FROM_PID, ("group_leader", _pid), ("mfa", _mfa), ("opts", _list),
        _TOKEN,
    )
    _payload: ClassVar = ("args", _list)

    req_id: Reference
    from_pid: Pid
    group_leader: Pid
    mfa: tuple[Atom, Atom, int]
    opts: list[Term]
    token: Term
    args: list[Term]


@dataclass(frozen=True, slots=True)
class SpawnReply(ControlMessage):
    """SPAWN_REPLY: ``result`` is the new pid, or an error atom such as ``notsup``.

    ``flags`` holds ``SPAWN_REPLY_LINK``/``SPAWN_REPLY_MONITOR`` for what was set up.
    """

    op: ClassVar[int] = 31
    op_name: ClassVar[str] = "SPAWN_REPLY"
    _wire: ClassVar = (("req_id", _ref), _TO_PID, ("flags", _uint), ("result", _proc))

    req_id: Reference
    to_pid: Pid
    flags: int
    result: Pid | Atom


@dataclass(frozen=True, slots=True)
class SpawnReplyTT(ControlMessage):
    """SPAWN_REPLY_TT: SPAWN_REPLY with a seq_trace token."""

    op: ClassVar[int] = 32
    op_name: ClassVar[str] = "SPAWN_REPLY_TT"
    _wire: ClassVar = (
        ("req_id", _ref), _TO_PID, ("flags", _uint), ("result", _proc), _TOKEN,
    )

    req_id: Reference
    to_pid: Pid
    flags: int
    result: Pid | Atom
    token: Term


@dataclass(frozen=True, slots=True)
class AliasSend(ControlMessage):
    """ALIAS_SEND: a message to a process alias (a reference), with ALIAS."""

    op: ClassVar[int] = 33
    op_name: ClassVar[str] = "ALIAS_SEND"
    _wire: ClassVar = (_FROM_PID, ("alias", _ref))
    _payload: ClassVar = _MESSAGE

    from_pid: Pid
    alias: Reference
    message: Term


@dataclass(frozen=True, slots=True)
class AliasSendTT(ControlMessage):
    """ALIAS_SEND_TT: ALIAS_SEND with a seq_trace token."""

    op: ClassVar[int] = 34
    op_name: ClassVar[str] = "ALIAS_SEND_TT"
    _wire: ClassVar = (_FROM_PID, ("alias", _ref), _TOKEN)
    _payload: ClassVar = _MESSAGE

    from_pid: Pid
    alias: Reference
    token: Term
    message: Term


@dataclass(frozen=True, slots=True)
class UnlinkId(ControlMessage):
    """UNLINK_ID: the new link protocol's unlink; answer with UNLINK_ID_ACK first."""

    op: ClassVar[int] = 35
    op_name: ClassVar[str] = "UNLINK_ID"
    _wire: ClassVar = (("id", _uint), _FROM_PID, _TO_PID)

    id: int
    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class UnlinkIdAck(ControlMessage):
    """UNLINK_ID_ACK: ``from_pid`` (the acker) confirms unlink ``id`` to ``to_pid``."""

    op: ClassVar[int] = 36
    op_name: ClassVar[str] = "UNLINK_ID_ACK"
    _wire: ClassVar = (("id", _uint), _FROM_PID, _TO_PID)

    id: int
    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class AltactSigSend(ControlMessage):
    """ALTACT_SIG_SEND (OTP 28, with ALTACT_SIG): a message or exit via ``ALTACT_*`` flags.

    ``to`` is a pid, a reference with ``ALTACT_ALIAS`` or an atom with
    ``ALTACT_NAME``; ``payload`` is an exit reason with ``ALTACT_EXIT``, else a
    message. ``token`` is ``None`` unless ``ALTACT_TOKEN`` is set (the tuple
    then has a fifth element).
    """

    op: ClassVar[int] = 37
    op_name: ClassVar[str] = "ALTACT_SIG_SEND"
    _wire: ClassVar = (("flags", _uint), _FROM_PID, ("to", _any))

    flags: int
    from_pid: Pid
    to: Pid | Reference | Atom
    payload: Term
    token: Term | None = None

    @classmethod
    def _from_terms(cls, control: tuple[Any, ...], payload: Any) -> ControlMessage:
        if len(control) not in (4, 5):
            raise _malformed(cls.op_name, cls.op, f"{len(control)} elements, expected 4 or 5")
        _, flags, from_pid, to, *token = control
        if not _uint(flags) or not _pid(from_pid):
            raise _malformed(cls.op_name, cls.op, "bad flags or sender")
        if bool(token) != bool(flags & ALTACT_TOKEN):
            raise _malformed(cls.op_name, cls.op, "token element disagrees with the TOKEN flag")
        if not _altact_target_ok(flags, to):
            raise _malformed(cls.op_name, cls.op, f"bad target {_brief.repr(to)}")
        if payload is NO_PAYLOAD:
            raise _malformed(cls.op_name, cls.op, "no payload term")
        return cls(flags, from_pid, to, payload, token[0] if token else None)

    def _to_terms(self) -> tuple[tuple[Any, ...], Any]:
        if (self.token is not None) != bool(self.flags & ALTACT_TOKEN):
            raise LocalProtocolError("ALTACT_SIG_SEND: token must be given iff ALTACT_TOKEN is set")
        if not _altact_target_ok(self.flags, self.to):
            raise LocalProtocolError(
                f"ALTACT_SIG_SEND: target {self.to!r} does not match flags {self.flags}"
            )
        control: tuple[Any, ...] = (self.op, self.flags, self.from_pid, self.to)
        if self.token is not None:
            control += (self.token,)
        return control, self.payload


def _altact_target_ok(flags: int, to: Any) -> bool:
    if flags & ALTACT_ALIAS:
        return _ref(to)
    if flags & ALTACT_NAME:
        return _atom(to)
    return _pid(to)


_BY_OP: Final[dict[int, type[ControlMessage]]] = {
    cls.op: cls
    for cls in (
        Link, Send, Exit, Unlink, RegSend, GroupLeader, Exit2, SendTT, ExitTT, RegSendTT,
        Exit2TT, MonitorP, DemonitorP, MonitorPExit, SendSender, SendSenderTT, PayloadExit,
        PayloadExitTT, PayloadExit2, PayloadExit2TT, PayloadMonitorPExit, SpawnRequest,
        SpawnRequestTT, SpawnReply, SpawnReplyTT, AliasSend, AliasSendTT, UnlinkId,
        UnlinkIdAck, AltactSigSend,
    )
}


def _fields_in_wire_order(cls: type[ControlMessage]) -> bool:
    wire = [name for name, _ in cls._wire]
    if cls._payload is not None:
        wire.append(cls._payload[0])
    return [f.name for f in fields(cls) if f.init] == wire  # type: ignore[arg-type]


#: The op classes whose fields are the wire elements, then the payload, in
#: that order: parsed into ``cls(*elements)``, without a dict of names.
_POSITIONAL: Final[frozenset[type[ControlMessage]]] = frozenset(
    cls for cls in _BY_OP.values() if _fields_in_wire_order(cls))


def parse(control: Any, payload: Any = NO_PAYLOAD) -> ControlMessage:
    """The dataclass for a decoded control tuple and its payload term.

    Raises ``RemoteProtocolError`` (naming the op) for an unknown op or a tuple
    of the wrong shape: the peer sent it, and nothing above this layer should
    have to second-guess the field types.
    """
    if not isinstance(control, tuple) or not control:
        raise RemoteProtocolError(
            f"control message is not a tuple with an op code: {_brief.repr(control)}"
        )
    op = control[0]
    cls = _BY_OP.get(op) if type(op) is int else None
    if cls is None:
        raise RemoteProtocolError(f"unknown control message op {_brief.repr(op)}")
    return cls._from_terms(control, payload)


def to_terms(msg: ControlMessage) -> tuple[tuple[Any, ...], Any]:
    """The control tuple and payload term (or ``NO_PAYLOAD``) to frame for ``msg``."""
    return msg._to_terms()


def send_to_pid(from_pid: Pid, to_pid: Pid, message: Term, flags: int) -> SendSender | Send:
    """A message to a pid: SEND_SENDER when negotiated (OTP 21+), else SEND."""
    if flags & DFlag.SEND_SENDER:
        return SendSender(from_pid, to_pid, message)
    return Send(to_pid, message)


def reg_send(from_pid: Pid, name: Atom, message: Term) -> RegSend:
    """A message to a registered name on the peer."""
    return RegSend(from_pid, name, message)


def monitor_exit(
    from_proc: Pid | Atom, to_pid: Pid, ref: Reference, reason: Term, flags: int
) -> PayloadMonitorPExit | MonitorPExit:
    """Tell ``to_pid`` that the process it monitors is gone.

    ``from_proc`` must be the pid or name exactly as the MONITOR_P named it,
    or the monitor does not fire.
    """
    if flags & DFlag.EXIT_PAYLOAD:
        return PayloadMonitorPExit(from_proc, to_pid, ref, reason)
    return MonitorPExit(from_proc, to_pid, ref, reason)


def exit_signal(
    from_pid: Pid, to_pid: Pid, reason: Term, flags: int
) -> PayloadExit | Exit:
    """The exit signal of a broken link: PAYLOAD_EXIT when negotiated, else EXIT."""
    if flags & DFlag.EXIT_PAYLOAD:
        return PayloadExit(from_pid, to_pid, reason)
    return Exit(from_pid, to_pid, reason)
