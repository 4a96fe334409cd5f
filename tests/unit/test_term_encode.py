"""Encoder: exact bytes for every tag we emit, and clear errors for what we refuse.

Vectors marked [OTP] are ``term_to_binary`` output of a real node (OTP 28
encodes atoms as UTF-8 like we do, so those bytes must match exactly).
"""

from __future__ import annotations

import enum
import zlib
from collections import namedtuple
from typing import Any

import pytest

from erldist.errors import EncodeError
from erldist.term import (
    Atom,
    BitBinary,
    Export,
    ImproperList,
    Pid,
    Port,
    Reference,
    decode,
    encode,
    encode_into,
)
from tests.support.terms import OTP25_CLOSURE, OTP28_FUN


def h(text: str) -> bytes:
    """Hex with spaces for readability, always behind the 131 version byte."""
    return b"\x83" + bytes.fromhex(text)


NODE = "7703 614062"  # SMALL_ATOM_UTF8_EXT 'a@b'

VECTORS: list[tuple[str, Any, bytes]] = [
    # SMALL_INTEGER_EXT / INTEGER_EXT / SMALL_BIG_EXT / LARGE_BIG_EXT
    ("zero", 0, h("61 00")),
    ("255", 255, h("61 ff")),
    ("256", 256, h("62 00000100")),
    ("-1", -1, h("62 ffffffff")),
    ("int32 max", 2**31 - 1, h("62 7fffffff")),
    ("int32 min", -(2**31), h("62 80000000")),
    ("2^31", 2**31, h("6e 04 00 00000080")),
    ("-2^31-1 [digest]", -(2**31) - 1, h("6e 04 01 01000080")),
    ("1 bsl 64 [digest]", 2**64, h("6e 09 00 0000000000000000 01")),
    ("255-byte big", 2**2040 - 1, h("6e ff 00" + "ff" * 255)),
    ("256-byte big", 2**2040, h("6f 00000100 00" + "00" * 255 + "01")),
    ("negative large big", -(2**2040), h("6f 00000100 01" + "00" * 255 + "01")),
    # NEW_FLOAT_EXT
    ("1.5 [OTP]", 1.5, h("46 3ff8000000000000")),
    ("-0.0 [OTP]", -0.0, h("46 8000000000000000")),
    ("denormal [OTP]", 5e-324, h("46 0000000000000001")),
    # atoms: SMALL_ATOM_UTF8_EXT, ATOM_UTF8_EXT
    ("atom [OTP]", Atom("abc"), h("77 03 616263")),
    ("empty atom", Atom(""), h("77 00")),
    ("unicode atom [OTP]", Atom("\U0001f600ab"), h("77 06 f09f9880 6162")),
    ("255 ascii chars", Atom("a" * 255), h("77 ff" + "61" * 255)),
    ("256 UTF-8 bytes", Atom("é" * 128), h("76 0100" + "c3a9" * 128)),
    ("255 four-byte chars", Atom("😀" * 255), h("76 03fc" + "f09f9880" * 255)),
    ("true [OTP]", True, h("77 04 74727565")),
    ("false", False, h("77 05 66616c7365")),
    # tuples
    ("empty tuple", (), h("68 00")),
    ("pair", (1, 2), h("68 02 6101 6102")),
    ("large tuple", tuple([0] * 256), h("69 00000100" + "6100" * 256)),
    # maps
    ("empty map", {}, h("74 00000000")),
    ("map", {Atom("a"): 1, 2: b""}, h("74 00000002 770161 6101 6102 6d00000000")),
    # lists: NIL_EXT, STRING_EXT, LIST_EXT
    ("nil", [], h("6a")),
    ("string [digest]", [97, 98], h("6b 0002 6162")),
    ("longest string", [7] * 65535, h("6b ffff" + "07" * 65535)),
    ("too long for a string", [7] * 65536, h("6c 00010000" + "6107" * 65536 + "6a")),
    ("not bytes", [256], h("6c 00000001 62 00000100 6a")),
    ("bools are atoms, not bytes", [True, 0], h("6c 00000002 7704 74727565 6100 6a")),
    ("mixed list", [Atom("a"), [1]], h("6c 00000002 770161 6b000101 6a")),
    ("improper list", ImproperList((1,), Atom("b")), h("6c 00000001 6101 770162")),
    ("improper, list head", ImproperList(([],), 5), h("6c 00000001 6a 6105")),
    # binaries
    ("bytes", b"ab", h("6d 00000002 6162")),
    ("empty bytes", b"", h("6d 00000000")),
    ("bytearray", bytearray(b"ab"), h("6d 00000002 6162")),
    ("memoryview", memoryview(b"xab")[1:], h("6d 00000002 6162")),
    ("str is a UTF-8 binary", "hé", h("6d 00000003 68c3a9")),
    ("<<1:3>> [digest]", BitBinary(b"\x20", 3), h("4d 00000001 03 20")),
    ("<<1,2,5:3>> [OTP]", BitBinary(b"\x01\x02\xa0", 3), h("4d 00000003 03 0102a0")),
    # identifiers
    ("pid", Pid(Atom("a@b"), 1, 2, 3), h(f"58 {NODE} 00000001 00000002 00000003")),
    (
        "pid, 32-bit fields",
        Pid(Atom("a@b"), 2**31 + 5, 2**20, 0),
        h(f"58 {NODE} 80000005 00100000 00000000"),
    ),
    (
        "reference",
        Reference(Atom("a@b"), 3, (1, 2, 3)),
        h(f"5a 0003 {NODE} 00000003 00000001 00000002 00000003"),
    ),
    (
        "5-word reference",
        Reference(Atom("a@b"), 7, (1, 2, 3, 4, 5)),
        h(f"5a 0005 {NODE} 00000007" + "".join(f"{i:08x}" for i in range(1, 6))),
    ),
    ("0-word reference", Reference(Atom("a@b"), 7, ()), h(f"5a 0000 {NODE} 00000007")),
    ("port", Port(Atom("a@b"), 5, 7), h(f"59 {NODE} 00000005 00000007")),
    ("64-bit port", Port(Atom("a@b"), 2**32, 7), h(f"78 {NODE} 0000000100000000 00000007")),
    (
        "export [OTP]",
        Export(Atom("lists"), Atom("map"), 2),
        h("71 7705 6c69737473 7703 6d6170 6102"),
    ),
]


@pytest.mark.parametrize(
    ("term", "expected"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_encode_vector(term: Any, expected: bytes) -> None:
    assert encode(term) == expected


@pytest.mark.parametrize(
    "captured",
    [
        # [OTP 28] self(), make_ref(), fun lists:map/2 and an erl_eval fun.
        "8358770d6e6f6e6f6465406e6f686f73740000000a0000000000000000",
        "835a0003770d6e6f6e6f6465406e6f686f73740000000000007bbb5528000150063780",
        "837177056c6973747377036d61706102",
        OTP28_FUN.hex(),
        OTP25_CLOSURE.hex(),
    ],
)
def test_reencoding_otp_output_is_byte_identical(captured: str) -> None:
    data = bytes.fromhex(captured)
    assert encode(decode(data)) == data


def test_fun_is_reemitted_from_raw() -> None:
    fun = decode(OTP25_CLOSURE)
    assert encode(fun) == OTP25_CLOSURE
    assert encode((fun, fun)) == b"\x83\x68\x02" + OTP25_CLOSURE[1:] * 2


def test_encode_into_appends_body_without_version_byte() -> None:
    buf = bytearray(b"head")
    encode_into(buf, (Atom("ok"), 1))
    assert buf == b"head" + encode((Atom("ok"), 1))[1:]


def test_encode_into_leaves_buffer_alone_on_failure() -> None:
    buf = bytearray(b"head")
    with pytest.raises(EncodeError):
        encode_into(buf, [1, 2, (3, object())])
    assert buf == b"head"


def test_compressed_when_it_helps() -> None:
    term = bytes(10_000)
    body = encode(term)[1:]
    packed = encode(term, compressed=True)
    assert packed[:2] == b"\x83\x50"
    assert int.from_bytes(packed[2:6], "big") == len(body)
    assert zlib.decompress(packed[6:]) == body
    assert decode(packed) == term


@pytest.mark.parametrize("level", [1, 9])
def test_compression_level(level: int) -> None:
    term = [Atom("x")] * 1000
    packed = encode(term, compressed=level)
    assert packed[1] == 80
    assert decode(packed) == term


def test_compression_skipped_when_it_does_not_help() -> None:
    assert encode(Atom("ok"), compressed=True) == encode(Atom("ok"))
    assert encode(bytes(10_000), compressed=0) == encode(bytes(10_000))


@pytest.mark.parametrize("bad", [10, -1, 2.5, "yes"])
def test_bad_compression_level(bad: Any) -> None:
    with pytest.raises(ValueError, match="zlib level"):
        encode(1, compressed=bad)


def test_subclasses_encode_as_their_base() -> None:
    class Color(enum.IntEnum):
        RED = 300

    class Mode(enum.StrEnum):
        FAST = "fast"

    point = namedtuple("point", "x y")
    assert encode(Color.RED) == encode(300)
    assert encode(Mode.FAST) == encode(b"fast")
    assert encode(point(1, 2)) == encode((1, 2))


def test_none_suggests_an_atom() -> None:
    with pytest.raises(EncodeError, match=r"Atom\('undefined'\)"):
        encode({Atom("k"): None})


@pytest.mark.parametrize(
    ("term", "message"),
    [
        (object(), "object"),
        ({1, 2}, "set"),
        (1 + 2j, "complex"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (-float("inf"), "finite"),
        ("\udc80", "UTF-8"),
        (str.__new__(Atom, "\udc80"), "UTF-8"),
        (str.__new__(Atom, "a" * 256), "255"),
        (Pid(Atom("a@b"), -1, 0, 0), "Pid id, serial and creation"),
        (Pid(Atom("a@b"), 0, 2**32, 0), "got 0, 4294967296, 0"),
        (Pid(Atom("a@b"), 0, 0, 1.5), "got 0, 0, 1.5"),  # type: ignore[arg-type]
        (Reference(Atom("a@b"), 0, (1, 2, 3, 4, 5, 6)), "at most 5"),
        (Reference(Atom("a@b"), 0, (2**32,)), "id words"),
        (Reference(Atom("a@b"), -1, ()), "Reference creation"),
        (Port(Atom("a@b"), 2**64, 0), "Port.id"),
        (Port(Atom("a@b"), 1, -1), "Port.creation"),
        (Export(Atom("m"), Atom("f"), 256), "arity"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_unencodable(term: Any, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encode(term)


def test_self_reference_is_an_encode_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="nests too deeply"):
        encode(loop)


def test_deep_but_reasonable_nesting_encodes() -> None:
    term: Any = []
    for _ in range(200):
        term = [term]
    assert encode(term) == b"\x83" + b"\x6c\x00\x00\x00\x01" * 200 + b"\x6a" * 201


def test_atom_cache_stays_bounded() -> None:
    from erldist.term.encode import _ATOM_CACHE_SIZE, _ATOMS

    for i in range(_ATOM_CACHE_SIZE + 100):
        encode(Atom(f"a{i}"))
    assert len(_ATOMS) <= _ATOM_CACHE_SIZE
    assert encode(Atom("a1")) == h("77 02 6131")
