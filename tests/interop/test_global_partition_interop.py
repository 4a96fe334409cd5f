"""Two groups that each registered one name while apart, then meet (OTP 25 and 28).

The groups are kept apart by never connecting them (deterministic, unlike a
cut made with ``disconnect_node``, whose outcome depends on
``prevent_overlapping_partitions`` and timing); joining them is the heal.
``global`` settles each clash on the node whose name sorts first, with the
method of the name that node already holds, run on its holder's node:

* Python resolves: its node sorts first and the name is its own process's.
  ``random_exit_name`` keeps the pid on the node that sorts first and kills
  the other; ``random_notify_name`` keeps it and tells the other
  ``{global_name_conflict, Name}``; ``notify_all_name`` tells both and the
  name goes.
* Erlang resolves: its node sorts first, its pid keeps the name and the
  Python process that held it in the other group is killed.
"""

from __future__ import annotations

import asyncio

import pytest

from erldist.runtime.node import Node
from erldist.term.types import Atom
from tests.interop.test_global_interop import COOKIE, Erl, _erl_pair, _is, _sees, _wait_for
from tests.support.aio import run
from tests.support.otp import EpmdProcess, unique_name

pytestmark = pytest.mark.interop


async def _python(prefix: str, epmd: EpmdProcess) -> Node:
    return await Node.start(f"{unique_name(prefix)}@127.0.0.1", COOKIE, epmd_port=epmd.port)


async def _owner_node(erl: Erl, name: str) -> str:
    return await erl.eval(f"case global:whereis_name({name}) of undefined -> undefined; "
                          "P -> node(P) end.")


@pytest.mark.parametrize("resolve", ["random_exit", "random_notify", "notify_all"])
def test_python_settles_a_clash_it_sorts_first_in(release: str, epmd: EpmdProcess,
                                                  resolve: str) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (_a, b):
            node = await _python("a0", epmd)  # sorts before b...
            try:
                assert node.name < b.name
                await b.eval("Self = self(), BH = spawn(fun() -> receive M -> Self ! {bh, M} "
                             "end end), yes = global:register_name(clash, BH).")
                mine = node.process()
                assert await node.register_name(Atom("clash"), mine.pid, resolve=resolve)

                await node.connect(b.name)  # the heal
                await _wait_for(lambda: _sees(b, node.name), "b to see python")
                await b.sync()
                if resolve == "notify_all":
                    # Both holders are told of the other, and the name goes everywhere.
                    told = await mine.receive(timeout=10)
                    assert told[:2] == (Atom("global_name_conflict"), Atom("clash"))
                    assert str(told[2].node) == b.name
                    assert await b.eval("receive {bh, Got} -> element(1, Got) =:= "
                                        "global_name_conflict andalso "
                                        f"node(element(3, Got)) =:= '{node.name}' "
                                        "after 5000 -> none end.") == "true"
                    await _wait_for(lambda: _is(b, "global:whereis_name(clash)", "undefined"),
                                    "the name to go on b")
                    assert node.whereis_name(Atom("clash")) is None
                    return
                await _wait_for(lambda: _is(b, "node(global:whereis_name(clash))",
                                            f"'{node.name}'"), "python to keep the name on b")
                assert node.whereis_name(Atom("clash")) == mine.pid
                assert mine.alive
                if resolve == "random_exit":
                    assert await b.eval("is_process_alive(BH).") == "false"
                else:
                    assert await b.eval("receive {bh, Got} -> Got after 5000 -> none end.") \
                        == "{global_name_conflict,clash}"  # told, not killed
            finally:
                await node.stop()

    run(scenario())


def test_erlang_settles_a_clash_and_kills_the_python_holder(release: str,
                                                            epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            # Group 1: a alone. Group 2: b and the Python node.
            node = await _python("py", epmd)
            try:
                await node.connect(b.name)
                await _wait_for(lambda: _sees(b, node.name), "b to see python")
                await b.sync()
                await a.eval("AH = spawn(fun() -> receive stop -> ok end end), "
                             "yes = global:register_name(split_name, AH).")
                loser = node.process()
                assert await node.register_name(Atom("split_name"), loser.pid)
                assert await _owner_node(b, "split_name") == f"'{node.name}'"

                # The heal: a meets b, and through it (connect_all) the Python node.
                assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _sees(e, node.name), f"{erl.name} sees py")
                    await erl.sync()
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _is(e, "node(global:whereis_name(split_name))",
                                                      f"'{a.name}'"), f"a's pid on {erl.name}")
                await _wait_for(lambda: _alive_is(loser, False), "the python holder to die")
                assert loser.exit_reason == Atom("killed")
                pid = node.whereis_name(Atom("split_name"))
                assert pid is not None and str(pid.node) == a.name
            finally:
                await node.stop()

    run(scenario())


async def _alive_is(proc: object, want: bool) -> bool:
    await asyncio.sleep(0)
    return bool(proc.alive) == want  # type: ignore[attr-defined]


def test_a_partition_made_with_disconnect_node_heals(release: str, epmd: EpmdProcess) -> None:
    """All three together, then a is cut off from b and the Python node with
    ``erlang:disconnect_node`` (OTP 25 and 28 default to
    ``prevent_overlapping_partitions = true``; the lost-connection notices it sends
    reach only the Python node, which leaves its links alone, so the cut is exactly
    the two groups {a} and {b, python}). Each group registers one name apart; the
    heal is a ping."""

    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            node = await _python("py", epmd)
            try:
                assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"
                await node.connect(a.name)
                await node.connect(b.name)
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _sees(e, node.name), f"{erl.name} sees py")
                    await erl.sync()
                before = node.process()
                assert await node.register_name(Atom("before_cut"), before.pid)

                assert await a.eval(f"erlang:disconnect_node('{b.name}'), "
                                    f"erlang:disconnect_node('{node.name}'), nodes().") == "[]"
                await _wait_for(lambda: _is(a, "global:whereis_name(before_cut)", "undefined"),
                                "a to drop the cut-off name")
                await _wait_for(lambda: _lacks_py(node, a.name), "python to lose a")
                await a.eval("PA = spawn(fun() -> receive stop -> ok end end), "
                             "yes = global:register_name(cut_name, PA).")
                loser = node.process()
                assert await node.register_name(Atom("cut_name"), loser.pid)
                assert await _owner_node(b, "cut_name") == f"'{node.name}'"
                assert await _owner_node(a, "cut_name") == f"'{a.name}'"

                assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"  # the heal
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _sees(e, node.name), f"{erl.name} sees py")
                    await erl.sync()
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _is(e, "node(global:whereis_name(cut_name))",
                                                      f"'{a.name}'"), f"a's pid on {erl.name}")
                    await _wait_for(lambda e=erl: _is(e, "node(global:whereis_name(before_cut))",
                                                      f"'{node.name}'"),
                                    f"the python name back on {erl.name}")
                await _wait_for(lambda: _alive_is(loser, False), "the python holder to die")
                pid = node.whereis_name(Atom("cut_name"))
                assert pid is not None and str(pid.node) == a.name
                assert node.whereis_name(Atom("before_cut")) == before.pid
            finally:
                await node.stop()

    run(scenario())


async def _lacks_py(node: Node, name: str) -> bool:
    return name not in node.nodes()
