"""Every hex vector of the Gleam wire card (distribute 4.0.0), as data.

The card is the project's interoperability spec for distribute on the Erlang
wire (``gleam-distribute-wire.md``); section numbers below are its own.
``VECTORS`` round-trip both ways, ``REJECTED`` must raise exactly the given
error (type and message), and ``ENCODE_ERRORS`` are values an encoder must refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from erldist import codec
from erldist.codec import (
    BOOL,
    BYTES,
    FLOAT,
    INT,
    NIL,
    STRING,
    SUBJECT,
    Codec,
    Err,
    Ok,
    Some,
    WireSubject,
    case,
    list_of,
    option,
    result,
    tagged,
    tuple2,
    tuple3,
    unit,
    variant,
)
from erldist.errors import (
    CodecDecodeError,
    CodecEncodeError,
    DecodeFailed,
    InsufficientData,
    InvalidBinary,
    ListTooLong,
    TagMismatch,
    ValueTooLarge,
    VersionMismatch,
)
from erldist.term import Atom, Pid, Reference

# §3.8: the synthetic pid <gleam@127.0.0.1.85.0> (creation 3) and reference.
GLEAM_NODE = Atom("gleam@127.0.0.1")
PID = Pid(GLEAM_NODE, 85, 0, 3)
REF = Reference(GLEAM_NODE, 3, (0x1A2B, 0x3C4D, 0x5E6F))


# §5.2: the card's example custom types.
@dataclass(frozen=True)
class Message:
    text: str


class Quit(Enum):
    QUIT = "quit"


@dataclass(frozen=True)
class Status:
    code: int
    ok: bool


ADT = variant(
    case(0, Message, STRING),
    unit(1, Quit.QUIT, name="Quit"),
    case(2, Status, tuple2(INT, BOOL)),
)


@dataclass(frozen=True)
class Ping:
    n: int


@dataclass(frozen=True)
class Pong:
    n: int


class Shutdown(Enum):
    SHUTDOWN = "shutdown"


PROTOCOL = variant(
    case(0, Ping, INT),
    case(1, Pong, INT),
    unit(2, Shutdown.SHUTDOWN, name="Shutdown"),
)


@dataclass(frozen=True)
class Increment:
    by: int


@dataclass(frozen=True)
class GetCount:
    reply: WireSubject


COUNTER = variant(case(0, Increment, INT), case(1, GetCount, SUBJECT))


@dataclass(frozen=True)
class Vector:
    section: str
    codec: Codec[Any]
    value: Any
    hex: str

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


@dataclass(frozen=True)
class Rejected:
    section: str
    codec: Codec[Any]
    hex: str
    error: CodecDecodeError

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


@dataclass(frozen=True)
class EncodeRefused:
    section: str
    codec: Codec[Any]
    value: Any
    error: CodecEncodeError


def _int(n: int) -> str:
    return n.to_bytes(8, "big", signed=True).hex()


def _string(s: str) -> str:
    raw = s.encode()
    return len(raw).to_bytes(4, "big").hex() + raw.hex()


SUBJECT_PID_ETF = (
    "83 68 03 77 07 73 75 62 6a 65 63 74 58 77 0f 67 6c 65 61 6d 40 31 32 37 2e 30 2e 30 2e 31"
    " 00 00 00 55 00 00 00 00 00 00 00 03"
)
REF_ETF = (
    "5a 00 03 77 0f 67 6c 65 61 6d 40 31 32 37 2e 30 2e 30 2e 31 00 00 00 03"
    " 00 00 1a 2b 00 00 3c 4d 00 00 5e 6f"
)
NAMED_SUBJECT = f"00 00 00 36 {SUBJECT_PID_ETF} 6d 00 00 00 07 63 6f 75 6e 74 65 72"
REPLY_SUBJECT = f"00 00 00 4e {SUBJECT_PID_ETF} {REF_ETF}"
NIL_SUBJECT = f"00 00 00 2f {SUBJECT_PID_ETF} 77 03 6e 69 6c"

OPT_OPT_INT = option(option(INT))

VECTORS: list[Vector] = [
    # §3.1 int
    Vector("3.1", INT, 42, "00 00 00 00 00 00 00 2a"),
    Vector("3.1", INT, 0, "00 00 00 00 00 00 00 00"),
    Vector("3.1", INT, 1, "00 00 00 00 00 00 00 01"),
    Vector("3.1", INT, -1, "ff ff ff ff ff ff ff ff"),
    Vector("3.1", INT, -999, "ff ff ff ff ff ff fc 19"),
    Vector("3.1", INT, 256, "00 00 00 00 00 00 01 00"),
    Vector("3.1", INT, 2**63 - 1, "7f ff ff ff ff ff ff ff"),
    Vector("3.1", INT, -(2**63), "80 00 00 00 00 00 00 00"),
    # §3.2 float
    Vector("3.2", FLOAT, 1.0, "3f f0 00 00 00 00 00 00"),
    Vector("3.2", FLOAT, -2.5, "c0 04 00 00 00 00 00 00"),
    Vector("3.2", FLOAT, 3.14, "40 09 1e b8 51 eb 85 1f"),
    Vector("3.2", FLOAT, 0.0, "00 00 00 00 00 00 00 00"),
    Vector("3.2", FLOAT, 0.1, "3f b9 99 99 99 99 99 9a"),
    # §3.3 bool
    Vector("3.3", BOOL, True, "01"),
    Vector("3.3", BOOL, False, "00"),
    # §3.4 string
    Vector("3.4", STRING, "hello", "00 00 00 05 68 65 6c 6c 6f"),
    Vector("3.4", STRING, "", "00 00 00 00"),
    Vector("3.4", STRING, "\u00e9", "00 00 00 02 c3 a9"),
    Vector(
        "3.4",
        STRING,
        "\u65e5\u672c\u8a9e\U0001f389",
        "00 00 00 0d e6 97 a5 e6 9c ac e8 aa 9e f0 9f 8e 89",
    ),
    # §3.5 bitarray
    Vector("3.5", BYTES, b"\x01\x02\x03\x04\x05", "00 00 00 05 01 02 03 04 05"),
    Vector("3.5", BYTES, b"", "00 00 00 00"),
    Vector("3.5", BYTES, b"\xff\x00", "00 00 00 02 ff 00"),
    # §3.6 list
    Vector(
        "3.6",
        list_of(INT),
        [1, 2, 3],
        "00 00 00 03 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 03",
    ),
    Vector("3.6", list_of(INT), [], "00 00 00 00"),
    Vector("3.6", list_of(STRING), ["a", "bc"], "00 00 00 02 00 00 00 01 61 00 00 00 02 62 63"),
    Vector(
        "3.6",
        list_of(list_of(INT)),
        [[1, 2], []],
        "00 00 00 02 00 00 00 02 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 02 00 00 00 00",
    ),
    Vector("3.6", list_of(NIL), [None, None, None], "00 00 00 03"),
    Vector("3.6", list_of(BOOL), [True, False], "00 00 00 02 01 00"),
    Vector("3.6", list_of(NIL), [None] * 10_000, "00 00 27 10"),
    # §3.7 nil
    Vector("3.7", NIL, None, ""),
    Vector("3.7", tuple2(NIL, INT), (None, 5), "00 00 00 00 00 00 00 00 00 00 00 05"),
    # §3.8 subject
    Vector("3.8", SUBJECT, WireSubject(PID, b"counter"), NAMED_SUBJECT),
    Vector("3.8", SUBJECT, WireSubject(PID, REF), REPLY_SUBJECT),
    Vector("3.8", SUBJECT, WireSubject(PID, Atom("nil")), NIL_SUBJECT),
    # §4.1 option
    Vector("4.1", option(INT), None, "00"),
    Vector("4.1", option(INT), 42, "01 00 00 00 00 00 00 00 2a"),
    Vector("4.1", OPT_OPT_INT, Some(None), "01 00"),
    Vector("4.1", OPT_OPT_INT, 7, "01 01 00 00 00 00 00 00 00 07"),
    Vector("4.1", OPT_OPT_INT, None, "00"),
    Vector("4.1", option(STRING), "", "01 00 00 00 00"),
    # §4.2 result
    Vector("4.2", result(INT, STRING), Ok(100), "00 00 00 00 00 00 00 00 64"),
    Vector("4.2", result(INT, STRING), Err("oops"), "01 00 00 00 04 6f 6f 70 73"),
    Vector("4.2", result(NIL, STRING), Ok(None), "00"),
    Vector("4.2", result(BOOL, INT), Err(-1), "01 ff ff ff ff ff ff ff ff"),
    # §4.3 tuple2
    Vector(
        "4.3",
        tuple2(INT, STRING),
        (42, "hello"),
        "00 00 00 08 00 00 00 00 00 00 00 2a 00 00 00 05 68 65 6c 6c 6f",
    ),
    Vector("4.3", tuple2(STRING, BOOL), ("yes", True), "00 00 00 07 00 00 00 03 79 65 73 01"),
    Vector("4.3", tuple2(NIL, INT), (None, 5), "00 00 00 00 00 00 00 00 00 00 00 05"),
    Vector("4.3", tuple2(BOOL, NIL), (False, None), "00 00 00 01 00"),
    # §4.4 tuple3
    Vector(
        "4.4",
        tuple3(INT, STRING, BOOL),
        (1, "a", True),
        "00 00 00 08 00 00 00 00 00 00 00 01 00 00 00 05 00 00 00 01 61 01",
    ),
    Vector(
        "4.4",
        tuple3(INT, STRING, BOOL),
        (1, "two", True),
        "00 00 00 08 00 00 00 00 00 00 00 01 00 00 00 07 00 00 00 03 74 77 6f 01",
    ),
    Vector(
        "4.4",
        tuple3(BOOL, BOOL, BOOL),
        (True, False, True),
        "00 00 00 01 01 00 00 00 01 00 01",
    ),
    # §5.1 tagged
    Vector(
        "5.1",
        tagged("myproto", 1, STRING),
        "hello",
        "00 00 00 07 6d 79 70 72 6f 74 6f 00 00 00 01 00 00 00 05 68 65 6c 6c 6f",
    ),
    Vector(
        "5.1",
        tagged("counter", 1, INT),
        42,
        "00 00 00 07 63 6f 75 6e 74 65 72 00 00 00 01 00 00 00 00 00 00 00 2a",
    ),
    Vector(
        "5.1",
        tagged("counter", 2, INT),
        42,
        "00 00 00 07 63 6f 75 6e 74 65 72 00 00 00 02 00 00 00 00 00 00 00 2a",
    ),
    Vector(
        "5.1",
        tagged("auth", 2, STRING),
        "tok",
        "00 00 00 04 61 75 74 68 00 00 00 02 00 00 00 03 74 6f 6b",
    ),
    Vector("5.1", tagged("", 1, INT), 7, "00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 07"),
    Vector(
        "5.1",
        tagged("proto", 4_294_967_295, INT),
        1,
        "00 00 00 05 70 72 6f 74 6f ff ff ff ff 00 00 00 00 00 00 00 01",
    ),
    # §5.2 variant
    Vector("5.2", ADT, Message("hello"), "00 00 00 00 05 68 65 6c 6c 6f"),
    Vector("5.2", ADT, Quit.QUIT, "01"),
    Vector("5.2", ADT, Status(42, True), "02 00 00 00 08 00 00 00 00 00 00 00 2a 01"),
    Vector("5.2", PROTOCOL, Ping(123), "00 00 00 00 00 00 00 00 7b"),
    Vector("5.2", PROTOCOL, Pong(456), "01 00 00 00 00 00 00 01 c8"),
    Vector("5.2", PROTOCOL, Shutdown.SHUTDOWN, "02"),
    Vector("5.2", COUNTER, Increment(5), "00 00 00 00 00 00 00 00 05"),
    Vector("5.2", COUNTER, GetCount(WireSubject(PID, REF)), "01 " + REPLY_SUBJECT),
]

# §6.2: whole messages {Tag, Payload} as term_to_binary(_, [{minor_version, 2}]) writes them.
MESSAGES: list[tuple[Any, str]] = [
    (
        (b"counter", INT.encode(42)),
        "83 68 02 6d 00 00 00 07 63 6f 75 6e 74 65 72 6d 00 00 00 08 00 00 00 00 00 00 00 2a",
    ),
    (
        (b"worker_3", STRING.encode("hi")),
        "83 68 02 6d 00 00 00 08 77 6f 72 6b 65 72 5f 33 6d 00 00 00 06 00 00 00 02 68 69",
    ),
    ((Atom("nil"), BOOL.encode(True)), "83 68 02 77 03 6e 69 6c 6d 00 00 00 01 01"),
    (
        (REF, INT.encode(8)),
        f"83 68 02 {REF_ETF} 6d 00 00 00 08 00 00 00 00 00 00 00 08",
    ),
]

_TRAILING_1 = InvalidBinary("trailing bytes (1) at top level")
_SMUGGLED_2 = "trailing bytes smuggled inside tuple3 second element"

REJECTED: list[Rejected] = [
    # §3.1-3.3
    Rejected("3.1", INT, "00 00 00 00 00 00 2a", InvalidBinary("int64")),
    Rejected("3.1", INT, "00 00 00 00 00 00 00 2a 01", _TRAILING_1),
    Rejected("3.2", FLOAT, "7f f8 00 00 00 00 00 00", InvalidBinary("float64")),
    Rejected("3.2", FLOAT, "7f f0 00 00 00 00 00 00", InvalidBinary("float64")),
    Rejected("3.3", BOOL, "02", InvalidBinary("bool")),
    Rejected("3.3", BOOL, "", InvalidBinary("bool")),
    Rejected("3.3", BOOL, "01 01", _TRAILING_1),
    # §3.4 string
    Rejected("3.4", STRING, "00 00 00 0a 41 42 43", InsufficientData("string")),
    Rejected("3.4", STRING, "00 00 00", InvalidBinary("missing string length prefix")),
    Rejected("3.4", STRING, "00 00 00 01 ff", InvalidBinary("invalid UTF-8")),
    Rejected("3.4", STRING, "00 00 00 01 61 00", _TRAILING_1),
    Rejected("3.4", STRING, "00 05 68 65 6c 6c 6f", InsufficientData("string")),
    # §3.5 bitarray
    Rejected("3.5", BYTES, "00 00 00 03 01", InsufficientData("bitarray")),
    # §3.6 list
    Rejected("3.6", list_of(INT), "00 00 27 11", ListTooLong(10_001, 10_000)),
    Rejected("3.6", list_of(NIL), "ee 6b 28 00", ListTooLong(4_000_000_000, 10_000)),
    Rejected("3.6", list_of(INT), "00 00 00 02" + _int(1), InvalidBinary("int64")),
    # §3.7 nil
    Rejected("3.7", NIL, "01 02 03", InvalidBinary("trailing bytes (3) for nil top-level decode")),
    # §3.8 subject
    Rejected("3.8", SUBJECT, "00 04 01 02 03 04", InsufficientData("subject")),
    Rejected("3.8", SUBJECT, "00 00 00 03 01 02 03", DecodeFailed("invalid subject binary")),
    # §4.1 option
    Rejected("4.1", option(INT), "00 de ad", InvalidBinary("trailing bytes after option None tag")),
    Rejected("4.1", option(INT), "02", InvalidBinary("invalid option tag")),
    # §4.2 result
    Rejected("4.2", result(INT, STRING), "02 00", InvalidBinary("invalid result tag")),
    Rejected("4.2", result(INT, STRING), "00" + _int(100) + "09", _TRAILING_1),
    # §4.3 tuple2
    Rejected("4.3", tuple2(INT, STRING), "00 00 00 63" + _int(1), InsufficientData("tuple2 first")),
    Rejected(
        "4.3",
        tuple2(INT, STRING),
        "00 00 00 10" + _int(99) + "de ad be ef ca fe ba be" + _string("x"),
        InvalidBinary("trailing bytes smuggled inside tuple2 first element"),
    ),
    # §4.4 tuple3
    Rejected(
        "4.4",
        tuple3(INT, INT, STRING),
        "00 00 00 08" + _int(1) + "00 00 00 0c" + _int(2) + "01 02 03 04" + _string("z"),
        InvalidBinary(_SMUGGLED_2),
    ),
    # §5.1 tagged
    Rejected(
        "5.1",
        tagged("counter", 1, INT),
        "00 00 00 07 63 6f 75 6e 74 65 72 00 00 00 02 00 00 00 00 00 00 00 2a",
        VersionMismatch(1, 2),
    ),
    Rejected(
        "5.1",
        tagged("counter", 1, INT),
        "00 00 00 05 6f 74 68 65 72 00 00 00 01" + _int(42),
        TagMismatch("counter", "other"),
    ),
    # the tag is checked before the version is looked for
    Rejected(
        "5.1",
        tagged("counter", 1, INT),
        "00 00 00 05 6f 74 68 65 72",
        TagMismatch("counter", "other"),
    ),
    Rejected(
        "5.1",
        tagged("counter", 1, INT),
        "00 00 00 09 63 6f 75 6e 74",
        InsufficientData("tag truncated"),
    ),
    Rejected(
        "5.1",
        tagged("counter", 1, INT),
        "00 00 00 07 63 6f 75 6e 74 65 72 00 00",
        InsufficientData("missing version or payload"),
    ),
    # §5.2 variant
    Rejected(
        "5.2",
        ADT,
        "63 67 61 72 62 61 67 65",
        TagMismatch("one of Message, Quit, Status", "99"),
    ),
    Rejected("5.2", ADT, "", InsufficientData("missing variant tag")),
    Rejected("5.2", ADT, "00 00 00 00 64", InsufficientData("string")),
]

ENCODE_ERRORS: list[EncodeRefused] = [
    EncodeRefused(
        "3.1", INT, 2**63, ValueTooLarge("int 9223372036854775808 out of signed 64-bit range")
    ),
    EncodeRefused(
        "3.1",
        INT,
        -(2**63) - 1,
        ValueTooLarge("int -9223372036854775809 out of signed 64-bit range"),
    ),
    EncodeRefused(
        "3.6",
        list_of(NIL),
        [None] * 10_001,
        ValueTooLarge("list of 10001 elements exceeds decoder cap of 10000"),
    ),
    EncodeRefused(
        "5.2", ADT, "not a case", codec.EncodeFailed("No variant matched for encoding ADT value")
    ),
]
