"""Embedded EPMD, EPMD client and start-up policy over loopback sockets.

No Erlang here (tests/interop has that): our own client, raw sockets playing
hostile clients, and tiny fake servers playing broken EPMDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, ParamSpec

import pytest

from erldist.errors import EpmdError
from erldist.protocol.epmd import Alive2Request, NodeEntry, encode_request
from erldist.runtime import epmd_client, epmd_policy, epmd_server
from erldist.runtime.epmd_client import Registration, format_names, names, port_please, register
from erldist.runtime.epmd_policy import register_node
from erldist.runtime.epmd_server import EpmdServer
from tests.support.otp import free_port

P = ParamSpec("P")
TEST_TIMEOUT = 120.0


def async_test(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test on a fresh loop, with a hard ceiling so nothing hangs CI.

    Any error that reaches the loop's exception handler (an exception escaping
    a protocol callback, a task failing unobserved) fails the test: "never
    crashes" must include errors asyncio would merely log.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        unhandled: list[str] = []

        async def guarded() -> None:
            asyncio.get_running_loop().set_exception_handler(
                lambda _loop, context: unhandled.append(str(context.get("message"))))
            await asyncio.wait_for(fn(*args, **kwargs), TEST_TIMEOUT)

        asyncio.run(guarded())
        assert not unhandled, unhandled

    return wrapper


async def eventually(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> float:
    """Wait until ``cond()`` holds; return how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not cond():
        if loop.time() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)
    return loop.time() - start


@contextlib.asynccontextmanager
async def serving(port: int = 0, **limits: Any) -> AsyncIterator[EpmdServer]:
    server = await EpmdServer.start("127.0.0.1", port, **limits)
    try:
        yield server
    finally:
        await server.close()


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 30.0) -> bytes:
    """Everything the server sends before it closes (an abort counts as a close)."""
    data = b""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                data += chunk
    return data


async def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection; return the reply once the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await read_until_closed(reader)
    finally:
        writer.close()


async def raw_alive2(port: int, alive: str, high: int = 6, low: int = 5
                     ) -> tuple[bytes, asyncio.StreamWriter]:
    """Register by hand; the reply and the writer whose closing unregisters."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_request(Alive2Request(NodeEntry(alive, 4000, high, low))))
    size = 6 if high >= 6 else 4
    return await asyncio.wait_for(reader.readexactly(size), 30), writer


@contextlib.asynccontextmanager
async def fake_epmd(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A listener that misbehaves in the way ``handler`` says."""
    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
        if tasks:  # handlers end when the client hangs up: none may be left behind
            _, pending = await asyncio.wait(tasks, timeout=30)
            assert not pending


async def close_all(registrations: list[Registration]) -> None:
    await asyncio.gather(*(r.close() for r in registrations))


# --- the basics ----------------------------------------------------------------------------


@async_test
async def test_register_look_up_list_unregister() -> None:
    async with serving() as server:
        reg = await register("alpha", 5001, epmd_port=server.port, timeout=10)
        assert reg.creation != 0
        assert server.names() == [("alpha", 5001)]
        assert await names(epmd_port=server.port) == [("alpha", 5001)]
        found = await port_please("alpha", "127.0.0.1", epmd_port=server.port)
        assert found is not None
        assert (found.alive, found.port, found.highest_version, found.lowest_version) == (
            "alpha", 5001, 6, 5)
        assert (found.host, found.hidden) == ("127.0.0.1", False)
        assert await port_please("beta", "127.0.0.1", epmd_port=server.port) is None
        await reg.close()
        await reg.close()  # idempotent
        assert reg.closed.is_set() and not reg.dropped
        await eventually(lambda: not server.names(), "alpha to be unregistered")


@async_test
async def test_hidden_registration_is_reported_hidden() -> None:
    async with serving() as server:
        reg = await register("ghost", 5002, epmd_port=server.port, hidden=True)
        found = await port_please("ghost", "127.0.0.1", epmd_port=server.port)
        assert found is not None and found.hidden
        await reg.close()


@async_test
async def test_names_lists_newest_first_and_starts_with_the_server_port() -> None:
    async with serving() as server:
        regs = [await register(f"n{i}", 6000 + i, epmd_port=server.port) for i in range(3)]
        expected = [("n2", 6002), ("n1", 6001), ("n0", 6000)]
        assert await names(epmd_port=server.port) == expected
        raw = await exchange(server.port, b"\x00\x01n")
        assert raw[:4] == struct.pack(">I", server.port)
        assert raw[4:] == b"name n2 at port 6002\nname n1 at port 6001\nname n0 at port 6000\n"
        await close_all(regs)


@async_test
async def test_alive2_reply_shape_follows_the_highest_version() -> None:
    async with serving() as server:
        new, w1 = await raw_alive2(server.port, "v6", high=6)
        old, w2 = await raw_alive2(server.port, "v5", high=5, low=5)
        assert new[:2] == b"v\x00" and struct.unpack(">I", new[2:])[0] != 0
        assert old[:2] == b"y\x00" and struct.unpack(">H", old[2:])[0] in (1, 2, 3)
        assert sorted(server.names()) == [("v5", 4000), ("v6", 4000)]
        w1.close()
        w2.close()
        await eventually(lambda: not server.names(), "both to be unregistered")


@async_test
async def test_every_registration_gets_a_new_nonzero_creation() -> None:
    async with serving() as server:
        regs = [await register(f"c{i}", 7000, epmd_port=server.port) for i in range(20)]
        creations = [r.creation for r in regs]
        assert 0 not in creations and len(set(creations)) == 20
        await close_all(regs)
        again = await register("c0", 7000, epmd_port=server.port)
        assert again.creation not in creations
        await again.close()


@async_test
async def test_port_please_and_names_replies_are_followed_by_a_close() -> None:
    async with serving() as server:
        reg = await register("py6", 5555, epmd_port=server.port)
        # OTP's client reads these replies until the close; read_until_closed
        # returning at all shows the server closed.
        assert await exchange(server.port, b"\x00\x04zpy6") == bytes.fromhex(
            "770015b34d00000600050003707936 0000".replace(" ", ""))
        assert await exchange(server.port, b"\x00\x04zpy7") == b"w\x01"
        await reg.close()


# --- a name's lifetime is its connection's -----------------------------------------------


@async_test
async def test_duplicate_name_is_refused_and_the_table_kept() -> None:
    async with serving() as server:
        first = await register("dup", 5100, epmd_port=server.port)
        with pytest.raises(EpmdError) as err:
            await register("dup", 5200, epmd_port=server.port)
        assert err.value.kind == "name_taken"
        reply = await exchange(server.port, encode_request(
            Alive2Request(NodeEntry("dup", 5300))))
        assert reply[:2] == b"v\x01" and len(reply) == 6
        old = await exchange(server.port, encode_request(
            Alive2Request(NodeEntry("dup", 5300, 5, 5))))
        assert old[:2] == b"y\x01" and len(old) == 4
        assert server.names() == [("dup", 5100)]
        found = await port_please("dup", "127.0.0.1", epmd_port=server.port)
        assert found is not None and found.port == 5100
        assert not first.closed.is_set()
        await first.close()


@async_test
async def test_registration_vanishes_within_a_second_of_its_connection_closing() -> None:
    async with serving() as server:
        reg = await register("brief", 5400, epmd_port=server.port)
        started = time.monotonic()
        await reg.close()
        await eventually(lambda: not server.names(), "brief to be unregistered")
        assert time.monotonic() - started < 1.0

        _, writer = await raw_alive2(server.port, "abrupt")
        assert server.names() == [("abrupt", 4000)]
        started = time.monotonic()
        writer.transport.abort()  # a crash: RST, no goodbye
        await eventually(lambda: not server.names(), "abrupt to be unregistered")
        assert time.monotonic() - started < 1.0
        assert await port_please("abrupt", "127.0.0.1", epmd_port=server.port) is None


@async_test
async def test_a_name_can_be_registered_again_once_released() -> None:
    async with serving() as server:
        reg = await register("again", 5500, epmd_port=server.port)
        await reg.close()
        await eventually(lambda: not server.names(), "again to be unregistered")
        reg2 = await register("again", 5501, epmd_port=server.port)
        assert server.names() == [("again", 5501)]
        await reg2.close()


@async_test
async def test_bytes_from_a_registrant_do_not_unregister_it() -> None:
    async with serving() as server:
        _, writer = await raw_alive2(server.port, "chatty")
        writer.write(b"\x00\x01n" + bytes(range(256)) * 100)
        await writer.drain()
        found = await port_please("chatty", "127.0.0.1", epmd_port=server.port)
        assert found is not None and found.port == 4000
        writer.close()
        await eventually(lambda: not server.names(), "chatty to be unregistered")


# --- hostile clients ---------------------------------------------------------------------------


@async_test
async def test_garbage_never_crashes_the_server_or_touches_the_table() -> None:
    rng = random.Random(4369)
    async with serving() as server:
        keeper = await register("keeper", 5600, epmd_port=server.port)
        before = server.names()
        payloads = [
            b"\x00\x00",  # zero length
            b"\x00\x01k",  # KILL: not served
            b"\x00\x05\x00\x01\x02\x03\x04",  # unknown tag 0
            b"\x00\x02nn",  # NAMES with a payload
            b"\x00\x01x",  # truncated ALIVE2
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            *(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(60)),
        ]
        replies = await asyncio.gather(*(exchange(server.port, p) for p in payloads))
        for payload, reply in zip(payloads, replies, strict=True):
            # Each was answered with at most an error reply, and closed.
            assert reply in (b"", b"w\x01") or reply[:2] == b"v\x02" or (
                payload[2:3] == b"n" and reply[:4] == struct.pack(">I", server.port)
            ), (payload, reply)
        assert server.names() == before
        assert not keeper.closed.is_set()
        found = await port_please("keeper", "127.0.0.1", epmd_port=server.port)
        assert found is not None and found.port == 5600
        await keeper.close()


@async_test
async def test_malformed_requests_get_an_error_in_the_expected_shape() -> None:
    async with serving() as server:
        bad_name = encode_request(Alive2Request(NodeEntry("ok", 1)))
        forged = bad_name.replace(b"\x00\x02ok", b"\x00\x02\n!")
        assert await exchange(server.port, forged) == b"v\x02\x00\x00\x00\x00"
        assert await exchange(server.port, b"\x00\x01z") == b"w\x01"
        assert await exchange(server.port, b"\x00\x01k") == b""
        assert server.names() == []


@async_test
async def test_oversized_length_is_cut_off_at_once() -> None:
    async with serving(request_timeout=60.0) as server:
        started = time.monotonic()
        for header in (b"\xff\xff", b"\xff\xffx", b"\x04\x01z"):
            reply = await exchange(server.port, header + b"a" * 100)
            assert reply in (b"", b"w\x01", b"v\x02\x00\x00\x00\x00")
        # Well before the 60 s request deadline: the length alone decided.
        assert time.monotonic() - started < 30
        assert server.names() == []
        assert await names(epmd_port=server.port) == []


@async_test
async def test_half_open_and_slow_clients_are_cut_off_by_the_deadline() -> None:
    async with serving(request_timeout=0.5) as server:
        keeper = await register("keeper", 5700, epmd_port=server.port)
        silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
        partial = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
        for _, writer in partial:
            writer.write(b"\x00\x10xab")
        half_closed = await asyncio.open_connection("127.0.0.1", server.port)
        half_closed[1].write(b"\x00\x05z")
        half_closed[1].write_eof()
        await eventually(lambda: server.connection_count >= 27, "all to connect")
        # The server still serves while they hang around.
        assert await names(epmd_port=server.port) == [("keeper", 5700)]

        async def dribble() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            request = b"\x00\x06zslowly"
            try:
                for i in range(len(request)):  # one byte per 0.2 s: 1.6 s > the deadline
                    writer.write(request[i:i + 1])
                    await asyncio.sleep(0.2)
            except ConnectionError:
                pass
            data = await read_until_closed(reader)
            writer.close()
            return data

        slow = asyncio.ensure_future(dribble())
        for reader, _ in [*silent, *partial, half_closed]:
            assert await read_until_closed(reader) == b""
        assert await slow == b""
        await eventually(lambda: server.connection_count == 1, "only the registration to remain")
        assert server.names() == [("keeper", 5700)] and not keeper.closed.is_set()
        for _, writer in [*silent, *partial, half_closed]:
            writer.close()
        await keeper.close()


@async_test
async def test_1000_concurrent_registrations_within_the_cap() -> None:
    async with serving() as server:
        regs = await asyncio.gather(*(register(f"m{i}", 10000 + i, epmd_port=server.port,
                                               timeout=60) for i in range(1000)))
        assert len(server.names()) == 1000
        assert sorted(server.names()) == sorted((f"m{i}", 10000 + i) for i in range(1000))
        assert len({r.creation for r in regs}) == 1000
        assert len(await names(epmd_port=server.port)) == 1000
        await close_all(list(regs))
        await eventually(lambda: not server.names(), "all 1000 to be unregistered")


@async_test
async def test_1000_concurrent_registrations_over_the_cap_are_refused_cleanly() -> None:
    async with serving(max_registrations=100, max_connections=2000) as server:
        outcomes = await asyncio.gather(
            *(register(f"o{i}", 20000 + i, epmd_port=server.port, timeout=60)
              for i in range(1000)),
            return_exceptions=True,
        )
        won = [r for r in outcomes if isinstance(r, Registration)]
        lost = [r for r in outcomes if not isinstance(r, Registration)]
        assert len(won) == 100
        assert all(isinstance(e, EpmdError) and e.kind == "refused" for e in lost)
        assert sorted(server.names()) == sorted((r.alive, r.port) for r in won)
        assert sorted(await names(epmd_port=server.port)) == sorted(server.names())
        await close_all(won)
        await eventually(lambda: not server.names(), "the winners to be unregistered")
        late = await register("late", 1, epmd_port=server.port)
        assert server.names() == [("late", 1)]
        await late.close()


@async_test
async def test_a_full_table_evicts_the_oldest_idle_connection_not_the_newcomer() -> None:
    async with serving(max_registrations=2, max_connections=3) as server:
        keeper = await register("keeper", 4000, epmd_port=server.port)
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        await eventually(lambda: server.connection_count == 3, "two idle connections")
        assert await names(epmd_port=server.port) == [("keeper", 4000)]
        assert server.evictions >= 1
        assert await read_until_closed(idle[0][0]) == b""  # the oldest idle one went
        assert not keeper.closed.is_set()  # a registration is never evicted
        for _, writer in idle:
            writer.close()
        await keeper.close()
        await eventually(lambda: server.connection_count == 0, "connections to go")


@async_test
async def test_a_remote_address_evicts_its_own_oldest_connection_first() -> None:
    async with serving(max_pending_per_address=2) as server:
        a, b, c = (epmd_server._Connection(server) for _ in range(3))
        for conn in (a, b, c):
            conn.peer = "10.0.0.7"
        for conn in (a, b):
            assert server._admit(conn)
        assert server._admit(c)  # replaces a, the address's oldest
        assert list(server._pending) == [b, c]
        assert a.state == "evicted"


@pytest.mark.parametrize(
    ("address", "local"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("fe80::1%eth0", False), ("?", False)],
)
def test_only_loopback_peers_may_register(address: str, local: bool) -> None:
    assert epmd_server._is_loopback(address) is local


def test_limits_must_leave_room_for_lookups() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        asyncio.run(EpmdServer.start("127.0.0.1", 0, max_registrations=10, max_connections=10))


# --- lifetime ------------------------------------------------------------------------------


@async_test
async def test_close_drops_every_registration_and_is_idempotent() -> None:
    server = await EpmdServer.start("127.0.0.1", 0)
    regs = [await register(f"d{i}", 100 + i, epmd_port=server.port) for i in range(3)]
    await server.close()
    await server.close()
    assert server.names() == [] and not server.is_serving
    for reg in regs:
        await asyncio.wait_for(reg.closed.wait(), 30)
        assert reg.dropped
    await close_all(regs)
    assert all(r.dropped for r in regs)  # closing afterwards does not rewrite history
    with pytest.raises(EpmdError) as err:
        await names(epmd_port=server.port)
    assert err.value.kind == "unavailable"


@async_test
async def test_serve_forever_returns_on_close_and_closes_when_cancelled() -> None:
    async with serving() as server:
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        await server.close()
        await asyncio.wait_for(task, 30)
    server = await EpmdServer.start("127.0.0.1", 0)
    task = asyncio.ensure_future(server.serve_forever())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not server.is_serving


@async_test
async def test_a_taken_port_is_reported_as_such() -> None:
    async with serving() as server:
        with pytest.raises(EpmdError) as err:
            await EpmdServer.start("127.0.0.1", server.port)
        assert err.value.kind == "address_in_use"
        # reuse_address: the port is free again the moment the server closes.
        port = server.port
    again = await EpmdServer.start("127.0.0.1", port)
    await again.close()


# --- client errors ----------------------------------------------------------------------------


@async_test
async def test_client_error_kinds() -> None:
    with pytest.raises(EpmdError) as err:
        await names(epmd_port=free_port(), timeout=10)
    assert err.value.kind == "unavailable"

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # say nothing until the client gives up and hangs up

    async with fake_epmd(silent) as port:
        started = time.monotonic()
        with pytest.raises(EpmdError) as err:
            await port_please("x", "127.0.0.1", epmd_port=port, timeout=0.3)
        assert err.value.kind == "timeout"
        assert time.monotonic() - started < 10

    async def babble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello, I am not an EPMD")
        await writer.drain()

    async with fake_epmd(babble) as port:
        for call in (register("x", 1, epmd_port=port), port_please("x", "127.0.0.1",
                                                                   epmd_port=port)):
            with pytest.raises(EpmdError) as err:
                await call
            assert err.value.kind == "protocol"

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return

    async with fake_epmd(hang_up) as port:
        with pytest.raises(EpmdError) as err:
            await register("x", 1, epmd_port=port)
        assert err.value.kind == "refused"


@async_test
async def test_a_host_name_is_resolved_and_each_address_tried() -> None:
    """Look-ups run on a bare socket: a name goes through the resolver, and an
    address that refuses is passed over for the next one."""
    async with serving() as server:
        reg = await register("gamma", 5003, host="localhost", epmd_port=server.port, timeout=10)
        found = await port_please("gamma", "localhost", epmd_port=server.port, timeout=10)
        assert found is not None and (found.port, found.host) == (5003, "localhost")
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def refusing_first(host: str, port: int, **kw: Any) -> Any:
            refusing = await real("127.0.0.1", free_port(), **kw)
            return [*refusing, *(await real("127.0.0.1", port, **kw))]

        loop.getaddrinfo = refusing_first  # type: ignore[method-assign,assignment]
        try:
            assert await names("epmd.example", epmd_port=server.port) == [("gamma", 5003)]
        finally:
            del loop.getaddrinfo
        await reg.close()
    with pytest.raises(EpmdError) as err:
        await names("no-such-host.invalid", epmd_port=free_port(), timeout=10)
    assert err.value.kind == "unavailable"


@async_test
async def test_epmd_port_comes_from_argument_then_env_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ERL_EPMD_PORT", raising=False)
    assert epmd_client.resolve_epmd_port() == 4369
    monkeypatch.setenv("ERL_EPMD_PORT", "14370")
    assert epmd_client.resolve_epmd_port() == 14370
    assert epmd_client.resolve_epmd_port(5000) == 5000
    async with serving() as server:
        monkeypatch.setenv("ERL_EPMD_PORT", str(server.port))
        reg = await register("envy", 1)
        assert reg.epmd_port == server.port
        assert await names() == [("envy", 1)]
        await reg.close()
    for bad in ("abc", "0", "70000", "-1"):
        monkeypatch.setenv("ERL_EPMD_PORT", bad)
        with pytest.raises(EpmdError) as err:
            await names()
        assert err.value.kind == "config"
    with pytest.raises(EpmdError):
        epmd_client.resolve_epmd_port(0)


def test_format_names_matches_epmd_names_output() -> None:
    assert format_names(4369, [("a", 1), ("b", 2)]) == (
        "epmd: up and running on port 4369 with data:\nname a at port 1\nname b at port 2\n")
    assert format_names(14370, []) == "epmd: up and running on port 14370 with data:\n"


# --- start-up policy ---------------------------------------------------------------------------


@async_test
async def test_policy_starts_the_embedded_epmd_and_a_second_node_shares_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    events: list[str] = []
    with caplog.at_level(logging.INFO, logger="erldist.epmd_policy"):
        first = await register_node("first", 9001, epmd_port=port, timeout=10,
                                    on_event=events.append)
    try:
        assert first.server is not None and first.server.port == port
        assert first.registered and first.creation != 0 and first.epmd_port == port
        assert any("started the embedded EPMD" in r.getMessage() and r.levelno == logging.INFO
                   for r in caplog.records)
        assert len(events) == 1 and "embedded" in events[0]
        second = await register_node("second", 9002, epmd_port=port, timeout=10)
        try:
            assert second.server is None  # it found the first one's EPMD
            assert sorted(first.server.names()) == [("first", 9001), ("second", 9002)]
            with pytest.raises(EpmdError) as err:
                await register_node("second", 9003, epmd_port=port, timeout=10)
            assert err.value.kind == "name_taken"
        finally:
            await second.close()
        server = first.server
        await eventually(lambda: server.names() == [("first", 9001)], "second to unregister")
    finally:
        await first.close()
    with pytest.raises(EpmdError) as err:
        await names(epmd_port=port)
    assert err.value.kind == "unavailable"  # close() stopped the server it owned


@async_test
async def test_policy_survivor_re_registers_when_the_owner_goes_away() -> None:
    port = free_port()
    owner = await register_node("owner", 9101, epmd_port=port, timeout=10)
    events: list[str] = []
    survivor = await register_node("survivor", 9102, epmd_port=port, timeout=10,
                                   on_event=events.append)
    creation = survivor.creation
    try:
        assert survivor.server is None
        await owner.close()
        await eventually(lambda: survivor.restorations == 1, "the survivor to re-register")
        assert survivor.registered
        assert survivor.creation == creation  # the node's pids stay valid
        assert survivor.epmd_creation != creation
        assert survivor.server is not None and survivor.server.port == port
        assert await names(epmd_port=port) == [("survivor", 9102)]
        assert any("dropped" in e for e in events)
        assert any("registered again" in e for e in events)
    finally:
        await survivor.close()
        await owner.close()


@async_test
async def test_policy_survivors_racing_for_the_port_end_up_on_one_epmd() -> None:
    port = free_port()
    owner = await register_node("owner", 9150, epmd_port=port, timeout=10)
    survivors = [await register_node(f"s{i}", 9151 + i, epmd_port=port, timeout=10)
                 for i in range(4)]
    try:
        await owner.close()
        await eventually(lambda: all(s.restorations == 1 for s in survivors),
                         "every survivor to re-register")
        owners = [s for s in survivors if s.server is not None]
        assert len(owners) == 1  # one won the bind; the others registered with it
        assert sorted(await names(epmd_port=port)) == [(f"s{i}", 9151 + i) for i in range(4)]
    finally:  # the new owner last, so nobody has to re-register again
        for survivor in sorted(survivors, key=lambda s: s.server is not None):
            await survivor.close()
        await owner.close()


@async_test
async def test_policy_re_registers_with_an_epmd_that_comes_back() -> None:
    async with serving() as first_epmd:
        port = first_epmd.port
        node = await register_node("faithful", 9201, epmd_port=port, embedded=False,
                                   timeout=2, max_backoff=0.2)
    try:
        # The EPMD is gone and this node may not start its own: it waits, retrying.
        await eventually(lambda: not node.registered, "the registration to drop")
        assert node.restorations == 0 and node.server is None
        async with serving(port) as second_epmd:
            await eventually(lambda: node.restorations == 1, "re-registration")
            assert second_epmd.names() == [("faithful", 9201)]
            assert node.server is None
            await node.close()
            await eventually(lambda: not second_epmd.names(), "close() to unregister")
    finally:
        await node.close()


@async_test
async def test_policy_without_embedded_fails_when_no_epmd_listens() -> None:
    with pytest.raises(EpmdError) as err:
        await register_node("lonely", 9301, epmd_port=free_port(), embedded=False, timeout=5)
    assert err.value.kind == "unavailable"


@async_test
async def test_policy_uses_the_winner_when_it_loses_the_bind_race(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving() as winner:
        real_register = epmd_client.register
        calls = 0

        async def first_attempt_misses(*args: Any, **kwargs: Any) -> Registration:
            # As if our probe ran just before another process's EPMD bound the port.
            nonlocal calls
            calls += 1
            if calls == 1:
                raise EpmdError("unavailable", "connection refused")
            return await real_register(*args, **kwargs)

        monkeypatch.setattr(epmd_policy, "register", first_attempt_misses)
        node = await register_node("racer", 9401, epmd_port=winner.port, timeout=10)
        try:
            assert calls == 2
            assert node.server is None
            assert winner.names() == [("racer", 9401)]
        finally:
            await node.close()


@async_test
async def test_policy_honours_erl_epmd_port(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as server:
        monkeypatch.setenv("ERL_EPMD_PORT", str(server.port))
        node = await register_node("envnode", 9501, timeout=10)
        try:
            assert node.epmd_port == server.port and node.server is None
            assert server.names() == [("envnode", 9501)]
        finally:
            await node.close()
