"""The runtime's guarantees through its public face (``Node.start``, ``connect``,
``ping``, ``health``, ``events``), against real peers.

Each test pins a behaviour no other test would notice breaking: the health
parallelism cap, simultaneous connects, the connect deadline, the event stream.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from erldist.config import Config
from erldist.errors import ConnectFailed
from erldist.events import ClusterEvent, NodeDown, NodeUp
from erldist.runtime.node import Node
from tests.support import pypeer
from tests.support.aio import run, wait_for
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "runtimecookie"


def fresh() -> str:
    return f"{unique_name('n')}@127.0.0.1"


async def start(epmd: EpmdProcess, config: Config | None = None, *, hidden: bool = False,
                name: str | None = None) -> Node:
    return await Node.start(name or fresh(), COOKIE, hidden=hidden, epmd_port=epmd.port,
                            embedded_epmd=False, config=config)


@pytest.fixture
def slow_erl_peers(epmd: EpmdProcess) -> Iterator[list[ErlNode]]:
    """Five real `erl` nodes, started side by side."""
    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(ErlNode, "25", name=fresh(), cookie=COOKIE, epmd_port=epmd.port)
                   for _ in range(5)]
        nodes = []
        for fut in futures:
            try:
                nodes.append(fut.result())
            except Exception:
                for started in nodes:
                    started.stop()
                raise
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


_QUEUED_PINGS = (
    "length([M || {'$gen_call', _, {is_auth, _}} = M <- "
    "element(2, process_info(whereis(net_kernel), messages))])."
)


def test_health_keeps_at_most_its_parallelism_in_flight(
    epmd: EpmdProcess, slow_erl_peers: list[ErlNode]
) -> None:
    cap = 2

    async def body() -> None:
        node = await start(epmd, Config(health_parallelism=cap, health_timeout=2.0))
        try:
            for erl in slow_erl_peers:
                # A ping answered proves the peer's net_kernel has settled the connection.
                assert await node.ping(erl.name) is True
            for erl in slow_erl_peers:
                # A slow peer: its net_kernel takes requests and answers none of them.
                assert await asyncio.to_thread(erl.eval, "sys:suspend(net_kernel).") == "ok"
            report = await node.health()
            names = tuple(erl.name for erl in slow_erl_peers)
            assert report.reachable_nodes == ()
            assert sorted(report.unreachable_nodes) == sorted(names)
            # Pings never answered hold their slots to the deadline: exactly `cap`
            # peers were ever asked. Without the cap every peer would be.
            queued = [int(await asyncio.to_thread(erl.eval, _QUEUED_PINGS))
                      for erl in slow_erl_peers]
            assert sorted(queued) == [0] * (len(names) - cap) + [1] * cap, queued
        finally:
            await node.stop()

    run(body())


def test_simultaneous_connects_settle_on_one_connection(
    epmd: EpmdProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="erldist.peers")

    async def one_round() -> None:
        a, b = await start(epmd), await start(epmd)
        seen: dict[str, list[ClusterEvent]] = {a.name: [], b.name: []}
        a.add_listener(seen[a.name].append)
        b.add_listener(seen[b.name].append)
        try:
            await asyncio.gather(a.connect(b.name), b.connect(a.name))
            assert a.nodes() == [b.name] and b.nodes() == [a.name]
            assert await a.ping(b.name) is True
            assert await b.ping(a.name) is True
            # One connection won: each side saw the other come up once and never go down.
            assert seen[a.name] == [NodeUp(b.name)]
            assert seen[b.name] == [NodeUp(a.name)]
        finally:
            await a.stop()
            await b.stop()

    async def body() -> None:
        for _ in range(5):
            await one_round()

    run(body())
    # Both dialled before either connection was up, at least once: the race was run.
    assert any("simultaneous connect" in r.getMessage() for r in caplog.records)


def test_connect_gives_up_at_its_deadline_and_can_connect_later(epmd: EpmdProcess) -> None:
    name = fresh()
    proc = pypeer.spawn(name, COOKIE, epmd.port)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        proc.send_signal(signal.SIGSTOP)  # it accepts TCP (the kernel does) and says nothing

        async def body() -> None:
            node = await start(epmd, Config(connect_timeout=1.0, ping_timeout=1.0))
            try:
                loop = asyncio.get_running_loop()
                began = loop.time()
                with pytest.raises(ConnectFailed):
                    await node.connect(name)
                assert loop.time() - began < 10.0
                assert await node.ping(name) is False
                assert node.nodes("connected") == []
                proc.send_signal(signal.SIGCONT)
                await node.connect(name)  # nothing of the failed attempts is in the way
                assert node.nodes() == [name]
            finally:
                await node.stop()

        run(body())
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_events_streams_visible_peers_and_ends_with_the_node(epmd: EpmdProcess) -> None:
    async def collect(stream: AsyncIterator[ClusterEvent], out: list[ClusterEvent]) -> None:
        async for event in stream:
            out.append(event)

    async def body() -> None:
        node = await start(epmd)
        visible: list[ClusterEvent] = []
        everything: list[ClusterEvent] = []
        tasks = [asyncio.create_task(collect(node.events(), visible)),
                 asyncio.create_task(collect(node.events(node_type="all"), everything))]
        await asyncio.sleep(0)  # each stream is listening once its task has run
        shell = await start(epmd, hidden=True)
        peer = await start(epmd)
        try:
            assert await shell.ping(node.name) is True
            await shell.stop()
            await wait_for(lambda: node.nodes("hidden") == [], 30, "the hidden peer to leave")
            await peer.connect(node.name)
            await peer.stop()
            await wait_for(lambda: node.nodes() == [], 30, "the visible peer to leave")
        finally:
            await shell.stop()
            await peer.stop()
            await node.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)  # both streams end with the node
        assert [(type(e), e.node) for e in visible] == [(NodeUp, peer.name),
                                                         (NodeDown, peer.name)]
        assert [(type(e), e.node, e.node_type) for e in everything] == [
            (NodeUp, shell.name, "hidden"),
            (NodeDown, shell.name, "hidden"),
            (NodeUp, peer.name, "visible"),
            (NodeDown, peer.name, "visible"),
        ]

    run(body())


@pytest.mark.parametrize("window", [0.01, 0.0])
def test_busy_waiting_follows_traffic_and_ends_when_it_stops(
    epmd: EpmdProcess, window: float
) -> None:
    erl = ErlNode("25", name=fresh(), cookie=COOKIE, epmd_port=epmd.port)
    try:
        async def body() -> None:
            node = await start(epmd, Config(busy_wait=window))
            busy = node.peers.busy_wait
            try:
                assert await node.ping(erl.name)  # the reply was read just now
                assert busy.spinning is (window > 0)
                await wait_for(lambda: not busy.spinning, what="an idle node to stop polling")
                # The peer's traffic alone (it pings us) wakes the spinner, too.
                before = busy.spins
                assert await asyncio.to_thread(erl.eval,
                                               f"net_adm:ping('{node.name}').") == "pong"
                assert busy.spins > before if window else busy.spins == 0
                await wait_for(lambda: not busy.spinning, what="the node to go idle again")
            finally:
                await node.stop()
            busy.touch()  # a stopped node never spins again
            assert not busy.spinning

        run(body())
    finally:
        erl.stop()
