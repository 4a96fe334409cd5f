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
    InvalidCookieFormat,
    InvalidNodeFormat,
    InvalidNodeName,
    NetworkError,
    StartAtomBudgetExceeded,
    StartFailed,
)
from erldist.events import ClusterEvent, NodeDown, NodeUp
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
from erldist.protocol.signals import Signal
from erldist.runtime.connection import Connection
from erldist.runtime.epmd_policy import NodeRegistration, register_node
from erldist.runtime.gen import CallClient
from erldist.runtime.global_compat import GlobalCompat
from erldist.runtime.mailbox import Overflow
from erldist.runtime.peers import Identity, Peers
from erldist.runtime.process import Process
from erldist.runtime.router import Destination, Router
from erldist.runtime.services.global_names import RESOLVERS
from erldist.runtime.services.mesh import Mesh
from erldist.runtime.services.net_kernel import NetKernel
from erldist.runtime.services.pg import DEFAULT_SCOPE, PgScope
from erldist.runtime.services.rex import Rex
from erldist.runtime.termkey import term_text
from erldist.term.types import Atom, Export, Pid, Reference, Term

__all__ = ["Node"]

log = logging.getLogger("erldist.node")

_IS_AUTH = Atom("is_auth")
_YES = Atom("yes")


class Node:
    """A running distribution node. Create with ``await Node.start(name, cookie)``."""

    def __init__(self, name: NodeName, cookie: str, *, hidden: bool, config: Config) -> None:
        self._name = name
        self._name_str = str(name)
        self._cookie = cookie.encode("ascii")
        self.hidden = hidden
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.atom = Atom(str(name))
        self.creation = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._registration: NodeRegistration | None = None
        self._listeners: list[Callable[[ClusterEvent], None]] = []
        self._running = False
        self._stopped: asyncio.Future[None] = self.loop.create_future()
        # Made in _bring_up, once the creation (part of every pid) is known.
        self._peers: Peers | None = None
        self._router: Router | None = None
        self._calls: CallClient | None = None
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
    ) -> Node:
        """Validate, listen, register with EPMD (or start the embedded one).

        Checks run in the seed's order: name format, name budget, cookie
        format, cookie budget, then the network. A refused call interns nothing.
        ``config`` (default: the current ``erldist.config``) holds this node's
        limits: decode caps, message size, mailbox bound and overflow policy.
        ``connect_all=False`` is OTP's ``-connect_all false``: peers that other
        erldist nodes announce are not dialled, so no full mesh forms.
        """
        cfg = config or config_mod.get()
        parsed = check_start(name, cookie)
        node = cls(parsed, cookie, hidden=hidden, config=cfg)
        node._connect_all = connect_all
        budget_s = cfg.start_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(node._bring_up(listen_host, port, epmd_port, embedded_epmd),
                                   budget_s)
        except TimeoutError:
            await node._teardown()
            raise NetworkError(f"start did not finish within {budget_s:g} s") from None
        except BaseException:
            await node._teardown()
            raise
        return node

    async def _bring_up(
        self, listen_host: str, port: int, epmd_port: int | None, embedded: bool
    ) -> None:
        try:
            self._server = await self.loop.create_server(
                self._accept, listen_host, port, reuse_address=True
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
        cfg = self.config
        identity = Identity(self._name, self._cookie,
                            flags.OUR_FLAGS | (0 if self.hidden else flags.DFlag.PUBLISHED),
                            self.creation)
        peers = self._peers = Peers(identity, cfg, epmd_port=self._epmd_port,
                                    on_up=self._connection_up, on_down=self._connection_down,
                                    on_signal=self._on_signal)
        router = self._router = Router(self.name, self.creation, self,
                                       mailbox_maxsize=cfg.mailbox_maxsize,
                                       overflow=Overflow(cfg.mailbox_overflow))
        NetKernel(router)
        Rex(router)
        self._calls = CallClient(router)
        if self._connect_all:
            self._mesh = Mesh(router, long_names=self._name.long,
                              connected=peers.has_connection,
                              visible_peers=lambda: peers.names(visible=True), dial=self._dial)
        self.global_compat = GlobalCompat(self, router)
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
    def is_running(self) -> bool:
        return self._running

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<Node {self.name} {state} port={self.port}>"

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
            raise ValueError(f"kind must be 'visible', 'hidden' or 'connected', not {kind!r}")
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
        self._publish(NodeUp(peer))
        if conn.visible and self._mesh is not None:
            self._mesh.peer_up(peer)

    def _connection_down(self, peer: str, reason: str) -> None:
        if self._router is not None:
            self._router.node_down(peer)
        self._publish(NodeDown(peer, reason))

    def _on_signal(self, conn: Connection, signal: Signal) -> None:
        self.router.dispatch(signal, conn)

    def _epmd_port(self) -> int | None:
        reg = self._registration
        return reg.epmd_port if reg is not None else None

    # --- the router's network (``router.Network``) -----------------------------------------

    def link_to(self, node: str) -> Connection | None:
        return self.connection(node)

    async def reach(self, node: str) -> Connection:
        """The connection to ``node`` for a send, link or monitor; dials if needed."""
        if not self._running:
            raise ConnectIgnored()
        return await self.peers.ensure(check_peer(node, BudgetSite.CONNECT), None)

    async def _dial(self, node: str) -> None:
        """Connect to a node a peer told us of: its name costs the user's budget nothing."""
        try:
            peer = parse_node_name(node)
        except NameFormatError as exc:
            raise InvalidNodeFormat(str(exc)) from None
        await self.peers.ensure(peer, None)

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

    async def events(self) -> AsyncIterator[ClusterEvent]:
        """``async for event in node.events()``: NodeUp/NodeDown as they happen."""
        queue: asyncio.Queue[ClusterEvent | None] = asyncio.Queue()
        self.add_listener(queue.put_nowait)
        self._stopped.add_done_callback(lambda _f: queue.put_nowait(None))
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self.remove_listener(queue.put_nowait)

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
        budget also gives False.
        """
        try:
            peer = check_peer(node, BudgetSite.PING)
        except (InvalidNodeFormat, ConnectAtomBudgetExceeded):
            return False
        budget_s = self.config.ping_timeout if timeout is None else timeout
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
            reply = await self._calls.call(("net_kernel", peer), (_IS_AUTH, self.atom), timeout)
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
        router = self.router
        await router.send(sender or self._system_pid(), to, message)

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
        if self._peers is not None:
            await self._peers.close()
        if self.global_compat is not None:
            self.global_compat.close()
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


def _resolver(resolve: str) -> Export:
    try:
        return RESOLVERS[resolve]
    except KeyError:
        raise ValueError(f"resolve must be one of {sorted(RESOLVERS)}, not {resolve!r}") from None


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

