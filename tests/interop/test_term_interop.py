"""The codec against real Erlang/OTP 25 and 28.

One long-lived ``erl`` per release evaluates large batches: it decodes what
Python encoded and compares it (``=:=``) with the same term written as Erlang
source, and it encodes source terms with every ``term_to_binary`` option for
Python to decode. Pids, references, ports and funs that only ``erl`` can make
travel erl -> Python -> erl. A missing OTP fails these tests; it never skips them.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

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
    encode,
)
from tests.support.otp import RELEASES, ErlNode
from tests.support.terms import big_terms, canon, random_term, to_erlang

pytestmark = pytest.mark.interop

SEED = 20240611
CORPUS_SIZE = 10_000
BATCH = 250
# Every encoding term_to_binary offers: minor version 0 brings FLOAT_EXT and
# Latin-1 atoms, 1 NEW_FLOAT_EXT, 2 UTF-8 atoms (the default since OTP 26).
OPTIONS = "[[], [compressed], [{minor_version, 0}], [{minor_version, 1}], [{minor_version, 2}]]"

# Values only erl can make, bound to variables in the evaluator's session.
OPAQUE = {
    "ErldistPid": "self()",
    "ErldistOtherPid": 'list_to_pid("<0.1.2>")',
    "ErldistRef": "make_ref()",
    "ErldistPort": "hd(erlang:ports())",
    "ErldistExport": "fun lists:map/2",
    "ErldistFun": "fun(A) -> {A} end",
    "ErldistClosure": "(fun() -> X = 7, fun(Y) -> X + Y end end)()",
}


@pytest.fixture(scope="module", params=RELEASES)
def erl(request: pytest.FixtureRequest) -> Iterator[ErlNode]:
    node = ErlNode(request.param)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def opaque(erl: ErlNode) -> dict[Any, str]:
    """The erl-made values, decoded, mapped to the variable that holds each."""
    bindings = ", ".join(f"{name} = {expr}" for name, expr in OPAQUE.items())
    erl.eval(f"{bindings}, ok.")
    values = decode(erl.eval_etf("{" + ", ".join(OPAQUE) + "}."))
    return dict(zip(values, OPAQUE, strict=True))


@pytest.fixture(scope="module")
def corpus(opaque: dict[Any, str]) -> list[Any]:
    rng = random.Random(SEED)
    pool = tuple(opaque)
    return [random_term(rng, pool) for _ in range(CORPUS_SIZE)] + big_terms(rng)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def from_python(data: bytes) -> str:
    """Erlang source that decodes bytes we produced."""
    return f'binary_to_term(base64:decode(<<"{b64(data)}">>))'


def batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def erl_bools(text: str) -> list[bool]:
    assert text.startswith("[") and text.endswith("]"), text[:200]
    return [word == "true" for word in text[1:-1].split(",")]


def test_erl_decodes_what_python_encodes(
    erl: ErlNode, corpus: list[Any], opaque: dict[Any, str]
) -> None:
    # Some terms go compressed, and plain str (a UTF-8 binary) comes along too.
    extra = ["", "hé 😀", "\x00\n"]
    terms = [*corpus, *extra]
    failures = []
    checked = 0
    for index, batch in enumerate(batches(terms)):
        checks = [
            f"{from_python(encode(t, compressed=(i % 3 == 0)))} =:= {to_erlang(t, opaque)}"
            for i, t in enumerate(batch)
        ]
        verdicts = erl_bools(erl.eval("[" + ",\n".join(checks) + "]."))
        assert len(verdicts) == len(batch)
        checked += len(verdicts)
        failures += [
            (index * BATCH + i, t)
            for i, (t, ok) in enumerate(zip(batch, verdicts, strict=True))
            if not ok
        ]
    assert checked == len(terms)
    assert not failures, f"{len(failures)} terms differ in erl, first: {failures[0]!r:.500}"


def test_python_decodes_every_term_to_binary_option(
    erl: ErlNode, corpus: list[Any], opaque: dict[Any, str]
) -> None:
    failures = []
    compressed = 0
    for batch in batches(corpus):
        literals = ",\n".join(to_erlang(t, opaque) for t in batch)
        expr = (
            f"[[term_to_binary(ErldistT, ErldistO) || ErldistO <- {OPTIONS}]"
            f" || ErldistT <- [{literals}]]."
        )
        encodings = decode(erl.eval_etf(expr))
        assert len(encodings) == len(batch)
        for term, variants in zip(batch, encodings, strict=True):
            for data in variants:
                compressed += data[1] == 80
                if canon(decode(data)) != canon(term):
                    failures.append((term, data))
    assert compressed >= 5, "the corpus should include terms OTP chooses to compress"
    assert not failures, f"{len(failures)} decodes differ, first: {failures[0]!r:.500}"


def test_erl_made_values_round_trip(erl: ErlNode, opaque: dict[Any, str]) -> None:
    names = ", ".join(OPAQUE)
    received = decode(erl.eval_etf("{" + names + "}."))
    assert [type(v) for v in received] == [Pid, Pid, Reference, Port, Export, Fun, Fun]
    assert erl.eval(f"{from_python(encode(received))} =:= {{{names}}}.") == "true"
    # The funs still work after their trip through Python.
    closure, fun = received[6], received[5]
    assert erl.eval(f"({from_python(encode(closure))})(5).") == "12"
    assert erl.eval(f"({from_python(encode(fun))})(x).") == "{x}"
    assert closure.module == fun.module == Atom("erl_eval")


def test_python_made_identifiers(erl: ErlNode) -> None:
    """Pids, refs and ports of other nodes, with full 32-bit fields, as OTP sees them."""
    rng = random.Random(SEED)

    def u32() -> int:
        return rng.getrandbits(32)

    values: list[Any] = []
    for i in range(40):
        node = Atom(f"py{i}@host{i % 3}.example")
        values += [
            Pid(node, u32(), u32(), u32()),
            Reference(node, u32(), tuple(u32() for _ in range(i % 6))),
            Port(node, u32(), u32()),
            Port(node, rng.getrandbits(64), u32()),
        ]
    blobs = ", ".join(f'<<"{b64(encode(v))}">>' for v in values)
    expr = (
        "[{node(X), term_to_binary(X, [{minor_version, 2}])}"
        f" || B <- [{blobs}], X <- [binary_to_term(base64:decode(B))]]."
    )
    echoed = decode(erl.eval_etf(expr))
    for value, (node, reencoded) in zip(values, echoed, strict=True):
        assert node == value.node
        assert decode(reencoded) == value
        if not isinstance(value, Port):  # OTP 26+ re-encodes every port as V4_PORT_EXT
            assert reencoded == encode(value)


def test_python_terms_equal_to_erl_built_ones(erl: ErlNode) -> None:
    """A few terms spelled natively in Erlang, not through our printer."""
    cases: dict[str, Any] = {
        "[1, 2.5, -3, 1 bsl 100, -(1 bsl 2100)]": [1, 2.5, -3, 2**100, -(2**2100)],
        '{ok, <<"bin">>, <<1:3>>, #{a => "xy"}, [a | b]}': (
            Atom("ok"),
            b"bin",
            BitBinary(b"\x20", 3),
            {Atom("a"): [120, 121]},
            ImproperList((Atom("a"),), Atom("b")),
        ),
        "{'h\\x{E9}\\x{1F600}', true, false, [], {}, #{}}": (
            Atom("hé😀"),
            True,
            False,
            [],
            (),
            {},
        ),
        'unicode:characters_to_binary("h\\x{E9}")': "hé",
    }
    for source, term in cases.items():
        assert erl.eval(f"{from_python(encode(term))} =:= {source}.") == "true", source
        expected = term.encode() if isinstance(term, str) else term
        assert canon(decode(erl.eval_etf(f"{source}."))) == canon(expected), source
