"""The Python member's name table against a scripted OTP peer: registrations
under the lock, cleanup on death and nodedown, clashes settled in the sync."""

from __future__ import annotations

import asyncio
from typing import Any

from erldist import telemetry
from erldist.protocol import control, signals
from erldist.runtime.services.global_names import (
    NOTIFY_ALL_NAME,
    RANDOM_EXIT_NAME,
    RANDOM_NOTIFY_NAME,
    resolve_locally,
)
from erldist.term.types import Atom, Pid
from tests.unit.test_global_compat import (
    A_LOCKER,
    A_REGISTRAR,
    A_TAG,
    CAST,
    ME,
    A,
    FakeConn,
    FakeNode,
    call,
    gns,
    init_connect,
    start,
)

Z = Atom("z@127.0.0.1")  # sorts after us: we settle clashes with it
Z_LOCKER = Pid(Z, 40, 0, 9)
Z_TAG = 77
HOLDER = Pid(A, 9, 0, 7)


def test_a_registration_stands_only_under_the_callers_lock() -> None:
    node, compat = start()
    node.up(A)
    lock = (Atom("global"), A_REGISTRAR)
    register = (Atom("register"), Atom("n"), HOLDER, RANDOM_EXIT_NAME)
    # No lock ever taken and none went down: accepted, as OTP's lock_still_set.
    assert call(node, register, caller=A_REGISTRAR) == Atom("yes")
    assert compat.where(Atom("n")) == HOLDER
    assert call(node, (Atom("unregister"), Atom("n")), caller=A_REGISTRAR) == Atom("ok")
    assert compat.where(Atom("n")) is None
    # Someone else holds the global lock: the name is dropped at once.
    other = Pid(A, 50, 0, 7)
    assert call(node, (Atom("set_lock"), (Atom("global"), other)), caller=other) is True
    assert call(node, register, caller=A_REGISTRAR) == Atom("yes")
    assert compat.where(Atom("n")) is None
    assert call(node, (Atom("del_lock"), (Atom("global"), other)), caller=other) is True
    # The caller holds it: the name stands.
    assert call(node, (Atom("set_lock"), lock), caller=A_REGISTRAR) is True
    assert call(node, register, caller=A_REGISTRAR) == Atom("yes")
    assert compat.where(Atom("n")) == HOLDER


def test_a_name_goes_with_its_holder_and_its_node() -> None:
    node, compat = start()
    conn = node.up(A)
    for name in ("one", "two"):
        call(node, (Atom("register"), Atom(name), HOLDER if name == "one" else Pid(A, 10, 0, 7),
                    RANDOM_EXIT_NAME), caller=A_REGISTRAR)
    monitors = [m for m in conn.sent if isinstance(m, control.MonitorP)]
    assert [m.to_proc for m in monitors] == [HOLDER, Pid(A, 10, 0, 7)]
    node.signal(str(A), signals.DownSignal(HOLDER, compat.pid, monitors[0].ref, Atom("normal")))
    assert compat.where(Atom("one")) is None
    assert compat.where(Atom("two")) is not None
    node.down(str(A))
    assert compat.where(Atom("two")) is None
    assert len(compat.names) == 0


def test_a_local_holder_that_is_gone_is_not_where_the_name_is() -> None:
    node, compat = start()
    node.up(A)
    proc = node.router.new_process()
    call(node, (Atom("register"), "svc", proc.pid, RANDOM_EXIT_NAME), caller=A_REGISTRAR)
    assert compat.where(b"svc") == proc.pid  # a str name is the binary Erlang sends
    node.router.terminate(proc, Atom("normal"))
    assert compat.where("svc") is None and len(compat.names) == 0


def test_the_old_whereis_message_is_answered_from_the_table() -> None:
    node, _compat = start()
    conn = node.up(A)
    call(node, (Atom("register"), Atom("w"), HOLDER, RANDOM_EXIT_NAME), caller=A_REGISTRAR)
    conn.take()
    asker = Pid(A, 60, 0, 7)
    node.deliver(str(A), (Atom("whereis"), Atom("w"), (asker, Atom("tag"))))
    assert conn.take() == [(asker, (Atom("tag"), HOLDER))]


def _synced_up_to_exchange(
    node: FakeNode, peer: Atom, locker: Pid, his_tag: int
) -> tuple[Any, int]:
    conn = node.up(peer)
    [(_, (_, (_, (_, tag), _, _)))] = conn.take()
    node.deliver(str(peer), init_connect(his_tag, peer, locker))
    node.deliver(str(peer), (Atom("init_connect_ack"), peer, tag, his_tag))
    node.deliver(str(peer), (CAST, (Atom("lock_set"), locker, True, [], tag)))
    conn.take()
    return conn, tag


def test_we_settle_a_clash_when_we_sort_first() -> None:
    node, compat = start()
    mine = node.router.new_process()
    node.up(A)
    call(node, (Atom("register"), Atom("c"), mine.pid, RANDOM_EXIT_NAME), caller=A_REGISTRAR)
    theirs = Pid(Z, 5, 0, 9)

    async def scenario() -> list[Any]:
        conn, tag = _synced_up_to_exchange(node, Z, Z_LOCKER, Z_TAG)
        node.deliver(str(Z), (CAST, (Atom("exchange"), Z, [(Atom("c"), theirs,
                                                            RANDOM_EXIT_NAME)], [], tag)))
        for _ in range(20):
            await asyncio.sleep(0)
        out: list[Any] = conn.take()
        return out

    seen: list[telemetry.TelemetryEvent] = []
    telemetry.attach(seen.append)
    try:
        sent = asyncio.run(scenario())
        telemetry.flush()  # handlers run on the telemetry thread
    finally:
        telemetry.detach(seen.append)
    assert [e for e in seen if isinstance(e, telemetry.GlobalNameConflict)] == [
        telemetry.GlobalNameConflict("c", repr(mine.pid))]
    # Ours sorts first (py < z): ours keeps it, theirs is killed, Z is told to insert ours.
    kills = [m for m in sent if isinstance(m, control.PayloadExit2)]
    assert [(k.to_pid, k.reason) for k in kills] == [(theirs, Atom("kill"))]
    assert gns((CAST, (Atom("resolved"), ME, [(Atom("insert"), (Atom("c"), mine.pid,
                                                                RANDOM_EXIT_NAME))],
                       [], Atom("unused"), [], Z_TAG))) in sent
    assert compat.where(Atom("c")) == mine.pid


def test_the_three_resolvers() -> None:
    low, high = Pid(A, 1, 0, 1), Pid(Z, 1, 0, 1)
    exit_ = resolve_locally(RANDOM_EXIT_NAME, Atom("n"), high, low)
    assert exit_ is not None and exit_.winner == low and exit_.kill == (high,)
    notify = resolve_locally(RANDOM_NOTIFY_NAME, Atom("n"), low, high)
    assert notify is not None and notify.winner == low
    assert notify.notify == ((high, (Atom("global_name_conflict"), Atom("n"))),)
    both = resolve_locally(NOTIFY_ALL_NAME, Atom("n"), low, high)
    assert both is not None and both.winner is None and len(both.notify) == 2
    assert resolve_locally(Atom("not_a_fun"), Atom("n"), low, high) is None


def test_our_locker_locks_both_sides_when_the_peer_waits() -> None:
    """With nobody known, OTP's locker tries after 200 ms; so do we: lock ourselves
    and the peer with ``{global, sorted lockers}``, tell its locker, and on its
    answer send only our exchange; the locks go back when the sync is done."""
    async def scenario() -> None:
        node, compat = start()
        conn = node.up(A)
        [(_, (_, (_, (_, tag), _, _)))] = conn.take()
        node.deliver(str(A), init_connect(A_TAG, A, A_LOCKER))
        node.deliver(str(A), (Atom("init_connect_ack"), A, tag, A_TAG))
        conn.take()
        await asyncio.sleep(0.3)
        [(name, (_, (caller, ref), request))] = _messages(conn)
        lock_id = (Atom("global"), sorted([compat.locker, A_LOCKER],
                                          key=lambda p: (p.serial, p.id, str(p.node))))
        assert (name, request) == (Atom("global_name_server"), (Atom("set_lock"), lock_id))
        assert compat.can_set_lock(lock_id) and not compat.can_set_lock((Atom("global"), 1))
        node.signal(str(A), signals.MessageSignal(Pid(A, 99, 0, 7), caller, (ref, True)))
        await asyncio.sleep(0.05)
        assert _messages(conn) == [
            gns((CAST, (Atom("lock_set"), compat.locker, True, [], A_TAG)))]
        # Its locker locked its side too and answers: our names go, no second lock_set.
        node.deliver(str(A), (CAST, (Atom("lock_set"), A_LOCKER, True, [], tag)))
        assert conn.take() == [gns((CAST, (Atom("exchange"), ME, [], [], A_TAG)))]
        node.deliver(str(A), (CAST, (Atom("exchange"), A, [], [], tag)))
        node.deliver(str(A), (CAST, (Atom("resolved"), A, [], [], Atom("unused"), [], tag)))
        await asyncio.sleep(0.05)
        dels = [m for m in _messages(conn) if m[1][0] == Atom("$gen_call")]
        assert [d[1][2] for d in dels] == [(Atom("del_lock"), lock_id)]
        assert compat.can_set_lock((Atom("global"), 1))  # ours is back here too
        assert compat.known() == [str(A)]

    asyncio.run(scenario())


def _messages(conn: FakeConn) -> list[Any]:
    """What went out as messages (the monitors a call makes left aside)."""
    return [m for m in conn.take() if isinstance(m, tuple)]
