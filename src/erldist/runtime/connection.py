"""One distribution connection: the asyncio side of the sans-I/O machines.

A ``Connection`` is an ``asyncio.Protocol``: bytes from the socket go into the
handshake machine, then into the frame reader; each decoded control message
becomes a signal handed to its owner (the peer table), which knows it only
through the ``ConnectionOwner`` methods. The first frame sent after a read
is written at once (a lone request or reply waits for nothing and schedules
nothing); the frames after it are appended to one buffer and written
together when the loop turn ends, so a burst of sends costs two syscalls,
not one each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from erldist import telemetry
from erldist.config import Config
from erldist.errors import ProtocolError, RemoteProtocolError
from erldist.protocol import flags, signals
from erldist.protocol.frame_batch import BatchItem, FrameBatch, new_frame_batch_decoder
from erldist.protocol.framing import TICK, DistEncoder, UndecodableMessage, payload_into
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
from erldist.runtime.busy_wait import BusyWait
from erldist.term import Atom, Pid, Reference, encode

log = logging.getLogger("erldist.connection")

#: Seconds of frame handling before the rest of a read waits for the next loop turn.
WORK_SLICE = 0.005
#: Decoding cost (bytes, compressed terms counted inflated) of one batch call.
READ_BUDGET = 64 * 1024
#: A message costing more is decoded on a worker thread: the interpreter hands
#: the loop thread its turn every few milliseconds, where one decoding call on
#: the loop would hold it for the whole message (tens of milliseconds for a
#: million-element list natively, hundreds in pure Python). The native decoder
#: lets go of the interpreter at bounded intervals while it builds a huge term
#: for the same reason.
OFFLOAD_AT = 64 * 1024
#: Seconds an accepted socket may stay silent before its handshake is given up.
SILENT_DEADLINE = 2.0
#: Flush at once when a batch grows past this, instead of waiting for the turn.
_FLUSH_AT = 256 * 1024
#: How many control encodings a connection keeps for sending.
_SEND_HEADERS = 256
_U32 = struct.Struct(">I")
#: Signals nobody waits for: written with the next frame that goes out, at the latest
#: when the loop turn ends.
_LAZY = signals.DemonitorSignal
#: No sender or receiver is this: the route cache starts empty.
_NOBODY = object()
#: A payload of known encoded size, framed once to learn a control's header.
_PROBE = 0
_PROBE_SIZE = len(encode(_PROBE)) - 1  # less the version byte


class _Headers:
    """The bytes that start every frame of a given control term, on one connection.

    ``header(ctrl)`` is what ``DistEncoder`` writes before a payload: the
    distribution header or pass-through byte, the control term, and the
    payload's version byte where the mode has one, so that the payload
    follows as ``encode_into`` writes it. Sending reuses it instead of
    encoding the control again.
    """

    def __init__(self, encoder: DistEncoder) -> None:
        self._encoder = encoder
        self._sending: dict[tuple[Any, ...], bytes] = {}
        self._last_sent: tuple[Any, ...] | None = None

    def header(self, ctrl: tuple[Any, ...]) -> bytes:
        """The bytes before the payload in every frame carrying ``ctrl``."""
        return self._encoder.frame(ctrl, _PROBE)[_U32.size : -_PROBE_SIZE]

    def frame_into(self, out: bytearray, ctrl: tuple[Any, ...], payload: Any) -> bytes | None:
        """Append the frame of ``ctrl`` and ``payload`` to ``out``, as
        ``DistEncoder.frame_into`` would; the header it reused, if any."""
        header = self._send_header(ctrl) if ctrl[0] in signals.ROUTE_OPS else None
        if header is None:
            self._encoder.frame_into(out, ctrl, payload)
            return None
        payload_into(out, header, payload)
        return header

    def _send_header(self, ctrl: tuple[Any, ...]) -> bytes | None:
        """The cached header of ``ctrl``, made when it follows itself in a row."""
        header = self._sending.get(ctrl)
        if header is None and ctrl == self._last_sent:
            if len(self._sending) >= _SEND_HEADERS:
                self._sending.clear()
            header = self._sending[ctrl] = self.header(ctrl)
        self._last_sent = ctrl
        return header


_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _decode_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The one worker thread that decodes costly frames (one at a time, process-wide)."""
    global _POOL
    if _POOL is None:
        _POOL = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="erldist-decode")
    return _POOL


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

    @property
    def on_signal(self) -> Callable[[signals.Signal, Connection], None]:
        """Where each signal this connection reads goes (the router's dispatch):
        called as ``on_signal(signal, conn)``."""
        ...

    @property
    def busy_wait(self) -> BusyWait:
        """The node's spinner, told of every read and write (see ``busy_wait``)."""
        ...


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
        self._touch = owner.busy_wait.touch
        self._machine: Initiator | Acceptor | None = machine
        #: Kept after the handshake ends, so the node can read its recv_status.
        self.initiator = machine if isinstance(machine, Initiator) else None
        self.peer_name = peer_name
        self.result: HandshakeResult | None = None
        self.established: asyncio.Future[HandshakeResult] = self.loop.create_future()
        self.closed: asyncio.Future[str] = self.loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._batch: FrameBatch | None = None
        self._headers: _Headers | None = None
        #: The negotiated flags, read per frame sent (0 until the handshake completes).
        self._flags = 0
        self._out = bytearray()
        self._flush_scheduled = False
        #: A frame went out at once since the last read or flush: batch the next.
        self._batching = False
        self._wrote = False
        #: When the peer was last heard from, as of the last tick (OTP, too, notices
        #: silence tick by tick): a read only sets the flag, it reads no clock.
        self._last_read = self.loop.time()
        self._read_since_tick = False
        self._ticker: asyncio.TimerHandle | None = None
        self._tick_interval = 15.0
        self._silence_limit = 60.0
        self._close_reason = "connection_closed"
        self._aborted = False
        #: Closed or closing at our own request (checked between the signals of a read).
        self._closing = False
        self._paused = False
        self._resumed: list[asyncio.Future[None]] = []
        self.handshake_deadline: asyncio.TimerHandle | None = None
        #: Messages whose terms could not be decoded (dropped, link kept).
        self.dropped = 0
        #: Signals whose handling raised (contained, link kept).
        self.failed = 0
        #: Messages decoded but held back while a full mailbox pushes back on us.
        self._items: list[BatchItem] = []
        #: Bytes read while held (not yet given to the decoder).
        self._raw: list[bytes] = []
        #: The last message route sent along (sender, receiver) and its frame header.
        self._route_out: tuple[object, object, bytes] = (_NOBODY, _NOBODY, b"")
        #: The control term of the last message received, and its sender and receiver.
        self._route_ctrl: object = None
        self._route: tuple[Pid | None, Pid | Atom | Reference] = (None, Atom(""))
        self._holds = 0
        self._started = self.loop.time()
        #: Whether the peer has sent anything yet.
        self.heard = False
        #: Times a full mailbox made this connection stop reading.
        self.pauses = 0
        #: Times one read's frames took more than a work slice and were split.
        self.slices = 0
        #: Costly frames decoded on the worker thread.
        self.offloaded = 0

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transports have the
        # Transport methods without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        if self._aborted:
            self.transport.abort()  # aborted before its socket was handed over
            return
        self._arm_handshake_deadline()
        self._pump()

    def data_received(self, data: bytes) -> None:
        self._read_since_tick = True
        self._batching = False
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
        self._closing = True
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
        self._items = []
        self._raw = []
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
        self._flags = result.flags
        self.peer_name = result.peer_name
        config = self.owner.config
        self._batch = new_frame_batch_decoder(result.flags, config.decode_limits,
                                              config.max_message_bytes)
        self._headers = _Headers(DistEncoder(result.flags))
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
        self._touch()
        if self._holds:
            self._raw.append(data)  # reading is paused; this was read before it was
            return
        assert self._batch is not None
        self._items = self._batch.feed(data, READ_BUDGET)
        self._work(time.perf_counter())

    def _work(self, start: float) -> None:
        """Hand on what was decoded, then decode more, until done or told to hold.

        Each batch call decodes at most ``READ_BUDGET`` of cost. Past
        ``WORK_SLICE`` seconds the rest waits (reading paused meanwhile) as
        long as the work took, so a peer's burst of costly frames gets at most
        half of the loop, whatever it sends, and cannot keep it from every
        other connection, tick and process.
        """
        batch = self._batch
        assert batch is not None
        while True:
            if self._items and not self._hand_on():
                return  # held, or closed
            if self._raw:
                data = b"".join(self._raw)
                self._raw = []
                self._items = batch.feed(data, READ_BUDGET)
                continue
            cost = batch.next_cost
            if not cost:
                return
            spent = time.perf_counter() - start
            if spent > WORK_SLICE:
                self.slices += 1
                self._hold()
                self.loop.call_later(spent, self.resume_delivery)
                return
            if cost > OFFLOAD_AT:
                self._offload(batch, cost)
                return
            self._items = batch.feed(b"", READ_BUDGET)

    def _offload(self, batch: FrameBatch, cost: int) -> None:
        """Decode the next (costly) frame on the worker thread, holding this link meanwhile.

        Nothing else touches ``batch`` until it is done: reading is paused and
        what was already read waits in ``_raw``. The link then waits as long as
        the decoding took, as a work slice does.
        """
        self.offloaded += 1
        self._hold()
        started = time.perf_counter()
        future = _decode_pool().submit(batch.feed, b"", cost)

        def done(fut: concurrent.futures.Future[list[BatchItem]]) -> None:
            if self.transport is None or self.transport.is_closing():
                return
            try:
                self._items = fut.result()
            except ProtocolError as exc:
                log.warning("closing connection to %s: %s", self.peer_name, exc)
                self.close("protocol_error")
                return
            except Exception:
                self.failed += 1
                log.exception("closing connection to %s after an internal error",
                              self.peer_name)
                self.close("internal_error")
                return
            self.loop.call_later(time.perf_counter() - started, self.resume_delivery)

        def back_on_the_loop(fut: concurrent.futures.Future[list[BatchItem]]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(done, fut)

        future.add_done_callback(back_on_the_loop)

    def _hand_on(self) -> bool:
        """Turn decoded items into signals for the owner; False when held or closed."""
        items = self._items
        on_signal = self.owner.on_signal
        for index, item in enumerate(items):
            if self._holds:
                self._items = items[index:]
                return False
            if type(item) is tuple:
                ctrl, payload = item
                if ctrl is self._route_ctrl:
                    signal: signals.Signal | None = signals.MessageSignal(*self._route, payload)
                else:
                    signal = signals.from_terms(ctrl, payload)
                    if type(signal) is signals.MessageSignal:
                        # The decoders hand back the same control object for the
                        # same control bytes: the next message along this route
                        # skips parsing (see ``DistDecoder._learn``).
                        self._route_ctrl = ctrl
                        self._route = (signal.sender, signal.to)
                if signal is not None:
                    try:
                        on_signal(signal, self)
                    except Exception:
                        # A bug in handling one signal must not take the link down.
                        self.failed += 1
                        log.exception("handling %s from %s failed", type(signal).__name__,
                                      self.peer_name)
            elif isinstance(item, UndecodableMessage):
                self.dropped += 1
                log.warning("dropped a message from %s (%d so far): %s", self.peer_name,
                            self.dropped, item)
                telemetry.emit(telemetry.MessageDropped(self.peer_name or "?", "undecodable"))
            else:
                assert isinstance(item, RemoteProtocolError)
                log.warning("closing connection to %s: %s", self.peer_name, item)
                self.close("protocol_error")
            if self._closing:
                self._items = []
                return False
        self._items = []
        return True

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
        try:
            self._work(time.perf_counter())
        except ProtocolError as exc:
            log.warning("closing connection to %s: %s", self.peer_name, exc)
            self.close("protocol_error")
            return
        if not self._holds and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _tick(self) -> None:
        now = self.loop.time()
        if self._read_since_tick or self._holds:  # while held, the peer did not go quiet
            self._last_read = now
            self._read_since_tick = False
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
        """Write ``signal`` in the wire form this peer negotiated.

        A message along the same route as the last one (same sender, same
        receiver) reuses that one's frame header without building its control
        tuple. A demonitor waits for the turn's end (or the next frame that
        goes out at once): nothing waits for it, and a call's demonitor then
        leaves in one write with the next call's monitor and request.
        """
        headers = self._headers
        if headers is None or self._closing:
            return  # (a link the transport closed on its own: ``_write`` drops it)
        if type(signal) is signals.MessageSignal:
            route = self._route_out
            # By identity: a sender's pid and a name's atom (``Router.resolve``
            # keeps one per name) are the same objects from one send to the next.
            if route[0] is signal.sender and route[1] is signal.to:
                payload_into(self._out, route[2], signal.message)
                self._push(True)
                return
            header = headers.frame_into(self._out, *signals.to_terms(signal, self._flags))
            if header is not None:
                self._route_out = (signal.sender, signal.to, header)
            self._push(True)
            return
        headers.frame_into(self._out, *signals.to_terms(signal, self._flags))
        self._push(type(signal) is not _LAZY)

    def send_signals(self, *sent: signals.Signal) -> None:
        """Write several signals in one write (a call's monitor and request)."""
        headers = self._headers
        if headers is None or self._closing:
            return
        for signal in sent:
            headers.frame_into(self._out, *signals.to_terms(signal, self._flags))
        self._push(True)

    def _push(self, urgent: bool) -> None:
        """Write now, or at the end of the loop turn.

        The first urgent frame after a read or a flush goes out at once (with
        any frame waiting before it), so a lone request or reply waits for no
        turn and schedules nothing; the frames after it are batched into one
        write when the turn ends, so a burst of sends costs two syscalls, not
        one each. Reads and flushes start a new batch.
        """
        if urgent and not self._batching:
            self._batching = True
            self._write()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        elif len(self._out) >= _FLUSH_AT:
            self._write()

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._batching = False
        self._write()

    def _write(self) -> None:
        if self._out and self.transport is not None and not self.transport.is_closing():
            self._touch()
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
        self._closing = True
        if not self.transport.is_closing():
            self._close_reason = reason
            self._flush()
            self.transport.close()

    def abort(self, reason: str) -> None:
        self._close_reason = reason
        self._closing = True
        if self.transport is not None:
            self.transport.abort()
        else:
            self._aborted = True  # connection_made closes it, writing nothing

    @property
    def visible(self) -> bool:
        """A published (visible) peer, as opposed to a hidden one."""
        return self.result is not None and bool(self.result.flags & flags.DFlag.PUBLISHED)

    @property
    def flags(self) -> int:
        """The negotiated flags (0 until the handshake completes)."""
        return self._flags

    def __repr__(self) -> str:
        state = "up" if self.result is not None else "handshake"
        return f"<Connection {self.peer_name or '?'} {state}>"

