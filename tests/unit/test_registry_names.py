"""The registry's name rules and pool naming (the seed's ``distribute/registry``)."""

from __future__ import annotations

import pytest

from erldist.errors import RegistryInvalidArgument
from erldist.registry import NAME_RULE, pool_member, validate_name
from erldist.runtime.termkey import term_key
from erldist.term.types import Atom, FrozenList


@pytest.mark.parametrize("name", ["counter", "worker_3", "a.b-c_D9", "x" * 255])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "has space", "é", "a@b", "a/b", "x" * 256])
def test_invalid_names_are_refused_with_the_seeds_wording(name: str) -> None:
    with pytest.raises(RegistryInvalidArgument) as info:
        validate_name(name)
    assert str(info.value) == NAME_RULE


def test_pool_member_names() -> None:
    assert pool_member("worker", 3) == "worker_3"
    assert pool_member("w", 10) == "w_10"


def test_term_keys_follow_erlang_equality() -> None:
    assert term_key("svc") == term_key(b"svc")  # a str travels as a binary
    assert term_key(Atom("svc")) != term_key("svc")
    assert len({term_key(1), term_key(1.0), term_key(True)}) == 3
    assert term_key([1, 2]) == term_key(FrozenList([1, 2])) != term_key((1, 2))
    assert term_key({Atom("a"): [1]}) == term_key({Atom("a"): [1]})
