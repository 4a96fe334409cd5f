"""distribute's primitive codecs: int, float, bool, string, bytes, nil and list.

Each layout, error variant and message is the one of ``distribute/codec``
4.0.0. Python types are checked strictly, because Gleam's types were: ``True``
is not an int here and ``1`` is not a bool.
"""

from __future__ import annotations

import math
import struct
from typing import Any, TypeVar

from erldist import config
from erldist.codec.core import U32_MAX, Codec, Reader, pack_u32, unpack_u32
from erldist.errors import (
    InsufficientData,
    InvalidBinary,
    InvalidValue,
    ListTooLong,
    ValueTooLarge,
)

__all__ = ["BOOL", "BYTES", "FLOAT", "INT", "NIL", "STRING", "list_of"]

T = TypeVar("T")

_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1


def _type_error(codec: str, want: str, value: object) -> InvalidValue:
    return InvalidValue(f"{codec} codec needs {want}, got {type(value).__name__}")


class _Int(Codec[int]):
    """8 bytes, signed big-endian: Gleam's ``codec.int()``."""

    __slots__ = ()

    def _write(self, out: bytearray, value: int) -> None:
        if type(value) is not int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _type_error("int", "an int", value)
            value = int(value)
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueTooLarge(f"int {value} out of signed 64-bit range")
        out += _I64.pack(value)

    def _read(self, r: Reader, pos: int, end: int) -> tuple[int, int]:
        if end - pos < 8:
            raise InvalidBinary("int64")
        return _I64.unpack_from(r.data, pos)[0], pos + 8


class _Float(Codec[float]):
    """8 bytes, IEEE-754 binary64 big-endian: Gleam's ``codec.float()``.

    NaN and the infinities are refused both ways: a BEAM float pattern does
    not match them, so a Gleam peer could never read what we wrote.
    """

    __slots__ = ()

    def _write(self, out: bytearray, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, float | int):
            raise _type_error("float", "a float", value)
        try:
            number = float(value)
        except OverflowError:
            raise InvalidValue(f"int {value} is too large for a float") from None
        if not math.isfinite(number):
            raise InvalidValue(f"float {number!r} is not finite; Erlang floats never are")
        out += _F64.pack(number)

    def _read(self, r: Reader, pos: int, end: int) -> tuple[float, int]:
        if end - pos < 8:
            raise InvalidBinary("float64")
        number: float = _F64.unpack_from(r.data, pos)[0]
        if not math.isfinite(number):
            raise InvalidBinary("float64")
        return number, pos + 8


class _Bool(Codec[bool]):
    """One byte, ``01`` True and ``00`` False: Gleam's ``codec.bool()``."""

    __slots__ = ()

    def _write(self, out: bytearray, value: bool) -> None:
        if type(value) is not bool:
            raise _type_error("bool", "a bool", value)
        out.append(1 if value else 0)

    def _read(self, r: Reader, pos: int, end: int) -> tuple[bool, int]:
        if pos >= end or r.data[pos] > 1:
            raise InvalidBinary("bool")
        return r.data[pos] == 1, pos + 1


def _write_sized(out: bytearray, data: bytes, what: str) -> None:
    if len(data) > U32_MAX:
        raise ValueTooLarge(f"{what} of {len(data)} bytes exceeds the 32-bit length prefix")
    out += pack_u32(len(data))
    out += data


class _String(Codec[str]):
    """``u32(byte length) ‖ UTF-8``: Gleam's ``codec.string()``.

    The count is of bytes, not characters. Python's strict UTF-8 refuses what
    Erlang's ``utf8`` segment refuses (overlong forms, surrogates, code points
    above U+10FFFF), so both sides accept exactly the same strings.
    """

    __slots__ = ()

    def _write(self, out: bytearray, value: str) -> None:
        if not isinstance(value, str):
            raise _type_error("string", "a str", value)
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidValue(f"string is not valid Unicode: {exc.reason}") from None
        _write_sized(out, data, "string")

    def _read(self, r: Reader, pos: int, end: int) -> tuple[str, int]:
        if end - pos < 4:
            raise InvalidBinary("missing string length prefix")
        size = unpack_u32(r.data, pos)[0]
        start = pos + 4
        if size > end - start:
            raise InsufficientData("string")
        try:
            text = r.data[start : start + size].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBinary("invalid UTF-8") from None
        return text, start + size


class _Bytes(Codec[bytes]):
    """``u32(length) ‖ raw bytes``: Gleam's ``codec.bitarray()``."""

    __slots__ = ()

    def _write(self, out: bytearray, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise _type_error("bytes", "bytes", value)
        _write_sized(out, bytes(value), "bitarray")

    def _read(self, r: Reader, pos: int, end: int) -> tuple[bytes, int]:
        if end - pos < 4:
            raise InvalidBinary("bitarray length prefix")
        size = unpack_u32(r.data, pos)[0]
        start = pos + 4
        if size > end - start:
            raise InsufficientData("bitarray")
        return r.data[start : start + size], start + size


class _Nil(Codec[None]):
    """Zero bytes for ``None``: Gleam's ``codec.nil()``.

    Nested, it consumes nothing; at the top level only the empty binary is nil.
    """

    __slots__ = ()

    def _write(self, out: bytearray, value: None) -> None:
        if value is not None:
            raise _type_error("nil", "None", value)

    def _read(self, r: Reader, pos: int, end: int) -> tuple[None, int]:
        return None, pos

    def _read_all(self, r: Reader, pos: int, end: int) -> None:
        if pos != end:
            raise InvalidBinary(f"trailing bytes ({end - pos}) for nil top-level decode")


class _List(Codec[list[T]]):
    """``u32(count) ‖ element ‖ element ‖ …``: Gleam's ``codec.list(element)``.

    Elements carry no length of their own; each is read with the element's
    sized decoder. ``config.max_decoded_list_elements`` caps every list on
    both sides, read afresh on every encode and decode.
    """

    __slots__ = ("element",)

    def __init__(self, element: Codec[T]) -> None:
        self.element = element

    def _write(self, out: bytearray, value: list[T]) -> None:
        if not isinstance(value, list | tuple):
            raise _type_error("list", "a list", value)
        cap = config.get().max_decoded_list_elements
        if len(value) > cap:
            raise ValueTooLarge(f"list of {len(value)} elements exceeds decoder cap of {cap}")
        out += pack_u32(len(value))
        write = self.element._write
        for item in value:
            write(out, item)

    def _read(self, r: Reader, pos: int, end: int) -> tuple[list[T], int]:
        if end - pos < 4:
            raise InvalidBinary("list length prefix")
        count = unpack_u32(r.data, pos)[0]
        if count > r.list_cap:
            raise ListTooLong(count, r.list_cap)
        if count > r.elements_left:
            # Only a list nested in lists can get here (see Reader).
            raise ListTooLong(count, r.elements_left)
        r.elements_left -= count
        pos += 4
        read = self.element._read
        items: list[Any] = []
        append = items.append
        for _ in range(count):
            item, pos = read(r, pos, end)
            append(item)
        return items, pos


INT: Codec[int] = _Int()
FLOAT: Codec[float] = _Float()
BOOL: Codec[bool] = _Bool()
STRING: Codec[str] = _String()
BYTES: Codec[bytes] = _Bytes()
NIL: Codec[None] = _Nil()


def list_of(element: Codec[T]) -> Codec[list[T]]:
    """A list of ``element`` values; a ``list`` or ``tuple`` encodes, a ``list`` decodes."""
    return _List(element)
