"""distribute's variant codec: a custom type as ``id:u8 ‖ payload``.

A Gleam custom type maps to a family of Python classes (usually dataclasses)
or to ``Enum`` members::

    @dataclass(frozen=True)
    class Message:
        text: str

    class Quit(Enum):
        QUIT = "quit"

    @dataclass(frozen=True)
    class Status:
        code: int
        ok: bool

    SHAPE = variant(case(0, Message, STRING), unit(1, Quit.QUIT),
                    case(2, Status, tuple2(INT, BOOL)))

Two traps of distribute 4.0.0 are closed here: ids are range-checked (0..255;
distribute writes ``<<id:8>>``, so 256 silently becomes 0), and an inner
encoder's error is raised as a typed error (distribute panics on it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import Enum
from typing import Any

from erldist.codec.core import Codec, Reader, call_wrap
from erldist.errors import (
    CodecDefinitionError,
    EncodeFailed,
    InsufficientData,
    InvalidValue,
    TagMismatch,
)

__all__ = ["Case", "case", "unit", "variant"]


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """One constructor of a variant: its id, name, payload codec and Python mapping.

    ``matches`` says whether a value belongs to this case, ``unwrap`` turns it
    into what ``inner`` encodes and ``wrap`` builds it back. A unit case has
    no ``inner`` and stands for one fixed value.
    """

    id: int
    name: str
    inner: Codec[Any] | None
    matches: Callable[[Any], bool]
    wrap: Callable[[Any], Any]
    unwrap: Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _default_mapping(cls: type) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """How a class travels by default: a dataclass as its field (or tuple of fields)."""
    if not dataclasses.is_dataclass(cls):
        return cls, _identity
    names = [f.name for f in dataclasses.fields(cls)]
    if not names:
        raise CodecDefinitionError(
            f"{cls.__name__} has no fields: use unit(id, value) for a constructor without data"
        )
    if len(names) == 1:
        only = names[0]
        return cls, lambda value: getattr(value, only)
    return (lambda fields: cls(*fields)), (lambda value: tuple(getattr(value, n) for n in names))


def case(
    id: int,
    cls: type,
    inner: Codec[Any],
    *,
    name: str | None = None,
    wrap: Callable[[Any], Any] | None = None,
    unwrap: Callable[[Any], Any] | None = None,
) -> Case:
    """The constructor ``cls`` with payload codec ``inner``: distribute's ``variant.add``.

    A value matches when it is an instance of ``cls``. By default a dataclass
    with one field sends that field, one with more fields sends the tuple of
    them (pair it with ``tuple2``/``tuple3``), and any other class is sent as
    itself; ``wrap``/``unwrap`` override either direction. ``name`` (default
    the class name) appears in the ``TagMismatch`` for an unknown id.
    """
    default_wrap, default_unwrap = _default_mapping(cls)
    return Case(
        id,
        name if name is not None else cls.__name__,
        inner,
        lambda value: isinstance(value, cls),
        wrap if wrap is not None else default_wrap,
        unwrap if unwrap is not None else default_unwrap,
    )


def unit(id: int, value: Any, *, name: str | None = None) -> Case:
    """A constructor without data, sent as its id alone: distribute's ``variant.unit``.

    ``value`` is what it decodes to, typically an ``Enum`` member; a value
    matches when it is that object or equal to it and of the same type.
    """
    if name is None:
        name = value.name if isinstance(value, Enum) else repr(value)
    return Case(
        id,
        name,
        None,
        lambda other: other is value or (type(other) is type(value) and other == value),
        lambda _: value,
        _identity,
    )


class _Variant(Codec[Any]):
    __slots__ = ("by_id", "cases", "expected")

    def __init__(self, cases: tuple[Case, ...]) -> None:
        if not cases:
            raise CodecDefinitionError("a variant needs at least one case")
        by_id: dict[int, Case] = {}
        for c in cases:
            if isinstance(c.id, bool) or not isinstance(c.id, int) or not 0 <= c.id <= 255:
                raise CodecDefinitionError(
                    f"variant id of {c.name} must be an int in 0..255 (one byte), got {c.id!r}"
                )
            if c.id in by_id:
                raise CodecDefinitionError(
                    f"variant id {c.id} is used by both {by_id[c.id].name} and {c.name}"
                )
            by_id[c.id] = c
        self.cases = cases
        self.by_id = by_id
        # distribute lists the names in insertion order, each once.
        self.expected = "one of " + ", ".join(dict.fromkeys(c.name for c in cases))

    def _write(self, out: bytearray, value: Any) -> None:
        for c in self.cases:
            if c.matches(value):
                out.append(c.id)
                if c.inner is not None:
                    try:
                        plain = c.unwrap(value)
                    except Exception as exc:
                        raise InvalidValue(f"unwrap of {c.name} failed: {exc}") from exc
                    c.inner._write(out, plain)
                return
        raise EncodeFailed("No variant matched for encoding ADT value")

    def _read(self, r: Reader, pos: int, end: int) -> tuple[Any, int]:
        if pos >= end:
            raise InsufficientData("missing variant tag")
        ident = r.data[pos]
        c = self.by_id.get(ident)
        if c is None:
            raise TagMismatch(self.expected, str(ident))
        if c.inner is None:
            return c.wrap(None), pos + 1
        plain, stop = c.inner._read(r, pos + 1, end)
        return call_wrap(c.wrap, plain), stop


def variant(*cases: Case) -> Codec[Any]:
    """A custom type from its cases: distribute's ``variant.build``.

    Encoding tries the cases in the order given and uses the first that
    matches; a value no case matches raises ``EncodeFailed``. Ids must be
    distinct ints in 0..255 (``CodecDefinitionError`` otherwise).
    """
    return _Variant(cases)
