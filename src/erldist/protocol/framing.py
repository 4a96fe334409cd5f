"""Connected-phase framing: 4-byte frames, ticks, pass-through and header mode.

After the handshake every message is ``Length:32`` plus ``Length`` bytes, and
a zero length is a tick. What a frame holds depends on the negotiated flags
(``flags.uses_header``), in both directions at once, because OTP kills a
connection that mixes the two:

- pass-through: ``112, 131 ControlTerm [, 131 PayloadTerm]``;
- header mode: ``131, 68, 0`` then the terms without version bytes, or a
  fragmented message: ``131, 69`` (first fragment) and ``131, 70``
  (continuations), reassembled here.

We never negotiate the atom cache, so a header must reference 0 cached atoms.
Every size a peer controls is capped: frames, reassembly bytes, sequences in
flight, and (through ``DecodeLimits``) the terms themselves.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, Final

from erldist.core import native_module
from erldist.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from erldist.protocol.flags import uses_header
from erldist.term import DecodeLimits, decode_prefix, encode_into

__all__ = [
    "DEFAULT_MAX_FRAME",
    "DEFAULT_MAX_REASSEMBLY",
    "NO_PAYLOAD",
    "TICK",
    "Deferred",
    "DistDecoder",
    "DistEncoder",
    "FrameReader",
    "payload_into",
]

#: The keep-alive frame: a zero length and nothing else.
TICK: Final = b"\x00\x00\x00\x00"

#: Default cap on one frame. OTP sends a whole message as one frame unless
#: fragments are negotiated, so this bounds the largest message a
#: non-fragmenting peer can send us; 128 MiB admits any sane message while
#: keeping one hostile length prefix from reserving gigabytes.
DEFAULT_MAX_FRAME: Final = 128 * 1024 * 1024

#: Default cap on bytes held for incomplete fragmented messages, all together.
DEFAULT_MAX_REASSEMBLY: Final = 64 * 1024 * 1024

_PASS_THROUGH: Final = 112
_VERSION: Final = 131
_HEADER: Final = 68
_FRAGMENT_FIRST: Final = 69
_FRAGMENT_NEXT: Final = 70
_COMPRESSED: Final = 80
_MAX_LENGTH: Final = 0xFFFFFFFF

_U32: Final = struct.Struct(">I")
_FRAGMENT_IDS: Final = struct.Struct(">QQ")
# 131, 69, SequenceId, FragmentId, NumberOfAtomCacheRefs
_FIRST_HEADER_SIZE: Final = 2 + _FRAGMENT_IDS.size + 1
# 131, 70, SequenceId, FragmentId
_NEXT_HEADER_SIZE: Final = 2 + _FRAGMENT_IDS.size

_PASS_THROUGH_PREFIX: Final = bytes([0, 0, 0, 0, _PASS_THROUGH, _VERSION])
_HEADER_PREFIX: Final = bytes([0, 0, 0, 0, _VERSION, _HEADER, 0])
#: The native core writes a whole frame in one call (``None``: the pure core).
_NATIVE: Final = native_module()


class _NoPayload(enum.Enum):
    NO_PAYLOAD = "NO_PAYLOAD"

    def __repr__(self) -> str:
        return "NO_PAYLOAD"


#: Stands for "this control message has no payload term". ``None`` cannot
#: serve: it is a term a payload could legitimately be.
NO_PAYLOAD: Final = _NoPayload.NO_PAYLOAD


class FrameReader:
    """Cut the connected-phase byte stream into frames.

    ``max_frame`` (default ``DEFAULT_MAX_FRAME``, 128 MiB) is checked as soon
    as a length prefix arrives, before any of the frame is buffered.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 0 <= max_frame <= _MAX_LENGTH:
            raise LocalProtocolError(f"max_frame must be 0..{_MAX_LENGTH}, got {max_frame}")
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | None]:
        """Every frame completed by ``data``, in order; ``None`` stands for a tick.

        Raises ``RemoteProtocolError`` for a frame longer than ``max_frame``.
        """
        if self._buf:
            self._buf += data
            source: bytes | bytearray | memoryview = self._buf
        else:
            source = data
        frames: list[bytes | None] = []
        pos = 0
        with memoryview(source) as view:
            end = view.nbytes
            while end - pos >= 4:
                (length,) = _U32.unpack_from(view, pos)
                if length > self.max_frame:
                    raise RemoteProtocolError(
                        f"{length}-byte frame is over the {self.max_frame}-byte cap"
                    )
                stop = pos + 4 + length
                if stop > end:
                    break
                frames.append(view[pos + 4 : stop].tobytes() if length else None)
                pos = stop
            if source is not self._buf:
                self._buf += view[pos:]
        if source is self._buf:
            del self._buf[:pos]
        return frames


@dataclass(slots=True)
class _Reassembly:
    """One fragmented message in flight: the fragment id expected next, the bytes so far."""

    next_id: int
    data: bytearray


class DistDecoder:
    """Turn frame payloads into ``(control_term, payload_term | NO_PAYLOAD)``.

    ``decode`` returns ``None`` for a fragment that does not complete its
    message. Fragments are reassembled per sequence id (different senders'
    messages interleave); ``max_fragment_sequences`` caps how many may be in
    flight and ``max_reassembly`` the bytes they hold together.
    """

    def __init__(
        self,
        flags: int,
        limits: DecodeLimits | None = None,
        max_fragment_sequences: int = 64,
        max_reassembly: int = DEFAULT_MAX_REASSEMBLY,
    ) -> None:
        self.header_mode = uses_header(flags)
        self.limits = limits
        self.max_fragment_sequences = max_fragment_sequences
        self.max_reassembly = max_reassembly
        self._sequences: dict[int, _Reassembly] = {}
        self._buffered = 0
        #: When set, a message that would cost more (its size plus what its
        #: compressed terms inflate to) is not decoded but raised as
        #: ``Deferred``, for the caller to finish where that cost is affordable.
        self.allowance: int | None = None
        #: What the last message decoded under an allowance cost.
        self.price = 0
        #: The last message's bytes up to its payload, and its control term.
        self._known: tuple[int, bytes, Any] | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for incomplete fragmented messages."""
        return self._buffered

    def decode(self, frame: bytes) -> tuple[Any, Any] | None:
        """Decode one frame (without its length prefix; never a tick)."""
        if not self.header_mode:
            if frame[:1] != bytes([_PASS_THROUGH]):
                raise RemoteProtocolError(
                    f"expected a pass-through frame (112), got {frame[:2].hex() or 'nothing'}"
                )
            return self._terms(frame, 1, version_byte=True)
        if len(frame) < 3 or frame[0] != _VERSION:
            raise RemoteProtocolError(
                f"expected a distribution header (131,...), got {frame[:2].hex() or 'nothing'}"
            )
        kind = frame[1]
        if kind == _HEADER:
            self._check_no_atom_cache(frame[2])
            return self._terms(frame, 3, version_byte=False)
        if kind == _FRAGMENT_FIRST:
            return self._first_fragment(frame)
        if kind == _FRAGMENT_NEXT:
            return self._next_fragment(frame)
        raise RemoteProtocolError(f"unknown distribution header kind {kind}")

    def _first_fragment(self, frame: bytes) -> tuple[Any, Any] | None:
        if len(frame) < _FIRST_HEADER_SIZE:
            raise RemoteProtocolError("truncated first-fragment header")
        seq, frag = _FRAGMENT_IDS.unpack_from(frame, 2)
        self._check_no_atom_cache(frame[_FIRST_HEADER_SIZE - 1])
        if frag == 0:
            raise RemoteProtocolError(f"sequence {seq:#x}: fragment id 0")
        if seq in self._sequences:
            raise RemoteProtocolError(f"sequence {seq:#x} restarted before its last fragment")
        if frag == 1:
            return self._terms(frame, _FIRST_HEADER_SIZE, version_byte=False)
        if len(self._sequences) >= self.max_fragment_sequences:
            raise RemoteProtocolError(
                f"more than {self.max_fragment_sequences} fragmented messages in flight"
            )
        with memoryview(frame) as view:
            chunk = view[_FIRST_HEADER_SIZE:]
            self._reserve(chunk.nbytes)
            self._sequences[seq] = _Reassembly(next_id=frag - 1, data=bytearray(chunk))
        return None

    def _next_fragment(self, frame: bytes) -> tuple[Any, Any] | None:
        if len(frame) < _NEXT_HEADER_SIZE:
            raise RemoteProtocolError("truncated fragment header")
        seq, frag = _FRAGMENT_IDS.unpack_from(frame, 2)
        entry = self._sequences.get(seq)
        if entry is None:
            raise RemoteProtocolError(f"fragment for unknown sequence {seq:#x}")
        if frag != entry.next_id:
            raise RemoteProtocolError(
                f"sequence {seq:#x}: fragment {frag} arrived, expected {entry.next_id}"
            )
        with memoryview(frame) as view:
            chunk = view[_NEXT_HEADER_SIZE:]
            self._reserve(chunk.nbytes)
            entry.data += chunk
        if frag > 1:
            entry.next_id = frag - 1
            return None
        del self._sequences[seq]
        self._buffered -= len(entry.data)
        return self._terms(entry.data, 0, version_byte=False)

    def _reserve(self, size: int) -> None:
        if self._buffered + size > self.max_reassembly:
            raise RemoteProtocolError(
                f"fragmented messages would hold over {self.max_reassembly} bytes"
            )
        self._buffered += size

    @staticmethod
    def _check_no_atom_cache(refs: int) -> None:
        if refs:
            raise RemoteProtocolError(
                f"header references {refs} cached atoms, but no atom cache was negotiated"
            )

    def _terms(
        self, data: bytes | bytearray, offset: int, *, version_byte: bool
    ) -> tuple[Any, Any]:
        """The control term and the payload term (or ``NO_PAYLOAD``) filling ``data``."""
        allowance = self.allowance
        price = 0
        if allowance is not None:
            price = len(data) - offset + _inflated(data, offset + version_byte)
            if price > allowance:
                raise Deferred(data, offset, version_byte, price)
        known = self._known
        if known is not None and known[0] == offset and data.startswith(known[1]):
            control, pos = known[2], len(known[1])
        else:
            try:
                control, pos = decode_prefix(
                    data, offset, limits=self.limits, version_byte=version_byte
                )
            except DecodeError as exc:
                raise UndecodableMessage(f"undecodable distribution message: {exc}") from exc
            if pos < len(data):
                self._learn(data, offset, pos, control)
        if pos == len(data):
            self.price = price
            return control, NO_PAYLOAD
        if allowance is not None:
            price += _inflated(data, pos + version_byte)
            if price > allowance:
                raise Deferred(data, pos, version_byte, price, control)
            self.price = price
        return control, self._payload(data, pos, version_byte)

    def _learn(self, data: bytes | bytearray, offset: int, pos: int, control: Any) -> None:
        """Remember the bytes up to a message's payload, and the control term they hold.

        A peer sending to one process sends the same control term again and
        again; a frame that starts with the same bytes holds the same term
        (terms are self-delimiting, and no atom cache gives bytes a context),
        so the same object is returned without decoding it again. Only a
        hashable control, that is one with no list or map in it, is reused.
        """
        try:
            hash(control)
        except TypeError:
            return
        self._known = (offset, bytes(data[:pos]), control)

    def _payload(self, data: bytes | bytearray, pos: int, version_byte: bool) -> Any:
        try:
            payload, pos = decode_prefix(data, pos, limits=self.limits, version_byte=version_byte)
        except DecodeError as exc:
            raise UndecodableMessage(f"undecodable distribution message: {exc}") from exc
        if pos != len(data):
            raise RemoteProtocolError(
                f"{len(data) - pos} bytes after the payload of a distribution message"
            )
        return payload

    def finish(self, deferred: Deferred) -> tuple[Any, Any]:
        """Decode the message ``deferred`` held back, whatever it costs."""
        if deferred.control is _UNDECODED:
            allowance, self.allowance = self.allowance, None
            try:
                return self._terms(deferred.data, deferred.pos,
                                   version_byte=deferred.version_byte)
            finally:
                self.allowance = allowance
        return deferred.control, self._payload(deferred.data, deferred.pos,
                                               deferred.version_byte)


_UNDECODED: Final = object()


class Deferred(Exception):
    """A message that costs more than ``DistDecoder.allowance``, not decoded yet.

    ``price`` is its size plus what its compressed terms declare they inflate
    to; ``DistDecoder.finish`` decodes it (from ``pos``: the control term, or
    the payload when ``control`` is already decoded).
    """

    def __init__(self, data: bytes | bytearray, pos: int, version_byte: bool, price: int,
                 control: Any = _UNDECODED) -> None:
        super().__init__(f"a {price}-cost message held back")
        self.data = data
        self.pos = pos
        self.version_byte = version_byte
        self.price = price
        self.control = control


def _inflated(data: bytes | bytearray, pos: int) -> int:
    """What the compressed term at ``pos`` declares it inflates to (0: not compressed)."""
    if pos + 5 <= len(data) and data[pos] == _COMPRESSED:
        return int.from_bytes(data[pos + 1 : pos + 5], "big")
    return 0


class UndecodableMessage(RemoteProtocolError):
    """One frame's terms could not be decoded; the framing itself is intact.

    The frame's length was honoured, so the stream is still in step: the
    runtime may drop this message and keep the connection (a valid Erlang term
    that Python cannot hold, such as a map keyed by lists, must not cut a link).
    """


class DistEncoder:
    """Frame control messages for the peer, in the mode the flags negotiated.

    We never fragment what we send: OTP accepts a whole message in one frame
    whether or not FRAGMENTS was negotiated.
    """

    def __init__(self, flags: int) -> None:
        self.header_mode = uses_header(flags)
        prefix = _HEADER_PREFIX if self.header_mode else _PASS_THROUGH_PREFIX
        self._head = prefix[_U32.size:]
        self._between = b"" if self.header_mode else bytes([_VERSION])

    def frame(self, control: Any, payload: Any = NO_PAYLOAD) -> bytes:
        """One complete frame, length prefix included."""
        buf = bytearray()
        self.frame_into(buf, control, payload)
        return bytes(buf)

    def frame_into(self, buf: bytearray, control: Any, payload: Any = NO_PAYLOAD) -> None:
        """Append one complete frame to ``buf`` (an outgoing batch).

        If encoding fails, ``buf`` is as it was, so a batch never holds half
        a frame. The native core writes the frame in one call; the pure one
        encodes the terms straight into ``buf`` and patches the length in.
        """
        if _NATIVE is not None:
            if payload is NO_PAYLOAD:
                frame = _NATIVE.frame(self._head, control)
            else:
                frame = _NATIVE.frame_message(self._head, control, self._between, payload)
            _append(buf, frame)
            return
        if payload is NO_PAYLOAD:
            _pure_frame_into(buf, ((self._head, control),))
        else:
            _pure_frame_into(buf, ((self._head, control), (self._between, payload)))


def _pure_frame_into(buf: bytearray, parts: tuple[tuple[bytes, Any], ...]) -> None:
    """The pure core's frame: the length, then each part's bytes and encoded term,
    straight into ``buf``; on failure ``buf`` is as it was."""
    start = len(buf)
    try:
        buf += _U32.pack(0)
        for before, term in parts:
            buf += before
            encode_into(buf, term)
        length = len(buf) - start - _U32.size
        if length > _MAX_LENGTH:
            raise LocalProtocolError(f"a {length}-byte message does not fit in one frame")
    except BaseException:
        del buf[start:]
        raise
    _U32.pack_into(buf, start, length)


def _append(buf: bytearray, frame: bytes) -> None:
    """Append a whole frame the native core wrote, refusing one too long to send."""
    length = len(frame) - _U32.size
    if length > _MAX_LENGTH:
        raise LocalProtocolError(f"a {length}-byte message does not fit in one frame")
    buf += frame


def payload_into(buf: bytearray, header: bytes, payload: Any) -> None:
    """Append the frame of ``payload`` after ``header``: the bytes every frame of
    one control term starts with (``DistEncoder.frame`` of that control, less
    its length and its payload), kept from an earlier message along one route.
    """
    if _NATIVE is not None:
        _append(buf, _NATIVE.frame(header, payload))
    else:
        _pure_frame_into(buf, ((header, payload),))
