"""Hostile input: whatever bytes a peer sends, decoding ends quickly in a value
or a DecodeError, never another exception, a huge allocation or a hang."""

from __future__ import annotations

import inspect
import sys
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erldist.errors import DecodeError
from erldist.term import (
    DEFAULT_LIMITS,
    Atom,
    BitBinary,
    DecodeLimits,
    ImproperList,
    Pid,
    Port,
    Reference,
    decode,
    decode_prefix,
    encode,
)
from tests.support.terms import OTP25_CLOSURE, OTP28_FUN, canon, terms

MAX_DEPTH = DEFAULT_LIMITS.max_depth

SAMPLES: list[bytes] = [
    encode(
        (Atom("$gen_call"), (Pid(Atom("a@b"), 1, 2, 3), Reference(Atom("a@b"), 1, (1, 2, 3))), 7)
    ),
    encode({Atom("k"): [1, 2.5, -(2**70)], b"bin": ImproperList((1,), BitBinary(b"\xff", 3))}),
    encode([Port(Atom("p@q"), 2**40, 1), "text", Atom("é" * 200), [300, 400]]),
    encode(bytes(3000), compressed=True),
    OTP25_CLOSURE,
    OTP28_FUN,
]


def decodes_or_refuses(data: bytes | bytearray, *, version_byte: bool = True) -> None:
    """Either a DecodeError pointing into the input, or a term that survives a round trip."""
    try:
        term, end = decode_prefix(data, 0, version_byte=version_byte)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)
        assert exc.reason
        return
    assert 0 < end <= len(data)
    assert canon(decode(encode(term))) == canon(term)


@pytest.mark.parametrize("sample", SAMPLES, ids=range(len(SAMPLES)))
def test_every_truncation_is_a_decode_error(sample: bytes) -> None:
    decode(sample)  # the whole sample is fine
    for cut in range(len(sample)):
        with pytest.raises(DecodeError):
            decode(sample[:cut])


@pytest.mark.parametrize("sample", SAMPLES, ids=range(len(SAMPLES)))
def test_every_single_byte_corruption_is_handled(sample: bytes) -> None:
    for pos in range(1, len(sample)):
        for value in (0x00, 0x7F, 0xFF, sample[pos] ^ 0x01):
            corrupt = bytearray(sample)
            corrupt[pos] = value
            decodes_or_refuses(corrupt)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("68 ff", "255 elements declared"),
        ("69 ffffffff", "4294967295 elements declared"),
        ("6c ffffffff", "4294967295 elements declared"),
        ("74 ffffffff", "4294967295 elements declared"),
        ("74 7fffffff 6101", "2147483647 elements declared"),
        ("6d ffffffff", "exceeds"),
        ("6d 00001000 00", "4096 bytes, 1 remain"),
        ("4d ffffffff 03", "exceeds"),
        ("6b ffff 00", "65535 bytes, 1 remain"),
        ("6f ffffffff 00", "exceeds the 4096 cap"),
        ("6e ff 00 01", "truncated"),
        ("76 ffff 61", "truncated atom"),
        ("70 ffffffff", "truncated"),
        ("70 0000001d 01" + "00" * 24, "truncated"),
    ],
)
def test_huge_declared_lengths(data: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(b"\x83" + bytes.fromhex(data))


def nested_lists(depth: int) -> bytes:
    return b"\x83" + b"\x6c\x00\x00\x00\x01" * depth + b"\x6a" * (depth + 1)


def call_at_stack_depth(height: int, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with about ``height`` Python frames below it."""
    if height <= 0:
        return fn()
    return call_at_stack_depth(height - 1, fn)


def test_deepest_allowed_term_decodes_and_one_more_level_does_not() -> None:
    # Called with the Python stack nearly full: a recursive decoder would die here.
    room = sys.getrecursionlimit() - len(inspect.stack(0)) - 30
    deepest = call_at_stack_depth(room, lambda: decode(nested_lists(MAX_DEPTH)))
    for _ in range(MAX_DEPTH):
        assert type(deepest) is list
        assert len(deepest) == 1
        deepest = deepest[0]
    assert deepest == []
    with pytest.raises(DecodeError, match=f"deeper than {MAX_DEPTH}"):
        call_at_stack_depth(room, lambda: decode(nested_lists(MAX_DEPTH + 1)))


def test_depth_counts_every_container_kind() -> None:
    limits = DecodeLimits(max_depth=3)
    three = ({1: [Atom("x")]},)  # tuple, map, list
    assert decode(encode(three), limits=limits) == three
    with pytest.raises(DecodeError, match="deeper than 3"):
        decode(encode(({1: [(Atom("x"),)]},)), limits=limits)
    with pytest.raises(DecodeError, match="deeper than 1"):
        decode(encode([ImproperList((1,), (2,))]), limits=DecodeLimits(max_depth=1))
    # A fun's free variables are inside the fun.
    with pytest.raises(DecodeError, match="deeper than 1"):
        decode(OTP25_CLOSURE, limits=DecodeLimits(max_depth=1))


def test_very_deep_nesting_is_refused_without_recursion() -> None:
    with pytest.raises(DecodeError, match="deeper than"):
        decode(nested_lists(100_000))
    relaxed = DecodeLimits(max_depth=200_000)
    term = decode(nested_lists(100_000), limits=relaxed)  # no RecursionError either
    assert isinstance(term, list)


def tail_chain(n: int) -> bytes:
    """[0, 1, ... | x] sent as n LIST_EXTs each holding one element and the next as tail."""
    return (
        b"\x83"
        + b"".join(b"\x6c\x00\x00\x00\x01\x62" + i.to_bytes(4, "big") for i in range(n))
        + b"\x77\x01x"
    )


def test_a_chain_of_list_tails_is_one_list_not_a_deep_term() -> None:
    term = decode(tail_chain(100_000))
    assert term == ImproperList(tuple(range(100_000)), Atom("x"))
    proper = tail_chain(3)[:-3] + b"\x6b\x00\x02\x07\x08"  # ...and a STRING_EXT tail
    assert decode(proper) == [0, 1, 2, 7, 8]


def test_map_keys_sharing_one_hash_are_refused() -> None:
    # All of these hash to 0 in CPython: building the dict would be quadratic.
    flood = {k * (2**61 - 1): 0 for k in range(1, 101)}
    with pytest.raises(DecodeError, match="share one hash"):
        decode(encode(flood))
    # A few shared hashes are normal (hash(-1) == hash(-2)).
    fine = {
        -1: 0,
        -2: 0,
        **{k * (2**61 - 1): 0 for k in range(1, 10)},
        **{i: i for i in range(100)},
    }
    assert decode(encode(fine)) == fine


def test_element_budget() -> None:
    limits = DecodeLimits(max_elements=10)
    assert decode(encode(list(range(256, 265))), limits=limits) == list(range(256, 265))
    with pytest.raises(DecodeError, match="more than 10 elements"):
        decode(encode(list(range(256, 266))), limits=limits)
    with pytest.raises(DecodeError, match="more than 10 elements"):
        decode(encode([1] * 11), limits=limits)  # STRING_EXT counts too
    with pytest.raises(DecodeError, match="more than 10 elements"):
        decode(encode([(1, 2, 3)] * 3), limits=limits)


def test_binary_and_bigint_caps() -> None:
    limits = DecodeLimits(max_binary_bytes=4, max_bigint_bytes=2)
    assert decode(encode(b"abcd"), limits=limits) == b"abcd"
    with pytest.raises(DecodeError, match="exceeds the 4 cap"):
        decode(encode(b"abcde"), limits=limits)
    with pytest.raises(DecodeError, match="exceeds the 4 cap"):
        decode(encode(BitBinary(b"abcde", 3)), limits=limits)
    with pytest.raises(DecodeError, match="exceeds the 2 cap"):
        decode(encode(2**40), limits=limits)


def compressed(body: bytes, declared: int | None = None) -> bytes:
    size = len(body) if declared is None else declared
    return b"\x83\x50" + size.to_bytes(4, "big") + zlib.compress(body, 1)


# A 64 MiB binary of zeros: 290 KB compressed.
BOMB_BODY = b"\x6d" + (64 * 2**20).to_bytes(4, "big") + bytes(64 * 2**20)


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated while ``fn`` runs (DecodeError allowed)."""
    tracemalloc.start()
    try:
        fn()
    except DecodeError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_compressed_bomb_declaring_too_much_is_refused_before_inflating() -> None:
    bomb = compressed(BOMB_BODY)
    with pytest.raises(DecodeError, match="over the 67108864 cap"):
        decode(bomb)
    assert peak_memory(lambda: decode(bomb)) < 2**20


def test_compressed_bomb_lying_about_its_size() -> None:
    bomb = compressed(BOMB_BODY, declared=10)
    with pytest.raises(DecodeError, match="more than its declared 10 bytes"):
        decode(bomb)
    assert peak_memory(lambda: decode(bomb)) < 2**20
    small = b"\x6d" + (2**20).to_bytes(4, "big") + bytes(2**20)
    with pytest.raises(DecodeError, match="inflates to 1048581 bytes, declared 2000000"):
        decode(compressed(small, declared=2_000_000))


def test_compressed_garbage() -> None:
    with pytest.raises(DecodeError, match="bad zlib data"):
        decode(b"\x83\x50\x00\x00\x00\x05" + b"not zlib at all")
    with pytest.raises(DecodeError, match="truncated"):
        decode(compressed(encode(bytes(1000))[1:])[:-4])
    with pytest.raises(DecodeError, match="trailing bytes inside"):
        decode(compressed(b"\x6a\x6a"))
    with pytest.raises(DecodeError, match="inside compressed term at byte 0: unknown tag 0"):
        decode(compressed(b"\x00"))
    with pytest.raises(DecodeError, match="over the 4 cap"):
        decode(compressed(b"\x6d\x00\x00\x00\x05hello"), limits=DecodeLimits(max_inflated_bytes=4))


@pytest.mark.parametrize(
    "atom",
    [
        "77 02 c328",  # bad continuation byte
        "77 02 c0af",  # overlong '/'
        "77 03 eda080",  # UTF-16 surrogate
        "76 0001 ff",
        "77 04 f4908080",  # past U+10FFFF
    ],
)
def test_invalid_utf8_atom(atom: str) -> None:
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        decode(b"\x83" + bytes.fromhex(atom))


@pytest.mark.parametrize(
    "atom",
    [
        "64 0100" + "61" * 256,  # ATOM_EXT
        "76 0100" + "61" * 256,  # ATOM_UTF8_EXT, ASCII
        "76 0200" + "c3a9" * 256,  # 256 two-byte characters
        "76 0400" + "f09f9880" * 256,  # 256 four-byte characters
        "76 ffff" + "61" * 65535,
    ],
)
def test_atom_of_256_characters(atom: str) -> None:
    with pytest.raises(DecodeError, match="exceeds 255"):
        decode(b"\x83" + bytes.fromhex(atom))


def test_atom_as_pid_node_is_validated_too() -> None:
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        decode(bytes.fromhex("83 58 7701ff 00000001 00000002 00000003"))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("46 7ff0000000000000", "not finite"),
        ("46 7ff8000000000000", "not finite"),
        ("63" + b"nan".hex() + "00" * 28, "not finite"),
        ("63" + b"inf".hex() + "00" * 28, "not finite"),
        ("63" + b"1.0x".hex() + "00" * 27, "bad float"),
        ("63" + "ff" * 31, "bad float"),
        ("5a 0006 770161 00000000" + "00" * 24, "at most 5"),
        ("4d 00000000 03", "no bytes"),
        ("4d 00000001 00 ff", "must be 1..8"),
        ("4d 00000001 09 ff", "must be 1..8"),
        ("71 770161 770162 62000000ff", "arity must be a small integer"),
        ("70 0000001d 01" + "00" * 24 + "770161 6100 6100 6a", "must be a pid"),
        ("70 0000001d 01" + "00" * 24 + "770161 6a", "must be an integer"),
    ],
)
def test_malformed_scalars(data: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(b"\x83" + bytes.fromhex(data))


def test_fun_size_must_match_its_contents() -> None:
    raw = bytearray(OTP28_FUN)
    raw[5] += 1  # Size one byte longer than the fun really is
    with pytest.raises(DecodeError, match="fun declares"):
        decode(bytes(raw) + b"\x6a")
    raw[5] -= 2  # and one shorter
    with pytest.raises(DecodeError, match="fun declares"):
        decode(bytes(raw))


def test_atom_cache_stays_bounded() -> None:
    from erldist.term.decode import _ATOM_CACHE_SIZE, _LATIN1_ATOMS, _UTF8_ATOMS

    many = encode([Atom(f"minted_{i}") for i in range(3 * _ATOM_CACHE_SIZE)])
    assert len(decode(many)) == 3 * _ATOM_CACHE_SIZE
    latin1 = b"\x83\x6c" + (5000).to_bytes(4, "big")
    latin1 += b"".join(b"\x73\x05" + f"{i:05}".encode() for i in range(5000)) + b"\x6a"
    assert len(decode(latin1)) == 5000
    assert len(_UTF8_ATOMS) <= _ATOM_CACHE_SIZE
    assert len(_LATIN1_ATOMS) <= _ATOM_CACHE_SIZE


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_decode_error(noise: bytes) -> None:
    for data in (noise, b"\x83" + noise):
        decodes_or_refuses(data)
        decodes_or_refuses(data, version_byte=False)


@settings(max_examples=300, deadline=None)
@given(terms, st.data())
def test_mutated_valid_terms_only_raise_decode_error(term: Any, data: st.DataObject) -> None:
    encoded = bytearray(encode(term))
    for _ in range(data.draw(st.integers(1, 4))):
        if len(encoded) < 2:
            break
        pos = data.draw(st.integers(1, len(encoded) - 1))  # keep the version byte
        action = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "set":
            encoded[pos] = data.draw(st.integers(0, 255))
        elif action == "insert":
            encoded[pos:pos] = data.draw(st.binary(min_size=1, max_size=5))
        else:
            del encoded[pos : pos + data.draw(st.integers(1, 5))]
    decodes_or_refuses(encoded)


def count_calls(fn: Callable[[], Any]) -> int:
    """How many Python and C function calls ``fn`` makes: work, measured without a clock."""
    calls = 0

    def profiler(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profiler)
    try:
        fn()
    except DecodeError:
        pass
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize(
    "make",
    [
        nested_lists,
        tail_chain,
        lambda n: b"\x83\x6c" + n.to_bytes(4, "big") + b"\x6a" * n + b"\x6a",
        lambda n: b"\x83\x74" + n.to_bytes(4, "big") + b"\x61\x01" * 2 * n,
        lambda n: b"\x83\x69" + n.to_bytes(4, "big") + b"\x77\x01\x61" * n,
        lambda n: encode([Atom(f"x{i}") for i in range(n)]),
        lambda n: b"\x83\x6c" + n.to_bytes(4, "big") + b"\x6d\xff\xff\xff\xff" * n,
        lambda n: encode([Pid(Atom(f"n{i}@h"), i, i, i) for i in range(n)]),
    ],
    ids=["deep", "tail chain", "wide", "map", "tuple", "atoms", "lying binaries", "pids"],
)
def test_work_grows_linearly_with_input(make: Callable[[int], bytes]) -> None:
    small, large = make(200), make(2000)
    small_calls = count_calls(lambda: decode(small))
    large_calls = count_calls(lambda: decode(large))
    assert large_calls <= 20 * len(large) + 100
    assert large_calls <= 12 * small_calls
