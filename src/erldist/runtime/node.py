"""``Node``: one local distribution node, the asyncio core of erldist.

A node owns its listener, its EPMD registration, its connection table (one
connection per peer), its system processes and its event fan-out. Several
nodes may live in one process; ``erldist.cluster`` drives a default one from
synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from erldist import config as config_mod
from erldist import telemetry
from erldist.config import Config
from erldist.errors import (
    ConnectAtomBudgetExceeded,
    ConnectFailed,
    ConnectIgnored,
    EpmdError,
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
from erldist.protocol import control, flags
from erldist.protocol.handshake import Acceptor, HandshakeError, HandshakeFailure, Initiator
from erldist.runtime import epmd_client
from erldist.runtime.connection import Connection
from erldist.runtime.epmd_policy import NodeRegistration, register_node
from erldist.runtime.global_compat import GlobalCompat
from erldist.runtime.mailbox import DEFAULT_MAXSIZE, Mailbox
from erldist.runtime.system import SystemProcesses
from erldist.term.types import Atom, Pid, Reference

__all__ = ["Node"]

log = logging.getLogger("erldist.node")

#: Incoming connections allowed to be in the handshake at once.
MAX_HANDSHAKES = 256


@dataclass
class _Attempt:
    """An outgoing connection being set up; callers for the same peer share it."""

    future: asyncio.Future[None]
    conn: Connection | None = None
    superseded: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Node:
    """A running distribution node. Create with ``await Node.start(name, cookie)``."""

    def __init__(
        self,
        name: NodeName,
        cookie: str,
        *,
        hidden: bool,
        config: Config | None,
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
        self._flags = flags.OUR_FLAGS | (0 if hidden else flags.DFlag.PUBLISHED)
        self._server: asyncio.Server | None = None
        self._registration: NodeRegistration | None = None
        self._conns: dict[str, Connection] = {}
        self._pending: dict[str, _Attempt] = {}
        self._handshaking: set[Connection] = set()
        self._listeners: list[Callable[[ClusterEvent], None]] = []
        self._pid_ids = itertools.count(1)
        self._ref_ids = itertools.count(1)
        self._running = False
        self._stopped: asyncio.Future[None] = self.loop.create_future()
        self.system = SystemProcesses(self)
        self.global_compat: GlobalCompat | None = None

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
        timeout: float | None = None,
        config: Config | None = None,
    ) -> Node:
        """Validate, listen, register with EPMD (or start the embedded one).

        Checks run in the seed's order: name format, name budget, cookie
        format, cookie budget, then the network. A refused call interns nothing.
        """
        parsed = check_start(name, cookie)
        node = cls(parsed, cookie, hidden=hidden, config=config)
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
        self.global_compat = GlobalCompat(self)  # its pids need the creation
        self._running = True
        log.info("node %s up on port %d (creation %d)", self.name, self.port, self.creation)

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

    def make_pid(self) -> Pid:
        return Pid(self.atom, next(self._pid_ids), 0, self.creation)

    def make_ref(self) -> Reference:
        n = next(self._ref_ids)
        noise = secrets.randbits(64)  # one system call for both random words
        return Reference(self.atom, self.creation,
                         (n & 0x3FFFF, noise >> 32, noise & 0xFFFFFFFF))

    # --- connection table ------------------------------------------------------------

    def nodes(self, kind: str = "visible") -> list[str]:
        """Connected peers like ``erlang:nodes/1``: visible, hidden, or connected."""
        if kind == "connected":
            return list(self._conns)
        if kind not in ("visible", "hidden"):
            raise ValueError(f"kind must be 'visible', 'hidden' or 'connected', not {kind!r}")
        want = kind == "visible"
        return [n for n, c in self._conns.items() if self._is_visible(c) == want]

    @staticmethod
    def _is_visible(conn: Connection) -> bool:
        return conn.result is not None and bool(conn.result.flags & flags.DFlag.PUBLISHED)

    def connection(self, peer: str) -> Connection | None:
        return self._conns.get(peer)

    def _accept(self) -> Connection:
        machine = Acceptor(local_name=self.name, cookie=self._cookie, flags=self._flags,
                           creation=self.creation)
        # A flood of half-open handshakes must not grow without bound: past the
        # cap new sockets are closed at once (each one still times out in 7 s).
        refuse = len(self._handshaking) >= MAX_HANDSHAKES
        conn = Connection(self, machine, refuse=refuse)
        if refuse:
            log.warning("%d handshakes in progress: refusing a new connection", MAX_HANDSHAKES)
            return conn
        self._handshaking.add(conn)
        conn.closed.add_done_callback(lambda _f: self._handshaking.discard(conn))
        return conn

    def _status_for(self, conn: Connection, peer: str) -> str:
        """The acceptor's status for ``peer``: net_kernel's pending-connection rules."""
        if not self._running:
            return "not_allowed"
        if peer in self._conns:
            return "alive"
        attempt = self._pending.get(peer)
        if attempt is None or attempt.superseded:
            return "ok"
        # Both sides dial at once: the greater name keeps its own attempt.
        if self.name > peer:
            return "nok"
        attempt.superseded = True
        if attempt.conn is not None:
            attempt.conn.abort("superseded")
        elif attempt.task is not None:
            attempt.task.cancel()
        return "ok_simultaneous"

    def _connection_up(self, conn: Connection) -> bool:
        peer = conn.peer_name
        assert peer is not None
        self._handshaking.discard(conn)
        if not self._running:
            conn.close("node_stopping")
            return False
        old = self._conns.get(peer)
        if old is not None and old is not conn:
            del self._conns[peer]
            self._publish(NodeDown(peer, "replaced", node_type=_node_type(old)))
            old.abort("replaced")
        self._conns[peer] = conn
        attempt = self._pending.pop(peer, None)
        if attempt is not None and not attempt.future.done():
            attempt.future.set_result(None)
        atom_budget().learn(peer)  # its atom exists now, as in a BEAM: ping/connect are free
        log.info("nodeup %s (%s)", peer, "visible" if self._is_visible(conn) else "hidden")
        self._publish(NodeUp(peer, node_type=_node_type(conn)))
        self.system.peer_up(conn)
        return True

    def _connection_down(self, conn: Connection, reason: str) -> None:
        peer = conn.peer_name
        if peer is None or self._conns.get(peer) is not conn:
            return
        del self._conns[peer]
        self.system.peer_down(peer)
        log.info("nodedown %s (%s)", peer, reason)
        self._publish(NodeDown(peer, reason, node_type=_node_type(conn)))

    def _handshake_failed(self, conn: Connection, exc: HandshakeError) -> None:
        peer = conn.peer_name or "?"
        if exc.failure is HandshakeFailure.NAME_CLASH:
            log.debug("simultaneous connect with %s resolved: %s", peer, exc.detail)
            return
        if exc.failure is HandshakeFailure.BAD_COOKIE:
            log.warning("handshake with %s rejected: %s", peer, exc)
        else:
            log.info("handshake with %s failed: %s", peer, exc)
        telemetry.emit(telemetry.HandshakeRejected(peer, f"{exc.failure.name}: {exc.detail}"))

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
            await self._ensure_connected(peer, timeout)

    async def _ensure_connected(self, peer: NodeName, timeout: float | None) -> Connection:
        if not self._running:
            raise ConnectIgnored()
        key = str(peer)
        conn = self._conns.get(key)
        if conn is not None:
            return conn
        if self._name.long and not peer.long and not _is_ip_literal(peer.host):
            raise ConnectFailed(f"{key}: a long-name node needs a fully qualified host")
        if not self._name.long and peer.long:
            raise ConnectFailed(f"{key}: a short-name node cannot reach a host with dots")
        attempt = self._pending.get(key)
        if attempt is None:
            attempt = _Attempt(self.loop.create_future())
            self._pending[key] = attempt
            attempt.task = self.loop.create_task(self._dial(peer, attempt))
        budget_s = self.config.connect_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(budget_s):
                await asyncio.shield(attempt.future)
        except TimeoutError:
            raise ConnectFailed(f"no connection to {key} within {budget_s:g} s") from None
        conn = self._conns.get(key)
        if conn is None:
            raise ConnectFailed(f"connection to {key} closed as it opened")
        return conn

    async def _dial(self, peer: NodeName, attempt: _Attempt) -> None:
        key = str(peer)
        try:
            deadline = self.loop.time() + self.config.connect_timeout
            address = await epmd_client.port_please(
                peer.alive, peer.host, epmd_port=self._epmd_port(),
                timeout=self.config.connect_timeout,
            )
            if address is None:
                raise ConnectFailed(f"{peer.alive} is not registered on {peer.host}")
            machine = Initiator(local_name=self.name, peer_name=key, cookie=self._cookie,
                                flags=self._flags, creation=self.creation,
                                version=6 if address.highest_version >= 6 else 5)
            remaining = max(0.1, deadline - self.loop.time())
            async with asyncio.timeout(remaining):
                _, conn = await self.loop.create_connection(
                    lambda: Connection(self, machine, peer_name=key), peer.host, address.port
                )
            attempt.conn = conn
            await conn.established
        except Exception as exc:
            if isinstance(exc, HandshakeError) and _refused_with_nok(attempt):
                attempt.superseded = True  # the peer dials us; wait for that instead
                self.loop.call_later(self.config.connect_timeout, self._expire, key, attempt)
            if attempt.superseded:
                return  # the peer's own attempt won; its connection resolves the future
            if self._pending.get(key) is attempt:
                del self._pending[key]
            if not attempt.future.done():
                failure = exc if isinstance(exc, ConnectFailed) else ConnectFailed(_describe(exc))
                attempt.future.set_exception(failure)
                attempt.future.exception()  # the failure is reported; no "never retrieved"
            if not isinstance(exc, HandshakeError):
                telemetry.emit(telemetry.ConnectAttemptFailed(key, _describe(exc)))

    def _expire(self, key: str, attempt: _Attempt) -> None:
        """Give up on a superseded attempt whose winning connection never came."""
        if self._pending.get(key) is attempt:
            del self._pending[key]
        if not attempt.future.done():
            attempt.future.set_exception(ConnectFailed(f"{key} won the race but never connected"))
            attempt.future.exception()

    def _epmd_port(self) -> int | None:
        reg = self._registration
        return reg.epmd_port if reg is not None else None

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
            async with asyncio.timeout(budget_s):  # no extra task, unlike wait_for
                return await self._ping(peer, budget_s)
        except (TimeoutError, ConnectFailed, ConnectIgnored):
            return False

    async def _ping(self, peer: NodeName, timeout: float) -> bool:
        if str(peer) == self.name:
            return self._running  # net_adm:ping(node()) is pong on a live node
        conn = await self._ensure_connected(peer, timeout)
        return await self._ping_connected(conn)

    async def _ping_connected(self, conn: Connection) -> bool:
        request = (Atom("is_auth"), self.atom)
        try:
            reply = await self.system.gen_call(conn, Atom("net_kernel"), request)
        except ConnectionError:
            return False
        return bool(reply == Atom("yes"))

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
                conn = self._conns.get(peer)
                if conn is not None and await self._ping_connected(conn):
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

    # --- messages --------------------------------------------------------------------

    def mailbox(self, name: str | None = None, *, maxsize: int = DEFAULT_MAXSIZE) -> Mailbox:
        """A new mailbox (a pid peers can send to), registered as ``name`` if given."""
        return self.system.mailbox(name, maxsize)

    async def send(
        self, to: Pid | tuple[str, str] | str, message: Any, *, sender: Pid | None = None
    ) -> None:
        """Send ``message`` to a pid, a ``(name, node)`` pair or a local name.

        Connects first when needed (``ConnectFailed`` if that fails) and waits
        while the socket is congested, so a fast sender cannot queue without
        bound. A message to a pid or name that does not exist is dropped, as in
        Erlang.
        """
        from_pid = sender if sender is not None else self.system.pid
        if isinstance(to, str):
            self.system.deliver_local(Atom(to), message)
            return
        node = to.node if isinstance(to, Pid) else to[1]
        target = to if isinstance(to, Pid) else Atom(to[0])
        if node == self.name:
            self.system.deliver_local(target, message)
            return
        conn = self._conns.get(node) or await self._ensure_connected(
            check_peer(node, BudgetSite.CONNECT), None)
        if isinstance(target, Pid):
            conn.send(control.send_to_pid(from_pid, target, message, conn.flags))
        else:
            conn.send(control.reg_send(from_pid, target, message))
        if conn.congested:  # the usual case skips the coroutine call altogether
            await conn.drain()

    # --- stopping --------------------------------------------------------------------

    async def stop(self) -> None:
        """Close every connection (NodeDown for each), unregister, stop listening."""
        if not self._running and self._stopped.done():
            return
        self._running = False
        await self._teardown()

    async def _teardown(self) -> None:
        self._running = False
        if self._server is not None:
            self._server.close()
        for attempt in list(self._pending.values()):
            if attempt.task is not None:
                attempt.task.cancel()
            if not attempt.future.done():
                attempt.future.set_exception(ConnectIgnored())
                attempt.future.exception()
        self._pending.clear()
        conns = list(self._conns.values()) + list(self._handshaking)
        for conn in conns:
            conn.close("node_stopped")
        if conns:
            await asyncio.wait([c.closed for c in conns], timeout=5)
        for conn in conns:
            conn.abort("node_stopped")
        if self.global_compat is not None:
            self.global_compat.close()
        self.system.close()
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


def _node_type(conn: Connection) -> NodeType:
    """Which kind of peer ``conn`` links to, for NodeUp/NodeDown (``nodes()`` lists visible)."""
    return "visible" if Node._is_visible(conn) else "hidden"


def _refused_with_nok(attempt: _Attempt) -> bool:
    """Whether the peer answered our send_name with ``nok`` (it dials us instead)."""
    conn = attempt.conn
    machine = conn.initiator if conn is not None else None
    return machine is not None and machine.status == "nok"


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectFailed) and exc.detail:
        return exc.detail
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, EpmdError):
        return f"EPMD {exc.kind}: {exc.detail}"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__

