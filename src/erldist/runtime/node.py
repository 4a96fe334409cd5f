"""``Node``: one local distribution node, the asyncio core of erldist.

A node is its lifecycle (listen, register with EPMD, stop) and its public
API. The work lives in the pieces it wires together: ``Peers`` (one record
per connection), ``Router`` (every process and every signal), and the
system services (``net_kernel``, ``rex``, ``erldist_mesh``, ``global``),
which are processes like any other. Several nodes may live in one process;
``erldist.cluster`` drives a default one from synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from erldist import config as config_mod
from erldist import telemetry
from erldist.config import Config
from erldist.errors import (
    CallError,
    ConnectAtomBudgetExceeded,
    ConnectFailed,
    ConnectIgnored,
    EpmdError,
    GlobalNameNotRegistered,
    InvalidArgument,
    InvalidCookieFormat,
    InvalidNodeFormat,
    InvalidNodeName,
    NetworkError,
    StartAtomBudgetExceeded,
    StartFailed,
)
from erldist.events import (
    ClusterEvent,
    NodeDown,
    NodeType,
    NodeTypes,
    NodeUp,
    check_node_types,
    wanted,
)
from erldist.health import ClusterHealth
from erldist.names import (
    BudgetSite,
    CookieFormatError,
    InputKind,
    NameFormatError,
    NodeName,
    atom_budget,
    parse_node_name,
    validate_cookie,
)
from erldist.protocol import flags
from erldist.runtime.connection import Connection
from erldist.runtime.epmd_policy import NodeRegistration, register_node
from erldist.runtime.gen import CallClient
from erldist.runtime.gen_server import GenServer, start_server
from erldist.runtime.global_compat import GlobalCompat
from erldist.runtime.mailbox import Overflow
from erldist.runtime.peers import Identity, Peers
from erldist.runtime.process import Destination, Process
from erldist.runtime.router import Router
from erldist.runtime.rpc import MAX_RPC_WORKERS, Exposed, RpcClient, RpcServer
from erldist.runtime.services.global_names import RESOLVERS
from erldist.runtime.services.io_server import IoServer
from erldist.runtime.services.mesh import Mesh
from erldist.runtime.services.net_kernel import NetKernel
from erldist.runtime.services.pg import DEFAULT_SCOPE, PgScope
from erldist.runtime.services.rex import Rex
from erldist.runtime.termkey import term_text
from erldist.runtime.tls import TlsContexts, TlsListener
from erldist.term.types import Atom, Export, Pid, Reference, Term
from erldist.tls_settings import TlsSettings

__all__ = ["Node"]

log = logging.getLogger("erldist.node")

_IS_AUTH = Atom("is_auth")
_YES = Atom("yes")


class Node:
    """A running distribution node. Create with ``await Node.start(name, cookie)``."""

    def __init__(
        self, name: NodeName, cookie: str, *, hidden: bool, config: Config | None
    ) -> None:
        self._name = name
        self._name_str = str(name)
        self._cookie = cookie.encode("ascii")
        self.hidden = hidden
        self._config = config  # None: follow the process config, read at each use
        self.loop = asyncio.get_running_loop()
        self.atom = Atom(str(name))
        self.creation = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tls: TlsContexts | None = None
        self._registration: NodeRegistration | None = None
        self._listeners: list[Callable[[ClusterEvent], None]] = []
        self._running = False
        self._stopped: asyncio.Future[None] = self.loop.create_future()
        # Made in _bring_up, once the creation (part of every pid) is known.
        self._peers: Peers | None = None
        self._router: Router | None = None
        self._calls: CallClient | None = None
        self._rpc_server: RpcServer | None = None
        self._rpc: RpcClient | None = None
        self._rex: Rex | None = None
        self._mesh: Mesh | None = None
        self.global_compat: GlobalCompat | None = None
        self._scopes: dict[str, PgScope] = {}
        self._connect_all = True

    # --- starting --------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        name: str,
        cookie: str,
        *,
        hidden: bool = False,
        listen_host: str = "0.0.0.0",
        port: int = 0,
        epmd_port: int | None = None,
        embedded_epmd: bool = True,
        connect_all: bool = True,
        timeout: float | None = None,
        config: Config | None = None,
        tls: TlsSettings | None = None,
    ) -> Node:
        """Validate, listen, register with EPMD (or start the embedded one).

        Checks run in the seed's order: name format, name budget, cookie
        format, cookie budget, then the network. A refused call interns nothing.
        ``config`` (default: the current ``erldist.config``) holds this node's
        limits: decode caps, message size, mailbox bound and overflow policy.
        ``connect_all=False`` is OTP's ``-connect_all false``: peers that other
        erldist nodes announce are not dialled, so no full mesh forms.
        ``tls`` (default: ``config.tls``, None for plain TCP) makes this a TLS
        distribution node (OTP's ``-proto_dist inet_tls``): it accepts and
        dials only over TLS; a bad certificate or key file raises
        ``TlsSettingsError`` before anything listens.
        """
        parsed = check_start(name, cookie)
        node = cls(parsed, cookie, hidden=hidden, config=config)
        node._connect_all = connect_all
        tls = node.config.tls if tls is None else tls
        node._tls = TlsContexts(tls) if tls is not None else None
        budget_s = node.config.start_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(node._bring_up(listen_host, port, epmd_port, embedded_epmd),
                                   budget_s)
        except TimeoutError:
            await node._teardown()
            raise NetworkError(f"start did not finish within {budget_s:g} s") from None
        except BaseException:
            await node._teardown()
            raise
        config_mod.mark_started()  # from now on limits may only tighten
        return node

    async def _bring_up(
        self, listen_host: str, port: int, epmd_port: int | None, embedded: bool
    ) -> None:
        tls = self._tls
        accept: Callable[[], asyncio.Protocol] = self._accept
        if tls is not None:
            timeout = self.config.connect_timeout
            accept = lambda: TlsListener(tls, self._accept, timeout)  # noqa: E731
        try:
            self._server = await self.loop.create_server(
                accept, listen_host, port, reuse_address=True
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise NetworkError(f"eaddrinuse: port {port} is already in use") from exc
            raise NetworkError(f"cannot listen on {listen_host}:{port}: {exc.strerror}") from exc
        self.port = int(self._server.sockets[0].getsockname()[1])
        try:
            self._registration = await register_node(
                self._name.alive,
                self.port,
                epmd_port=epmd_port,
                embedded=embedded,
                hidden=self.hidden,
                timeout=self.config.start_timeout,
                on_event=lambda detail: telemetry.emit(telemetry.EpmdFallback(detail)),
            )
        except EpmdError as exc:
            if exc.kind == "name_taken":
                raise StartFailed(f"the name {self._name.alive!r} is taken on this host") from exc
            raise NetworkError(f"EPMD {exc.kind}: {exc.detail}") from exc
        self.creation = self._registration.creation
        self._wire()
        self._running = True
        log.info("node %s up on port %d (creation %d)", self.name, self.port, self.creation)

    def _wire(self) -> None:
        """Make the peer table, the router and the system services, and connect them."""
        identity = Identity(self._name, self._cookie,
                            flags.OUR_FLAGS | (0 if self.hidden else flags.DFlag.PUBLISHED),
                            self.creation)
        router = self._router = Router(self.name, self.creation, self,
                                       settings=lambda: self.config)
        peers = self._peers = Peers(identity, lambda: self.config, epmd_port=self._epmd_port,
                                    on_up=self._connection_up, on_down=self._connection_down,
                                    on_signal=router.dispatch, tls_contexts=self._tls)
        NetKernel(router)
        self._rpc_server = RpcServer(router)
        self._rex = Rex(router, self._rpc_server.apply, MAX_RPC_WORKERS)
        self._calls = CallClient(router)
        self._rpc = RpcClient(router, IoServer(router).process.pid)
        if self._connect_all:
            self._mesh = Mesh(router, local=self._name, connected=peers.has_connection,
                              visible_peers=lambda: peers.names(visible=True),
                              dial=lambda peer: peers.ensure(peer, None))
        self.global_compat = GlobalCompat(self, router)
        # An Erlang node settling a name clash for a name held here asks this node
        # through rpc:call(Node, global, resolve_it, [Method, Name, Pid1, Pid2]).
        self._rpc_server.expose("global", "resolve_it", self.global_compat.resolve_it)
        self._scopes[DEFAULT_SCOPE] = PgScope(self, router, DEFAULT_SCOPE)
        peers.accepting = True

    # --- identity --------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name_str

    @property
    def node_name(self) -> NodeName:
        return self._name

    @property
    def config(self) -> Config:
        """The settings in force: the ``Config`` given to ``start``, else the
        process's current one, read afresh at each use."""
        return self._config if self._config is not None else config_mod.get()

    @property
    def is_running(self) -> bool:
        return self._running

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<Node {self.name} {state} port={self.port}>"

    @property
    def tls(self) -> TlsSettings | None:
        """The TLS distribution settings, or None for plain TCP."""
        return self._tls.settings if self._tls is not None else None

    @property
    def router(self) -> Router:
        if self._router is None:
            raise ConnectIgnored()
        return self._router

    @property
    def peers(self) -> Peers:
        if self._peers is None:
            raise ConnectIgnored()
        return self._peers

    def make_ref(self) -> Reference:
        return self.router.make_ref()

    # --- connections -------------------------------------------------------------------

    def nodes(self, kind: str = "visible") -> list[str]:
        """Connected peers like ``erlang:nodes/1``: visible, hidden, or connected."""
        if kind not in ("visible", "hidden", "connected"):
            raise InvalidArgument(
                f"kind must be 'visible', 'hidden' or 'connected', not {kind!r}")
        if self._peers is None:
            return []
        return self._peers.names(None if kind == "connected" else kind == "visible")

    def connection(self, peer: str) -> Connection | None:
        return self._peers.connection(peer) if self._peers is not None else None

    def _accept(self) -> Connection:
        return self.peers.accept()

    def _connection_up(self, conn: Connection) -> None:
        peer = conn.peer_name
        assert peer is not None
        atom_budget().learn(peer)  # its atom exists now, as in a BEAM: ping/connect are free
        self._publish(NodeUp(peer, node_type=_node_type(conn)))
        if conn.visible and self._mesh is not None:
            self._mesh.peer_up(peer)

    def _connection_down(self, conn: Connection, reason: str) -> None:
        peer = conn.peer_name
        assert peer is not None
        if self._router is not None:
            self._router.node_down(peer)
        if self._calls is not None:
            self._calls.node_down(peer)
        self._publish(NodeDown(peer, reason, node_type=_node_type(conn)))

    def _epmd_port(self) -> int | None:
        reg = self._registration
        return reg.epmd_port if reg is not None else None

    # --- the router's network (``router.Network``) -----------------------------------------

    def link_to(self, node: str) -> Connection | None:
        return self._peers.connection(node) if self._peers is not None else None

    async def reach(self, node: str) -> Connection:
        """The connection to ``node`` for a send, link or monitor; dials if needed."""
        if not self._running:
            raise ConnectIgnored()
        return await self.peers.ensure(check_peer(node, BudgetSite.CONNECT), None)

    # --- events ----------------------------------------------------------------------

    def add_listener(self, listener: Callable[[ClusterEvent], None]) -> None:
        """Call ``listener`` on the node's loop for every NodeUp/NodeDown, in order."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[ClusterEvent], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _publish(self, event: ClusterEvent) -> None:
        telemetry.emit(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("node event listener failed")

    async def events(self, node_type: NodeTypes = "visible") -> AsyncIterator[ClusterEvent]:
        """``async for event in node.events()``: NodeUp/NodeDown as they happen,
        of visible peers like ``nodes()`` unless ``node_type`` is "hidden" or "all"."""
        node_type = check_node_types(node_type)
        queue: asyncio.Queue[ClusterEvent | None] = asyncio.Queue()

        def put(event: ClusterEvent) -> None:
            if wanted(event, node_type):
                queue.put_nowait(event)

        self.add_listener(put)
        self._stopped.add_done_callback(lambda _f: queue.put_nowait(None))
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self.remove_listener(put)

    # --- connecting ------------------------------------------------------------------

    async def connect(self, node: str, *, timeout: float | None = None) -> None:
        """Connect to ``node`` (no-op when connected, or when it is this node, as in
        OTP). Raises a ``ConnectError``."""
        peer = check_peer(node, BudgetSite.CONNECT)
        if not self._running:
            raise ConnectIgnored()
        if str(peer) != self.name:
            await self.peers.ensure(peer, timeout)

    async def disconnect(self, node: str) -> bool:
        """``erlang:disconnect_node``: close the connection; False if there was none."""
        return self._peers is not None and self._peers.disconnect(node, "disconnect")

    # --- ping and health -------------------------------------------------------------

    async def ping(self, node: str, *, timeout: float | None = None) -> bool:
        """``net_adm:ping``: connect if needed, ask ``net_kernel``; True for pong.

        Never raises for a bad, unknown or unreachable node; an exhausted atom
        budget also gives False. A connected peer's name was checked when it
        connected: pinging it again parses nothing and charges nothing.
        """
        budget_s = self.config.ping_timeout if timeout is None else timeout
        if self._running and self.connection(node) is not None:
            return await self._is_auth(node, budget_s)  # the call has its own deadline
        try:
            peer = check_peer(node, BudgetSite.PING)
        except (InvalidNodeFormat, ConnectAtomBudgetExceeded):
            return False
        try:
            async with asyncio.timeout(budget_s):  # one deadline for connect and call
                if str(peer) == self.name:
                    return self._running  # net_adm:ping(node()) is pong on a live node
                await self.peers.ensure(peer, budget_s)
                return await self._is_auth(str(peer), budget_s)
        except (TimeoutError, ConnectFailed, ConnectIgnored):
            return False

    async def _is_auth(self, peer: str, timeout: float) -> bool:
        assert self._calls is not None
        try:
            reply = await self._calls.call(("net_kernel", peer), (_IS_AUTH, self.atom), timeout,
                                           monitor=False)
        except CallError:
            return False
        return bool(reply == _YES)

    async def health(self, *, timeout: float | None = None) -> ClusterHealth:
        """Ping every visible peer in parallel under one absolute deadline.

        At most ``config.health_parallelism`` pings are in flight; peers still
        pending at the deadline are unreachable; nothing outlives the call.
        """
        if not self._running:
            return ClusterHealth.not_distributed()
        connected = tuple(self.nodes())
        budget_s = self.config.health_timeout if timeout is None else timeout
        gate = asyncio.Semaphore(self.config.health_parallelism)
        reachable: set[str] = set()

        async def probe(peer: str) -> None:
            async with gate:
                if self.connection(peer) is not None and await self._is_auth(peer, budget_s):
                    reachable.add(peer)

        tasks = [self.loop.create_task(probe(p)) for p in connected]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=budget_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        snapshot = frozenset(reachable)
        return ClusterHealth(
            self_node=self.name,
            is_distributed=True,
            connected_nodes=connected,
            connected_count=len(connected),
            reachable_nodes=tuple(p for p in connected if p in snapshot),
            unreachable_nodes=tuple(p for p in connected if p not in snapshot),
        )

    # --- processes -------------------------------------------------------------------

    def process(
        self,
        name: str | None = None,
        *,
        trap_exit: bool = False,
        maxsize: int | None = None,
        overflow: str | None = None,
    ) -> Process:
        """A new process (a pid peers can send to, link to and monitor), registered
        as ``name`` if given. It lives until ``exit()``, an exit signal, or ``stop()``.

        ``maxsize``/``overflow`` override ``config.mailbox_maxsize`` and
        ``config.mailbox_overflow`` for this one mailbox.
        """
        return self.router.new_process(name, trap_exit=trap_exit, maxsize=maxsize,
                                       overflow=_overflow(overflow))

    def spawn(
        self,
        body: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
        name: str | None = None,
        trap_exit: bool = False,
        maxsize: int | None = None,
        overflow: str | None = None,
    ) -> Process:
        """A process that runs ``await body(process, *args)`` as its own task.

        Returning ends it with ``normal``; an exception ends it with
        ``{python, 'Type', <<"message">>}`` (logged, and reported through
        telemetry); an exit signal that ends it cancels the task.
        """
        return self.router.spawn(body, args, name=name, trap_exit=trap_exit, maxsize=maxsize,
                                 overflow=_overflow(overflow))

    def register(self, name: str, pid: Pid) -> None:
        """``erlang:register/2``; ``NameTaken`` or ``NoProcess`` if it cannot be done."""
        self.router.register(name, pid)

    def unregister(self, name: str) -> None:
        """``erlang:unregister/1``; ``NotRegistered`` if no process holds ``name``."""
        self.router.unregister(name)

    def whereis(self, name: str) -> Pid | None:
        """``erlang:whereis/1``: the local process registered as ``name``."""
        return self.router.whereis(name)

    async def send(self, to: Destination, message: Term, *, sender: Pid | None = None) -> None:
        """Send ``message`` to a pid, a ``(name, node)`` pair, a local name or an alias.

        Connects first when needed (``ConnectFailed`` if that fails) and waits
        while the socket, or a local receiver's full mailbox, pushes back, so a
        fast sender cannot queue without bound. A message to a pid or name that
        does not exist is dropped, as in Erlang.
        """
        router = self._router
        if router is None or self._calls is None:
            raise ConnectIgnored()
        await router.send(sender or self._calls.process.pid, to, message)

    async def send_exit(self, pid: Pid, reason: Term, *, sender: Pid | None = None) -> None:
        """``exit(Pid, Reason)`` from ``sender`` (default: a system process)."""
        await self.router.send_exit(sender or self._system_pid(), pid, reason)

    async def call(self, dest: Destination, request: Term, *, timeout: float = 5.0) -> Any:
        """``gen_server:call(Dest, Request, Timeout)`` to an Erlang, Elixir or Python server.

        Raises ``CallTimeout``, or ``CallTargetDown`` with the reason (``noproc``
        at once for a target that does not exist, ``noconnection`` when its
        node is unreachable or goes away). Leaves nothing behind when it returns.
        """
        if self._calls is None or not self._running:
            raise ConnectIgnored()
        return await self._calls.call(dest, request, timeout)

    async def cast(self, dest: Destination, request: Term) -> None:
        """``gen_server:cast(Dest, Request)``: never fails for a missing target, as
        in OTP; ``ConnectError`` only when the target's node cannot be reached."""
        if self._calls is None or not self._running:
            raise ConnectIgnored()
        await self._calls.cast(dest, request)

    async def start_server(
        self,
        server: GenServer,
        *args: Any,
        name: str | None = None,
        link: Pid | None = None,
        timeout: float | None = None,
    ) -> Pid:
        """Start a ``GenServer`` as a process of this node; its pid once ``init`` is done.

        ``name`` registers it (``NameTaken`` if held); ``link`` links it to a
        pid first, e.g. an Erlang supervisor's. Raises ``ServerStartFailed``
        when ``init`` raises, ``TimeoutError`` after ``timeout`` (default
        ``config.default_init_timeout``).
        """
        budget_s = self.config.default_init_timeout if timeout is None else timeout
        return await start_server(self.router, server, args, name=name, link=link,
                                  timeout=budget_s)

    def expose(self, module: str, function: str, fn: Exposed) -> None:
        """Make ``fn`` callable from Erlang as ``module:function`` by ``rpc:call``,
        ``erpc:call``, ``rpc:multicall`` and ``rpc:cast``; nothing else is callable.

        ``fn`` gets the Erlang arguments, may be plain (it then runs on the
        node's loop, so it must be quick) or ``async``; its return value is the
        result (``None`` answers ``ok``). Raising ``RpcThrow``/``RpcExit``
        answers with a throw/exit; any other exception with an Erlang error
        ``{python, 'Type', <<"message">>}``.
        """
        if self._rpc_server is None:
            raise ConnectIgnored()
        self._rpc_server.expose(module, function, fn)

    def unexpose(self, module: str, function: str) -> bool:
        """Make ``module:function`` undefined again; False if it was not exposed."""
        return self._rpc_server is not None and self._rpc_server.unexpose(module, function)

    async def rpc(
        self, node: str, module: str, function: str, args: list[Term], *,
        timeout: float = 5.0,
    ) -> Any:
        """``erpc:call(Node, Module, Function, Args, Timeout)`` from Python.

        Returns the value. Raises ``RpcTimeout``, ``RpcNodeDown``,
        ``RpcRefused`` (``notsup``...), ``RpcThrow``, ``RpcExit``,
        ``RpcUndefined``, ``RpcRaised`` or ``RpcKilled`` (all ``RpcError``).
        """
        if self._rpc is None or not self._running:
            raise ConnectIgnored()
        return await self._rpc.rpc(node, module, function, args, timeout)

    # --- global names (OTP ``global``) ---------------------------------------------------

    def _global(self) -> GlobalCompat:
        if self.global_compat is None or not self._running:
            raise ConnectIgnored()
        return self.global_compat

    async def register_name(self, name: Term, pid: Pid, *, resolve: str = "random_exit") -> bool:
        """``global:register_name/3``: True if ``pid`` now holds ``name`` cluster-wide,
        False if the name is taken or ``pid`` already has a global name.

        ``name`` is any term: ``Atom("x")`` for an atom, a ``str`` for a UTF-8
        binary (Elixir and Gleam names). ``resolve`` picks what happens when
        two partitions meet holding the name: ``random_exit`` (OTP's default:
        the pid on the node that sorts last is killed), ``random_notify`` or
        ``notify_all``.
        """
        yes = await self._global().registrar.register(name, pid, _resolver(resolve))
        if yes:
            telemetry.emit(telemetry.ActorRegistered(term_text(name)))
        else:
            telemetry.emit(telemetry.ActorRegistrationFailed(term_text(name), "taken"))
        return yes

    async def re_register_name(self, name: Term, pid: Pid, *, resolve: str = "random_exit"
                               ) -> None:
        """``global:re_register_name/3``: ``name`` is ``pid``'s, whoever held it."""
        await self._global().registrar.re_register(name, pid, _resolver(resolve))
        telemetry.emit(telemetry.ActorRegistered(term_text(name)))

    async def unregister_name(self, name: Term) -> None:
        """``global:unregister_name/1`` (nothing happens for a name nobody holds)."""
        held = self._global().where(name) is not None
        await self._global().registrar.unregister(name)
        telemetry.emit(telemetry.ActorUnregistered(term_text(name), held))

    def whereis_name(self, name: Term) -> Pid | None:
        """``global:whereis_name/1``, from the replicated table: no round trip."""
        return self._global().where(name)

    def registered_names(self) -> list[Term]:
        """``global:registered_names/0``."""
        return [row.name for row in self._global().names.rows()]

    async def send_name(self, name: Term, message: Term, *, sender: Pid | None = None) -> Pid:
        """``global:send/2``: send to the holder of ``name`` and return its pid;
        ``GlobalNameNotRegistered`` if nobody holds it."""
        pid = self._global().where(name)
        if pid is None:
            raise GlobalNameNotRegistered(name)
        await self.send(pid, message, sender=sender)
        return pid

    # --- process groups (OTP ``pg``) --------------------------------------------------------

    def pg(self, scope: str = DEFAULT_SCOPE) -> PgScope:
        """The ``pg`` scope ``scope`` of this node (``pg``, the default, always runs;
        another is started on first use, as ``pg:start(Scope)`` would be)."""
        found = self._scopes.get(scope)
        if found is None:
            if not self._running:
                raise ConnectIgnored()
            found = self._scopes[scope] = PgScope(self, self.router, scope)
        return found

    def _system_pid(self) -> Pid:
        assert self._calls is not None
        return self._calls.process.pid

    # --- stopping --------------------------------------------------------------------

    async def stop(self) -> None:
        """Close every connection (NodeDown for each), end every process, unregister."""
        if not self._running and self._stopped.done():
            return
        self._running = False
        await self._teardown()

    async def _teardown(self) -> None:
        self._running = False
        if self._server is not None:
            self._server.close()
        if self._tls is not None:
            await self._tls.close()
        if self._peers is not None:
            await self._peers.close()
        if self.global_compat is not None:
            self.global_compat.close()
        if self._mesh is not None:
            self._mesh.close()
        if self._rex is not None:
            self._rex.close()
        for scope in self._scopes.values():
            scope.close()
        if self._router is not None:
            self._router.close()
        if self._registration is not None:
            await self._registration.close()
            self._registration = None
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        if not self._stopped.done():
            self._stopped.set_result(None)
        log.info("node %s stopped", self.name)

    async def __aenter__(self) -> Node:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _node_type(conn: Connection) -> NodeType:
    """Which kind of peer ``conn`` links to, for NodeUp/NodeDown (``nodes()`` lists visible)."""
    return "visible" if conn.visible else "hidden"


def _resolver(resolve: str) -> Export:
    try:
        return RESOLVERS[resolve]
    except KeyError:
        raise InvalidArgument(
            f"resolve must be one of {sorted(RESOLVERS)}, not {resolve!r}") from None


def _overflow(value: str | None) -> Overflow | None:
    return Overflow(value) if value is not None else None


def check_start(name: str, cookie: str) -> NodeName:
    """``start_node``'s checks in the seed's order: name format, name budget,
    cookie format, cookie budget. A refused call interns nothing."""
    try:
        parsed = parse_node_name(name)
    except NameFormatError as exc:
        raise InvalidNodeName(str(exc)) from None
    budget = atom_budget()
    if not budget.charge(str(parsed), where=BudgetSite.START_NODE, kind=InputKind.NODE_NAME):
        raise StartAtomBudgetExceeded()
    try:
        validate_cookie(cookie)
    except CookieFormatError as exc:
        raise InvalidCookieFormat(str(exc)) from None
    if not budget.charge(cookie, where=BudgetSite.START_NODE, kind=InputKind.COOKIE):
        raise StartAtomBudgetExceeded()
    return parsed


def check_peer(node: str, site: BudgetSite) -> NodeName:
    """A peer name's checks for connect/ping/send: format, then the atom budget."""
    try:
        parsed = parse_node_name(node)
    except NameFormatError as exc:
        raise InvalidNodeFormat(str(exc)) from None
    if not atom_budget().charge(str(parsed), where=site, kind=InputKind.NODE_NAME):
        raise ConnectAtomBudgetExceeded()
    return parsed

