"""The batch frame decoder of the active core: one call per read, every message once."""

from __future__ import annotations

import struct
import zlib

import pytest

from erldist.errors import RemoteProtocolError
from erldist.protocol.flags import DFlag
from erldist.protocol.frame_batch import new_frame_batch_decoder
from erldist.protocol.framing import NO_PAYLOAD, TICK, DistEncoder, UndecodableMessage
from erldist.term import Atom, Pid, encode

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


def _bomb_frame(flags: int) -> bytes:
    """A SEND whose payload is a compressed list of 100,000 zeros (under 300 bytes)."""
    plain = encode([0] * 100_000)[1:]
    payload = b"P" + len(plain).to_bytes(4, "big") + zlib.compress(plain, 9)
    head = DistEncoder(flags).frame((2, Atom(""), PID), 0)[4:-2]  # the payload's a\x00 cut
    return frame(head + payload)


INFLATED = 5 + 100_000 * 2 + 1  # LIST_EXT and its length, the small ints, nil


@pytest.mark.parametrize("flags", [0, HEADER])
def test_a_budget_stops_the_call_once_spent_and_keeps_the_rest(flags: int) -> None:
    one = DistEncoder(flags).frame((2, Atom(""), PID), b"y" * 100)
    size = len(one) - 4
    price = size - (3 if flags else 1)  # the message after its header byte(s)
    batch = new_frame_batch_decoder(flags)
    assert batch.next_cost == 0
    assert batch.feed(one * 5 + TICK + one[:10], 0) == []  # buffers only
    assert batch.next_cost == size
    assert len(batch.feed(b"", 2 * price - 1)) == 2
    assert len(batch.feed(b"", price)) == 1
    assert len(batch.feed(one[10:], None)) == 3
    assert batch.next_cost == 0


@pytest.mark.parametrize("flags", [0, HEADER])
def test_what_a_compressed_term_inflates_to_counts_against_the_budget(flags: int) -> None:
    bomb = _bomb_frame(flags)
    small = DistEncoder(flags).frame((2, Atom(""), PID), 1)
    message = ((2, Atom(""), PID), [0] * 100_000)
    batch = new_frame_batch_decoder(flags)
    got = batch.feed(small + bomb + small + bomb + small, 64 * 1024)
    # Both cores hold the bomb back and say what it costs.
    assert got == [((2, Atom(""), PID), 1)]
    assert batch.next_cost == len(bomb) - 4 - (3 if flags else 1) + INFLATED
    assert batch.feed(b"", 64 * 1024) == []
    got += batch.feed(b"", batch.next_cost)
    # Once the bomb is decoded, its cost ends the call.
    assert got == [((2, Atom(""), PID), 1), message]
    assert batch.next_cost == len(small) - 4
    got = batch.feed(b"", 64 * 1024)
    got += batch.feed(b"", batch.next_cost)
    assert got == [((2, Atom(""), PID), 1), message]
    assert batch.feed(b"", 64 * 1024) == [((2, Atom(""), PID), 1)]

