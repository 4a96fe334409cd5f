"""The batch frame decoder of the active core: one call per read, every message once."""

from __future__ import annotations

import struct

import pytest

from erldist.errors import RemoteProtocolError
from erldist.protocol.flags import DFlag
from erldist.protocol.frame_batch import new_frame_batch_decoder
from erldist.protocol.framing import NO_PAYLOAD, TICK, DistEncoder, UndecodableMessage
from erldist.term import Atom, Pid

HEADER = int(DFlag.DIST_HDR_ATOM_CACHE)
PID = Pid(Atom("a@h"), 1, 2, 3)


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize("flags", [0, HEADER])
def test_a_read_of_many_frames_and_ticks_is_one_list(flags: int) -> None:
    encoder = DistEncoder(flags)
    data = TICK + encoder.frame((2, Atom(""), PID), "one") + TICK + encoder.frame((19, PID, PID))
    batch = new_frame_batch_decoder(flags)
    assert batch.feed(data) == [((2, Atom(""), PID), b"one"), ((19, PID, PID), NO_PAYLOAD)]


def test_frames_split_anywhere_come_out_whole() -> None:
    data = DistEncoder(0).frame((2, Atom(""), PID), list(range(300))) * 3
    for cut in range(len(data) + 1):
        batch = new_frame_batch_decoder(0)
        got = batch.feed(data[:cut]) + batch.feed(data[cut:])
        assert got == [((2, Atom(""), PID), list(range(300)))] * 3


def test_fragments_are_reassembled() -> None:
    body = DistEncoder(HEADER).frame((2, Atom(""), PID), b"x" * 100)[7:]
    first = b"\x83\x45" + struct.pack(">QQ", 9, 2) + b"\x00" + body[:50]
    last = b"\x83\x46" + struct.pack(">QQ", 9, 1) + body[50:]
    batch = new_frame_batch_decoder(HEADER)
    assert batch.feed(frame(first)) == []
    assert batch.buffered == 50
    assert batch.feed(frame(last)) == [((2, Atom(""), PID), b"x" * 100)]
    assert batch.buffered == 0


def test_an_undecodable_message_is_reported_in_place_and_the_rest_delivered() -> None:
    good = DistEncoder(0).frame((2, Atom(""), PID), 1)
    items = new_frame_batch_decoder(0).feed(good + frame(b"\x70\x83\xff") + good)
    assert items[0] == items[2] == ((2, Atom(""), PID), 1)
    assert isinstance(items[1], UndecodableMessage)
    assert "unknown tag 255" in str(items[1])


def test_a_broken_stream_ends_the_batch_and_every_later_feed_raises() -> None:
    good = DistEncoder(0).frame((2, Atom(""), PID), 1)
    batch = new_frame_batch_decoder(0, max_frame=100)
    items = batch.feed(good + (1000).to_bytes(4, "big") + good)
    assert items[0] == ((2, Atom(""), PID), 1)
    assert isinstance(items[1], RemoteProtocolError)
    assert str(items[1]) == "1000-byte frame is over the 100-byte cap"
    assert len(items) == 2
    with pytest.raises(RemoteProtocolError, match="over the 100-byte cap"):
        batch.feed(good)
