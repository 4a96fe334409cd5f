"""Distribution capability flags, and the sets we advertise and require.

Both sides send their flags in the handshake; what the connection may use is
the intersection. Values follow OTP's ``dist.hrl``/``dist.h``. Note that
``MANDATORY_25_DIGEST`` is bit 26 (``0x4000000``) as in every OTP code
version, not ``1 bsl 36`` as ``erl_dist_protocol.md`` says: bit 36 is
``LOCAL_EXT``.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "MANDATORY_25",
    "MANDATORY_26",
    "OUR_FLAGS",
    "REQUIRED_OF_PEER",
    "DFlag",
    "describe",
    "expand_digest",
    "missing",
    "uses_header",
]


class DFlag(enum.IntFlag):
    """Every ``DFLAG_*`` bit, named as in OTP without the prefix."""

    PUBLISHED = 0x1
    ATOM_CACHE = 0x2
    EXTENDED_REFERENCES = 0x4
    DIST_MONITOR = 0x8
    FUN_TAGS = 0x10
    DIST_MONITOR_NAME = 0x20
    HIDDEN_ATOM_CACHE = 0x40
    NEW_FUN_TAGS = 0x80
    EXTENDED_PIDS_PORTS = 0x100
    EXPORT_PTR_TAG = 0x200
    BIT_BINARIES = 0x400
    NEW_FLOATS = 0x800
    UNICODE_IO = 0x1000
    DIST_HDR_ATOM_CACHE = 0x2000
    SMALL_ATOM_TAGS = 0x4000
    #: Internal to OTP (compressed ETS tables); never seen on the wire.
    ETS_COMPRESSED = 0x8000
    UTF8_ATOMS = 0x10000
    MAP_TAG = 0x20000
    BIG_CREATION = 0x40000
    SEND_SENDER = 0x80000
    BIG_SEQTRACE_LABELS = 0x100000
    #: Internal to OTP (also known as NO_MAGIC); never seen on the wire.
    PENDING_CONNECT = 0x200000
    EXIT_PAYLOAD = 0x400000
    FRAGMENTS = 0x800000
    HANDSHAKE_23 = 0x1000000
    UNLINK_ID = 0x2000000
    MANDATORY_25_DIGEST = 0x4000000
    SPAWN = 1 << 32
    NAME_ME = 1 << 33
    V4_NC = 1 << 34
    ALIAS = 1 << 35
    #: Internal to OTP (``term_to_binary(T, [local])``); never seen on the wire.
    LOCAL_EXT = 1 << 36
    ALTACT_SIG = 1 << 37


#: What OTP 25 refuses to connect without (``erts_internal:get_dflags()`` on
#: 25.2.3 reports exactly this set).
MANDATORY_25: Final[int] = int(
    DFlag.EXTENDED_REFERENCES
    | DFlag.FUN_TAGS
    | DFlag.NEW_FUN_TAGS
    | DFlag.EXTENDED_PIDS_PORTS
    | DFlag.EXPORT_PTR_TAG
    | DFlag.BIT_BINARIES
    | DFlag.NEW_FLOATS
    | DFlag.UTF8_ATOMS
    | DFlag.MAP_TAG
    | DFlag.BIG_CREATION
    | DFlag.HANDSHAKE_23
)

#: OTP 26 adds the new link protocol and version-4 node containers.
MANDATORY_26: Final[int] = int(MANDATORY_25 | DFlag.UNLINK_ID | DFlag.V4_NC)

#: What we advertise. It is OTP's own default minus the atom cache (we never
#: keep one) and it includes FRAGMENTS because we reassemble incoming
#: fragments; the price is header mode (``131,68,0``) in both directions.
#: MANDATORY_26 is inside, so OTP 26+ accepts us, and so is the digest bit
#: next to the individual bits, which OTP 23/24 need. PUBLISHED is added by
#: the runtime for visible nodes. SPAWN is in: ``rpc``/``erpc`` calls arrive as
#: spawn requests of ``erpc``'s own functions, which ``runtime/rpc.py`` answers
#: for the Python functions a user exposed (any other spawn gets ``notsup``).
OUR_FLAGS: Final[int] = int(0xD075F5FBC | DFlag.FRAGMENTS)

#: What a peer must offer (after digest expansion). Only the OTP 25 set: an
#: OTP 25 peer does not have to speak UNLINK_ID or V4_NC, and we can talk to it.
REQUIRED_OF_PEER: Final[int] = MANDATORY_25

_ALL_KNOWN: Final[int] = sum(int(flag) for flag in DFlag)


def expand_digest(flags: int) -> int:
    """Read the digest bit as the OTP 25 set, as OTP does before any check.

    A peer may advertise only ``MANDATORY_25_DIGEST``; without the expansion
    it would look as if it lacked every mandatory capability.
    """
    if flags & DFlag.MANDATORY_25_DIGEST:
        return int(flags | MANDATORY_25)
    return int(flags)


def missing(flags: int, required: int) -> int:
    """The bits of ``required`` that ``flags`` lacks (0 when none)."""
    return int(required & ~flags)


def uses_header(flags: int) -> bool:
    """Whether negotiated ``flags`` put the connection in header mode.

    OTP switches both directions to the ``131,68`` distribution header as soon
    as either the atom cache or fragments are negotiated, and rejects
    pass-through frames on such a connection.
    """
    return bool(flags & (DFlag.DIST_HDR_ATOM_CACHE | DFlag.FRAGMENTS))


def describe(flags: int) -> str:
    """Flag names joined by ``|``, lowest bit first, for logs and errors.

    Bits without a name are shown as one hex number at the end, so nothing a
    peer sent is hidden.
    """
    names = [flag.name for flag in DFlag if flags & flag and flag.name is not None]
    unknown = flags & ~_ALL_KNOWN
    if unknown:
        names.append(hex(unknown))
    return "|".join(names) if names else "0"
