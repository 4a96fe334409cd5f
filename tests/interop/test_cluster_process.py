"""Processes from plain threaded code: ``cluster.process`` against a real ``erl``.

No asyncio here on purpose: this is how a threaded Python service uses them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from erldist import Atom, Down, Exit, cluster
from erldist.errors import CallTargetDown, ConnectIgnored, NameTaken, ProcessExited
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("fresh_facade")]

COOKIE = "syncprocesscookie"


@pytest.fixture
def erl(release: str, epmd: EpmdProcess) -> Iterator[ErlNode]:
    node = ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    try:
        node.eval("register(tester, self()).")
        yield node
    finally:
        node.stop()


def test_processes_need_a_started_node() -> None:
    with pytest.raises(ConnectIgnored):
        cluster.process()


def test_sync_processes_send_receive_monitor_link_and_exit(
    epmd: EpmdProcess, erl: ErlNode
) -> None:
    cluster.start_node(f"{unique_name('s')}@127.0.0.1", COOKIE, epmd_port=epmd.port)
    me = cluster.process("sync_inbox", trap_exit=True)
    with pytest.raises(NameTaken):
        cluster.process("sync_inbox")
    assert cluster.whereis("sync_inbox") == me.pid
    # Erlang -> Python by name, Python -> Erlang by pid.
    me.send(("tester", erl.name), (Atom("hello"), me.pid))
    erl.eval(f"receive {{hello, P}} -> {{sync_inbox, '{cluster.self_node()}'}} ! "
             "{reply, P, is_pid(P)} after 10000 -> timeout end.")
    assert me.receive(timeout=10) == (Atom("reply"), me.pid, True)
    # Selective receive from another thread, while this one sends.
    got: list[object] = []
    reader = threading.Thread(
        target=lambda: got.append(me.receive(timeout=10, match=lambda m: m == Atom("second"))))
    reader.start()
    cluster.send(me.pid, Atom("first"))
    cluster.send(me.pid, Atom("second"))
    reader.join(15)
    assert got == [Atom("second")]
    assert me.receive(timeout=1) == Atom("first")
    # Monitor and link an Erlang process, then end it.
    erl.eval("T = spawn(fun() -> receive {exit, R} -> exit(R) end end), "
             f"{{sync_inbox, '{cluster.self_node()}'}} ! {{target, T}}, ok.")
    _, target = me.receive(timeout=10)
    ref = me.monitor(target)
    me.link(target)
    erl.eval("Wait = fun W(0) -> false; W(N) -> case process_info(T, links) of "
             "{links, [_]} -> true; _ -> timer:sleep(20), W(N - 1) end end, true = Wait(500), "
             "T ! {exit, stop}, ok.")
    got_signals = {me.receive(timeout=10), me.receive(timeout=10)}
    assert got_signals == {Down(ref, target, Atom("stop")), Exit(target, Atom("stop"))}
    # Calls: noproc at once for a name nobody holds.
    with pytest.raises(CallTargetDown):
        cluster.call(("nobody", erl.name), Atom("hi"), timeout=10)
    me.exit(Atom("done"))
    assert not me.alive and me.exit_reason == Atom("done")
    with pytest.raises(ProcessExited):
        me.receive(timeout=0)
    assert cluster.whereis("sync_inbox") is None


def test_a_with_block_exits_the_process_with_the_exception(epmd: EpmdProcess) -> None:
    cluster.start_node(f"{unique_name('s')}@127.0.0.1", COOKIE, epmd_port=epmd.port)
    watcher = cluster.process()
    with pytest.raises(RuntimeError), cluster.process() as doomed:
        ref = watcher.monitor(doomed.pid)
        raise RuntimeError("boom")
    down = watcher.receive(timeout=10)
    assert down == Down(ref, doomed.pid, (Atom("python"), Atom("RuntimeError"), b"boom"))
