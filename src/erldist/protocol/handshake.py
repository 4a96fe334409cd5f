"""The distribution handshake as two sans-I/O state machines.

Feed received bytes to ``receive_data``, pull events with ``next_event``, and
write whatever ``data_to_send`` returns. Nothing here touches a socket, a clock
or a thread; the runtime owns timeouts (``TIMED_OUT`` exists so it can report
them in the same vocabulary).

State names are OTP's ``dist_util`` step names, so this module can be read
side by side with it. Both roles speak version 6 (the ``'N'`` messages of
OTP 23+); the acceptor also takes a version-5 ``'n'`` opening from an OTP 23/24
peer that sets ``HANDSHAKE_23`` and then sends the ``'c'`` complement, and the
initiator can open that way itself when EPMD says the peer is version 5.

Every handshake message has a 2-byte length prefix over TCP, and a 4-byte
one inside TLS (OTP's ``inet_tls_dist`` opens its socket with ``{packet, 4}``
from the start). Messages are capped at
``MAX_MESSAGE`` bytes: a real one is under 300, and a hostile peer must not
make us buffer 64 KiB per connection attempt.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import hmac
import secrets
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from erldist.errors import LocalProtocolError, RemoteProtocolError
from erldist.protocol.flags import (
    REQUIRED_OF_PEER,
    DFlag,
    describe,
    expand_digest,
    missing,
)

__all__ = [
    "MAX_MESSAGE",
    "STATUSES",
    "Acceptor",
    "AliveQuery",
    "Established",
    "Event",
    "HandshakeError",
    "HandshakeFailure",
    "HandshakeResult",
    "Initiator",
    "StatusRequired",
    "Step",
    "compute_digest",
]

#: Largest handshake message body we accept, in bytes.
MAX_MESSAGE: Final = 4096

#: The statuses an acceptor may answer a send_name with (``named:`` is not
#: here: we never assign dynamic names).
STATUSES: Final = frozenset({"ok", "ok_simultaneous", "nok", "not_allowed", "alive"})
STATUS_BYTES: Final = frozenset(s.encode() for s in STATUSES)

_MAX_NAME_BYTES: Final = 255
_U32: Final = 0xFFFFFFFF
#: How a TLS handshake (0x16) or alert (0x15) record of TLS 1.x begins; read as a
#: 2-byte length it is over ``MAX_MESSAGE``, so it is never a real message.
_TLS_RECORD_STARTS: Final = (b"\x16\x03", b"\x15\x03")


class Step(enum.StrEnum):
    """Where a handshake machine is: OTP's ``dist_util`` step names, then the end states.

    A ``StrEnum``, so a step prints (and compares) as the word OTP uses.
    """

    SEND_NAME = "send_name"
    RECV_STATUS = "recv_status"
    RECV_CHALLENGE = "recv_challenge"
    RECV_CHALLENGE_ACK = "recv_challenge_ack"
    RECV_NAME = "recv_name"
    SEND_STATUS = "send_status"
    RECV_COMPLEMENT = "recv_complement"
    RECV_CHALLENGE_REPLY = "recv_challenge_reply"
    CONNECTED = "connected"
    FAILED = "failed"


class HandshakeFailure(enum.Enum):
    """Why a handshake ended without a connection."""

    BAD_COOKIE = "bad_cookie"
    VERSION_MISMATCH = "version_mismatch"
    NAME_CLASH = "name_clash"
    NOT_ALLOWED = "not_allowed"
    FLAGS_MISSING = "flags_missing"
    PEER_CLOSED = "peer_closed"
    TIMED_OUT = "timed_out"
    MALFORMED = "malformed"
    #: The peer opened with a TLS record: it wants TLS distribution, we speak plain TCP.
    PEER_SPEAKS_TLS = "peer_speaks_tls"


class HandshakeError(RemoteProtocolError):
    """The handshake failed; ``failure`` says how, ``detail`` what was seen.

    The message is built only from names, flags and status words: a cookie
    never reaches it.
    """

    def __init__(self, failure: HandshakeFailure, detail: str) -> None:
        super().__init__(f"handshake failed ({failure.value}): {detail}")
        self.failure = failure
        self.detail = detail


def compute_digest(cookie: bytes, challenge: int) -> bytes:
    """MD5 of the cookie followed by the challenge as unsigned decimal text.

    This is the proof each side gives that it knows the shared cookie. MD5 is
    what the protocol mandates, not a choice we could make.
    """
    if not 0 <= challenge <= _U32:
        raise LocalProtocolError(f"a challenge is an unsigned 32-bit number, got {challenge}")
    return hashlib.md5(cookie + str(challenge).encode("ascii"), usedforsecurity=False).digest()


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """What the connected phase needs to know about the peer."""

    peer_name: str
    #: The peer's flags, with the MANDATORY_25 digest expanded.
    peer_flags: int
    #: The negotiated flags: ours & theirs.
    flags: int
    peer_creation: int
    #: 6, or 5 when the connection was opened with an ``'n'`` send_name.
    version: int


@dataclass(frozen=True, slots=True)
class StatusRequired:
    """Acceptor: the peer introduced itself; call ``send_status`` with the verdict.

    The verdict depends on the node's connection table (simultaneous connects,
    an existing connection, allow lists), which only the runtime knows.
    ``peer_creation`` is 0 for a version-5 opening until its complement.
    """

    peer_name: str
    peer_flags: int
    peer_creation: int


@dataclass(frozen=True, slots=True)
class AliveQuery:
    """Initiator: the peer already has a connection to us; call ``answer_alive``."""


@dataclass(frozen=True, slots=True)
class Established:
    """The handshake succeeded; switch to 4-byte frames (see ``leftover``)."""

    result: HandshakeResult


Event = StatusRequired | AliveQuery | Established


class _Handshake(abc.ABC):
    """What both roles share: buffering, framing, events and failure."""

    def __init__(
        self,
        *,
        local_name: str,
        cookie: bytes,
        flags: int,
        creation: int,
        challenge: int | None,
        state: Step,
        length_prefix: int,
    ) -> None:
        name = local_name.encode("utf-8")
        if not 0 < len(name) <= _MAX_NAME_BYTES:
            raise LocalProtocolError(f"local node name must be 1..{_MAX_NAME_BYTES} bytes")
        if not isinstance(cookie, bytes) or not cookie:
            raise LocalProtocolError("the cookie must be non-empty bytes")
        if not 0 <= flags < 1 << 64:
            raise LocalProtocolError(f"flags must fit in 64 bits, got {flags:#x}")
        if not flags & DFlag.HANDSHAKE_23:
            raise LocalProtocolError("our flags must include HANDSHAKE_23: we speak only OTP 23+")
        if not 0 <= creation <= _U32:
            raise LocalProtocolError(f"creation must fit in 32 bits, got {creation}")
        if challenge is None:
            challenge = secrets.randbits(32)
        elif not 0 <= challenge <= _U32:
            raise LocalProtocolError(f"a challenge is an unsigned 32-bit number, got {challenge}")
        self._local_name = local_name
        self._name_bytes = name
        self._cookie = cookie
        self._flags = int(flags)
        self._creation = creation
        self._challenge = challenge
        if length_prefix not in (2, 4):
            raise LocalProtocolError(f"length prefix must be 2 or 4 bytes, got {length_prefix}")
        self._prefix = length_prefix
        self._state = state
        self._inbuf = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._leftover = b""
        self._error: HandshakeError | None = None

    # --- public surface ----------------------------------------------------------------

    @property
    def state(self) -> Step:
        """The current OTP step name, ``"connected"`` or ``"failed"``."""
        return self._state

    @property
    def leftover(self) -> bytes:
        """Bytes that arrived after the last handshake message.

        They are the start of the connected phase and belong to the frame
        reader, not to us.
        """
        return self._leftover

    @property
    def failure(self) -> HandshakeFailure | None:
        """Why the machine is in state ``"failed"`` (``None`` otherwise)."""
        return self._error.failure if self._error is not None else None

    @property
    def error(self) -> HandshakeError | None:
        """The failure as an exception, also for the failures nothing raised.

        Refusals the runtime chose itself (a ``nok`` status, a ``false`` alive
        answer) fail the machine without raising; this carries their detail.
        """
        return self._error

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the peer; raises ``HandshakeError`` if they break the protocol.

        After a ``HandshakeError`` a last message (``snot_allowed``) may still
        be waiting in ``data_to_send``: write it before closing so the peer
        learns why. Once connected, further bytes are added to ``leftover``;
        once failed, they are ignored.
        """
        if self._state == Step.CONNECTED:
            self._leftover += data
            return
        if self._state == Step.FAILED:
            return
        self._inbuf += data
        self._process()

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or ``None``."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Every byte queued for the peer since the last call, already framed."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def connection_lost(self) -> None:
        """The transport closed: raises ``HandshakeError(PEER_CLOSED)`` mid-handshake."""
        if self._state in (Step.CONNECTED, Step.FAILED):
            return
        raise self._fail(
            HandshakeFailure.PEER_CLOSED, f"peer closed the connection in {self._state}"
        )

    # --- machinery ---------------------------------------------------------------------

    @abc.abstractmethod
    def _handler(self) -> Callable[[bytes], None] | None:
        """The step that reads the next message, or ``None`` while the runtime decides."""

    def _process(self) -> None:
        while (handler := self._handler()) is not None:
            size = self._prefix
            if len(self._inbuf) < size:
                return
            length = int.from_bytes(self._inbuf[:size], "big")
            if length == 0:
                raise self._malformed(f"empty message in {self._state}")
            if length > MAX_MESSAGE:
                if size == 2 and bytes(self._inbuf[:2]) in _TLS_RECORD_STARTS:
                    raise self._fail(HandshakeFailure.PEER_SPEAKS_TLS,
                                     "the peer opened with a TLS record; this node speaks "
                                     "plain TCP distribution")
                raise self._malformed(
                    f"{length}-byte message in {self._state} (at most {MAX_MESSAGE})"
                )
            if len(self._inbuf) < size + length:
                return
            message = bytes(self._inbuf[size : size + length])
            del self._inbuf[: size + length]
            handler(message)
            if self._state == Step.CONNECTED:
                self._leftover = bytes(self._inbuf)
                self._inbuf.clear()
                return
        if self._inbuf and self._state != Step.FAILED:
            # The peer may not speak before hearing our answer to its last message.
            raise self._malformed(f"peer sent data while we were in {self._state}")

    def _send(self, message: bytes) -> None:
        self._out += len(message).to_bytes(self._prefix, "big")
        self._out += message

    def _fail(self, failure: HandshakeFailure, detail: str) -> HandshakeError:
        """Enter ``"failed"`` and return the error (the caller decides whether to raise)."""
        self._state = Step.FAILED
        self._error = HandshakeError(failure, detail)
        self._events.clear()
        self._inbuf.clear()
        return self._error

    def _malformed(self, detail: str) -> HandshakeError:
        return self._fail(HandshakeFailure.MALFORMED, detail)

    def _name_at(self, message: bytes, offset: int, length: int, step: str) -> str:
        raw = message[offset : offset + length]
        if len(raw) != length:
            raise self._malformed(f"{step}: name runs past the end of the message")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._malformed(f"{step}: name is not UTF-8") from None

    def _check_peer_flags(self, peer: str, flags: int) -> None:
        lack = missing(flags, REQUIRED_OF_PEER)
        if lack:
            raise self._fail(
                HandshakeFailure.FLAGS_MISSING, f"{peer!r} lacks mandatory flags {describe(lack)}"
            )


class Initiator(_Handshake):
    """The side that dialled: send_name, recv_status, recv_challenge, recv_challenge_ack.

    ``version`` comes from the peer's EPMD entry: 6 opens with ``'N'``; 5 opens
    with ``'n'`` (carrying ``HANDSHAKE_23``) and sends the ``'c'`` complement
    after the challenge. The send_name is queued at construction; the state
    reads ``"send_name"`` until ``data_to_send`` has handed it out.
    """

    def __init__(
        self,
        *,
        local_name: str,
        peer_name: str,
        cookie: bytes,
        flags: int,
        creation: int,
        version: int = 6,
        challenge: int | None = None,
        length_prefix: int = 2,
    ) -> None:
        super().__init__(
            local_name=local_name,
            cookie=cookie,
            flags=flags,
            creation=creation,
            challenge=challenge,
            state=Step.SEND_NAME,
            length_prefix=length_prefix,
        )
        if version not in (5, 6):
            raise LocalProtocolError(f"handshake version must be 5 or 6, got {version}")
        if not peer_name:
            raise LocalProtocolError("the peer name must not be empty")
        self._peer_name = peer_name
        self._version = version
        self._awaiting_alive = False
        #: The peer's recv_status answer, once it came (``nok`` tells the
        #: runtime to wait for the peer's own attempt instead of failing).
        self.status: str | None = None
        self._result: HandshakeResult | None = None
        if version == 6:
            self._send(
                struct.pack(">cQIH", b"N", flags, creation, len(self._name_bytes))
                + self._name_bytes
            )
        else:
            self._send(struct.pack(">cHI", b"n", 5, flags & _U32) + self._name_bytes)

    def __repr__(self) -> str:
        return f"<Initiator {self._local_name} -> {self._peer_name} {self._state}>"

    def data_to_send(self) -> bytes:
        if self._state == Step.SEND_NAME:
            self._state = Step.RECV_STATUS
        return super().data_to_send()

    def answer_alive(self, keep: bool) -> None:
        """Answer an ``AliveQuery``: ``True`` replaces the peer's old connection to us.

        ``False`` gives this attempt up: the machine fails with ``NAME_CLASH``
        (without raising) once the ``sfalse`` is queued.
        """
        if not self._awaiting_alive:
            raise LocalProtocolError("answer_alive is only valid after an AliveQuery")
        self._awaiting_alive = False
        if keep:
            self._send(b"strue")
            self._state = Step.RECV_CHALLENGE
        else:
            self._send(b"sfalse")
            self._fail(
                HandshakeFailure.NAME_CLASH, "we keep the existing connection (alive: false)"
            )

    def _handler(self) -> Callable[[bytes], None] | None:
        if self._awaiting_alive:
            return None
        if self._state in (Step.SEND_NAME, Step.RECV_STATUS):
            return self._recv_status
        if self._state == Step.RECV_CHALLENGE:
            return self._recv_challenge
        if self._state == Step.RECV_CHALLENGE_ACK:
            return self._recv_challenge_ack
        return None

    def _recv_status(self, message: bytes) -> None:
        if message[:1] != b"s":
            raise self._malformed(f"recv_status: expected 's', got {message[:1]!r}")
        status = message[1:]
        if status in STATUS_BYTES:
            self.status = status.decode()
        if status in (b"ok", b"ok_simultaneous"):
            self._state = Step.RECV_CHALLENGE
        elif status == b"nok":
            raise self._fail(HandshakeFailure.NAME_CLASH, "peer keeps its own connection attempt")
        elif status == b"not_allowed":
            raise self._fail(HandshakeFailure.NOT_ALLOWED, "peer does not allow the connection")
        elif status == b"alive":
            self._state = Step.RECV_STATUS
            self._awaiting_alive = True
            self._events.append(AliveQuery())
        elif status.startswith(b"named:"):
            raise self._malformed("recv_status: a dynamic name we never asked for")
        else:
            raise self._malformed(f"recv_status: unknown status {status[:32]!r}")

    def _recv_challenge(self, message: bytes) -> None:
        tag = message[:1]
        if tag == b"n":
            raise self._fail(
                HandshakeFailure.VERSION_MISMATCH,
                "peer sent a version-5 challenge: it predates OTP 23",
            )
        if tag != b"N" or len(message) < 19:
            raise self._malformed("recv_challenge: not an 'N' challenge")
        flags, peer_challenge, creation, name_len = struct.unpack_from(">QIIH", message, 1)
        name = self._name_at(message, 19, name_len, "recv_challenge")
        if name != self._peer_name:
            raise self._fail(
                HandshakeFailure.NAME_CLASH,
                f"dialled {self._peer_name} but {name!r} answered",
            )
        peer_flags = expand_digest(flags)
        self._check_peer_flags(name, peer_flags)
        self._result = HandshakeResult(
            peer_name=name,
            peer_flags=peer_flags,
            flags=self._flags & peer_flags,
            peer_creation=creation,
            version=self._version,
        )
        if self._version == 5:
            self._send(struct.pack(">cII", b"c", self._flags >> 32, self._creation))
        self._send(
            struct.pack(">cI", b"r", self._challenge) + compute_digest(self._cookie, peer_challenge)
        )
        self._state = Step.RECV_CHALLENGE_ACK

    def _recv_challenge_ack(self, message: bytes) -> None:
        if message[:1] != b"a" or len(message) != 17:
            raise self._malformed("recv_challenge_ack: not a 17-byte 'a' message")
        if not hmac.compare_digest(message[1:], compute_digest(self._cookie, self._challenge)):
            raise self._fail(
                HandshakeFailure.BAD_COOKIE,
                f"{self._peer_name} answered our challenge wrongly (cookies differ)",
            )
        assert self._result is not None
        self._state = Step.CONNECTED
        self._events.append(Established(self._result))


class Acceptor(_Handshake):
    """The side that accepted: recv_name, send_status, recv_challenge_reply.

    Between ``StatusRequired`` and ``send_status`` the machine waits in
    ``"send_status"``; after an ``alive`` status it waits in ``"recv_status"``
    for the peer's ``true``/``false``; a version-5 opening adds
    ``"recv_complement"`` before ``"recv_challenge_reply"``.
    """

    def __init__(
        self,
        *,
        local_name: str,
        cookie: bytes,
        flags: int,
        creation: int,
        challenge: int | None = None,
        dynamic_alive: Callable[[], str] | None = None,
        length_prefix: int = 2,
    ) -> None:
        super().__init__(
            local_name=local_name,
            cookie=cookie,
            flags=flags,
            creation=creation,
            challenge=challenge,
            state=Step.RECV_NAME,
            length_prefix=length_prefix,
        )
        self._peer_name = ""
        self._peer_flags = 0
        self._peer_creation = 0
        self._version = 6
        self._dynamic = False
        self._dynamic_alive = dynamic_alive or (lambda: f"anon{secrets.token_hex(6)}")

    def __repr__(self) -> str:
        return f"<Acceptor {self._local_name} <- {self._peer_name or '?'} {self._state}>"

    def send_status(self, status: str) -> None:
        """Answer a ``StatusRequired`` with one of ``STATUSES``.

        ``ok``/``ok_simultaneous`` go on with the challenge; ``nok`` and
        ``not_allowed`` are queued and fail the machine without raising (the
        runtime closes after writing them); ``alive`` waits for the peer's answer.
        """
        if self._state != Step.SEND_STATUS:
            raise LocalProtocolError(f"send_status is not valid in state {self._state}")
        if status not in STATUSES:
            raise LocalProtocolError(
                f"unknown status {status!r}; expected one of {sorted(STATUSES)}"
            )
        if self._dynamic and status in ("ok", "ok_simultaneous"):
            named = self._peer_name.encode("utf-8")
            self._send(b"snamed:" + struct.pack(">H", len(named)) + named
                       + struct.pack(">I", self._peer_creation))
        else:
            self._send(b"s" + status.encode("ascii"))
        if status in ("ok", "ok_simultaneous"):
            self._send_challenge()
        elif status == "nok":
            self._fail(HandshakeFailure.NAME_CLASH, "we keep our own connection attempt (nok)")
        elif status == "not_allowed":
            self._fail(
                HandshakeFailure.NOT_ALLOWED, f"we refused {self._peer_name!r} (not_allowed)"
            )
        else:
            self._state = Step.RECV_STATUS

    def _handler(self) -> Callable[[bytes], None] | None:
        if self._state == Step.RECV_NAME:
            return self._recv_name
        if self._state == Step.RECV_STATUS:
            return self._recv_status
        if self._state == Step.RECV_COMPLEMENT:
            return self._recv_complement
        if self._state == Step.RECV_CHALLENGE_REPLY:
            return self._recv_challenge_reply
        return None

    def _refuse(self, failure: HandshakeFailure, detail: str) -> HandshakeError:
        """Queue ``snot_allowed`` so the peer learns it was refused, then fail."""
        self._send(b"snot_allowed")
        return self._fail(failure, detail)

    def _recv_name(self, message: bytes) -> None:
        tag = message[:1]
        if tag == b"N" and len(message) >= 15:
            flags, creation, name_len = struct.unpack_from(">QIH", message, 1)
            name = self._name_at(message, 15, name_len, "recv_name")
            version = 6
        elif tag == b"n" and len(message) >= 7:
            version, flags = struct.unpack_from(">HI", message, 1)
            name = self._name_at(message, 7, len(message) - 7, "recv_name")
            creation = 0
            if version != 5 or not flags & DFlag.HANDSHAKE_23:
                raise self._refuse(
                    HandshakeFailure.VERSION_MISMATCH,
                    f"{name!r} opened with version {version} without HANDSHAKE_23 (pre-OTP 23)",
                )
        else:
            raise self._malformed("recv_name: not a well-formed 'N' or 'n' send_name")
        peer_flags = expand_digest(flags)
        self._dynamic = bool(peer_flags & DFlag.NAME_ME)
        if self._dynamic:
            # A node started as undefined@Host sends only its host and asks us
            # to name it; it adopts the name and creation our 'named:' gives.
            if version != 6 or not name or "@" in name:
                raise self._refuse(
                    HandshakeFailure.MALFORMED, f"{name!r} asked for a name without a bare host"
                )
            name = f"{self._dynamic_alive()}@{name}"
            creation = secrets.randbits(32) or 1
        alive, sep, host = name.partition("@")
        if not sep or not alive or not host or "@" in host:
            raise self._malformed(f"recv_name: {name!r} is not a name@host node name")
        lack = missing(peer_flags, REQUIRED_OF_PEER)
        if lack:
            raise self._refuse(
                HandshakeFailure.FLAGS_MISSING, f"{name!r} lacks mandatory flags {describe(lack)}"
            )
        self._peer_name = name
        self._peer_flags = peer_flags
        self._peer_creation = creation
        self._version = version
        self._state = Step.SEND_STATUS
        self._events.append(StatusRequired(name, peer_flags, creation))

    def _send_challenge(self) -> None:
        # A node we name checks that NAME_ME survives the flag intersection
        # before it adopts the name, so we echo the bit to it.
        flags = self._flags | DFlag.NAME_ME if self._dynamic else self._flags
        self._send(
            struct.pack(
                ">cQIIH", b"N", flags, self._challenge, self._creation, len(self._name_bytes)
            )
            + self._name_bytes
        )
        self._state = Step.RECV_COMPLEMENT if self._version == 5 else Step.RECV_CHALLENGE_REPLY

    def _recv_status(self, message: bytes) -> None:
        if message == b"strue":
            self._send_challenge()
        elif message == b"sfalse":
            raise self._fail(
                HandshakeFailure.NAME_CLASH, f"{self._peer_name!r} keeps its existing connection"
            )
        else:
            raise self._malformed("recv_status: expected 'strue' or 'sfalse'")

    def _recv_complement(self, message: bytes) -> None:
        if message[:1] != b"c" or len(message) != 9:
            raise self._malformed("recv_complement: not a 9-byte 'c' message")
        flags_high, creation = struct.unpack_from(">II", message, 1)
        peer_flags = expand_digest(self._peer_flags | flags_high << 32)
        self._check_peer_flags(self._peer_name, peer_flags)
        self._peer_flags = peer_flags
        self._peer_creation = creation
        self._state = Step.RECV_CHALLENGE_REPLY

    def _recv_challenge_reply(self, message: bytes) -> None:
        if message[:1] != b"r" or len(message) != 21:
            raise self._malformed("recv_challenge_reply: not a 21-byte 'r' message")
        (peer_challenge,) = struct.unpack_from(">I", message, 1)
        if not hmac.compare_digest(message[5:], compute_digest(self._cookie, self._challenge)):
            raise self._fail(
                HandshakeFailure.BAD_COOKIE,
                f"{self._peer_name!r} answered our challenge wrongly (cookies differ)",
            )
        self._send(b"a" + compute_digest(self._cookie, peer_challenge))
        self._state = Step.CONNECTED
        self._events.append(Established(HandshakeResult(
            peer_name=self._peer_name,
            peer_flags=self._peer_flags,
            flags=self._flags & self._peer_flags,
            peer_creation=self._peer_creation,
            version=self._version,
        )))
