"""Actors and pools: Python processes that Gleam finds in ``global`` and calls.

An actor is a process with a message codec, a handler and a state. Its
subject's tag is its name as a binary, so a Gleam node that runs
``registry.lookup`` (``global:whereis_name(<<"name">>)``) builds exactly the
subject this actor selects on, and Gleam's ``call`` works unchanged.

It receives as distribute's registered receiver does (§6.3): a ``(tag,
payload)`` 2-tuple with its tag is size-checked, decoded strictly and handed
to the handler; anything else is garbage, dropped and counted. A payload
that does not decode, is too large, or is not a binary at all is counted,
reported through telemetry and the ``on_decode_error`` hook, and dropped:
the actor keeps running (a Gleam actor crashes on a non-binary payload).
An exception from the handler ends the actor, as a crash ends a Gleam actor.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from erldist import registry, telemetry
from erldist.codec.core import Codec
from erldist.codec.payload import DecodeSite, decode_payload
from erldist.codec.subject import WireSubject
from erldist.errors import ActorInitFailed, CodecDecodeError, InvalidArgument, RegistryError
from erldist.gleam.call import reply
from erldist.gleam.subject import Host, Subject, from_name, router_of, send
from erldist.runtime.node import Node
from erldist.runtime.process import NORMAL, Process
from erldist.term.types import Atom, Pid, Term

__all__ = ["Actor", "DecodeErrorHook", "Handler", "Pool", "start_actor", "start_pool"]

log = logging.getLogger("erldist.gleam")

M = TypeVar("M")
S = TypeVar("S")
T = TypeVar("T")

#: ``handler(actor, message, state)``: the next state (or an awaitable of it).
Handler: TypeAlias = Callable[["Actor[M, S]", M, S], "S | Awaitable[S]"]
#: Told of every payload the actor could not use; what it raises is logged.
DecodeErrorHook: TypeAlias = Callable[[CodecDecodeError], object]

SHUTDOWN = Atom("shutdown")


class Actor(Generic[M, S]):
    """A running actor; made by ``start_actor``. ``state`` is its current state."""

    def __init__(
        self,
        process: Process,
        subject: Subject[M],
        handler: Handler[M, S],
        state: S,
        *,
        name: str | None,
        on_decode_error: DecodeErrorHook | None,
    ) -> None:
        self.process = process
        self.subject = subject
        self.state = state
        #: The global name it holds, if it was registered.
        self.name = name
        #: Messages dropped because they were not a 2-tuple with its tag.
        self.garbage = 0
        #: Payloads dropped because they were too large or did not decode.
        self.decode_errors = 0
        self._node: Node | None = None
        self._handler = handler
        self._on_decode_error = on_decode_error

    @property
    def pid(self) -> Pid:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.alive

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<Actor{label} {self.process!r}>"

    async def send(self, to: Subject[T], value: T) -> None:
        """``send`` from this actor's process."""
        await send(self.process, to, value)

    async def reply(self, to: WireSubject, value: T, codec: Codec[T]) -> None:
        """Answer a call whose request carried ``to`` (``global.reply``)."""
        await reply(self.process, to, value, codec)

    async def stop(self) -> None:
        """Unregister its global name (if it still holds it) and end it with ``normal``.

        May be called from its own handler.
        """
        node, name = self._node, self.name
        if node is not None and name is not None and node.is_running:
            if node.whereis_name(name) == self.pid:
                await registry.unregister(node, name)
            else:
                telemetry.emit(telemetry.ActorUnregistered(name, False))
        self.process.exit(NORMAL)

    async def _serve(self, process: Process) -> None:
        async for message in process:
            await self._handle(message)

    async def _handle(self, message: Term) -> None:
        if not self.subject.matches(message):
            self.garbage += 1
            return
        try:
            value = decode_payload(self.subject.codec, message[1], where=DecodeSite.ACTOR_INBOUND)
        except CodecDecodeError as exc:
            self.decode_errors += 1
            if self._on_decode_error is not None:
                try:
                    self._on_decode_error(exc)
                except Exception:
                    log.warning("on_decode_error hook of %r failed", self, exc_info=True)
            return
        result = self._handler(self, value, self.state)
        if inspect.isawaitable(result):
            result = await result
        self.state = result


async def start_actor(
    host: Host,
    codec: Codec[M],
    handler: Handler[M, S],
    state: S,
    *,
    name: str | None = None,
    register: bool = True,
    on_decode_error: DecodeErrorHook | None = None,
    maxsize: int | None = None,
) -> Actor[M, S]:
    """Start an actor; with a ``name``, its tag is the name and (``register``) it
    holds the name in ``global``, where Gleam's ``registry.lookup`` finds it.

    Without a name its tag is a fresh reference: only holders of
    ``actor.subject`` reach it (distribute's local receiver). The name follows
    the registry's rule (``RegistryInvalidArgument``); a name already taken
    raises ``RegistryAlreadyExists`` and the new actor is shut down. Either
    emits ``ActorRegistrationFailed``; success ``ActorRegistered``.
    """
    if name is not None and register:
        try:
            registry.validate_name(name)
        except RegistryError as exc:
            telemetry.emit(telemetry.ActorRegistrationFailed(name, str(exc)))
            raise
        if not isinstance(host, Node):
            raise InvalidArgument("registering an actor in global needs a Node")
    router = router_of(host)
    made: asyncio.Future[Actor[M, S]] = asyncio.get_running_loop().create_future()

    async def body(proc: Process) -> None:
        await (await made)._serve(proc)

    # The body waits for ``made``, set just below: it never sees a half-built actor.
    process = router.spawn(body, (), name=None, trap_exit=False, maxsize=maxsize,
                           overflow=None)
    subject = (from_name(process.pid, name, codec) if name is not None
               else Subject(process.pid, router.make_ref(), codec))
    actor = Actor(process, subject, handler, state, name=name if register else None,
                  on_decode_error=on_decode_error)
    made.set_result(actor)
    if name is not None and register:
        assert isinstance(host, Node)
        try:
            await registry.register(host, name, process.pid)
        except BaseException:
            process.exit(SHUTDOWN)
            raise
        actor._node = host
    return actor


@dataclass(frozen=True, slots=True)
class Pool(Generic[M, S]):
    """Actors named ``base_1`` .. ``base_N``, each on its own; callers pick one by name."""

    base: str
    members: tuple[Actor[M, S], ...]

    def member(self, index: int) -> Actor[M, S]:
        """The member named ``registry.pool_member(base, index)`` (1-based)."""
        if not 1 <= index <= len(self.members):
            raise InvalidArgument(f"pool {self.base!r} has members 1..{len(self.members)}, "
                                  f"not {index}")
        return self.members[index - 1]

    async def stop(self) -> None:
        """Stop every member (each unregisters its name)."""
        for actor in self.members:
            await actor.stop()


async def start_pool(
    node: Node,
    base: str,
    size: int,
    codec: Codec[M],
    handler: Handler[M, S],
    *,
    state: Callable[[int], S],
    on_decode_error: DecodeErrorHook | None = None,
) -> Pool[M, S]:
    """distribute's ``actor.pool``: ``size`` actors registered as ``base_1`` ..
    ``base_size``; member ``i`` starts with ``state(i)``.

    ``ActorInitFailed`` for ``size < 1``. All or nothing: if one member cannot
    be started or registered, the members already started are stopped and the
    error is raised (distribute may leave part of a pool behind).
    """
    if size < 1:
        raise ActorInitFailed(f"pool size must be >= 1, got {size}")
    members: list[Actor[M, S]] = []
    try:
        for index in range(1, size + 1):
            members.append(await start_actor(
                node, codec, handler, state(index), name=registry.pool_member(base, index),
                on_decode_error=on_decode_error))
    except BaseException:
        for actor in members:
            await actor.stop()
        raise
    return Pool(base, tuple(members))
