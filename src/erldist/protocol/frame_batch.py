"""A whole read's worth of frames decoded in one call, so the runtime touches each message once.

``FrameBatchDecoder.feed(data)`` cuts every complete frame out of the bytes
read so far and decodes it (fragments reassembled, ticks dropped), returning
one list per read instead of one call per frame. ``new_frame_batch_decoder``
returns the native core's twin (``erldist_native.FrameDecoder``) when it is
installed: same caps, same results, same error messages.

The list holds, in stream order:

- ``(control, payload)`` tuples (``payload`` is ``NO_PAYLOAD`` when absent);
- ``UndecodableMessage`` instances for frames whose terms could not be
  decoded: the framing is intact, so the caller may drop them and go on;
- last, a ``RemoteProtocolError`` instance when the stream broke (an oversized
  frame, a bad header, a fragment out of order...): the caller must close the
  connection. Messages before it are still delivered; every later ``feed``
  raises that error.

``feed(data, budget)`` bounds the work of one call: it stops before a frame
once what it decoded has cost ``budget`` (``budget=0`` only buffers), and the
rest waits for a later call (``feed(b"", budget)``). A message costs its size
plus what its compressed terms declare they inflate to, so a 2 KB zlib bomb
costs what decoding it takes. Since one call on a million-element term holds
the interpreter for a long time, a message that costs more than the whole
budget is held back undecoded (its control term at most), and ``next_cost``
says what it costs, so the caller can decode it elsewhere (``feed(b"",
next_cost)`` on another thread). ``next_cost`` is otherwise the size of the
next whole frame waiting, and 0 when none is.
"""

from __future__ import annotations

from typing import Any, Protocol

from erldist.core import native_module
from erldist.errors import RemoteProtocolError
from erldist.protocol.flags import uses_header
from erldist.protocol.framing import (
    DEFAULT_MAX_FRAME,
    DEFAULT_MAX_REASSEMBLY,
    Deferred,
    DistDecoder,
    UndecodableMessage,
)
from erldist.term import DEFAULT_LIMITS, DecodeLimits

__all__ = ["BatchItem", "FrameBatch", "FrameBatchDecoder", "new_frame_batch_decoder"]

#: One entry of a batch: a message, a dropped message, or the end of the stream.
BatchItem = tuple[Any, Any] | UndecodableMessage | RemoteProtocolError


class FrameBatch(Protocol):
    """What both cores' batch decoders offer."""

    @property
    def buffered(self) -> int: ...

    @property
    def next_cost(self) -> int: ...

    def feed(self, data: bytes, budget: int | None = None) -> list[BatchItem]: ...


class FrameBatchDecoder:
    """The pure-Python batch decoder (``FrameReader`` and ``DistDecoder`` in one pass)."""

    def __init__(
        self,
        flags: int,
        limits: DecodeLimits | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_fragment_sequences: int = 64,
        max_reassembly: int = DEFAULT_MAX_REASSEMBLY,
    ) -> None:
        self.max_frame = max_frame
        self._decoder = DistDecoder(flags, limits, max_fragment_sequences, max_reassembly)
        self._pending = b""
        self._broken: str | None = None
        self._deferred: Deferred | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for incomplete fragmented messages."""
        return self._decoder.buffered

    @property
    def next_cost(self) -> int:
        """What the next message held back costs, else the size of the next whole frame."""
        if self._deferred is not None:
            return self._deferred.price
        source = self._pending
        pos = 0
        while len(source) - pos >= 4 and self._broken is None:
            length = int.from_bytes(source[pos : pos + 4], "big")
            if length > self.max_frame or pos + 4 + length > len(source):
                return 0
            if length:
                return length
            pos += 4
        return 0

    def feed(self, data: bytes, budget: int | None = None) -> list[BatchItem]:
        """Every message ``data`` completes, in order, as far as ``budget`` goes
        (see the module docstring); ``None`` decodes every whole frame."""
        if self._broken is not None:
            raise RemoteProtocolError(self._broken)
        source = self._pending + data if self._pending else data
        items: list[BatchItem] = []
        decoder = self._decoder
        spent = 0
        if self._deferred is not None:
            if budget is not None and self._deferred.price > budget:
                self._pending = source
                return items
            deferred, self._deferred = self._deferred, None
            spent = deferred.price
            if not self._decoded(items, decoder.finish, deferred):
                return items
        pos = 0
        end = len(source)
        while end - pos >= 4:
            length = int.from_bytes(source[pos : pos + 4], "big")
            if length > self.max_frame:
                reason = f"{length}-byte frame is over the {self.max_frame}-byte cap"
                items.append(self._break(reason))
                return items
            stop = pos + 4 + length
            if stop > end:
                break
            if not length:
                pos = stop
                continue  # a tick
            if budget is not None and spent >= budget:
                break
            frame = source[pos + 4 : stop]
            pos = stop
            if budget is not None:
                decoder.allowance = budget
                decoder.price = length  # a fragment's share, unless a message completes
            try:
                decoded = decoder.decode(frame)
            except Deferred as held:
                self._deferred = held
                break
            except UndecodableMessage as exc:
                items.append(exc)
                spent += decoder.price
                continue
            except RemoteProtocolError as exc:
                items.append(self._break(str(exc)))
                return items
            finally:
                decoder.allowance = None
            spent += decoder.price
            if decoded is not None:
                items.append(decoded)
        self._pending = source[pos:]
        return items

    def _decoded(self, items: list[BatchItem], finish: Any, deferred: Deferred) -> bool:
        """Finish a held-back message into ``items``; False when the stream broke."""
        try:
            items.append(finish(deferred))
        except UndecodableMessage as exc:
            items.append(exc)
        except RemoteProtocolError as exc:
            items.append(self._break(str(exc)))
            return False
        return True

    def _break(self, reason: str) -> RemoteProtocolError:
        self._broken = reason
        self._pending = b""
        self._deferred = None
        self._decoder = DistDecoder(0)  # drop what was reassembled
        return RemoteProtocolError(reason)


def new_frame_batch_decoder(
    flags: int,
    limits: DecodeLimits | None = None,
    max_frame: int = DEFAULT_MAX_FRAME,
    max_fragment_sequences: int = 64,
    max_reassembly: int = DEFAULT_MAX_REASSEMBLY,
) -> FrameBatch:
    """The active core's batch decoder for a connection that negotiated ``flags``."""
    native = native_module()
    if native is None:
        return FrameBatchDecoder(flags, limits, max_frame, max_fragment_sequences, max_reassembly)
    batch: FrameBatch = native.FrameDecoder(
        uses_header(flags),
        DEFAULT_LIMITS if limits is None else limits,
        max_frame,
        max_fragment_sequences,
        max_reassembly,
    )
    return batch
