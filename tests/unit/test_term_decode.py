"""Decoder: every tag, including the legacy ones only old peers or
``term_to_binary`` options produce, and the API around offsets and buffers.

Vectors marked [OTP] were captured from a real node.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from erldist.errors import DecodeError
from erldist.term import (
    DEFAULT_LIMITS,
    Atom,
    BitBinary,
    DecodeLimits,
    Export,
    FrozenList,
    FrozenMap,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    decode,
    decode_prefix,
    encode,
)
from tests.support.terms import OTP25_CLOSURE, OTP28_FUN, canon


def h(text: str) -> bytes:
    return b"\x83" + bytes.fromhex(text)


NODE = Atom("a@b")
NODE_UTF8 = "7703 614062"
NODE_LATIN1 = "640003 614062"

VECTORS: list[tuple[str, bytes, Any]] = [
    ("SMALL_INTEGER_EXT", h("61 ff"), 255),
    ("INTEGER_EXT", h("62 ffffff85"), -123),
    ("INTEGER_EXT small value", h("62 00000005"), 5),
    ("SMALL_BIG_EXT [digest]", h("6e 09 00 0000000000000000 01"), 2**64),
    ("SMALL_BIG_EXT negative [digest]", h("6e 04 01 01000080"), -(2**31) - 1),
    ("SMALL_BIG_EXT no digits [OTP]", h("6e 00 00"), 0),
    ("SMALL_BIG_EXT sign 2 is negative [OTP]", h("6e 01 02 05"), -5),
    ("LARGE_BIG_EXT", h("6f 00000100 01" + "00" * 255 + "01"), -(2**2040)),
    ("LARGE_BIG_EXT small value", h("6f 00000001 00 05"), 5),
    ("NEW_FLOAT_EXT", h("46 3ff8000000000000"), 1.5),
    ("NEW_FLOAT_EXT -0.0", h("46 8000000000000000"), -0.0),
    (
        "FLOAT_EXT [OTP minor_version 0]",
        h("63" + b"1.50000000000000000000e+00".hex() + "00" * 5),
        1.5,
    ),
    (
        "FLOAT_EXT 1e300 [OTP]",
        h("63 312e3030303030303030303030303030303035323530652b333030 00000000"),
        1e300,
    ),
    ("ATOM_EXT", h("64 0003 616263"), Atom("abc")),
    ("ATOM_EXT is Latin-1", h("64 0002 e9ff"), Atom("éÿ")),
    ("SMALL_ATOM_EXT", h("73 03 616263"), Atom("abc")),
    ("SMALL_ATOM_EXT Latin-1", h("73 01 e9"), Atom("é")),
    ("ATOM_UTF8_EXT", h("76 0002 c3a9"), Atom("é")),
    ("SMALL_ATOM_UTF8_EXT", h("77 04 f09f9880"), Atom("😀")),
    ("255 latin-1 chars", h("64 00ff" + "e9" * 255), Atom("é" * 255)),
    ("255 four-byte chars", h("76 03fc" + "f09f9880" * 255), Atom("😀" * 255)),
    ("true", h("77 04 74727565"), True),
    ("false as ATOM_EXT [OTP 25]", h("64 0005 66616c7365"), False),
    ("true as SMALL_ATOM_EXT", h("73 04 74727565"), True),
    ("SMALL_TUPLE_EXT", h("68 02 6101 6a"), (1, [])),
    ("empty tuple", h("68 00"), ()),
    ("LARGE_TUPLE_EXT", h("69 00000002 6101 6102"), (1, 2)),
    ("LARGE_TUPLE_EXT empty", h("69 00000000"), ()),
    ("MAP_EXT", h("74 00000002 770161 6101 6102 6a"), {Atom("a"): 1, 2: []}),
    ("MAP_EXT 1 and 1.0 are distinct [OTP]", h("74 00000001 463ff0000000000000 6103"), {1.0: 3}),
    ("empty map", h("74 00000000"), {}),
    ("NIL_EXT", h("6a"), []),
    ("STRING_EXT [digest]", h("6b 0002 6162"), [97, 98]),
    ("STRING_EXT empty", h("6b 0000"), []),
    ("LIST_EXT", h("6c 00000002 6101 770161 6a"), [1, Atom("a")]),
    ("improper LIST_EXT", h("6c 00000001 6101 770162"), ImproperList((1,), Atom("b"))),
    ("LIST_EXT of nothing is its tail [OTP]", h("6c 00000000 6105"), 5),
    ("proper list as two LIST_EXTs", h("6c 00000001 6101 6c00000001 6102 6a"), [1, 2]),
    ("list continued by a STRING_EXT", h("6c 00000001 6101 6b0001 02"), [1, 2]),
    (
        "improper tail of improper tail",
        h("6c 00000001 6101 6c00000001 6102 6103"),
        ImproperList((1, 2), 3),
    ),
    ("BINARY_EXT", h("6d 00000002 6162"), b"ab"),
    ("BINARY_EXT empty", h("6d 00000000"), b""),
    ("BIT_BINARY_EXT [digest]", h("4d 00000001 03 20"), BitBinary(b"\x20", 3)),
    ("BIT_BINARY_EXT unused bits ignored [OTP]", h("4d 00000001 03 ff"), BitBinary(b"\xe0", 3)),
    ("BIT_BINARY_EXT of 8 bits is a binary [OTP]", h("4d 00000001 08 05"), b"\x05"),
    ("NEW_PID_EXT", h(f"58 {NODE_UTF8} 00000001 00000002 00000003"), Pid(NODE, 1, 2, 3)),
    (
        "NEW_PID_EXT [OTP 25]",
        h("58 64000d6e6f6e6f6465406e6f686f7374 00000009 00000000 00000000"),
        Pid(Atom("nonode@nohost"), 9, 0, 0),
    ),
    ("PID_EXT", h(f"67 {NODE_LATIN1} 00000005 00000007 03"), Pid(NODE, 5, 7, 3)),
    (
        "NEW_PORT_EXT [OTP 25]",
        h("59 64000d6e6f6e6f6465406e6f686f7374 00000000 00000000"),
        Port(Atom("nonode@nohost"), 0, 0),
    ),
    (
        "V4_PORT_EXT [OTP 28]",
        h("78 770d6e6f6e6f6465406e6f686f7374 0000000000000000 00000000"),
        Port(Atom("nonode@nohost"), 0, 0),
    ),
    ("V4_PORT_EXT 64-bit id", h(f"78 {NODE_UTF8} 0000000100000000 00000007"), Port(NODE, 2**32, 7)),
    ("PORT_EXT", h(f"66 {NODE_LATIN1} 00000005 03"), Port(NODE, 5, 3)),
    ("REFERENCE_EXT", h(f"65 {NODE_LATIN1} 00000005 03"), Reference(NODE, 3, (5,))),
    ("NEW_REFERENCE_EXT", h(f"72 0001 {NODE_UTF8} 03 00000007"), Reference(NODE, 3, (7,))),
    (
        "NEWER_REFERENCE_EXT [OTP 25]",
        h("5a 0003 64000d6e6f6e6f6465406e6f686f7374 00000000 00017a0f 55240002 91ba843a"),
        Reference(Atom("nonode@nohost"), 0, (0x17A0F, 0x55240002, 0x91BA843A)),
    ),
    (
        "NEWER_REFERENCE_EXT 5 words",
        h(f"5a 0005 {NODE_UTF8} 00000007" + "".join(f"{i:08x}" for i in range(1, 6))),
        Reference(NODE, 7, (1, 2, 3, 4, 5)),
    ),
    (
        "NEWER_REFERENCE_EXT 0 words [OTP]",
        h(f"5a 0000 {NODE_UTF8} 00000001"),
        Reference(NODE, 1, ()),
    ),
    (
        "EXPORT_EXT [OTP 25]",
        h("71 640005 6c69737473 640003 6d6170 6102"),
        Export(Atom("lists"), Atom("map"), 2),
    ),
    (
        "EXPORT_EXT [OTP 28]",
        h("71 7705 6c69737473 7703 6d6170 6102"),
        Export(Atom("lists"), Atom("map"), 2),
    ),
    (
        "node named true stays an atom",
        h("58 770474727565 00000001 00000002 00000003"),
        Pid(Atom("true"), 1, 2, 3),
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_decode_vector(data: bytes, expected: Any) -> None:
    assert canon(decode(data)) == canon(expected)


def test_new_fun_ext_otp25_closure() -> None:
    fun = decode(OTP25_CLOSURE)
    assert isinstance(fun, Fun)
    assert fun.raw == OTP25_CLOSURE[1:]
    assert (fun.module, fun.arity, fun.index) == (Atom("erl_eval"), 1, 42)
    assert fun.uniq == bytes.fromhex("065361aa461590d1bdf1eb62d1a6eb08")
    # erl_eval keeps the bindings ([{'X', 7}]) and the clauses as free variables.
    assert len(fun.free_vars) == 1
    env = fun.free_vars[0]
    assert env[:2] == (1, [(Atom("X"), 7)])


def test_new_fun_ext_otp28() -> None:
    fun = decode(OTP28_FUN)
    assert (fun.module, fun.arity, fun.index) == (Atom("erl_eval"), 1, 42)
    assert fun.raw == OTP28_FUN[1:]
    assert decode(OTP28_FUN) == fun
    assert hash(decode(OTP28_FUN)) == hash(fun)
    assert fun != decode(OTP25_CLOSURE)


def test_fun_without_free_variables() -> None:
    # Size covers everything after the tag; OldIndex/OldUniq as INTEGER_EXT and
    # the creator as an old PID_EXT, both allowed by the format.
    body = (
        bytes.fromhex("02" + "11" * 16 + "00000003 00000000".replace(" ", ""))
        + bytes.fromhex("770161 62ffffffff 6101")
        + bytes.fromhex(f"67 {NODE_LATIN1} 00000001 00000002 00".replace(" ", ""))
    )
    raw = b"\x70" + (len(body) + 4).to_bytes(4, "big") + body
    fun = decode(b"\x83" + raw)
    assert (fun.module, fun.arity, fun.index, fun.free_vars) == (Atom("a"), 2, 3, ())
    assert encode(fun) == b"\x83" + raw


def test_compressed_term() -> None:
    body = encode([Atom("x")] * 100)[1:]
    data = b"\x83\x50" + len(body).to_bytes(4, "big") + zlib.compress(body)
    assert decode(data) == [Atom("x")] * 100


def test_decode_prefix_reports_end_offset_and_allows_trailing_bytes() -> None:
    one, two = encode((Atom("ok"), 1)), encode([1, 2, 3])
    data = b"junk" + one + two + b"tail"
    term, end = decode_prefix(data, 4)
    assert term == (Atom("ok"), 1)
    assert end == 4 + len(one)
    term, end = decode_prefix(data, end)
    assert term == [1, 2, 3]
    assert data[end:] == b"tail"


def test_decode_prefix_after_compressed_term() -> None:
    packed = encode(bytes(5000), compressed=True)
    assert packed[1] == 80
    term, end = decode_prefix(packed + b"rest")
    assert term == bytes(5000)
    assert end == len(packed)


def test_decode_prefix_without_version_byte() -> None:
    frame = b"\x70" + encode(Atom("ctrl"))[1:] + encode({1: 2})[1:]
    ctrl, end = decode_prefix(frame, 1, version_byte=False)
    msg, end = decode_prefix(frame, end, version_byte=False)
    assert (ctrl, msg, end) == (Atom("ctrl"), {1: 2}, len(frame))


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_buffer_types(wrap: Any) -> None:
    term = (Atom("a"), b"bin", [1, 2], 2**70)
    assert decode(wrap(encode(term))) == term


def test_non_contiguous_and_non_byte_views() -> None:
    data = encode((1, Atom("a")))
    spread = bytes(b for byte in data for b in (byte, 0))
    assert decode(memoryview(spread)[::2]) == (1, Atom("a"))
    assert decode(memoryview(data).cast("b")) == (1, Atom("a"))  # signed bytes


def test_bytearray_can_be_resized_after_an_error() -> None:
    buf = bytearray(encode((1, 2, 300))[:-2])
    with pytest.raises(DecodeError) as caught:
        decode(buf)
    buf += b"resizing would raise BufferError if a view were still held"
    assert caught.value.reason == "truncated term"


def test_trailing_bytes_are_an_error_for_decode() -> None:
    with pytest.raises(DecodeError, match="1 trailing bytes") as caught:
        decode(encode(1) + b"\x00")
    assert caught.value.offset == 3


def test_atoms_are_shared_between_decodes() -> None:
    first = decode(h("77 05 68656c6c6f"))
    assert decode(h("77 05 68656c6c6f")) is first
    assert type(first) is Atom


def test_decode_limits_defaults_and_validation() -> None:
    assert DecodeLimits() == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_depth == 256
    assert DEFAULT_LIMITS.max_bigint_bytes == 4096
    assert DEFAULT_LIMITS.max_inflated_bytes == 64 * 1024 * 1024
    with pytest.raises(ValueError, match="max_depth"):
        DecodeLimits(max_depth=-1)
    with pytest.raises(ValueError, match="max_elements"):
        DecodeLimits(max_elements=1.5)  # type: ignore[arg-type]


def test_negative_offset_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="offset"):
        decode_prefix(encode(1), -1)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (h("52 00"), "ATOM_CACHE_REF"),
        (h("79 00000000"), "LOCAL_EXT"),
        (h("75 00000000"), "FUN_EXT"),
        (h("68 01 50 00000001 789c"), "top level"),
        (h("68 01 83 6a"), "version byte"),
        (h("00"), "unknown tag 0"),
        (h("ff"), "unknown tag 255"),
        (h("58 6101 00000001 00000002 00000003"), "expected an atom"),
        (b"\x84\x6a", "expected version byte 131"),
        (b"", "no version byte"),
    ],
)
def test_refused(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(data)


def test_map_with_duplicate_keys_is_refused() -> None:
    with pytest.raises(DecodeError, match="duplicate keys") as caught:
        decode(h("68 01 74 00000002 6101 6102 6101 6103"))
    assert caught.value.offset == 3


def test_map_keyed_by_lists_and_maps_decodes_to_hashable_twins() -> None:
    data = h("74 00000001 6b000201 02 6103")  # #{[1,2] => 3} [OTP]
    term = decode(data)
    assert term == {FrozenList([1, 2]): 3}
    (key,) = term
    assert key == [1, 2] and key != (1, 2) and hash(key) != hash((1, 2))
    assert encode(term) == data
    nested = {FrozenMap({Atom("a"): FrozenList([FrozenList([1])])}): [1], (1, 2): 2}
    assert decode(encode(nested)) == nested
    assert FrozenMap({1: 2}) == {1: 2} and FrozenList([]) != ()


def test_frozen_keys_keep_the_duplicate_check() -> None:
    with pytest.raises(DecodeError, match="duplicate keys"):
        decode(h("74 00000002 6b000101 6101 6b000101 6102"))  # #{[1] => 1, [1] => 2}


def test_bare_binary_fast_path_keeps_every_check() -> None:
    data = b"\x83m\x00\x00\x00\x03abc"
    assert decode(data) == b"abc"
    with pytest.raises(DecodeError, match="trailing"):
        decode(data + b"x")
    with pytest.raises(DecodeError):
        decode(data[:-1])
    with pytest.raises(DecodeError, match="cap"):
        decode(data, limits=DecodeLimits(max_binary_bytes=2))
