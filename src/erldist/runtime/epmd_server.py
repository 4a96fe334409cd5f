"""An embedded EPMD: enough of the port mapper for real ``erl`` nodes and ours.

It serves ALIVE2 (32-bit creation in ALIVE2_X_RESP when the registrant's
highest version is 6 or more, else ALIVE2_RESP), PORT_PLEASE2 and NAMES, the
way OTP's clients expect them: the ALIVE2 connection *is* the registration and
its end removes the name at once; PORT_PLEASE2 and NAMES are answered and the
connection closed, because OTP's client reads those replies until the close.

The server is reachable by anyone who can connect, so it defends itself:
requests are capped at ``MAX_REQUEST`` bytes; the number of connections and
of registrations is bounded; a connection must deliver its request within
``request_timeout`` of connecting and read its reply within as long again;
bad requests get an error reply or a close. Nothing a client sends can raise
out of a callback or leave a name registered to a connection that is gone.
Registering is allowed from loopback addresses only, as in OTP's epmd.

A full connection table never turns new clients away. OTP's epmd stops
accepting when it is full, so a few thousand idle sockets stall every look-up
until they time out; here the oldest connection that has not become a
registration is closed to make room, so a flood of idle sockets only ever
evicts itself while a client that sends its request at once is served. A
non-loopback address may hold only ``max_pending_per_address`` such
connections (its own oldest goes first). Registrations are never evicted.

A full registration table closes the ALIVE2 connection without a reply
(and logs why): OTP's ``erl`` reads *any* error result as a taken name and
would print "the name ... seems to be in use", which would be a lie; a close
makes it report ``epmd_close`` instead, and our client ``refused``.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import resource
import secrets
from dataclasses import dataclass
from typing import Final, cast

from erldist.errors import EpmdError, InvalidArgument
from erldist.protocol.epmd import (
    ALIVE2_REQ,
    MAX_REQUEST,
    PORT_PLEASE2_REQ,
    RESULT_NAME_TAKEN,
    RESULT_OK,
    RESULT_REFUSED,
    Alive2Request,
    Alive2Response,
    MalformedRequest,
    NamesResponse,
    NodeEntry,
    Port2Response,
    PortPlease2Request,
    Request,
    RequestReader,
    Response,
    encode_response,
)
from erldist.runtime.epmd_client import resolve_epmd_port

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_PENDING_PER_ADDRESS",
    "DEFAULT_MAX_REGISTRATIONS",
    "DEFAULT_REQUEST_TIMEOUT",
    "EpmdServer",
]

log = logging.getLogger("erldist.epmd_server")

DEFAULT_MAX_REGISTRATIONS: Final = 1024
#: Registrations hold their connection, so this must leave room for look-ups.
DEFAULT_MAX_CONNECTIONS: Final = 2048
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
#: Unanswered connections one non-loopback address may hold (loopback clients
#: share one address, so for them only the total cap applies).
DEFAULT_MAX_PENDING_PER_ADDRESS: Final = 64
#: File descriptors left to the rest of the process when the cap is clamped
#: to ``RLIMIT_NOFILE``: an accept failing with EMFILE would stall every client.
_FD_RESERVE: Final = 128
_U32_MASK: Final = 0xFFFFFFFF
#: A burst of nodes starting together must not see dropped SYNs (and their
#: one-second retransmits) because the accept queue was short.
_BACKLOG: Final = 1024


@dataclass(slots=True)
class _Entry:
    node: NodeEntry
    creation: int
    owner: _Connection


class _Connection(asyncio.Protocol):
    """One client connection: read one request, answer it, then close or hold."""

    def __init__(self, server: EpmdServer) -> None:
        self._server = server
        self._reader = RequestReader(server.max_request)
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.peer = "?"
        #: "reading" until a request arrives, then "registered" or "closing";
        #: "evicted" when the server closed it to make room.
        self.state = "reading"
        #: The alive name this connection holds, once registered.
        self.alive: str | None = None

    # --- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transports have the
        # Transport methods without subclassing asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._server._admit(self):
            self.state = "closing"
            self._transport.abort()
            return
        self._arm(self._server.request_timeout, "sent no complete request in time")

    def data_received(self, data: bytes) -> None:
        if self.state != "reading":
            return  # one request per connection; a registrant never speaks again
        try:
            self._reader.receive_data(data)
            request = self._reader.next_event()
        except MalformedRequest as exc:
            self._refuse(exc)
            return
        if request is not None:
            self._server._handle(self, request)

    def eof_received(self) -> bool:
        return False  # a half-closed client is done: close, which unregisters it

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.state = "closing"
        self._server._forget(self)

    # --- actions ----------------------------------------------------------------------

    def _arm(self, delay: float, why: str) -> None:
        """Abort the connection after ``delay`` s unless something cancels it first."""
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self._expire, why)

    def _expire(self, why: str) -> None:
        log.debug("cutting off %s: %s", self.peer, why)
        self.abort()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def hold(self, alive: str, reply: Response) -> None:
        """Answer and keep the connection: it now is the registration of ``alive``."""
        assert self._transport is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state = "registered"
        self.alive = alive
        self._server._promote(self)
        self._transport.write(encode_response(reply))

    def finish(self, reply: Response | None) -> None:
        """Answer (if there is anything to say) and close once it is written."""
        assert self._transport is not None
        self.state = "closing"
        if reply is not None:
            self._transport.write(encode_response(reply))
        self._transport.close()
        self._arm(self._server.request_timeout, "did not read its reply in time")

    def _refuse(self, exc: MalformedRequest) -> None:
        log.debug("bad request from %s: %s", self.peer, exc.reason)
        if exc.tag == ALIVE2_REQ:
            self.finish(Alive2Response(RESULT_REFUSED, 0))
        elif exc.tag == PORT_PLEASE2_REQ:
            self.finish(Port2Response(None))
        else:
            self.finish(None)  # as OTP's epmd, which drops unknown requests without a word


class EpmdServer:
    """An EPMD running inside this process; start it with ``await EpmdServer.start()``."""

    def __init__(
        self,
        *,
        max_registrations: int,
        max_connections: int,
        request_timeout: float,
        max_request: int,
        max_pending_per_address: int = DEFAULT_MAX_PENDING_PER_ADDRESS,
    ) -> None:
        if max_connections <= max_registrations:
            raise InvalidArgument("max_connections must exceed max_registrations "
                                  "(every registration holds a connection)")
        if max_pending_per_address < 1:
            raise InvalidArgument("max_pending_per_address must be at least 1")
        self.max_registrations = max_registrations
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.max_request = max_request
        self.max_pending_per_address = max_pending_per_address
        self.host = ""
        self.port = 0
        self.evictions = 0
        self._server: asyncio.Server | None = None
        #: Connections not (yet) holding a registration, oldest first: the
        #: ones a full table evicts. Registrations live in ``_held``.
        self._pending: dict[_Connection, None] = {}
        self._held: set[_Connection] = set()
        self._pending_by_address: dict[str, dict[_Connection, None]] = {}
        self._table: dict[str, _Entry] = {}
        self._creation = secrets.randbits(32)
        self._saturated = False
        self._stopped = asyncio.Event()

    @classmethod
    async def start(
        cls,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        max_registrations: int = DEFAULT_MAX_REGISTRATIONS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_request: int = MAX_REQUEST,
        max_pending_per_address: int = DEFAULT_MAX_PENDING_PER_ADDRESS,
    ) -> EpmdServer:
        """Listen on ``host:port`` (``port`` None: ``ERL_EPMD_PORT`` or 4369; 0: any free).

        ``max_connections`` is lowered to fit the process's open-file limit
        (and ``max_registrations`` with it) when that limit is smaller.
        Raises ``EpmdError("address_in_use")`` when something already listens
        there (typically another EPMD), ``EpmdError("bind_failed")`` otherwise.
        """
        max_connections, max_registrations = _fit_fd_limit(max_connections, max_registrations)
        me = cls(max_registrations=max_registrations, max_connections=max_connections,
                 request_timeout=request_timeout, max_request=max_request,
                 max_pending_per_address=max_pending_per_address)
        wanted = resolve_epmd_port(port) if port is None else port
        loop = asyncio.get_running_loop()
        try:
            # reuse_address: a restarted EPMD must not wait out TIME_WAIT
            # sockets; it never lets two listeners share the port on Linux.
            me._server = await loop.create_server(
                lambda: _Connection(me), host, wanted, reuse_address=True, backlog=_BACKLOG
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise EpmdError("address_in_use", f"{host}:{wanted} is already in use") from exc
            raise EpmdError("bind_failed", f"cannot listen on {host}:{wanted}: {exc}") from exc
        me.host = host
        me.port = int(me._server.sockets[0].getsockname()[1])
        log.info("embedded EPMD listening on %s:%d", host, me.port)
        return me

    # --- inspection -------------------------------------------------------------------

    def names(self) -> list[tuple[str, int]]:
        """``(alive, port)`` of every live registration, newest first as OTP lists them."""
        return [(alive, e.node.port) for alive, e in reversed(self._table.items())]

    @property
    def connection_count(self) -> int:
        return len(self._pending) + len(self._held)

    @property
    def is_serving(self) -> bool:
        return self._server is not None and not self._stopped.is_set()

    # --- connection bookkeeping (called by _Connection) -------------------------------

    def _admit(self, conn: _Connection) -> bool:
        """Take ``conn`` in, closing the oldest unanswered connection if it needs room."""
        if self._stopped.is_set():
            return False
        mine = self._pending_by_address.get(conn.peer)
        if (mine is not None and len(mine) >= self.max_pending_per_address
                and not _is_loopback(conn.peer)):
            self._evict(_oldest(mine), f"{conn.peer} holds {len(mine)} unanswered connections")
        elif self.connection_count >= self.max_connections:
            self._evict(_oldest(self._pending),
                        f"{self.connection_count} connections is the limit")
        else:
            self._saturated = False
        self._pending[conn] = None
        self._pending_by_address.setdefault(conn.peer, {})[conn] = None
        return True

    def _evict(self, victim: _Connection, why: str) -> None:
        if not self._saturated:
            log.warning("embedded EPMD on port %d: %s; closing the oldest unanswered "
                        "connections to admit new ones", self.port, why)
            self._saturated = True
        self.evictions += 1
        self._unlink(victim)
        victim.state = "evicted"
        victim.abort()

    def _unlink(self, conn: _Connection) -> None:
        """Drop ``conn`` from the pending bookkeeping (idempotent)."""
        self._pending.pop(conn, None)
        mine = self._pending_by_address.get(conn.peer)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self._pending_by_address[conn.peer]

    def _promote(self, conn: _Connection) -> None:
        """``conn`` now is a registration: it leaves the evictable set."""
        self._unlink(conn)
        self._held.add(conn)

    def _forget(self, conn: _Connection) -> None:
        self._unlink(conn)
        self._held.discard(conn)
        alive = conn.alive
        entry = self._table.get(alive) if alive is not None else None
        if alive is not None and entry is not None and entry.owner is conn:
            del self._table[alive]
            log.debug("unregistered %s (port %d)", alive, entry.node.port)

    def _handle(self, conn: _Connection, request: Request) -> None:
        if isinstance(request, Alive2Request):
            self._register(conn, request.node)
        elif isinstance(request, PortPlease2Request):
            found = self._table.get(request.alive)
            conn.finish(Port2Response(found.node if found is not None else None))
        else:
            conn.finish(NamesResponse(self.port, tuple(self.names())))

    def _register(self, conn: _Connection, node: NodeEntry) -> None:
        extended = node.highest_version >= 6
        if not _is_loopback(conn.peer):
            log.warning("refused ALIVE2 for %r from non-local %s", node.alive, conn.peer)
            conn.finish(None)  # as OTP's epmd: no reply to a remote registrant
            return
        if node.alive in self._table:
            log.debug("refused ALIVE2 for %r: name is taken", node.alive)
            conn.finish(Alive2Response(RESULT_NAME_TAKEN, 0, extended))
            return
        if len(self._table) >= self.max_registrations:
            # No error result: erl would call any of them a taken name.
            log.warning("refused ALIVE2 for %r: the registration table is full "
                        "(%d names); closing without a reply", node.alive,
                        self.max_registrations)
            conn.finish(None)
            return
        creation = self._next_creation(extended)
        self._table[node.alive] = _Entry(node, creation, conn)
        log.debug("registered %s on port %d, creation %d", node.alive, node.port, creation)
        conn.hold(node.alive, Alive2Response(RESULT_OK, creation, extended))

    def _next_creation(self, extended: bool) -> int:
        """A new incarnation per registration: 32-bit and never 0, or 1..3 for old clients."""
        self._creation = (self._creation + 1) & _U32_MASK or 1
        return self._creation if extended else self._creation % 3 + 1

    # --- lifetime ---------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening and drop every connection (and so every registration)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        for conn in [*self._pending, *self._held]:
            conn.abort()
        if self._server is not None:
            await self._server.wait_closed()
        # abort() reports connection_lost on the next loop pass; let it run so
        # the table is empty when close() returns.
        await asyncio.sleep(0)
        self._table.clear()
        log.info("embedded EPMD on port %d stopped", self.port)

    async def serve_forever(self) -> None:
        """Run until ``close()``; cancelling it closes the server (the CLI's Ctrl-C)."""
        try:
            await self._stopped.wait()
        finally:
            await self.close()

    async def __aenter__(self) -> EpmdServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "serving" if self.is_serving else "closed"
        return f"<EpmdServer {self.host}:{self.port} {state} names={len(self._table)}>"


def _oldest(pending: dict[_Connection, None]) -> _Connection:
    """The oldest connection still waiting for its request, else the oldest of all.

    One that was answered and is being closed may still have its reply in
    flight, and an abort could destroy it; one that never spoke loses nothing.
    """
    first: _Connection | None = None
    for conn in pending:
        if conn.state == "reading":
            return conn
        if first is None:
            first = conn
    assert first is not None, "a full table always holds an unregistered connection"
    return first


def _fit_fd_limit(max_connections: int, max_registrations: int) -> tuple[int, int]:
    """The caps lowered to what ``RLIMIT_NOFILE`` lets this process hold open."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or max_connections <= soft - _FD_RESERVE:
        return max_connections, max_registrations
    fitted = max(2, soft - _FD_RESERVE)
    log.warning("embedded EPMD: %d connections exceed the open-file limit %d; using %d",
                max_connections, soft, fitted)
    return fitted, min(max_registrations, fitted // 2)


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback
