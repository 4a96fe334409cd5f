"""``pg`` process groups with Python members among real Erlang nodes (OTP 25 and 28).

Two ``erl`` nodes run the default scope and a named one; the Python node
joins, leaves and dies, and every Erlang node's ``pg:get_members`` follows;
Erlang members appear in Python; a Python ``monitor_scope`` sees the joins
and leaves in the order they happened.
"""

from __future__ import annotations

import pytest

from erldist.runtime.node import Node
from erldist.term.types import Atom, Pid
from tests.interop.test_global_interop import Erl, _erl_pair, _wait_for
from tests.interop.test_global_names_interop import _cluster
from tests.support.aio import run
from tests.support.otp import EpmdProcess

pytestmark = pytest.mark.interop


async def _erl_member_nodes(erl: Erl, expr: str) -> list[str]:
    text = await erl.eval(f"lists:sort([node(P) || P <- {expr}]).")
    return [part.strip("'") for part in text.strip("[]").split(",") if part]


async def _members_on(erl: Erl, expr: str, want: list[str]) -> bool:
    return await _erl_member_nodes(erl, expr) == sorted(want)


def test_python_and_erlang_members_seen_both_ways(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            for erl in (a, b):
                await erl.eval("{ok, _} = pg:start(pg), {ok, _} = pg:start(chat), ok.")
            # An Erlang scope monitor on a, to compare with the Python one.
            await a.eval("Coll = spawn(fun() -> {CRef, _} = pg:monitor_scope(), "
                         "Loop = fun L(Acc) -> receive {CRef, Act, G, Ps} -> "
                         "L([{Act, G, [node(P) || P <- Ps]} | Acc]); "
                         "{get, F} -> F ! {events, lists:reverse(Acc)} end end, "
                         "Loop([]) end), ok.")
            node = await _cluster(a, b, epmd)
            try:
                watcher = node.process()
                ref, now = node.pg().monitor_scope(watcher.pid)
                assert now == {}
                room_watcher = node.process()
                room_ref, room_now = node.pg("chat").monitor(room_watcher.pid, "room")
                assert room_now == []
                proc = node.process()
                node.pg().join(Atom("g1"), proc.pid)
                node.pg("chat").join("room", [proc.pid, node.process().pid])
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _members_on(e, "pg:get_members(g1)",
                                                             [node.name]), "python in g1")
                    await _wait_for(lambda e=erl: _members_on(
                        e, "pg:get_members(chat, <<\"room\">>)", [node.name] * 2),
                        "python in chat room")
                    assert await erl.eval("pg:get_local_members(g1).") == "[]"

                # An Erlang member shows up in Python, next to ours.
                await a.eval("EM = spawn(fun() -> receive stop -> ok end end), "
                             "pg:join(g1, EM).")
                await _wait_for(lambda: _count(node, Atom("g1"), 2), "erl member in Python")
                erl_member = next(p for p in node.pg().get_members(Atom("g1"))
                                  if p != proc.pid)
                assert str(erl_member.node) == a.name
                assert node.pg().get_local_members(Atom("g1")) == [proc.pid]
                assert set(node.pg().which_groups()) == {Atom("g1")}

                # Leave from Python; an Erlang member dies; a Python member dies.
                assert node.pg().leave(Atom("g1"), proc.pid) is True
                assert node.pg().leave(Atom("g1"), proc.pid) is False
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _members_on(e, "pg:get_members(g1)",
                                                             [a.name]), "python gone from g1")
                await a.eval("exit(EM, kill).")
                await _wait_for(lambda: _count(node, Atom("g1"), 0), "erl member gone")
                assert node.pg().which_groups() == []
                proc.exit(Atom("shutdown"))
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _members_on(
                        e, "pg:get_members(chat, <<\"room\">>)", [node.name]),
                        "dead python member gone from chat room")

                # The scope monitor saw every change of the default scope, in order.
                events: list[tuple[Atom, Atom, list[str]]] = []
                while len(events) < 4:
                    msg = await watcher.receive(timeout=10)
                    assert msg[0] == ref
                    events.append((msg[1], msg[2], [str(p.node) for p in msg[3]]))
                assert events == [
                    (Atom("join"), Atom("g1"), [node.name]),
                    (Atom("join"), Atom("g1"), [a.name]),
                    (Atom("leave"), Atom("g1"), [node.name]),
                    (Atom("leave"), Atom("g1"), [a.name]),
                ]
                # OTP's own monitor on a saw the same changes in the same order.
                erl_events = await a.eval("Coll ! {get, self()}, "
                                          "receive {events, Ev} -> Ev after 5000 -> none end.")
                assert erl_events == (f"[{{join,g1,['{node.name}']}},{{join,g1,['{a.name}']}},"
                                      f"{{leave,g1,['{node.name}']}},{{leave,g1,['{a.name}']}}]")
                # The group monitor of chat/room saw the two joins and the dead member.
                room = [await room_watcher.receive(timeout=10) for _ in range(2)]
                assert [(m[0], m[1], m[2], len(m[3])) for m in room] == [
                    (room_ref, Atom("join"), "room", 2),
                    (room_ref, Atom("leave"), "room", 1),
                ]
            finally:
                await node.stop()
            for erl in (a, b):
                await _wait_for(lambda e=erl: _members_on(
                    e, "pg:get_members(chat, <<\"room\">>)", []), "stopped node's members gone")

    run(scenario())


async def _count(node: Node, group: Atom, n: int) -> bool:
    members: list[Pid] = node.pg().get_members(group)
    return len(members) == n
