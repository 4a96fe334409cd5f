"""One distribution connection: the asyncio side of the sans-I/O machines.

A ``Connection`` is an ``asyncio.Protocol``: bytes from the socket go into the
handshake machine, then into the frame reader; decoded control messages go to
the node. Outgoing frames are appended to one buffer and written once per
event-loop turn, so a burst of sends costs one syscall, not one each.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from erldist.errors import ProtocolError
from erldist.protocol import control
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
)

if TYPE_CHECKING:
    from erldist.runtime.node import Node

log = logging.getLogger("erldist.connection")

#: Flush at once when a batch grows past this, instead of waiting for the turn.
_FLUSH_AT = 256 * 1024


class Connection(asyncio.Protocol):
    """A peer link, from TCP accept/connect to close."""

    def __init__(
        self,
        node: Node,
        machine: Initiator | Acceptor,
        *,
        peer_name: str | None = None,
        refuse: bool = False,
    ) -> None:
        self.node = node
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
        self._encoder: DistEncoder | None = None
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
        self._refuse = refuse

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._refuse:
            self._machine = None
            transport.abort()
            return
        self._arm_handshake_deadline()
        self._pump()

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
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
        if self.result is not None:
            self.node._connection_down(self, self._close_reason)

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
        timeout = self.node.config.connect_timeout
        self.handshake_deadline = self.loop.call_later(timeout, self._handshake_timed_out, timeout)

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
                status = self.node._status_for(self, event.peer_name)
                assert isinstance(machine, Acceptor)
                machine.send_status(status)
            elif isinstance(event, AliveQuery):
                # The peer still holds a connection to us. Replace it only if we
                # hold none: a stale link on its side, not a race we already won.
                assert isinstance(machine, Initiator)
                machine.answer_alive(self.node.connection(self.peer_name or "") is None)
            elif isinstance(event, Established):
                self.transport.write(machine.data_to_send())
                self._enter_connected(event.result, machine.leftover)
                return
        if machine.state == "failed" and machine.error is not None:
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
        self.node._handshake_failed(self, exc)
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
        self._reader = FrameReader()
        self._decoder = DistDecoder(result.flags)
        self._encoder = DistEncoder(result.flags)
        ticktime = self.node.config.net_ticktime
        self._tick_interval = ticktime / 4
        self._silence_limit = ticktime
        self._last_read = self.loop.time()
        self._ticker = self.loop.call_later(self._tick_interval, self._tick)
        if not self.node._connection_up(self):
            return
        if not self.established.done():
            self.established.set_result(result)
        if leftover:
            self.data_received(leftover)

    # --- connected phase -------------------------------------------------------------

    def _receive_frames(self, data: bytes) -> None:
        assert self._reader is not None and self._decoder is not None
        for frame in self._reader.feed(data):
            if frame is None:
                continue
            try:
                decoded = self._decoder.decode(frame)
            except UndecodableMessage as exc:
                self.dropped += 1
                log.warning("dropped a message from %s (%d so far): %s", self.peer_name,
                            self.dropped, exc)
                continue
            if decoded is None:
                continue
            ctrl, payload = decoded
            msg = control.parse(ctrl, payload)
            self.node._dispatch(self, msg)
            if self.transport is None or self.transport.is_closing():
                return

    def _tick(self) -> None:
        now = self.loop.time()
        if now - self._last_read >= self._silence_limit:
            log.info("%s not responding for %.1f s: net_tick_timeout", self.peer_name,
                     now - self._last_read)
            self.close("net_tick_timeout")
            return
        if not self._wrote and self.transport is not None:
            self.transport.write(TICK)
        self._wrote = False
        self._ticker = self.loop.call_later(self._tick_interval, self._tick)

    def send(self, msg: control.ControlMessage) -> None:
        """Queue one control message (and its payload) for the next flush."""
        if self._encoder is None or self.transport is None or self.transport.is_closing():
            return
        ctrl, payload = control.to_terms(msg)
        self._encoder.frame_into(self._out, ctrl, payload)
        if len(self._out) >= _FLUSH_AT:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes(self._out))
            self._wrote = True
        self._out.clear()

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
    def flags(self) -> int:
        """The negotiated flags (0 until the handshake completes)."""
        return self.result.flags if self.result is not None else 0

    def __repr__(self) -> str:
        state = "up" if self.result is not None else "handshake"
        return f"<Connection {self.peer_name or '?'} {state}>"

