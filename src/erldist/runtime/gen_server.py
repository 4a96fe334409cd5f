"""Servers in Python that ``gen_server:call``/``cast`` and ``GenServer.call`` reach.

Subclass ``GenServer`` and start an instance with ``node.start_server``: it
becomes a process with a pid (and a name, if given) that answers OTP's call
protocol. Its mailbox is read one message at a time, in arrival order, so
calls are served one after another as in OTP. ``handle_call`` returns the
reply, or ``NOREPLY`` to answer later with ``reply(from_, value)``. A handler
that raises ends the server with ``{python, 'Type', <<"message">>}`` after
``terminate``; callers waiting on it see that reason, as they would see a
crashed ``gen_server``'s. A server started with ``link=`` a supervisor's
pid dies with it; with ``trap_exit = True`` it runs ``terminate`` first,
like a trapping ``gen_server`` whose parent exits.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from erldist import telemetry
from erldist.errors import ServerStartFailed
from erldist.runtime import gen
from erldist.runtime.process import NORMAL, Exit, Process, exception_reason
from erldist.term.types import Atom, Pid, Term

if TYPE_CHECKING:
    from erldist.runtime.router import Router

__all__ = ["NOREPLY", "From", "GenServer", "start_server"]

log = logging.getLogger("erldist.gen_server")


class _NoReply:
    """The type of ``NOREPLY``."""

    def __repr__(self) -> str:
        return "NOREPLY"


#: Returned by ``handle_call``: no reply now, ``reply(from_, value)`` comes later.
NOREPLY: Final = _NoReply()


@dataclass(frozen=True, slots=True)
class From:
    """Who called: the caller's pid and the call's tag (``gen_server``'s ``From``)."""

    pid: Pid
    tag: Term

    @property
    def term(self) -> tuple[Pid, Term]:
        return (self.pid, self.tag)


class GenServer:
    """Base class of a Python server; override the handlers you need.

    Each handler may be a plain or an ``async`` method (an awaitable result is
    awaited). ``self.process`` is the server's process once started
    (``self.process.pid`` its pid).
    """

    #: Receive exit signals as ``Exit`` messages (``handle_info``), and run
    #: ``terminate`` when the parent given by ``link=`` exits.
    trap_exit: bool = False

    process: Process
    _router: Router
    _stop_reason: Term | None = None

    def init(self, *args: Any) -> Any:
        """Runs before the first message; raising fails ``start_server``."""
        return None

    def handle_call(self, request: Any, from_: From) -> Any:
        """Answer a call: return the reply, or ``NOREPLY`` and ``reply`` later.

        Without an override a call ends the server, as in Elixir's ``GenServer``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no handle_call for {request!r}")

    def handle_cast(self, request: Any) -> Any:
        """A ``gen_server:cast``; without an override it ends the server."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_cast for {request!r}")

    def handle_info(self, message: Any) -> Any:
        """Any other message (``Down``, ``Exit``, plain messages): logged and dropped."""
        log.warning("%s got an unexpected message: %r", type(self).__name__, message)

    def terminate(self, reason: Term) -> Any:
        """Runs when the server stops (not when it is killed)."""
        return None

    # --- for handlers --------------------------------------------------------------------

    def reply(self, from_: From, value: Term) -> None:
        """``gen_server:reply(From, Reply)``, for a call answered with ``NOREPLY``."""
        gen.reply(self._router, self.process.pid, from_.term, value)

    def stop(self, reason: Term = NORMAL) -> None:
        """Stop after the current handler returns (a call's reply is sent first)."""
        self._stop_reason = reason


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def start_server(
    router: Router,
    server: GenServer,
    args: tuple[Any, ...],
    *,
    name: str | None,
    link: Pid | None,
    timeout: float,
) -> Pid:
    """Start ``server`` as a process and wait for its ``init``; its pid.

    Raises ``ServerStartFailed`` when ``init`` raises, ``NameTaken`` when the
    name is held, ``TimeoutError`` when ``init`` takes longer than ``timeout``
    (the server is then ended with ``kill``, as ``gen_server:start`` does).
    """
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    server._router = router
    proc = router.spawn(_serve, (server, args, link, started), name=name,
                        trap_exit=server.trap_exit, maxsize=None, overflow=None)
    try:
        async with asyncio.timeout(timeout):
            await asyncio.shield(started)
    except TimeoutError:
        router.terminate(proc, Atom("killed"))
        raise
    return proc.pid


async def _serve(
    proc: Process, server: GenServer, args: tuple[Any, ...], parent: Pid | None,
    started: asyncio.Future[None],
) -> None:
    server.process = proc
    try:
        if parent is not None:
            await proc.link(parent)
        await _maybe_await(server.init(*args))
    except BaseException as exc:
        if not started.done():
            why = proc.exit_reason if proc.exit_reason is not None else exception_reason(exc)
            started.set_exception(ServerStartFailed(why))
        raise
    started.set_result(None)
    reason: Term = NORMAL
    try:
        async for message in proc:
            if isinstance(message, Exit) and message.sender == parent and parent is not None:
                reason = message.reason
                break
            await _handle(server, proc, message)
            if server._stop_reason is not None:
                reason = server._stop_reason
                break
    except Exception as exc:
        reason = exception_reason(exc)
        log.error("server %r crashed: %r", proc.pid, reason, exc_info=exc)
        telemetry.emit(telemetry.ProcessFailed(repr(proc.pid), repr(reason)))
    if not proc.alive:
        return
    try:
        await _maybe_await(server.terminate(reason))
    except Exception as exc:
        reason = exception_reason(exc)
        log.error("server %r terminate raised: %r", proc.pid, reason, exc_info=exc)
    proc.exit(reason)


async def _handle(server: GenServer, proc: Process, message: Any) -> None:
    match message:
        case (Atom("$gen_call"), (Pid() as caller, tag), request):
            from_ = From(caller, tag)
            answer = await _maybe_await(server.handle_call(request, from_))
            if answer is not NOREPLY:
                server.reply(from_, answer)
        case (Atom("$gen_cast"), request):
            await _maybe_await(server.handle_cast(request))
        case _:
            await _maybe_await(server.handle_info(message))
