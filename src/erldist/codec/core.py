"""The codec framework every payload codec shares: distribute's ``Codec(a)``.

A codec turns one Python value into the exact bytes a Gleam ``distribute``
codec writes, and back. Decoding comes in distribute's two forms:

- ``decode`` is the *top-level, strict* form: the bytes must be consumed
  exactly, as every receive path of distribute demands;
- ``decode_prefix`` is the *sized* form: it reads one value from the start of
  the bytes and says where it stopped, which is how composites chain fields.

Subclasses implement ``_write`` (append to one shared buffer, so a nested
value is never copied) and ``_read`` (read between two offsets of one shared
buffer, so a length-prefixed slot is bounded without slicing). Top-level
strictness lives in ``_read_all``; the few codecs whose top level differs
(nil, option, result) override it.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from erldist import config
from erldist.errors import (
    CodecDecodeError,
    DecodeFailed,
    InvalidBinary,
    InvalidValue,
    ValueTooLarge,
)

__all__ = ["U32_MAX", "Codec", "Reader", "mapped"]

T = TypeVar("T")
U = TypeVar("U")

#: Largest value of distribute's 32-bit length, count and version fields.
U32_MAX = 0xFFFFFFFF

_U32 = struct.Struct(">I")
pack_u32 = _U32.pack
unpack_u32 = _U32.unpack_from


class Reader:
    """One decode's input and budgets, shared by every codec it reaches.

    ``list_cap`` is ``config.max_decoded_list_elements``, read once per decode.
    ``elements_left`` bounds the elements of all lists together: each list is
    capped on its own (as in distribute), but a list of lists of nil costs four
    bytes per ten thousand elements, so without a total a 4 MiB payload could
    ask for 10^10 of them. Only elements that take no bytes (nil, or a codec
    mapped onto nil) can outnumber the payload's bytes, so the total
    ``list_cap + len(data)`` refuses only payloads carrying more than
    ``list_cap`` such empty elements in all, which distribute would accept.
    """

    __slots__ = ("data", "elements_left", "list_cap")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.list_cap = config.get().max_decoded_list_elements
        self.elements_left = self.list_cap + len(data)


def as_bytes(data: object) -> bytes:
    """The payload as ``bytes``; anything that is not a whole binary is ``InvalidBinary``.

    A Gleam receiver crashes on a non-binary payload (``byte_size`` raises); a
    typed error is the safe equivalent.
    """
    if type(data) is bytes:
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise InvalidBinary(f"payload is not a binary: got {type(data).__name__}")


class Codec(ABC, Generic[T]):
    """Encode ``T`` to distribute's bytes and decode them back; stateless and reusable."""

    __slots__ = ()

    def encode(self, value: T) -> bytes:
        """The bytes for ``value``; raises a ``CodecEncodeError`` subclass."""
        out = bytearray()
        self._write(out, value)
        return bytes(out)

    def decode(self, data: bytes | bytearray | memoryview) -> T:
        """The value of exactly ``data``; raises a ``CodecDecodeError`` subclass.

        Trailing bytes are an error, as in every distribute top-level decoder.
        """
        buf = as_bytes(data)
        return self._read_all(Reader(buf), 0, len(buf))

    def decode_prefix(self, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[T, int]:
        """Read one value starting at ``offset``; return it and the offset just past it.

        distribute's sized decoder: bytes after the value are left alone.
        """
        buf = as_bytes(data)
        if not 0 <= offset <= len(buf):
            raise ValueError(f"offset must be within 0..{len(buf)}, got {offset}")
        return self._read(Reader(buf), offset, len(buf))

    @abstractmethod
    def _write(self, out: bytearray, value: T) -> None:
        """Append the bytes of ``value`` to ``out``."""

    @abstractmethod
    def _read(self, r: Reader, pos: int, end: int) -> tuple[T, int]:
        """Read one value from ``r.data[pos:end]``; return it and where it stopped."""

    def _read_all(self, r: Reader, pos: int, end: int) -> T:
        """The strict form: the value must end exactly at ``end``."""
        value, stop = self._read(r, pos, end)
        if stop != end:
            raise InvalidBinary(f"trailing bytes ({end - stop}) at top level")
        return value


def write_u32_prefixed(out: bytearray, inner: Callable[[bytearray], None], what: str) -> None:
    """Write ``u32(len(X)) ‖ X`` where ``inner`` appends X, patching the length in place."""
    at = len(out)
    out += b"\0\0\0\0"
    inner(out)
    size = len(out) - at - 4
    if size > U32_MAX:
        raise ValueTooLarge(f"{what} of {size} bytes exceeds the 32-bit length prefix")
    out[at : at + 4] = pack_u32(size)


class _Mapped(Codec[U], Generic[T, U]):
    __slots__ = ("_inner", "_unwrap", "_wrap")

    def __init__(self, inner: Codec[T], wrap: Callable[[T], U], unwrap: Callable[[U], T]) -> None:
        self._inner = inner
        self._wrap = wrap
        self._unwrap = unwrap

    def _write(self, out: bytearray, value: U) -> None:
        try:
            plain = self._unwrap(value)
        except Exception as exc:
            raise InvalidValue(f"unwrap failed on {type(value).__name__}: {exc}") from exc
        self._inner._write(out, plain)

    def _read(self, r: Reader, pos: int, end: int) -> tuple[U, int]:
        plain, stop = self._inner._read(r, pos, end)
        return self.wrap(plain), stop

    def _read_all(self, r: Reader, pos: int, end: int) -> U:
        return self.wrap(self._inner._read_all(r, pos, end))

    def wrap(self, plain: T) -> U:
        return call_wrap(self._wrap, plain)


def call_wrap(wrap: Callable[[Any], U], plain: Any) -> U:
    """Run a user ``wrap`` on decoded data; whatever it raises becomes ``DecodeFailed``.

    A constructor that validates (and refuses what a peer sent) must not let a
    foreign exception escape a decoder.
    """
    try:
        return wrap(plain)
    except CodecDecodeError:
        raise
    except Exception as exc:
        raise DecodeFailed(f"wrap failed: {exc}") from exc


def mapped(inner: Codec[T], wrap: Callable[[T], U], unwrap: Callable[[U], T]) -> Codec[U]:
    """distribute's ``codec.map``: the same bytes as ``inner``, another Python type.

    ``unwrap`` turns a value into what ``inner`` encodes; ``wrap`` builds the
    value from what ``inner`` decoded. Records usually travel as a tuple codec
    mapped to a dataclass.
    """
    return _Mapped(inner, wrap, unwrap)
