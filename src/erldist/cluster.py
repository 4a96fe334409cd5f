"""The seed's ``distribute/cluster`` API as plain synchronous functions.

One default ``Node`` runs on a background event-loop thread; every function
here hands its work to that loop and blocks the caller until it finishes or
its deadline passes, so it is safe to call from any thread (but not from the
loop thread itself, which would wait on its own work). The asyncio face is
``erldist.Node``: same operations, same semantics, one implementation.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from erldist import config as config_mod
from erldist import event_loop, gleam, registry
from erldist.cluster_process import SyncProcess
from erldist.codec.core import Codec
from erldist.codec.subject import WireSubject
from erldist.errors import (
    AlreadyStarted,
    ConnectError,
    ConnectFailed,
    ConnectIgnored,
    WrongThread,
    connect_error_to_string,
    start_error_to_string,
)
from erldist.events import ClusterEvent, NodeTypes, NodeUp
from erldist.health import ClusterHealth
from erldist.monitor import ClusterMonitor, Subject
from erldist.names import BudgetSite
from erldist.runtime.gen_server import GenServer
from erldist.runtime.node import Node, check_peer, check_start
from erldist.runtime.process import Destination
from erldist.runtime.rpc import Exposed
from erldist.term.types import Pid, Term
from erldist.tls_settings import TlsSettings

__all__ = [
    "ClusterHealth",
    "SyncProcess",
    "actor_pool",
    "actor_start",
    "actor_stop",
    "call",
    "cast",
    "connect",
    "connect_error_to_string",
    "connected_count",
    "expose",
    "has_peers",
    "health",
    "is_distributed",
    "is_healthy",
    "nodes",
    "pg_join",
    "pg_leave",
    "pg_local_members",
    "pg_members",
    "pg_which_groups",
    "ping",
    "process",
    "register",
    "register_name",
    "registry_lookup",
    "registry_lookup_with_timeout",
    "registry_register",
    "registry_unregister",
    "rpc",
    "self_node",
    "send",
    "send_name",
    "start_error_to_string",
    "start_monitor",
    "start_node",
    "start_server",
    "stop_node",
    "subject_call",
    "subject_lookup",
    "subject_send",
    "subscribe",
    "unexpose",
    "unregister",
    "unregister_name",
    "unsubscribe",
    "whereis",
    "whereis_name",
]

NOT_DISTRIBUTED = "nonode@nohost"
#: Extra seconds a blocking call waits beyond the operation's own deadline,
#: so the operation reports its own timeout rather than the facade's.
_GRACE = 5.0
#: How long past its deadline ``health()`` waits for the node's own report
#: before answering with every node unreachable (the seed's 0.5 s).
_HEALTH_GRACE = 0.5

T = TypeVar("T")

_lock = threading.RLock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_node: Node | None = None
#: Replaced, never mutated: the loop thread reads it without ``_lock``, which a
#: caller may hold while waiting on that very loop (``stop_node`` does).
_monitors: tuple[ClusterMonitor, ...] = ()
#: The visible peers, kept from the node's events (same rule: replaced, never
#: mutated), so ``health()`` can name them even when the loop cannot answer.
_visible: tuple[str, ...] = ()


def _ensure_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = event_loop.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="erldist-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def _run(coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
    loop = _ensure_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise WrongThread(
            "erldist.cluster functions block; call them from your own threads, "
            "or use the asyncio API (erldist.Node) inside the event loop"
        )
    fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return fut.result(timeout)
    except BaseException:
        fut.cancel()  # a timeout, or the caller interrupted: nothing keeps running
        raise


def _running_node() -> Node | None:
    node = _node
    return node if node is not None and node.is_running else None


def _fan_out(event: ClusterEvent) -> None:
    global _visible
    if event.node_type == "visible":
        others = tuple(n for n in _visible if n != event.node)
        _visible = (*others, event.node) if isinstance(event, NodeUp) else others
    for monitor in _monitors:
        monitor.publish(event)


# --- start / stop ----------------------------------------------------------------------


def start_node(
    name: str,
    cookie: str,
    *,
    hidden: bool = False,
    port: int = 0,
    epmd_port: int | None = None,
    timeout: float | None = None,
    tls: TlsSettings | None = None,
) -> None:
    """Make this process the distributed node ``name`` (e.g. ``"app@127.0.0.1"``).

    ``tls`` (default: ``config.tls``, None for plain TCP) makes it a TLS
    distribution node (OTP's ``-proto_dist inet_tls``); a certificate or key
    that cannot be loaded raises ``TlsSettingsError``.

    Raises a ``StartError``: ``InvalidNodeName``, ``StartAtomBudgetExceeded``,
    ``InvalidCookieFormat`` (checked in that order, before anything else),
    ``AlreadyStarted``, ``NetworkError`` (port in use, EPMD unreachable,
    timed out) or ``StartFailed``. Never blocks longer than ``timeout``
    (default ``config.start_timeout``).
    """
    global _node, _visible
    check_start(name, cookie)
    budget_s = config_mod.get().start_timeout if timeout is None else timeout

    async def boot() -> Node:
        node = await Node.start(name, cookie, hidden=hidden, port=port, epmd_port=epmd_port,
                                tls=tls,
                                timeout=budget_s)
        node.add_listener(_fan_out)  # on the loop, before any peer can connect
        return node

    with _lock:
        if _running_node() is not None:
            raise AlreadyStarted()
        _visible = ()
        _node = _run(boot(), budget_s + _GRACE)


def stop_node() -> None:
    """Leave the cluster: close every connection and unregister. No-op when not started."""
    global _node
    with _lock:
        node, _node = _node, None
        if node is not None:
            _run(node.stop(), 30.0)


# --- connect / ping --------------------------------------------------------------------


def connect(node: str) -> None:
    """Connect to ``node``. Raises ``InvalidNodeFormat``, ``ConnectAtomBudgetExceeded``,
    ``ConnectIgnored`` (this process is not distributed) or ``ConnectFailed``."""
    check_peer(node, BudgetSite.CONNECT)
    local = _running_node()
    if local is None:
        raise ConnectIgnored()
    try:
        _run(local.connect(node), local.config.connect_timeout + _GRACE)
    except TimeoutError:
        raise ConnectFailed("the node's event loop did not answer in time") from None


def ping(node: str) -> bool:
    """True when ``node`` answers (connecting first if needed). Never raises."""
    try:
        check_peer(node, BudgetSite.PING)
    except ConnectError:
        return False
    local = _running_node()
    if local is None:
        return False
    try:
        return _run(local.ping(node), local.config.ping_timeout + _GRACE)
    except TimeoutError:
        return False


# --- topology --------------------------------------------------------------------------


def _on_loop(fn: Callable[[Node], T], default: T) -> T:
    local = _running_node()
    if local is None:
        return default

    async def call() -> T:
        return fn(local)

    return _run(call(), 30.0)


def nodes() -> list[str]:
    """Visible connected peers, like ``erlang:nodes()``."""
    return _on_loop(lambda n: n.nodes(), [])


def self_node() -> str:
    """This node's name, or ``"nonode@nohost"`` when not distributed."""
    local = _running_node()
    return local.name if local is not None else NOT_DISTRIBUTED


def connected_count() -> int:
    return len(nodes())


def is_distributed() -> bool:
    """Whether this process runs a distribution node (``erlang:is_alive/0``)."""
    return _running_node() is not None


def has_peers() -> bool:
    """At least one connected peer. A topology check, not a health check."""
    return connected_count() > 0


def is_healthy() -> bool:
    """Deprecated alias of ``has_peers``."""
    warnings.warn("is_healthy() is deprecated; use has_peers()", DeprecationWarning,
                  stacklevel=2)
    return has_peers()


def health() -> ClusterHealth:
    """Ping every connected node in parallel under one deadline (see ``Node.health``).

    Never raises, and returns by ``config.health_timeout`` + 0.5 s: if the
    node's loop cannot produce its report by then (it is starved), the report
    says every visible peer is unreachable.
    """
    local = _running_node()
    if local is None:
        return ClusterHealth.not_distributed()
    budget_s = local.config.health_timeout
    deadline = time.monotonic() + budget_s
    visible = _visible

    async def within_deadline() -> ClusterHealth:
        # The deadline runs from this call, not from when the loop gets to it.
        return await local.health(timeout=max(0.0, deadline - time.monotonic()))

    try:
        return _run(within_deadline(), budget_s + _HEALTH_GRACE)
    except TimeoutError:
        return ClusterHealth(local.name, True, visible, len(visible), (), visible)


# --- monitor ---------------------------------------------------------------------------


def start_monitor(diagnostic: Callable[[object], object] | None = None) -> ClusterMonitor:
    """A monitor that broadcasts NodeUp/NodeDown of the default node to its subscribers.

    ``diagnostic`` receives anything published to it that is not a node event.
    """
    global _monitors
    monitor = ClusterMonitor(diagnostic)
    with _lock:
        _monitors = (*(m for m in _monitors if not m.closed), monitor)
    return monitor


Listener = Subject[ClusterEvent] | Callable[[ClusterEvent], object]


def subscribe(
    monitor: ClusterMonitor, listener: Listener, *, node_type: NodeTypes = "visible"
) -> None:
    """Send every later NodeUp/NodeDown to ``listener`` (duplicates are ignored).

    Only of visible peers, the ones ``nodes()`` lists, unless ``node_type``
    is "hidden" or "all" (``net_kernel:monitor_nodes(true, [{node_type, all}])``).
    """
    monitor.subscribe(listener, node_type=node_type)


def unsubscribe(monitor: ClusterMonitor, listener: Listener) -> None:
    monitor.unsubscribe(listener)


# --- processes -------------------------------------------------------------------------


def _required_node() -> Node:
    local = _running_node()
    if local is None:
        raise ConnectIgnored()
    return local


def _with_node(fn: Callable[[Node], T]) -> T:
    """``fn(node)`` on the loop thread; ``ConnectIgnored`` when not started."""
    local = _required_node()

    async def call() -> T:
        return fn(local)

    return _run(call(), 30.0)


def _run_for_process(coro: Coroutine[Any, Any, Any], timeout: float | None) -> Any:
    return _run(coro, None if timeout is None else timeout + _GRACE)


def process(
    name: str | None = None,
    *,
    trap_exit: bool = False,
    maxsize: int | None = None,
    overflow: str | None = None,
) -> SyncProcess:
    """A new process of the default node, for threaded code (see ``Node.process``).

    Raises ``ConnectIgnored`` when the node is not started, ``NameTaken``.
    """
    made = _with_node(lambda n: n.process(name, trap_exit=trap_exit, maxsize=maxsize,
                                          overflow=overflow))
    return SyncProcess(made, _run_for_process)


def send(to: Destination, message: Term) -> None:
    """Send ``message`` from the node's system process (see ``Node.send``)."""
    local = _required_node()
    _run(local.send(to, message), local.config.connect_timeout + _GRACE)


def call(dest: Destination, request: Term, timeout: float = 5.0) -> Any:
    """``gen_server:call`` (see ``Node.call``): ``CallTimeout``, ``CallTargetDown``."""
    local = _required_node()
    return _run(local.call(dest, request, timeout=timeout), timeout + _GRACE)


def cast(dest: Destination, request: Term) -> None:
    """``gen_server:cast`` (see ``Node.cast``)."""
    local = _required_node()
    _run(local.cast(dest, request), local.config.connect_timeout + _GRACE)


def start_server(
    server: GenServer,
    *args: Any,
    name: str | None = None,
    link: Pid | None = None,
    timeout: float | None = None,
) -> Pid:
    """Start a ``GenServer`` on the default node (see ``Node.start_server``).

    Its handlers run on the node's loop thread, so they must not block for long.
    """
    local = _required_node()
    budget_s = local.config.default_init_timeout if timeout is None else timeout
    pid: Pid = _run(local.start_server(server, *args, name=name, link=link, timeout=budget_s),
                    budget_s + _GRACE)
    return pid


def expose(module: str, function: str, fn: Exposed) -> None:
    """Make ``fn`` callable from Erlang as ``module:function`` (see ``Node.expose``).

    A plain ``fn`` runs on the node's loop thread and must be quick; make it
    ``async`` (or hand the work to a thread) when it is not.
    """
    _with_node(lambda n: n.expose(module, function, fn))


def unexpose(module: str, function: str) -> bool:
    """Make ``module:function`` undefined again; False if it was not exposed."""
    return _with_node(lambda n: n.unexpose(module, function))


def rpc(node: str, module: str, function: str, args: list[Term], timeout: float = 5.0) -> Any:
    """``erpc:call`` from Python (see ``Node.rpc``): the value, or an ``RpcError``."""
    local = _required_node()
    return _run(local.rpc(node, module, function, args, timeout=timeout),
                max(timeout, 0.0) + local.config.connect_timeout + _GRACE)


def register(name: str, pid: Pid) -> None:
    """``erlang:register/2`` on the default node."""
    _with_node(lambda n: n.register(name, pid))


def unregister(name: str) -> None:
    _with_node(lambda n: n.unregister(name))


def whereis(name: str) -> Pid | None:
    return _on_loop(lambda n: n.whereis(name), None)




# --- global names and process groups ---------------------------------------------------

#: A registration queues at the cluster's lock behind others; this bounds the wait.
_GLOBAL_BUDGET = 120.0


def register_name(name: Term, pid: Pid, *, resolve: str = "random_exit") -> bool:
    """``global:register_name/3`` on the default node: True (yes) or False (no)."""
    local = _required_node()
    return bool(_run(local.register_name(name, pid, resolve=resolve), _GLOBAL_BUDGET))


def unregister_name(name: Term) -> None:
    """``global:unregister_name/1`` on the default node."""
    local = _required_node()
    _run(local.unregister_name(name), _GLOBAL_BUDGET)


def whereis_name(name: Term) -> Pid | None:
    """``global:whereis_name/1``, from the replicated table."""
    return _on_loop(lambda n: n.whereis_name(name), None)


def send_name(name: Term, message: Term) -> Pid:
    """``global:send/2``: ``GlobalNameNotRegistered`` if nobody holds ``name``."""
    local = _required_node()
    pid: Pid = _run(local.send_name(name, message), local.config.connect_timeout + _GRACE)
    return pid


def pg_join(group: Term, pids: Pid | list[Pid], scope: str = "pg") -> None:
    """``pg:join/3`` for processes of the default node."""
    _with_node(lambda n: n.pg(scope).join(group, pids))


def pg_leave(group: Term, pids: Pid | list[Pid], scope: str = "pg") -> bool:
    """``pg:leave/3``: False for ``not_joined``."""
    return _with_node(lambda n: n.pg(scope).leave(group, pids))


def pg_members(group: Term, scope: str = "pg") -> list[Pid]:
    """``pg:get_members/2``."""
    return _on_loop(lambda n: n.pg(scope).get_members(group), [])


def pg_local_members(group: Term, scope: str = "pg") -> list[Pid]:
    """``pg:get_local_members/2``."""
    return _on_loop(lambda n: n.pg(scope).get_local_members(group), [])


def pg_which_groups(scope: str = "pg") -> list[Term]:
    """``pg:which_groups/1``."""
    return _on_loop(lambda n: n.pg(scope).which_groups(), [])


# --- the seed's registry (``erldist.registry``) from synchronous code -------------------


def registry_register(name: str, pid: Pid) -> None:
    """``registry.register``: ``RegistryInvalidArgument``, ``RegistryAlreadyExists``."""
    local = _required_node()
    _run(registry.register(local, name, pid), _GLOBAL_BUDGET)


def registry_lookup(name: str) -> Pid:
    """``registry.lookup``: the holder, or ``RegistryNotFound``."""
    return _with_node(lambda n: registry.lookup(n, name))


def registry_unregister(name: str) -> None:
    """``registry.unregister``: ``RegistryNotFound`` or ``RegistryNotOwned``."""
    local = _required_node()
    _run(registry.unregister(local, name), _GLOBAL_BUDGET)


def registry_lookup_with_timeout(name: str, timeout_ms: int, poll_ms: int) -> Pid:
    """``registry.lookup_with_timeout``: polls; ``LookupNotFound`` after ``timeout_ms``."""
    local = _required_node()
    pid: Pid = _run(registry.lookup_with_timeout(local, name, timeout_ms, poll_ms),
                    max(timeout_ms, 0) / 1000 + _GRACE)
    return pid


# --- Gleam ``distribute`` subjects and actors (``erldist.gleam``) from synchronous code ---


def subject_lookup(name: str, codec: Codec[T]) -> gleam.Subject[T]:
    """``registry.lookup`` as a typed subject: ``RegistryNotFound`` if nobody holds it."""
    return _with_node(lambda n: gleam.lookup(n, name, codec))


def subject_send(subject: gleam.Subject[T], value: T) -> None:
    """``global.send`` (see ``erldist.gleam.send``): ``SendEncodeFailed``, ``PayloadTooLarge``."""
    local = _required_node()
    _run(gleam.send(local, subject, value), local.config.connect_timeout + _GRACE)


def subject_call(
    subject: gleam.Subject[Any],
    make_request: Callable[[WireSubject], Any],
    response: Codec[T],
    timeout: float | None = None,
) -> T:
    """``global.call`` (see ``erldist.gleam.call``): ``CallTimeout``, ``CallTargetDown``..."""
    local = _required_node()
    budget = local.config.default_call_timeout if timeout is None else max(timeout, 0.0)
    return _run(gleam.call(local, subject, make_request, response, budget), budget + _GRACE)


def actor_start(
    codec: Codec[Any],
    handler: gleam.Handler[Any, Any],
    state: Any,
    *,
    name: str | None = None,
    register: bool = True,
    on_decode_error: gleam.DecodeErrorHook | None = None,
) -> gleam.Actor[Any, Any]:
    """An actor on the default node (see ``erldist.gleam.start_actor``).

    Its handler runs on the node's loop thread, so it must not block for long.
    """
    local = _required_node()
    return _run(gleam.start_actor(local, codec, handler, state, name=name, register=register,
                                  on_decode_error=on_decode_error), _GLOBAL_BUDGET)


def actor_pool(
    base: str,
    size: int,
    codec: Codec[Any],
    handler: gleam.Handler[Any, Any],
    *,
    state: Callable[[int], Any],
    on_decode_error: gleam.DecodeErrorHook | None = None,
) -> gleam.Pool[Any, Any]:
    """Actors ``base_1`` .. ``base_size`` (see ``erldist.gleam.start_pool``)."""
    local = _required_node()
    return _run(gleam.start_pool(local, base, size, codec, handler, state=state,
                                 on_decode_error=on_decode_error), _GLOBAL_BUDGET)


def actor_stop(actor: gleam.Actor[Any, Any] | gleam.Pool[Any, Any]) -> None:
    """Stop an actor, or every member of a pool; their names are unregistered."""
    _required_node()
    _run(actor.stop(), _GLOBAL_BUDGET)
