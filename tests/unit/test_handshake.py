"""The handshake machines: against each other in memory and against OTP's bytes."""

from __future__ import annotations

import hashlib
import struct

import pytest

from erldist.errors import LocalProtocolError, RemoteProtocolError
from erldist.protocol.flags import MANDATORY_25, OUR_FLAGS, DFlag, expand_digest
from erldist.protocol.handshake import (
    MAX_MESSAGE,
    Acceptor,
    AliveQuery,
    Established,
    Event,
    HandshakeError,
    HandshakeFailure,
    HandshakeResult,
    Initiator,
    StatusRequired,
    compute_digest,
)

COOKIE = b"secret"
A = "a@127.0.0.1"
B = "b@127.0.0.1"
OTP25_FLAGS = 0xD07DF7FBD
VISIBLE = OUR_FLAGS | DFlag.PUBLISHED

# Captured from OTP 25.2.3 (digest §2.2), without the 2-byte length prefix.
OTP_SEND_NAME = bytes.fromhex("4e 0000000d07df7fbd 6b053b56 000b") + A.encode()
OTP_CHALLENGE = bytes.fromhex("4e 0000000d07df7fbd 4de68463 6b053af2 000b") + B.encode()


def framed(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


def initiator(**overrides: object) -> Initiator:
    args: dict[str, object] = {
        "local_name": A, "peer_name": B, "cookie": COOKIE, "flags": VISIBLE,
        "creation": 0x11111111, "challenge": 1000,
    }
    args.update(overrides)
    return Initiator(**args)  # type: ignore[arg-type]


def acceptor(**overrides: object) -> Acceptor:
    args: dict[str, object] = {
        "local_name": B, "cookie": COOKIE, "flags": VISIBLE, "creation": 0x22222222,
        "challenge": 2000,
    }
    args.update(overrides)
    return Acceptor(**args)  # type: ignore[arg-type]


def drain(machine: Initiator | Acceptor) -> list[Event]:
    events = []
    while (event := machine.next_event()) is not None:
        events.append(event)
    return events


def shuttle(
    ini: Initiator, acc: Acceptor, status: str = "ok", keep: bool = True
) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until both sides are quiet, answering as a runtime would."""
    ini_events: list[Event] = []
    acc_events: list[Event] = []
    while True:
        moved = False
        out = ini.data_to_send()
        if out:
            acc.receive_data(out)
            moved = True
        for event in drain(acc):
            acc_events.append(event)
            if isinstance(event, StatusRequired):
                acc.send_status(status)
        out = acc.data_to_send()
        if out:
            ini.receive_data(out)
            moved = True
        for event in drain(ini):
            ini_events.append(event)
            if isinstance(event, AliveQuery):
                ini.answer_alive(keep)
        if not moved:
            return ini_events, acc_events


def feed_bytewise(machine: Initiator | Acceptor, data: bytes) -> None:
    for i in range(len(data)):
        machine.receive_data(data[i : i + 1])


# --- digest ------------------------------------------------------------------------


def test_digest_is_md5_of_cookie_and_decimal_challenge() -> None:
    assert compute_digest(b"secret", 1306952803).hex() == "1c23a2ecc7feba066a5e5c92411b39e8"


def test_digest_uses_unsigned_decimal_without_padding() -> None:
    expected = hashlib.md5(b"c" + b"4294967295", usedforsecurity=False).digest()
    assert compute_digest(b"c", 0xFFFFFFFF) == expected
    assert compute_digest(b"c", 0) == hashlib.md5(b"c0", usedforsecurity=False).digest()


def test_digest_rejects_out_of_range_challenge() -> None:
    with pytest.raises(LocalProtocolError):
        compute_digest(b"c", 1 << 32)
    with pytest.raises(LocalProtocolError):
        compute_digest(b"c", -1)


# --- both roles against each other ---------------------------------------------------


@pytest.mark.parametrize("status", ["ok", "ok_simultaneous"])
def test_full_handshake(status: str) -> None:
    ini, acc = initiator(), acceptor()
    ini_events, acc_events = shuttle(ini, acc, status)
    assert acc_events[0] == StatusRequired(A, expand_digest(VISIBLE), 0x11111111)
    assert ini_events == [Established(HandshakeResult(
        peer_name=B, peer_flags=expand_digest(VISIBLE), flags=VISIBLE, peer_creation=0x22222222,
        version=6,
    ))]
    assert acc_events[1] == Established(HandshakeResult(
        peer_name=A, peer_flags=expand_digest(VISIBLE), flags=VISIBLE, peer_creation=0x11111111,
        version=6,
    ))
    assert ini.state == acc.state == "connected"
    assert ini.leftover == acc.leftover == b""
    assert ini.failure is None and acc.failure is None


def test_state_names_follow_dist_util() -> None:
    ini, acc = initiator(), acceptor()
    assert ini.state == "send_name"
    assert acc.state == "recv_name"
    acc.receive_data(ini.data_to_send())
    assert ini.state == "recv_status"
    assert acc.state == "send_status"
    assert isinstance(acc.next_event(), StatusRequired)
    acc.send_status("ok")
    assert acc.state == "recv_challenge_reply"
    out = acc.data_to_send()
    ini.receive_data(out[:5])  # the status alone
    assert ini.state == "recv_challenge"
    ini.receive_data(out[5:])
    assert ini.state == "recv_challenge_ack"
    acc.receive_data(ini.data_to_send())
    assert acc.state == "connected"
    ini.receive_data(acc.data_to_send())
    assert ini.state == "connected"


def test_negotiated_flags_are_the_intersection() -> None:
    hidden = OUR_FLAGS & ~DFlag.SPAWN
    ini, acc = initiator(flags=hidden), acceptor()
    ini_events, acc_events = shuttle(ini, acc)
    for event in (ini_events[-1], acc_events[-1]):
        assert isinstance(event, Established)
        assert event.result.flags == hidden & VISIBLE
        assert not event.result.flags & DFlag.PUBLISHED
        assert not event.result.flags & DFlag.SPAWN


def test_digest_only_peer_is_accepted() -> None:
    """A peer may advertise only the digest bit for the OTP 25 set (OTP 25.2.3 does)."""
    lean = DFlag.PUBLISHED | DFlag.MANDATORY_25_DIGEST | DFlag.HANDSHAKE_23
    ini, acc = initiator(flags=lean), acceptor()
    _, acc_events = shuttle(ini, acc)
    established = acc_events[-1]
    assert isinstance(established, Established)
    assert established.result.peer_flags == lean | MANDATORY_25
    assert established.result.flags == VISIBLE & (lean | MANDATORY_25)


def test_split_input_fed_byte_by_byte() -> None:
    ini, acc = initiator(), acceptor()
    feed_bytewise(acc, ini.data_to_send())
    assert isinstance(acc.next_event(), StatusRequired)
    acc.send_status("ok")
    feed_bytewise(ini, acc.data_to_send())
    feed_bytewise(acc, ini.data_to_send())
    assert isinstance(acc.next_event(), Established)
    feed_bytewise(ini, acc.data_to_send())
    assert isinstance(ini.next_event(), Established)


# --- OTP's captured bytes ------------------------------------------------------------


def test_send_name_matches_otp_capture() -> None:
    ini = Initiator(local_name=A, peer_name=B, cookie=COOKIE, flags=OTP25_FLAGS,
                    creation=0x6B053B56)
    assert ini.data_to_send() == framed(OTP_SEND_NAME)


def test_acceptor_reads_otp_send_name() -> None:
    acc = acceptor()
    acc.receive_data(framed(OTP_SEND_NAME))
    assert acc.next_event() == StatusRequired(A, OTP25_FLAGS, 0x6B053B56)


def test_challenge_matches_otp_capture() -> None:
    acc = Acceptor(local_name=B, cookie=COOKIE, flags=OTP25_FLAGS, creation=0x6B053AF2,
                   challenge=0x4DE68463)
    acc.receive_data(framed(OTP_SEND_NAME))
    acc.send_status("ok")
    assert acc.data_to_send() == framed(b"sok") + framed(OTP_CHALLENGE)


def test_initiator_answers_otp_challenge() -> None:
    ini = initiator(challenge=77)
    ini.data_to_send()
    ini.receive_data(framed(b"sok") + framed(OTP_CHALLENGE))
    assert ini.data_to_send() == framed(
        b"r" + (77).to_bytes(4, "big") + compute_digest(COOKIE, 0x4DE68463)
    )
    ini.receive_data(framed(b"a" + compute_digest(COOKIE, 77)) + b"\x00\x00\x00\x00")
    event = ini.next_event()
    assert isinstance(event, Established)
    assert event.result.peer_creation == 0x6B053AF2
    assert event.result.peer_flags == OTP25_FLAGS
    assert event.result.flags == OTP25_FLAGS & VISIBLE
    assert ini.leftover == b"\x00\x00\x00\x00"


# --- statuses ------------------------------------------------------------------------


def test_nok() -> None:
    ini, acc = initiator(), acceptor()
    with pytest.raises(HandshakeError) as info:
        shuttle(ini, acc, "nok")
    assert info.value.failure is HandshakeFailure.NAME_CLASH
    assert "peer keeps its own connection attempt" in str(info.value)
    assert ini.state == acc.state == "failed"
    assert ini.failure is acc.failure is HandshakeFailure.NAME_CLASH


def test_acceptor_refusal_is_queued_without_raising() -> None:
    acc = acceptor()
    acc.receive_data(initiator().data_to_send())
    acc.next_event()
    acc.send_status("not_allowed")
    assert acc.state == "failed"
    assert acc.failure is HandshakeFailure.NOT_ALLOWED
    assert acc.error is not None and A in acc.error.detail
    assert acc.data_to_send() == framed(b"snot_allowed")
    acc.receive_data(b"anything")  # ignored once failed
    assert acc.next_event() is None


def test_not_allowed() -> None:
    ini, acc = initiator(), acceptor()
    with pytest.raises(HandshakeError) as info:
        shuttle(ini, acc, "not_allowed")
    assert info.value.failure is HandshakeFailure.NOT_ALLOWED
    assert acc.failure is HandshakeFailure.NOT_ALLOWED


def test_alive_answered_true() -> None:
    ini, acc = initiator(), acceptor()
    acc.receive_data(ini.data_to_send())
    acc.next_event()
    acc.send_status("alive")
    assert acc.state == "recv_status"
    ini.receive_data(acc.data_to_send())
    assert ini.next_event() == AliveQuery()
    assert ini.state == "recv_status"
    ini.answer_alive(True)
    out = ini.data_to_send()
    assert out == framed(b"strue")
    acc.receive_data(out)
    assert acc.state == "recv_challenge_reply"
    ini_events, acc_events = shuttle(ini, acc)
    assert isinstance(ini_events[-1], Established)
    assert isinstance(acc_events[-1], Established)


def test_alive_answered_false() -> None:
    ini, acc = initiator(), acceptor()
    with pytest.raises(HandshakeError) as info:
        shuttle(ini, acc, "alive", keep=False)
    assert info.value.failure is HandshakeFailure.NAME_CLASH
    assert acc.state == "failed"
    assert ini.state == "failed"
    assert ini.failure is HandshakeFailure.NAME_CLASH


def test_named_status_is_malformed() -> None:
    ini = initiator()
    ini.data_to_send()
    body = b"snamed:" + struct.pack(">H", 5) + b"x@y.z" + (7).to_bytes(4, "big")
    with pytest.raises(HandshakeError) as info:
        ini.receive_data(framed(body))
    assert info.value.failure is HandshakeFailure.MALFORMED


@pytest.mark.parametrize("body", [b"sbogus", b"s", b"xok"])
def test_unknown_status_is_malformed(body: bytes) -> None:
    ini = initiator()
    with pytest.raises(HandshakeError) as info:
        ini.receive_data(framed(body))
    assert info.value.failure is HandshakeFailure.MALFORMED


# --- version 5 opening ---------------------------------------------------------------


def test_v5_opening_with_complement() -> None:
    ini, acc = initiator(version=5), acceptor()
    opening = ini.data_to_send()
    assert opening == framed(
        b"n" + struct.pack(">HI", 5, VISIBLE & 0xFFFFFFFF) + A.encode()
    )
    acc.receive_data(opening)
    assert acc.next_event() == StatusRequired(A, expand_digest(VISIBLE & 0xFFFFFFFF), 0)
    acc.send_status("ok")
    assert acc.state == "recv_complement"
    ini.receive_data(acc.data_to_send())
    reply = ini.data_to_send()
    complement = framed(b"c" + struct.pack(">II", VISIBLE >> 32, 0x11111111))
    assert reply.startswith(complement)
    acc.receive_data(reply)
    assert acc.state == "connected"
    acc_event = acc.next_event()
    assert isinstance(acc_event, Established)
    assert acc_event.result == HandshakeResult(
        peer_name=A, peer_flags=expand_digest(VISIBLE), flags=VISIBLE,
        peer_creation=0x11111111, version=5,
    )
    ini.receive_data(acc.data_to_send())
    ini_event = ini.next_event()
    assert isinstance(ini_event, Established)
    assert ini_event.result.version == 5


def test_v5_complement_split_from_reply() -> None:
    ini, acc = initiator(version=5), acceptor()
    acc.receive_data(ini.data_to_send())
    acc.next_event()
    acc.send_status("ok")
    ini.receive_data(acc.data_to_send())
    feed_bytewise(acc, ini.data_to_send())
    assert acc.state == "connected"


def test_v5_without_handshake_23_is_refused() -> None:
    acc = acceptor()
    old = framed(b"n" + struct.pack(">HI", 5, MANDATORY_25 & ~DFlag.HANDSHAKE_23) + A.encode())
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(old)
    assert info.value.failure is HandshakeFailure.VERSION_MISMATCH
    assert acc.data_to_send() == framed(b"snot_allowed")
    assert acc.state == "failed"


def test_v5_challenge_is_a_version_mismatch() -> None:
    ini = initiator()
    old = b"n" + struct.pack(">HII", 5, MANDATORY_25, 1) + B.encode()
    with pytest.raises(HandshakeError) as info:
        ini.receive_data(framed(b"sok") + framed(old))
    assert info.value.failure is HandshakeFailure.VERSION_MISMATCH


def test_malformed_complement() -> None:
    acc = acceptor()
    acc.receive_data(initiator(version=5).data_to_send())
    acc.next_event()
    acc.send_status("ok")
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(framed(b"c\x00\x00\x00\x00"))
    assert info.value.failure is HandshakeFailure.MALFORMED


# --- cookies -------------------------------------------------------------------------


def test_bad_cookie_detected_by_acceptor() -> None:
    ini, acc = initiator(cookie=b"wrong-cookie"), acceptor()
    acc.receive_data(ini.data_to_send())
    acc.next_event()
    acc.send_status("ok")
    ini.receive_data(acc.data_to_send())
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(ini.data_to_send())
    assert info.value.failure is HandshakeFailure.BAD_COOKIE
    assert acc.data_to_send() == b""  # no ack for a wrong digest
    assert b"wrong-cookie".decode() not in str(info.value)
    assert COOKIE.decode() not in str(info.value)


def test_bad_cookie_detected_by_initiator() -> None:
    ini = initiator(challenge=5)
    ini.data_to_send()
    ini.receive_data(framed(b"sok") + framed(OTP_CHALLENGE))
    ini.data_to_send()
    with pytest.raises(HandshakeError) as info:
        ini.receive_data(framed(b"a" + compute_digest(b"other", 5)))
    assert info.value.failure is HandshakeFailure.BAD_COOKIE
    assert ini.state == "failed"
    assert "secret" not in str(info.value) and "other" not in str(info.value)


def test_malformed_challenge_reply_and_ack() -> None:
    acc = acceptor()
    acc.receive_data(initiator().data_to_send())
    acc.next_event()
    acc.send_status("ok")
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(framed(b"r" + bytes(19)))
    assert info.value.failure is HandshakeFailure.MALFORMED

    ini = initiator()
    ini.receive_data(framed(b"sok") + framed(OTP_CHALLENGE))
    with pytest.raises(HandshakeError) as info:
        ini.receive_data(framed(b"a" + bytes(15)))
    assert info.value.failure is HandshakeFailure.MALFORMED


def test_no_cookie_in_repr() -> None:
    ini = initiator(cookie=b"hush-hush")
    acc = acceptor(cookie=b"hush-hush")
    shuttle(ini, acc)
    assert "hush" not in repr(ini) and "hush" not in repr(acc)
    assert B in repr(ini) and A in repr(acc)


# --- names and flags -----------------------------------------------------------------


def test_name_mismatch_in_challenge() -> None:
    ini, acc = initiator(peer_name="c@127.0.0.1"), acceptor()
    with pytest.raises(HandshakeError) as info:
        shuttle(ini, acc)
    assert info.value.failure is HandshakeFailure.NAME_CLASH
    assert "c@127.0.0.1" in info.value.detail and B in info.value.detail


def test_peer_flags_missing_on_acceptor() -> None:
    ini, acc = initiator(flags=VISIBLE & ~DFlag.MAP_TAG & ~DFlag.MANDATORY_25_DIGEST), acceptor()
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(ini.data_to_send())
    assert info.value.failure is HandshakeFailure.FLAGS_MISSING
    assert "MAP_TAG" in info.value.detail
    assert acc.data_to_send() == framed(b"snot_allowed")
    assert acc.next_event() is None


def test_peer_flags_missing_on_initiator() -> None:
    ini = initiator()
    ini.data_to_send()
    weak = b"N" + struct.pack(">QIIH", DFlag.HANDSHAKE_23, 1, 1, len(B)) + B.encode()
    with pytest.raises(HandshakeError) as info:
        ini.receive_data(framed(b"sok") + framed(weak))
    assert info.value.failure is HandshakeFailure.FLAGS_MISSING
    assert "EXTENDED_REFERENCES" in info.value.detail
    assert ini.data_to_send() == b""


def test_name_me_gets_a_generated_name_and_creation() -> None:
    acc = acceptor(dynamic_alive=lambda: "anon1")
    body = b"N" + struct.pack(">QIH", VISIBLE | DFlag.NAME_ME, 0, 9) + b"127.0.0.1"
    acc.receive_data(framed(body))
    (event,) = drain(acc)
    assert isinstance(event, StatusRequired)
    assert event.peer_name == "anon1@127.0.0.1" and event.peer_creation != 0
    acc.send_status("ok")
    sent = acc.data_to_send()
    named = b"snamed:" + struct.pack(">H", 15) + b"anon1@127.0.0.1"
    named += struct.pack(">I", event.peer_creation)
    assert sent.startswith(framed(named))
    challenge = sent[len(framed(named)) + 2 :]
    assert challenge[:1] == b"N"
    (flags,) = struct.unpack_from(">Q", challenge, 1)
    assert flags & DFlag.NAME_ME  # the named node checks the bit survived


@pytest.mark.parametrize("host", ["", "x@127.0.0.1"])
def test_name_me_needs_a_bare_host(host: str) -> None:
    acc = acceptor()
    body = b"N" + struct.pack(">QIH", VISIBLE | DFlag.NAME_ME, 0, len(host)) + host.encode()
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(framed(body))
    assert info.value.failure is HandshakeFailure.MALFORMED
    assert acc.data_to_send() == framed(b"snot_allowed")


@pytest.mark.parametrize("name", ["nohost", "a@b@c", "@host", "alive@", ""])
def test_bad_node_name_closes_without_status(name: str) -> None:
    acc = acceptor()
    body = b"N" + struct.pack(">QIH", VISIBLE, 1, len(name)) + name.encode()
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(framed(body))
    assert info.value.failure is HandshakeFailure.MALFORMED
    assert acc.data_to_send() == b""


def test_name_past_end_and_non_utf8() -> None:
    acc = acceptor()
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(framed(b"N" + struct.pack(">QIH", VISIBLE, 1, 40) + b"a@b"))
    assert info.value.failure is HandshakeFailure.MALFORMED
    acc = acceptor()
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(framed(b"N" + struct.pack(">QIH", VISIBLE, 1, 3) + b"a@\xff"))
    assert info.value.failure is HandshakeFailure.MALFORMED


def test_extra_bytes_after_name_are_ignored() -> None:
    acc = acceptor()
    acc.receive_data(framed(OTP_SEND_NAME + b"future-extension"))
    assert acc.next_event() == StatusRequired(A, OTP25_FLAGS, 0x6B053B56)


@pytest.mark.parametrize("body", [b"X", b"N\x00", b"n\x00\x05"])
def test_garbled_send_name(body: bytes) -> None:
    acc = acceptor()
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(framed(body))
    assert info.value.failure is HandshakeFailure.MALFORMED


# --- hostile sizes and ordering ------------------------------------------------------


def test_oversize_message_is_refused_before_buffering() -> None:
    acc = acceptor()
    with pytest.raises(HandshakeError) as info:
        acc.receive_data((MAX_MESSAGE + 1).to_bytes(2, "big"))
    assert info.value.failure is HandshakeFailure.MALFORMED
    assert "4097" in info.value.detail


def test_largest_message_is_read() -> None:
    acc = acceptor()
    body = OTP_SEND_NAME + bytes(MAX_MESSAGE - len(OTP_SEND_NAME))
    acc.receive_data(framed(body))
    assert isinstance(acc.next_event(), StatusRequired)


def test_empty_message_is_malformed() -> None:
    ini = initiator()
    with pytest.raises(HandshakeError) as info:
        ini.receive_data(b"\x00\x00")
    assert info.value.failure is HandshakeFailure.MALFORMED


def test_peer_may_not_speak_before_our_status() -> None:
    acc = acceptor()
    with pytest.raises(HandshakeError) as info:
        acc.receive_data(framed(OTP_SEND_NAME) + framed(b"r" + bytes(20)))
    assert info.value.failure is HandshakeFailure.MALFORMED
    assert acc.next_event() is None


def test_leftover_belongs_to_connected_phase() -> None:
    ini, acc = initiator(), acceptor()
    acc.receive_data(ini.data_to_send())
    acc.next_event()
    acc.send_status("ok")
    ini.receive_data(acc.data_to_send())
    acc.receive_data(ini.data_to_send())
    frames = b"\x00\x00\x00\x00" + b"\x00\x00\x00\x02pq"
    ini.receive_data(acc.data_to_send() + frames[:3])
    assert ini.leftover == frames[:3]
    ini.receive_data(frames[3:])
    assert ini.leftover == frames
    assert isinstance(ini.next_event(), Established)


def test_acceptor_leftover() -> None:
    ini, acc = initiator(), acceptor()
    acc.receive_data(ini.data_to_send())
    acc.next_event()
    acc.send_status("ok")
    ini.receive_data(acc.data_to_send())
    acc.receive_data(ini.data_to_send() + b"\x00\x00\x00\x00")
    assert acc.state == "connected"
    assert acc.leftover == b"\x00\x00\x00\x00"


# --- connection loss and API misuse --------------------------------------------------


def test_connection_lost_mid_handshake() -> None:
    ini = initiator()
    ini.data_to_send()
    with pytest.raises(HandshakeError) as info:
        ini.connection_lost()
    assert info.value.failure is HandshakeFailure.PEER_CLOSED
    assert "recv_status" in info.value.detail
    assert ini.state == "failed"
    ini.connection_lost()  # already failed: nothing more to say


def test_connection_lost_after_connected_is_quiet() -> None:
    ini, acc = initiator(), acceptor()
    shuttle(ini, acc)
    ini.connection_lost()
    acc.connection_lost()
    assert ini.state == acc.state == "connected"


def test_handshake_error_is_remote_protocol_error() -> None:
    err = HandshakeError(HandshakeFailure.TIMED_OUT, "no handshake within 7 s")
    assert isinstance(err, RemoteProtocolError)
    assert str(err) == "handshake failed (timed_out): no handshake within 7 s"


def test_misuse_raises_local_protocol_error() -> None:
    acc = acceptor()
    with pytest.raises(LocalProtocolError):
        acc.send_status("ok")
    acc.receive_data(framed(OTP_SEND_NAME))
    with pytest.raises(LocalProtocolError):
        acc.send_status("named:")
    ini = initiator()
    with pytest.raises(LocalProtocolError):
        ini.answer_alive(True)


@pytest.mark.parametrize(
    "overrides",
    [
        {"version": 4},
        {"flags": MANDATORY_25 & ~DFlag.HANDSHAKE_23},
        {"flags": 1 << 64},
        {"creation": 1 << 32},
        {"challenge": 1 << 32},
        {"cookie": b""},
        {"local_name": ""},
        {"local_name": "x" * 256},
        {"peer_name": ""},
    ],
)
def test_bad_construction(overrides: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        initiator(**overrides)


def test_random_challenges_differ() -> None:
    first = Acceptor(local_name=B, cookie=COOKIE, flags=VISIBLE, creation=1)
    second = Acceptor(local_name=B, cookie=COOKIE, flags=VISIBLE, creation=1)
    for acc in (first, second):
        acc.receive_data(framed(OTP_SEND_NAME))
        acc.send_status("ok")
    assert first.data_to_send() != second.data_to_send()
