"""The connection table: one record per peer, as ``net_kernel`` keeps.

A peer is ``PENDING`` while we dial it (every caller that wants it shares
the one attempt) and ``UP`` once a handshake in either direction completes.
Simultaneous connects, where both sides dial at once, are settled here and
only here, with OTP's rule: the side with the greater name keeps its own
attempt. Incoming sockets that have not yet said who they are wait in a
bounded admission set.

Connections report to this table through the ``ConnectionOwner`` methods and
nothing else; the router reaches peers through ``link_to`` and ``reach``.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from erldist import telemetry
from erldist.config import Config
from erldist.errors import ConnectFailed, ConnectIgnored, EpmdError, TlsError, TlsFailure
from erldist.names import NodeName
from erldist.protocol.handshake import (
    Acceptor,
    HandshakeError,
    HandshakeFailure,
    Initiator,
)
from erldist.protocol.signals import Signal
from erldist.runtime import epmd_client, tcp, tls
from erldist.runtime.busy_wait import BusyWait
from erldist.runtime.connection import Connection

__all__ = ["MAX_HANDSHAKES", "Identity", "Peer", "PeerState", "Peers"]

log = logging.getLogger("erldist.peers")

#: Incoming connections allowed to be in the handshake at once.
MAX_HANDSHAKES = 256


class PeerState(enum.Enum):
    PENDING = "pending"  #: we are dialing it
    UP = "up"  #: a handshake completed; the connection carries traffic


@dataclass(frozen=True)
class Identity:
    """Who this node is on the wire. ``repr`` leaves the cookie out."""

    name: NodeName
    cookie: bytes = field(repr=False)
    flags: int
    creation: int

    @property
    def name_str(self) -> str:
        return str(self.name)


@dataclass(eq=False)
class Peer:
    """net_kernel's ``#connection{}``: one per peer name."""

    name: str
    state: PeerState
    settled: asyncio.Future[None]
    #: The established connection, once UP.
    conn: Connection | None = None
    dial: asyncio.Task[None] | None = field(default=None, repr=False)
    #: The socket our own dial opened, until that dial ends. Kept apart from
    #: ``conn``: a dial that loses a simultaneous connect must never take the
    #: place of the connection that won.
    dialing: Connection | None = None
    #: The peer's own attempt won a simultaneous connect; ours is abandoned.
    superseded: bool = False


class Peers:
    """Every connection of one node, by peer name."""

    def __init__(
        self,
        identity: Identity,
        settings: Callable[[], Config],
        *,
        epmd_port: Callable[[], int | None],
        on_up: Callable[[Connection], None],
        on_down: Callable[[Connection, str], None],
        on_signal: Callable[[Signal, Connection], None],
        tls_contexts: tls.TlsContexts | None = None,
    ) -> None:
        self.identity = identity
        self._settings = settings
        #: TLS distribution (``inet_tls_dist``) when set: dial with TLS, and the
        #: handshake inside TLS frames its messages with 4 bytes, as OTP does.
        self.tls = tls_contexts
        self._prefix = 2 if tls_contexts is None else 4
        self.loop = asyncio.get_running_loop()
        self._epmd_port = epmd_port
        self._on_up = on_up
        self._on_down = on_down
        self._on_signal = on_signal
        self._peers: dict[str, Peer] = {}
        #: Accepted sockets still in their handshake, oldest first.
        self._handshaking: dict[Connection, None] = {}
        #: Handshakes closed to make room for a new socket.
        self.evicted = 0
        self._evictions_log = _RateLimited(log, 10.0)
        self.accepting = False
        #: Keeps the loop polling a moment after each read and write (``Config.busy_wait``,
        #: read again as each connection comes up).
        self.busy_wait = BusyWait(self.loop, self.config.busy_wait)

    @property
    def config(self) -> Config:
        """The node's settings, read afresh at each use."""
        return self._settings()

    # --- reading the table -------------------------------------------------------------

    def connection(self, peer: str) -> Connection | None:
        """The established connection to ``peer``, if any."""
        record = self._peers.get(peer)
        return record.conn if record is not None and record.state is PeerState.UP else None

    def has_connection(self, peer: str) -> bool:
        return self.connection(peer) is not None

    def connections(self) -> list[Connection]:
        return [p.conn for p in self._peers.values()
                if p.state is PeerState.UP and p.conn is not None]

    def names(self, visible: bool | None = None) -> list[str]:
        """Connected peers; only visible or only hidden ones when ``visible`` says."""
        return [c.peer_name for c in self.connections()
                if c.peer_name is not None and (visible is None or c.visible == visible)]

    @property
    def handshaking(self) -> int:
        """Incoming connections still in their handshake."""
        return len(self._handshaking)

    # --- the router's view ---------------------------------------------------------------

    def link_to(self, node: str) -> Connection | None:
        return self.connection(node)

    # --- accepting -----------------------------------------------------------------------

    def accept(self) -> Connection:
        """A new incoming socket's protocol (``loop.create_server``'s factory).

        At most ``MAX_HANDSHAKES`` accepted sockets are in their handshake at
        once. When the table is full, the oldest one that has sent nothing is
        closed to make room, else the oldest of all: a real peer finishes its
        handshake in milliseconds, so a crowd that connects and waits (or
        trickles bytes) cannot keep a real peer out, only push out its own.
        """
        if len(self._handshaking) >= MAX_HANDSHAKES:
            self._evict()
        ident = self.identity
        machine = Acceptor(local_name=ident.name_str, cookie=ident.cookie, flags=ident.flags,
                           creation=ident.creation, length_prefix=self._prefix)
        conn = Connection(self, machine)
        self._handshaking[conn] = None
        conn.closed.add_done_callback(lambda _f: self._handshaking.pop(conn, None))
        return conn

    def _evict(self) -> None:
        victim = next((c for c in self._handshaking if not c.heard), None)
        if victim is None:
            victim = next(iter(self._handshaking))
        del self._handshaking[victim]
        victim.abort("evicted")
        self.evicted += 1
        self._evictions_log.warning(
            "%d handshakes in progress: closed the oldest%s to admit a new connection",
            MAX_HANDSHAKES, "" if victim.heard else " silent one")

    # --- ConnectionOwner -----------------------------------------------------------------

    def status_for(self, conn: Connection, peer: str) -> str:
        """The acceptor's status for ``peer``: net_kernel's pending-connection rules."""
        if not self.accepting:
            return "not_allowed"
        record = self._peers.get(peer)
        if record is None or record.superseded:
            return "ok"
        if record.state is PeerState.UP:
            return "alive"
        # Both sides dial at once: the greater name keeps its own attempt, once that
        # attempt has written its first bytes (``transport`` is set just before).
        # Before that (asking EPMD, connecting, a connected socket not yet handed
        # to us) nothing of ours is on its way, and a peer told ``nok`` waits for
        # our dial with no socket to watch: if we died then, it would notice only
        # at its setup timeout (net_setuptime, 7 s), and our global names with it.
        # OTP itself answers ``nok`` from the start of its dial (``bench.global_names
        # --victim erl`` shows what that costs); a name already written reaches the
        # peer even if we die (the kernel sends it before the FIN).
        dialing = record.dialing
        if self.identity.name_str > peer and dialing is not None \
                and dialing.transport is not None:
            return "nok"
        record.superseded = True
        if record.dialing is not None:
            record.dialing.abort("superseded")
        elif record.dial is not None:
            record.dial.cancel()
        self.loop.call_later(self.config.connect_timeout, self._expire, record)
        return "ok_simultaneous"

    def connection_up(self, conn: Connection) -> bool:
        peer = conn.peer_name
        assert peer is not None
        self._handshaking.pop(conn, None)
        if not self.accepting:
            conn.close("node_stopping")
            return False
        record = self._peers.get(peer)
        if record is not None and record.state is PeerState.UP and record.conn is not conn:
            old = record.conn
            del self._peers[peer]
            if old is not None:
                self._on_down(old, "replaced")
                old.abort("replaced")
            record = None
        if record is None:
            record = self._peers[peer] = Peer(peer, PeerState.UP, self.loop.create_future())
        record.state = PeerState.UP
        record.conn = conn
        record.superseded = False
        self.busy_wait.window = self.config.busy_wait
        if not record.settled.done():
            record.settled.set_result(None)
        log.info("nodeup %s (%s)", peer, "visible" if conn.visible else "hidden")
        self._on_up(conn)
        return True

    def connection_down(self, conn: Connection, reason: str) -> None:
        peer = conn.peer_name
        record = self._peers.get(peer) if peer is not None else None
        if record is None or record.conn is not conn or record.state is not PeerState.UP:
            return
        assert peer is not None
        del self._peers[peer]
        log.info("nodedown %s (%s)", peer, reason)
        self._on_down(conn, reason)

    def handshake_failed(self, conn: Connection, exc: HandshakeError) -> None:
        peer = conn.peer_name or "?"
        if exc.failure is HandshakeFailure.NAME_CLASH:
            log.debug("simultaneous connect with %s resolved: %s", peer, exc.detail)
            return
        if exc.failure is HandshakeFailure.PEER_SPEAKS_TLS:
            tls.report(_requires_tls(peer if conn.peer_name else _address(conn)),
                       "accept" if conn.initiator is None else "dial")
            return
        if exc.failure is HandshakeFailure.BAD_COOKIE:
            log.warning("handshake with %s rejected: %s", peer, exc)
        else:
            log.info("handshake with %s failed: %s", peer, exc)
        telemetry.emit(telemetry.HandshakeRejected(peer, f"{exc.failure.name}: {exc.detail}"))

    @property
    def on_signal(self) -> Callable[[Signal, Connection], None]:
        return self._on_signal

    # --- dialing -------------------------------------------------------------------------

    async def ensure(self, peer: NodeName, timeout: float | None) -> Connection:
        """The connection to ``peer``, dialing (once, shared) if there is none."""
        if not self.accepting:
            raise ConnectIgnored()
        key = str(peer)
        conn = self.connection(key)
        if conn is not None:
            return conn
        local = self.identity.name
        if local.long and not peer.long and not _is_ip_literal(peer.host):
            raise ConnectFailed(f"{key}: a long-name node needs a fully qualified host")
        if not local.long and peer.long:
            raise ConnectFailed(f"{key}: a short-name node cannot reach a host with dots")
        record = self._peers.get(key)
        if record is None:
            record = self._peers[key] = Peer(key, PeerState.PENDING, self.loop.create_future())
            record.dial = self.loop.create_task(self._dial(peer, record))
        budget_s = self.config.connect_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(budget_s):
                await asyncio.shield(record.settled)
        except TimeoutError:
            raise ConnectFailed(f"no connection to {key} within {budget_s:g} s") from None
        conn = self.connection(key)
        if conn is None:
            raise ConnectFailed(f"connection to {key} closed as it opened")
        return conn

    async def _dial(self, peer: NodeName, record: Peer) -> None:
        key = str(peer)
        ident = self.identity
        try:
            deadline = self.loop.time() + self.config.connect_timeout
            address = await epmd_client.port_please(
                peer.alive, peer.host, epmd_port=self._epmd_port(),
                timeout=self.config.connect_timeout,
            )
            if address is None:
                raise ConnectFailed(f"{peer.alive} is not registered on {peer.host}")
            machine = Initiator(local_name=ident.name_str, peer_name=key, cookie=ident.cookie,
                                flags=ident.flags, creation=ident.creation,
                                version=6 if address.highest_version >= 6 else 5,
                                length_prefix=self._prefix)
            remaining = max(0.1, deadline - self.loop.time())
            async with asyncio.timeout(remaining):
                if self.tls is None:
                    _, conn = await tcp.open_connection(
                        self.loop, lambda: self._dialing(record, machine), peer.host,
                        address.port)
                else:
                    conn = await self._dial_tls(machine, peer, address.port, remaining, record)
            await conn.established
        except Exception as exc:
            if isinstance(exc, HandshakeError) and _refused_with_nok(record):
                record.superseded = True  # the peer dials us; wait for that instead
                self.loop.call_later(self.config.connect_timeout, self._expire, record)
            if record.superseded:
                return  # the peer's own attempt won; its connection settles the record
            self._fail(record, exc)
        finally:
            record.dialing = None

    def _dialing(self, record: Peer, machine: Initiator) -> Connection:
        """Our dial's connection, recorded as soon as the socket is connected (its
        first bytes go out when asyncio hands it the socket, a loop turn later)."""
        conn = record.dialing = Connection(self, machine, peer_name=record.name)
        return conn

    async def _dial_tls(self, machine: Initiator, peer: NodeName, port: int,
                        timeout: float, record: Peer) -> Connection:
        """Connect with TLS; the peer's host is SNI and the name its certificate must bear."""
        assert self.tls is not None
        key = str(peer)
        try:
            # A little under the whole budget: a silent peer (a plain-TCP node
            # waiting for a handshake message) is then reported as a TLS
            # failure, not as a bare timeout.
            protocol = await tls.dial(self.tls, peer.host, port, max(0.05, timeout * 0.9),
                                      lambda: self._dialing(record, machine),
                                      peer=key)
        except TlsError as error:
            tls.report(error, "dial")
            raise
        return cast(Connection, protocol)

    def _fail(self, record: Peer, exc: Exception) -> None:
        if self._peers.get(record.name) is record and record.state is PeerState.PENDING:
            del self._peers[record.name]
        if isinstance(exc, HandshakeError) and exc.failure is HandshakeFailure.PEER_SPEAKS_TLS:
            exc = _requires_tls(record.name)
        if not record.settled.done():
            failure = exc if isinstance(exc, ConnectFailed) else ConnectFailed(_describe(exc))
            record.settled.set_exception(failure)
            record.settled.exception()  # the failure is reported; no "never retrieved"
        if not isinstance(exc, HandshakeError | TlsError):
            telemetry.emit(telemetry.ConnectAttemptFailed(record.name, _describe(exc)))

    def _expire(self, record: Peer) -> None:
        """Give up on a superseded attempt whose winning connection never came."""
        if record.state is PeerState.PENDING:
            self._fail(record, ConnectFailed(f"{record.name} won the race but never connected"))

    # --- closing -------------------------------------------------------------------------

    def disconnect(self, peer: str, reason: str) -> bool:
        """Close the connection to ``peer`` (``erlang:disconnect_node``)."""
        conn = self.connection(peer)
        if conn is None:
            return False
        conn.close(reason)
        return True

    async def close(self) -> None:
        """Stop every attempt and close every connection; wait (bounded) for them."""
        self.accepting = False
        self.busy_wait.close()
        for record in list(self._peers.values()):
            if record.state is PeerState.PENDING:
                if record.dial is not None:
                    record.dial.cancel()
                if not record.settled.done():
                    record.settled.set_exception(ConnectIgnored())
                    record.settled.exception()
        conns = [c for r in self._peers.values() for c in (r.conn, r.dialing) if c is not None]
        conns += list(self._handshaking)
        for conn in conns:
            conn.close("node_stopped")
        if conns:
            await asyncio.wait([c.closed for c in conns], timeout=5)
        for conn in conns:
            conn.abort("node_stopped")
        self._peers.clear()


class _RateLimited:
    """A logger that speaks at most once per ``period`` seconds and says how many it kept quiet."""

    def __init__(self, logger: logging.Logger, period: float) -> None:
        self._log = logger
        self._period = period
        self._next = 0.0
        self._quiet = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._quiet += 1
            return
        if self._quiet:
            msg += f" ({self._quiet} more like it since the last report)"
        self._log.warning(msg, *args)
        self._next = now + self._period
        self._quiet = 0


def _refused_with_nok(record: Peer) -> bool:
    """Whether the peer answered our send_name with ``nok`` (it dials us instead)."""
    conn = record.dialing
    machine = conn.initiator if conn is not None else None
    return machine is not None and machine.status == "nok"


def _requires_tls(peer: str) -> TlsError:
    return TlsError(TlsFailure.PEER_REQUIRES_TLS, peer,
                    "the peer speaks TLS distribution; this node plain TCP")


def _address(conn: Connection) -> str:
    peername = conn.transport.get_extra_info("peername") if conn.transport else None
    return str(peername[0]) if peername else "?"


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

