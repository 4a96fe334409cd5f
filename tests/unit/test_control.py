"""Control messages: every op round-trips; malformed tuples are the peer's fault."""

from __future__ import annotations

from typing import Any

import pytest

from erldist.errors import LocalProtocolError, RemoteProtocolError
from erldist.protocol import control
from erldist.protocol.control import (
    ALTACT_ALIAS,
    ALTACT_EXIT,
    ALTACT_NAME,
    ALTACT_PRIO,
    ALTACT_TOKEN,
    UNUSED,
    ControlMessage,
)
from erldist.protocol.flags import MANDATORY_26, OUR_FLAGS, DFlag
from erldist.protocol.framing import NO_PAYLOAD, DistDecoder, DistEncoder, FrameReader
from erldist.term import Atom, Pid, Reference

NODE_A = Atom("a@127.0.0.1")
NODE_B = Atom("b@127.0.0.1")
P1 = Pid(NODE_A, 1, 0, 3)
P2 = Pid(NODE_B, 2, 0, 4)
REF = Reference(NODE_B, 4, (1, 2, 3))
TOKEN = (0, Atom("label"), 1, P1, 5)
REASON = (Atom("shutdown"), Atom("normal"))
MSG = (Atom("$gen_call"), (P1, REF), (Atom("is_auth"), NODE_A))
MFA = (Atom("erpc"), Atom("execute_call"), 4)

SAMPLES: list[ControlMessage] = [
    control.Link(P1, P2),
    control.Send(P2, MSG),
    control.Exit(P1, P2, REASON),
    control.Unlink(P1, P2),
    control.RegSend(P1, Atom("net_kernel"), MSG),
    control.GroupLeader(P1, P2),
    control.Exit2(P1, P2, REASON),
    control.SendTT(P2, TOKEN, MSG),
    control.ExitTT(P1, P2, TOKEN, REASON),
    control.RegSendTT(P1, Atom("rex"), TOKEN, MSG),
    control.Exit2TT(P1, P2, TOKEN, REASON),
    control.MonitorP(P1, P2, REF),
    control.DemonitorP(P1, Atom("rex"), REF),
    control.MonitorPExit(Atom("rex"), P1, REF, Atom("noproc")),
    control.SendSender(P1, P2, MSG),
    control.SendSenderTT(P1, P2, TOKEN, MSG),
    control.PayloadExit(P1, P2, REASON),
    control.PayloadExitTT(P1, P2, TOKEN, REASON),
    control.PayloadExit2(P1, P2, REASON),
    control.PayloadExit2TT(P1, P2, TOKEN, REASON),
    control.PayloadMonitorPExit(P2, P1, REF, Atom("normal")),
    control.SpawnRequest(REF, P1, P1, MFA, [Atom("monitor")], [1, b"two", [3]]),
    control.SpawnRequestTT(REF, P1, P1, MFA, [], TOKEN, []),
    control.SpawnReply(REF, P1, control.SPAWN_REPLY_MONITOR, P2),
    control.SpawnReplyTT(REF, P1, 0, Atom("notsup"), TOKEN),
    control.AliasSend(P1, REF, MSG),
    control.AliasSendTT(P1, REF, TOKEN, MSG),
    control.UnlinkId(4, P1, P2),
    control.UnlinkIdAck(4, P2, P1),
    control.AltactSigSend(ALTACT_PRIO, P1, P2, MSG),
]

ALL_OPS = {1, 2, 3, 4, 6, 7, 8, 12, 13, 16, 18, *range(19, 38)}


def test_every_op_has_a_sample() -> None:
    assert {type(m).op for m in SAMPLES} == ALL_OPS
    assert len(SAMPLES) == len(ALL_OPS) == 30


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).op_name)
def test_round_trip_through_terms(msg: ControlMessage) -> None:
    ctrl, payload = control.to_terms(msg)
    assert ctrl[0] == type(msg).op
    assert control.parse(ctrl, payload) == msg


@pytest.mark.parametrize("flags", [MANDATORY_26, OUR_FLAGS])
@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).op_name)
def test_round_trip_through_the_wire(msg: ControlMessage, flags: int) -> None:
    (frame,) = FrameReader().feed(DistEncoder(flags).frame(*control.to_terms(msg)))
    assert frame is not None
    decoded = DistDecoder(flags).decode(frame)
    assert decoded is not None
    assert control.parse(*decoded) == msg


def test_tuple_layouts() -> None:
    assert control.to_terms(control.Send(P2, MSG)) == ((2, UNUSED, P2), MSG)
    assert control.to_terms(control.RegSend(P1, Atom("rex"), MSG)) == (
        (6, P1, Atom(""), Atom("rex")), MSG,
    )
    assert control.to_terms(control.RegSendTT(P1, Atom("rex"), TOKEN, MSG)) == (
        (16, P1, Atom(""), Atom("rex"), TOKEN), MSG,
    )
    assert control.to_terms(control.MonitorP(P1, Atom("rex"), REF)) == (
        (19, P1, Atom("rex"), REF), NO_PAYLOAD,
    )
    assert control.to_terms(control.PayloadMonitorPExit(P2, P1, REF, Atom("noproc"))) == (
        (28, P2, P1, REF), Atom("noproc"),
    )
    assert control.to_terms(control.SpawnRequest(REF, P1, P2, MFA, [], [1])) == (
        (29, REF, P1, P2, MFA, []), [1],
    )
    assert control.to_terms(control.SpawnReply(REF, P1, 3, P2)) == (
        (31, REF, P1, 3, P2), NO_PAYLOAD,
    )
    assert control.to_terms(control.UnlinkIdAck(7, P2, P1)) == ((36, 7, P2, P1), NO_PAYLOAD)


def test_unused_field_is_preserved() -> None:
    msg = control.parse((2, Atom("cookie-less-junk"), P2), MSG)
    assert isinstance(msg, control.Send)
    assert msg.unused == Atom("cookie-less-junk")
    assert control.to_terms(msg)[0] == (2, Atom("cookie-less-junk"), P2)


def test_op_names() -> None:
    names = {type(m).op: type(m).op_name for m in SAMPLES}
    assert names[22] == "SEND_SENDER"
    assert names[28] == "PAYLOAD_MONITOR_P_EXIT"
    assert names[37] == "ALTACT_SIG_SEND"


# --- malformed input -----------------------------------------------------------------


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).op_name)
def test_wrong_arity_names_the_op(msg: ControlMessage) -> None:
    ctrl, payload = control.to_terms(msg)
    for bad in ((*ctrl, Atom("extra"), Atom("more")), ctrl[:2]):
        with pytest.raises(RemoteProtocolError, match=type(msg).op_name):
            control.parse(bad, payload)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).op_name)
def test_payload_presence_is_checked(msg: ControlMessage) -> None:
    ctrl, payload = control.to_terms(msg)
    with pytest.raises(RemoteProtocolError, match=type(msg).op_name):
        control.parse(ctrl, MSG if payload is NO_PAYLOAD else NO_PAYLOAD)


@pytest.mark.parametrize(
    ("ctrl", "payload"),
    [
        ((1, Atom("not_a_pid"), P2), NO_PAYLOAD),
        ((2, UNUSED, Atom("name")), MSG),
        ((6, P1, UNUSED, b"rex"), MSG),
        ((19, P1, REF, REF), NO_PAYLOAD),
        ((19, P1, P2, 42), NO_PAYLOAD),
        ((21, 5, P1, REF, Atom("noproc")), NO_PAYLOAD),
        ((29, REF, P1, P1, (Atom("m"), Atom("f")), []), []),
        ((29, REF, P1, P1, (Atom("m"), Atom("f"), -1), []), []),
        ((29, REF, P1, P1, MFA, Atom("opts")), []),
        ((29, REF, P1, P1, MFA, []), Atom("not_a_list")),
        ((31, REF, P1, True, P2), NO_PAYLOAD),
        ((31, REF, P1, 0, REF), NO_PAYLOAD),
        ((33, P1, P2), MSG),
        ((35, -1, P1, P2), NO_PAYLOAD),
        ((35, "4", P1, P2), NO_PAYLOAD),
    ],
)
def test_wrong_element_types(ctrl: tuple[Any, ...], payload: Any) -> None:
    with pytest.raises(RemoteProtocolError, match=r"malformed \w+ \(\d+\)"):
        control.parse(ctrl, payload)


@pytest.mark.parametrize("op", [0, 5, 9, 10, 11, 14, 15, 17, 38, 1000, -1, True, "2", 2.0])
def test_unknown_ops(op: Any) -> None:
    with pytest.raises(RemoteProtocolError, match="unknown control message op"):
        control.parse((op, P1, P2), NO_PAYLOAD)


@pytest.mark.parametrize("ctrl", [(), [1, P1, P2], Atom("link"), None])
def test_not_a_tuple(ctrl: Any) -> None:
    with pytest.raises(RemoteProtocolError, match="not a tuple"):
        control.parse(ctrl, NO_PAYLOAD)


def test_error_messages_stay_short() -> None:
    huge = b"x" * 100_000
    with pytest.raises(RemoteProtocolError) as info:
        control.parse((1, huge, P2), NO_PAYLOAD)
    assert len(str(info.value)) < 200


# --- ALTACT_SIG_SEND -----------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        control.AltactSigSend(0, P1, P2, MSG),
        control.AltactSigSend(ALTACT_TOKEN, P1, P2, MSG, TOKEN),
        control.AltactSigSend(ALTACT_ALIAS | ALTACT_PRIO, P1, REF, MSG),
        control.AltactSigSend(ALTACT_NAME, P1, Atom("rex"), MSG),
        control.AltactSigSend(ALTACT_EXIT | ALTACT_TOKEN, P1, P2, REASON, TOKEN),
    ],
)
def test_altact_round_trip(msg: control.AltactSigSend) -> None:
    ctrl, payload = control.to_terms(msg)
    assert len(ctrl) == (5 if msg.token is not None else 4)
    assert control.parse(ctrl, payload) == msg


@pytest.mark.parametrize(
    "ctrl",
    [
        (37, ALTACT_TOKEN, P1, P2),
        (37, 0, P1, P2, TOKEN),
        (37, ALTACT_ALIAS, P1, P2),
        (37, ALTACT_NAME, P1, REF),
        (37, 0, P1, Atom("rex")),
        (37, -1, P1, P2),
        (37, 0, REF, P2),
        (37, 0, P1),
        (37, 0, P1, P2, TOKEN, TOKEN),
    ],
)
def test_altact_malformed(ctrl: tuple[Any, ...]) -> None:
    with pytest.raises(RemoteProtocolError, match="ALTACT_SIG_SEND"):
        control.parse(ctrl, MSG)


def test_altact_without_payload() -> None:
    with pytest.raises(RemoteProtocolError, match="ALTACT_SIG_SEND"):
        control.parse((37, 0, P1, P2), NO_PAYLOAD)


def test_altact_inconsistent_message_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        control.to_terms(control.AltactSigSend(ALTACT_TOKEN, P1, P2, MSG))
    with pytest.raises(LocalProtocolError):
        control.to_terms(control.AltactSigSend(ALTACT_ALIAS, P1, P2, MSG))


# --- helpers -------------------------------------------------------------------------


def test_send_to_pid_follows_send_sender() -> None:
    assert control.send_to_pid(P1, P2, MSG, DFlag.SEND_SENDER) == control.SendSender(P1, P2, MSG)
    assert control.send_to_pid(P1, P2, MSG, MANDATORY_26) == control.Send(P2, MSG)


def test_reg_send() -> None:
    assert control.reg_send(P1, Atom("rex"), MSG) == control.RegSend(P1, Atom("rex"), MSG, UNUSED)


def test_monitor_exit_follows_exit_payload() -> None:
    reason = Atom("noproc")
    assert control.monitor_exit(Atom("rex"), P1, REF, reason, OUR_FLAGS) == (
        control.PayloadMonitorPExit(Atom("rex"), P1, REF, reason)
    )
    assert control.monitor_exit(P2, P1, REF, reason, MANDATORY_26) == (
        control.MonitorPExit(P2, P1, REF, reason)
    )


def test_exit_signal_follows_exit_payload() -> None:
    assert control.exit_signal(P1, P2, REASON, DFlag.EXIT_PAYLOAD) == (
        control.PayloadExit(P1, P2, REASON)
    )
    assert control.exit_signal(P1, P2, REASON, MANDATORY_26) == control.Exit(P1, P2, REASON)


def test_messages_are_frozen() -> None:
    msg = control.Link(P1, P2)
    with pytest.raises(AttributeError):
        msg.from_pid = P2  # type: ignore[misc]
