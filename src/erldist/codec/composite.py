"""distribute's composite codecs: option, result, tuple2 and tuple3.

Gleam's ``Option`` maps to ``None`` or the plain value; ``Some(x)`` appears
only where a plain value would be ambiguous (``Some(None)`` in an option of
an option, or of nil). ``Result`` maps to ``Ok(value)`` / ``Err(error)``;
Gleam tuples to Python tuples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from erldist.codec.core import Codec, Reader, unpack_u32, write_u32_prefixed
from erldist.errors import InsufficientData, InvalidBinary, InvalidValue

__all__ = ["Err", "Ok", "Result", "Some", "option", "result", "tuple2", "tuple3"]

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Some(Generic[T]):
    """Gleam's ``Some(value)``, needed only when ``value`` is itself ``None`` or a ``Some``."""

    value: T


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    """Gleam's ``Ok(value)``."""

    value: T


@dataclass(frozen=True, slots=True)
class Err(Generic[E]):
    """Gleam's ``Error(error)``."""

    error: E


Result: TypeAlias = Ok[T] | Err[E]


class _Option(Codec[Any]):
    """``00`` for None, ``01 ‖ inner`` for Some: Gleam's ``composite.option(inner)``."""

    __slots__ = ("inner",)

    def __init__(self, inner: Codec[Any]) -> None:
        self.inner = inner

    def _write(self, out: bytearray, value: Any) -> None:
        if value is None:
            out.append(0)
            return
        out.append(1)
        self.inner._write(out, value.value if type(value) is Some else value)

    @staticmethod
    def _some(value: Any) -> Any:
        return Some(value) if value is None or type(value) is Some else value

    def _read(self, r: Reader, pos: int, end: int) -> tuple[Any, int]:
        if pos < end:
            if r.data[pos] == 0:
                return None, pos + 1
            if r.data[pos] == 1:
                value, stop = self.inner._read(r, pos + 1, end)
                return self._some(value), stop
        raise InvalidBinary("invalid option tag")

    def _read_all(self, r: Reader, pos: int, end: int) -> Any:
        if pos < end:
            if r.data[pos] == 0:
                if pos + 1 != end:
                    raise InvalidBinary("trailing bytes after option None tag")
                return None
            if r.data[pos] == 1:
                return self._some(self.inner._read_all(r, pos + 1, end))
        raise InvalidBinary("invalid option tag")


class _Result(Codec[Any]):
    """``00 ‖ ok`` or ``01 ‖ err`` (the reverse of option): ``composite.result(ok, err)``."""

    __slots__ = ("err", "ok")

    def __init__(self, ok: Codec[Any], err: Codec[Any]) -> None:
        self.ok = ok
        self.err = err

    def _write(self, out: bytearray, value: Any) -> None:
        if type(value) is Ok:
            out.append(0)
            self.ok._write(out, value.value)
        elif type(value) is Err:
            out.append(1)
            self.err._write(out, value.error)
        else:
            raise InvalidValue(f"result codec needs Ok or Err, got {type(value).__name__}")

    def _read(self, r: Reader, pos: int, end: int) -> tuple[Any, int]:
        if pos < end:
            if r.data[pos] == 0:
                value, stop = self.ok._read(r, pos + 1, end)
                return Ok(value), stop
            if r.data[pos] == 1:
                error, stop = self.err._read(r, pos + 1, end)
                return Err(error), stop
        raise InvalidBinary("invalid result tag")

    def _read_all(self, r: Reader, pos: int, end: int) -> Any:
        if pos < end:
            if r.data[pos] == 0:
                return Ok(self.ok._read_all(r, pos + 1, end))
            if r.data[pos] == 1:
                return Err(self.err._read_all(r, pos + 1, end))
        raise InvalidBinary("invalid result tag")


def _check_tuple(value: Any, size: int) -> None:
    if type(value) is not tuple or len(value) != size:
        shown = f"a tuple of {len(value)}" if isinstance(value, tuple) else type(value).__name__
        raise InvalidValue(f"tuple{size} codec needs a tuple of {size}, got {shown}")


@dataclass(frozen=True, slots=True)
class _Slot:
    """distribute's messages for one length-prefixed tuple slot."""

    missing: str  # fewer than 4 bytes for the length
    short: str  # the length runs past the end
    smuggled: str  # the value ends before its slot does
    what: str  # the slot, in an encoder's ValueTooLarge


def _read_slot(codec: Codec[Any], r: Reader, pos: int, end: int, slot: _Slot) -> tuple[Any, int]:
    """A strict slot: ``u32(len) ‖ exactly len bytes of one value``."""
    if end - pos < 4:
        raise InvalidBinary(slot.missing)
    size = unpack_u32(r.data, pos)[0]
    start = pos + 4
    if size > end - start:
        raise InsufficientData(slot.short)
    stop = start + size
    value, used = codec._read(r, start, stop)
    if used != stop:
        raise InvalidBinary(slot.smuggled)
    return value, stop


_T2_FIRST = _Slot(
    "missing tuple2 length prefix",
    "tuple2 first",
    "trailing bytes smuggled inside tuple2 first element",
    "tuple2 first element",
)
_T3_FIRST = _Slot(
    "tuple3 missing length",
    "tuple3 first",
    "trailing bytes smuggled inside tuple3 first element",
    "tuple3 first element",
)
_T3_SECOND = _Slot(
    "tuple3 missing second length",
    "tuple3 second",
    "trailing bytes smuggled inside tuple3 second element",
    "tuple3 second element",
)


class _Tuple2(Codec[tuple[A, B]]):
    """``u32(len A) ‖ A ‖ B``: Gleam's ``composite.tuple2(a, b)``; only A is sized."""

    __slots__ = ("a", "b")

    def __init__(self, a: Codec[A], b: Codec[B]) -> None:
        self.a = a
        self.b = b

    def _write(self, out: bytearray, value: tuple[A, B]) -> None:
        _check_tuple(value, 2)
        write_u32_prefixed(out, lambda o: self.a._write(o, value[0]), _T2_FIRST.what)
        self.b._write(out, value[1])

    def _read(self, r: Reader, pos: int, end: int) -> tuple[tuple[A, B], int]:
        first, pos = _read_slot(self.a, r, pos, end, _T2_FIRST)
        second, pos = self.b._read(r, pos, end)
        return (first, second), pos


class _Tuple3(Codec[tuple[A, B, C]]):
    """``u32(len A) ‖ A ‖ u32(len B) ‖ B ‖ C``: Gleam's ``composite.tuple3(a, b, c)``."""

    __slots__ = ("a", "b", "c")

    def __init__(self, a: Codec[A], b: Codec[B], c: Codec[C]) -> None:
        self.a = a
        self.b = b
        self.c = c

    def _write(self, out: bytearray, value: tuple[A, B, C]) -> None:
        _check_tuple(value, 3)
        write_u32_prefixed(out, lambda o: self.a._write(o, value[0]), _T3_FIRST.what)
        write_u32_prefixed(out, lambda o: self.b._write(o, value[1]), _T3_SECOND.what)
        self.c._write(out, value[2])

    def _read(self, r: Reader, pos: int, end: int) -> tuple[tuple[A, B, C], int]:
        first, pos = _read_slot(self.a, r, pos, end, _T3_FIRST)
        second, pos = _read_slot(self.b, r, pos, end, _T3_SECOND)
        third, pos = self.c._read(r, pos, end)
        return (first, second, third), pos


def option(inner: Codec[T]) -> Codec[Any]:
    """``None`` or a value of ``inner`` (``Some(x)`` only when ``x`` is None or a Some).

    Encoding accepts ``None``, ``Some(x)`` or a plain ``x``; decoding returns
    the plain value unless that would read as a different option.
    """
    return _Option(inner)


def result(ok: Codec[T], err: Codec[E]) -> Codec[Any]:
    """``Ok(value)`` of ``ok`` or ``Err(error)`` of ``err``."""
    return _Result(ok, err)


def tuple2(a: Codec[A], b: Codec[B]) -> Codec[tuple[A, B]]:
    """A 2-tuple; the first element is length-prefixed and must fill its slot exactly."""
    return _Tuple2(a, b)


def tuple3(a: Codec[A], b: Codec[B], c: Codec[C]) -> Codec[tuple[A, B, C]]:
    """A 3-tuple; the first two elements are length-prefixed and strict."""
    return _Tuple3(a, b, c)
