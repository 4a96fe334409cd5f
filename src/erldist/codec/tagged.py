"""distribute's tagged codec: a tag and a version in front of a payload.

Layout: ``u32(tag byte length) ‖ tag UTF-8 ‖ u32(version) ‖ payload``, the
payload being the inner codec's bytes with no length of its own.

In distribute the *value* carries its tag and version (``tagged.new``) and
the encoder writes those, ignoring the tag and version the codec expects, so
a codec could send frames its own decoder refuses. Here the codec owns both:
``tagged("counter", 2, INT)`` encodes a plain int as a "counter" v2 frame and
decodes only "counter" v2 frames. To speak two versions, build two codecs.
"""

from __future__ import annotations

from typing import TypeVar

from erldist.codec.core import U32_MAX, Codec, Reader, pack_u32, unpack_u32
from erldist.errors import (
    CodecDefinitionError,
    InsufficientData,
    InvalidBinary,
    TagMismatch,
    ValueTooLarge,
    VersionMismatch,
)

__all__ = ["tagged"]

T = TypeVar("T")


class _Tagged(Codec[T]):
    __slots__ = ("header", "inner", "tag", "tag_bytes", "version")

    def __init__(self, tag: str, version: int, inner: Codec[T]) -> None:
        if not isinstance(tag, str):
            raise CodecDefinitionError(f"a tag is a str, got {type(tag).__name__}")
        try:
            tag_bytes = tag.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CodecDefinitionError(f"tag is not valid Unicode: {exc.reason}") from None
        if len(tag_bytes) > U32_MAX:
            raise ValueTooLarge(f"tag of {len(tag_bytes)} bytes exceeds the 32-bit length prefix")
        if isinstance(version, bool) or not isinstance(version, int):
            raise CodecDefinitionError(f"a version is an int, got {type(version).__name__}")
        if not 0 <= version <= U32_MAX:
            raise ValueTooLarge(f"tagged version {version} out of unsigned 32-bit range")
        self.tag = tag
        self.tag_bytes = tag_bytes
        self.version = version
        self.inner = inner
        self.header = pack_u32(len(tag_bytes)) + tag_bytes + pack_u32(version)

    def _write(self, out: bytearray, value: T) -> None:
        out += self.header
        self.inner._write(out, value)

    def _check_header(self, r: Reader, pos: int, end: int) -> int:
        """Where the payload starts, once tag and version are the expected ones."""
        if end - pos < 4:
            raise InvalidBinary("missing tag length")
        size = unpack_u32(r.data, pos)[0]
        start = pos + 4
        if size > end - start:
            raise InsufficientData("tag truncated")
        raw = r.data[start : start + size]
        if raw != self.tag_bytes:
            try:
                got = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidBinary("tag not valid UTF-8") from None
            # The tag is compared before the version is even looked for.
            raise TagMismatch(self.tag, got)
        pos = start + size
        if end - pos < 4:
            raise InsufficientData("missing version or payload")
        version = unpack_u32(r.data, pos)[0]
        if version != self.version:
            raise VersionMismatch(self.version, version)
        return pos + 4

    def _read(self, r: Reader, pos: int, end: int) -> tuple[T, int]:
        return self.inner._read(r, self._check_header(r, pos, end), end)

    def _read_all(self, r: Reader, pos: int, end: int) -> T:
        return self.inner._read_all(r, self._check_header(r, pos, end), end)


def tagged(tag: str, version: int, inner: Codec[T]) -> Codec[T]:
    """Frames of ``inner`` behind ``tag`` and ``version`` (0..2^32-1), both checked exactly.

    A version outside 0..2^32-1 raises ``ValueTooLarge`` here, at build time,
    with distribute's message, instead of at every encode.
    """
    return _Tagged(tag, version, inner)
