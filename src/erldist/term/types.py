"""Python values for the Erlang terms that have no natural Python twin.

Every type here is immutable, hashable and compares by value, so decoded terms
can be dict keys (Erlang map keys may be pids or tuples) and tests can compare
them directly. ``repr`` follows Erlang's own notation, with the node name where
Erlang would print a node index, so log lines stay readable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Atom",
    "BitBinary",
    "Export",
    "FrozenList",
    "FrozenMap",
    "Fun",
    "ImproperList",
    "Pid",
    "Port",
    "Reference",
    "Term",
]

#: A decoded term. Like ``json.loads``, the codec speaks ``Any``: the shape of a
#: message is a contract between the two programs, not something a type checker
#: can see from here.
Term = Any

MAX_ATOM_CHARS = 255
#: Id words a reference may carry (OTP 26+ peers send up to five).
MAX_REFERENCE_WORDS = 5


class Atom(str):
    """An Erlang atom: a ``str`` subclass, so ``tag == "ok"`` reads naturally.

    ``true`` and ``false`` never appear as ``Atom``: they are Python ``bool``.
    A plain ``str`` is encoded as a UTF-8 binary (what Elixir and Gleam use for
    text), so ``Atom`` is how a caller asks for an atom.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> Atom:
        if len(value) > MAX_ATOM_CHARS:
            raise ValueError(f"an atom holds at most {MAX_ATOM_CHARS} characters, got {len(value)}")
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


@dataclass(frozen=True, slots=True)
class Pid:
    """A process identifier: ``<node.id.serial>``."""

    node: Atom
    id: int
    serial: int
    creation: int

    def __repr__(self) -> str:
        return f"<{self.node}.{self.id}.{self.serial}>"


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference: ``#Ref<node.w1.w2.w3>`` (up to five 32-bit words)."""

    node: Atom
    creation: int
    ids: tuple[int, ...]

    def __repr__(self) -> str:
        words = ".".join(str(i) for i in self.ids)
        return f"#Ref<{self.node}.{words}>"


@dataclass(frozen=True, slots=True)
class Port:
    """A port identifier: ``#Port<node.id>``."""

    node: Atom
    id: int
    creation: int

    def __repr__(self) -> str:
        return f"#Port<{self.node}.{self.id}>"


class FrozenList(tuple[Any, ...]):
    """An Erlang list where Python needs a hashable value: inside a map key.

    Erlang strings are lists, so ``#{"name" => 1}`` decodes to
    ``{FrozenList([110, 97, 109, 101]): 1}``. It equals a ``list`` with the
    same items, never a tuple (``[1]`` and ``{1}`` are different keys in
    Erlang), and it encodes as a list.
    """

    __slots__ = ()

    def __new__(cls, items: Iterable[Any] = ()) -> FrozenList:
        return super().__new__(cls, items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenList | list):
            return tuple.__eq__(self, tuple(other))
        return False

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((FrozenList, tuple(self)))

    def __repr__(self) -> str:
        return f"FrozenList({list(self)!r})"


class FrozenMap(Mapping[Any, Any]):
    """An Erlang map where Python needs a hashable value: inside a map key.

    A read-only mapping that equals a ``dict`` with the same items and
    encodes as a map.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = ()) -> None:
        self._items = dict(items)

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._items == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash((FrozenMap, frozenset(self._items.items())))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True, slots=True)
class ImproperList:
    """A list whose tail is not ``[]``: ``[a, b | tail]``.

    ``items`` is a tuple so the value stays hashable; an empty ``items`` is not
    a list at all and is refused.
    """

    items: tuple[Term, ...]
    tail: Term

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("an improper list needs at least one element before its tail")
        if isinstance(self.tail, list | ImproperList):
            raise ValueError("the tail of an improper list must not itself be a list")

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self.items)
        return f"[{head} | {self.tail!r}]"


@dataclass(frozen=True, slots=True)
class BitBinary:
    """A bitstring whose length is not a whole number of bytes.

    ``bits`` is how many bits of the last byte count (1..8); the unused low
    bits of that byte are kept zero so equal bitstrings compare equal.
    """

    data: bytes
    bits: int

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("a bit binary needs at least one byte")
        if not 1 <= self.bits <= 8:
            raise ValueError(f"bits in the last byte must be 1..8, got {self.bits}")
        mask = (0xFF << (8 - self.bits)) & 0xFF
        if self.data[-1] & ~mask & 0xFF:
            object.__setattr__(self, "data", self.data[:-1] + bytes([self.data[-1] & mask]))

    @property
    def bit_size(self) -> int:
        return (len(self.data) - 1) * 8 + self.bits

    def __repr__(self) -> str:
        body = ",".join(str(b) for b in self.data[:-1])
        last = f"{self.data[-1] >> (8 - self.bits)}:{self.bits}"
        return f"<<{body + ',' if body else ''}{last}>>"


@dataclass(frozen=True, slots=True)
class Export:
    """An external fun ``fun Module:Function/Arity``."""

    module: Atom
    function: Atom
    arity: int

    def __repr__(self) -> str:
        return f"fun {self.module}:{self.function}/{self.arity}"


@dataclass(frozen=True, slots=True)
class Fun:
    """A local fun, kept opaque: it can only run on a node with its code.

    ``raw`` is the whole NEW_FUN_EXT encoding (tag byte included), re-emitted
    byte for byte so a fun can travel through a Python node unharmed. The other
    fields are read from it for display and equality is decided by ``raw``.
    """

    raw: bytes
    module: Atom = field(compare=False)
    arity: int = field(compare=False)
    index: int = field(compare=False)
    uniq: bytes = field(compare=False)
    free_vars: tuple[Term, ...] = field(compare=False, default=())

    def __repr__(self) -> str:
        return f"#Fun<{self.module}.{self.index}.{self.uniq.hex()[:8]}>"
