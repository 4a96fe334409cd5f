"""Properties of the payload codecs over generated codecs and values (Hypothesis).

A *shape* is a randomly built codec together with a strategy for its values,
so every combinator is exercised nested inside every other.
"""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass
from enum import Enum
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from erldist import config
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
    Ok,
    Some,
    WireSubject,
    case,
    list_of,
    option,
    result,
    tagged,
    tuple2,
    tuple3,
    unit,
    variant,
)
from erldist.errors import CodecDecodeError
from erldist.term import Atom, Pid, Reference

thorough = settings(max_examples=300, deadline=None)


@dataclass(frozen=True)
class Shape:
    codec: Codec[Any]
    values: st.SearchStrategy[Any]
    #: Whether the codec has one encoding per value (a subject's ETF has several).
    canonical: bool = True


_nodes = st.sampled_from([Atom("gleam@127.0.0.1"), Atom("py@host"), Atom("a@b.c")])
_u32 = st.integers(0, 2**32 - 1)
_pids = st.builds(Pid, _nodes, _u32, _u32, _u32)
_refs = st.builds(Reference, _nodes, _u32, st.lists(_u32, min_size=1, max_size=5).map(tuple))
_tags = st.one_of(
    st.binary(max_size=20),
    _refs,
    st.sampled_from([Atom("nil"), Atom("reply")]),
    st.integers(-(2**70), 2**70),
)

LEAVES = [
    Shape(INT, st.integers(-(2**63), 2**63 - 1)),
    Shape(FLOAT, st.floats(allow_nan=False, allow_infinity=False)),
    Shape(BOOL, st.booleans()),
    Shape(STRING, st.text(max_size=20)),
    Shape(BYTES, st.binary(max_size=20)),
    Shape(NIL, st.none()),
    Shape(SUBJECT, st.builds(WireSubject, _pids, _tags), canonical=False),
]

# Case classes for generated variants: distinct classes so cases can be told apart.
_CASE_CLASSES = [make_dataclass(f"Case{i}", [("value", Any)], frozen=True) for i in range(4)]


class Mark(Enum):
    ONLY = "only"


def _some(value: Any) -> Any:
    return Some(value) if value is None or isinstance(value, Some) else value


def _option(s: Shape) -> Shape:
    return Shape(option(s.codec), st.none() | s.values.map(_some), s.canonical)


def _list(s: Shape) -> Shape:
    return Shape(list_of(s.codec), st.lists(s.values, max_size=4), s.canonical)


def _result(a: Shape, b: Shape) -> Shape:
    values = a.values.map(Ok) | b.values.map(Err)
    return Shape(result(a.codec, b.codec), values, a.canonical and b.canonical)


def _tuple2(a: Shape, b: Shape) -> Shape:
    return Shape(
        tuple2(a.codec, b.codec), st.tuples(a.values, b.values), a.canonical and b.canonical
    )


def _tuple3(a: Shape, b: Shape, c: Shape) -> Shape:
    return Shape(
        tuple3(a.codec, b.codec, c.codec),
        st.tuples(a.values, b.values, c.values),
        a.canonical and b.canonical and c.canonical,
    )


@st.composite
def _tagged(draw: st.DrawFn, inner: st.SearchStrategy[Shape]) -> Shape:
    s = draw(inner)
    tag = draw(st.text(max_size=8))
    version = draw(_u32)
    return Shape(tagged(tag, version, s.codec), s.values, s.canonical)


@st.composite
def _variant(draw: st.DrawFn, inner: st.SearchStrategy[Shape]) -> Shape:
    shapes = draw(st.lists(inner, min_size=1, max_size=3))
    ids = draw(
        st.lists(
            st.integers(0, 255), min_size=len(shapes) + 1, max_size=len(shapes) + 1, unique=True
        )
    )
    cases = [case(ids[i], _CASE_CLASSES[i], s.codec) for i, s in enumerate(shapes)]
    values = [s.values.map(_CASE_CLASSES[i]) for i, s in enumerate(shapes)]
    if draw(st.booleans()):
        cases.append(unit(ids[-1], Mark.ONLY))
        values.append(st.just(Mark.ONLY))
    return Shape(variant(*cases), st.one_of(values), all(s.canonical for s in shapes))


shapes: st.SearchStrategy[Shape] = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.one_of(
        inner.map(_option),
        inner.map(_list),
        st.tuples(inner, inner).map(lambda ab: _result(*ab)),
        st.tuples(inner, inner).map(lambda ab: _tuple2(*ab)),
        st.tuples(inner, inner, inner).map(lambda abc: _tuple3(*abc)),
        _tagged(inner),
        _variant(inner),
    ),
    max_leaves=6,
)


@st.composite
def shape_and_value(draw: st.DrawFn) -> tuple[Shape, Any]:
    s = draw(shapes)
    return s, draw(s.values)


@thorough
@given(shape_and_value())
def test_decode_inverts_encode(pair: tuple[Shape, Any]) -> None:
    shape, value = pair
    data = shape.codec.encode(value)
    assert shape.codec.decode(data) == value
    assert shape.codec.encode(shape.codec.decode(data)) == data


@thorough
@given(shape_and_value(), st.binary(max_size=6))
def test_the_sized_decoder_stops_where_the_value_ends(
    pair: tuple[Shape, Any], after: bytes
) -> None:
    shape, value = pair
    data = shape.codec.encode(value)
    assert shape.codec.decode_prefix(data + after) == (value, len(data))


def _decode_or_typed_error(codec: Codec[Any], data: bytes) -> tuple[bool, Any]:
    """Decode ``data``; the only exception allowed out is a ``CodecDecodeError``."""
    try:
        return True, codec.decode(data)
    except CodecDecodeError:
        return False, None


@settings(max_examples=1000, deadline=None)
@given(shapes, st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_typed_errors(shape: Shape, data: bytes) -> None:
    ok, value = _decode_or_typed_error(shape.codec, data)
    if ok and shape.canonical:
        # Whatever decodes was written by the encoder: one encoding per value.
        assert shape.codec.encode(value) == data


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Shape, bytes]:
    """A valid encoding with one cut, flipped byte, inserted run or appended run."""
    shape, value = draw(shape_and_value())
    data = bytearray(shape.codec.encode(value))
    how = draw(st.sampled_from(["cut", "flip", "insert", "append"]))
    at = draw(st.integers(0, len(data)))
    if how == "cut":
        del data[at:]
    elif how == "flip" and data:
        i = min(at, len(data) - 1)
        data[i] ^= draw(st.integers(1, 255))
    elif how == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=4))
    else:
        data += draw(st.binary(min_size=1, max_size=4))
    return shape, bytes(data)


@settings(max_examples=1000, deadline=None)
@given(mutated())
def test_damaged_encodings_raise_only_typed_errors(case_: tuple[Shape, bytes]) -> None:
    shape, data = case_
    ok, value = _decode_or_typed_error(shape.codec, data)
    if ok and shape.canonical:
        assert shape.codec.encode(value) == data


@settings(max_examples=300, deadline=None)
@given(mutated(), st.integers(1, 3))
def test_a_small_list_cap_still_raises_only_typed_errors(
    case_: tuple[Shape, bytes], cap: int
) -> None:
    shape, data = case_
    config.configure(max_decoded_list_elements=cap)
    try:
        _decode_or_typed_error(shape.codec, data)
    finally:
        config.reset()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_etf_in_a_subject_slot_raises_only_typed_errors(body: bytes) -> None:
    etf = b"\x83" + body
    _decode_or_typed_error(SUBJECT, len(etf).to_bytes(4, "big") + etf)
