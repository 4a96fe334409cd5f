"""Shared test helpers for the term codec.

- ``canon``: a type-exact, hashable fingerprint of a term. Python's ``==``
  says ``1 == 1.0 == True`` and ``Atom("a") == "a"``; the codec must not
  confuse those, so tests compare fingerprints instead.
- Hypothesis strategies for the *canonical* term space: values that decode
  back to exactly themselves (bytes rather than str, no ``Atom("true")``...).
- ``to_erlang``: prints a Python term as Erlang source text, so an ``erl``
  node can build the same term independently of our encoder.
- ``random_term``: a seeded generator of a varied interop corpus.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st

from erldist.term import (
    Atom,
    BitBinary,
    Export,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    decode,
)

# --- type-exact comparison -----------------------------------------------------------


def canon(term: Any) -> Any:
    """A hashable fingerprint equal for two terms only if they are the same term."""
    kind = type(term)
    if kind is list:
        return ("list", tuple(canon(x) for x in term))
    if kind is tuple:
        return ("tuple", tuple(canon(x) for x in term))
    if kind is dict:
        return ("map", frozenset((canon(k), canon(v)) for k, v in term.items()))
    if kind is float:
        return ("float", term.hex())  # tells 0.0 from -0.0
    if kind is ImproperList:
        return ("improper", tuple(canon(x) for x in term.items), canon(term.tail))
    if kind is Fun:
        # Not ``raw``: the same fun re-encoded with other atom tags (a
        # term_to_binary option) has other bytes.
        fields = (term.module, term.arity, term.index, term.uniq)
        return ("fun", fields, tuple(canon(x) for x in term.free_vars))
    if kind is Atom:
        return ("atom", str(term))
    return (kind.__name__, term)


# --- real funs captured from erl -----------------------------------------------------

#: OTP 25 ``(fun() -> X = 7, fun(Y) -> X + Y end end)()`` (an erl_eval closure;
#: its free variables hold the bindings and the abstract code).
OTP25_CLOSURE = bytes.fromhex(
    "8370000000c801065361aa461590d1bdf1eb62d1a6eb080000002a0000000164000865726c5f6576"
    "616c612a6200329b0d5864000d6e6f6e6f6465406e6f686f7374000000090000000000000000680661"
    "016c0000000168026400015861076a6400046e6f6e656400046e6f6e6574000000006c000000016805"
    "640006636c6175736561016c0000000168036400037661726101640001596a6a6c000000016805640"
    "0026f7061016400012b680364000376617261016400015868036400037661726101640001596a6a"
)

#: OTP 28 ``fun(Y) -> Y + 1 end`` typed at the shell.
OTP28_FUN = bytes.fromhex(
    "8370000000b101d7c9c0e0f1fa64ae96dadfc5177676050000002a00000001770865726c5f6576616c"
    "612a6206be4e0758770d6e6f6e6f6465406e6f686f7374000000000000000000000000680661016a77"
    "046e6f6e6577046e6f6e6574000000006c0000000168057706636c6175736561016c00000001680377"
    "0376617261017701596a6a6c00000001680577026f70610177012b6803770376617261017701596803"
    "7707696e7465676572610161016a6a"
)

CAPTURED_FUNS: tuple[Fun, ...] = (decode(OTP25_CLOSURE), decode(OTP28_FUN))


# --- Hypothesis strategies -----------------------------------------------------------

_u32 = st.integers(0, 2**32 - 1)

atom_text = st.text(
    st.characters(exclude_categories=["Cs"]),  # lone surrogates are not UTF-8
    max_size=255,
).filter(lambda s: s not in ("true", "false"))

atoms = atom_text.map(Atom)
node_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}@[a-z][a-z0-9.]{0,20}", fullmatch=True).map(Atom)

integers = st.one_of(
    st.integers(0, 255),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**300), 2**300),
    st.sampled_from([2**31, -(2**31) - 1, 2**64, -(2**64), 2**2040 - 1, 2**2040, -(2**2040)]),
)

floats = st.floats(allow_nan=False, allow_infinity=False)

bit_binaries = st.builds(BitBinary, st.binary(min_size=1, max_size=16), st.integers(1, 7))

pids = st.builds(Pid, node_names, _u32, _u32, _u32)
references = st.builds(Reference, node_names, _u32, st.lists(_u32, max_size=5).map(tuple))
ports = st.builds(Port, node_names, st.integers(0, 2**64 - 1), _u32)
exports = st.builds(Export, atoms, atoms, st.integers(0, 255))

scalars = st.one_of(
    integers,
    floats,
    atoms,
    st.booleans(),
    st.binary(max_size=64),
    bit_binaries,
    pids,
    references,
    ports,
    exports,
    st.sampled_from(CAPTURED_FUNS),
)


# Map keys: anything Python can hash (no lists or dicts inside).
map_keys = st.one_of(scalars, st.lists(scalars, max_size=3).map(tuple))


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(map_keys, children, max_size=5),
        st.builds(
            ImproperList,
            st.lists(children, min_size=1, max_size=4).map(tuple),
            scalars,
        ),
    )


#: Any canonical term: decode(encode(t)) is exactly t.
terms = st.recursive(scalars, _containers, max_leaves=40)


# --- Python term -> Erlang source ----------------------------------------------------


def erlang_atom(name: str) -> str:
    """A quoted Erlang atom in pure ASCII (the evaluator reads its input as Latin-1)."""
    out = []
    for ch in name:
        if ch in "'\\":
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\x{{{ord(ch):X}}}")
    return "'" + "".join(out) + "'"


def erlang_float(value: float) -> str:
    """Shortest round-trip text in Erlang's syntax (which needs a dot before the exponent)."""
    mantissa, _, exponent = repr(value).partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("e" + exponent if exponent else "")


def to_erlang(term: Any, names: Mapping[Any, str] | None = None) -> str:
    """Erlang source text that evaluates to ``term``.

    Pids, references, ports and local funs have no literal syntax: they must be
    values ``erl`` handed us, listed in ``names`` with the variable holding them.
    """
    names = names or {}

    def emit(t: Any) -> str:
        kind = type(t)
        if kind is bool:
            return "true" if t else "false"
        if kind is Atom:
            return erlang_atom(t)
        if kind is int:
            return str(t)
        if kind is float:
            return erlang_float(t)
        if kind is bytes:
            return "<<" + ",".join(map(str, t)) + ">>"
        if kind is str:
            return "<<" + ",".join(map(str, t.encode())) + ">>"
        if kind is BitBinary:
            head = [str(b) for b in t.data[:-1]]
            head.append(f"{t.data[-1] >> (8 - t.bits)}:{t.bits}")
            return "<<" + ",".join(head) + ">>"
        if kind is list:
            return "[" + ",".join(map(emit, t)) + "]"
        if kind is ImproperList:
            return "[" + ",".join(map(emit, t.items)) + "|" + emit(t.tail) + "]"
        if kind is tuple:
            return "{" + ",".join(map(emit, t)) + "}"
        if kind is dict:
            return "#{" + ",".join(f"{emit(k)} => {emit(v)}" for k, v in t.items()) + "}"
        if kind is Export:
            return f"fun {erlang_atom(t.module)}:{erlang_atom(t.function)}/{t.arity}"
        if t in names:
            return names[t]
        raise ValueError(f"no Erlang literal for {t!r}; bind it in erl and pass it in names")

    return emit(term)


# --- seeded interop corpus -----------------------------------------------------------

_EDGE_INTS = (
    0, 1, 255, 256, -1, -255, -256, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1,
    2**32, 2**63, 2**64, -(2**64), 2**2040 - 1, 2**2040, -(2**2040) - 5,
)  # fmt: skip
_EDGE_FLOATS = (
    0.0, -0.0, 1.0, -1.5, 0.1, 1e16, 1.5e-7, 5e-324, 2.2250738585072014e-308,
    1.7976931348623157e308, -1.7976931348623157e308, 123456789.123456789,
)  # fmt: skip
_ALPHABETS = (
    "abcdefghijklmnopqrstuvwxyz_@.",
    "ABCXYZ019 '\\\"\n\t$~",
    "åäöéüßñçø",
    "λΩжЖ中文字日本語",
    "😀🎉𝄞",
)


def random_term(rng: random.Random, pool: tuple[Any, ...], depth: int = 3) -> Any:
    """One term of a varied corpus; ``pool`` holds erl-made pids, refs, ports and funs."""
    if depth > 0 and rng.random() < 0.35:
        return _random_container(rng, pool, depth - 1)
    pick: Callable[[], Any] = rng.choice(
        [
            lambda: rng.randrange(256),
            lambda: rng.randrange(-(2**31), 2**31),
            lambda: rng.choice(_EDGE_INTS),
            lambda: rng.getrandbits(rng.randrange(1, 1200)) * rng.choice((1, -1)),
            lambda: rng.choice(_EDGE_FLOATS),
            lambda: rng.uniform(-1e6, 1e6),
            _random_bits_float(rng),
            lambda: _random_atom(rng),
            lambda: rng.choice((True, False)),
            lambda: rng.randbytes(rng.choice((0, 1, 3, 16, 200))),
            lambda: BitBinary(rng.randbytes(rng.randrange(1, 10)), rng.randrange(1, 8)),
            lambda: Export(_random_atom(rng), _random_atom(rng), rng.randrange(256)),
            lambda: [rng.randrange(256) for _ in range(rng.randrange(1, 40))],
            lambda: rng.choice(pool),
        ]
    )
    return pick()


def _random_bits_float(rng: random.Random) -> Callable[[], float]:
    def pick() -> float:
        while True:
            value: float = struct.unpack(">d", rng.randbytes(8))[0]
            if math.isfinite(value):
                return value

    return pick


def _random_atom(rng: random.Random) -> Atom:
    alphabet = rng.choice(_ALPHABETS)
    size = rng.choice((0, 1, 5, 20, 255)) if rng.random() < 0.3 else rng.randrange(1, 12)
    name = "".join(rng.choice(alphabet) for _ in range(size))
    return Atom(name) if name not in ("true", "false") else Atom(name + "_")


def _random_container(rng: random.Random, pool: tuple[Any, ...], depth: int) -> Any:
    size = rng.choice((0, 1, 2, 3, 4, 7))
    items = [random_term(rng, pool, depth) for _ in range(size)]
    shape = rng.randrange(4)
    if shape == 0:
        return items
    if shape == 1:
        return tuple(items)
    if shape == 2 and items:
        tail = random_term(rng, pool, 0)
        while type(tail) is list:
            tail = random_term(rng, pool, 0)
        return ImproperList(tuple(items), tail)
    keys = [k for k in items if _usable_key(k)]
    return {k: random_term(rng, pool, depth) for k in keys}


def _usable_key(key: Any) -> bool:
    """A key both sides see as one key: hashable, and no float (1 vs 1.0, 0.0 vs -0.0)."""
    if isinstance(key, list | dict | float | ImproperList):
        return False
    if type(key) is tuple:
        return all(map(_usable_key, key))
    return True


def big_terms(rng: random.Random) -> list[Any]:
    """Terms at the format's size boundaries, and some worth compressing."""
    return [
        list(range(256)) * 256,  # 65536 byte-sized ints: one past STRING_EXT
        [7] * 65535,  # the longest STRING_EXT
        bytes(70_000),
        tuple(range(300)),  # LARGE_TUPLE_EXT
        {i: rng.randrange(10) for i in range(100)},
        Atom("é" * 255),  # 510 bytes: ATOM_UTF8_EXT
        Atom("😀" * 255),
        Atom("a" * 255),
        [Atom("repeat")] * 500,
    ]
