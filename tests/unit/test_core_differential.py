"""The native core against the pure one: same terms, same bytes, same errors.

Both cores run in this one process, whichever ``ERLDIST_CORE`` chose for the
rest of the suite: the pure functions from ``term.decode``/``term.encode`` and
``FrameBatchDecoder``, the native ones straight from ``erldist_native``. Each
comparison is exact: result types all the way down (``Atom`` vs ``str`` vs
``bool``, ``FrozenList``...), dict order, encoded bytes, and for errors the
exception type, offset and message.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erldist.errors import DecodeError, EncodeError
from erldist.protocol.flags import DFlag
from erldist.protocol.frame_batch import FrameBatchDecoder
from erldist.protocol.framing import DistEncoder
from erldist.term.decode import DEFAULT_LIMITS, DecodeLimits
from erldist.term.decode import decode as pure_decode
from erldist.term.decode import decode_prefix as pure_decode_prefix
from erldist.term.encode import encode as pure_encode
from erldist.term.types import (
    Atom,
    Export,
    FrozenList,
    FrozenMap,
    ImproperList,
    Pid,
    Port,
    Reference,
)
from tests.support.terms import big_terms, random_term
from tests.unit.test_term_hostile import SAMPLES

native = pytest.importorskip("erldist_native", reason="the native core is not installed")

POOL = (
    Pid(Atom("a@h"), 1, 2, 3),
    Reference(Atom("a@h"), 7, (1, 2, 3)),
    Port(Atom("a@h"), 2**40, 1),
    Port(Atom("a@h"), 5, 1),
    Export(Atom("lists"), Atom("map"), 2),
)
EXTRA = [
    ImproperList((1, Atom("x")), b"tail"),
    FrozenList([1, 2]),
    {FrozenList([104, 105]): 1, FrozenMap({1: 2}): 2, (1, FrozenList([2])): 3},
    {i: i for i in range(200)},
    [float(i) for i in range(70)],
    2**64,
    -(2**63),
    2**63,
    -(2**64) + 1,
]


def typed(term: Any) -> Any:
    """``term`` with the exact type of every part spelled out, dict order kept."""
    kind = type(term)
    if kind in (list, tuple, FrozenList):
        return (kind.__name__, [typed(x) for x in term])
    if kind is dict:
        return ("dict", [(typed(k), typed(v)) for k, v in term.items()])
    if kind is FrozenMap:
        return ("FrozenMap", [(typed(k), typed(v)) for k, v in term.items()])
    if kind is float:
        return ("float", term.hex())
    if kind is ImproperList:
        return ("ImproperList", typed(term.items), typed(term.tail))
    return (kind.__name__, repr(term), term)


def outcome(fn: Callable[[], Any]) -> Any:
    try:
        result = fn()
    except Exception as exc:
        detail = (exc.offset, exc.reason) if isinstance(exc, DecodeError) else ()
        return ("raised", type(exc).__name__, str(exc), detail)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int):
        return ("ok", typed(result[0]), result[1])
    return ("ok", typed(result))


def same_decode(data: bytes, limits: DecodeLimits | None = None) -> None:
    pure = outcome(lambda: pure_decode(data, limits=limits))
    assert outcome(lambda: native.decode(data, limits=limits)) == pure, data.hex()


def same_prefix(data: bytes, offset: int, version_byte: bool) -> None:
    pure = outcome(lambda: pure_decode_prefix(data, offset, version_byte=version_byte))
    got = outcome(lambda: native.decode_prefix(data, offset, version_byte=version_byte))
    assert got == pure, (data.hex(), offset, version_byte)


def corpus(seed: int, size: int) -> list[Any]:
    rng = random.Random(seed)
    return [random_term(rng, POOL) for _ in range(size)] + big_terms(rng) + EXTRA


def test_corpus_encodes_and_decodes_identically() -> None:
    for term in corpus(20261129, 3000):
        data = pure_encode(term)
        assert native.encode_body(term, True) == data
        assert native.encode_body(term, False) == data[1:]
        same_decode(data)
        same_prefix(data[1:], 0, False)


@pytest.mark.parametrize("level", [True, 1, 9])
def test_compressed_corpus(level: bool | int) -> None:
    for term in corpus(level + 7, 300):
        data = pure_encode(term, compressed=level)
        assert native.encode(term, compressed=level) == data
        same_decode(data)


def test_hostile_truncations_and_corruptions() -> None:
    for sample in SAMPLES:
        for cut in range(len(sample) + 1):
            same_decode(sample[:cut])
        for pos in range(1, len(sample)):
            for value in (0x00, 0x01, 0x7F, 0x80, 0xFF, sample[pos] ^ 0x01):
                corrupt = bytearray(sample)
                corrupt[pos] = value
                same_decode(bytes(corrupt))


@pytest.mark.parametrize("source", [bytes, bytearray, memoryview])
def test_every_buffer_type_and_offset(source: Callable[[bytes], Any]) -> None:
    data = pure_encode([Atom("a"), 1, b"x"])
    for offset in (-1, 0, 1, 2, len(data), len(data) + 5, 2**70):
        got = outcome(partial(native.decode_prefix, source(data), offset))
        assert got == outcome(partial(pure_decode_prefix, source(data), offset))
    assert outcome(lambda: native.decode(source(data))) == outcome(
        lambda: pure_decode(source(data))
    )


def test_encode_options() -> None:
    term = [Atom("a")] * 50
    options: tuple[Any, ...] = (False, True, 0, 1, 9, 10, -1, "yes", 1.5)
    for compressed in options:
        got = outcome(partial(native.encode, term, compressed=compressed))
        assert got == outcome(partial(pure_encode, term, compressed=compressed))


def test_random_byte_soup_after_every_tag() -> None:
    rng = random.Random(5)
    for _ in range(20_000):
        tag = rng.randrange(256)
        tail = rng.randbytes(rng.randrange(0, 24))
        same_decode(bytes([131, tag]) + tail)
        same_prefix(bytes([tag]) + tail, 0, False)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes(data: bytes) -> None:
    same_decode(data)
    same_decode(b"\x83" + data)


@pytest.mark.parametrize(
    "limits",
    [
        DecodeLimits(max_depth=2),
        DecodeLimits(max_elements=5),
        DecodeLimits(max_binary_bytes=3),
        DecodeLimits(max_bigint_bytes=2),
        DecodeLimits(max_inflated_bytes=10),
        DecodeLimits(max_elements=10**30),
    ],
)
def test_caps(limits: DecodeLimits) -> None:
    for term in corpus(3, 300):
        same_decode(pure_encode(term), limits)
        same_decode(pure_encode(term, compressed=True), limits)


def deep(levels: int) -> Any:
    term: Any = []
    for _ in range(levels):
        term = [term]
    return term


def cyclic() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


BAD_TERMS: list[Any] = [
    None,
    object(),
    {1, 2},
    float("nan"),
    float("-inf"),
    str.__new__(Atom, "x" * 256),
    str.__new__(Atom, "é" * 256),
    str.__new__(Atom, "\ud800" * 256),
    Atom("\ud800"),
    "\udfff",
    Pid(Atom("a@h"), -1, 0, 0),
    Pid(Atom("a@h"), 1.5, 0, 0),  # type: ignore[arg-type]
    Pid(5, 1, 2, 3),  # type: ignore[arg-type]
    Reference(Atom("a@h"), 1, (1, 2, 3, 4, 5, 6)),
    Reference(Atom("a@h"), 2**32, (1,)),
    Port(Atom("a@h"), 2**64, 1),
    Port(Atom("a@h"), 1, True),
    Export(Atom("m"), Atom("f"), 256),
    [1, 2, None],
    {Atom("k"): {1: object()}},
    deep(5000),
    cyclic(),
]


@pytest.mark.parametrize("term", BAD_TERMS, ids=range(len(BAD_TERMS)))
def test_encode_errors(term: Any) -> None:
    assert outcome(lambda: native.encode_body(term, True)) == outcome(lambda: pure_encode(term))


HEADS = [(b"\x70\x83", b"\x83"), (b"\x83\x44\x00", b"")]  # pass-through, header mode


_NOTHING = object()


def pure_frame(head: bytes, control: Any, between: bytes = b"", payload: Any = _NOTHING) -> bytes:
    """A frame as the pure core lays it out: length, head, control[, between, payload]."""
    body = head + pure_encode(control)[1:]
    if payload is not _NOTHING:
        body += between + pure_encode(payload)[1:]
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(("head", "between"), HEADS)
def test_frames_are_written_identically(head: bytes, between: bytes) -> None:
    terms = corpus(20261130, 400)
    for control, payload in zip(terms, reversed(terms), strict=True):
        assert native.frame(head, control) == pure_frame(head, control)
        assert (native.frame_message(head, control, between, payload)
                == pure_frame(head, control, between, payload))
        assert native.frame(head, payload) == struct.pack(
            ">I", len(head) + len(pure_encode(payload)) - 1) + head + pure_encode(payload)[1:]


@pytest.mark.parametrize("term", BAD_TERMS, ids=range(len(BAD_TERMS)))
def test_frame_errors(term: Any) -> None:
    """A term that cannot be encoded fails the frame with the encoder's error,
    whether it is the control or the payload."""
    pure = outcome(lambda: pure_encode(term))
    assert pure[0] == "raised"
    assert outcome(lambda: native.frame(b"p\x83", term)) == pure
    assert outcome(lambda: native.frame_message(b"p\x83", (22,), b"\x83", term)) == pure
    assert outcome(lambda: native.frame_message(b"p\x83", term, b"\x83", 1)) == pure
    assert outcome(lambda: native.frame(b"p\x83", term)) == pure


@pytest.mark.parametrize("flags", [0, DFlag.DIST_HDR_ATOM_CACHE | DFlag.FRAGMENTS])
def test_dist_encoder_writes_what_the_pure_layout_says(flags: int) -> None:
    """``DistEncoder`` (whichever core this run chose) and ``payload_into`` agree
    with the pure layout, and leave a batch as it was when a term fails."""
    from erldist.errors import EncodeError
    from erldist.protocol.framing import payload_into

    encoder = DistEncoder(flags)
    head, between = HEADS[1] if encoder.header_mode else HEADS[0]
    control, payload = (22, Pid(Atom("a@h"), 1, 2, 3), Pid(Atom("b@h"), 4, 5, 6)), [b"x", 1.5]
    batch = bytearray(b"before")
    encoder.frame_into(batch, control, payload)
    encoder.frame_into(batch, control)
    header = encoder.frame(control, 0)[4:-2]  # less the length and the payload 0
    payload_into(batch, header, payload)
    expected = (b"before" + pure_frame(head, control, between, payload)
                + pure_frame(head, control) + pure_frame(head, control, between, payload))
    assert bytes(batch) == expected
    bads: list[Callable[[], None]] = [lambda: encoder.frame_into(batch, control, {1, 2}),
                                      lambda: encoder.frame_into(batch, None),
                                      lambda: payload_into(batch, header, object())]
    for bad in bads:
        with pytest.raises(EncodeError):
            bad()
    assert bytes(batch) == expected


def test_lists_that_are_and_are_not_strings() -> None:
    # STRING_EXT is decided item by item, stopping at the first misfit.
    lists: list[Any] = [
        [0, 255], [0, 256], [255, -1], [1, True], [1, 2**70], [2**70, 1], [1, 1.0],
        [1, Atom("a")], [7] * 0xFFFF, [7] * 0x10000, list(range(0, 1000, 100)),
    ]
    for term in lists:
        for form in (term, FrozenList(term), {FrozenList(term): term}):
            assert native.encode_body(form, True) == pure_encode(form)


def test_atoms_either_side_of_the_length_limits() -> None:
    # The native encoder counts characters only when the UTF-8 passes 255 bytes.
    for text in ("", "x" * 255, "é" * 127, "é" * 128, "é" * 255, "€" * 255, "x" * 254 + "é"):
        for term in (Atom(text), Pid(Atom(text), 1, 2, 3)):
            assert native.encode_body(term, True) == pure_encode(term)


def test_encoding_after_errors_nested_calls_and_big_terms() -> None:
    # The output buffer is kept between calls: nothing of a failed, nested
    # or large encoding may leak into the next one.
    class Reentrant(dict[Any, Any]):
        def items(self) -> Any:
            native.encode_body([Atom("inner")] * 100, True)
            return super().items()

    terms: list[Any] = [
        (Atom("a"), 1),
        b"x" * 100_000,
        (Atom("b"), 2),
        Reentrant({Atom("k"): [Atom("v"), b"w"]}),
        (Atom("c"), 3),
    ]
    for term in terms:
        assert native.encode_body(term, True) == pure_encode(term)
        for bad in BAD_TERMS[:4]:
            with pytest.raises(EncodeError):
                native.encode_body((1, [2, bad]), True)
        assert native.encode_body(term, False) == pure_encode(term)[1:]


def test_decoding_after_errors_and_inside_compressed_terms() -> None:
    # The decoder keeps its container stack between calls.
    good = pure_encode([(Atom("a"), [1, 2, {Atom("k"): (3,)}])] * 3)
    packed = pure_encode([good, [(Atom("z"),) * 40] * 20, good], compressed=9)
    for data in (good, packed, good[:-3], good, packed[:-1], packed):
        same_decode(data)


def test_atom_table_tells_latin1_from_utf8() -> None:
    latin1 = bytes([131, 100, 0, 1, 0xE9])  # ATOM_EXT: é
    utf8_raw_same = bytes([131, 119, 1, 0xE9])  # the same byte as UTF-8: invalid
    utf8 = bytes([131, 119, 2, 0xC3, 0xA9])  # SMALL_ATOM_UTF8_EXT: é
    for data in (latin1, utf8_raw_same, utf8, latin1, utf8_raw_same):
        same_decode(data)
    # More atoms than the table has slots, each twice, in both encodings.
    for name in [f"atom_{i}" for i in range(600)] * 2:
        same_decode(pure_encode(Atom(name)))
        raw = name.encode()
        same_decode(bytes([131, 100, 0, len(raw), *raw]))


IDENTIFIERS = [
    pure_encode(Pid(Atom("a@h"), 1, 2, 3)),
    pure_encode(Pid(Atom("node@host"), 2**32 - 1, 0, 2**32 - 1)),
    bytes([131, 103, 119, 3, *b"a@h", 0, 0, 0, 1, 0, 0, 0, 2, 3]),  # PID_EXT
    pure_encode(Reference(Atom("a@h"), 7, (1, 2, 3))),
    pure_encode(Reference(Atom("a@h"), 7, (1, 2, 3, 4, 5))),
    bytes([131, 114, 0, 1, 119, 3, *b"a@h", 2, 0, 0, 0, 9]),  # NEW_REFERENCE_EXT
    bytes([131, 101, 119, 3, *b"a@h", 0, 0, 0, 9, 2]),  # REFERENCE_EXT
    pure_encode(Port(Atom("a@h"), 5, 1)),
    pure_encode(Port(Atom("a@h"), 2**40, 1)),
    bytes([131, 102, 119, 3, *b"a@h", 0, 0, 0, 5, 1]),  # PORT_EXT
]


@pytest.mark.parametrize("data", IDENTIFIERS, ids=range(len(IDENTIFIERS)))
def test_identifiers_built_natively_are_the_pure_ones(data: bytes) -> None:
    import copy
    import dataclasses

    same_decode(data)
    pure, built = pure_decode(data), native.decode(data)
    assert type(built) is type(pure)
    assert built == pure and pure == built
    assert not built != pure  # noqa: SIM202 - __ne__ itself
    assert hash(built) == hash(pure)
    assert {pure: 1}[built] == 1
    assert repr(built) == repr(pure)
    assert dataclasses.astuple(built) == dataclasses.astuple(pure)
    assert copy.copy(built) == copy.deepcopy(built) == pure
    assert not hasattr(built, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.node = Atom("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        del built.node
    if data[1] in (88, 89, 90):  # the current encodings come back byte for byte
        assert native.encode_body(built, True) == data


def test_subclasses_encode_as_their_base() -> None:
    import enum
    from collections import OrderedDict, namedtuple

    class Color(enum.IntEnum):
        RED = 300

    class Name(Atom):
        pass

    point = namedtuple("point", "x y")
    ordered: OrderedDict[Any, Any] = OrderedDict([(1, 2), (3, 4)])
    ordered.move_to_end(1)
    class Blob(bytes):
        pass

    class Buffer(bytearray):
        pass

    terms = (
        Color.RED, Name("n"), Name("é" * 200), point(1, 2), ordered, [True, 1], [1, 300],
        b"x" * 70000, Blob(b"blob"), Buffer(b"buf"), Pid(Name("a@h"), 1, 2, 3),
    )
    for term in terms:
        assert native.encode_body(term, True) == pure_encode(term)


# --- frame batches ------------------------------------------------------------------------

HEADER_FLAGS = int(DFlag.DIST_HDR_ATOM_CACHE)


def fragments(seq: int, body: bytes, pieces: int) -> list[bytes]:
    size = -(-len(body) // pieces)
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    frames = []
    for i, chunk in enumerate(chunks):
        frag = len(chunks) - i
        if i == 0:
            head = b"\x83\x45" + struct.pack(">QQ", seq, frag) + b"\x00"
        else:
            head = b"\x83\x46" + struct.pack(">QQ", seq, frag)
        frames.append(head + chunk)
    return frames


def stream(rng: random.Random, header_mode: bool, hostile: bool) -> bytes:
    encoder = DistEncoder(HEADER_FLAGS if header_mode else 0)
    out = bytearray()
    for _ in range(rng.randrange(1, 30)):
        term = random_term(rng, POOL)
        choice = rng.random()
        if choice < 0.1:
            out += b"\x00\x00\x00\x00"
        elif header_mode and choice < 0.3:
            body = encoder.frame((2, Atom(""), Pid(Atom("a@h"), 1, 2, 3)), term)[7:]
            for frame in fragments(rng.randrange(4), body, rng.randrange(1, 5)):
                out += len(frame).to_bytes(4, "big") + frame
        else:
            whole = bytearray(encoder.frame((2, Atom(""), Pid(Atom("a@h"), 1, 2, 3)), term))
            if hostile and rng.random() < 0.3:
                whole[rng.randrange(4, len(whole))] = rng.randrange(256)
            out += whole
    if hostile and rng.random() < 0.5:
        out += rng.randbytes(rng.randrange(1, 40))
    return bytes(out)


def batch_outcome(decoder: Any, chunks: list[bytes], budget: int | None = None) -> list[Any]:
    seen: list[Any] = []
    for chunk in chunks:
        try:
            items = decoder.feed(chunk, budget)
        except Exception as exc:
            seen.append(("raised", type(exc).__name__, str(exc)))
            continue
        for item in items:
            if isinstance(item, Exception):
                cause = item.__cause__
                seen.append(("item", type(item).__name__, str(item), type(cause).__name__))
            else:
                seen.append(("message", typed(item)))
        seen.append(("buffered", decoder.buffered))
    return seen


@pytest.mark.parametrize("header_mode", [False, True])
@pytest.mark.parametrize("hostile", [False, True])
def test_frame_batches(header_mode: bool, hostile: bool) -> None:
    rng = random.Random(f"{header_mode}{hostile}")
    flags = HEADER_FLAGS if header_mode else 0
    for _ in range(150):
        data = stream(rng, header_mode, hostile)
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data), rng.randrange(0, 6))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        max_frame = rng.choice((1 << 30, 60))
        limits = rng.choice((DEFAULT_LIMITS, DecodeLimits(max_depth=1)))
        pure = FrameBatchDecoder(flags, limits, max_frame, 2, 500)
        fast = native.FrameDecoder(header_mode, limits, max_frame, 2, 500)
        assert batch_outcome(fast, chunks) == batch_outcome(pure, chunks)


def budgeted_outcome(decoder: Any, chunks: list[bytes], budgets: list[int | None]) -> list[Any]:
    """``batch_outcome`` under work budgets, then drained as the runtime drains:
    ``feed(b"", budget)``, or every other time ``feed(b"", next_cost)`` when
    a message costing more than the budget is held back."""
    seen: list[Any] = []
    calls = [*zip(chunks, budgets, strict=True), *[(b"", budget) for budget in budgets]]
    for chunk, budget in calls:
        cost = decoder.next_cost
        seen.append(("cost", cost))
        held = budget is not None and cost > budget and len(seen) % 2 == 1
        seen += batch_outcome(decoder, [chunk], cost if held else budget)
    return seen


def compressed_frame(rng: random.Random, header_mode: bool) -> bytes:
    """A SEND whose payload is a compressed term, maybe lying about its size."""
    plain = pure_encode([rng.randrange(256) for _ in range(rng.randrange(50, 400))])[1:]
    declared = len(plain) + rng.choice((0, 0, 0, 1, -1))
    payload = b"P" + declared.to_bytes(4, "big") + zlib.compress(plain)
    encoder = DistEncoder(HEADER_FLAGS if header_mode else 0)
    head = encoder.frame((2, Atom(""), Pid(Atom("a@h"), 1, 2, 3)), 0)[4:-2]
    body = head + payload
    return len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize("header_mode", [False, True])
@pytest.mark.parametrize("hostile", [False, True])
def test_frame_batches_under_budgets(header_mode: bool, hostile: bool) -> None:
    """Same messages, held-back messages, costs and errors under any budgets."""
    rng = random.Random(f"budget{header_mode}{hostile}")
    flags = HEADER_FLAGS if header_mode else 0
    for _ in range(150):
        parts = [stream(rng, header_mode, hostile)]
        for _ in range(rng.randrange(3)):
            parts.insert(rng.randrange(len(parts) + 1), compressed_frame(rng, header_mode))
        data = b"".join(parts)
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data), rng.randrange(0, 6))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        budgets = [rng.choice((None, 0, 1, 40, 200, 1000)) for _ in chunks]
        limits = rng.choice((DEFAULT_LIMITS, DecodeLimits(max_depth=1)))
        pure = FrameBatchDecoder(flags, limits, 1 << 30, 2, 500)
        fast = native.FrameDecoder(header_mode, limits, 1 << 30, 2, 500)
        assert budgeted_outcome(fast, chunks, budgets) == budgeted_outcome(pure, chunks, budgets)


@pytest.mark.parametrize(
    "frame",
    [
        b"\x83\x44\x01",
        b"\x83\x47\x00",
        b"\x70\x83",
        b"\x83\x45" + struct.pack(">QQ", 1, 0) + b"\x00",
        b"\x83\x46" + struct.pack(">QQ", 9, 1),
        b"\x83\x45" + struct.pack(">QQ", 1, 1),
        b"\x83\x44\x00\x61\x01\x61\x02\x61\x03",
        b"\x83\x44\x00\x50\x00\x00\x00\x02\x78\x9c",
    ],
)
@pytest.mark.parametrize("header_mode", [False, True])
def test_hostile_frames(frame: bytes, header_mode: bool) -> None:
    data = len(frame).to_bytes(4, "big") + frame
    flags = HEADER_FLAGS if header_mode else 0
    pure = FrameBatchDecoder(flags)
    fast = native.FrameDecoder(header_mode, DEFAULT_LIMITS, 1 << 27, 64, 1 << 26)
    assert batch_outcome(fast, [data, data]) == batch_outcome(pure, [data, data])
