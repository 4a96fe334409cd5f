"""The hot ops' direct path (``signals.from_terms``/``to_terms``) agrees with the general one.

``from_terms`` must give what ``from_control(control.parse(...))`` gives for
every tuple, well formed or not (the same signal, or the same error), and
``to_terms`` what ``control.to_terms(to_control(...))`` gives for every signal
under every flag set.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erldist.errors import LocalProtocolError, RemoteProtocolError
from erldist.protocol import control, signals
from erldist.protocol.flags import DFlag
from erldist.protocol.framing import NO_PAYLOAD
from erldist.term import Atom, ImproperList, Pid
from tests.unit.test_control import MSG, P1, P2, REASON, REF, SAMPLES

RNAME = Atom("rex")
FLAG_SETS = [0, DFlag.SEND_SENDER, DFlag.EXIT_PAYLOAD | DFlag.UNLINK_ID,
             DFlag.SEND_SENDER | DFlag.EXIT_PAYLOAD | DFlag.UNLINK_ID | DFlag.ALIAS]
SIGNALS: list[signals.Signal] = [
    signals.MessageSignal(P1, P2, MSG),
    signals.MessageSignal(None, P2, MSG),
    signals.MessageSignal(P1, RNAME, MSG),
    signals.MessageSignal(P1, REF, (ImproperList((Atom("alias"),), REF), Atom("yes"))),
    signals.MonitorSignal(P1, P2, REF),
    signals.MonitorSignal(P1, RNAME, REF),
    signals.DemonitorSignal(P1, P2, REF),
    signals.DemonitorSignal(P1, RNAME, REF),
    signals.DownSignal(RNAME, P1, REF, REASON),
    signals.LinkSignal(P1, P2),
    signals.UnlinkSignal(P1, P2, 7),
    signals.UnlinkAckSignal(P1, P2, 7),
    signals.ExitSignal(P1, P2, REASON, linked=True),
    signals.ExitSignal(P1, P2, REASON, linked=False),
]


def _general_out(signal: signals.Signal, flags: int) -> Any:
    try:
        return control.to_terms(signals.to_control(signal, flags))
    except LocalProtocolError as exc:
        return ("error", str(exc))


def _direct_out(signal: signals.Signal, flags: int) -> Any:
    try:
        return signals.to_terms(signal, flags)
    except LocalProtocolError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("flags", FLAG_SETS)
@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: type(s).__name__)
def test_to_terms_is_the_general_path(signal: signals.Signal, flags: int) -> None:
    assert _direct_out(signal, flags) == _general_out(signal, flags)


def test_the_direct_path_writes_the_hot_layouts() -> None:
    flags = DFlag.SEND_SENDER
    assert signals.to_terms(SIGNALS[0], flags) == ((22, P1, P2), MSG)
    assert signals.to_terms(SIGNALS[2], flags) == ((6, P1, control.UNUSED, RNAME), MSG)
    assert signals.to_terms(SIGNALS[4], flags) == ((19, P1, P2, REF), NO_PAYLOAD)
    assert signals.to_terms(SIGNALS[7], flags) == ((20, P1, RNAME, REF), NO_PAYLOAD)


def _general_in(ctrl: Any, payload: Any) -> Any:
    try:
        return signals.from_control(control.parse(ctrl, payload))
    except RemoteProtocolError as exc:
        return ("error", str(exc))


def _direct_in(ctrl: Any, payload: Any) -> Any:
    try:
        return signals.from_terms(ctrl, payload)
    except RemoteProtocolError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).op_name)
def test_from_terms_is_the_general_path(msg: control.ControlMessage) -> None:
    ctrl, payload = control.to_terms(msg)
    assert _direct_in(ctrl, payload) == _general_in(ctrl, payload)
    assert _direct_in(ctrl, NO_PAYLOAD) == _general_in(ctrl, NO_PAYLOAD)


class _PidLike(Pid):
    """A subclass: not what a decoder makes, so only the general path may judge it."""


ELEMENTS: st.SearchStrategy[Any] = st.sampled_from([
    P1, P2, REF, RNAME, control.UNUSED, 0, 7, -1, True, b"bin", (), [], MSG, None,
    _PidLike(Atom("c@h"), 1, 0, 1),
])
OPS: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([2, 6, 19, 20, 22, 33, 1, 21, 28, 99, True, 6.0]), st.integers(-1, 45))


@settings(max_examples=600, deadline=None)
@given(op=OPS, rest=st.lists(ELEMENTS, max_size=5),
       payload=st.one_of(st.just(NO_PAYLOAD), ELEMENTS))
def test_random_tuples_get_the_general_verdict(op: Any, rest: list[Any], payload: Any) -> None:
    ctrl = (op, *rest)
    assert _direct_in(ctrl, payload) == _general_in(ctrl, payload)


@pytest.mark.parametrize("ctrl", [(), [22, P1, P2], "22", None, (22,)])
def test_not_a_control_tuple_gets_the_general_error(ctrl: Any) -> None:
    assert _direct_in(ctrl, MSG) == _general_in(ctrl, MSG)
    assert _direct_in(ctrl, MSG)[0] == "error"
