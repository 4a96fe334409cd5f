"""rpc and erpc both ways over a mixed cluster of real Erlang (OTP 25 and 28) and
Python nodes.

Erlang's ``rpc:call``, ``erpc:call``, ``rpc:multicall``, ``rpc:cast`` and
``rpc:block_call`` reach the functions a Python node exposed, and only those;
errors come back in Erlang's own shapes, at once. Python's ``Node.rpc`` calls
Erlang and maps every erpc outcome to a typed exception.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from erldist import Atom, Node
from erldist.errors import (
    RpcExit,
    RpcNodeDown,
    RpcRaised,
    RpcThrow,
    RpcTimeout,
    RpcUndefined,
)
from tests.support.aio import wait_for
from tests.support.erl_modules import CALC, load_module
from tests.support.nodes import erl
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "rpccookie"


def start_erl(started: list[ErlNode], release: str, epmd: EpmdProcess) -> ErlNode:
    node = ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    started.append(node)
    return node


async def start_py(epmd: EpmdProcess, seen: list[Any]) -> Node:
    node = await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                            embedded_epmd=False)

    def add(a: int, b: int) -> int:
        return a + b

    async def where() -> Atom:
        await asyncio.sleep(0)
        return node.atom

    def fail(text: bytes) -> None:
        raise ValueError(text.decode())

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append(("cancelled", node.name))
            raise

    node.expose("calc", "add", add)
    node.expose("calc", "where", where)
    node.expose("calc", "fail", fail)
    node.expose("calc", "forever", forever)
    node.expose("calc", "note", lambda x: seen.append(("note", node.name, x)))
    return node


async def test_rpc_and_erpc_over_a_mixed_cluster_reach_exposed_python_functions(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path
) -> None:
    e1 = start_erl(erl_nodes, release, epmd)
    e2 = start_erl(erl_nodes, release, epmd)
    seen: list[Any] = []
    p1 = await start_py(epmd, seen)
    p2 = await start_py(epmd, seen)
    try:
        load_module(e1, CALC, tmp_path)
        load_module(e2, CALC, tmp_path)
        for p in (p1, p2):
            assert await erl(e1, f"rpc:call('{p.name}', calc, add, [1, 2]).") == "3"
            assert await erl(e2, f"erpc:call('{p.name}', calc, add, [20, 22]).") == "42"
            assert await erl(e1, f"erpc:call('{p.name}', calc, where, [], 5000).") == (
                f"'{p.name}'")
        nodes = f"[node(), '{e2.name}', '{p1.name}', '{p2.name}']"
        assert await erl(e1, f"rpc:multicall({nodes}, calc, add, [1, 2]).") == "{[3,3,3,3],[]}"
        assert await erl(e1, f"erpc:multicall({nodes}, calc, add, [2, 2], 5000).") == (
            "[{ok,4},{ok,4},{ok,4},{ok,4}]")
        assert await erl(e1, f"rpc:block_call('{p2.name}', calc, add, [5, 5]).") == "10"
        assert await erl(e1, f"rpc:cast('{p1.name}', calc, note, [hello]).") == "true"
        await wait_for(lambda: ("note", p1.name, Atom("hello")) in seen, 10, "the cast")
        # Python to Python over the same protocol.
        assert await p1.rpc(p2.name, "calc", "add", [3, 4]) == 7
        with pytest.raises(RpcUndefined):
            await p1.rpc(p2.name, "calc", "nope", [])
    finally:
        await p1.stop()
        await p2.stop()


async def test_unexposed_functions_and_exceptions_answer_in_erlangs_shapes_at_once(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    seen: list[Any] = []
    py = await start_py(epmd, seen)
    try:
        p = py.name

        runs = iter(range(100))

        async def timed(expr: str) -> str:
            """``expr``'s value, checking that Erlang got it in under 2 s (the
            shell keeps bindings: each evaluation binds names of its own)."""
            n = next(runs)
            got = await erl(e, f"{{Tus{n}, Res{n}}} = timer:tc(fun() -> {expr} end), "
                               f"{{Tus{n} < 2000000, Res{n}}}.")
            assert got.startswith("{true,"), got
            return got[len("{true,"):-1]

        # Not exposed (or not with that arity): as an undefined function.
        assert await timed(f"rpc:call('{p}', os, cmd, [\"ls\"])") == (
            "{badrpc,{'EXIT',{undef,[{os,cmd,[[108,115]],[]}]}}}")
        assert await timed(f"rpc:call('{p}', calc, add, [1])") == (
            "{badrpc,{'EXIT',{undef,[{calc,add,[1],[]}]}}}")
        got = await timed(f"try erpc:call('{p}', erlang, halt, []) catch C:R -> {{C, R}} end")
        assert got == "{error,{exception,undef,[{erlang,halt,[],[]}]}}"
        # A Python exception: an Erlang error with the type and message in the reason.
        reason = "{python,'ValueError',<<98,97,100>>}"
        assert await timed(f"rpc:call('{p}', calc, fail, [<<\"bad\">>])") == (
            f"{{badrpc,{{'EXIT',{{{reason},[{{calc,fail,1,[]}}]}}}}}}")
        got = await timed(f"try erpc:call('{p}', calc, fail, [<<\"bad\">>]) "
                          "catch C2:R2 -> {C2, R2} end")
        assert got == f"{{error,{{exception,{reason},[{{calc,fail,1,[]}}]}}}}"
        got = await timed(f"erpc:multicall(['{p}'], calc, fail, [<<\"bad\">>])")
        assert got == f"[{{error,{{exception,{reason},[{{calc,fail,1,[]}}]}}}}]"
        # Anything but erpc's own functions is not run here.
        assert await timed(f"spawn('{p}', os, cmd, [\"ls\"]), ok") == "ok"
        assert py._rpc_server is not None and py._rpc_server.running == 0
    finally:
        await py.stop()


async def test_a_caller_timeout_leaves_nothing_running_on_the_python_node(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    seen: list[Any] = []
    py = await start_py(epmd, seen)
    try:
        procs_before = len(py.router.processes())
        got = await erl(e, f"try erpc:call('{py.name}', calc, forever, [], 300) "
                           "catch C:R -> {C, R} end.")
        assert got == "{error,{erpc,timeout}}"
        await wait_for(lambda: ("cancelled", py.name) in seen, 10, "the function to be ended")
        assert py._rpc_server is not None and py._rpc_server.running == 0
        await wait_for(lambda: len(py.router.processes()) == procs_before, 10,
                       "the worker process to go")
        assert await erl(e, f"rpc:call('{py.name}', calc, forever, [], 300).") == (
            "{badrpc,timeout}")
        await wait_for(lambda: seen.count(("cancelled", py.name)) == 2, 10, "the second one")
        assert await erl(e, "receive Late -> {late, Late} after 500 -> none end.") == "none"
    finally:
        await py.stop()


async def test_python_rpc_into_erlang_maps_every_outcome(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    seen: list[Any] = []
    py = await start_py(epmd, seen)
    try:
        assert await py.rpc(e.name, "erlang", "node", []) == Atom(e.name)
        assert await py.rpc(e.name, "lists", "seq", [1, 3]) == [1, 2, 3]
        # io:format on the Erlang side writes to our group leader, which answers.
        assert await py.rpc(e.name, "io", "format", [b"hello ~p~n", [1]]) == Atom("ok")
        with pytest.raises(RpcUndefined) as undef:
            await py.rpc(e.name, "no_such_module", "f", [1])
        assert undef.value.stack == [(Atom("no_such_module"), Atom("f"), [1], [])]
        with pytest.raises(RpcThrow) as thrown:
            await py.rpc(e.name, "erlang", "throw", [Atom("ball")])
        assert thrown.value.value == Atom("ball")
        with pytest.raises(RpcExit) as exited:
            await py.rpc(e.name, "erlang", "exit", [Atom("bye")])
        assert exited.value.reason == Atom("bye")
        with pytest.raises(RpcRaised) as raised:
            await py.rpc(e.name, "erlang", "error", [Atom("badthing")])
        assert raised.value.reason == Atom("badthing")
        assert py._rpc is not None
        with pytest.raises(RpcTimeout):
            await py.rpc(e.name, "timer", "sleep", [2000], timeout=0.2)
        assert py._rpc.pending == 0 and not py._rpc.process.state.monitors
        await asyncio.sleep(0.1)
        assert await py.rpc(e.name, "erlang", "node", []) == Atom(e.name)
        with pytest.raises(RpcNodeDown):
            await py.rpc("nowhere@127.0.0.1", "erlang", "node", [])
        # The node dies mid-rpc.
        call = asyncio.ensure_future(py.rpc(e.name, "timer", "sleep", [20000], timeout=30))
        await asyncio.sleep(0.3)
        e.proc.kill()
        with pytest.raises(RpcNodeDown):
            await call
        assert py._rpc.pending == 0 and not py._rpc.process.state.monitors
        assert not py._rpc.process.mailbox._queue
    finally:
        await py.stop()
