"""Distribution flags: the values OTP uses and the sets we advertise and require."""

from __future__ import annotations

from erldist.protocol import flags
from erldist.protocol.flags import DFlag

# What OTP 25.2.3 sent on the wire (digest §2.2/§3.2): its default plus PUBLISHED.
OTP25_WIRE_FLAGS = 0xD07DF7FBD


def test_values_match_dist_hrl() -> None:
    values = {flag.name: int(flag) for flag in DFlag}
    assert values == {
        "PUBLISHED": 0x1, "ATOM_CACHE": 0x2, "EXTENDED_REFERENCES": 0x4,
        "DIST_MONITOR": 0x8, "FUN_TAGS": 0x10, "DIST_MONITOR_NAME": 0x20,
        "HIDDEN_ATOM_CACHE": 0x40, "NEW_FUN_TAGS": 0x80, "EXTENDED_PIDS_PORTS": 0x100,
        "EXPORT_PTR_TAG": 0x200, "BIT_BINARIES": 0x400, "NEW_FLOATS": 0x800,
        "UNICODE_IO": 0x1000, "DIST_HDR_ATOM_CACHE": 0x2000, "SMALL_ATOM_TAGS": 0x4000,
        "ETS_COMPRESSED": 0x8000, "UTF8_ATOMS": 0x10000, "MAP_TAG": 0x20000,
        "BIG_CREATION": 0x40000, "SEND_SENDER": 0x80000, "BIG_SEQTRACE_LABELS": 0x100000,
        "PENDING_CONNECT": 0x200000, "EXIT_PAYLOAD": 0x400000, "FRAGMENTS": 0x800000,
        "HANDSHAKE_23": 0x1000000, "UNLINK_ID": 0x2000000, "MANDATORY_25_DIGEST": 0x4000000,
        "SPAWN": 1 << 32, "NAME_ME": 1 << 33, "V4_NC": 1 << 34, "ALIAS": 1 << 35,
        "LOCAL_EXT": 1 << 36, "ALTACT_SIG": 1 << 37,
    }


def test_mandatory_sets() -> None:
    assert flags.MANDATORY_25 == 0x1070F94
    assert flags.MANDATORY_26 == 0x1070F94 | 0x2000000 | 1 << 34
    assert flags.REQUIRED_OF_PEER == flags.MANDATORY_25


def test_our_flags() -> None:
    assert flags.OUR_FLAGS == 0xD075F5FBC | 0x800000
    assert flags.OUR_FLAGS & DFlag.SPAWN  # rpc/erpc into Python arrive as spawn requests
    assert not flags.OUR_FLAGS & DFlag.DIST_HDR_ATOM_CACHE
    assert not flags.OUR_FLAGS & DFlag.PUBLISHED
    assert not flags.OUR_FLAGS & DFlag.NAME_ME
    assert not flags.OUR_FLAGS & DFlag.ALTACT_SIG
    # OTP 26+ refuses a peer without its mandatory set; 23/24 ignore the digest bit.
    assert flags.missing(flags.OUR_FLAGS, flags.MANDATORY_26) == 0
    assert flags.OUR_FLAGS & DFlag.MANDATORY_25_DIGEST
    assert flags.uses_header(flags.OUR_FLAGS)


def test_expand_digest() -> None:
    digest_only = DFlag.PUBLISHED | DFlag.MANDATORY_25_DIGEST
    expanded = flags.expand_digest(digest_only)
    assert expanded == digest_only | flags.MANDATORY_25
    assert flags.missing(expanded, flags.REQUIRED_OF_PEER) == 0
    assert flags.expand_digest(DFlag.PUBLISHED) == DFlag.PUBLISHED
    assert flags.expand_digest(0) == 0


def test_missing() -> None:
    required = flags.MANDATORY_25
    assert flags.missing(required, required) == 0
    lacking = required & ~DFlag.MAP_TAG
    assert flags.missing(lacking, required) == DFlag.MAP_TAG
    assert flags.missing(0, DFlag.UNLINK_ID | DFlag.V4_NC) == DFlag.UNLINK_ID | DFlag.V4_NC


def test_uses_header() -> None:
    assert not flags.uses_header(flags.MANDATORY_26)
    assert flags.uses_header(DFlag.FRAGMENTS)
    assert flags.uses_header(DFlag.DIST_HDR_ATOM_CACHE)
    assert flags.uses_header(OTP25_WIRE_FLAGS & flags.OUR_FLAGS)
    assert not flags.uses_header(OTP25_WIRE_FLAGS & flags.OUR_FLAGS & ~DFlag.FRAGMENTS)


def test_describe() -> None:
    assert flags.describe(0) == "0"
    assert flags.describe(DFlag.PUBLISHED | DFlag.EXTENDED_REFERENCES) == (
        "PUBLISHED|EXTENDED_REFERENCES"
    )
    assert flags.describe(DFlag.MAP_TAG) == "MAP_TAG"
    assert flags.describe(DFlag.ALIAS | DFlag.SPAWN) == "SPAWN|ALIAS"
    text = flags.describe(OTP25_WIRE_FLAGS)
    assert text.startswith("PUBLISHED|EXTENDED_REFERENCES|DIST_MONITOR|")
    assert "DIST_HDR_ATOM_CACHE" in text
    assert text.endswith("SPAWN|V4_NC|ALIAS")


def test_describe_shows_unknown_bits() -> None:
    assert flags.describe(DFlag.PUBLISHED | 1 << 50) == "PUBLISHED|0x4000000000000"
    assert flags.describe(1 << 63) == hex(1 << 63)
