"""The codecs beyond the card's vectors: Python types, caps, the traps closed, telemetry."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest

from erldist import config, telemetry
from erldist.codec import (
    BOOL,
    BYTES,
    FLOAT,
    INT,
    NIL,
    STRING,
    SUBJECT,
    Codec,
    DecodeSite,
    Err,
    Ok,
    PayloadSite,
    Some,
    WireSubject,
    case,
    decode_payload,
    encode_payload,
    list_of,
    mapped,
    option,
    result,
    tagged,
    tuple2,
    tuple3,
    unit,
    variant,
)
from erldist.errors import (
    CodecDecodeError,
    CodecDefinitionError,
    CodecEncodeError,
    DecodeFailed,
    EncodeFailed,
    InvalidBinary,
    InvalidValue,
    ListTooLong,
    PayloadTooLarge,
    TagMismatch,
    ValueTooLarge,
)
from erldist.term import Atom, Pid, Reference, encode
from tests.support.gleam_vectors import ADT, PID, REF, Message, Quit, Status


@pytest.fixture(autouse=True)
def _default_config() -> Iterator[None]:
    config.reset()
    yield
    config.reset()


@pytest.fixture
def events() -> Iterator[list[telemetry.TelemetryEvent]]:
    seen: list[telemetry.TelemetryEvent] = []
    telemetry.attach(seen.append)
    yield seen
    telemetry.detach(seen.append)


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _etf_slot(etf: bytes) -> bytes:
    return _u32(len(etf)) + etf


# --- Python types are checked as strictly as Gleam's were -----------------------------


@pytest.mark.parametrize(
    ("codec", "value"),
    [
        (INT, True),
        (INT, 1.0),
        (INT, "1"),
        (FLOAT, True),
        (FLOAT, "1.0"),
        (BOOL, 1),
        (STRING, b"bytes"),
        (BYTES, "text"),
        (NIL, 0),
        (list_of(INT), "abc"),
        (list_of(INT), {1: 2}),
        (tuple2(INT, INT), [1, 2]),
        (tuple2(INT, INT), (1, 2, 3)),
        (tuple3(INT, INT, INT), (1, 2)),
        (result(INT, INT), 5),
        (SUBJECT, (Atom("subject"), PID, b"t")),
    ],
)
def test_a_value_of_the_wrong_type_is_invalid_value(codec: Codec[Any], value: Any) -> None:
    with pytest.raises(InvalidValue):
        codec.encode(value)


def test_a_lone_surrogate_is_not_a_string() -> None:
    with pytest.raises(InvalidValue, match="not valid Unicode"):
        STRING.encode("\udc80")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 10**400])
def test_floats_must_be_finite(value: float) -> None:
    with pytest.raises(InvalidValue):
        FLOAT.encode(value)


def test_an_int_is_accepted_as_a_float_and_negative_zero_survives() -> None:
    assert FLOAT.encode(2) == FLOAT.encode(2.0)
    assert str(FLOAT.decode(FLOAT.encode(-0.0))) == "-0.0"


def test_bytes_like_values_and_inputs_are_accepted() -> None:
    bytes_like: list[Any] = [bytearray(b"ab"), memoryview(b"ab")]
    assert [BYTES.encode(v) for v in bytes_like] == [b"\0\0\0\2ab"] * 2
    assert INT.decode(bytearray(INT.encode(7))) == INT.decode(memoryview(INT.encode(7))) == 7
    pair: Any = (1, 2)
    assert list_of(INT).encode(pair) == list_of(INT).encode([1, 2])


@pytest.mark.parametrize("payload", ["text", 42, None, (b"a",), [1]])
def test_a_payload_that_is_not_a_binary_is_invalid_binary(payload: Any) -> None:
    # A Gleam receiver crashes here (byte_size/1 raises); a typed error is the safe twin.
    with pytest.raises(InvalidBinary, match="payload is not a binary"):
        INT.decode(payload)


def test_decode_prefix_reads_at_an_offset_and_checks_it() -> None:
    data = b"\xff" + INT.encode(5) + b"rest"
    assert INT.decode_prefix(data, 1) == (5, 9)
    with pytest.raises(ValueError, match="offset"):
        INT.decode_prefix(data, 99)


# --- caps -----------------------------------------------------------------------------


def test_the_list_cap_comes_from_config_on_every_call() -> None:
    config.configure(max_decoded_list_elements=2)
    codec = list_of(INT)
    assert codec.decode(codec.encode([1, 2])) == [1, 2]  # exactly the cap is fine
    with pytest.raises(ValueTooLarge, match="list of 3 elements exceeds decoder cap of 2"):
        codec.encode([1, 2, 3])
    with pytest.raises(ListTooLong) as caught:
        codec.decode(_u32(3) + INT.encode(1) * 3)
    assert (caught.value.count, caught.value.cap) == (3, 2)
    config.reset()
    assert codec.decode(_u32(3) + INT.encode(1) * 3) == [1, 1, 1]


def test_each_nested_list_is_capped_on_its_own() -> None:
    config.configure(max_decoded_list_elements=2)
    codec = list_of(list_of(BOOL))
    value = [[True, False], [False, True]]
    assert codec.decode(codec.encode(value)) == value


def test_lists_of_nil_cannot_multiply_into_a_memory_bomb() -> None:
    # Three inner lists of 10 000 nils in 16 bytes: each is within the per-list cap,
    # together they are not. distribute would build 30 000 Nils (10^10 from 4 MiB).
    bomb = _u32(3) + _u32(10_000) * 3
    with pytest.raises(ListTooLong) as caught:
        list_of(list_of(NIL)).decode(bomb)
    assert caught.value.count == 10_000
    assert caught.value.cap == 10_000 + len(bomb) - 3 - 10_000
    one = _u32(1) + _u32(10_000)
    assert list_of(list_of(NIL)).decode(one) == [[None] * 10_000]


def test_real_nested_lists_fit_the_total_budget() -> None:
    codec = list_of(list_of(BOOL))
    value = [[True] * 9_000, [False] * 9_000, [True] * 9_000]
    assert codec.decode(codec.encode(value)) == value


# --- option and result ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "value", "hex_bytes"),
    [
        (option(option(option(INT))), Some(Some(None)), "010100"),
        (option(option(option(INT))), Some(None), "0100"),
        (option(NIL), Some(None), "01"),
        (option(NIL), None, "00"),
        (option(list_of(option(INT))), [None, 3], "01 00000002 00 01 0000000000000003"),
    ],
)
def test_some_appears_only_where_a_plain_value_would_be_ambiguous(
    codec: Codec[Any], value: Any, hex_bytes: str
) -> None:
    assert codec.encode(value) == bytes.fromhex(hex_bytes)
    assert codec.decode(bytes.fromhex(hex_bytes)) == value


def test_an_explicit_some_encodes_like_the_plain_value() -> None:
    assert option(INT).encode(Some(5)) == option(INT).encode(5)


def test_option_and_result_run_the_inner_top_level_decoder() -> None:
    with pytest.raises(InvalidBinary, match=r"trailing bytes \(1\) for nil top-level decode"):
        option(NIL).decode(b"\x01\x05")
    with pytest.raises(InvalidBinary, match=r"trailing bytes \(2\) for nil top-level decode"):
        result(STRING, NIL).decode(b"\x01\x05\x06")
    with pytest.raises(InvalidBinary, match="invalid option tag"):
        option(INT).decode(b"")


def test_result_values_are_ok_and_err() -> None:
    codec = result(STRING, INT)
    assert codec.decode(codec.encode(Ok("yes"))) == Ok("yes")
    assert codec.decode(codec.encode(Err(3))) == Err(3)


# --- tagged: the codec owns its tag and version -----------------------------------------


def test_tagged_writes_its_own_tag_and_version_and_reads_only_those() -> None:
    v1, v2 = tagged("counter", 1, INT), tagged("counter", 2, INT)
    assert v1.encode(42)[11:15] == _u32(1)
    assert v2.decode(v2.encode(42)) == 42
    with pytest.raises(TagMismatch):
        tagged("other", 2, INT).decode(v2.encode(42))


@pytest.mark.parametrize("version", [-1, 2**32])
def test_a_version_out_of_range_is_refused_when_the_codec_is_built(version: int) -> None:
    with pytest.raises(ValueTooLarge, match=f"tagged version {version} out of unsigned 32-bit"):
        tagged("t", version, INT)


@pytest.mark.parametrize("args", [(b"tag", 1), ("\udc80", 1), ("t", 1.0), ("t", True)])
def test_a_tagged_codec_needs_a_text_tag_and_an_int_version(args: tuple[Any, Any]) -> None:
    with pytest.raises(CodecDefinitionError):
        tagged(args[0], args[1], INT)


def test_a_tag_that_is_not_utf8_is_invalid_binary() -> None:
    with pytest.raises(InvalidBinary, match="tag not valid UTF-8"):
        tagged("x", 1, INT).decode(bytes.fromhex("00000001ff"))


def test_tagged_nests_through_its_sized_decoder() -> None:
    codec = tuple2(tagged("a", 1, INT), tagged("b", 2, STRING))
    assert codec.decode(codec.encode((1, "x"))) == (1, "x")


# --- variant: ids checked, errors typed -------------------------------------------------


@pytest.mark.parametrize("ident", [256, -1, 1000, True])
def test_a_variant_id_outside_one_byte_is_refused(ident: int) -> None:
    with pytest.raises(CodecDefinitionError, match=r"0\.\.255"):
        variant(case(ident, Message, STRING))


def test_duplicate_ids_and_empty_variants_are_refused() -> None:
    with pytest.raises(CodecDefinitionError, match="used by both Message and Quit"):
        variant(case(3, Message, STRING), unit(3, Quit.QUIT, name="Quit"))
    with pytest.raises(CodecDefinitionError, match="at least one case"):
        variant()


def test_a_dataclass_without_fields_must_be_a_unit() -> None:
    @dataclass(frozen=True)
    class Empty:
        pass

    with pytest.raises(CodecDefinitionError, match="use unit"):
        case(0, Empty, NIL)


def test_an_inner_encode_error_is_raised_typed_not_a_crash() -> None:
    with pytest.raises(ValueTooLarge, match="out of signed 64-bit range"):
        ADT.encode(Status(2**63, True))


def test_the_first_matching_case_wins() -> None:
    class Loud(Message):
        pass

    shape = variant(case(7, Message, STRING), case(8, Loud, STRING))
    assert shape.encode(Loud("hi"))[0] == 7


def test_unit_names_default_to_the_enum_member() -> None:
    class Colour(Enum):
        RED = 1
        BLUE = 2

    shape = variant(unit(0, Colour.RED), unit(1, Colour.BLUE))
    assert shape.decode(b"\x01") is Colour.BLUE
    with pytest.raises(TagMismatch) as caught:
        shape.decode(b"\x09")
    assert caught.value.expected == "one of RED, BLUE"
    with pytest.raises(EncodeFailed):
        shape.encode(1)


def test_duplicate_names_are_listed_once() -> None:
    shape = variant(case(0, Message, STRING), case(1, Message, STRING, name="Message"))
    with pytest.raises(TagMismatch, match="expected 'one of Message', got '5'"):
        shape.decode(b"\x05")


def test_trailing_bytes_after_a_unit_id_are_refused() -> None:
    with pytest.raises(InvalidBinary, match=r"trailing bytes \(1\) at top level"):
        ADT.decode(b"\x01\x00")


def test_explicit_wrap_and_unwrap() -> None:
    shape = variant(
        case(0, str, INT, name="Digits", wrap=str, unwrap=int),
    )
    assert shape.encode("12") == b"\x00" + INT.encode(12)
    assert shape.decode(b"\x00" + INT.encode(12)) == "12"


@dataclass(frozen=True)
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("must be positive")


def test_a_wrap_that_raises_becomes_decode_failed() -> None:
    shape = variant(case(0, Positive, INT))
    with pytest.raises(DecodeFailed, match="must be positive"):
        shape.decode(b"\x00" + INT.encode(-1))
    record = mapped(INT, Positive, lambda p: p.n)
    with pytest.raises(DecodeFailed, match="must be positive"):
        record.decode(INT.encode(0))
    with pytest.raises(DecodeFailed, match="must be positive"):
        record.decode_prefix(INT.encode(0))


def test_mapped_changes_types_not_bytes() -> None:
    record: Codec[Any] = mapped(tuple2(INT, BOOL), lambda t: Status(*t), lambda s: (s.code, s.ok))
    assert record.encode(Status(42, True)) == tuple2(INT, BOOL).encode((42, True))
    assert record.decode(record.encode(Status(1, False))) == Status(1, False)
    with pytest.raises(InvalidValue, match="unwrap failed"):
        record.encode("not a status")


# --- subject: two of distribute's leniencies kept, one closed ---------------------------


def test_a_subject_slice_with_bytes_after_the_term_is_refused() -> None:
    etf = encode((Atom("subject"), PID, REF))
    with pytest.raises(DecodeFailed, match="invalid subject binary"):
        SUBJECT.decode(_etf_slot(etf + b"\x00"))


def test_a_compressed_subject_is_accepted() -> None:
    tag = b"x" * 200
    etf = encode((Atom("subject"), PID, tag), compressed=True)
    assert etf[1] == 80
    assert SUBJECT.decode(_etf_slot(etf)) == WireSubject(PID, tag)


def test_a_compression_bomb_in_a_subject_is_decode_failed() -> None:
    body = zlib.compress(b"\x6a" * 1000)
    etf = b"\x83\x50" + (2**31).to_bytes(4, "big") + body
    with pytest.raises(DecodeFailed):
        SUBJECT.decode(_etf_slot(etf))


def test_any_tag_term_and_any_atom_are_accepted() -> None:
    for tag in (Atom("never_seen_before_by_anyone"), 12, (1, b"x"), [Atom("a")]):
        subject = WireSubject(PID, tag)
        assert SUBJECT.decode(SUBJECT.encode(subject)) == subject


def test_a_str_tag_travels_as_a_binary() -> None:
    assert SUBJECT.decode(SUBJECT.encode(WireSubject(PID, "counter"))).tag == b"counter"


@pytest.mark.parametrize(
    "subject",
    [
        WireSubject(PID, None),
        WireSubject(Reference(Atom("n@h"), 1, (1,)), b"t"),  # type: ignore[arg-type]
        WireSubject(Pid(Atom("n@h"), -1, 0, 0), b"t"),
    ],
)
def test_a_subject_without_an_erlang_form_is_invalid_value(subject: WireSubject) -> None:
    with pytest.raises(InvalidValue):
        SUBJECT.encode(subject)


# --- the payload cap and its telemetry -------------------------------------------------


def test_a_payload_of_exactly_the_cap_is_sent(events: list[telemetry.TelemetryEvent]) -> None:
    config.configure(max_payload_size_bytes=8)
    assert encode_payload(INT, 1, where=PayloadSite.SEND) == INT.encode(1)
    telemetry.flush()
    assert events == []


def test_a_payload_over_the_cap_is_refused_and_reported(
    events: list[telemetry.TelemetryEvent],
) -> None:
    config.configure(max_payload_size_bytes=8)
    with pytest.raises(PayloadTooLarge) as caught:
        encode_payload(STRING, "hello", where=PayloadSite.REPLY)
    assert caught.value.size == 9
    assert isinstance(caught.value, CodecEncodeError)
    assert isinstance(caught.value, CodecDecodeError)
    telemetry.flush()
    assert events == [telemetry.PayloadRejected(9, 8, PayloadSite.REPLY)]


def test_an_encode_error_is_raised_without_telemetry(
    events: list[telemetry.TelemetryEvent],
) -> None:
    with pytest.raises(ValueTooLarge):
        encode_payload(INT, 2**64, where=PayloadSite.SEND)
    telemetry.flush()
    assert events == []


@pytest.mark.parametrize(
    ("where", "size_site"),
    [
        (DecodeSite.RECEIVE, PayloadSite.RECEIVE),
        (DecodeSite.CALL_REPLY, PayloadSite.CALL_RESPONSE),
        (DecodeSite.ACTOR_INBOUND, PayloadSite.ACTOR_INBOUND),
    ],
)
def test_a_received_payload_over_the_cap_is_not_decoded(
    events: list[telemetry.TelemetryEvent], where: DecodeSite, size_site: PayloadSite
) -> None:
    config.configure(max_payload_size_bytes=7)
    with pytest.raises(PayloadTooLarge, match="Payload too large: 8 bytes"):
        decode_payload(INT, INT.encode(1), where=where)
    telemetry.flush()
    assert events == [telemetry.PayloadRejected(8, 7, size_site)]


def test_a_received_payload_that_fails_to_decode_is_reported(
    events: list[telemetry.TelemetryEvent],
) -> None:
    assert decode_payload(INT, INT.encode(3), where=DecodeSite.RECEIVE) == 3
    with pytest.raises(InvalidBinary):
        decode_payload(INT, INT.encode(3) + b"\x00", where=DecodeSite.ACTOR_INBOUND)
    with pytest.raises(InvalidBinary):
        decode_payload(INT, 42, where=DecodeSite.CALL_REPLY)
    telemetry.flush()
    assert events == [
        telemetry.DecodeFailed(
            "Invalid binary: trailing bytes (1) at top level", DecodeSite.ACTOR_INBOUND
        ),
        telemetry.DecodeFailed(
            "Invalid binary: payload is not a binary: got int", DecodeSite.CALL_REPLY
        ),
    ]


def test_the_site_names_are_distributes() -> None:
    assert {s.value for s in PayloadSite} == {
        "payload_on_send",
        "payload_on_call_request",
        "payload_on_call_response",
        "payload_on_reply",
        "payload_on_receive",
        "payload_on_actor_inbound",
    }
    assert {s.value for s in DecodeSite} == {
        "decode_on_receive",
        "decode_on_call_reply",
        "decode_on_actor_inbound",
    }


def test_the_messaging_events_carry_the_cards_fields() -> None:
    made: list[Callable[[], object]] = [
        lambda: telemetry.CallTimedOut(5.0),
        telemetry.CallTargetDown,
        lambda: telemetry.ActorRegistered("counter"),
        lambda: telemetry.ActorRegistrationFailed("counter", "already registered"),
        lambda: telemetry.ActorUnregistered("counter", True),
    ]
    for make in made:
        event = make()
        assert event == make()
        hash(event)
