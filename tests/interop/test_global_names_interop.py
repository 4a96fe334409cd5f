"""Python processes holding ``global`` names among real Erlang nodes (OTP 25 and 28).

Two ``erl`` nodes and one Python node: a name registered from Python is found
by ``global:whereis_name`` on every Erlang node and reached by
``global:send``; Erlang's names are found from Python without a round trip;
a name goes everywhere when its Python process exits or when Python
unregisters it; a Python node racing an Erlang node for one name ends with
exactly one owner, the same on every node.
"""

from __future__ import annotations

import asyncio

import pytest

from erldist.errors import GlobalNameNotRegistered
from erldist.runtime.node import Node
from erldist.term.types import Atom
from tests.interop.test_global_interop import COOKIE, Erl, _erl_pair, _is, _sees, _wait_for
from tests.support.aio import run
from tests.support.otp import EpmdProcess, unique_name

pytestmark = pytest.mark.interop


async def _cluster(a: Erl, b: Erl, epmd: EpmdProcess, prefix: str = "py") -> Node:
    assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"
    py_name = f"{unique_name(prefix)}@127.0.0.1"
    node = await Node.start(py_name, COOKIE, epmd_port=epmd.port)
    await node.connect(a.name)
    await node.connect(b.name)
    for erl in (a, b):
        await _wait_for(lambda e=erl: _sees(e, py_name), f"{erl.name} to see it")
        await erl.sync()
    return node


def test_python_names_are_seen_and_reached_everywhere(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            node = await _cluster(a, b, epmd)
            try:
                proc = node.process()
                assert await node.register_name(Atom("py_svc"), proc.pid) is True
                assert await node.register_name("bin_svc", node.process().pid) is True
                assert node.whereis_name(Atom("py_svc")) == proc.pid
                for erl in (a, b):
                    assert await erl.eval("node(global:whereis_name(py_svc)).") \
                        == f"'{node.name}'"
                    assert await erl.eval("node(global:whereis_name(<<\"bin_svc\">>)).") \
                        == f"'{node.name}'"
                    assert await erl.eval("global:register_name(py_svc, self()).") == "no"
                    await erl.eval(f"global:send(py_svc, {{hello_from, '{erl.name}'}}).")
                got = {(await proc.receive(timeout=10))[1] for _ in range(2)}
                assert got == {Atom(a.name), Atom(b.name)}
                # Taken, and a pid with a name cannot take a second one.
                assert await node.register_name(Atom("py_svc"), node.process().pid) is False
                assert await node.register_name(Atom("other"), proc.pid) is False

                # Erlang's names, from the replicated table.
                assert await a.eval("Erl1 = spawn(fun() -> receive {ping, F} -> F ! pong end end),"
                                    " global:register_name(erl_svc, Erl1).") == "yes"
                await _wait_for(lambda: _has(node, Atom("erl_svc")), "erl_svc in Python")
                erl_pid = node.whereis_name(Atom("erl_svc"))
                assert erl_pid is not None and str(erl_pid.node) == a.name
                assert await node.send_name(Atom("erl_svc"), (Atom("ping"), proc.pid)) == erl_pid
                assert await proc.receive(timeout=10) == Atom("pong")
                with pytest.raises(GlobalNameNotRegistered):
                    await node.send_name(Atom("nobody"), Atom("x"))

                # Unregister from Python: gone everywhere.
                await node.unregister_name("bin_svc")
                assert node.whereis_name("bin_svc") is None
                for erl in (a, b):
                    assert await erl.eval("global:whereis_name(<<\"bin_svc\">>).") == "undefined"

                # The owner exits: every Erlang node drops the name.
                proc.exit(Atom("shutdown"))
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _is(e, "global:whereis_name(py_svc)",
                                                      "undefined"),
                                    f"py_svc to go on {erl.name}")
                assert node.whereis_name(Atom("py_svc")) is None
                for erl in (a, b):
                    await erl.sync()
            finally:
                await node.stop()

    run(scenario())


async def _has(node: Node, name: Atom) -> bool:
    return node.whereis_name(name) is not None


def test_names_of_a_stopped_python_node_vanish(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            node = await _cluster(a, b, epmd)
            try:
                for i in range(5):
                    assert await node.register_name(Atom(f"gone_{i}"), node.process().pid)
                assert await b.eval("length([N || N <- global:registered_names(), "
                                    "lists:prefix(\"gone_\", atom_to_list(N))]).") == "5"
            finally:
                await node.stop()
            for erl in (a, b):
                await _wait_for(lambda e=erl: _is(e, "global:registered_names()", "[]"),
                                f"the names to go on {erl.name}")

    run(scenario())


# "py" sorts last: the Python node is the boss whose lock every registration takes
# first; "a0" sorts first: an Erlang node is the boss.
@pytest.mark.parametrize("prefix", ["py", "a0"])
def test_racing_for_one_name_leaves_one_owner(release: str, epmd: EpmdProcess,
                                              prefix: str) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            node = await _cluster(a, b, epmd, prefix)
            try:
                await a.eval("Racer = fun(N) -> P = spawn(fun() -> receive stop -> ok end end),"
                             " {P, global:register_name(N, P)} end.")
                for i in range(100):
                    name = f"race_{i}"
                    proc = node.process()
                    erl_task = asyncio.create_task(a.eval(f"element(2, Racer({name}))."))
                    py_yes = await node.register_name(Atom(name), proc.pid)
                    erl_yes = await erl_task == "yes"
                    assert py_yes != erl_yes, f"{name}: python {py_yes}, erlang {erl_yes}"
                    want = f"'{node.name}'" if py_yes else f"'{a.name}'"
                    for erl in (a, b):
                        assert await erl.eval(f"node(global:whereis_name({name})).") == want
                    holder = node.whereis_name(Atom(name))
                    assert holder is not None and (holder == proc.pid) == py_yes
            finally:
                await node.stop()

    run(scenario())


def test_re_register_moves_a_name_both_ways(release: str, epmd: EpmdProcess) -> None:
    """``re_register_name`` from Python takes an Erlang-held name (its old holder
    lives on, as in OTP), and Erlang's takes it back; every table follows."""

    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            node = await _cluster(a, b, epmd)
            try:
                await a.eval("RR = spawn(fun() -> receive stop -> ok end end), "
                             "yes = global:register_name(moved, RR).")
                await _wait_for(lambda: _has(node, Atom("moved")), "moved in Python")
                proc = node.process()
                await node.re_register_name(Atom("moved"), proc.pid)
                assert node.whereis_name(Atom("moved")) == proc.pid
                for erl in (a, b):
                    assert await erl.eval("node(global:whereis_name(moved)).") \
                        == f"'{node.name}'"
                assert await a.eval("is_process_alive(RR).") == "true"

                assert await a.eval("global:re_register_name(moved, RR).") == "yes"
                await _wait_for(lambda: _holder_on(node, "moved", a.name), "moved back")
                assert await b.eval("node(global:whereis_name(moved)).") == f"'{a.name}'"
                assert proc.alive
                assert node.registered_names() == [Atom("moved")]
                for erl in (a, b):
                    assert await erl.eval("global:registered_names().") == "[moved]"
            finally:
                await node.stop()

    run(scenario())


async def _holder_on(node: Node, name: str, where: str) -> bool:
    pid = node.whereis_name(Atom(name))
    return pid is not None and str(pid.node) == where
