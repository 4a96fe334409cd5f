"""A Python node and real Erlang/OTP nodes as peers, both directions.

Every test runs against OTP 25 and OTP 28. The Erlang side is driven through
``ErlNode.eval`` in a worker thread so our node's loop keeps serving while
Erlang waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import pytest

from erldist import config, telemetry
from erldist.errors import ConnectFailed
from erldist.events import NodeDown, NodeUp
from erldist.runtime.node import Node
from erldist.term.types import Atom, FrozenList, FrozenMap, Pid
from tests.support.aio import EventLog, run, wait_for
from tests.support.nodes import erl
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "interopcookie"


def start_erl(
    started: list[ErlNode], release: str, epmd: EpmdProcess, *, host: str = "127.0.0.1",
    cookie: str = COOKIE, ticktime: int | None = None,
) -> ErlNode:
    extra = ["-kernel", "net_ticktime", str(ticktime)] if ticktime else []
    node = ErlNode(release, name=f"{unique_name('e')}@{host}", cookie=cookie,
                   epmd_port=epmd.port, extra_args=extra)
    started.append(node)
    return node


async def start_py(epmd: EpmdProcess, host: str = "127.0.0.1", **kwargs: object) -> Node:
    return await Node.start(f"{unique_name('py')}@{host}", COOKIE, epmd_port=epmd.port,
                            embedded_epmd=False, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"], ids=["long", "short"])
def test_ping_both_ways_nodes_and_monitor(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], host: str
) -> None:
    e1 = start_erl(erl_nodes, release, epmd, host=host)

    async def body() -> None:
        py = await start_py(epmd, host)
        try:
            assert await erl(e1, "net_kernel:monitor_nodes(true).") == "ok"
            assert await erl(e1, f"net_adm:ping('{py.name}').") == "pong"
            assert await py.ping(e1.name) is True
            assert py.nodes() == [e1.name]
            assert await erl(e1, f"nodes() =:= ['{py.name}'].") == "true"
            got = await erl(e1, "receive {nodeup, N} -> N after 10000 -> timeout end.")
            assert got.strip("'") == py.name
        finally:
            await py.stop()
        got = await erl(e1, "receive {nodedown, N} -> N after 20000 -> timeout end.")
        assert got.strip("'") == py.name
        assert await erl(e1, "nodes().") == "[]"

    run(body())


def test_long_and_short_names_do_not_mix(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    short_erl = start_erl(erl_nodes, release, epmd, host="localhost")
    long_erl = start_erl(erl_nodes, release, epmd, host="127.0.0.1")

    async def body() -> None:
        py_long = await start_py(epmd, "127.0.0.1")
        py_short = await start_py(epmd, "localhost")
        try:
            with pytest.raises(ConnectFailed):
                await py_long.connect(short_erl.name)
            with pytest.raises(ConnectFailed):
                await py_short.connect(long_erl.name)
            assert await py_long.ping(short_erl.name) is False
            assert await erl(short_erl, f"net_adm:ping('{py_long.name}').") == "pang"
            assert await erl(long_erl, f"net_adm:ping('{py_short.name}').") == "pang"
            assert py_long.nodes("connected") == []
            assert py_short.nodes("connected") == []
        finally:
            await py_long.stop()
            await py_short.stop()

    run(body())


def test_wrong_cookie_fails_both_ways_and_leaves_nothing_open(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="erldist")
    e1 = start_erl(erl_nodes, release, epmd, cookie="another_cookie")
    rejected: list[telemetry.HandshakeRejected] = []

    def record(event: telemetry.TelemetryEvent) -> None:
        if isinstance(event, telemetry.HandshakeRejected):
            rejected.append(event)

    telemetry.attach(record)

    async def body() -> None:
        py = await start_py(epmd)
        try:
            assert await py.ping(e1.name) is False
            with pytest.raises(ConnectFailed):
                await py.connect(e1.name)
            assert await erl(e1, f"net_adm:ping('{py.name}').") == "pang"
            await wait_for(lambda: py.peers.handshaking == 0, 10, "handshakes to close")
            assert py.nodes("connected") == []
            assert await erl(e1, "nodes(connected).") == "[]"
        finally:
            await py.stop()

    try:
        run(body())
    finally:
        assert telemetry.flush()
        telemetry.detach(record)
    reasons = [event.reason for event in rejected]
    assert any(r.startswith("BAD_COOKIE") for r in reasons), reasons
    assert all("interopcookie" not in repr(e) and "another_cookie" not in repr(e)
               for e in rejected)
    assert "BAD_COOKIE" in caplog.text or "bad_cookie" in caplog.text
    assert "interopcookie" not in caplog.text and "another_cookie" not in caplog.text
    assert any("Connection attempt from node" in line or "disallowed" in line
               or "cookie" in line.lower() for line in e1.log), e1.log[-10:]


def test_python_nodes_mesh_and_erlang_joins(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e1 = start_erl(erl_nodes, release, epmd)

    async def body() -> None:
        a, b, c = [await start_py(epmd) for _ in range(3)]
        try:
            await a.connect(b.name)
            await c.connect(b.name)
            await wait_for(lambda: sorted(a.nodes()) == sorted([b.name, c.name]), 20,
                           "a full mesh of three Python nodes")
            await wait_for(lambda: sorted(c.nodes()) == sorted([a.name, b.name]), 20,
                           "c to see a and b")
            assert await erl(e1, f"net_adm:ping('{a.name}').") == "pong"
            want = sorted([a.name, b.name, c.name])
            deadline = time.monotonic() + 20
            while True:
                listed = ",".join(f"'{n}'" for n in want)
                seen = await erl(e1, f"lists:sort(nodes()) =:= [{listed}].")
                if seen == "true":
                    break
                assert time.monotonic() < deadline, seen
                await asyncio.sleep(0.1)
        finally:
            for node in (a, b, c):
                await node.stop()

    run(body())


def test_silent_peer_is_dropped_within_ticktime(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    ticktime = 4
    e1 = start_erl(erl_nodes, release, epmd, ticktime=ticktime)
    cfg = config.Config(net_ticktime=float(ticktime))

    async def body() -> None:
        py = await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                              embedded_epmd=False, config=cfg)
        log = EventLog(py)
        try:
            assert await py.ping(e1.name)
            os.kill(e1.proc.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                down = await log.wait(NodeDown, e1.name, timeout=ticktime * 4)
            finally:
                os.kill(e1.proc.pid, signal.SIGCONT)
            elapsed = down - stopped
            # Our rule: down after `ticktime` of silence, checked every tick
            # interval (ticktime/4); a little slack for a loaded machine.
            assert elapsed <= ticktime + ticktime / 4 + 0.75, elapsed
            assert elapsed >= ticktime - ticktime / 4 - 0.5, elapsed
        finally:
            await py.stop()

    run(body())


def test_killed_peer_is_down_at_once(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e1 = start_erl(erl_nodes, release, epmd)

    async def body() -> None:
        py = await start_py(epmd)
        log = EventLog(py)
        try:
            assert await py.ping(e1.name)
            await log.wait(NodeUp, e1.name)
            e1.proc.kill()
            killed = time.monotonic()
            down = await log.wait(NodeDown, e1.name, timeout=10)
            assert down - killed < 1.0
            assert py.nodes() == []
        finally:
            await py.stop()

    run(body())


def test_idle_connection_survives_on_ticks(epmd: EpmdProcess) -> None:
    """60 s of silence on both OTPs at once: only ticks flow, nobody drops."""
    ticktime = 4
    started: list[ErlNode] = []
    try:
        peers = [start_erl(started, rel, epmd, ticktime=ticktime) for rel in ("25", "28")]
        cfg = config.Config(net_ticktime=float(ticktime))

        async def body() -> None:
            py = await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE,
                                  epmd_port=epmd.port, embedded_epmd=False, config=cfg)
            log = EventLog(py)
            try:
                for peer in peers:
                    assert await py.ping(peer.name)
                await asyncio.sleep(60)  # the idle period under test, not a wait
                assert not [e for _, e in log.events if isinstance(e, NodeDown)]
                assert sorted(py.nodes()) == sorted(p.name for p in peers)
                for peer in peers:
                    assert await erl(peer, f"net_adm:ping('{py.name}').") == "pong"
            finally:
                await py.stop()

        run(body(), timeout=240)
    finally:
        for node in started:
            node.stop()


def test_messages_both_ways_and_undecodable_ones_are_dropped(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e1 = start_erl(erl_nodes, release, epmd)

    async def body() -> None:
        py = await start_py(epmd)
        try:
            inbox = py.process("inbox")
            to_us = f"{{inbox, '{py.name}'}}"
            await erl(e1, f"{to_us} ! {{hello, self(), <<\"x\">>, [1,2,3], #{{a => 1.5}}}}.")
            hello, sender, text, items, mapping = await inbox.receive(timeout=30)
            assert (hello, text, items, mapping) == ("hello", b"x", [1, 2, 3], {"a": 1.5})
            assert isinstance(sender, Pid) and sender.node == e1.name
            await py.send(sender, (Atom("reply"), 42, "text"))
            got = await erl(e1, "receive {reply, X, T} -> {X, T} =:= {42, <<\"text\">>} "
                                "after 10000 -> timeout end.")
            assert got == "true"
            await py.send(("nobody_here", e1.name), Atom("dropped_by_erlang"))
            # Strings are lists: a map keyed by them arrives with hashable keys
            # and goes back to Erlang as the very same term.
            await erl(e1, f"{to_us} ! {{self(), #{{\"key\" => 1, #{{a => [1]}} => 2}}}}.")
            back_to, keyed = await inbox.receive(timeout=30)
            assert keyed == {FrozenList(b"key"): 1, FrozenMap({Atom("a"): FrozenList([1])}): 2}
            await py.send(back_to, keyed)
            got = await erl(e1, "receive M -> M =:= #{\"key\" => 1, #{a => [1]} => 2} "
                                "after 10000 -> timeout end.")
            assert got == "true"
            # 1 and 1.0 are two keys in Erlang but one in a dict: a valid term
            # Python cannot hold. That message is dropped, the link stays up.
            await erl(e1, f"{to_us} ! #{{1 => a, 1.0 => b}}, {to_us} ! after_it.")
            assert await inbox.receive(timeout=30) == Atom("after_it")
            conn = py.connection(e1.name)
            assert conn is not None and conn.dropped == 1
            assert py.nodes() == [e1.name]
        finally:
            await py.stop()

    run(body())


def test_dynamic_name_node_gets_its_name_from_us(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    anon = ErlNode(release, name="undefined@127.0.0.1", cookie=COOKIE, epmd_port=epmd.port)
    erl_nodes.append(anon)

    async def body() -> None:
        py = await start_py(epmd)
        try:
            # Such a node never auto-connects (OTP sets dist_auto_connect never).
            assert await erl(anon, f"net_kernel:connect_node('{py.name}').") == "true"
            assert await erl(anon, f"net_adm:ping('{py.name}').") == "pong"
            given = (await erl(anon, "node().")).strip("'")
            assert given.endswith("@127.0.0.1") and not given.startswith("undefined")
            assert py.nodes("connected") == [given]
            assert await py.ping(given) is True
        finally:
            await py.stop()

    run(body())


def test_sending_to_a_stalled_peer_blocks_instead_of_buffering(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e1 = start_erl(erl_nodes, release, epmd)

    async def body() -> None:
        py = await start_py(epmd)
        try:
            assert await py.ping(e1.name)
            conn = py.connection(e1.name)
            assert conn is not None and conn.transport is not None
            os.kill(e1.proc.pid, signal.SIGSTOP)
            sent = 0

            async def flood() -> None:
                nonlocal sent
                while True:
                    await py.send(("sink", e1.name), b"x" * 1024)
                    sent += 1

            try:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(flood(), 5)
                assert conn.congested
                # Bounded by the socket buffers plus asyncio's high-water mark,
                # not by how long the sender kept trying.
                assert conn.transport.get_write_buffer_size() < 1024 * 1024
                assert sent < 50_000
            finally:
                os.kill(e1.proc.pid, signal.SIGCONT)
            assert await py.ping(e1.name, timeout=30)
        finally:
            await py.stop()

    run(body())
