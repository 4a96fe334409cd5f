"""Connected-phase framing: frames and ticks, pass-through and header mode, fragments."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from erldist.errors import EncodeError, RemoteProtocolError
from erldist.protocol.flags import MANDATORY_26, OUR_FLAGS, DFlag
from erldist.protocol.framing import (
    DEFAULT_MAX_FRAME,
    NO_PAYLOAD,
    TICK,
    DistDecoder,
    DistEncoder,
    FrameReader,
)
from erldist.term import Atom, DecodeLimits, Pid, encode

PASS_THROUGH_FLAGS = MANDATORY_26 | DFlag.SEND_SENDER
HEADER_FLAGS = OUR_FLAGS  # FRAGMENTS, hence header mode
A_PID = Pid(Atom("a@127.0.0.1"), 41, 0, 7)
B_PID = Pid(Atom("b@127.0.0.1"), 42, 0, 8)
CONTROL = (22, A_PID, B_PID)
MESSAGE = (Atom("hello"), [1, 2, 3], b"\x00" * 10)


def length_prefixed(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def body(term: Any) -> bytes:
    """A term as it follows a distribution header: no version byte."""
    return encode(term)[1:]


def first_fragment(seq: int, frag: int, data: bytes, refs: int = 0) -> bytes:
    return bytes([131, 69]) + struct.pack(">QQ", seq, frag) + bytes([refs]) + data


def next_fragment(seq: int, frag: int, data: bytes) -> bytes:
    return bytes([131, 70]) + struct.pack(">QQ", seq, frag) + data


def split(data: bytes, parts: int) -> list[bytes]:
    size = -(-len(data) // parts)
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- FrameReader ---------------------------------------------------------------------


def test_ticks_are_none() -> None:
    reader = FrameReader()
    assert reader.feed(TICK) == [None]
    assert reader.feed(TICK + TICK) == [None, None]


def test_frames_and_ticks_in_one_chunk() -> None:
    reader = FrameReader()
    data = length_prefixed(b"one") + TICK + length_prefixed(b"two")
    assert reader.feed(data) == [b"one", None, b"two"]


def test_split_frames_byte_by_byte() -> None:
    reader = FrameReader()
    data = length_prefixed(b"first") + TICK + length_prefixed(b"x" * 300)
    frames: list[bytes | None] = []
    for i in range(len(data)):
        frames.extend(reader.feed(data[i : i + 1]))
    assert frames == [b"first", None, b"x" * 300]


def test_partial_frame_kept_for_next_feed() -> None:
    reader = FrameReader()
    data = length_prefixed(b"abc") + length_prefixed(b"defgh")
    assert reader.feed(data[:10]) == [b"abc"]
    assert reader.feed(data[10:]) == [b"defgh"]
    assert reader.feed(b"") == []


def test_accepts_bytearray_and_memoryview() -> None:
    reader = FrameReader()
    data = length_prefixed(b"abc")
    assert reader.feed(bytearray(data[:5])) == []
    assert reader.feed(memoryview(data)[5:]) == [b"abc"]


def test_oversize_frame_refused_at_its_length_prefix() -> None:
    reader = FrameReader(max_frame=16)
    assert reader.feed(length_prefixed(b"x" * 16)) == [b"x" * 16]
    with pytest.raises(RemoteProtocolError, match="17-byte frame"):
        reader.feed((17).to_bytes(4, "big"))


def test_default_frame_cap() -> None:
    assert FrameReader().max_frame == DEFAULT_MAX_FRAME == 128 * 1024 * 1024
    with pytest.raises(RemoteProtocolError):
        FrameReader().feed(b"\xff\xff\xff\xff")


# --- pass-through mode ---------------------------------------------------------------


def test_pass_through_frame_bytes() -> None:
    encoder = DistEncoder(PASS_THROUGH_FLAGS)
    assert not encoder.header_mode
    frame = encoder.frame(CONTROL, MESSAGE)
    assert frame == length_prefixed(b"p" + encode(CONTROL) + encode(MESSAGE))
    assert encoder.frame((1, A_PID, B_PID)) == length_prefixed(b"p" + encode((1, A_PID, B_PID)))


def test_pass_through_round_trip() -> None:
    encoder, decoder = DistEncoder(PASS_THROUGH_FLAGS), DistDecoder(PASS_THROUGH_FLAGS)
    frames = FrameReader().feed(encoder.frame(CONTROL, MESSAGE) + encoder.frame((1, A_PID, B_PID)))
    assert [decoder.decode(f) for f in frames if f is not None] == [
        (CONTROL, MESSAGE),
        ((1, A_PID, B_PID), NO_PAYLOAD),
    ]


def test_pass_through_rejects_header_frames() -> None:
    decoder = DistDecoder(PASS_THROUGH_FLAGS)
    with pytest.raises(RemoteProtocolError, match="pass-through"):
        decoder.decode(bytes([131, 68, 0]) + body(CONTROL))
    with pytest.raises(RemoteProtocolError):
        decoder.decode(b"")


def test_undecodable_terms_are_remote_errors() -> None:
    decoder = DistDecoder(PASS_THROUGH_FLAGS)
    with pytest.raises(RemoteProtocolError, match="undecodable"):
        decoder.decode(b"p\x83\xff")
    with pytest.raises(RemoteProtocolError, match="undecodable"):
        decoder.decode(b"p" + encode(CONTROL) + b"\x83")
    with pytest.raises(RemoteProtocolError, match="after the payload"):
        decoder.decode(b"p" + encode(CONTROL) + encode(MESSAGE) + b"\x83")


def test_decode_limits_apply() -> None:
    decoder = DistDecoder(PASS_THROUGH_FLAGS, limits=DecodeLimits(max_binary_bytes=4))
    with pytest.raises(RemoteProtocolError):
        decoder.decode(b"p" + encode(CONTROL) + encode(b"12345"))


# --- header mode ---------------------------------------------------------------------


def test_header_mode_frame_bytes() -> None:
    encoder = DistEncoder(HEADER_FLAGS)
    assert encoder.header_mode
    frame = encoder.frame(CONTROL, MESSAGE)
    assert frame == length_prefixed(bytes([131, 68, 0]) + body(CONTROL) + body(MESSAGE))


def test_header_mode_round_trip() -> None:
    encoder, decoder = DistEncoder(HEADER_FLAGS), DistDecoder(HEADER_FLAGS)
    for control, payload in [(CONTROL, MESSAGE), ((1, A_PID, B_PID), NO_PAYLOAD)]:
        (frame,) = FrameReader().feed(encoder.frame(control, payload))
        assert frame is not None
        assert decoder.decode(frame) == (control, payload)


def test_header_mode_also_for_atom_cache_flag() -> None:
    assert DistEncoder(MANDATORY_26 | DFlag.DIST_HDR_ATOM_CACHE).header_mode


def test_header_mode_rejects_pass_through_frames() -> None:
    with pytest.raises(RemoteProtocolError, match="distribution header"):
        DistDecoder(HEADER_FLAGS).decode(b"p" + encode(CONTROL))


def test_atom_cache_refs_rejected() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    with pytest.raises(RemoteProtocolError, match="atom cache"):
        decoder.decode(bytes([131, 68, 1, 0x08, 0, 5]) + b"hello")
    with pytest.raises(RemoteProtocolError, match="atom cache"):
        decoder.decode(first_fragment(1, 2, body(CONTROL), refs=1))


@pytest.mark.parametrize("frame", [bytes([131, 71, 0]), bytes([131, 68]), bytes([130, 68, 0])])
def test_bad_headers(frame: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        DistDecoder(HEADER_FLAGS).decode(frame)


# --- frame_into ----------------------------------------------------------------------


def test_frame_into_appends_to_batch() -> None:
    encoder = DistEncoder(HEADER_FLAGS)
    batch = bytearray(TICK)
    encoder.frame_into(batch, CONTROL, MESSAGE)
    encoder.frame_into(batch, (1, A_PID, B_PID))
    assert bytes(batch) == TICK + encoder.frame(CONTROL, MESSAGE) + encoder.frame((1, A_PID, B_PID))


@pytest.mark.parametrize("flags", [PASS_THROUGH_FLAGS, HEADER_FLAGS])
def test_frame_into_leaves_batch_intact_when_encoding_fails(flags: int) -> None:
    encoder = DistEncoder(flags)
    batch = bytearray(b"earlier")
    with pytest.raises(EncodeError):
        encoder.frame_into(batch, CONTROL, object())
    with pytest.raises(EncodeError):
        encoder.frame_into(batch, (2, None, B_PID), MESSAGE)
    assert batch == b"earlier"


# --- fragments -----------------------------------------------------------------------


def fragments(seq: int, control: Any, payload: Any, parts: int) -> list[bytes]:
    chunks = split(body(control) + body(payload), parts)
    assert len(chunks) == parts
    frames = [first_fragment(seq, parts, chunks[0])]
    frames += [next_fragment(seq, parts - i, chunk) for i, chunk in enumerate(chunks[1:], 1)]
    return frames


def test_fragments_reassembled() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    payload = b"\xab" * 150_000
    frames = fragments(0x2B000000563, CONTROL, payload, 3)
    assert decoder.decode(frames[0]) is None
    assert decoder.buffered > 0
    assert decoder.decode(frames[1]) is None
    assert decoder.decode(frames[2]) == (CONTROL, payload)
    assert decoder.buffered == 0


def test_single_fragment_message() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    frame = first_fragment(5, 1, body(CONTROL) + body(MESSAGE))
    assert decoder.decode(frame) == (CONTROL, MESSAGE)
    assert decoder.buffered == 0


def test_interleaved_sequences() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    first = fragments(1, CONTROL, b"from one", 3)
    second = fragments(2, (22, B_PID, A_PID), b"from two", 2)
    results = [
        decoder.decode(first[0]),
        decoder.decode(second[0]),
        decoder.decode(first[1]),
        decoder.decode(second[1]),
        decoder.decode(first[2]),
    ]
    assert results == [None, None, None, ((22, B_PID, A_PID), b"from two"), (CONTROL, b"from one")]


def test_a_plain_message_between_fragments() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    parts = fragments(1, CONTROL, MESSAGE, 2)
    assert decoder.decode(parts[0]) is None
    assert decoder.decode(bytes([131, 68, 0]) + body((1, A_PID, B_PID))) == (
        (1, A_PID, B_PID), NO_PAYLOAD,
    )
    assert decoder.decode(parts[1]) == (CONTROL, MESSAGE)


def test_sequence_id_reusable_after_completion() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    for _ in range(2):
        parts = fragments(9, CONTROL, MESSAGE, 2)
        assert decoder.decode(parts[0]) is None
        assert decoder.decode(parts[1]) == (CONTROL, MESSAGE)


def test_fragment_out_of_order() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    parts = fragments(1, CONTROL, MESSAGE, 3)
    decoder.decode(parts[0])
    with pytest.raises(RemoteProtocolError, match="expected 2"):
        decoder.decode(parts[2])


def test_fragment_for_unknown_sequence() -> None:
    with pytest.raises(RemoteProtocolError, match="unknown sequence"):
        DistDecoder(HEADER_FLAGS).decode(next_fragment(3, 1, b"x"))


def test_sequence_restarted() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    decoder.decode(first_fragment(1, 3, b"abc"))
    with pytest.raises(RemoteProtocolError, match="restarted"):
        decoder.decode(first_fragment(1, 3, b"abc"))


def test_fragment_id_zero() -> None:
    with pytest.raises(RemoteProtocolError, match="fragment id 0"):
        DistDecoder(HEADER_FLAGS).decode(first_fragment(1, 0, b"abc"))


@pytest.mark.parametrize("frame", [bytes([131, 69]) + bytes(16), bytes([131, 70]) + bytes(15)])
def test_truncated_fragment_headers(frame: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="truncated"):
        DistDecoder(HEADER_FLAGS).decode(frame)


def test_cap_on_sequences_in_flight() -> None:
    decoder = DistDecoder(HEADER_FLAGS, max_fragment_sequences=2)
    decoder.decode(first_fragment(1, 2, b"a"))
    decoder.decode(first_fragment(2, 2, b"b"))
    with pytest.raises(RemoteProtocolError, match="in flight"):
        decoder.decode(first_fragment(3, 2, b"c"))


def test_completed_sequences_free_their_slot() -> None:
    decoder = DistDecoder(HEADER_FLAGS, max_fragment_sequences=1)
    for seq in (1, 2, 3):
        parts = fragments(seq, CONTROL, MESSAGE, 2)
        assert decoder.decode(parts[0]) is None
        assert decoder.decode(parts[1]) == (CONTROL, MESSAGE)


def test_cap_on_reassembly_bytes() -> None:
    decoder = DistDecoder(HEADER_FLAGS, max_reassembly=100)
    decoder.decode(first_fragment(1, 10, b"x" * 60))
    decoder.decode(first_fragment(2, 10, b"y" * 40))
    with pytest.raises(RemoteProtocolError, match="100 bytes"):
        decoder.decode(next_fragment(1, 9, b"z"))


def test_reassembled_garbage_is_a_remote_error() -> None:
    decoder = DistDecoder(HEADER_FLAGS)
    decoder.decode(first_fragment(1, 2, b"\xff\xff"))
    with pytest.raises(RemoteProtocolError, match="undecodable"):
        decoder.decode(next_fragment(1, 1, b"\xff"))
