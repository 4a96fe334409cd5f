"""The term codec's entry points backed by the native core, shaped like the pure ones.

``erldist.term`` uses these when ``erldist.core`` chose the native core (the
differential tests import them whatever the choice). ``decode``,
``decode_prefix`` and ``encode`` are the Rust functions themselves, with the
pure ones' signatures (no Python frame in between: on small terms that frame
would cost a quarter of the call). Compression stays Python's ``zlib``, so
compressed output is identical to the pure encoder's.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

import erldist_native as _native

from erldist.term.encode import _level

__all__ = ["decode", "decode_prefix", "encode", "encode_into"]

_encode_body = _native.encode_body

if TYPE_CHECKING:  # the same signatures as the pure functions
    from erldist.term.decode import decode, decode_prefix
    from erldist.term.encode import encode
else:
    decode = _native.decode
    decode_prefix = _native.decode_prefix
    encode = _native.encode


def _encode_compressed(term: Any, compressed: bool | int) -> bytes:
    """``encode(term, compressed=...)`` for any ``compressed`` but ``False``."""
    level = _level(compressed)
    body: bytes = _encode_body(term, False)
    if level:
        packed = zlib.compress(body, level)
        if len(packed) + 5 < len(body):
            return b"\x83\x50" + len(body).to_bytes(4, "big") + packed
    return b"\x83" + body


def encode_into(buf: bytearray, term: Any) -> None:
    """Append the encoding of ``term`` to ``buf``, without the version byte.

    On failure ``buf`` is left as it was (nothing is appended before the
    whole term is encoded).
    """
    buf += _encode_body(term, False)
