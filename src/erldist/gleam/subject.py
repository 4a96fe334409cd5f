"""Typed subjects: distribute's ``GlobalSubject``, a pid, a tag and a codec.

A Gleam ``Subject`` is ``{subject, Owner, Tag}`` on the BEAM; sending ``Msg``
to it is ``Owner ! {Tag, Msg}``, and its owner receives by selecting exactly
the 2-tuples whose first element is ``Tag``. distribute adds a codec, so the
message is always ``{Tag, Binary}`` with the payload cap checked by the sender
after encoding and by the receiver before decoding.

The tag says how the subject was made (the card's table in §6.1): the name as
a binary for an actor found by ``lookup`` (or ``from_name``), a fresh
reference for ``new_subject``, the atom ``nil`` for ``from_pid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from erldist import config, registry
from erldist.codec.core import Codec
from erldist.codec.payload import DecodeSite, PayloadSite, decode_payload, encode_payload
from erldist.codec.subject import WireSubject
from erldist.errors import (
    CodecEncodeError,
    DecodeTimeout,
    InvalidArgument,
    PayloadTooLarge,
    SendEncodeFailed,
)
from erldist.runtime.node import Node
from erldist.runtime.process import Process
from erldist.runtime.router import Router
from erldist.term.types import Atom, Pid, Term

__all__ = [
    "NIL_TAG",
    "Host",
    "Sender",
    "Subject",
    "encode_for",
    "from_name",
    "from_pid",
    "lookup",
    "lookup_with_timeout",
    "new_subject",
    "receive",
    "router_of",
    "send",
]

T = TypeVar("T")

#: The tag of a subject made from a bare pid (Gleam's ``Nil``).
NIL_TAG = Atom("nil")

#: What sends a message: a node (from its system process) or one of its processes.
Sender = Node | Process
#: What subjects, calls and actors run on: a node, or for tests its bare router.
Host = Node | Router


def router_of(host: Host) -> Router:
    return host.router if isinstance(host, Node) else host


@dataclass(frozen=True, slots=True)
class Subject(Generic[T]):
    """Where messages of type ``T`` go: ``owner`` gets ``(tag, codec.encode(value))``.

    A ``str`` tag is stored as its UTF-8 ``bytes``: it travels as a binary and
    comes back as ``bytes``, and matching compares the tag as the wire has it.
    """

    owner: Pid
    tag: Term
    codec: Codec[T]

    def __post_init__(self) -> None:
        if not isinstance(self.owner, Pid):
            raise InvalidArgument(f"a subject's owner is a Pid, got {type(self.owner).__name__}")
        if type(self.tag) is str:
            object.__setattr__(self, "tag", self.tag.encode("utf-8"))

    @classmethod
    def from_wire(cls, wire: WireSubject, codec: Codec[T]) -> Subject[T]:
        """The subject a payload carried (``codec.SUBJECT``), with the codec agreed for it."""
        return cls(wire.owner, wire.tag, codec)

    @property
    def wire(self) -> WireSubject:
        """The ``{subject, Owner, Tag}`` form, to embed in a payload (a reply address)."""
        return WireSubject(self.owner, self.tag)

    def matches(self, message: Any) -> bool:
        """True for exactly the 2-tuples whose first element is this tag.

        Erlang matches the key with ``=:=``, so the types must agree too: the
        tag ``1`` does not select ``(True, ...)`` nor ``(1.0, ...)``.
        """
        return (type(message) is tuple and len(message) == 2
                and type(message[0]) is type(self.tag) and message[0] == self.tag)

    def message(self, value: T) -> tuple[Term, bytes]:
        """The term to send for ``value``: ``(tag, payload)``; see ``send``."""
        return self.tag, encode_for(self.codec, value, PayloadSite.SEND)


def encode_for(codec: Codec[T], value: T, where: PayloadSite) -> bytes:
    """Encode a message to send (a send or a reply): ``PayloadTooLarge`` over the cap,
    ``SendEncodeFailed`` when the codec refuses the value."""
    try:
        return encode_payload(codec, value, where=where)
    except PayloadTooLarge:
        raise
    except CodecEncodeError as exc:
        raise SendEncodeFailed(exc) from exc


def from_pid(pid: Pid, codec: Codec[T]) -> Subject[T]:
    """distribute's ``global.from_pid``: tag ``nil``.

    A registered Gleam actor drops such messages as garbage; a process that
    selects on ``nil`` (a plain ``receive`` in Erlang) gets them.
    """
    return Subject(pid, NIL_TAG, codec)


def from_name(pid: Pid, name: str, codec: Codec[T]) -> Subject[T]:
    """distribute's ``global.unsafe_from_name``: the name as a binary is the tag."""
    return Subject(pid, name.encode("utf-8"), codec)


def new_subject(host: Host, owner: Pid, codec: Codec[T]) -> Subject[T]:
    """distribute's ``global.new``: a fresh reference as the tag, so only the holders
    of this subject can reach ``owner`` through it."""
    return Subject(owner, router_of(host).make_ref(), codec)


def lookup(node: Node, name: str, codec: Codec[T]) -> Subject[T]:
    """distribute's ``registry.lookup``: the holder of the global binary name ``name``,
    tagged with the name; ``RegistryNotFound`` when nobody holds it."""
    return from_name(registry.lookup(node, name), name, codec)


async def lookup_with_timeout(
    node: Node, name: str, codec: Codec[T], timeout_ms: int, poll_ms: int
) -> Subject[T]:
    """``lookup`` that polls until ``name`` is held; ``LookupNotFound`` after
    ``timeout_ms``."""
    pid = await registry.lookup_with_timeout(node, name, timeout_ms, poll_ms)
    return from_name(pid, name, codec)


async def send(sender: Sender, subject: Subject[T], value: T) -> None:
    """distribute's ``global.send``: ``owner ! {tag, payload}``.

    Raises ``SendEncodeFailed`` or ``PayloadTooLarge`` (with ``PayloadRejected``
    telemetry) before anything is sent; like Erlang's send it confirms nothing
    about delivery.
    """
    await sender.send(subject.owner, subject.message(value))


async def receive(process: Process, subject: Subject[T], timeout: float | None = None) -> T:
    """distribute's ``global.receive``: the oldest ``(tag, payload)`` for ``subject``,
    decoded strictly; other messages stay in the mailbox.

    ``timeout`` defaults to ``config.default_call_timeout``; negative is 0.
    Raises ``DecodeTimeout`` (a ``TimeoutError``) when nothing comes,
    ``PayloadTooLarge`` or the codec's error (with telemetry) for a bad payload,
    which is consumed either way.
    """
    if subject.owner != process.pid:
        raise InvalidArgument(f"only the owner {subject.owner!r} receives on its subject")
    budget = config.get().default_call_timeout if timeout is None else max(timeout, 0.0)
    try:
        message = await process.receive(budget, match=subject.matches)
    except TimeoutError:
        raise DecodeTimeout() from None
    return decode_payload(subject.codec, message[1], where=DecodeSite.RECEIVE)
