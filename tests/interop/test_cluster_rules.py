"""The cluster API's rules that a quiet departure would break, against real peers.

Monitor scope (visible peers by default, as ``nodes()``), limits that only
tighten once a node has started, settings read live, peers that connected in
costing no atom budget, and ``health()`` answering by its deadline whatever
happens to the node's event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from erldist import cluster, config, telemetry
from erldist.config import ConfigLimitWidened, ConfigSettingFixed, config_error_to_string
from erldist.events import ClusterEvent, NodeDown, NodeUp
from erldist.monitor import Subject
from erldist.names import atom_budget
from erldist.runtime.node import Node
from tests.support import pypeer
from tests.support.otp import EpmdProcess, ErlNode, unique_name, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("fresh_facade")]

COOKIE = "rulescookie"


def fresh() -> str:
    return f"{unique_name('r')}@127.0.0.1"


def start(epmd: EpmdProcess) -> str:
    name = fresh()
    cluster.start_node(name, COOKIE, epmd_port=epmd.port)
    return name


@pytest.fixture
def peer(epmd: EpmdProcess) -> Iterator[tuple[str, int]]:
    """One Python peer in its own process: (name, pid)."""
    name = fresh()
    proc = pypeer.spawn(name, COOKIE, epmd.port)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        yield name, proc.pid
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_the_monitor_agrees_with_nodes_and_hidden_peers_are_opt_in(
    epmd: EpmdProcess, release: str
) -> None:
    me = start(epmd)
    monitor = cluster.start_monitor()
    visible: Subject[ClusterEvent] = Subject()
    everything: Subject[ClusterEvent] = Subject()
    hidden: Subject[ClusterEvent] = Subject()
    cluster.subscribe(monitor, visible)
    cluster.subscribe(monitor, everything, node_type="all")
    cluster.subscribe(monitor, hidden, node_type="hidden")

    # A remote shell: erl -hidden.
    with ErlNode(release, name=fresh(), cookie=COOKIE, epmd_port=epmd.port,
                 extra_args=["-hidden"]) as shell:
        assert shell.eval(f"net_adm:ping('{me}').") == "pong"
        assert everything.receive(timeout=30) == NodeUp(shell.name, node_type="hidden")
        assert hidden.receive(timeout=30) == NodeUp(shell.name, node_type="hidden")
        assert cluster.nodes() == []

        # An erldist one-shot command: a hidden node that pings and leaves.
        one_shot = fresh()

        async def ping_once() -> bool:
            node = await Node.start(one_shot, COOKIE, hidden=True, epmd_port=epmd.port,
                                    embedded_epmd=False)
            try:
                return await node.ping(me)
            finally:
                await node.stop()

        assert asyncio.run(ping_once()) is True
        assert everything.receive(timeout=30) == NodeUp(one_shot, node_type="hidden")
        down = everything.receive(timeout=30)
        assert isinstance(down, NodeDown) and down.node == one_shot
        assert down.node_type == "hidden"

        # A visible node: everyone hears of it, and it is the first thing `visible` hears.
        with ErlNode(release, name=fresh(), cookie=COOKIE, epmd_port=epmd.port) as erl:
            assert erl.eval(f"net_adm:ping('{me}').") == "pong"
            assert visible.receive(timeout=30) == NodeUp(erl.name)
            assert everything.receive(timeout=30) == NodeUp(erl.name)
            assert cluster.nodes() == [erl.name]
        gone = visible.receive(timeout=30)
        assert isinstance(gone, NodeDown) and gone.node == erl.name
        assert gone.node_type == "visible"
        assert everything.receive(timeout=30) == gone
    last = everything.receive(timeout=30)
    assert isinstance(last, NodeDown) and last.node == shell.name
    # Every subscriber is handed an event before any is handed the next, so by
    # now `visible` and `hidden` have had every event meant for them.
    assert len(visible) == 0
    assert [hidden.get_nowait() for _ in range(len(hidden))] == [
        NodeUp(one_shot, node_type="hidden"),
        NodeDown(one_shot, down.reason, node_type="hidden"),
        last,
    ]
    monitor.close()


def test_limits_only_tighten_once_a_node_has_started(epmd: EpmdProcess) -> None:
    config.configure(max_distribution_atoms=50_000)  # before any start: anything valid
    start(epmd)
    assert config.configure(max_distribution_atoms=1024).max_distribution_atoms == 1024
    with pytest.raises(ConfigLimitWidened) as caught:
        config.configure(max_distribution_atoms=999_999_999)
    assert caught.value.field == "max_distribution_atoms"
    assert config_error_to_string(caught.value) == (
        "Config limit cannot be widened after start: max_distribution_atoms is 1024, asked "
        "for 999999999 (a limit may only be tightened once a node has started)"
    )
    assert config.configure(health_parallelism=8).health_parallelism == 8
    with pytest.raises(ConfigLimitWidened, match="health_parallelism is 8, asked for 9"):
        config.configure(health_parallelism=9)
    # All or nothing: the valid change beside the refused one is not made either.
    with pytest.raises(ConfigLimitWidened):
        config.configure(health_timeout=2.0, max_distribution_atoms=1025)
    assert config.get().health_timeout == 8.0
    assert config.get().max_distribution_atoms == 1024
    cluster.stop_node()  # the guarantee outlives the node, as the seed's write-once config
    with pytest.raises(ConfigLimitWidened):
        config.configure(max_distribution_atoms=1025)


def test_settings_changed_after_start_take_effect(
    epmd: EpmdProcess, peer: tuple[str, int]
) -> None:
    start(epmd)
    name, pid = peer
    cluster.connect(name)
    os.kill(pid, signal.SIGSTOP)
    config.configure(health_timeout=1.0, ping_timeout=1.0)  # after start: read live
    started = time.monotonic()
    report = cluster.health()
    elapsed = time.monotonic() - started
    assert report.unreachable_nodes == (name,)
    assert elapsed < 4.0, f"health took {elapsed:.1f} s: the 8 s it started with"
    started = time.monotonic()
    assert cluster.ping(name) is False
    elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"ping took {elapsed:.1f} s: the 8 s it started with"
    # Read only when a connection is set up: refused rather than half applied.
    with pytest.raises(ConfigSettingFixed) as caught:
        config.configure(net_ticktime=30)
    assert caught.value.field == "net_ticktime"
    assert config.get().net_ticktime == 60.0


def test_a_peer_that_connected_in_is_known_when_the_budget_is_spent(
    epmd: EpmdProcess, release: str
) -> None:
    me = start(epmd)
    with ErlNode(release, name=fresh(), cookie=COOKIE, epmd_port=epmd.port) as erl:
        assert erl.eval(f"net_adm:ping('{me}').") == "pong"
        wait_until(lambda: cluster.nodes() == [erl.name], 30, "the peer to be connected")
        config.configure(max_distribution_atoms=atom_budget().used)  # spent (a tightening)
        assert cluster.ping(fresh()) is False  # a fresh name is refused...
        assert cluster.ping(erl.name) is True  # ...a peer that connected to us is known
        cluster.connect(erl.name)  # no ConnectAtomBudgetExceeded


def test_a_slow_telemetry_handler_does_not_starve_the_node(
    epmd: EpmdProcess, peer: tuple[str, int]
) -> None:
    start(epmd)
    name, _ = peer
    entered, release = threading.Event(), threading.Event()

    def slow(event: telemetry.TelemetryEvent) -> None:
        if isinstance(event, NodeUp):
            entered.set()
            release.wait(60)

    telemetry.attach(slow)
    try:
        cluster.connect(name)  # its NodeUp is now held by the handler
        assert entered.wait(30)
        report = cluster.health()
        assert report.reachable_nodes == (name,)
        assert cluster.ping(name) is True
    finally:
        release.set()
        telemetry.detach(slow)


def test_health_answers_at_its_deadline_when_the_loop_is_starved(
    epmd: EpmdProcess, peer: tuple[str, int]
) -> None:
    start(epmd)
    name, _ = peer
    cluster.connect(name)
    config.configure(health_timeout=1.0)
    entered, release = threading.Event(), threading.Event()

    def hog() -> None:
        entered.set()
        release.wait(60)

    # Whatever starves it (a blocking callback, a CPU-bound listener), the
    # caller's deadline holds: the cluster module's own loop is blocked here.
    cluster._ensure_loop().call_soon_threadsafe(hog)
    try:
        assert entered.wait(30)
        started = time.monotonic()
        report = cluster.health()
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 1.0 + 0.5 + 1.0, elapsed  # deadline + 0.5 s, plus slack for a busy host
    assert report.connected_nodes == (name,)
    assert report.reachable_nodes == ()
    assert report.unreachable_nodes == (name,)
    assert report.is_distributed and report.connected_count == 1
    # Once the loop is free, health is itself again.
    assert cluster.health().reachable_nodes == (name,)
