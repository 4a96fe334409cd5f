"""RPC both ways: ``rpc``/``erpc`` from Erlang into exposed Python functions, and
``rpc`` from Python into Erlang.

Since OTP 23 an ``erpc:call(Node, M, F, A)`` (and ``rpc:call``, ``rpc:multicall``,
which use it from OTP 25 on) is a SPAWN_REQUEST of ``erpc:execute_call(Res, M,
F, A)`` with a ``monitor``: the spawned process applies ``M:F(A...)`` and exits
with ``{Res, return, Value}``, ``{Res, throw, V}``, ``{Res, exit, R}`` or
``{Res, error, R, Stack}``, and the caller reads the result from its DOWN
message. ``erpc:cast``/``rpc:cast`` spawn ``erpc:execute_cast(M, F, A)`` with no
reply. This node answers those two spawns, and only those, by running the
Python function the user exposed under ``(M, F)`` in a process of its own;
any other spawn request is refused with ``notsup``. A function that is not
exposed, or not callable with that many arguments, ends as an undefined
Erlang function does (``undef``); an exception as an Erlang error with
``{python, 'Type', <<"message">>}`` as its reason. When the caller stops
waiting (it demonitors on timeout, or its node goes away) the process and
its task are ended, so nothing keeps running for nobody.

``RpcClient.rpc`` makes the same spawn request to an Erlang node and maps
every outcome erpc knows to a typed exception.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any, Final

from erldist import telemetry
from erldist.errors import (
    RpcExit,
    RpcKilled,
    RpcNodeDown,
    RpcRaised,
    RpcRefused,
    RpcThrow,
    RpcTimeout,
    RpcUndefined,
)
from erldist.protocol.control import SPAWN_REPLY_LINK, SPAWN_REPLY_MONITOR
from erldist.protocol.signals import LinkSignal, MonitorSignal, SpawnReplySignal, SpawnRequestSignal
from erldist.runtime.process import NOCONNECTION, Down, Process, exception_reason
from erldist.runtime.router import Router
from erldist.term.encode import encode
from erldist.term.types import Atom, Pid, Reference, Term

__all__ = ["MAX_RPC_WORKERS", "RpcClient", "RpcServer"]

log = logging.getLogger("erldist.rpc")

#: Python functions running for remote callers at once; beyond it a spawn
#: request is answered ``system_limit``, as a node out of processes answers.
MAX_RPC_WORKERS: Final = 10_000

_ERPC = Atom("erpc")
_EXECUTE_CALL = Atom("execute_call")
_EXECUTE_CAST = Atom("execute_cast")
_RETURN = Atom("return")
_THROW = Atom("throw")
_EXIT = Atom("exit")
_ERROR = Atom("error")
_OK = Atom("ok")
_UNDEF = Atom("undef")
_LINK = Atom("link")
_MONITOR = Atom("monitor")
_NOTSUP = Atom("notsup")
_BADARG = Atom("badarg")
_SYSTEM_LIMIT = Atom("system_limit")

#: An exposed function: called with the Erlang arguments, plain or ``async``.
Exposed = Callable[..., Any]


class RpcServer:
    """The functions exposed to ``rpc``/``erpc`` and the processes that run them."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._exposed: dict[tuple[Atom, Atom], Exposed] = {}
        self._workers: set[Pid] = set()
        router.spawn_handler = self._on_spawn_request

    @property
    def running(self) -> int:
        """Functions running for remote callers now."""
        return len(self._workers)

    def expose(self, module: str, function: str, fn: Exposed) -> None:
        """Make ``fn`` callable as ``module:function`` (any arity it accepts)."""
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        self._exposed[(Atom(module), Atom(function))] = fn

    def unexpose(self, module: str, function: str) -> bool:
        """Make ``module:function`` undefined again; False if it was not exposed."""
        return self._exposed.pop((Atom(module), Atom(function)), None) is not None

    def exposed(self) -> list[tuple[str, str]]:
        return sorted((str(m), str(f)) for m, f in self._exposed)

    # --- spawn requests --------------------------------------------------------------------

    def _on_spawn_request(self, signal: SpawnRequestSignal, peer: str) -> None:
        router = self._router
        if str(signal.sender.node) != peer:  # a peer spawns for its own processes only
            log.debug("spawn request from %s in the name of %r refused", peer, signal.sender)
            router.emit(peer, SpawnReplySignal(signal.req_id, signal.sender, 0, _BADARG))
            return
        request = _parse(signal)
        if request is None:
            log.debug("spawn request of %s:%s/%d from %s refused: notsup", signal.module,
                      signal.function, len(signal.args), peer)
            router.emit(peer, SpawnReplySignal(signal.req_id, signal.sender, 0, _NOTSUP))
            return
        if len(self._workers) >= MAX_RPC_WORKERS:
            log.warning("spawn request from %s refused: %d rpc workers running", peer,
                        len(self._workers))
            router.emit(peer, SpawnReplySignal(signal.req_id, signal.sender, 0, _SYSTEM_LIMIT))
            return
        result_ref, module, function, args = request
        proc = router.spawn(self._work, (result_ref, module, function, args), name=None,
                            trap_exit=False, maxsize=None, overflow=None)
        self._workers.add(proc.pid)
        flags = 0
        if _LINK in signal.opts:
            router.dispatch(LinkSignal(signal.sender, proc.pid), None)
            flags |= SPAWN_REPLY_LINK
        if _MONITOR in signal.opts:
            router.dispatch(MonitorSignal(signal.sender, proc.pid, signal.req_id), None)
            flags |= SPAWN_REPLY_MONITOR
            if result_ref is not None:
                router.end_when_unwatched(proc)
        router.emit(peer, SpawnReplySignal(signal.req_id, signal.sender, flags, proc.pid))

    async def _work(self, proc: Process, result_ref: Reference | None, module: Atom,
                    function: Atom, args: list[Term]) -> None:
        try:
            outcome = await self.apply(module, function, args)
        finally:
            self._workers.discard(proc.pid)
        if result_ref is None:  # a cast: nobody hears the outcome; failures are logged
            if outcome[0] is _ERROR:
                log.error("rpc cast %s:%s/%d failed: %r", module, function, len(args),
                          outcome[1])
            return
        proc.exit((result_ref, *outcome))

    async def apply(self, module: Atom, function: Atom, args: list[Term]) -> tuple[Any, ...]:
        """``(return, V)``, ``(throw, V)``, ``(exit, R)`` or ``(error, R, Stack)``."""
        fn = self._exposed.get((module, function))
        if fn is None or not _accepts(fn, len(args)):
            return (_ERROR, _UNDEF, [(module, function, list(args), [])])
        stack: list[Term] = [(module, function, len(args), [])]
        try:
            value = fn(*args)
            if inspect.isawaitable(value):
                value = await value
            if value is None:
                value = _OK
            encode(value)  # an answer that has no Erlang form fails here, not on the wire
        except RpcThrow as exc:
            return (_THROW, exc.value)
        except RpcExit as exc:
            return (_EXIT, exc.reason)
        except Exception as exc:
            log.info("exposed %s:%s/%d raised %r", module, function, len(args), exc)
            return (_ERROR, exception_reason(exc), stack)
        return (_RETURN, value)


def _parse(signal: SpawnRequestSignal) -> tuple[Reference | None, Atom, Atom, list[Term]] | None:
    """``(ResultRef, M, F, Args)`` of an erpc call, ``(None, M, F, Args)`` of a cast."""
    if signal.module != _ERPC:
        return None
    match signal.function, signal.args:
        case Atom("execute_call"), [Reference() as res, Atom() as m, Atom() as f, list() as a]:
            return res, m, f, a
        case Atom("execute_cast"), [Atom() as m, Atom() as f, list() as a]:
            return None, m, f, a
    return None


def _accepts(fn: Exposed, arity: int) -> bool:
    try:
        inspect.signature(fn).bind(*range(arity))
    except TypeError:
        return False
    except ValueError:  # no signature to read (some builtins): let the call decide
        return True
    return True


# --- rpc into Erlang --------------------------------------------------------------------


class RpcClient:
    """``erpc:call`` from Python: a spawn request of ``erpc:execute_call/4`` with a
    monitor, the result read from the DOWN, as OTP's own erpc does."""

    def __init__(self, router: Router, group_leader: Pid) -> None:
        self._router = router
        self._group_leader = group_leader
        self._pending: dict[Reference, asyncio.Future[Term]] = {}
        self.process = router.add_service(None, self._receive)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def rpc(self, node: str, module: str, function: str, args: list[Term],
                  timeout: float) -> Any:
        router = self._router
        mfa = f"{module}:{function}/{len(args)}"
        req_id = router.make_ref()
        result_ref = router.make_ref()
        fut: asyncio.Future[Term] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await router.spawn_request(
                    self.process, node, (_ERPC, _EXECUTE_CALL),
                    [result_ref, Atom(module), Atom(function), list(args)],
                    req_id=req_id, group_leader=self._group_leader, monitor=True)
                return _result(node, mfa, result_ref, await fut)
        except TimeoutError:
            if not router.spawn_abandon(req_id):
                router.demonitor(self.process, req_id)
            telemetry.emit(telemetry.CallTimedOut(max(timeout, 0.0), f"{node} {mfa}"))
            raise RpcTimeout(node, mfa, timeout) from None
        except RpcNodeDown:
            telemetry.emit(telemetry.CallTargetDown(f"{node} {mfa}", repr(NOCONNECTION)))
            raise
        finally:
            self._pending.pop(req_id, None)

    def _receive(self, message: Any, _peer: str | None) -> None:
        match message:
            case (Atom("spawn_reply"), Reference() as req_id, Atom("error"), reason):
                fut = self._pending.pop(req_id, None)
                if fut is not None and not fut.done():
                    fut.set_result((_ERPC, reason))
            case Down(ref=req_id, reason=reason):
                fut = self._pending.pop(req_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(reason)


def _result(node: str, mfa: str, result_ref: Reference, reason: Term) -> Any:
    """erpc's ``result/4``: the value, or the typed exception for everything else."""
    match reason:
        case (Reference() as ref, Atom("return"), value) if ref == result_ref:
            return value
        case (Reference() as ref, Atom("throw"), value) if ref == result_ref:
            raise RpcThrow(value)
        case (Reference() as ref, Atom("exit"), why) if ref == result_ref:
            raise RpcExit(why)
        case (Reference() as ref, Atom("error"), Atom("undef"), stack) if ref == result_ref:
            raise RpcUndefined(_UNDEF, stack)
        case (Reference() as ref, Atom("error"), why, stack) if ref == result_ref:
            raise RpcRaised(why, stack)
        case (Reference() as ref, Atom("error"), (Atom("erpc"), why)) if ref == result_ref:
            raise RpcRefused(node, mfa, why)
        case (Atom("erpc"), Atom("noconnection")):
            raise RpcNodeDown(node, mfa)
        case (Atom("erpc"), why):
            raise RpcRefused(node, mfa, why)
        case Atom("noconnection"):
            raise RpcNodeDown(node, mfa)
    raise RpcKilled(reason)

