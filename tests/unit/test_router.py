"""The router's rules for processes, without sockets: a fake network records signals.

The rules are the BEAM's (links, monitors, exit signals, trap_exit); the
interop tests check the same rules against what real Erlang processes see.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from erldist.config import Config
from erldist.errors import ConnectFailed, NameTaken, NoProcess, NotRegistered, ProcessExited
from erldist.protocol import signals
from erldist.runtime.process import Down, Exit, NodeDownMessage, Process
from erldist.runtime.router import Router
from erldist.term.types import Atom, Pid

ME = "py@127.0.0.1"
PEER = "erl@127.0.0.1"
REMOTE = Pid(Atom(PEER), 77, 0, 3)
NORMAL, KILL, KILLED = Atom("normal"), Atom("kill"), Atom("killed")


class Link:
    def __init__(self, peer: str) -> None:
        self.peer_name = peer
        self.sent: list[signals.Signal] = []
        self.congested = False
        self.paused = 0

    def send_signal(self, signal: signals.Signal) -> None:
        self.sent.append(signal)

    def send_signals(self, *sent: signals.Signal) -> None:
        self.sent += sent

    async def drain(self) -> None:
        return None

    def pause_delivery(self) -> None:
        self.paused += 1

    def resume_delivery(self) -> None:
        self.paused -= 1


class Net:
    def __init__(self) -> None:
        self.links: dict[str, Link] = {PEER: Link(PEER)}

    def link_to(self, node: str) -> Link | None:
        return self.links.get(node)

    async def reach(self, node: str) -> Link:
        link = self.links.get(node)
        if link is None:
            raise ConnectFailed(f"{node} unreachable")
        return link


def make() -> tuple[Router, Net]:
    net = Net()
    return Router(ME, 9, net, settings=lambda: Config(mailbox_maxsize=1000)), net


def queued(proc: Process) -> list[Any]:
    return [item for _, item in proc.mailbox._queue]


# --- names ---------------------------------------------------------------------------


async def test_register_whereis_unregister_and_names_go_with_the_process() -> None:
    router, _ = make()
    p = router.new_process("svc")
    assert router.whereis("svc") == p.pid
    with pytest.raises(NameTaken):
        router.new_process("svc")
    p.exit()
    assert router.whereis("svc") is None
    with pytest.raises(NotRegistered):
        router.unregister("svc")
    with pytest.raises(NoProcess):
        router.register("again", p.pid)


# --- links and exits -----------------------------------------------------------------


async def test_linked_process_dies_with_the_same_reason_unless_normal() -> None:
    router, _ = make()
    a, b, c = router.new_process(), router.new_process(), router.new_process()
    await a.link(b.pid)
    await b.link(c.pid)
    a.exit(NORMAL)
    assert b.alive  # normal exits do not propagate
    b.exit(Atom("boom"))
    assert c.exit_reason == "boom"


async def test_a_long_chain_of_links_dies_without_recursion() -> None:
    router, _ = make()
    procs = [router.new_process() for _ in range(5000)]
    for left, right in itertools.pairwise(procs):
        await left.link(right.pid)
    procs[0].exit(Atom("cascade"))
    assert all(p.exit_reason == "cascade" for p in procs)


async def test_trapping_turns_exit_signals_into_messages_except_kill() -> None:
    router, _ = make()
    a, b = router.new_process(), router.new_process(trap_exit=True)
    await b.link(a.pid)
    a.exit(Atom("bye"))
    assert queued(b) == [Exit(a.pid, Atom("bye"))]
    other = router.new_process()
    await other.send_exit(b.pid, Atom("please"))
    assert queued(b)[-1] == Exit(other.pid, Atom("please"))
    await other.send_exit(b.pid, KILL)
    assert b.exit_reason == KILLED


async def test_a_linked_kill_reason_is_trappable_and_kills_with_kill() -> None:
    router, _ = make()
    a, b = router.new_process(), router.new_process()
    await a.link(b.pid)
    a.exit(KILL)  # a died with reason kill: its links get 'kill', not 'killed'
    assert b.exit_reason == KILL


async def test_exit_normal_to_another_is_ignored_but_to_itself_ends_it() -> None:
    router, _ = make()
    a, b = router.new_process(), router.new_process()
    await a.send_exit(b.pid, NORMAL)
    assert b.alive
    await b.send_exit(b.pid, NORMAL)
    assert b.exit_reason == NORMAL


async def test_link_to_a_missing_local_process_raises_or_traps_noproc() -> None:
    router, _ = make()
    a = router.new_process()
    ghost = router.new_process()
    ghost.exit()
    with pytest.raises(NoProcess):
        await a.link(ghost.pid)
    a.trap_exit = True
    await a.link(ghost.pid)
    assert queued(a) == [Exit(ghost.pid, Atom("noproc"))]


async def test_unlink_removes_both_sides_and_a_late_exit_is_ignored() -> None:
    router, net = make()
    a = router.new_process()
    await a.link(REMOTE)
    assert net.links[PEER].sent == [signals.LinkSignal(a.pid, REMOTE)]
    a.unlink(REMOTE)
    [unlink] = net.links[PEER].sent[1:]
    assert isinstance(unlink, signals.UnlinkSignal) and unlink.id is not None
    router.dispatch(signals.ExitSignal(REMOTE, a.pid, Atom("late"), linked=True), net.links[PEER])
    assert a.alive


async def test_remote_link_exit_and_noproc_reply() -> None:
    router, net = make()
    link = net.links[PEER]
    a = router.new_process()
    router.dispatch(signals.LinkSignal(REMOTE, a.pid), link)
    a.exit(Atom("done"))
    assert link.sent[-1] == signals.ExitSignal(a.pid, REMOTE, Atom("done"), linked=True)
    router.dispatch(signals.LinkSignal(REMOTE, a.pid), link)  # a is gone
    assert link.sent[-1] == signals.ExitSignal(a.pid, REMOTE, Atom("noproc"), linked=True)


async def test_a_peer_cannot_send_signals_in_another_nodes_name() -> None:
    router, net = make()
    net.links["evil@127.0.0.1"] = evil = Link("evil@127.0.0.1")
    a = router.new_process()
    await a.link(REMOTE)
    router.dispatch(signals.ExitSignal(REMOTE, a.pid, KILL, linked=False), evil)
    assert a.alive
    router.dispatch(signals.ExitSignal(REMOTE, a.pid, KILL, linked=False), net.links[PEER])
    assert a.exit_reason == KILLED


# --- monitors ------------------------------------------------------------------------


async def test_monitor_of_a_missing_process_is_noproc_at_once() -> None:
    router, _ = make()
    a = router.new_process()
    ghost = router.new_process()
    ghost.exit()
    ref = await a.monitor(ghost.pid)
    assert queued(a) == [Down(ref, ghost.pid, Atom("noproc"))]
    ref2 = await a.monitor("nobody")
    assert queued(a)[-1] == Down(ref2, (Atom("nobody"), Atom(ME)), Atom("noproc"))


async def test_monitor_fires_once_with_the_reason_and_demonitor_flushes() -> None:
    router, _ = make()
    a, b = router.new_process(), router.new_process("named")
    ref = await a.monitor(b.pid)
    by_name = await a.monitor("named")
    b.exit(Atom("gone"))
    assert queued(a) == [Down(ref, b.pid, Atom("gone")),
                         Down(by_name, (Atom("named"), Atom(ME)), Atom("gone"))]
    c = router.new_process()
    ref3 = await a.monitor(c.pid)
    assert a.demonitor(ref3) is True
    c.exit(Atom("quiet"))
    assert len(queued(a)) == 2
    assert a.demonitor(ref, flush=True) is False  # already fired; its Down is flushed
    assert queued(a) == [Down(by_name, (Atom("named"), Atom(ME)), Atom("gone"))]


async def test_remote_monitor_signals_and_noconnection() -> None:
    router, net = make()
    a = router.new_process()
    ref = await a.monitor(REMOTE)
    assert net.links[PEER].sent == [signals.MonitorSignal(a.pid, REMOTE, ref)]
    ref2 = await a.monitor(("srv", "down@127.0.0.1"))
    assert queued(a) == [Down(ref2, (Atom("srv"), Atom("down@127.0.0.1")),
                              Atom("noconnection"))]
    router.node_down(PEER)
    assert queued(a)[-1] == Down(ref, REMOTE, Atom("noconnection"))


async def test_incoming_monitor_is_answered_on_exit_as_it_was_named() -> None:
    router, net = make()
    link = net.links[PEER]
    a = router.new_process("srv")
    ref = router.make_ref()
    router.dispatch(signals.MonitorSignal(REMOTE, Atom("srv"), ref), link)
    a.exit(Atom("bye"))
    assert link.sent[-1] == signals.DownSignal(Atom("srv"), REMOTE, ref, Atom("bye"))
    router.dispatch(signals.MonitorSignal(REMOTE, Atom("srv"), ref), link)
    assert link.sent[-1] == signals.DownSignal(Atom("srv"), REMOTE, ref, Atom("noproc"))


async def test_node_down_breaks_links_and_fires_node_monitors() -> None:
    router, _ = make()
    a = router.new_process(trap_exit=True)
    b = router.new_process()
    await a.link(REMOTE)
    await b.link(REMOTE)
    await a.monitor_node(PEER)
    router.node_down(PEER)
    assert queued(a) == [Exit(REMOTE, Atom("noconnection")), NodeDownMessage(PEER)]
    assert b.exit_reason == "noconnection"


# --- processes that run code ---------------------------------------------------------


async def test_a_body_that_returns_exits_normal_and_one_that_raises_gets_a_readable_reason(
) -> None:
    router, _ = make()
    watcher = router.new_process()

    async def fine(_p: Process) -> None:
        return None

    async def broken(_p: Process) -> None:
        raise ValueError("bad input")

    p1 = router.spawn(fine, (), name=None, trap_exit=False, maxsize=None, overflow=None)
    p2 = router.spawn(broken, (), name=None, trap_exit=False, maxsize=None, overflow=None)
    r1, r2 = await watcher.monitor(p1.pid), await watcher.monitor(p2.pid)
    assert await watcher.receive(5) == Down(r1, p1.pid, NORMAL)
    down = await watcher.receive(5)
    assert down == Down(r2, p2.pid, (Atom("python"), Atom("ValueError"), b"bad input"))


async def test_an_exit_signal_cancels_the_body_and_receive_raises_after_exit() -> None:
    router, _ = make()
    started = asyncio.Event()

    async def waits(p: Process) -> None:
        started.set()
        await p.receive()

    p = router.spawn(waits, (), name=None, trap_exit=False, maxsize=None, overflow=None)
    await started.wait()
    other = router.new_process()
    await other.send_exit(p.pid, Atom("stop"))
    assert p.exit_reason == "stop"
    assert p.task is not None
    await asyncio.wait_for(asyncio.gather(p.task, return_exceptions=True), 5)
    with pytest.raises(ProcessExited):
        await p.receive(0)


async def test_services_survive_a_raising_handler() -> None:
    router, _ = make()
    seen: list[Any] = []

    def handler(message: Any, _peer: str | None) -> None:
        if message == "boom":
            raise RuntimeError("service bug")
        seen.append(message)

    svc = router.add_service("svc", handler)
    sender = router.new_process()
    await sender.send("svc", "boom")
    await sender.send("svc", "ok")
    assert svc.alive and seen == ["ok"]
