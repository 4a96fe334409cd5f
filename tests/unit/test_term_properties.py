"""Round-trip properties over generated terms (Hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from erldist.term import decode, decode_prefix, encode, encode_into
from tests.support.terms import canon, terms

# No deadline: a big generated term on a loaded CI machine is not a failure.
thorough = settings(max_examples=300, deadline=None)


@thorough
@given(terms)
def test_decode_inverts_encode(term: Any) -> None:
    assert canon(decode(encode(term))) == canon(term)


@thorough
@given(terms, st.sampled_from([True, 1, 9]))
def test_compressed_round_trip(term: Any, level: bool | int) -> None:
    assert canon(decode(encode(term, compressed=level))) == canon(term)


@thorough
@given(terms)
def test_encoding_is_deterministic_and_reencodes_identically(term: Any) -> None:
    data = encode(term)
    assert encode(decode(data)) == data


@settings(max_examples=100, deadline=None)
@given(st.lists(terms, min_size=1, max_size=4), st.binary(max_size=8))
def test_concatenated_terms_decode_one_by_one(items: list[Any], prefix: bytes) -> None:
    frame = bytearray(prefix)
    for item in items:
        encode_into(frame, item)
    pos = len(prefix)
    for item in items:
        got, pos = decode_prefix(frame, pos, version_byte=False)
        assert canon(got) == canon(item)
    assert pos == len(frame)


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=50))
def test_str_travels_as_its_utf8_binary(text: str) -> None:
    assert decode(encode(text)) == text.encode()
