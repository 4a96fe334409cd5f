"""tcp.connect: a dial's socket, at once when the kernel has it ready, through the loop when not."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import pytest

from erldist.runtime import tcp
from tests.support.aio import run


@contextlib.contextmanager
def listener(backlog: int = 16) -> Iterator[tuple[socket.socket, int]]:
    srv = socket.socket()
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(backlog)
        yield srv, srv.getsockname()[1]
    finally:
        srv.close()


def test_a_loopback_connect_gives_a_connected_socket_with_nodelay() -> None:
    async def main() -> None:
        with listener() as (srv, port):
            sock = await tcp.connect(asyncio.get_running_loop(), "127.0.0.1", port)
            with sock:
                assert sock.getpeername() == ("127.0.0.1", port)
                assert not sock.getblocking()
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                accepted, _ = srv.accept()
                accepted.sendall(b"hi")
                assert await asyncio.get_running_loop().sock_recv(sock, 2) == b"hi"
                accepted.close()

    run(main())


def test_a_refused_connect_raises_connection_refused() -> None:
    with listener() as (_, port):
        pass  # closed: nothing listens on the port now

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError):
            await tcp.connect(asyncio.get_running_loop(), "127.0.0.1", port)

    run(main())


def test_a_host_name_is_resolved_and_its_addresses_tried_in_turn() -> None:
    # "localhost" may resolve to ::1 first, where nothing listens here.
    async def main() -> None:
        with listener() as (_, port):
            sock = await tcp.connect(asyncio.get_running_loop(), "localhost", port)
            with sock:
                assert sock.getpeername()[1] == port

    run(main())


def test_a_connect_that_is_not_ready_waits_on_the_loop_without_blocking_it() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with listener(backlog=0) as (srv, port):
            first = await tcp.connect(loop, "127.0.0.1", port)  # fills the backlog
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            beat = asyncio.create_task(ticker())
            pending = asyncio.create_task(tcp.connect(loop, "127.0.0.1", port))
            done, _ = await asyncio.wait({pending}, timeout=0.3)
            assert not done  # its SYN was dropped: still under way...
            assert ticks >= 5  # ...and the loop kept running meanwhile
            accepted, _ = srv.accept()  # room again: the SYN's next try gets in
            second = await asyncio.wait_for(pending, 30)
            beat.cancel()
            assert second.getpeername() == ("127.0.0.1", port)
            for sock in (first, second, accepted):
                sock.close()

    run(main())
