"""Payload codecs byte-compatible with the Gleam library ``distribute`` 4.0.0.

A Gleam service built on ``distribute`` sends ``{Tag, Payload}`` where
``Payload`` is one binary written by a codec of ``distribute/codec``. These
codecs write and read exactly those bytes, so a Python node and a Gleam node
that agree on a codec understand each other::

    from erldist import codec

    PAIR = codec.tuple2(codec.INT, codec.STRING)
    PAIR.encode((42, "hello"))      # 00000008 000000000000002a 00000005 68656c6c6f
    PAIR.decode(data)               # (42, 'hello'), or a CodecDecodeError subclass

Gleam to Python: ``Int`` int, ``Float`` float, ``Bool`` bool, ``String`` str,
``BitArray`` bytes, ``Nil`` None, ``List`` list, ``Option`` None or the value,
``Result`` ``Ok``/``Err``, tuples tuples, custom types dataclasses or ``Enum``
members (``variant``), ``Subject`` ``WireSubject``. Errors are distribute's
variants as exceptions (``erldist.errors``), with its messages.
"""

from erldist.codec.composite import Err, Ok, Result, Some, option, result, tuple2, tuple3
from erldist.codec.core import U32_MAX, Codec, mapped
from erldist.codec.payload import DecodeSite, PayloadSite, decode_payload, encode_payload
from erldist.codec.primitives import BOOL, BYTES, FLOAT, INT, NIL, STRING, list_of
from erldist.codec.subject import SUBJECT, WireSubject
from erldist.codec.tagged import tagged
from erldist.codec.variant import Case, case, unit, variant
from erldist.errors import (
    CodecDecodeError,
    CodecDefinitionError,
    CodecEncodeError,
    CodecError,
    DecodeFailed,
    DecodeTimeout,
    EncodeFailed,
    InsufficientData,
    InvalidBinary,
    InvalidValue,
    ListTooLong,
    PayloadTooLarge,
    TagMismatch,
    TypeMismatch,
    ValueTooLarge,
    VersionMismatch,
)

__all__ = [
    "BOOL",
    "BYTES",
    "FLOAT",
    "INT",
    "NIL",
    "STRING",
    "SUBJECT",
    "U32_MAX",
    "Case",
    "Codec",
    "CodecDecodeError",
    "CodecDefinitionError",
    "CodecEncodeError",
    "CodecError",
    "DecodeFailed",
    "DecodeSite",
    "DecodeTimeout",
    "EncodeFailed",
    "Err",
    "InsufficientData",
    "InvalidBinary",
    "InvalidValue",
    "ListTooLong",
    "Ok",
    "PayloadSite",
    "PayloadTooLarge",
    "Result",
    "Some",
    "TagMismatch",
    "TypeMismatch",
    "ValueTooLarge",
    "VersionMismatch",
    "WireSubject",
    "case",
    "decode_payload",
    "encode_payload",
    "list_of",
    "mapped",
    "option",
    "result",
    "tagged",
    "tuple2",
    "tuple3",
    "unit",
    "variant",
]
