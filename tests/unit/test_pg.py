"""A ``pg`` scope against a scripted OTP peer scope: discover/sync/join/leave as
``pg.erl`` sends them (OTP 25 and 28), removal on death, and scope monitors."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from erldist import telemetry
from erldist.protocol import control, signals
from erldist.runtime.process import Process
from erldist.runtime.services.pg import MAX_SCOPES_PER_NODE, PgScope
from erldist.term.types import Atom, Pid
from tests.unit.test_global_compat import A, FakeConn, FakeNode

PEER = Pid(A, 30, 0, 7)  # a's pg scope process
EM1, EM2 = Pid(A, 31, 0, 7), Pid(A, 32, 0, 7)
PG = Atom("pg")
G = Atom("g")


def _scope() -> tuple[FakeNode, PgScope, FakeConn]:
    node = FakeNode()
    conn = node.up(str(A))
    scope = PgScope(cast(Any, node), node.router, "pg")
    return node, scope, conn


def _from_peer(node: FakeNode, message: Any) -> None:
    node.router.dispatch(signals.MessageSignal(PEER, PG, message), node.conns[str(A)])


def _discovered(node: FakeNode, scope: PgScope, conn: FakeConn) -> None:
    assert conn.take() == [(PG, (Atom("discover"), scope.pid))]  # sent at start
    _from_peer(node, (Atom("discover"), PEER))
    sent = conn.take()
    assert sent[0] == (PEER, (Atom("$gen_cast"), (Atom("sync"), scope.pid, [])))
    assert isinstance(sent[1], control.MonitorP) and sent[1].to_proc == PEER
    assert sent[2] == (PEER, (Atom("discover"), scope.pid))


@pytest.mark.parametrize("discover", [(Atom("discover"), PEER), (Atom("discover"), PEER, 1)])
def test_discover_of_both_releases_gets_a_sync(discover: Any) -> None:
    node, scope, conn = _scope()
    conn.take()
    _from_peer(node, discover)
    assert conn.take()[0] == (PEER, (Atom("$gen_cast"), (Atom("sync"), scope.pid, [])))


def test_remote_members_follow_sync_join_leave_and_scope_death() -> None:
    node, scope, conn = _scope()
    _discovered(node, scope, conn)
    _from_peer(node, (Atom("$gen_cast"), (Atom("sync"), PEER, [(G, [EM1])])))
    assert scope.get_members(G) == [EM1] and scope.get_local_members(G) == []
    _from_peer(node, (Atom("join"), PEER, G, EM2))
    _from_peer(node, (Atom("join"), PEER, Atom("h"), [EM1, EM2]))
    assert scope.get_members(G) == [EM2, EM1]
    assert set(scope.which_groups()) == {G, Atom("h")}
    _from_peer(node, (Atom("leave"), PEER, EM1, [G]))
    assert scope.get_members(G) == [EM2]
    # A new sync replaces what the peer had: h is gone, g is as listed.
    _from_peer(node, (Atom("$gen_cast"), (Atom("sync"), PEER, [(G, [EM2])])))
    assert scope.which_groups() == [G]
    # The peer scope dies (or its node goes): all its members go.
    node.down(str(A))
    assert scope.which_groups() == []


def test_local_join_and_death_are_broadcast_and_monitored_in_order() -> None:
    node, scope, conn = _scope()
    _discovered(node, scope, conn)
    watcher = node.router.new_process()
    ref, now = scope.monitor_scope(watcher.pid)
    assert now == {}
    member = node.router.new_process()
    scope.join(G, member.pid)
    _from_peer(node, (Atom("join"), PEER, G, EM1))
    sent = conn.take()
    assert (PEER, (Atom("join"), scope.pid, G, member.pid)) in sent
    assert scope.get_local_members(G) == [member.pid]
    assert scope.which_local_groups() == [G]
    assert scope.leave(Atom("other"), member.pid) is False
    node.router.terminate(member, Atom("normal"))
    assert conn.take() == [(PEER, (Atom("leave"), scope.pid, member.pid, [G]))]
    assert scope.get_members(G) == [EM1]
    box = asyncio.run(_take(watcher, 3))
    assert box == [(ref, Atom("join"), G, [member.pid]), (ref, Atom("join"), G, [EM1]),
                   (ref, Atom("leave"), G, [member.pid])]
    assert scope.demonitor(ref) is True and scope.demonitor(ref) is False


async def _take(proc: Process, n: int) -> list[Any]:
    return [await proc.receive(timeout=1) for _ in range(n)]


def test_only_local_processes_join() -> None:
    _node, scope, _conn = _scope()
    with pytest.raises(ValueError, match="not local"):
        scope.join(G, EM1)


def test_a_peer_cannot_speak_for_another_nodes_scope_nor_claim_many() -> None:
    node, scope, conn = _scope()
    conn.take()
    other_nodes_scope = Pid(Atom("b@127.0.0.1"), 30, 0, 8)
    node.router.dispatch(signals.MessageSignal(PEER, PG, (Atom("$gen_cast"), (
        Atom("sync"), other_nodes_scope, [(G, [EM1])]))), node.conns[str(A)])
    node.router.dispatch(signals.MessageSignal(PEER, PG, (Atom("join"), other_nodes_scope,
                                                          G, EM1)), node.conns[str(A)])
    assert scope.which_groups() == [] and conn.take() == []
    for n in range(10):
        _from_peer(node, (Atom("discover"), Pid(A, 100 + n, 0, 7)))
    monitors = [m for m in conn.take() if isinstance(m, control.MonitorP)]
    assert len(monitors) == MAX_SCOPES_PER_NODE


def test_group_changes_are_reported_to_telemetry() -> None:
    seen: list[telemetry.TelemetryEvent] = []
    telemetry.attach(seen.append)
    try:
        node, scope, _conn = _scope()
        member = node.router.new_process()
        scope.join(G, member.pid)
        scope.leave(G, member.pid)
        telemetry.flush()  # handlers run on the telemetry thread
    finally:
        telemetry.detach(seen.append)
    changes = [e for e in seen if isinstance(e, telemetry.GroupChanged)]
    assert [(c.scope, c.group, c.action, c.pids) for c in changes] == [
        ("pg", "g", "join", (repr(member.pid),)),
        ("pg", "g", "leave", (repr(member.pid),)),
    ]
