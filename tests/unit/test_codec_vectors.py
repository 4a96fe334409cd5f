"""Every hex vector of the Gleam wire card, both ways, with distribute's exact errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from erldist import codec, config
from erldist.codec import INT, NIL, SUBJECT, option
from erldist.errors import CodecDecodeError, CodecEncodeError, DecodeFailed
from erldist.term import Atom, decode, encode
from tests.support.gleam_vectors import (
    ENCODE_ERRORS,
    MESSAGES,
    PID,
    REJECTED,
    VECTORS,
    EncodeRefused,
    Rejected,
    Vector,
)


@pytest.fixture(autouse=True)
def _default_config() -> Iterator[None]:
    config.reset()
    yield
    config.reset()


def _id(item: Vector | Rejected | EncodeRefused) -> str:
    shown = item.hex if not isinstance(item, EncodeRefused) else repr(item.value)
    return f"{item.section}:{shown[:40]}"


@pytest.mark.parametrize("vector", VECTORS, ids=_id)
def test_encodes_to_the_cards_bytes(vector: Vector) -> None:
    assert vector.codec.encode(vector.value) == vector.data


@pytest.mark.parametrize("vector", VECTORS, ids=_id)
def test_decodes_the_cards_bytes(vector: Vector) -> None:
    assert vector.codec.decode(vector.data) == vector.value


@pytest.mark.parametrize("vector", VECTORS, ids=_id)
def test_sized_decode_stops_at_the_end_and_leaves_what_follows(vector: Vector) -> None:
    data = vector.data + b"\xde\xad"
    value, stop = vector.codec.decode_prefix(data)
    assert (value, stop) == (vector.value, len(vector.data))


@pytest.mark.parametrize("case", REJECTED, ids=_id)
def test_rejects_with_distributes_error(case: Rejected) -> None:
    with pytest.raises(CodecDecodeError) as caught:
        case.codec.decode(case.data)
    assert type(caught.value) is type(case.error)
    assert str(caught.value) == str(case.error)


@pytest.mark.parametrize("case", ENCODE_ERRORS, ids=_id)
def test_refuses_to_encode_with_distributes_error(case: EncodeRefused) -> None:
    with pytest.raises(CodecEncodeError) as caught:
        case.codec.encode(case.value)
    assert type(caught.value) is type(case.error)
    assert str(caught.value) == str(case.error)


@pytest.mark.parametrize(("message", "hex_bytes"), MESSAGES)
def test_whole_messages_are_the_cards_term_to_binary(message: object, hex_bytes: str) -> None:
    data = bytes.fromhex(hex_bytes)
    assert encode(message) == data
    assert decode(data) == message


def test_sized_option_none_leaves_the_rest() -> None:
    assert option(INT).decode_prefix(bytes.fromhex("00dead")) == (None, 1)


def test_nil_consumes_nothing_when_nested() -> None:
    assert NIL.decode_prefix(b"\x01\x02\x03") == (None, 0)


@pytest.mark.parametrize(
    "term",
    [
        (Atom("subject"), 1, Atom("x")),
        (Atom("named_subject"), Atom("foo")),
        (Atom("subject"), PID, b"t", b"extra"),
        (b"subject", PID, b"t"),
        [Atom("subject"), PID, b"t"],
    ],
)
def test_subject_etf_of_another_shape_is_decode_failed(term: object) -> None:
    etf = encode(term)
    with pytest.raises(DecodeFailed, match=r"^Decode failed: invalid subject binary$"):
        SUBJECT.decode(len(etf).to_bytes(4, "big") + etf)


def test_error_renderings_are_distributes() -> None:
    rendered = {
        codec.InvalidBinary("m"): "Invalid binary: m",
        codec.TypeMismatch("m"): "Type mismatch: m",
        codec.DecodeFailed("m"): "Decode failed: m",
        codec.InsufficientData("m"): "Insufficient data: m",
        codec.DecodeTimeout(): "Decode timeout",
        codec.TagMismatch("e", "g"): "Tag mismatch: expected 'e', got 'g'",
        codec.VersionMismatch(1, 2): "Version mismatch: expected 1, got 2",
        codec.PayloadTooLarge(9): "Payload too large: 9 bytes",
        codec.ListTooLong(3, 2): "List too long: declared 3 elements, cap is 2",
        codec.InvalidValue("m"): "Invalid value: m",
        codec.EncodeFailed("m"): "Encode failed: m",
        codec.ValueTooLarge("m"): "Value too large: m",
    }
    for error, text in rendered.items():
        assert str(error) == error.to_string() == text
