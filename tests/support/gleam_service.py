"""The counter protocol the Gleam stand-in (``erl/gleam_peer.erl``) speaks, in Python.

The card's counter (``test/call_test.gleam``: ``Increment = 00 ‖ int``,
``GetCount = 01 ‖ subject``) plus ``Hold`` (answered only at ``Release``) and
``Crash`` (the actor exits), and a Python actor handler with the same
behaviour, so either side can play the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from erldist.codec import INT, SUBJECT, WireSubject, case, unit, variant
from erldist.gleam import Actor

#: The Erlang source of the Gleam stand-in.
GLEAM_PEER = (Path(__file__).parent / "erl" / "gleam_peer.erl").read_text()


@dataclass(frozen=True)
class Increment:
    by: int


@dataclass(frozen=True)
class GetCount:
    reply: WireSubject


@dataclass(frozen=True)
class Hold:
    reply: WireSubject


class Release(Enum):
    RELEASE = "release"


@dataclass(frozen=True)
class Crash:
    reply: WireSubject


Request = Increment | GetCount | Hold | Release | Crash

SERVICE = variant(
    case(0, Increment, INT),
    case(1, GetCount, SUBJECT),
    case(2, Hold, SUBJECT),
    unit(3, Release.RELEASE, name="Release"),
    case(4, Crash, SUBJECT),
)


@dataclass(frozen=True)
class Counter:
    count: int = 0
    held: tuple[WireSubject, ...] = ()
    #: Every reply subject a GetCount carried, to see who asked.
    asked: tuple[WireSubject, ...] = field(default=())


class Crashed(RuntimeError):
    """What the Python actor raises on ``Crash``."""


async def counter(actor: Actor[Request, Counter], message: Request, state: Counter) -> Counter:
    """The service as a Python actor's handler."""
    match message:
        case Increment(by=by):
            return replace(state, count=state.count + by)
        case GetCount(reply=to):
            await actor.reply(to, state.count, INT)
            return replace(state, asked=(*state.asked, to))
        case Hold(reply=to):
            return replace(state, held=(*state.held, to))
        case Release.RELEASE:
            for to in state.held:
                await actor.reply(to, state.count, INT)
            return replace(state, held=())
        case Crash():
            raise Crashed("asked to crash")
    raise AssertionError(message)
