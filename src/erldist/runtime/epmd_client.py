"""Talking to an EPMD from asyncio: register a node, look one up, list them.

Each call opens one TCP connection, as EPMD wants, and runs under one absolute
deadline. Failures come out as ``EpmdError`` whose ``kind`` tells a caller what
to do next:

``unavailable``  nothing accepted the connection (refused, unreachable, DNS);
``refused``      an EPMD answered but would not serve us (closed without a
                 reply, or an ALIVE2 error other than a taken name);
``name_taken``   a live node already holds the alive name;
``timeout``      the deadline passed;
``protocol``     the peer's bytes are not EPMD's replies;
``config``       ``ERL_EPMD_PORT`` is not a port number.

A name that cannot be an alive name raises ``LocalProtocolError`` before any
connection is made: that is the caller's mistake, not the network's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from erldist.errors import EpmdError
from erldist.protocol.epmd import (
    NODE_TYPE_HIDDEN,
    NODE_TYPE_NORMAL,
    RESULT_NAME_TAKEN,
    Alive2Request,
    Alive2Response,
    MalformedResponse,
    NamesRequest,
    NamesResponse,
    NodeEntry,
    Port2Response,
    PortPlease2Request,
    Request,
    Response,
    ResponseReader,
    encode_request,
)
from erldist.runtime import tcp

__all__ = [
    "DEFAULT_EPMD_PORT",
    "DEFAULT_TIMEOUT",
    "NodeAddress",
    "Registration",
    "format_names",
    "names",
    "port_please",
    "register",
    "resolve_epmd_port",
]

log = logging.getLogger("erldist.epmd_client")

DEFAULT_EPMD_PORT: Final = 4369
#: OTP's client waits 10 s for an EPMD reply; so do we unless told otherwise.
DEFAULT_TIMEOUT: Final = 10.0


def resolve_epmd_port(epmd_port: int | None = None) -> int:
    """The EPMD port as OTP picks it: the explicit one, else ``ERL_EPMD_PORT``, else 4369."""
    if epmd_port is not None:
        if not 0 < epmd_port <= 0xFFFF:
            raise EpmdError("config", f"EPMD port must be in 1..65535, got {epmd_port}")
        return epmd_port
    text = os.environ.get("ERL_EPMD_PORT", "").strip()
    if not text:
        return DEFAULT_EPMD_PORT
    if not (text.isdigit() and 0 < int(text) <= 0xFFFF):
        raise EpmdError("config", f"ERL_EPMD_PORT={text[:20]!r} is not a port number")
    return int(text)


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """Where a node listens, as its host's EPMD reported it."""

    alive: str
    host: str
    port: int
    highest_version: int
    lowest_version: int
    node_type: int
    protocol: int
    extra: bytes

    @property
    def hidden(self) -> bool:
        """Registered as hidden (``'H'``); OTP registers hidden nodes as ``'M'`` too."""
        return self.node_type == NODE_TYPE_HIDDEN


class Registration:
    """A live ALIVE2 registration: it lasts exactly as long as its connection.

    ``closed`` is set when the connection ends, whether EPMD dropped it
    (``dropped`` is then true) or ``close()`` did.
    """

    def __init__(
        self,
        entry: NodeEntry,
        *,
        creation: int,
        host: str,
        epmd_port: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.alive = entry.alive
        self.port = entry.port
        self.creation = creation
        self.host = host
        self.epmd_port = epmd_port
        self.closed = asyncio.Event()
        self._closing = False
        self._writer = writer
        self._watcher = asyncio.get_running_loop().create_task(self._watch(reader))

    @property
    def dropped(self) -> bool:
        """True when EPMD ended the registration, not our own ``close()``."""
        return self.closed.is_set() and not self._closing

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        """Read until EPMD closes: EPMD never writes again, so any end is the end."""
        try:
            while await reader.read(4096):
                pass
        except OSError as exc:
            log.debug("registration of %s: connection error %s", self.alive, exc)
        finally:
            self._writer.close()
            self.closed.set()
            if not self._closing:
                log.debug("EPMD on port %d dropped the registration of %s",
                          self.epmd_port, self.alive)

    async def close(self) -> None:
        """Unregister by closing the connection; safe to call more than once."""
        if not self.closed.is_set():
            self._closing = True
        self._watcher.cancel()
        await asyncio.wait({self._watcher})
        self._writer.close()  # also when the watcher was cancelled before it ran
        self.closed.set()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def __repr__(self) -> str:
        state = "dropped" if self.dropped else "closed" if self.closed.is_set() else "live"
        return (f"<Registration {self.alive} port={self.port} creation={self.creation} "
                f"epmd={self.host}:{self.epmd_port} {state}>")


async def _ask(host: str, epmd_port: int, request: Request,
               timeout: float) -> tuple[Response, socket.socket]:
    """Send ``request`` on a fresh connection and read its one reply.

    The caller closes the socket it gets back (ALIVE2 keeps it: that
    connection is the registration). Every failure is an ``EpmdError``, and
    closes the socket. Every cold connect starts with a look-up, so this runs
    on the loop's own socket calls: no stream objects, and no loop turn beyond
    the connect and the reply's arrival.
    """
    data = encode_request(request)
    where = f"{host}:{epmd_port}"
    loop = asyncio.get_running_loop()
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                sock = await tcp.connect(loop, host, epmd_port)
            except OSError as exc:
                raise EpmdError("unavailable", f"no EPMD at {where}: {_oserror(exc)}") from exc
            parser = ResponseReader(request)
            try:
                await loop.sock_sendall(sock, data)
                while (response := parser.next_event()) is None:
                    chunk = await loop.sock_recv(sock, 65536)
                    if chunk:
                        parser.receive_data(chunk)
                    elif parser.buffered:
                        parser.receive_eof()
                    else:
                        raise EpmdError("refused", f"EPMD at {where} closed without a reply "
                                                   "(an EPMD at its limits does this; see its log)")
            except OSError as exc:
                raise EpmdError("refused", f"EPMD at {where}: {_oserror(exc)}") from exc
            except MalformedResponse as exc:
                raise EpmdError("protocol", f"EPMD at {where}: {exc.reason}") from exc
    except BaseException as exc:
        if sock is not None:
            sock.close()
        if isinstance(exc, TimeoutError):
            raise EpmdError("timeout",
                            f"no answer from EPMD at {where} within {timeout:g} s") from None
        raise
    return response, sock


def _oserror(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return exc.strerror or str(exc) or type(exc).__name__


async def register(
    alive: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    epmd_port: int | None = None,
    hidden: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Registration:
    """Register ``alive`` as listening on ``port`` (ALIVE2, versions 6/5).

    The returned ``Registration`` keeps the connection open; the name stays
    registered until it is closed or EPMD goes away. ``creation`` is EPMD's
    32-bit incarnation number (16-bit from an EPMD that predates OTP 23).
    """
    epmd = resolve_epmd_port(epmd_port)
    entry = NodeEntry(alive=alive, port=port,
                      node_type=NODE_TYPE_HIDDEN if hidden else NODE_TYPE_NORMAL)
    response, sock = await _ask(host, epmd, Alive2Request(entry), timeout)
    assert isinstance(response, Alive2Response)
    if not response.ok:
        sock.close()
        if response.result == RESULT_NAME_TAKEN:
            raise EpmdError("name_taken", f"{alive!r} is already registered at {host}:{epmd}")
        raise EpmdError("refused",
                        f"EPMD at {host}:{epmd} refused {alive!r} (result {response.result})")
    log.debug("registered %s (port %d) with EPMD %s:%d, creation %d",
              alive, port, host, epmd, response.creation)
    try:
        reader, writer = await asyncio.open_connection(sock=sock)  # watched for EPMD's end
    except BaseException:
        sock.close()
        raise
    return Registration(entry, creation=response.creation, host=host, epmd_port=epmd,
                        reader=reader, writer=writer)


async def port_please(
    alive: str, host: str, *, epmd_port: int | None = None, timeout: float = DEFAULT_TIMEOUT
) -> NodeAddress | None:
    """Ask the EPMD on ``host`` where ``alive`` listens; ``None`` if it is not registered."""
    epmd = resolve_epmd_port(epmd_port)
    response, sock = await _ask(host, epmd, PortPlease2Request(alive), timeout)
    sock.close()
    assert isinstance(response, Port2Response)
    node = response.node
    if node is None:
        return None
    return NodeAddress(
        alive=node.alive, host=host, port=node.port, highest_version=node.highest_version,
        lowest_version=node.lowest_version, node_type=node.node_type,
        protocol=node.protocol, extra=node.extra,
    )


async def names(
    host: str = "127.0.0.1", *, epmd_port: int | None = None, timeout: float = DEFAULT_TIMEOUT
) -> list[tuple[str, int]]:
    """Every ``(alive, port)`` the EPMD on ``host`` knows, in the order it lists them."""
    epmd = resolve_epmd_port(epmd_port)
    response, sock = await _ask(host, epmd, NamesRequest(), timeout)
    sock.close()
    assert isinstance(response, NamesResponse)
    return list(response.names)


def format_names(epmd_port: int, entries: Iterable[tuple[str, int]]) -> str:
    """The text ``epmd -names`` prints, so the CLI's output reads the same."""
    lines = [f"epmd: up and running on port {epmd_port} with data:\n"]
    lines += [f"name {alive} at port {port}\n" for alive, port in entries]
    return "".join(lines)
