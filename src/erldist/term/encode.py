"""Encode Python values in the External Term Format, choosing tags as OTP does.

The encoder appends to one ``bytearray`` and dispatches on the exact type of
each value through a table, so the common case costs one dict lookup and one
call per element. Subclasses (``IntEnum``, named tuples, ``StrEnum``...) are
encoded as their nearest supported base class.

Only the tags a current OTP node emits over the distribution are produced:
no Latin-1 atoms, no ``FLOAT_EXT``, no old pid/port/reference layouts.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from typing import Any

from erldist.errors import EncodeError
from erldist.term.types import (
    MAX_ATOM_CHARS,
    MAX_REFERENCE_WORDS,
    Atom,
    BitBinary,
    Export,
    FrozenList,
    FrozenMap,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
)

__all__ = ["encode", "encode_into"]

VERSION = b"\x83"
_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF
# OTP's term_to_binary default zlib level for [compressed].
_DEFAULT_LEVEL = 6

_TAG_U32 = struct.Struct(">BI").pack
_TAG_U16 = struct.Struct(">BH").pack
_INTEGER = struct.Struct(">Bi").pack
_FLOAT = struct.Struct(">Bd").pack
_PID_TAIL = struct.Struct(">III").pack
_NEW_PORT_TAIL = struct.Struct(">II").pack
_V4_PORT_TAIL = struct.Struct(">QI").pack
_SMALL_INTS = [bytes((97, i)) for i in range(256)]
# Creation then the id words, for each possible word count.
_REF_TAILS = [struct.Struct(f">{n + 1}I").pack for n in range(MAX_REFERENCE_WORDS + 1)]

_Encoder = Callable[[bytearray, Any], None]


def encode(term: Any, *, compressed: bool | int = False) -> bytes:
    """The external format of ``term``, starting with the 131 version byte.

    ``compressed`` is ``True`` (zlib level 6, OTP's default) or a level 0-9.
    As in OTP the compressed form (tag 80) is used only when it is smaller.
    """
    body = bytearray()
    if compressed is False:  # the common case, kept free of extra calls
        try:
            (_ENCODERS.get(type(term)) or _fallback(term))(body, term)
        except RecursionError:
            raise EncodeError("term nests too deeply to encode (or contains itself)") from None
        return VERSION + body
    level = _level(compressed)
    encode_into(body, term)
    if level:
        packed = zlib.compress(body, level)
        if len(packed) + 5 < len(body):
            return VERSION + _TAG_U32(80, len(body)) + packed
    return VERSION + body


def encode_into(buf: bytearray, term: Any) -> None:
    """Append the encoding of ``term`` to ``buf``, without the version byte.

    This is what the distribution layer uses to build a frame in one buffer.
    On failure ``buf`` is left as it was.
    """
    mark = len(buf)
    try:
        _encode(buf, term)
    except RecursionError:
        del buf[mark:]
        raise EncodeError("term nests too deeply to encode (or contains itself)") from None
    except BaseException:
        del buf[mark:]
        raise


def _level(compressed: bool | int) -> int:
    if compressed is True:
        return _DEFAULT_LEVEL
    if compressed is False:
        return 0
    if type(compressed) is not int or not 0 <= compressed <= 9:
        raise ValueError(f"compressed must be a bool or a zlib level 0-9, got {compressed!r}")
    return compressed


def _encode(buf: bytearray, term: Any) -> None:
    (_ENCODERS.get(type(term)) or _fallback(term))(buf, term)


def _fallback(term: Any) -> _Encoder:
    """The encoder of the nearest supported base class, or a helpful EncodeError."""
    for base in type(term).__mro__[1:]:
        found = _ENCODERS.get(base)
        if found is not None:
            return found
    if term is None:
        raise EncodeError(
            "None has no Erlang equivalent: use Atom('undefined') or Atom('nil') "
            "(whichever the receiving code expects)"
        )
    raise EncodeError(f"cannot encode a value of type {type(term).__qualname__}: {term!r:.80}")


# --- scalars -------------------------------------------------------------------------

# Encoded atoms, bounded like the decoder's cache: a program can make any
# number of atoms, the cache keeps only the first few thousand seen since the
# last reset.
_ATOM_CACHE_SIZE = 4096
_ATOMS: dict[str, bytes] = {}


def _atom_bytes(atom: str) -> bytes:
    """SMALL_ATOM_UTF8_EXT when the UTF-8 fits in 255 bytes, else ATOM_UTF8_EXT."""
    found = _ATOMS.get(atom)
    if found is not None:
        return found
    if len(atom) > MAX_ATOM_CHARS:
        raise EncodeError(f"an atom holds at most {MAX_ATOM_CHARS} characters, got {len(atom)}")
    try:
        text = atom.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"atom is not encodable as UTF-8: {exc.reason}") from None
    size = len(text)
    result = bytes((119, size)) + text if size <= 255 else _TAG_U16(118, size) + text
    if len(_ATOMS) >= _ATOM_CACHE_SIZE:
        _ATOMS.clear()
    _ATOMS[atom] = result
    return result


def _enc_atom(buf: bytearray, term: Atom) -> None:
    buf += _atom_bytes(term)


_TRUE = bytes((119, 4)) + b"true"
_FALSE = bytes((119, 5)) + b"false"


def _enc_bool(buf: bytearray, term: bool) -> None:
    buf += _TRUE if term else _FALSE


def _enc_int(buf: bytearray, term: int) -> None:
    if 0 <= term <= 255:
        buf += _SMALL_INTS[term]
    elif -0x80000000 <= term <= 0x7FFFFFFF:
        buf += _INTEGER(98, term)
    else:
        magnitude = -term if term < 0 else term
        size = (magnitude.bit_length() + 7) // 8
        if size <= 255:
            buf += bytes((110, size, term < 0))
        else:
            buf += _TAG_U32(111, size)
            buf.append(term < 0)
        buf += magnitude.to_bytes(size, "little")


def _enc_float(buf: bytearray, term: float) -> None:
    if not math.isfinite(term):
        raise EncodeError(f"Erlang floats are finite; cannot encode {term}")
    buf += _FLOAT(70, term)


# --- binaries ------------------------------------------------------------------------


def _enc_bytes(buf: bytearray, term: bytes | bytearray) -> None:
    buf += _TAG_U32(109, len(term))
    buf += term


def _enc_memoryview(buf: bytearray, term: memoryview) -> None:
    buf += _TAG_U32(109, term.nbytes)
    buf += term if term.c_contiguous else term.tobytes()


def _enc_str(buf: bytearray, term: str) -> None:
    try:
        text = term.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"str is not encodable as UTF-8: {exc.reason}") from None
    buf += _TAG_U32(109, len(text))
    buf += text


def _enc_bit_binary(buf: bytearray, term: BitBinary) -> None:
    buf += _TAG_U32(77, len(term.data))
    buf.append(term.bits)
    buf += term.data


# --- containers ----------------------------------------------------------------------


def _enc_tuple(buf: bytearray, term: tuple[Any, ...]) -> None:
    size = len(term)
    if size <= 255:
        buf += bytes((104, size))
    else:
        buf += _TAG_U32(105, size)
    get = _ENCODERS.get
    for item in term:
        (get(type(item)) or _fallback(item))(buf, item)


def _enc_list(buf: bytearray, term: list[Any]) -> None:
    size = len(term)
    if not size:
        buf.append(106)
        return
    # A list of byte-sized ints goes as STRING_EXT, as OTP sends it. Only
    # exact ints: bytes() would also take True/False, which are atoms.
    if size <= 0xFFFF and type(term[0]) is int and set(map(type, term)) == {int}:
        try:
            packed = bytes(term)
        except ValueError:
            pass
        else:
            buf += _TAG_U16(107, size)
            buf += packed
            return
    buf += _TAG_U32(108, size)
    get = _ENCODERS.get
    for item in term:
        (get(type(item)) or _fallback(item))(buf, item)
    buf.append(106)


def _enc_improper_list(buf: bytearray, term: ImproperList) -> None:
    buf += _TAG_U32(108, len(term.items))
    for item in term.items:
        _encode(buf, item)
    _encode(buf, term.tail)


def _enc_dict(buf: bytearray, term: dict[Any, Any]) -> None:
    buf += _TAG_U32(116, len(term))
    get = _ENCODERS.get
    for key, value in term.items():
        (get(type(key)) or _fallback(key))(buf, key)
        (get(type(value)) or _fallback(value))(buf, value)


# --- identifiers and funs ------------------------------------------------------------


def _check_u32(value: int, what: str) -> None:
    if type(value) is not int or not 0 <= value <= _U32_MAX:
        raise EncodeError(f"{what} must be an int in 0..2**32-1, got {value!r}")


def _enc_pid(buf: bytearray, term: Pid) -> None:
    try:
        tail = _PID_TAIL(term.id, term.serial, term.creation)
    except struct.error:
        raise EncodeError(
            f"Pid id, serial and creation must be ints in 0..2**32-1, got {term.id!r}, "
            f"{term.serial!r}, {term.creation!r}"
        ) from None
    buf.append(88)
    buf += _atom_bytes(term.node)
    buf += tail


def _enc_reference(buf: bytearray, term: Reference) -> None:
    words = len(term.ids)
    if words > MAX_REFERENCE_WORDS:
        raise EncodeError(f"a reference has at most {MAX_REFERENCE_WORDS} id words, got {words}")
    try:
        tail = _REF_TAILS[words](term.creation, *term.ids)
    except struct.error:
        raise EncodeError(
            f"Reference creation and id words must be ints in 0..2**32-1, "
            f"got {term.creation!r}, {term.ids!r}"
        ) from None
    buf += _TAG_U16(90, words)
    buf += _atom_bytes(term.node)
    buf += tail


def _enc_port(buf: bytearray, term: Port) -> None:
    _check_u32(term.creation, "Port.creation")
    ident = term.id
    if type(ident) is not int or not 0 <= ident <= _U64_MAX:
        raise EncodeError(f"Port.id must be an int in 0..2**64-1, got {ident!r}")
    if ident <= _U32_MAX:
        buf.append(89)
        buf += _atom_bytes(term.node)
        buf += _NEW_PORT_TAIL(ident, term.creation)
    else:
        buf.append(120)
        buf += _atom_bytes(term.node)
        buf += _V4_PORT_TAIL(ident, term.creation)


def _enc_export(buf: bytearray, term: Export) -> None:
    if type(term.arity) is not int or not 0 <= term.arity <= 255:
        raise EncodeError(f"Export.arity must be an int in 0..255, got {term.arity!r}")
    buf.append(113)
    buf += _atom_bytes(term.module)
    buf += _atom_bytes(term.function)
    buf += _SMALL_INTS[term.arity]


def _enc_fun(buf: bytearray, term: Fun) -> None:
    # Opaque: the bytes received are the bytes sent, free variables included.
    buf += term.raw


_ENCODERS: dict[type, _Encoder] = {
    Atom: _enc_atom,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    tuple: _enc_tuple,
    list: _enc_list,
    FrozenList: _enc_list,
    dict: _enc_dict,
    FrozenMap: _enc_dict,
    bytes: _enc_bytes,
    bytearray: _enc_bytes,
    memoryview: _enc_memoryview,
    str: _enc_str,
    BitBinary: _enc_bit_binary,
    ImproperList: _enc_improper_list,
    Pid: _enc_pid,
    Reference: _enc_reference,
    Port: _enc_port,
    Export: _enc_export,
    Fun: _enc_fun,
}
