"""Opening a TCP connection for a dial: EPMD's look-up and the peer's own socket
(plain, or the one TLS is then set up on).

Both steps of a cold connect open a socket to a host that is usually this
machine or its LAN, where a non-blocking ``connect`` reports "in progress"
yet has already completed by the time anyone asks (measured on loopback:
every time). asyncio's ``sock_connect`` and ``create_connection`` wait for
the socket to turn writable through the loop regardless: a watcher added and
removed, a loop turn, often a sleep and a wake-up. ``connect`` asks the socket
once, without waiting, and goes through the loop only when the answer is
"not yet".
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import select
import socket
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["connect", "open_connection"]

P = TypeVar("P", bound=asyncio.BaseProtocol)


async def open_connection(loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], P],
                          host: str, port: int) -> tuple[asyncio.Transport, P]:
    """``loop.create_connection(protocol_factory, host, port)``, on ``connect``'s socket."""
    sock = await connect(loop, host, port)
    try:
        return await loop.create_connection(protocol_factory, sock=sock)
    except BaseException:
        sock.close()  # (a no-op once a transport owns it and closed it)
        raise


async def connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected non-blocking socket to ``host`` (with ``TCP_NODELAY``, as OTP's
    distribution sets): an address as it is, a name through the resolver, each of
    its addresses in turn as ``create_connection`` does. ``OSError`` if none answers.
    """
    targets: list[tuple[int, Any]]
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        targets = [(family, address) for family, _, _, _, address in found]
    else:
        targets = [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, (host, port))]
    error: OSError = OSError(f"{host} has no address")
    for family, address in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await _connect_one(loop, sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error


#: What a non-blocking ``connect`` answers while the connection is on its way.
_UNDER_WAY = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY, errno.EINTR})


async def _connect_one(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                       address: Any) -> None:
    code = sock.connect_ex(address)
    if code in _UNDER_WAY:
        if not _writable_now(sock):
            # Not yet: the loop watches it (``connect`` again reports EALREADY,
            # which asyncio and uvloop alike take as "wait until writable").
            await loop.sock_connect(sock, address)
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))  # the errno's subclass: ConnectionRefusedError...


def _writable_now(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(0))
