"""gen_server calls both ways between Python and real Erlang nodes (OTP 25 and 28).

Erlang calls a Python ``GenServer`` with ``gen_server:call``/``cast``, and
Python calls an Erlang ``gen_server`` with ``Node.call``/``cast``; each also
with a timeout, an unknown name, the target exiting mid-call and the node
dying mid-call, and each checks that no late reply is left anywhere.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from erldist import Atom, Node, Pid
from erldist.errors import CallTargetDown, CallTimeout
from erldist.runtime.gen_server import NOREPLY, From, GenServer
from tests.support.aio import wait_for
from tests.support.erl_modules import CALLS_SRV, load_module
from tests.support.nodes import erl
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "callscookie"


class Counter(GenServer):
    """Counts; defers ``later`` (answered by the test); raises on ``crash``."""

    def __init__(self) -> None:
        self.count = 0
        self.deferred: list[From] = []
        self.casts: list[Any] = []

    def init(self, start: int) -> None:
        self.count = start

    async def handle_call(self, request: Any, from_: From) -> Any:
        if request == Atom("crash"):
            raise ValueError("bad request")
        if request == Atom("later"):
            self.deferred.append(from_)
            return NOREPLY
        self.count += 1
        return (Atom("count"), self.count)

    def handle_cast(self, request: Any) -> None:
        self.casts.append(request)


def start_erl(started: list[ErlNode], release: str, epmd: EpmdProcess) -> ErlNode:
    node = ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    started.append(node)
    return node


async def start_py(epmd: EpmdProcess) -> Node:
    return await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                            embedded_epmd=False)


def leftovers(py: Node) -> tuple[int, int, int, int]:
    """Pending calls, the calls' monitors and aliases, and messages queued in any
    of ``py``'s mailboxes (``global`` keeps monitors of its own, not counted)."""
    calls = py._calls
    assert calls is not None
    state = calls.process.state
    return (calls.pending, len(state.monitors), len(state.aliases),
            sum(len(p.mailbox._queue) for p in py.router.processes()))


# --- Erlang calls Python ------------------------------------------------------------------


async def test_gen_server_call_and_cast_reach_a_python_server_by_name_and_pid(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        srv = Counter()
        pid = await py.start_server(srv, 10, name="counter")
        target = f"{{counter, '{py.name}'}}"
        assert await erl(e, f"gen_server:call({target}, hi).") == "{count,11}"
        assert await erl(e, f"gen_server:cast({target}, {{add, 5}}).") == "ok"
        await erl(e, "register(tester, self()), ok.")
        await py.send(("tester", e.name), (Atom("pid"), pid))
        assert await erl(e, "receive {pid, SrvPid} -> gen_server:call(SrvPid, hi, 5000) "
                            "after 5000 -> timeout end.") == "{count,12}"
        await wait_for(lambda: srv.casts == [(Atom("add"), 5)], 10, "the cast")
        # A deferred reply, answered while Erlang waits.
        waiting = asyncio.ensure_future(erl(e, f"gen_server:call({target}, later, 10000)."))
        await wait_for(lambda: len(srv.deferred) == 1, 10, "the deferred call")
        srv.reply(srv.deferred.pop(), (Atom("answered"), b"later"))
        assert await waiting == "{answered,<<108,97,116,101,114>>}"
    finally:
        await py.stop()


async def test_erlang_calls_into_python_fail_as_in_otp(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        srv = Counter()
        await py.start_server(srv, 0, name="counter")
        target = f"{{counter, '{py.name}'}}"
        # An unknown name: noproc at once.
        got = await erl(e, f"{{T0, R0}} = timer:tc(fun() -> catch gen_server:call("
                           f"{{nobody, '{py.name}'}}, hi, 20000) end), {{T0 < 2000000, R0}}.")
        nobody = f"{{nobody,'{py.name}'}}"
        assert got == f"{{true,{{'EXIT',{{noproc,{{gen_server,call,[{nobody},hi,20000]}}}}}}}}"
        # A timeout, then a late reply: it must not reach the Erlang caller's mailbox.
        got = await erl(e, f"catch gen_server:call({target}, later, 300).")
        assert got.startswith("{'EXIT',{timeout,")
        await wait_for(lambda: len(srv.deferred) == 1, 10, "the deferred call")
        srv.reply(srv.deferred.pop(), Atom("too_late"))
        assert await erl(e, "receive Late -> {late, Late} after 1000 -> none end.") == "none"
        await wait_for(lambda: not srv.process.state.watchers, 10, "the caller's demonitor")
        # A handler that raises ends the server; the caller exits with its reason.
        got = await erl(e, f"catch gen_server:call({target}, crash, 5000).")
        assert got == ("{'EXIT',{{python,'ValueError',<<98,97,100,32,114,101,113,117,101,115,"
                       f"116>>}},{{gen_server,call,[{target.replace(' ', '')},crash,5000]}}}}}}")
        await wait_for(lambda: py.whereis("counter") is None, 10, "the server to end")
        # The target exits mid-call.
        srv2 = Counter()
        await py.start_server(srv2, 0, name="counter")
        waiting = asyncio.ensure_future(erl(e, f"catch gen_server:call({target}, later, 10000)."))
        await wait_for(lambda: len(srv2.deferred) == 1, 10, "the deferred call")
        srv2.process.exit((Atom("shutdown"), Atom("mid_call")))
        assert (await waiting).startswith("{'EXIT',{{shutdown,mid_call},")
        # The node dies mid-call: {nodedown, Node}.
        srv3 = Counter()
        await py.start_server(srv3, 0, name="counter")
        waiting = asyncio.ensure_future(erl(e, f"catch gen_server:call({target}, later, 20000)."))
        await wait_for(lambda: len(srv3.deferred) == 1, 10, "the deferred call")
        await py.stop()
        assert (await waiting).startswith(f"{{'EXIT',{{{{nodedown,'{py.name}'}},")
        assert await erl(e, "receive Late2 -> {late, Late2} after 500 -> none end.") == "none"
    finally:
        await py.stop()


async def test_an_erlang_supervisor_supervises_a_python_server_started_over_erpc(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        servers: list[Counter] = []

        async def start_link(parent: Pid) -> tuple[Atom, Pid]:
            srv = Counter()
            servers.append(srv)
            return Atom("ok"), await py.start_server(srv, 0, link=parent)

        py.expose("py_counter", "start_link", start_link)
        sup = (
            "-module(py_counter_sup).\n-behaviour(supervisor).\n-export([init/1]).\n"
            "init(Py) -> {ok, {#{strategy => one_for_one, intensity => 10, period => 10},\n"
            "  [#{id => counter,\n"
            "     start => {erpc, call, [Py, py_counter, start_link, [self()]]}}]}}.\n"
        )
        load_module(e, sup, tmp_path)
        await erl(e, f"{{ok, Sup}} = supervisor:start_link(py_counter_sup, '{py.name}'), "
                     "unlink(Sup), ok.")
        child = await erl(e, "[{counter, C1, worker, _}] = supervisor:which_children(Sup), "
                             "gen_server:call(C1, hi).")
        assert child == "{count,1}"
        assert len(servers) == 1 and len(servers[0].process.state.links) == 1
        # The Python server crashes: the supervisor starts a new one.
        await erl(e, "catch gen_server:call(C1, crash), ok.")
        await wait_for(lambda: len(servers) == 2, 20, "the restart")
        got = await erl(e, "[{counter, C2, worker, _}] = supervisor:which_children(Sup), "
                           "{C2 =/= C1, gen_server:call(C2, hi)}.")
        assert got == "{true,{count,1}}"
        # The supervisor shuts down: its child, linked to it, goes with it.
        await erl(e, "exit(Sup, shutdown), ok.")
        await wait_for(lambda: not servers[1].process.alive, 20, "the child to stop")
        assert servers[1].process.exit_reason == Atom("shutdown")
    finally:
        await py.stop()


# --- Python calls Erlang ------------------------------------------------------------------


async def test_python_calls_an_erlang_gen_server_and_every_failure_is_typed(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        load_module(e, CALLS_SRV, tmp_path)
        assert (await erl(e, "element(1, calls_srv:start(srv)).")) == "ok"
        srv = ("srv", e.name)
        assert await py.call(srv, (Atom("echo"), 7)) == (Atom("echoed"), 7)
        await py.cast(srv, Atom("one"))
        await py.cast(srv, Atom("two"))
        assert await py.call(srv, Atom("casts")) == [Atom("one"), Atom("two")]
        loop = asyncio.get_running_loop()
        # Unknown name and dead pid: noproc at once.
        t0 = loop.time()
        with pytest.raises(CallTargetDown) as info:
            await py.call(("nobody", e.name), Atom("hi"), timeout=20)
        assert info.value.reason == Atom("noproc") and loop.time() - t0 < 5
        inbox = py.process()
        await erl(e, "register(tester, self()), ok.")
        await py.send(("tester", e.name), inbox.pid)
        await erl(e, "receive I -> I ! spawn(fun() -> ok end) end, ok.")
        dead = await inbox.receive(10)
        await asyncio.sleep(0.1)
        t0 = loop.time()
        with pytest.raises(CallTargetDown) as info:
            await py.call(dead, Atom("hi"), timeout=20)
        assert info.value.reason == Atom("noproc") and loop.time() - t0 < 5
        inbox.exit()
        # A timeout; the late reply comes and is dropped: nothing left anywhere.
        with pytest.raises(CallTimeout):
            await py.call(srv, (Atom("sleep"), 300, Atom("x")), timeout=0.1)
        assert leftovers(py) == (0, 0, 0, 0)
        assert await py.call(srv, (Atom("echo"), 8)) == (Atom("echoed"), 8)  # after the late one
        assert leftovers(py) == (0, 0, 0, 0)
        # The target exits mid-call.
        with pytest.raises(CallTargetDown) as info:
            await py.call(srv, (Atom("stop"), Atom("going_away")), timeout=10)
        assert info.value.reason == Atom("going_away")
        assert leftovers(py) == (0, 0, 0, 0)
        # The node dies mid-call.
        assert (await erl(e, "element(1, calls_srv:start(srv2)).")) == "ok"
        call = asyncio.ensure_future(py.call(("srv2", e.name), (Atom("sleep"), 20000, 1),
                                             timeout=30))
        await asyncio.sleep(0.3)
        e.proc.kill()
        with pytest.raises(CallTargetDown) as info:
            await call
        assert info.value.reason == Atom("noconnection")
        assert leftovers(py) == (0, 0, 0, 0)
    finally:
        await py.stop()


async def test_python_calls_python_servers_across_nodes(epmd: EpmdProcess) -> None:
    a = await start_py(epmd)
    b = await start_py(epmd)
    try:
        srv = Counter()
        await b.start_server(srv, 0, name="counter")
        results = await asyncio.gather(*(a.call(("counter", b.name), Atom("hi"))
                                         for _ in range(20)))
        assert sorted(r[1] for r in results) == list(range(1, 21))
        await a.cast(("counter", b.name), Atom("c"))
        await wait_for(lambda: srv.casts == [Atom("c")], 10, "the cast")
        with pytest.raises(CallTimeout):
            await a.call(("counter", b.name), Atom("later"), timeout=0.2)
        srv.reply(srv.deferred.pop(), Atom("late"))
        await asyncio.sleep(0.2)
        assert leftovers(a) == (0, 0, 0, 0)
        with pytest.raises(CallTargetDown) as info:
            await a.call(("counter", b.name), Atom("crash"))
        assert info.value.reason == (Atom("python"), Atom("ValueError"), b"bad request")
    finally:
        await a.stop()
        await b.stop()
