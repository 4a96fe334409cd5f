"""The meanings behind the control ops: what one process tells another.

The wire has some thirty ops because each meaning grew variants over the
years (with and without a sender, a seq_trace token, the reason as a payload
term, OTP 28's ``ALTACT_SIG_SEND``). The runtime cares only about the
meaning, so ``from_control`` folds every variant into one of these signals
and ``to_control`` picks the variant a connection's flags call for. Tokens
are dropped: erldist does not take part in seq_trace.

Signals are made per message (a call makes three), so they are plain slotted
dataclasses, not frozen ones, whose ``__init__`` costs twice as much; nothing
changes a signal once it is made, and nothing hashes one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from erldist.errors import LocalProtocolError
from erldist.protocol import control
from erldist.protocol.flags import DFlag
from erldist.protocol.framing import NO_PAYLOAD
from erldist.term.types import Atom, Pid, Reference, Term

__all__ = [
    "DemonitorSignal",
    "DownSignal",
    "ExitSignal",
    "LinkSignal",
    "MessageSignal",
    "MonitorSignal",
    "Signal",
    "SpawnReplySignal",
    "SpawnRequestSignal",
    "UnlinkAckSignal",
    "UnlinkSignal",
    "from_control",
    "from_terms",
    "to_control",
    "to_terms",
]


@dataclass(slots=True)
class MessageSignal:
    """A message to a pid, a registered name (an atom) or an alias (a reference)."""

    sender: Pid | None
    to: Pid | Atom | Reference
    message: Term


@dataclass(slots=True)
class LinkSignal:
    sender: Pid
    to: Pid


@dataclass(slots=True)
class UnlinkSignal:
    """An unlink; ``id`` is the new protocol's unlink id, None for the old UNLINK."""

    sender: Pid
    to: Pid
    id: int | None


@dataclass(slots=True)
class UnlinkAckSignal:
    sender: Pid
    to: Pid
    id: int


@dataclass(slots=True)
class ExitSignal:
    """An exit signal: ``linked`` for a broken link (EXIT), else ``exit/2`` (EXIT2)."""

    sender: Pid
    to: Pid
    reason: Term
    linked: bool


@dataclass(slots=True)
class MonitorSignal:
    """``sender`` monitors ``target``: a pid, or a name registered on the receiver."""

    sender: Pid
    target: Pid | Atom
    ref: Reference


@dataclass(slots=True)
class DemonitorSignal:
    sender: Pid
    target: Pid | Atom
    ref: Reference


@dataclass(slots=True)
class DownSignal:
    """The monitored ``target`` (named as the monitor named it) is gone."""

    target: Pid | Atom
    to: Pid
    ref: Reference
    reason: Term


@dataclass(slots=True)
class SpawnRequestSignal:
    req_id: Reference
    sender: Pid
    group_leader: Pid
    module: Atom
    function: Atom
    args: list[Term]
    opts: list[Term]


@dataclass(slots=True)
class SpawnReplySignal:
    req_id: Reference
    to: Pid
    flags: int
    result: Pid | Atom


Signal = (
    MessageSignal | LinkSignal | UnlinkSignal | UnlinkAckSignal | ExitSignal | MonitorSignal
    | DemonitorSignal | DownSignal | SpawnRequestSignal | SpawnReplySignal
)


def _altact(msg: Any) -> Signal:
    if msg.flags & control.ALTACT_EXIT:
        assert isinstance(msg.to, Pid)  # parse() checked: a pid unless ALIAS/NAME
        return ExitSignal(msg.from_pid, msg.to, msg.payload, linked=False)
    return MessageSignal(msg.from_pid, msg.to, msg.payload)


def _spawn_request(msg: Any) -> Signal:
    module, function, _arity = msg.mfa
    return SpawnRequestSignal(msg.req_id, msg.from_pid, msg.group_leader, module, function,
                              msg.args, msg.opts)


_FROM: Final[dict[type[control.ControlMessage], Callable[[Any], Signal | None]]] = {
    control.Send: lambda m: MessageSignal(None, m.to_pid, m.message),
    control.SendTT: lambda m: MessageSignal(None, m.to_pid, m.message),
    control.SendSender: lambda m: MessageSignal(m.from_pid, m.to_pid, m.message),
    control.SendSenderTT: lambda m: MessageSignal(m.from_pid, m.to_pid, m.message),
    control.RegSend: lambda m: MessageSignal(m.from_pid, m.to_name, m.message),
    control.RegSendTT: lambda m: MessageSignal(m.from_pid, m.to_name, m.message),
    control.AliasSend: lambda m: MessageSignal(m.from_pid, m.alias, m.message),
    control.AliasSendTT: lambda m: MessageSignal(m.from_pid, m.alias, m.message),
    control.AltactSigSend: _altact,
    control.Link: lambda m: LinkSignal(m.from_pid, m.to_pid),
    control.Unlink: lambda m: UnlinkSignal(m.from_pid, m.to_pid, None),
    control.UnlinkId: lambda m: UnlinkSignal(m.from_pid, m.to_pid, m.id),
    control.UnlinkIdAck: lambda m: UnlinkAckSignal(m.from_pid, m.to_pid, m.id),
    control.Exit: lambda m: ExitSignal(m.from_pid, m.to_pid, m.reason, linked=True),
    control.ExitTT: lambda m: ExitSignal(m.from_pid, m.to_pid, m.reason, linked=True),
    control.PayloadExit: lambda m: ExitSignal(m.from_pid, m.to_pid, m.reason, linked=True),
    control.PayloadExitTT: lambda m: ExitSignal(m.from_pid, m.to_pid, m.reason, linked=True),
    control.Exit2: lambda m: ExitSignal(m.from_pid, m.to_pid, m.reason, linked=False),
    control.Exit2TT: lambda m: ExitSignal(m.from_pid, m.to_pid, m.reason, linked=False),
    control.PayloadExit2: lambda m: ExitSignal(m.from_pid, m.to_pid, m.reason, linked=False),
    control.PayloadExit2TT: lambda m: ExitSignal(m.from_pid, m.to_pid, m.reason, linked=False),
    control.MonitorP: lambda m: MonitorSignal(m.from_pid, m.to_proc, m.ref),
    control.DemonitorP: lambda m: DemonitorSignal(m.from_pid, m.to_proc, m.ref),
    control.MonitorPExit: lambda m: DownSignal(m.from_proc, m.to_pid, m.ref, m.reason),
    control.PayloadMonitorPExit: lambda m: DownSignal(m.from_proc, m.to_pid, m.ref, m.reason),
    control.SpawnRequest: _spawn_request,
    control.SpawnRequestTT: _spawn_request,
    control.SpawnReply: lambda m: SpawnReplySignal(m.req_id, m.to_pid, m.flags, m.result),
    control.SpawnReplyTT: lambda m: SpawnReplySignal(m.req_id, m.to_pid, m.flags, m.result),
    control.GroupLeader: lambda _m: None,  # no group leaders here: Python has no io server
}


def from_control(msg: control.ControlMessage) -> Signal | None:
    """The signal a control message carries; None for one with no meaning here."""
    return _FROM[type(msg)](msg)


def _message(signal: MessageSignal, flags: int) -> control.ControlMessage:
    sender, to = signal.sender, signal.to
    if sender is None:
        if isinstance(to, Pid):
            return control.Send(to, signal.message)
        raise LocalProtocolError(f"a message to {to!r} must name its sender")
    if isinstance(to, Pid):
        if flags & DFlag.SEND_SENDER:
            return control.SendSender(sender, to, signal.message)
        return control.Send(to, signal.message)
    if isinstance(to, Atom):
        return control.RegSend(sender, to, signal.message)
    return control.AliasSend(sender, to, signal.message)


def _unlink(signal: UnlinkSignal, flags: int) -> control.ControlMessage:
    if signal.id is None or not flags & DFlag.UNLINK_ID:
        return control.Unlink(signal.sender, signal.to)
    return control.UnlinkId(signal.id, signal.sender, signal.to)


def _exit(signal: ExitSignal, flags: int) -> control.ControlMessage:
    payload = bool(flags & DFlag.EXIT_PAYLOAD)
    if signal.linked:
        kind: Any = control.PayloadExit if payload else control.Exit
    else:
        kind = control.PayloadExit2 if payload else control.Exit2
    built: control.ControlMessage = kind(signal.sender, signal.to, signal.reason)
    return built


def _spawn_request_control(signal: SpawnRequestSignal, _flags: int) -> control.ControlMessage:
    mfa = (signal.module, signal.function, len(signal.args))
    return control.SpawnRequest(signal.req_id, signal.sender, signal.group_leader, mfa,
                                signal.opts, signal.args)


_TO: Final[dict[type, Callable[[Any, int], control.ControlMessage]]] = {
    MessageSignal: _message,
    LinkSignal: lambda s, _f: control.Link(s.sender, s.to),
    UnlinkSignal: _unlink,
    UnlinkAckSignal: lambda s, _f: control.UnlinkIdAck(s.id, s.sender, s.to),
    ExitSignal: _exit,
    MonitorSignal: lambda s, _f: control.MonitorP(s.sender, s.target, s.ref),
    DemonitorSignal: lambda s, _f: control.DemonitorP(s.sender, s.target, s.ref),
    DownSignal: lambda s, f: control.monitor_exit(s.target, s.to, s.ref, s.reason, f),
    SpawnRequestSignal: _spawn_request_control,
    SpawnReplySignal: lambda s, _f: control.SpawnReply(s.req_id, s.to, s.flags, s.result),
}


def to_control(signal: Signal, flags: int) -> control.ControlMessage:
    """The control message for ``signal`` on a connection with ``flags``."""
    return _TO[type(signal)](signal, flags)


# --- the commonest signals, straight from and to the wire's tuples ---------------------
#
# A message, a monitor and a demonitor are most of what crosses a link (a call
# is a monitor, a request and a demonitor). For them the tuple is read or
# written here without making the control dataclass in between: its layout is
# the one ``control`` defines (the tests check both paths agree on every
# signal, flag set and malformed tuple), and anything else, including every
# tuple these checks do not accept, takes the general path, whose errors name
# what is wrong.

_SEND, _REG_SEND = control.Send.op, control.RegSend.op
_SEND_SENDER, _ALIAS_SEND = control.SendSender.op, control.AliasSend.op
_MONITOR_P, _DEMONITOR_P = control.MonitorP.op, control.DemonitorP.op
#: Ops whose control tuple repeats from one message to the next along one route.
ROUTE_OPS: Final = frozenset((_SEND, _REG_SEND, _SEND_SENDER))


def _message_in(ctrl: tuple[Any, ...], payload: Any) -> Signal | None:
    op = ctrl[0]
    if payload is NO_PAYLOAD:
        return None
    if op == _SEND_SENDER:
        if len(ctrl) == 3 and type(ctrl[1]) is Pid and type(ctrl[2]) is Pid:
            return MessageSignal(ctrl[1], ctrl[2], payload)
    elif op == _REG_SEND:
        if len(ctrl) == 4 and type(ctrl[1]) is Pid and type(ctrl[3]) is Atom:
            return MessageSignal(ctrl[1], ctrl[3], payload)
    elif op == _ALIAS_SEND:
        if len(ctrl) == 3 and type(ctrl[1]) is Pid and type(ctrl[2]) is Reference:
            return MessageSignal(ctrl[1], ctrl[2], payload)
    elif len(ctrl) == 3 and type(ctrl[2]) is Pid:  # SEND
        return MessageSignal(None, ctrl[2], payload)
    return None


def _monitor_in(ctrl: tuple[Any, ...], payload: Any) -> Signal | None:
    if (payload is NO_PAYLOAD and len(ctrl) == 4 and type(ctrl[1]) is Pid
            and type(ctrl[2]) in _PROC and type(ctrl[3]) is Reference):
        kind = MonitorSignal if ctrl[0] == _MONITOR_P else DemonitorSignal
        return kind(ctrl[1], ctrl[2], ctrl[3])
    return None


_PROC: Final = frozenset((Pid, Atom))
_IN: Final[dict[int, Callable[[tuple[Any, ...], Any], Signal | None]]] = {
    _SEND: _message_in, _REG_SEND: _message_in, _SEND_SENDER: _message_in,
    _ALIAS_SEND: _message_in, _MONITOR_P: _monitor_in, _DEMONITOR_P: _monitor_in,
}


def from_terms(ctrl: Any, payload: Any = NO_PAYLOAD) -> Signal | None:
    """The signal a decoded control tuple and payload carry: ``from_control(parse(...))``.

    Raises ``RemoteProtocolError`` as ``control.parse`` does for a tuple it
    does not accept.
    """
    if type(ctrl) is tuple and ctrl and type(ctrl[0]) is int:
        fast = _IN.get(ctrl[0])
        if fast is not None:
            signal = fast(ctrl, payload)
            if signal is not None:
                return signal
    return from_control(control.parse(ctrl, payload))


def to_terms(signal: Signal, flags: int) -> tuple[tuple[Any, ...], Any]:
    """The control tuple and payload (or ``NO_PAYLOAD``) that carry ``signal``:
    ``control.to_terms(to_control(signal, flags))``."""
    if isinstance(signal, MessageSignal):
        sender, to = signal.sender, signal.to
        if type(sender) is Pid:
            target = type(to)
            if target is Pid and flags & DFlag.SEND_SENDER:
                return (_SEND_SENDER, sender, to), signal.message
            if target is Atom:
                return (_REG_SEND, sender, control.UNUSED, to), signal.message
            if target is Reference:
                return (_ALIAS_SEND, sender, to), signal.message
    elif isinstance(signal, MonitorSignal):
        return (_MONITOR_P, signal.sender, signal.target, signal.ref), NO_PAYLOAD
    elif isinstance(signal, DemonitorSignal):
        return (_DEMONITOR_P, signal.sender, signal.target, signal.ref), NO_PAYLOAD
    return control.to_terms(_TO[type(signal)](signal, flags))
