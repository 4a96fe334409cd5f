"""The seed's cluster API, guarantee by guarantee, against real peers.

``erldist.cluster`` drives one process-wide default node, so every test
here stops it again (the ``clean`` fixture) and budget tests restore the
configuration they change.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator

import pytest

from erldist import cluster, config, telemetry
from erldist.errors import (
    AlreadyStarted,
    ConnectAtomBudgetExceeded,
    ConnectFailed,
    ConnectIgnored,
    InvalidCookieFormat,
    InvalidNodeFormat,
    InvalidNodeName,
    NetworkError,
    StartAtomBudgetExceeded,
    StartFailed,
)
from erldist.events import ClusterEvent, NodeDown, NodeUp
from erldist.monitor import Subject
from erldist.names import BudgetSite, InputKind, atom_budget
from tests.support import pypeer
from tests.support.otp import EpmdProcess, ErlNode, unique_name, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("fresh_facade")]

COOKIE = "clustercookie"


def fresh(host: str = "127.0.0.1") -> str:
    return f"{unique_name('c')}@{host}"


def start(epmd: EpmdProcess, name: str | None = None) -> str:
    node = name or fresh()
    cluster.start_node(node, COOKIE, epmd_port=epmd.port)
    return node


@pytest.fixture
def budget_events() -> Iterator[list[telemetry.AtomBudgetExhausted]]:
    seen: list[telemetry.AtomBudgetExhausted] = []

    def record(event: telemetry.TelemetryEvent) -> None:
        if isinstance(event, telemetry.AtomBudgetExhausted):
            seen.append(event)

    telemetry.attach(record)
    yield seen
    telemetry.detach(record)


class Peers:
    """Python peer nodes in their own processes (so they can be stopped with signals)."""

    def __init__(self, epmd: EpmdProcess) -> None:
        self.epmd = epmd
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, count: int) -> list[str]:
        names = [fresh() for _ in range(count)]
        for name in names:
            self.procs[name] = pypeer.spawn(name, COOKIE, self.epmd.port)
        for name in names:
            out = self.procs[name].stdout
            assert out is not None
            line = out.readline()
            assert line.strip() == b"ready", (name, line)
        return names

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


@pytest.fixture
def peers(epmd: EpmdProcess) -> Iterator[Peers]:
    group = Peers(epmd)
    yield group
    group.stop()


# --- not distributed -------------------------------------------------------------------


def test_not_distributed_answers_at_once() -> None:
    assert cluster.is_distributed() is False
    assert cluster.self_node() == "nonode@nohost"
    assert cluster.nodes() == []
    assert cluster.connected_count() == 0
    assert cluster.has_peers() is False
    started = time.monotonic()
    report = cluster.health()
    assert time.monotonic() - started < 0.5
    assert report == cluster.ClusterHealth("nonode@nohost", False, (), 0, (), ())
    assert cluster.ping("someone@127.0.0.1") is False
    with pytest.raises(ConnectIgnored) as caught:
        cluster.connect("someone@127.0.0.1")
    assert cluster.connect_error_to_string(caught.value) == (
        "Connect ignored (local node not distributed)"
    )


# --- start_node errors -----------------------------------------------------------------


def test_start_errors_in_seed_order(epmd: EpmdProcess) -> None:
    with pytest.raises(InvalidNodeName) as bad_name:
        cluster.start_node("no-at-sign", "bad cookie!")
    assert cluster.start_error_to_string(bad_name.value).startswith("Invalid node name: ")
    with pytest.raises(InvalidCookieFormat) as bad_cookie:
        cluster.start_node(fresh(), "bad cookie!")
    text = cluster.start_error_to_string(bad_cookie.value)
    assert text.startswith("Invalid cookie format: ") and "bad cookie!" not in text
    assert cluster.is_distributed() is False

    name = start(epmd)
    assert cluster.is_distributed() and cluster.self_node() == name
    with pytest.raises(AlreadyStarted) as again:
        cluster.start_node(fresh(), COOKIE, epmd_port=epmd.port)
    assert cluster.start_error_to_string(again.value) == "Node is already started"


def test_port_in_use_is_a_network_error(epmd: EpmdProcess) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(NetworkError) as caught:
            cluster.start_node(fresh(), COOKIE, port=port, epmd_port=epmd.port)
    assert cluster.start_error_to_string(caught.value).startswith("Network error: eaddrinuse")
    assert cluster.is_distributed() is False


def test_name_taken_is_a_start_failure(epmd: EpmdProcess) -> None:
    name = fresh()
    with (
        ErlNode("25", name=name, cookie=COOKIE, epmd_port=epmd.port),
        pytest.raises(StartFailed) as caught,
    ):
        cluster.start_node(name, COOKIE, epmd_port=epmd.port)
    assert cluster.start_error_to_string(caught.value).startswith("Node start failed: ")


# --- connect / ping --------------------------------------------------------------------


def test_connect_errors(epmd: EpmdProcess) -> None:
    me = start(epmd)
    assert cluster.ping(me) is True  # like net_adm:ping(node())
    cluster.connect(me)  # like net_kernel:connect_node(node()): true
    assert cluster.nodes() == []
    with pytest.raises(InvalidNodeFormat) as bad:
        cluster.connect("missing-host@")
    assert cluster.connect_error_to_string(bad.value).startswith("Invalid node format: ")
    with pytest.raises(ConnectFailed) as unknown:
        cluster.connect(fresh())
    assert cluster.connect_error_to_string(unknown.value) == (
        "Connect failed (peer unreachable or refused)"
    )
    assert cluster.ping(fresh()) is False
    assert cluster.ping("not a node") is False


def test_connect_ping_nodes_with_real_erl(epmd: EpmdProcess, release: str) -> None:
    name = start(epmd)
    with ErlNode(release, name=fresh(), cookie=COOKIE, epmd_port=epmd.port) as erl:
        cluster.connect(erl.name)
        assert cluster.nodes() == [erl.name]
        assert cluster.connected_count() == 1 and cluster.has_peers()
        assert cluster.ping(erl.name) is True
        assert erl.eval(f"net_adm:ping('{name}').") == "pong"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert cluster.is_healthy() is True
        assert [w.category for w in caught] == [DeprecationWarning]
        report = cluster.health()
        assert report.reachable_nodes == (erl.name,) and report.unreachable_nodes == ()
    with ErlNode(release, name=fresh(), cookie="wrongcookie", epmd_port=epmd.port) as other:
        with pytest.raises(ConnectFailed):
            cluster.connect(other.name)
        assert cluster.ping(other.name) is False


def test_calls_are_safe_from_many_threads(epmd: EpmdProcess, peers: Peers) -> None:
    start(epmd)
    names = peers.start(4)
    errors: list[BaseException] = []

    def worker(peer: str) -> None:
        try:
            for _ in range(5):
                assert cluster.ping(peer) is True
                assert peer in cluster.nodes()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in names * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(cluster.nodes()) == sorted(names)


# --- the atom budget -------------------------------------------------------------------


def test_atom_budget_guards_connect_ping_and_start(
    epmd: EpmdProcess, budget_events: list[telemetry.AtomBudgetExhausted]
) -> None:
    name = start(epmd)
    known = fresh()
    cluster.ping(known)  # interned now: costs nothing later
    config.configure(max_distribution_atoms=atom_budget().used + 1)
    first, second, third = fresh(), fresh(), fresh()

    with pytest.raises(ConnectFailed):
        cluster.connect(first)  # within budget: goes to the network and fails there
    assert atom_budget().known(first)
    with pytest.raises(ConnectAtomBudgetExceeded) as caught:
        cluster.connect(second)
    assert cluster.connect_error_to_string(caught.value) == (
        "Atom budget exceeded (raise config.max_distribution_atoms)"
    )
    assert not atom_budget().known(second)
    assert telemetry.flush()
    connect_event = budget_events[-1]
    assert connect_event.attempted_input == second
    assert connect_event.where is BudgetSite.CONNECT

    assert cluster.ping(third) is False
    assert telemetry.flush()
    ping_event = budget_events[-1]
    assert ping_event.attempted_input == third
    assert ping_event.where is BudgetSite.PING
    assert cluster.ping(known) is False  # known names cost nothing: the network answers
    assert telemetry.flush()
    assert len(budget_events) == 2

    cluster.stop_node()
    with pytest.raises(StartAtomBudgetExceeded):
        cluster.start_node(fresh(), COOKIE, epmd_port=epmd.port)
    assert telemetry.flush()
    assert budget_events[-1].kind is InputKind.NODE_NAME
    secret = "fresh_secret_cookie_" + unique_name("k")
    with pytest.raises(StartAtomBudgetExceeded) as exhausted:
        cluster.start_node(name, secret, epmd_port=epmd.port)
    assert cluster.start_error_to_string(exhausted.value) == (
        "Atom budget exceeded (raise config.max_distribution_atoms)"
    )
    assert telemetry.flush()
    event = budget_events[-1]
    assert event.attempted_input == secret and event.kind is InputKind.COOKIE
    assert event.where is BudgetSite.START_NODE
    assert secret not in repr(event) and secret not in str(event)
    assert cluster.is_distributed() is False


# --- health ----------------------------------------------------------------------------


def test_health_all_up_is_fast_and_ordered(epmd: EpmdProcess, peers: Peers) -> None:
    start(epmd)
    names = peers.start(10)
    for peer in names:
        cluster.connect(peer)
    started = time.monotonic()
    report = cluster.health()
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    assert report.connected_nodes == tuple(cluster.nodes())
    assert report.reachable_nodes == report.connected_nodes
    assert report.unreachable_nodes == ()
    assert report.connected_count == 10 and report.is_distributed


def test_health_with_silent_peers_keeps_the_deadline(epmd: EpmdProcess, peers: Peers) -> None:
    start(epmd)
    names = peers.start(40)
    for peer in names:
        cluster.connect(peer)
    silent = set(names[::4])
    for peer in silent:
        os.kill(peers.procs[peer].pid, signal.SIGSTOP)
    deadline = config.get().health_timeout
    started = time.monotonic()
    report = cluster.health()
    elapsed = time.monotonic() - started
    assert elapsed <= deadline + 0.5, elapsed
    assert set(report.unreachable_nodes) == silent
    order = report.connected_nodes
    assert report.reachable_nodes == tuple(n for n in order if n not in silent)
    assert report.unreachable_nodes == tuple(n for n in order if n in silent)
    assert set(order) == set(names)


# --- monitor ---------------------------------------------------------------------------


def test_monitor_sees_join_then_kill(epmd: EpmdProcess, release: str) -> None:
    start(epmd)
    monitor = cluster.start_monitor()
    inbox: Subject[ClusterEvent] = Subject()
    cluster.subscribe(monitor, inbox)
    cluster.subscribe(monitor, inbox)  # duplicates are ignored
    calls: list[ClusterEvent] = []
    cluster.subscribe(monitor, calls.append)
    with ErlNode(release, name=fresh(), cookie=COOKIE, epmd_port=epmd.port) as erl:
        assert erl.eval(f"net_adm:ping('{cluster.self_node()}').") == "pong"
        assert inbox.receive(timeout=30) == NodeUp(erl.name)
        erl.proc.kill()
        down = inbox.receive(timeout=30)
        assert isinstance(down, NodeDown) and down.node == erl.name
    wait_until(lambda: len(calls) == 2, 30, "the callable to get both events")
    assert [type(e) for e in calls] == [NodeUp, NodeDown]
    assert len(inbox) == 0  # the duplicate subscription delivered nothing twice
    cluster.unsubscribe(monitor, inbox)
    inbox.close()
    assert monitor.subscribers == 1
    monitor.close()


def test_stop_node_leaves_cleanly_and_reports_nodedown(epmd: EpmdProcess, peers: Peers) -> None:
    start(epmd)
    monitor = cluster.start_monitor()
    inbox: Subject[ClusterEvent] = Subject()
    cluster.subscribe(monitor, inbox)
    names = peers.start(2)
    for peer in names:
        cluster.connect(peer)
    ups = {inbox.receive(timeout=30) for _ in names}
    assert ups == {NodeUp(n) for n in names}
    started = time.monotonic()
    cluster.stop_node()
    assert time.monotonic() - started < 10
    downs = [inbox.receive(timeout=30) for _ in names]
    assert {d.node for d in downs} == set(names)
    assert all(isinstance(d, NodeDown) for d in downs)
    assert cluster.is_distributed() is False
    monitor.close()
