"""One distribution connection: the asyncio side of the sans-I/O machines.

A ``Connection`` is an ``asyncio.Protocol``: bytes from the socket go into the
handshake machine, then into the frame reader; each decoded control message
becomes a signal handed to its owner (the peer table), which knows it only
through the ``ConnectionOwner`` methods. The first frame sent in an
event-loop turn is written at once (a lone request or reply waits for
nothing); the frames after it in the same turn are appended to one buffer
and written together when the turn ends, so a burst of sends costs two syscalls, not one each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from erldist import telemetry
from erldist.config import Config
from erldist.errors import DecodeError, LocalProtocolError, ProtocolError
from erldist.protocol import control, flags, signals
from erldist.protocol.framing import (
    TICK,
    DistDecoder,
    DistEncoder,
    FrameReader,
    UndecodableMessage,
)
from erldist.protocol.handshake import (
    Acceptor,
    AliveQuery,
    Established,
    HandshakeError,
    HandshakeFailure,
    HandshakeResult,
    Initiator,
    StatusRequired,
    Step,
)
from erldist.term import decode_prefix, encode, encode_into

log = logging.getLogger("erldist.connection")

#: Seconds of frame handling before the rest of a read waits for the next loop turn.
WORK_SLICE = 0.005
#: Seconds an accepted socket may stay silent before its handshake is given up.
SILENT_DEADLINE = 2.0
#: Flush at once when a batch grows past this, instead of waiting for the turn.
_FLUSH_AT = 256 * 1024
#: Messages whose control term is the same from one message to the next (one
#: sender, one receiver): the control's encoding is reused both ways.
_MESSAGES = (control.Send, control.RegSend, control.SendSender)
#: How many control encodings a connection keeps for sending, and for receiving.
_SEND_HEADERS = 256
_RECEIVE_HEADERS = 4
_U32 = struct.Struct(">I")
#: A payload of known encoded size, framed once to learn a control's header.
_PROBE = 0
_PROBE_SIZE = len(encode(_PROBE)) - 1  # less the version byte


class _Headers:
    """The bytes that start every frame of a given control term, on one connection.

    ``header(ctrl)`` is what ``DistEncoder`` writes before a payload: the
    distribution header or pass-through byte, the control term, and the
    payload's version byte where the mode has one, so that the payload
    follows as ``encode_into`` writes it. Sending reuses it instead of
    encoding the control again. Receiving uses it the other way: a frame
    that starts with the header of a control term seen before *is* that
    control term and a payload (terms are self-delimiting, and the encoder
    and decoder are inverses), so only the payload is decoded. A peer that
    encodes the control otherwise simply never matches.
    """

    def __init__(self, encoder: DistEncoder, decoder: DistDecoder) -> None:
        self._encoder = encoder
        self._decoder = decoder
        self._sending: dict[tuple[Any, ...], bytes] = {}
        self._last_sent: tuple[Any, ...] | None = None
        self._receiving: list[tuple[bytes, Callable[..., control.ControlMessage]]] = []
        self._last_received: tuple[Any, ...] | None = None

    def header(self, ctrl: tuple[Any, ...]) -> bytes:
        """The bytes before the payload in every frame carrying ``ctrl``."""
        return self._encoder.frame(ctrl, _PROBE)[_U32.size : -_PROBE_SIZE]

    def frame_into(self, out: bytearray, msg: control.ControlMessage) -> None:
        """Append ``msg``'s frame to ``out``, as ``DistEncoder.frame_into`` would."""
        ctrl, payload = control.to_terms(msg)
        header = self._send_header(ctrl) if isinstance(msg, _MESSAGES) else None
        if header is None:
            self._encoder.frame_into(out, ctrl, payload)
            return
        start = len(out)
        out += b"\0\0\0\0"
        out += header
        try:
            encode_into(out, payload)
            length = len(out) - start - _U32.size
            if length > 0xFFFFFFFF:
                raise LocalProtocolError(f"a {length}-byte message does not fit in one frame")
        except BaseException:
            del out[start:]
            raise
        _U32.pack_into(out, start, length)

    def _send_header(self, ctrl: tuple[Any, ...]) -> bytes | None:
        """The cached header of ``ctrl``, made when it follows itself in a row."""
        header = self._sending.get(ctrl)
        if header is None and ctrl == self._last_sent:
            if len(self._sending) >= _SEND_HEADERS:
                self._sending.clear()
            header = self._sending[ctrl] = self.header(ctrl)
        self._last_sent = ctrl
        return header

    def parse(self, frame: bytes) -> control.ControlMessage | None:
        """The message in ``frame`` if its control term is a known one, else None."""
        for header, make in self._receiving:
            if frame.startswith(header):
                try:
                    payload, end = decode_prefix(frame, len(header), limits=self._decoder.limits,
                                                 version_byte=False)
                except DecodeError:
                    return None  # the full decode reports it
                return make(message=payload) if end == len(frame) else None
        return None

    def learn(self, frame: bytes, ctrl: Any, msg: control.ControlMessage) -> None:
        """Remember ``ctrl``'s header when a message repeats the previous one's."""
        if not isinstance(msg, _MESSAGES):
            return
        if ctrl != self._last_received:
            self._last_received = ctrl
            return
        header = self.header(ctrl)
        if frame.startswith(header):
            fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)
                      if f.name != "message"}
            self._receiving.insert(0, (header, functools.partial(type(msg), **fields)))
            del self._receiving[_RECEIVE_HEADERS:]


class ConnectionOwner(Protocol):
    """What a connection tells, and asks of, the table that owns it."""

    @property
    def config(self) -> Config: ...

    def status_for(self, conn: Connection, peer: str) -> str:
        """The acceptor's answer to ``peer``'s send_name (``ok``, ``alive``, ...)."""
        ...

    def has_connection(self, peer: str) -> bool: ...

    def connection_up(self, conn: Connection) -> bool:
        """The handshake completed; False to close it at once (node stopping)."""
        ...

    def connection_down(self, conn: Connection, reason: str) -> None: ...

    def handshake_failed(self, conn: Connection, exc: HandshakeError) -> None: ...

    def on_signal(self, conn: Connection, signal: signals.Signal) -> None: ...


class Connection(asyncio.Protocol):
    """A peer link, from TCP accept/connect to close."""

    def __init__(
        self,
        owner: ConnectionOwner,
        machine: Initiator | Acceptor,
        *,
        peer_name: str | None = None,
    ) -> None:
        self.owner = owner
        self.loop = asyncio.get_running_loop()
        self._machine: Initiator | Acceptor | None = machine
        #: Kept after the handshake ends, so the node can read its recv_status.
        self.initiator = machine if isinstance(machine, Initiator) else None
        self.peer_name = peer_name
        self.result: HandshakeResult | None = None
        self.established: asyncio.Future[HandshakeResult] = self.loop.create_future()
        self.closed: asyncio.Future[str] = self.loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._reader: FrameReader | None = None
        self._decoder: DistDecoder | None = None
        self._headers: _Headers | None = None
        self._out = bytearray()
        self._flush_scheduled = False
        self._wrote = False
        self._last_read = self.loop.time()
        self._ticker: asyncio.TimerHandle | None = None
        self._tick_interval = 15.0
        self._silence_limit = 60.0
        self._close_reason = "connection_closed"
        self._paused = False
        self._resumed: list[asyncio.Future[None]] = []
        self.handshake_deadline: asyncio.TimerHandle | None = None
        #: Messages whose terms could not be decoded (dropped, link kept).
        self.dropped = 0
        #: Signals whose handling raised (contained, link kept).
        self.failed = 0
        #: Frames read but held back while a full mailbox pushes back on us.
        self._backlog: list[bytes | None] = []
        self._holds = 0
        self._started = self.loop.time()
        #: Whether the peer has sent anything yet.
        self.heard = False
        #: Times a full mailbox made this connection stop reading.
        self.pauses = 0
        #: Times one read's frames took more than a work slice and were split.
        self.slices = 0

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transports have the
        # Transport methods without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self._arm_handshake_deadline()
        self._pump()

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
        if not self.heard:
            self.heard = True
            self._arm_handshake_deadline()  # it spoke: the rest of the full budget
        try:
            if self._machine is not None:
                self._machine.receive_data(data)
                self._pump()
            else:
                self._receive_frames(data)
        except HandshakeError as exc:
            self._fail_handshake(exc)
        except ProtocolError as exc:
            log.warning("closing connection to %s: %s", self.peer_name, exc)
            self.close("protocol_error")
        except Exception:
            # Not the peer's protocol error but ours: it must not escape into
            # asyncio, and the link it happened on cannot be trusted further.
            self.failed += 1
            log.exception("closing connection to %s after an internal error", self.peer_name)
            self.close("internal_error")

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._machine = None
        if not self.established.done():
            self.established.set_exception(
                HandshakeError(HandshakeFailure.PEER_CLOSED, "closed during the handshake")
            )
            self.established.exception()
        self._stop_timers()
        for fut in self._resumed:
            if not fut.done():
                fut.set_result(None)
        if not self.closed.done():
            self.closed.set_result(self._close_reason)
        self._backlog = []
        if self.result is not None:
            self.owner.connection_down(self, self._close_reason)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        waiters, self._resumed = self._resumed, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # --- handshake -------------------------------------------------------------------

    def _arm_handshake_deadline(self) -> None:
        """The handshake's deadline, counted from the connection's start.

        An accepted socket that has sent nothing gets only ``SILENT_DEADLINE``:
        a crowd of idle sockets must not hold admission slots for the whole
        set-up budget. Once it speaks, the full ``connect_timeout`` applies.
        """
        if self.handshake_deadline is not None:
            self.handshake_deadline.cancel()
        timeout = self.owner.config.connect_timeout
        if not self.heard and isinstance(self._machine, Acceptor):
            timeout = min(timeout, SILENT_DEADLINE)
        delay = max(0.0, self._started + timeout - self.loop.time())
        self.handshake_deadline = self.loop.call_later(delay, self._handshake_timed_out, timeout)

    def _handshake_timed_out(self, timeout: float) -> None:
        if self._machine is not None:
            self._fail_handshake(
                HandshakeError(HandshakeFailure.TIMED_OUT, f"no handshake within {timeout:g} s")
            )

    def _pump(self) -> None:
        """Write what the handshake machine queued and act on its events."""
        machine = self._machine
        assert machine is not None and self.transport is not None
        while True:
            out = machine.data_to_send()
            if out:
                self.transport.write(out)
            event = machine.next_event()
            if event is None:
                break
            if isinstance(event, StatusRequired):
                self.peer_name = event.peer_name
                status = self.owner.status_for(self, event.peer_name)
                assert isinstance(machine, Acceptor)
                machine.send_status(status)
            elif isinstance(event, AliveQuery):
                # The peer still holds a connection to us. Replace it only if we
                # hold none: a stale link on its side, not a race we already won.
                assert isinstance(machine, Initiator)
                machine.answer_alive(not self.owner.has_connection(self.peer_name or ""))
            elif isinstance(event, Established):
                self.transport.write(machine.data_to_send())
                self._enter_connected(event.result, machine.leftover)
                return
        if machine.state is Step.FAILED and machine.error is not None:
            self._fail_handshake(machine.error)

    def _fail_handshake(self, exc: HandshakeError) -> None:
        machine = self._machine
        if machine is None:
            return
        self._machine = None
        refusal = machine.data_to_send()  # e.g. 'snot_allowed': the peer learns why
        if refusal and self.transport is not None:
            self.transport.write(refusal)
        if self.handshake_deadline is not None:
            self.handshake_deadline.cancel()
        self.owner.handshake_failed(self, exc)
        if not self.established.done():
            self.established.set_exception(exc)
            self.established.exception()  # reported through the node; none may await it
        self.close("handshake_failed")

    def _enter_connected(self, result: HandshakeResult, leftover: bytes) -> None:
        self._machine = None
        if self.handshake_deadline is not None:
            self.handshake_deadline.cancel()
        self.result = result
        self.peer_name = result.peer_name
        config = self.owner.config
        self._reader = FrameReader(config.max_message_bytes)
        self._decoder = DistDecoder(result.flags, config.decode_limits)
        self._headers = _Headers(DistEncoder(result.flags), self._decoder)
        ticktime = config.net_ticktime
        self._tick_interval = ticktime / 4
        self._silence_limit = ticktime
        self._last_read = self.loop.time()
        self._ticker = self.loop.call_later(self._tick_interval, self._tick)
        if not self.owner.connection_up(self):
            return
        if not self.established.done():
            self.established.set_result(result)
        if leftover:
            self.data_received(leftover)

    # --- connected phase -------------------------------------------------------------

    def _receive_frames(self, data: bytes) -> None:
        assert self._reader is not None
        frames = self._reader.feed(data)
        if self._holds:
            self._backlog += frames
        else:
            self._handle_frames(frames)

    def _handle_frames(self, frames: list[bytes | None]) -> None:
        """Turn frames into signals for the owner, until done or told to hold.

        Work on one read is cut into slices of ``WORK_SLICE`` seconds: past
        that, the rest waits (reading paused meanwhile) as long as the slice
        took, so a peer's burst of costly frames cannot keep the loop from
        every other connection, tick and process.
        """
        decoder, headers = self._decoder, self._headers
        assert decoder is not None and headers is not None
        start = time.perf_counter()
        for index, frame in enumerate(frames):
            if self._holds:
                self._backlog = frames[index:] + self._backlog
                return
            spent = time.perf_counter() - start
            if index and spent > WORK_SLICE:
                # The rest waits as long as this slice took: a peer whose frames are
                # costly gets at most half of the loop, whatever it sends.
                self._backlog = frames[index:] + self._backlog
                self.slices += 1
                self._hold()
                self.loop.call_later(spent, self.resume_delivery)
                return
            if frame is None:
                continue
            msg = headers.parse(frame)
            if msg is None:
                try:
                    decoded = decoder.decode(frame)
                except UndecodableMessage as exc:
                    self.dropped += 1
                    log.warning("dropped a message from %s (%d so far): %s", self.peer_name,
                                self.dropped, exc)
                    telemetry.emit(telemetry.MessageDropped(self.peer_name or "?",
                                                            "undecodable"))
                    continue
                if decoded is None:
                    continue
                ctrl, payload = decoded
                msg = control.parse(ctrl, payload)
                headers.learn(frame, ctrl, msg)
            signal = signals.from_control(msg)
            if signal is not None:
                try:
                    self.owner.on_signal(self, signal)
                except Exception:
                    # A bug in handling one signal must not take the link down.
                    self.failed += 1
                    log.exception("handling %s from %s failed", type(msg).__name__,
                                  self.peer_name)
            if self.transport is None or self.transport.is_closing():
                return

    # --- flow control (FlowSource) ---------------------------------------------------

    def pause_delivery(self) -> None:
        """A mailbox is full: stop reading and hold what was read until it drains."""
        self.pauses += 1
        self._hold()

    def _hold(self) -> None:
        self._holds += 1
        if self._holds == 1 and self.transport is not None:
            self.transport.pause_reading()

    def resume_delivery(self) -> None:
        if self._holds == 0:
            return
        self._holds -= 1
        if self._holds:
            return
        # Later, not now: the mailbox that resumed us is in the middle of a receive.
        self.loop.call_soon(self._release)

    def _release(self) -> None:
        if self._holds or self.transport is None or self.transport.is_closing():
            return
        backlog, self._backlog = self._backlog, []
        try:
            self._handle_frames(backlog)
        except ProtocolError as exc:
            log.warning("closing connection to %s: %s", self.peer_name, exc)
            self.close("protocol_error")
            return
        if not self._holds and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _tick(self) -> None:
        now = self.loop.time()
        if self._holds:
            self._last_read = now  # we stopped reading, the peer did not go quiet
        if now - self._last_read >= self._silence_limit:
            log.info("%s not responding for %.1f s: net_tick_timeout", self.peer_name,
                     now - self._last_read)
            self.close("net_tick_timeout")
            return
        if not self._wrote and self.transport is not None:
            self.transport.write(TICK)
        self._wrote = False
        self._ticker = self.loop.call_later(self._tick_interval, self._tick)

    def send_signal(self, signal: signals.Signal) -> None:
        """Write ``signal`` in the wire form this peer negotiated."""
        self.send(signals.to_control(signal, self.flags))

    def send(self, msg: control.ControlMessage) -> None:
        """Frame one control message (and its payload) and write it, or batch it."""
        if self._headers is None or self.transport is None or self.transport.is_closing():
            return
        self._headers.frame_into(self._out, msg)
        if not self._flush_scheduled:
            # The first frame of a loop turn goes out at once, so a lone request
            # or reply waits for no turn; the rest of the turn's frames are
            # batched into one write when the turn ends.
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
            self._write()
        elif len(self._out) >= _FLUSH_AT:
            self._write()

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._write()

    def _write(self) -> None:
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes(self._out))
            self._wrote = True
        self._out.clear()

    @property
    def congested(self) -> bool:
        """The socket asked us to pause writing; ``drain`` would wait."""
        return self._paused

    async def drain(self) -> None:
        """Wait until the socket accepts more (for senders that must not outrun it)."""
        if self._paused and self.transport is not None and not self.transport.is_closing():
            fut: asyncio.Future[None] = self.loop.create_future()
            self._resumed.append(fut)
            await fut

    # --- closing ---------------------------------------------------------------------

    def _stop_timers(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self.handshake_deadline is not None:
            self.handshake_deadline.cancel()

    def close(self, reason: str = "connection_closed") -> None:
        """Close the link; the node hears of it once, through ``connection_lost``."""
        if self.transport is None:
            return
        if not self.transport.is_closing():
            self._close_reason = reason
            self._flush()
            self.transport.close()

    def abort(self, reason: str) -> None:
        if self.transport is not None:
            self._close_reason = reason
            self.transport.abort()

    @property
    def visible(self) -> bool:
        """A published (visible) peer, as opposed to a hidden one."""
        return self.result is not None and bool(self.result.flags & flags.DFlag.PUBLISHED)

    @property
    def flags(self) -> int:
        """The negotiated flags (0 until the handshake completes)."""
        return self.result.flags if self.result is not None else 0

    def __repr__(self) -> str:
        state = "up" if self.result is not None else "handshake"
        return f"<Connection {self.peer_name or '?'} {state}>"

