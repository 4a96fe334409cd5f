"""The payload codecs against real Erlang/OTP 25 and 28.

Each layout of the Gleam wire card is written a second time as Erlang bit
syntax and built by the VM; Python's encoding must be the same bytes. The
subject codec's embedded part is checked against ``term_to_binary`` on the
VM with its own pids and references, and the VM reads what Python wrote
the way distribute's ``decode_subject_safe`` does (``binary_to_term(_, [safe])``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from erldist.codec import (
    BOOL,
    BYTES,
    FLOAT,
    INT,
    NIL,
    STRING,
    SUBJECT,
    Codec,
    Err,
    WireSubject,
    list_of,
    option,
    result,
    tagged,
    tuple2,
    tuple3,
)
from erldist.term import Atom, Pid, Reference, decode, encode
from tests.support.gleam_vectors import ADT, COUNTER, MESSAGES, PID, REF, GetCount, Status
from tests.support.otp import RELEASES, ErlNode

pytestmark = pytest.mark.interop

# Erlang helpers bound once per VM: the card's layouts in bit syntax.
HELPERS = {
    # u32(byte_size) ‖ bytes: string, bitarray, subject and tuple slots
    "Sized": "fun(B) -> <<(byte_size(B)):32, B/binary>> end",
    "Int": "fun(I) -> <<I:64/signed-big>> end",
    "Str": "fun(S) -> B = unicode:characters_to_binary(S), <<(byte_size(B)):32, B/binary>> end",
    "Tagged": (
        "fun(Tag, V, P) -> T = unicode:characters_to_binary(Tag),"
        " <<(byte_size(T)):32, T/binary, V:32, P/binary>> end"
    ),
    "Subject": (
        "fun(Pid, Tag) -> E = term_to_binary({subject, Pid, Tag}, [{minor_version, 2}]),"
        " <<(byte_size(E)):32, E/binary>> end"
    ),
}

# (codec, value, the same bytes built by Erlang)
LAYOUTS: list[tuple[Codec[Any], Any, str]] = [
    (INT, -999, "Int(-999)"),
    (INT, 2**63 - 1, "Int(9223372036854775807)"),
    (INT, -(2**63), "Int(-9223372036854775808)"),
    (FLOAT, 3.14, "<<3.14:64/float-big>>"),
    (FLOAT, -2.5, "<<-2.5:64/float>>"),
    (BOOL, True, "<<1>>"),
    (STRING, "\u65e5\u672c\u8a9e\U0001f389", "Str([16#65E5, 16#672C, 16#8A9E, 16#1F389])"),
    (STRING, "", 'Str("")'),
    (BYTES, b"\xff\x00", "Sized(<<255, 0>>)"),
    (NIL, None, "<<>>"),
    (
        list_of(STRING),
        ["a", "bc"],
        'iolist_to_binary([<<2:32>> | [Str(S) || S <- ["a", "bc"]]])',
    ),
    (list_of(list_of(INT)), [[1, 2], []], "<<2:32, 2:32, (Int(1))/binary, (Int(2))/binary, 0:32>>"),
    (option(INT), 42, "<<1, (Int(42))/binary>>"),
    (option(option(INT)), 7, "<<1, 1, (Int(7))/binary>>"),
    (result(INT, STRING), Err("oops"), '<<1, (Str("oops"))/binary>>'),
    (tuple2(INT, STRING), (42, "hello"), '<<(Sized(Int(42)))/binary, (Str("hello"))/binary>>'),
    (
        tuple3(INT, STRING, BOOL),
        (1, "two", True),
        '<<(Sized(Int(1)))/binary, (Sized(Str("two")))/binary, 1>>',
    ),
    (tagged("counter", 2, INT), 42, 'Tagged("counter", 2, Int(42))'),
    (tagged("proto", 2**32 - 1, INT), 1, 'Tagged("proto", 4294967295, Int(1))'),
    (ADT, Status(42, True), "<<2, (Sized(Int(42)))/binary, 1>>"),
]


@pytest.fixture(scope="module", params=RELEASES, ids=[f"otp{r}" for r in RELEASES])
def erl(request: pytest.FixtureRequest) -> Iterator[ErlNode]:
    node = ErlNode(request.param)
    try:
        bindings = ", ".join(f"{name} = {fun}" for name, fun in HELPERS.items())
        node.eval(f"{bindings}, ErldistPid = self(), ErldistRef = make_ref(), ok.")
        yield node
    finally:
        node.stop()


def scoped(body: str) -> str:
    """``body`` as one expression whose variables stay local to it.

    The evaluator keeps top-level bindings between requests, so a pattern
    like ``<<L:32, ...>>`` would otherwise have to match the previous ``L``.
    """
    return f"(fun() -> {body} end)()."


def vm_pid_and_ref(erl: ErlNode) -> tuple[Pid, Reference]:
    pid, ref = decode(erl.eval_etf("{ErldistPid, ErldistRef}."))
    assert isinstance(pid, Pid)
    assert isinstance(ref, Reference)
    return pid, ref


def from_python(data: bytes) -> str:
    """Erlang source for the binary ``data``."""
    return f'base64:decode(<<"{base64.b64encode(data).decode()}">>)'


def built_by_erl(erl: ErlNode, expr: str) -> bytes:
    value = decode(erl.eval_etf(scoped(expr)))
    assert isinstance(value, bytes), value
    return value


def test_every_layout_is_what_erlang_builds(erl: ErlNode) -> None:
    built = decode(erl.eval_etf(scoped("[" + ",\n".join(expr for _, _, expr in LAYOUTS) + "]")))
    assert len(built) == len(LAYOUTS)
    for (codec, value, expr), data in zip(LAYOUTS, built, strict=True):
        assert codec.encode(value) == data, expr
        assert codec.decode(data) == value, expr


def test_erlang_reads_what_python_writes(erl: ErlNode) -> None:
    data = tuple3(INT, STRING, BOOL).encode((1, "two", True))
    got = erl.eval(
        scoped(
            f"<<LA:32, A:LA/binary, LB:32, B:LB/binary, C>> = {from_python(data)},"
            " <<I:64/signed>> = A, <<LS:32, S:LS/binary>> = B,"
            " {I, unicode:characters_to_list(S), C}"
        )
    )
    assert got == "{1,[116,119,111],1}"


@pytest.mark.parametrize(("message", "hex_bytes"), MESSAGES[:3])
def test_whole_messages_are_erlangs_term_to_binary(
    erl: ErlNode, message: tuple[Any, bytes], hex_bytes: str
) -> None:
    tag, payload = message
    tag_src = f"<<{', '.join(map(str, tag))}>>" if isinstance(tag, bytes) else str(tag)
    data = built_by_erl(
        erl,
        f"term_to_binary({{{tag_src}, {from_python(payload)}}}, [{{minor_version, 2}}])",
    )
    assert data == encode(message) == bytes.fromhex(hex_bytes)


def test_a_subject_with_the_vms_own_pid_and_ref_is_term_to_binary(erl: ErlNode) -> None:
    pid, ref = vm_pid_and_ref(erl)
    expected = decode(
        erl.eval_etf(
            '[Subject(ErldistPid, ErldistRef), Subject(ErldistPid, <<"counter">>),'
            " Subject(ErldistPid, nil)]."
        )
    )
    subjects = [WireSubject(pid, ref), WireSubject(pid, b"counter"), WireSubject(pid, Atom("nil"))]
    for subject, data in zip(subjects, expected, strict=True):
        assert SUBJECT.encode(subject) == data
        assert SUBJECT.decode(data) == subject


def test_python_reads_subjects_in_every_term_to_binary_form(erl: ErlNode) -> None:
    # OTP 25's default writes ATOM_EXT atoms; compressed ETF is accepted too.
    forms = decode(
        erl.eval_etf(
            '[Sized(term_to_binary({subject, ErldistPid, binary:copy(<<"x">>, 300)}, O))'
            " || O <- [[], [compressed], [{minor_version, 1}], [{minor_version, 2}]]]."
        )
    )
    pid, _ = vm_pid_and_ref(erl)
    assert forms[1][4:6] == b"\x83\x50"  # really compressed
    for data in forms:
        assert SUBJECT.decode(data) == WireSubject(pid, b"x" * 300)


def test_the_vm_reads_the_cards_subjects_as_decode_subject_safe_does(erl: ErlNode) -> None:
    # The card's synthetic pid and reference, written by Python: the VM accepts them
    # with [safe] once it knows the node atom, and writes the very same ETF back.
    erl.eval('list_to_atom("gleam@127.0.0.1"), ok.')
    for tag in (b"counter", REF, Atom("nil")):
        data = SUBJECT.encode(WireSubject(PID, tag))
        verdict = erl.eval(
            scoped(
                f"<<L:32, E:L/binary>> = {from_python(data)},"
                " {subject, P, _} = binary_to_term(E, [safe]),"
                " {is_pid(P), node(P),"
                " term_to_binary(binary_to_term(E), [{minor_version, 2}]) =:= E}"
            )
        )
        assert verdict == "{true,'gleam@127.0.0.1',true}"


def test_a_reply_subject_inside_a_variant_round_trips_through_the_vm(erl: ErlNode) -> None:
    pid, ref = vm_pid_and_ref(erl)
    message = GetCount(WireSubject(pid, ref))
    data = built_by_erl(erl, "<<1, (Subject(ErldistPid, ErldistRef))/binary>>")
    assert COUNTER.encode(message) == data
    assert COUNTER.decode(data) == message
