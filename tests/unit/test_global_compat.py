"""GlobalCompat against a scripted OTP peer: the sync sequence, restarts, locks.

A fake node records what GlobalCompat sends on each fake connection, and the
test plays the Erlang side's ``global_name_server`` and locker message by
message, in the order OTP 25 and 28 send them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from erldist.config import Config
from erldist.errors import ConnectFailed
from erldist.events import ClusterEvent, NodeDown, NodeUp
from erldist.names import NodeName, atom_budget, parse_node_name
from erldist.protocol import control, signals
from erldist.protocol.flags import DFlag
from erldist.runtime import global_compat
from erldist.runtime.global_compat import GLOBAL_NAME_SERVER, GlobalCompat
from erldist.runtime.router import Router
from erldist.runtime.suggested_dials import DEFAULT_MAX_FAILED, DEFAULT_MAX_IN_FLIGHT
from erldist.term.types import Atom, ImproperList, Pid, Reference

ME = Atom("py@127.0.0.1")
A = Atom("a@127.0.0.1")
B = Atom("b@127.0.0.1")
A_LOCKER = Pid(A, 40, 0, 7)
A_REGISTRAR = Pid(A, 41, 0, 7)
B_LOCKER = Pid(B, 40, 0, 8)
A_TAG = -576460752303423485
CAST = Atom("$gen_cast")
CALL = Atom("$gen_call")


class FakeConn:
    """A connection as the router writes to it; records the control messages."""

    def __init__(self, peer: str) -> None:
        self.peer_name = peer
        self.flags = int(DFlag.SEND_SENDER | DFlag.EXIT_PAYLOAD | DFlag.ALIAS)
        self.sent: list[control.ControlMessage] = []
        self.closed: str | None = None
        self.congested = False

    def send_signal(self, signal: signals.Signal) -> None:
        self.sent.append(signals.to_control(signal, self.flags))

    def send_signals(self, *sent: signals.Signal) -> None:
        for signal in sent:
            self.send_signal(signal)

    async def drain(self) -> None:
        return None

    def pause_delivery(self) -> None:
        raise AssertionError("global_name_server is a service: it has no mailbox to fill")

    def resume_delivery(self) -> None:
        raise AssertionError("never paused")

    def take(self) -> list[Any]:
        """What went out since the last look: ``(name, msg)`` or ``(pid, msg)`` or signals."""
        out: list[Any] = []
        for msg in self.sent:
            if isinstance(msg, control.RegSend):
                out.append((msg.to_name, msg.message))
            elif isinstance(msg, control.SendSender):
                out.append((msg.to_pid, msg.message))
            else:
                out.append(msg)
        self.sent.clear()
        return out


class FakePeers:
    def __init__(self, node: FakeNode) -> None:
        self.node = node

    async def ensure(self, peer: NodeName, timeout: float | None) -> None:
        await self.node.dial(peer)

    def disconnect(self, peer: str, reason: str) -> bool:
        conn = self.node.conns.get(peer)
        if conn is None:
            return False
        conn.closed = reason
        return True


class FakeNode:
    """Just what GlobalCompat uses of a Node, with a real router over fake connections."""

    def __init__(self) -> None:
        self.atom = ME
        self.name = str(ME)
        self.node_name = parse_node_name(self.name)
        self.in_flight = 0
        self.most_in_flight = 0
        self.conns: dict[str, FakeConn] = {}
        self.router = Router(self.name, 5, self, settings=lambda: Config(mailbox_maxsize=100))
        self.peers = FakePeers(self)
        self.hidden: set[str] = set()
        self.unreachable: set[str] = set()
        self.dialed: list[str] = []
        self.listeners: list[Callable[[ClusterEvent], None]] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def nodes(self) -> list[str]:
        return [p for p in self.conns if p not in self.hidden]

    def connection(self, peer: str) -> FakeConn | None:
        return self.conns.get(peer)

    def link_to(self, peer: str) -> FakeConn | None:
        return self.conns.get(peer)

    async def reach(self, peer: str) -> FakeConn:
        raise AssertionError("global_name_server never dials through the router")

    def add_listener(self, listener: Callable[[ClusterEvent], None]) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: Callable[[ClusterEvent], None]) -> None:
        self.listeners.remove(listener)

    async def dial(self, peer: NodeName) -> None:
        """The uncharged connect path; ``connect`` (which charges) is left out on purpose."""
        name = str(peer)
        self.dialed.append(name)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # a real dial takes a while: let others overlap it
            if name in self.unreachable:
                raise ConnectFailed(f"{name} is not registered")
            self.up(name)
        finally:
            self.in_flight -= 1

    def up(self, peer: str, *, hidden: bool = False) -> FakeConn:
        conn = self.conns[peer] = FakeConn(peer)
        if hidden:
            self.hidden.add(peer)
        for listener in list(self.listeners):
            listener(NodeUp(peer))
        return conn

    def down(self, peer: str) -> None:
        del self.conns[peer]
        self.router.node_down(peer)
        for listener in list(self.listeners):
            listener(NodeDown(peer, "connection_closed"))

    def deliver(self, peer: str, message: Any) -> None:
        """A message from ``peer`` to our ``global_name_server``, through the router."""
        sender = Pid(Atom(peer), 99, 0, 1)
        signal = signals.MessageSignal(sender, GLOBAL_NAME_SERVER, message)
        self.router.dispatch(signal, self.conns[peer])

    def signal(self, peer: str, signal: signals.Signal) -> None:
        self.router.dispatch(signal, self.conns[peer])


def start() -> tuple[FakeNode, GlobalCompat]:
    node = FakeNode()
    return node, GlobalCompat(cast(Any, node), node.router)


def gns(message: Any) -> tuple[Atom, Any]:
    return (GLOBAL_NAME_SERVER, message)


def opened(node: FakeNode, peer: Atom = A) -> tuple[FakeConn, int]:
    """Bring ``peer`` up; return its connection and the tag of our init_connect."""
    conn = node.up(peer)
    [(name, (cast_, (verb, (vsn, tag), who, (locker, _, known, _))))] = conn.take()
    assert (name, cast_, verb, vsn, who, locker, known) == (
        GLOBAL_NAME_SERVER, CAST, "init_connect", 8, ME, "locker", [])
    return conn, tag


def init_connect(tag: int, peer: Atom = A, locker: Pid = A_LOCKER) -> Any:
    return (CAST, (Atom("init_connect"), (8, tag), peer, (Atom("locker"), Atom("x"), {}, locker)))


def joined(node: FakeNode, peer: Atom = A, his_tag: int = A_TAG) -> tuple[FakeConn, int]:
    """Up to both init_connects exchanged and acknowledged."""
    conn, tag = opened(node, peer)
    node.deliver(peer, init_connect(his_tag, peer))
    assert conn.take() == [gns((Atom("init_connect_ack"), ME, his_tag, tag))]
    node.deliver(peer, (Atom("init_connect_ack"), peer, tag, his_tag))
    assert conn.take() == []
    return conn, tag


def call(node: FakeNode, request: Any, caller: Pid = A_LOCKER, tag: Any = None) -> Any:
    """A gen_server call from ``caller``; returns the reply (None if unanswered)."""
    tag = tag if tag is not None else (Reference(caller.node, 7, (1, 2, 3)), ME)
    conn = node.conns[caller.node]
    node.deliver(caller.node, (CALL, (caller, tag), request))
    replies = [m for m in conn.sent if (isinstance(m, control.SendSender) and m.to_pid == caller)
               or isinstance(m, control.AliasSend)]
    conn.sent = [m for m in conn.sent if m not in replies]
    if not replies:
        return None
    [reply] = replies
    assert reply.from_pid == node.router.whereis(str(GLOBAL_NAME_SERVER))
    assert reply.message[0] == tag
    return reply.message[1]


def set_lock(node: FakeNode, resource: Any, requester: Any, caller: Pid = A_LOCKER) -> Any:
    return call(node, (Atom("set_lock"), (resource, requester)), caller)


def del_lock(node: FakeNode, resource: Any, requester: Any, caller: Pid = A_LOCKER) -> Any:
    return call(node, (Atom("del_lock"), (resource, requester)), caller)


# --- the sync handshake --------------------------------------------------------------


def test_full_sync_as_otp_drives_it() -> None:
    node, compat = start()
    b_conn = node.up(B, hidden=True)  # hidden, so no handshake of its own to get in the way
    conn, tag = joined(node)
    lock_id = (Atom("global"), [A_LOCKER, compat.locker])

    assert set_lock(node, *lock_id) is True
    [monitor] = conn.take()
    assert isinstance(monitor, control.MonitorP) and monitor.to_proc == A_LOCKER

    node.deliver(A, (CAST, (Atom("lock_set"), A_LOCKER, True, [B], tag)))
    assert conn.take() == [
        gns((CAST, (Atom("lock_set"), compat.locker, True, [], A_TAG))),
        gns((CAST, (Atom("exchange"), ME, [], [], A_TAG))),
    ]
    names = [(Atom("x"), Pid(A, 9, 0, 7), Atom("m"))]
    node.deliver(A, (CAST, (Atom("exchange"), A, names, [], tag)))
    assert conn.take() == [gns((CAST, (Atom("resolved"), ME, [], [], Atom("unused"), [], A_TAG)))]

    node.deliver(A, (CAST, (Atom("resolved"), A, [], [(B, 8)], Atom("unused"), [], tag)))
    assert b_conn.take() == [gns((CAST, (Atom("in_sync"), ME, True)))]
    # A's name is now in our table, and we monitor its holder as every member does.
    assert compat.where(Atom("x")) == Pid(A, 9, 0, 7)
    [name_monitor] = conn.take()
    assert isinstance(name_monitor, control.MonitorP)
    assert name_monitor.to_proc == Pid(A, 9, 0, 7)

    assert del_lock(node, *lock_id) is True
    [demonitor] = conn.take()
    assert isinstance(demonitor, control.DemonitorP) and demonitor.ref == monitor.ref

    # Done: a late lock_set for the finished handshake gets no answer.
    node.deliver(A, (CAST, (Atom("lock_set"), A_LOCKER, True, [], tag)))
    assert conn.take() == []


def test_messages_with_stale_tags_are_ignored() -> None:
    node, _ = start()
    conn, tag = joined(node)
    for request in [
        (Atom("lock_set"), A_LOCKER, True, [], tag + 1),
        (Atom("lock_set"), B_LOCKER, True, [], tag),  # a locker that is not the peer's
        (Atom("lock_set"), A_LOCKER, False, [], tag),
        (Atom("exchange"), A, [], [], tag + 1),
        (Atom("resolved"), A, [], [], Atom("unused"), [], tag + 1),
    ]:
        node.deliver(A, (CAST, request))
    assert conn.take() == []


def test_a_node_the_peer_knows_is_dialed_and_told_we_are_in_sync() -> None:
    node, _ = start()
    conn, tag = joined(node)

    async def scenario() -> None:
        node.deliver(A, (CAST, (Atom("exchange"), A, [], [], tag)))
        node.deliver(A, (CAST, (Atom("resolved"), A, [], [B], Atom("unused"), [], tag)))
        await settle()

    asyncio.run(scenario())
    assert node.dialed == [str(B)]
    assert node.conns[B].take() == [gns((CAST, (Atom("in_sync"), ME, True)))]
    # B's own init_connect gets no answer: we are in sync with it already.
    node.deliver(B, init_connect(5, B, B_LOCKER))
    assert node.conns[B].take() == []
    assert conn.take() == [gns((CAST, (Atom("resolved"), ME, [], [], Atom("unused"), [], A_TAG)))]


async def settle() -> None:
    """Let the dial tasks GlobalCompat started run to their end."""
    for _ in range(10):
        await asyncio.sleep(0)


def test_new_nodes_are_told_we_are_in_sync_and_unreachable_ones_forgotten() -> None:
    node, _ = start()
    joined(node)
    node.unreachable.add(str(B))

    async def scenario() -> None:
        node.deliver(A, (CAST, (Atom("new_nodes"), A, [], [], [(B, 8), ME], [])))
        await settle()

    asyncio.run(scenario())
    assert node.dialed == [str(B)]
    # B was dropped from the known set, so when it connects later it gets a handshake.
    conn, _ = opened(node, B)
    assert conn.peer_name == B


def test_in_sync_from_the_peer_ends_our_attempt() -> None:
    node, _ = start()
    conn, tag = joined(node)
    node.deliver(A, (CAST, (Atom("in_sync"), A, True)))
    node.deliver(A, (CAST, (Atom("lock_set"), A_LOCKER, True, [], tag)))
    assert conn.take() == []


def test_old_protocol_versions_are_ignored() -> None:
    node, _ = start()
    conn, _ = opened(node)
    node.deliver(A, (CAST, (Atom("init_connect"), (7, 3), A, (Atom("locker"), 0, [], A_LOCKER))))
    assert conn.take() == []


def test_hidden_peers_take_no_part() -> None:
    node, _ = start()
    conn = node.up(A, hidden=True)
    assert conn.take() == []


def test_already_connected_peers_are_synced_from_the_start() -> None:
    node = FakeNode()
    node.conns[str(A)] = FakeConn(str(A))
    GlobalCompat(cast(Any, node), node.router)
    [(_, (_, (verb, *_)))] = node.conns[str(A)].take()
    assert verb == "init_connect"


# --- restarts ------------------------------------------------------------------------


def split(sent: list[Any]) -> tuple[list[Any], list[Any]]:
    """(cancel_connect messages, init_connect tags) in order."""
    cancels = [m[1] for m in sent if m[1][0] == "cancel_connect"]
    inits = [m[1][1][1][1] for m in sent if m[1][0] == CAST and m[1][1][0] == "init_connect"]
    return cancels, inits


def test_a_second_init_connect_restarts_our_half_and_is_dropped() -> None:
    node, _ = start()
    conn, tag = joined(node)
    node.deliver(A, init_connect(A_TAG + 1))
    cancels, inits = split(conn.take())
    assert cancels == [(Atom("cancel_connect"), ME, A_TAG + 1), (Atom("cancel_connect"), ME, A_TAG)]
    [new_tag] = inits
    assert new_tag != tag
    # The peer's next attempt is adopted under the new tag.
    node.deliver(A, init_connect(A_TAG + 2))
    assert conn.take() == [gns((Atom("init_connect_ack"), ME, A_TAG + 2, new_tag))]


def test_cancel_connect_with_our_tag_restarts() -> None:
    node, _ = start()
    conn, tag = joined(node)
    node.deliver(A, (Atom("cancel_connect"), A, tag + 1))
    assert conn.take() == []
    node.deliver(A, (Atom("cancel_connect"), A, tag))
    cancels, [new_tag] = split(conn.take())
    assert cancels == [(Atom("cancel_connect"), ME, A_TAG)]
    assert new_tag != tag


def test_a_mismatched_ack_cancels_and_restarts() -> None:
    node, _ = start()
    conn, tag = joined(node)
    node.deliver(A, (Atom("init_connect_ack"), A, tag, A_TAG + 9))
    cancels, [new_tag] = split(conn.take())
    assert cancels == [(Atom("cancel_connect"), ME, A_TAG + 9), (Atom("cancel_connect"), ME, A_TAG)]
    assert new_tag != tag


def test_node_down_forgets_the_peer() -> None:
    node, _ = start()
    _, tag = joined(node)
    node.deliver(A, (CAST, (Atom("exchange"), A, [], [], tag)))
    node.deliver(A, (CAST, (Atom("resolved"), A, [], [], Atom("unused"), [], tag)))
    node.down(A)
    _, new_tag = opened(node)  # a fresh handshake, not an in_sync
    assert new_tag != tag


# --- locks ---------------------------------------------------------------------------


def test_one_requester_per_resource() -> None:
    node, _ = start()
    node.up(A)
    node.up(B)
    res = Atom("global")
    assert set_lock(node, res, (Atom("global"), A_REGISTRAR), A_REGISTRAR) is True
    assert set_lock(node, res, (Atom("global"), B_LOCKER), B_LOCKER) is False
    # The same requester id may be held by several pids (a locker pair's lock).
    shared = [A_LOCKER, B_LOCKER]
    assert set_lock(node, Atom("r"), shared, A_LOCKER) is True
    assert set_lock(node, Atom("r"), shared, B_LOCKER) is True
    assert del_lock(node, Atom("r"), shared, A_LOCKER) is True
    assert set_lock(node, Atom("r"), [B_LOCKER], B_LOCKER) is False
    assert del_lock(node, Atom("r"), shared, B_LOCKER) is True
    assert set_lock(node, Atom("r"), [B_LOCKER], B_LOCKER) is True
    # A del_lock by someone else, or for another requester, changes nothing.
    assert del_lock(node, res, (Atom("global"), A_REGISTRAR), A_LOCKER) is True
    assert del_lock(node, res, (Atom("global"), B_LOCKER), A_REGISTRAR) is True
    assert set_lock(node, res, (Atom("global"), B_LOCKER), B_LOCKER) is False


def test_resource_ids_compare_exactly() -> None:
    node, _ = start()
    node.up(A)
    node.up(B)
    for resource in ([1, {2: [3]}], 1, 1.0, True, Atom("one"), b"one", "one"):
        assert set_lock(node, resource, A_LOCKER, A_LOCKER) is True
        assert set_lock(node, resource, B_LOCKER, B_LOCKER) is False


def test_locks_die_with_their_holder_or_its_node() -> None:
    node, _ = start()
    a_conn = node.up(A)
    node.up(B)
    assert set_lock(node, Atom("r1"), Atom("x"), A_LOCKER) is True
    assert set_lock(node, Atom("r2"), Atom("y"), A_REGISTRAR) is True
    [monitor, _] = [m for m in a_conn.take() if isinstance(m, control.MonitorP)]
    down = signals.DownSignal(A_LOCKER, monitor.from_pid, monitor.ref, Atom("killed"))
    node.signal(B, down)  # only the holder's own node can report its death
    assert set_lock(node, Atom("r1"), Atom("z"), B_LOCKER) is False
    node.signal(A, down)
    assert set_lock(node, Atom("r1"), Atom("z"), B_LOCKER) is True
    assert set_lock(node, Atom("r2"), Atom("z"), B_LOCKER) is False
    node.down(A)
    assert set_lock(node, Atom("r2"), Atom("z"), B_LOCKER) is True


def test_replies_carry_the_callers_tag_in_either_otp_form() -> None:
    node, _ = start()
    node.up(A)
    ref = Reference(A, 7, (9, 9, 9))
    otp25 = (ref, ME)
    otp28 = ImproperList((ImproperList((Atom("alias"),), ref),), Reference(A, 7, (8, 8, 8)))
    for tag in (otp25, otp28):
        request = (Atom("register"), Atom("n"), A_LOCKER, Atom("f"))
        assert call(node, request, A_LOCKER, tag) == "yes"
    assert call(node, (Atom("unregister"), Atom("n")), A_LOCKER) == "ok"
    ext = (Atom("register_ext"), Atom("n"), A_LOCKER, Atom("f"), A)
    assert call(node, ext, A_LOCKER) == "yes"
    assert call(node, (Atom("get_known"),), A_LOCKER) is None  # OTP leaves it unanswered too


# --- the rest ------------------------------------------------------------------------


def test_remove_connection_is_obeyed_only_from_a_global_peer() -> None:
    node, _ = start()
    stranger = node.up(B, hidden=True)
    node.deliver(B, (Atom("remove_connection"), B))
    assert stranger.closed is None
    conn, _ = joined(node)
    node.deliver(A, (Atom("lost_connection"), B, 1, 2, A))
    assert conn.closed is None
    node.deliver(A, (Atom("remove_connection"), A))
    assert conn.closed == "global_remove_connection"


def test_close_stops_all_answers() -> None:
    node, compat = start()
    conn, _ = opened(node)
    compat.close()
    node.deliver(A, init_connect(A_TAG))
    assert set_lock(node, Atom("r"), Atom("x")) is None
    assert conn.take() == []
    assert node.listeners == []


# --- hostile peers (issue 15, F1 and F6) ---------------------------------------------


def test_names_a_peer_mentions_never_spend_the_atom_budget_and_are_dialed_within_bounds(
) -> None:
    """F1: one ``new_nodes`` listing 12,000 fresh names once exhausted the process budget."""
    node, compat = start()
    joined(node)
    fresh = [Atom(f"ghost{i}x{id(node)}@127.0.0.1") for i in range(12_000)]
    node.unreachable.update(map(str, fresh))
    used = atom_budget().used

    async def scenario() -> None:
        node.deliver(A, (CAST, (Atom("new_nodes"), A, [], [], fresh, [])))
        while compat._dialer.in_flight or compat._dialer.waiting:
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert atom_budget().used == used
    assert node.most_in_flight <= DEFAULT_MAX_IN_FLIGHT
    assert 0 < len(node.dialed) <= DEFAULT_MAX_FAILED
    assert len(compat._known) <= global_compat.MAX_KNOWN
    # A later list of the same names dials none of them again.
    dialed = len(node.dialed)

    async def again() -> None:
        node.deliver(A, (CAST, (Atom("new_nodes"), A, [], [], fresh[:100], [])))
        await settle()

    asyncio.run(again())
    assert len(node.dialed) == dialed


def test_a_reachable_suggested_node_is_still_dialed_after_a_flood_of_dead_ones() -> None:
    node, compat = start()
    joined(node)
    dead = [Atom(f"dead{i}@127.0.0.1") for i in range(50)]
    node.unreachable.update(map(str, dead))

    async def scenario() -> None:
        node.deliver(A, (CAST, (Atom("new_nodes"), A, [], [], [*dead, B], [])))
        while compat._dialer.in_flight or compat._dialer.waiting:
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert str(B) in node.dialed
    assert node.conns[B].take() == [gns((CAST, (Atom("in_sync"), ME, True)))]


def test_lock_state_is_bounded_per_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    """F6: 200,000 ``set_lock`` calls once held ~214 MB until the link closed."""
    monkeypatch.setattr(global_compat, "MAX_LOCKS_PER_PEER", 50)
    node, compat = start()
    node.up(A)
    node.up(B)
    granted = [set_lock(node, Atom(f"r{i}"), Atom("x")) for i in range(80)]
    assert granted == [True] * 50 + [False] * 30
    assert len(compat._locks) == 50
    # Re-asking for a lock it already holds costs nothing and still succeeds.
    assert set_lock(node, Atom("r0"), Atom("x")) is True
    # Another node is not starved by A's use.
    assert set_lock(node, Atom("rb"), Atom("y"), B_LOCKER) is True
    # Releasing one makes room for one.
    assert del_lock(node, Atom("r0"), Atom("x")) is True
    assert set_lock(node, Atom("r79"), Atom("x")) is True
    assert set_lock(node, Atom("r78"), Atom("x")) is False
    node.down(A)
    assert len(compat._locks) == 1
    node.up(A)
    assert set_lock(node, Atom("r78"), Atom("x")) is True


def test_lock_state_is_bounded_over_all_peers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(global_compat, "MAX_LOCKS", 30)
    node, compat = start()
    node.up(A)
    node.up(B)
    assert all(set_lock(node, Atom(f"a{i}"), Atom("x")) for i in range(20))
    assert [set_lock(node, Atom(f"b{i}"), Atom("y"), B_LOCKER) for i in range(15)] == (
        [True] * 10 + [False] * 5)
    assert len(compat._locks) == 30


def test_a_lock_for_a_pid_of_another_node_is_refused() -> None:
    node, compat = start()
    node.up(A)
    node.up(B)
    forged = Pid(B, 99, 0, 8)
    node.deliver(A, (CALL, (forged, (Reference(A, 7, (1, 2, 3)), ME)),
                     (Atom("set_lock"), (Atom("r"), Atom("x")))))
    assert compat._locks == {}
