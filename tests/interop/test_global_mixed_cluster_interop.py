"""Three ``erl`` nodes and two Python nodes in one ``global`` cluster (OTP 25 and 28).

Every Erlang node finds each Python-registered name and ``global:send``
reaches it; each Python node finds the other's and Erlang's names from its
own table; ``global:sync()`` on the Erlang nodes stays well under a second
with the Python nodes holding names; ``pg`` members of both Python nodes are
listed on every node.
"""

from __future__ import annotations

import asyncio

import pytest

from erldist.runtime.node import Node
from erldist.term.types import Atom
from tests.interop.test_global_interop import _DEFINE_GSYNC, COOKIE, Erl, _sees, _wait_for
from tests.support.aio import run
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop


def test_three_erlang_and_two_python_nodes(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        erls: list[Erl] = []
        pys: list[Node] = []
        try:
            for prefix in ("a", "b", "c"):
                erl = Erl(await asyncio.to_thread(
                    ErlNode, release, name=f"{unique_name(prefix)}@127.0.0.1", cookie=COOKIE,
                    epmd_port=epmd.port))
                erls.append(erl)
                await erl.eval(_DEFINE_GSYNC)
                await erl.eval("{ok, _} = pg:start(pg), ok.")
            for erl in erls[1:]:
                assert await erls[0].eval(f"net_adm:ping('{erl.name}').") == "pong"
            for prefix in ("p", "q"):
                node = await Node.start(f"{unique_name(prefix)}@127.0.0.1", COOKIE,
                                        epmd_port=epmd.port)
                pys.append(node)
                await node.connect(erls[0].name)
            all_names = {e.name for e in erls} | {p.name for p in pys}
            for erl in erls:
                for py in pys:
                    await _wait_for(lambda e=erl, p=py: _sees(e, p.name), "the mesh")
            for py in pys:
                await _wait_for(lambda p=py: _all_seen(p, all_names), f"{py.name} meshed")
            for erl in erls:
                await erl.sync()

            inboxes = []
            for i, py in enumerate(pys):
                proc = py.process()
                inboxes.append(proc)
                assert await py.register_name(Atom(f"mixed_{i}"), proc.pid) is True
                py.pg().join(Atom("mixed_group"), proc.pid)
            for i, py in enumerate(pys):
                for erl in erls:
                    assert await erl.eval(f"node(global:whereis_name(mixed_{i})).") \
                        == f"'{py.name}'"
                    await erl.eval(f"global:send(mixed_{i}, {{from, node()}}).")
                got = {(await inboxes[i].receive(timeout=10))[1] for _ in erls}
                assert got == {Atom(e.name) for e in erls}
                other = pys[1 - i]
                await _wait_for(lambda o=other, n=i: _has(o, f"mixed_{n}"), "the other py's name")
                holder = other.whereis_name(Atom(f"mixed_{i}"))
                assert holder is not None and str(holder.node) == py.name
            await erls[2].eval("CM = spawn(fun() -> receive stop -> ok end end), "
                               "yes = global:register_name(erl_mixed, CM).")
            for py in pys:
                await _wait_for(lambda p=py: _has(p, "erl_mixed"), "erl_mixed in python")
            want = sorted(p.name for p in pys)
            for erl in erls:
                await _wait_for(lambda e=erl: _pg_nodes(e, want), "pg members everywhere")
            for erl in erls:
                await erl.sync()  # ok within its budget; its speed is measured in bench/
        finally:
            for py in pys:
                await py.stop()
            for erl in erls:
                erl.node.stop()

    run(scenario())


async def _all_seen(node: Node, names: set[str]) -> bool:
    return set(node.nodes()) == names - {node.name}


async def _has(node: Node, name: str) -> bool:
    return node.whereis_name(Atom(name)) is not None


async def _pg_nodes(erl: Erl, want: list[str]) -> bool:
    text = await erl.eval("lists:sort([node(P) || P <- pg:get_members(mixed_group)]).")
    return text == "[" + ",".join(f"'{n}'" for n in want) + "]"
