"""The External Term Format: pure functions from Python values to bytes and back, no I/O."""

from erldist.term.decode import DEFAULT_LIMITS, DecodeLimits, decode, decode_prefix
from erldist.term.encode import encode, encode_into
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
