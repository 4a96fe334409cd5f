"""Python processes as Elixir code sees them: monitors, links, a Supervisor.

Elixir runs on Debian's OTP 25 (its ``elixir`` package). The Elixir side is
Elixir source evaluated by ``Code.eval_string`` inside a real node, with the
Python pid passed in as a binding.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from erldist import Atom, Down, Exit, Node, Pid
from erldist.runtime.gen_server import From, GenServer
from tests.support.aio import wait_for
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "elixircookie"


@functools.cache
def elixir_ebin() -> str:
    """Where Elixir's own modules are, as the installed ``elixir`` reports it."""
    out = subprocess.run(["elixir", "-e", "IO.puts(:code.lib_dir(:elixir))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip() + "/ebin"


@pytest.fixture
def ex(epmd: EpmdProcess) -> Iterator[ErlNode]:
    node = ErlNode("25", name=f"{unique_name('ex')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port, extra_args=["-pa", elixir_ebin()])
    try:
        node.eval("register(tester, self()), {ok, _} = application:ensure_all_started(elixir), "
                  "ok.")
        yield node
    finally:
        node.stop()


async def elixir(node: ErlNode, code: str, **pids: Pid) -> str:
    """Evaluate Elixir ``code`` with ``pids`` bound; the result printed with ``~w``.

    Each pid travels as a message to the tester first (it cannot be written as source).
    """
    bindings = []
    for name in pids:
        bindings.append(f"{{{name}, receive {{bind, {name}, P_{name}}} -> P_{name} "
                        f"after 10000 -> timeout end}}")
    expr = ("element(1, 'Elixir.Code':eval_string(<<\"" + code.replace("\\", "\\\\")
            .replace('"', '\\"') + "\"/utf8>>, [" + ", ".join(bindings) + "])).")
    return await asyncio.to_thread(node.eval, expr, 60)


async def start_py(epmd: EpmdProcess) -> Node:
    return await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                            embedded_epmd=False)


async def bind(node: Node, ex_node: ErlNode, **pids: Pid) -> None:
    for name, pid in pids.items():
        await node.send(("tester", ex_node.name), (Atom("bind"), Atom(name), pid))


async def test_elixir_sees_a_python_exit_through_monitor_and_link(
    epmd: EpmdProcess, ex: ErlNode
) -> None:
    py = await start_py(epmd)
    try:
        proc = py.process()
        await bind(py, ex, pypid=proc.pid)
        watcher = asyncio.ensure_future(elixir(ex, """
            Process.flag(:trap_exit, true)
            Process.link(pypid)
            ref = Process.monitor(pypid)
            send(pypid, :ready)
            down = receive do {:DOWN, ^ref, :process, ^pypid, r} -> r after 20000 -> :timeout end
            exit = receive do {:EXIT, ^pypid, r} -> r after 20000 -> :timeout end
            {down, exit} == {{:shutdown, "done"}, {:shutdown, "done"}}
            """, pypid=proc.pid))
        assert await proc.receive(30) == Atom("ready")
        await wait_for(lambda: proc.state.links != set() and proc.state.watchers != {}, 20,
                       "Elixir's link and monitor")
        proc.exit((Atom("shutdown"), b"done"))
        assert await watcher == "true"
    finally:
        await py.stop()


async def test_an_elixir_supervisor_restarts_a_child_linked_to_a_python_process(
    epmd: EpmdProcess, ex: ErlNode
) -> None:
    py = await start_py(epmd)
    try:
        peer = py.process("py_peer")
        await bind(py, ex, pypid=peer.pid)
        started = await elixir(ex, """
            tester = Process.whereis(:tester)
            child = %{id: :c, start: {Task, :start_link, [fn ->
                Process.link(pypid)
                send(tester, {:child_up, self()})
                Process.sleep(:infinity)
              end]}}
            {:ok, sup} = Supervisor.start_link([child], strategy: :one_for_one,
                                               max_restarts: 10, max_seconds: 10)
            Process.unlink(sup)
            :ok
            """, pypid=peer.pid)
        assert started == "ok"
        first = await asyncio.to_thread(
            ex.eval, "receive {child_up, C1} -> C1 after 10000 -> timeout end.")
        assert first.startswith("<")
        await wait_for(lambda: len(peer.state.links) == 1, 20, "the child's link")
        peer.exit(Atom("python_went_away"))
        second = await asyncio.to_thread(
            ex.eval, "receive {child_up, C2} -> C2 after 10000 -> timeout end.")
        assert second.startswith("<") and second != first
    finally:
        await py.stop()


async def test_python_monitors_and_traps_an_elixir_process(
    epmd: EpmdProcess, ex: ErlNode
) -> None:
    py = await start_py(epmd)
    try:
        inbox = py.process()
        trapping = py.process(trap_exit=True)
        await bind(py, ex, inbox=inbox.pid)
        await elixir(ex, """
            t = spawn(fn -> receive do {:exit, r} -> exit(r) end end)
            send(inbox, {:target, t})
            Process.register(t, :ex_target)
            :ok
            """, inbox=inbox.pid)
        (_, target) = await inbox.receive(10)
        ref = await trapping.monitor(target)
        await trapping.link(target)
        # Our signals are asynchronous, as Erlang's are: wait until the target has the
        # link (the monitor travels before it) before ending the target.
        await asyncio.to_thread(
            ex.eval, "Wait = fun W(0) -> false; W(N) -> case process_info(whereis(ex_target), "
                     "links) of {links, [_]} -> true; _ -> timer:sleep(20), W(N - 1) end end, "
                     "true = Wait(500), ex_target ! {exit, {custom, 1}}, ok.")
        got = {await trapping.receive(10), await trapping.receive(10)}
        assert got == {Down(ref, target, (Atom("custom"), 1)),
                       Exit(target, (Atom("custom"), 1))}
    finally:
        await py.stop()


class Adder(GenServer):
    """Adds what it is asked to; counts the casts it got."""

    def __init__(self) -> None:
        self.casts = 0

    def handle_call(self, request: Any, from_: From) -> Any:
        match request:
            case (Atom("add"), int() as a, int() as b):
                return a + b
        return Atom("unknown")

    def handle_cast(self, request: Any) -> None:
        self.casts += 1


async def test_elixir_calls_a_python_gen_server_by_its_global_name(
    epmd: EpmdProcess, ex: ErlNode
) -> None:
    py = await start_py(epmd)
    try:
        adder = Adder()
        pid = await py.start_server(adder)
        await py.connect(ex.name)
        assert await py.register_name("py_adder", pid)  # a binary name, as Elixir and Gleam use
        got = await elixir(ex, """
            :global.sync()
            {GenServer.call({:global, "py_adder"}, {:add, 40, 2}),
             GenServer.cast({:global, "py_adder"}, :hello),
             :global.whereis_name("py_adder") |> node()}
            """)
        assert got == f"{{42,ok,'{py.name}'}}"
        await wait_for(lambda: adder.casts == 1, 20, "the cast to arrive")
    finally:
        await py.stop()
