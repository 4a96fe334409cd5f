"""The term codec's entry points backed by the native core, shaped like the pure ones.

``erldist.term`` uses these when ``erldist.core`` chose the native core (the
differential tests import them whatever the choice). Inputs that are
not ``bytes`` are copied once (the native decoder reads only immutable
``bytes``), and compression stays Python's ``zlib`` so compressed output is
identical to the pure encoder's.
"""

from __future__ import annotations

import zlib
from typing import Any

import erldist_native as _native

from erldist.term.decode import DecodeLimits
from erldist.term.encode import _level

__all__ = ["decode", "decode_prefix", "encode", "encode_into"]

_decode = _native.decode
_decode_prefix = _native.decode_prefix
_encode_body = _native.encode_body
_TAG_80 = 80


def decode(data: bytes | bytearray | memoryview, *, limits: DecodeLimits | None = None) -> Any:
    """Decode ``data``, which must hold exactly one term after the 131 version byte."""
    if type(data) is not bytes:
        data = bytes(data)
    return _decode(data, limits)


def decode_prefix(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    limits: DecodeLimits | None = None,
    version_byte: bool = True,
) -> tuple[Any, int]:
    """Decode one term starting at ``offset``; return it and the offset just past it."""
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if type(data) is not bytes:
        data = bytes(data)
    result: tuple[Any, int] = _decode_prefix(data, offset, limits, version_byte)
    return result


def encode(term: Any, *, compressed: bool | int = False) -> bytes:
    """The external format of ``term``, starting with the 131 version byte."""
    if compressed is False:
        result: bytes = _encode_body(term, True)
        return result
    level = _level(compressed)
    body: bytes = _encode_body(term, False)
    if level:
        packed = zlib.compress(body, level)
        if len(packed) + 5 < len(body):
            return b"\x83" + bytes([_TAG_80]) + len(body).to_bytes(4, "big") + packed
    return b"\x83" + body


def encode_into(buf: bytearray, term: Any) -> None:
    """Append the encoding of ``term`` to ``buf``, without the version byte.

    On failure ``buf`` is left as it was (nothing is appended before the
    whole term is encoded).
    """
    buf += _encode_body(term, False)
