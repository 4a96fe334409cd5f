"""distribute's subject codec: a reply address inside a payload.

gleam_erlang 1.x represents a ``Subject`` on the BEAM as ``{subject, Owner,
Tag}``; sending ``Msg`` to it is ``Owner ! {Tag, Msg}``. distribute writes
``u32(len) ‖ term_to_binary(Subject)``, so the embedded part is ordinary
external term format, built and read here by erldist's term codec.

distribute's decoder (``binary_to_term(Body, [safe])``) is lenient in three
ways; this one keeps two and closes one:

- any tag term is accepted (a reference, a binary, the atom ``nil``, ...);
- compressed ETF is accepted (the term codec caps what it may inflate to);
- bytes after the term *inside* the declared slice are refused
  (``DecodeFailed``), where ``binary_to_term`` ignores them. No BEAM writes
  such a slice; only a crafted frame has one.

``[safe]`` also refuses atoms the receiving VM does not know yet, to protect
its atom table. Python has no such table (erldist's atom cache is bounded),
so any atom is accepted here.
"""

from __future__ import annotations

from dataclasses import dataclass

from erldist.codec.core import Codec, Reader, unpack_u32, write_u32_prefixed
from erldist.errors import (
    DecodeError,
    DecodeFailed,
    EncodeError,
    InsufficientData,
    InvalidBinary,
    InvalidValue,
)
from erldist.term import Atom, Pid, Term, decode_prefix, encode_into

__all__ = ["SUBJECT", "WireSubject"]

_SUBJECT = Atom("subject")
_VERSION = b"\x83"


@dataclass(frozen=True, slots=True)
class WireSubject:
    """gleam_erlang's ``Subject`` as the BEAM holds it: ``{subject, owner, tag}``.

    A message for it is the 2-tuple ``(tag, payload)`` sent to ``owner``. The
    tag is whatever the subject's maker chose: a ``Reference`` for a reply
    subject, the name as ``bytes`` for a registered actor, ``Atom("nil")``
    for ``global.from_pid``. A ``str`` tag is sent as a binary and so comes
    back as ``bytes``.
    """

    owner: Pid
    tag: Term


class _Subject(Codec[WireSubject]):
    __slots__ = ()

    def _write(self, out: bytearray, value: WireSubject) -> None:
        if type(value) is not WireSubject:
            raise InvalidValue(f"subject codec needs a WireSubject, got {type(value).__name__}")
        if not isinstance(value.owner, Pid):
            raise InvalidValue(f"a subject's owner is a Pid, got {type(value.owner).__name__}")

        def etf(o: bytearray) -> None:
            o += _VERSION
            try:
                encode_into(o, (_SUBJECT, value.owner, value.tag))
            except EncodeError as exc:
                raise InvalidValue(f"subject has no Erlang form: {exc}") from exc

        write_u32_prefixed(out, etf, "subject")

    def _read(self, r: Reader, pos: int, end: int) -> tuple[WireSubject, int]:
        if end - pos < 4:
            raise InvalidBinary("subject length prefix")
        size = unpack_u32(r.data, pos)[0]
        start = pos + 4
        if size > end - start:
            raise InsufficientData("subject")
        stop = start + size
        body = r.data[start:stop]
        try:
            term, used = decode_prefix(body)
        except DecodeError as exc:
            raise DecodeFailed("invalid subject binary") from exc
        if (
            used != len(body)
            or type(term) is not tuple
            or len(term) != 3
            or type(term[0]) is not Atom
            or term[0] != _SUBJECT
            or type(term[1]) is not Pid
        ):
            raise DecodeFailed("invalid subject binary")
        return WireSubject(term[1], term[2]), stop


SUBJECT: Codec[WireSubject] = _Subject()
