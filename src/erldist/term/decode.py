"""Decode the External Term Format from bytes a hostile peer may have chosen.

The decoder is iterative: containers live on an explicit stack, so a deep term
costs heap, not Python frames, and decoding works the same from any call depth.
Every declared length is checked against the bytes actually present (and
against ``DecodeLimits``) before anything is allocated, so the work done is
bounded by the input size and the limits. Any malformed input raises
``DecodeError`` carrying the offset of the offending term and a reason.

Scalars that dominate real traffic (small atoms, small integers, tuples, nil,
binaries) are decoded inline in the main loop; the rarer tags go through a
dispatch table.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from erldist.errors import DecodeError
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

__all__ = ["DEFAULT_LIMITS", "DecodeLimits", "decode", "decode_prefix"]

VERSION = 131
COMPRESSED = 80

# A UTF-8 character takes at most 4 bytes, so a longer atom cannot be valid.
_MAX_ATOM_UTF8_BYTES = 4 * MAX_ATOM_CHARS
# Bound on each atom cache below: hot atoms stay shared, hostile ones cannot grow it.
_ATOM_CACHE_SIZE = 4096

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_I32 = struct.Struct(">i").unpack_from
_F64 = struct.Struct(">d").unpack_from
_NEW_PID = struct.Struct(">III").unpack_from
_OLD_PID = struct.Struct(">IIB").unpack_from
_OLD_ID = struct.Struct(">IB").unpack_from
_NEW_PORT = struct.Struct(">II").unpack_from
_V4_PORT = struct.Struct(">QI").unpack_from
_FUN_HEAD = struct.Struct(">IB16sII").unpack_from
_REF_IDS = [struct.Struct(f">{n}I").unpack_from for n in range(MAX_REFERENCE_WORDS + 1)]


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Caps applied while decoding; each one stops a different way to exhaust us.

    The defaults admit the messages normal Erlang applications send, and cap
    what one hostile term can cost at roughly 100 MiB and a couple of seconds
    of CPU. Raise them for bulk transfers.

    - ``max_depth`` (256): containers nested inside each other. The decoder
      itself does not recurse, but Python's own ``==``, ``repr`` and the
      encoder do, so terms much deeper than this are unusable anyway.
    - ``max_elements`` (1 000 000): list/tuple/map/fun slots (a map pair
      counts two, a STRING_EXT byte one) summed over the whole term. One
      input byte can become a 60-byte Python object, so this bounds memory
      where the input size does not.
    - ``max_binary_bytes`` (64 MiB): one binary or bitstring.
    - ``max_bigint_bytes`` (4096): magnitude bytes of one integer. Arithmetic
      and ``str()`` on huge ints are quadratic in Python (``str()`` of more
      than about 1780 bytes also trips ``sys.get_int_max_str_digits``).
    - ``max_inflated_bytes`` (64 MiB): declared size of a compressed term,
      refused before any inflating happens.

    The atom length is not configurable: the format caps it at 255 characters.
    """

    max_depth: int = 256
    max_elements: int = 1_000_000
    max_binary_bytes: int = 64 * 1024 * 1024
    max_bigint_bytes: int = 4096
    max_inflated_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or value < 0:
                raise ValueError(f"DecodeLimits.{f.name} must be an int >= 0, got {value!r}")


DEFAULT_LIMITS = DecodeLimits()

_Buffer = bytes | memoryview
_Handler = Callable[[_Buffer, int, DecodeLimits], tuple[Any, int]]


def decode(data: bytes | bytearray | memoryview, *, limits: DecodeLimits | None = None) -> Any:
    """Decode ``data``, which must hold exactly one term after the 131 version byte."""
    if type(data) is bytes and len(data) > 1 and data[0] == VERSION and data[1] != COMPRESSED:
        # The common case without the buffer and version plumbing below; a
        # bare binary (raw bytes sent as a message) skips the container machinery.
        if data[1] == 109 and len(data) >= 6:
            length = _U32(data, 2)[0]
            cap = (DEFAULT_LIMITS if limits is None else limits).max_binary_bytes
            if length == len(data) - 6 and length <= cap:
                return data[6:]
        term, end = _decode_body(data, 1, DEFAULT_LIMITS if limits is None else limits)
        if end != len(data):
            raise DecodeError(end, f"{len(data) - end} trailing bytes after the term")
        return term
    buf = _as_buffer(data)
    try:
        term, end = _decode_top(buf, 0, DEFAULT_LIMITS if limits is None else limits, True)
        if end != len(buf):
            raise DecodeError(end, f"{len(buf) - end} trailing bytes after the term")
        return term
    finally:
        _release(buf)


def decode_prefix(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    limits: DecodeLimits | None = None,
    version_byte: bool = True,
) -> tuple[Any, int]:
    """Decode one term starting at ``offset``; return it and the offset just past it.

    With ``version_byte`` the term must start with the 131 byte (a standalone
    term); without, ``offset`` points at the tag, as for the terms that follow
    a distribution header. Bytes after the term are left alone.
    """
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    buf = _as_buffer(data)
    try:
        return _decode_top(buf, offset, DEFAULT_LIMITS if limits is None else limits, version_byte)
    finally:
        _release(buf)


def _decode_top(
    data: _Buffer, pos: int, limits: DecodeLimits, version_byte: bool
) -> tuple[Any, int]:
    if version_byte:
        if pos >= len(data):
            raise DecodeError(pos, "truncated: no version byte")
        if data[pos] != VERSION:
            raise DecodeError(pos, f"expected version byte {VERSION}, got {data[pos]}")
        pos += 1
    if pos < len(data) and data[pos] == COMPRESSED:
        return _decode_compressed(data, pos, limits)
    return _decode_body(data, pos, limits)


def _as_buffer(data: bytes | bytearray | memoryview) -> _Buffer:
    """A byte-indexable view of ``data`` without copying it (bytes stay bytes)."""
    if type(data) is bytes:
        return data
    view = memoryview(data)
    if not view.c_contiguous:
        return view.tobytes()
    return view.cast("B")


def _release(buf: _Buffer) -> None:
    """Give a view back at once: one kept alive by a traceback would pin the
    caller's bytearray (it could no longer be resized)."""
    if type(buf) is memoryview:
        buf.release()


def _decode_compressed(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    """Tag 80: a declared size, then a zlib stream inflating to exactly that size."""
    inflated, end = _inflate(data, pos, limits.max_inflated_bytes)
    want = len(inflated)
    try:
        term, used = _decode_body(inflated, 0, limits)
    except DecodeError as exc:
        raise DecodeError(
            pos, f"inside compressed term at byte {exc.offset}: {exc.reason}"
        ) from None
    if used != want:
        raise DecodeError(pos, f"{want - used} trailing bytes inside compressed term")
    return term, end


def _inflate(data: _Buffer, pos: int, max_inflated: int) -> tuple[bytes, int]:
    """The inflated body of the compressed term at ``pos``, and the offset past it.

    The native core calls this too, so both cores report zlib's errors alike.
    """
    if pos + 5 > len(data):
        raise DecodeError(pos, "truncated compressed term header")
    want = _U32(data, pos + 1)[0]
    if want > max_inflated:
        raise DecodeError(
            pos, f"compressed term declares {want} bytes, over the {max_inflated} cap"
        )
    inflater = zlib.decompressobj()
    try:
        # max_length one past the declared size: a lying size shows up as an
        # overlong result without inflating the rest of a bomb.
        inflated = inflater.decompress(memoryview(data)[pos + 5 :], want + 1)
    except zlib.error as exc:
        raise DecodeError(pos, f"bad zlib data in compressed term: {exc}") from None
    if len(inflated) > want:
        raise DecodeError(pos, f"compressed term inflates to more than its declared {want} bytes")
    if not inflater.eof:
        raise DecodeError(pos, "compressed term is truncated")
    if len(inflated) != want:
        raise DecodeError(
            pos, f"compressed term inflates to {len(inflated)} bytes, declared {want}"
        )
    return inflated, len(data) - len(inflater.unused_data)


# Frame kinds on the container stack; _TOP stands for "no container".
_TOP = -1
_TUPLE = 0
_LIST = 1
_MAP = 2
_FUN = 3


def _decode_body(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    """Decode the term whose tag is at ``pos``; the heart of the decoder."""
    size = len(data)
    max_depth = limits.max_depth
    max_binary = limits.max_binary_bytes
    budget = limits.max_elements
    utf8_atoms = _UTF8_ATOMS
    handlers = _HANDLERS
    # Slices of bytes are bytes already; only a memoryview's need copying out.
    is_view = type(data) is not bytes
    # The innermost open container lives in locals (kind, items so far,
    # items wanted, extra); the ones around it wait on the stack.
    stack: list[tuple[int, list[Any], int, Any]] = []
    depth = 0
    kind = _TOP
    items: list[Any] = []
    want = 0
    extra: Any = None
    start = pos
    value: Any
    try:
        while True:
            start = pos
            tag = data[pos]
            if tag == 119:  # SMALL_ATOM_UTF8_EXT
                end = pos + 2 + data[pos + 1]
                if end > size:
                    raise DecodeError(start, "truncated atom")
                # data is bytes when not is_view: the slice is bytes (no cast call here)
                raw: bytes = bytes(data[pos + 2 : end]) if is_view else data[pos + 2 : end]  # type: ignore[assignment]
                value = utf8_atoms.get(raw)
                if value is None:
                    value = _new_atom(raw, False, start)
                pos = end
            elif tag == 97:  # SMALL_INTEGER_EXT
                value = data[pos + 1]
                pos += 2
            elif tag in {104, 105, 108, 116, 112}:
                new_extra: Any = start
                if tag == 104:  # SMALL_TUPLE_EXT
                    count = data[pos + 1]
                    pos += 2
                    new_kind, new_want = _TUPLE, count
                elif tag == 112:  # NEW_FUN_EXT: a header, then NumFree terms
                    new_extra, count, pos = _fun_header(data, pos)
                    new_kind, new_want = _FUN, count
                    if count > new_extra[1] - pos:
                        raise DecodeError(
                            start, f"fun declares {count} free variables past its end"
                        )
                else:
                    count = _U32(data, pos + 1)[0]
                    pos += 5
                    if tag == 105:  # LARGE_TUPLE_EXT
                        new_kind, new_want = _TUPLE, count
                    elif tag == 108:  # LIST_EXT: the elements, then the tail
                        if kind == _LIST and len(items) == want - 1:
                            # The tail of the open list is a list: the same
                            # list goes on. Merging here keeps a long chain
                            # of tails linear and off the depth count.
                            if count >= size - pos:
                                raise DecodeError(
                                    start, f"{count} elements declared, {size - pos} bytes remain"
                                )
                            budget -= count
                            if budget < 0:
                                raise DecodeError(
                                    start, f"term has more than {limits.max_elements} elements"
                                )
                            want += count
                            continue
                        new_kind, new_want = _LIST, count + 1
                    else:  # MAP_EXT: key, value, key, value...
                        new_kind, new_want = _MAP, 2 * count
                if new_want == 0:
                    if new_kind == _TUPLE:
                        value = ()
                    elif new_kind == _MAP:
                        value = {}
                    else:
                        value = _finish_fun(data, [], new_extra, pos)
                else:
                    if new_want > size - pos:
                        raise DecodeError(
                            start, f"{count} elements declared, {size - pos} bytes remain"
                        )
                    budget -= new_want
                    if budget < 0:
                        raise DecodeError(
                            start, f"term has more than {limits.max_elements} elements"
                        )
                    if depth >= max_depth:
                        raise DecodeError(start, f"term nests deeper than {max_depth}")
                    depth += 1
                    stack.append((kind, items, want, extra))
                    kind, items, want, extra = new_kind, [], new_want, new_extra
                    continue
            elif tag == 106:  # NIL_EXT
                value = []
                pos += 1
            elif tag == 109:  # BINARY_EXT
                length = _U32(data, pos + 1)[0]
                pos += 5
                if length > max_binary:
                    raise DecodeError(
                        start, f"binary of {length} bytes exceeds the {max_binary} cap"
                    )
                end = pos + length
                if end > size:
                    raise DecodeError(start, f"binary declares {length} bytes, {size - pos} remain")
                value = bytes(data[pos:end]) if is_view else data[pos:end]
                pos = end
            elif tag == 98:  # INTEGER_EXT
                value = _I32(data, pos + 1)[0]
                pos += 5
            elif tag == 107:  # STRING_EXT: a list of byte-sized integers
                length = _U16(data, pos + 1)[0]
                pos += 3
                end = pos + length
                if end > size:
                    raise DecodeError(start, f"string declares {length} bytes, {size - pos} remain")
                budget -= length
                if budget < 0:
                    raise DecodeError(start, f"term has more than {limits.max_elements} elements")
                value = list(data[pos:end])
                pos = end
            else:
                handler = handlers[tag]
                if handler is None:
                    raise DecodeError(start, _REFUSED.get(tag) or f"unknown tag {tag}")
                value, pos = handler(data, pos, limits)

            # A complete value: hand it to the open container, closing every
            # container it completes.
            while kind != _TOP:
                items.append(value)
                if len(items) < want:
                    break
                if kind == _TUPLE:
                    value = tuple(items)
                elif kind == _LIST:
                    value = _finish_list(items)
                elif kind == _MAP:
                    value = _finish_map(items, extra)
                else:
                    value = _finish_fun(data, items, extra, pos)
                kind, items, want, extra = stack.pop()
                depth -= 1
            else:
                return value, pos
    except (IndexError, struct.error):
        raise DecodeError(start, "truncated term") from None


def _finish_list(items: list[Any]) -> Any:
    """Build a list from its elements and tail (the last item)."""
    tail = items.pop()
    if type(tail) is list:
        # [] for a normal list, or the bytes of a STRING_EXT another encoder
        # chose to send as the tail: either way one proper list.
        items.extend(tail)
        return items
    if not items:
        # LIST_EXT with no elements is just its tail, as in OTP.
        return tail
    return ImproperList(tuple(items), tail)


def _finish_map(items: list[Any], start: int) -> dict[Any, Any]:
    """Build a dict from key, value, key, value...; refuse duplicate keys."""
    keys = items[0::2]
    try:
        if len(keys) > _COLLISION_CHECK_KEYS:
            _refuse_hash_flooding(keys, start)
        result = dict(zip(keys, items[1::2], strict=True))
    except TypeError:
        # A key holds a list or a map (Erlang strings are lists): use the
        # hashable twins, which compare equal and encode the same.
        keys = [_freeze(key) for key in keys]
        if len(keys) > _COLLISION_CHECK_KEYS:
            _refuse_hash_flooding(keys, start)
        result = dict(zip(keys, items[1::2], strict=True))
    if len(result) != len(keys):
        raise DecodeError(
            start, "map has duplicate keys (or keys Python treats as equal, like 1, 1.0 and true)"
        )
    return result


def _freeze(value: Any) -> Any:
    """``value`` with every list and map in it made hashable (depth is capped already)."""
    kind = type(value)
    if kind is list:
        return FrozenList(_freeze(item) for item in value)
    if kind is dict:
        return FrozenMap({key: _freeze(item) for key, item in value.items()})
    if kind is tuple:
        return tuple(_freeze(item) for item in value)
    if kind is ImproperList:
        return ImproperList(tuple(_freeze(item) for item in value.items), _freeze(value.tail))
    return value


# Hashes of ints, floats and tuples of them are not randomized: a peer can send
# a map whose keys all hash alike and make building the dict quadratic. Legit
# keys almost never share a hash (hash(-1) == hash(-2) is the classic pair).
_COLLISION_CHECK_KEYS = 64
_MAX_SHARED_HASH = 16


def _refuse_hash_flooding(keys: list[Any], start: int) -> None:
    hashes = list(map(hash, keys))
    if len(set(hashes)) == len(hashes):
        return
    if max(Counter(hashes).values()) > _MAX_SHARED_HASH:
        raise DecodeError(
            start, f"more than {_MAX_SHARED_HASH} map keys share one hash (a hash-flooding attempt)"
        )


def _fun_header(data: _Buffer, pos: int) -> tuple[tuple[Any, ...], int, int]:
    """Parse NEW_FUN_EXT up to its free variables.

    Returns (fields for ``_finish_fun``, NumFree, offset of the first free variable).
    """
    start = pos
    size, arity, uniq, index, num_free = _FUN_HEAD(data, pos + 1)
    end = pos + 1 + size
    if end > len(data):
        raise DecodeError(start, f"fun declares {size} bytes but {len(data) - pos - 1} remain")
    module, pos = _name_atom(data, pos + 30)
    for _ in range(2):  # OldIndex, OldUniq
        tag = data[pos]
        if tag == 97:
            pos += 2
        elif tag == 98:
            pos += 5
        else:
            raise DecodeError(pos, f"fun field must be an integer, got tag {tag}")
    tag = data[pos]
    if tag not in {88, 103}:
        raise DecodeError(pos, f"fun creator must be a pid, got tag {tag}")
    _, pos = (_h_new_pid if tag == 88 else _h_old_pid)(data, pos, DEFAULT_LIMITS)
    if pos > end:
        raise DecodeError(start, "fun header runs past its declared size")
    return (start, end, module, arity, index, uniq), num_free, pos


def _finish_fun(data: _Buffer, free: list[Any], head: tuple[Any, ...], pos: int) -> Fun:
    start, end, module, arity, index, uniq = head
    if pos != end:
        raise DecodeError(
            start, f"fun declares {end - start - 1} bytes but holds {pos - start - 1}"
        )
    return Fun(bytes(data[start:end]), module, arity, index, uniq, tuple(free))


# --- atoms ---------------------------------------------------------------------------

# Decoded atoms by their raw bytes, one table per encoding. Bounded: when full it
# is emptied, so a peer minting atoms costs us a refill, never memory.
_UTF8_ATOMS: dict[bytes, Atom | bool] = {}
_LATIN1_ATOMS: dict[bytes, Atom | bool] = {}


def _new_atom(raw: bytes, latin1: bool, pos: int) -> Atom | bool:
    """Validate and build an atom missing from the cache; ``true``/``false`` become bools."""
    if latin1:
        if len(raw) > MAX_ATOM_CHARS:
            raise DecodeError(pos, f"atom of {len(raw)} characters exceeds {MAX_ATOM_CHARS}")
        text = raw.decode("latin-1")
    else:
        if len(raw) > _MAX_ATOM_UTF8_BYTES:
            raise DecodeError(pos, f"atom of {len(raw)} bytes exceeds {MAX_ATOM_CHARS} characters")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(pos, "atom is not valid UTF-8") from None
        if len(text) > MAX_ATOM_CHARS:
            raise DecodeError(pos, f"atom of {len(text)} characters exceeds {MAX_ATOM_CHARS}")
    value: Atom | bool
    if text == "true":
        value = True
    elif text == "false":
        value = False
    else:
        value = str.__new__(Atom, text)
    cache = _LATIN1_ATOMS if latin1 else _UTF8_ATOMS
    if len(cache) >= _ATOM_CACHE_SIZE:
        cache.clear()
    cache[raw] = value
    return value


def _atom(data: _Buffer, pos: int) -> tuple[Atom | bool, int]:
    """Any of the four atom tags at ``pos``."""
    tag = data[pos]
    if tag in {119, 115}:
        length = data[pos + 1]
        first = pos + 2
    elif tag in {118, 100}:
        length = _U16(data, pos + 1)[0]
        first = pos + 3
    else:
        raise DecodeError(pos, _REFUSED.get(tag) or f"expected an atom, got tag {tag}")
    end = first + length
    if end > len(data):
        raise DecodeError(pos, "truncated atom")
    raw = bytes(data[first:end])
    latin1 = tag in {100, 115}
    value = (_LATIN1_ATOMS if latin1 else _UTF8_ATOMS).get(raw)
    if value is None:
        value = _new_atom(raw, latin1, pos)
    return value, end


def _name_atom(data: _Buffer, pos: int) -> tuple[Atom, int]:
    """An atom used as a name (node, module, function): never a bool."""
    value, pos = _atom(data, pos)
    if type(value) is bool:
        return Atom("true" if value else "false"), pos
    return value, pos


def _h_atom(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    return _atom(data, pos)


# --- numbers -------------------------------------------------------------------------


def _h_new_float(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    value = _F64(data, pos + 1)[0]
    if not math.isfinite(value):
        raise DecodeError(pos, f"float {value} is not finite")
    return value, pos + 9


def _h_old_float(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    """FLOAT_EXT: 31 bytes of ``%.20e`` text, NUL padded (minor version 0)."""
    end = pos + 32
    if end > len(data):
        raise DecodeError(pos, "truncated float")
    text = bytes(data[pos + 1 : end]).split(b"\0", 1)[0]
    try:
        value = float(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DecodeError(pos, f"bad float text {text!r}") from None
    if not math.isfinite(value):
        raise DecodeError(pos, f"float {text!r} is not finite")
    return value, end


def _h_big(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    """SMALL_BIG_EXT / LARGE_BIG_EXT: sign byte and little-endian magnitude."""
    if data[pos] == 110:
        length = data[pos + 1]
        first = pos + 3
    else:
        length = _U32(data, pos + 1)[0]
        first = pos + 6
    if length > limits.max_bigint_bytes:
        raise DecodeError(
            pos, f"integer of {length} bytes exceeds the {limits.max_bigint_bytes} cap"
        )
    negative = data[first - 1]  # OTP treats any non-zero sign byte as negative
    end = first + length
    if end > len(data):
        raise DecodeError(pos, "truncated integer")
    magnitude = int.from_bytes(data[first:end], "little")
    return (-magnitude if negative else magnitude), end


# --- binaries ------------------------------------------------------------------------


def _h_bit_binary(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    length = _U32(data, pos + 1)[0]
    bits = data[pos + 5]
    if length == 0:
        raise DecodeError(pos, "bit binary with no bytes")
    if not 1 <= bits <= 8:
        raise DecodeError(pos, f"bit binary uses {bits} bits of its last byte, must be 1..8")
    if length > limits.max_binary_bytes:
        raise DecodeError(
            pos, f"binary of {length} bytes exceeds the {limits.max_binary_bytes} cap"
        )
    first = pos + 6
    end = first + length
    if end > len(data):
        raise DecodeError(pos, "truncated bit binary")
    raw = bytes(data[first:end])
    # All 8 bits used is a plain binary; OTP decodes it as one too.
    return (raw if bits == 8 else BitBinary(raw, bits)), end


# --- identifiers ---------------------------------------------------------------------


def _h_new_pid(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    node, pos = _name_atom(data, pos + 1)
    ident, serial, creation = _NEW_PID(data, pos)
    return Pid(node, ident, serial, creation), pos + 12


def _h_old_pid(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    node, pos = _name_atom(data, pos + 1)
    ident, serial, creation = _OLD_PID(data, pos)
    return Pid(node, ident, serial, creation), pos + 9


def _h_new_port(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    node, pos = _name_atom(data, pos + 1)
    ident, creation = _NEW_PORT(data, pos)
    return Port(node, ident, creation), pos + 8


def _h_v4_port(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    node, pos = _name_atom(data, pos + 1)
    ident, creation = _V4_PORT(data, pos)
    return Port(node, ident, creation), pos + 12


def _h_old_port(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    node, pos = _name_atom(data, pos + 1)
    ident, creation = _OLD_ID(data, pos)
    return Port(node, ident, creation), pos + 5


def _h_old_reference(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    node, pos = _name_atom(data, pos + 1)
    ident, creation = _OLD_ID(data, pos)
    return Reference(node, creation, (ident,)), pos + 5


def _h_reference(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    """NEW_REFERENCE_EXT (1-byte creation) and NEWER_REFERENCE_EXT (4-byte)."""
    start = pos
    newer = data[pos] == 90
    words = _U16(data, pos + 1)[0]
    if words > MAX_REFERENCE_WORDS:
        raise DecodeError(start, f"reference of {words} words, at most {MAX_REFERENCE_WORDS}")
    node, pos = _name_atom(data, pos + 3)
    if newer:
        creation = _U32(data, pos)[0]
        pos += 4
    else:
        creation = data[pos]
        pos += 1
    ids = _REF_IDS[words](data, pos)
    return Reference(node, creation, ids), pos + 4 * words


def _h_export(data: _Buffer, pos: int, limits: DecodeLimits) -> tuple[Any, int]:
    start = pos
    module, pos = _name_atom(data, pos + 1)
    function, pos = _name_atom(data, pos)
    if data[pos] != 97:
        raise DecodeError(start, f"export arity must be a small integer, got tag {data[pos]}")
    return Export(module, function, data[pos + 1]), pos + 2


_HANDLERS: list[_Handler | None] = [None] * 256
for _tag, _handler in {
    118: _h_atom,
    100: _h_atom,
    115: _h_atom,
    70: _h_new_float,
    99: _h_old_float,
    110: _h_big,
    111: _h_big,
    77: _h_bit_binary,
    88: _h_new_pid,
    103: _h_old_pid,
    89: _h_new_port,
    120: _h_v4_port,
    102: _h_old_port,
    90: _h_reference,
    114: _h_reference,
    101: _h_old_reference,
    113: _h_export,
}.items():
    _HANDLERS[_tag] = _handler
del _tag, _handler

# Tags that exist but are refused, with the reason why.
_REFUSED = {
    82: "ATOM_CACHE_REF is only valid after a distribution header",
    121: "LOCAL_EXT is node-local and never valid from another node",
    117: "FUN_EXT was removed in OTP 23",
    COMPRESSED: "a compressed term may only appear at the top level",
    VERSION: "version byte 131 inside a term",
}
