"""The External Term Format: pure functions from Python values to bytes and back, no I/O.

``encode``/``decode`` here are the native core's when it is installed (see
``erldist.core``), else the pure-Python ones in ``term.encode``/``term.decode``;
both give the same results and errors.
"""

from erldist.core import core_name
from erldist.term.decode import DEFAULT_LIMITS, DecodeLimits
from erldist.term.types import (
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
    Term,
)

if core_name() == "native":
    from erldist.term.native import decode, decode_prefix, encode, encode_into
else:
    from erldist.term.decode import decode, decode_prefix
    from erldist.term.encode import encode, encode_into

__all__ = [
    "DEFAULT_LIMITS",
    "Atom",
    "BitBinary",
    "DecodeLimits",
    "Export",
    "FrozenList",
    "FrozenMap",
    "Fun",
    "ImproperList",
    "Pid",
    "Port",
    "Reference",
    "Term",
    "decode",
    "decode_prefix",
    "encode",
    "encode_into",
]
