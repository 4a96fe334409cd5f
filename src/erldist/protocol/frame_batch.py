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
"""

from __future__ import annotations

from typing import Any, Protocol

from erldist.core import native_module
from erldist.errors import RemoteProtocolError
from erldist.protocol.flags import uses_header
from erldist.protocol.framing import (
    DEFAULT_MAX_FRAME,
    DEFAULT_MAX_REASSEMBLY,
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

    def feed(self, data: bytes) -> list[BatchItem]: ...


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

    @property
    def buffered(self) -> int:
        """Bytes held for incomplete fragmented messages."""
        return self._decoder.buffered

    def feed(self, data: bytes) -> list[BatchItem]:
        """Every message ``data`` completes, in order (see the module docstring)."""
        if self._broken is not None:
            raise RemoteProtocolError(self._broken)
        source = self._pending + data if self._pending else data
        items: list[BatchItem] = []
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
            frame = source[pos + 4 : stop]
            pos = stop
            if not length:
                continue  # a tick
            try:
                decoded = self._decoder.decode(frame)
            except UndecodableMessage as exc:
                items.append(exc)
                continue
            except RemoteProtocolError as exc:
                items.append(self._break(str(exc)))
                return items
            if decoded is not None:
                items.append(decoded)
        self._pending = source[pos:]
        return items

    def _break(self, reason: str) -> RemoteProtocolError:
        self._broken = reason
        self._pending = b""
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
