"""``GenServer.call`` between a real Elixir node and Python, both ways.

The Elixir node is Debian's ``elixir`` (1.14, on Debian's OTP 25) running a
script: it calls the Python server with ``GenServer.call``/``cast`` and prints
what it got, then serves its own ``GenServer`` while Python calls it, and last
waits on a call while the Python node stops. A missing ``elixir`` fails the
test (``scripts/test.sh`` installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erldist import Atom, Node
from erldist.errors import CallTargetDown, CallTimeout
from erldist.runtime.gen_server import NOREPLY, From, GenServer
from tests.support.aio import wait_for
from tests.support.otp import EpmdProcess, unique_name

pytestmark = pytest.mark.interop

COOKIE = "elixircookie"

SCRIPT = r"""
defmodule ExSrv do
  use GenServer
  def init(n), do: {:ok, n}
  def handle_call(:ping, _from, n), do: {:reply, {:pong, n}, n}
  def handle_call({:sleep, ms}, _from, n) do
    Process.sleep(ms)
    {:reply, :late, n}
  end
  def handle_call({:stop, r}, _from, n), do: {:stop, r, n}
  def handle_cast({:add, k}, n), do: {:noreply, n + k}
end

[py_name | mode] = System.argv()
py = String.to_atom(py_name)
{:ok, _} = GenServer.start(ExSrv, 0, name: :ex_srv)
true = Node.connect(py)
if mode == ["serve"] do
  IO.puts("READY")
  IO.read(:stdio, :line)
  System.halt(0)
end
report = fn key, value -> IO.puts("RESULT #{key} #{inspect(value)}") end
catching = fn f ->
  try do
    f.()
  catch
    :exit, r -> {:exit, r}
  end
end
report.(:call, GenServer.call({:counter, py}, :hi))
GenServer.cast({:counter, py}, {:add, 5})
report.(:after_cast, GenServer.call({:counter, py}, :hi))
report.(:noproc, catching.(fn -> GenServer.call({:nobody, py}, :hi, 20000) end))
report.(:timeout, catching.(fn -> GenServer.call({:counter, py}, :later, 300) end))
late = receive do
  m -> m
after
  2000 -> :none
end
report.(:late, late)
report.(:crash, catching.(fn -> GenServer.call({:counter, py}, :crash) end))
IO.puts("READY")
IO.read(:stdio, :line)
report.(:nodedown, catching.(fn -> GenServer.call({:counter, py}, :later, 20000) end))
IO.puts("DONE")
IO.read(:stdio, :line)
"""


class Counter(GenServer):
    def __init__(self) -> None:
        self.count = 0
        self.deferred: list[From] = []

    def handle_call(self, request: Any, from_: From) -> Any:
        if request == Atom("crash"):
            raise KeyError("missing")
        if request == Atom("later"):
            self.deferred.append(from_)
            return NOREPLY
        self.count += 1
        return (Atom("count"), self.count)

    def handle_cast(self, request: Any) -> None:
        if isinstance(request, tuple) and request[0] == Atom("add"):
            self.count += request[1]


class ElixirNode:
    """An ``elixir`` script as a distributed node; its stdout read line by line."""

    def __init__(self, name: str, script: Path, epmd_port: int, args: list[str]) -> None:
        self.name = name
        exe = shutil.which("elixir")
        if exe is None:
            raise AssertionError("`elixir` not found: scripts/test.sh installs Debian's elixir")
        env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
        self.proc = subprocess.Popen(
            [exe, "--name", name, "--cookie", COOKIE, "--erl", "-start_epmd false",
             str(script), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def results(self) -> dict[str, str]:
        out = {}
        for line in self.lines:
            if line.startswith("RESULT "):
                key, _, value = line[len("RESULT "):].partition(" ")
                out[key] = value
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def elixir_nodes() -> Iterator[list[ElixirNode]]:
    started: list[ElixirNode] = []
    yield started
    for node in started:
        node.stop()


async def test_genserver_call_both_ways_between_elixir_and_python(
    epmd: EpmdProcess, elixir_nodes: list[ElixirNode], tmp_path: Path
) -> None:
    py = await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                          embedded_epmd=False)
    try:
        srv = Counter()
        await py.start_server(srv, name="counter")
        script = tmp_path / "calls.exs"
        script.write_text(SCRIPT)
        ex_name = f"{unique_name('ex')}@127.0.0.1"
        ex = ElixirNode(ex_name, script, epmd.port, [py.name])
        elixir_nodes.append(ex)
        # Elixir's timed-out call: answer it late; the answer must not reach Elixir.
        await wait_for(lambda: len(srv.deferred) == 1, 60, f"Elixir's call: {ex.lines}")
        await wait_for(lambda: "timeout" in ex.results(), 10, "the timeout")
        srv.reply(srv.deferred.pop(), Atom("too_late"))
        await wait_for(lambda: "READY" in ex.lines, 30, f"the Elixir script: {ex.lines}")
        got = ex.results()
        assert got["call"] == "{:count, 1}"
        assert got["after_cast"] == "{:count, 7}"
        assert got["noproc"] == (f"{{:exit, {{:noproc, {{GenServer, :call, [{{:nobody, "
                                 f":\"{py.name}\"}}, :hi, 20000]}}}}}}")
        assert got["timeout"].startswith("{:exit, {:timeout, {GenServer, :call,")
        assert got["late"] == ":none"
        assert got["crash"].startswith(
            "{:exit, {{:python, :KeyError, \"'missing'\"}, {GenServer, :call,")

        # Python calls the Elixir GenServer.
        target = ("ex_srv", ex_name)
        assert await py.call(target, Atom("ping")) == (Atom("pong"), 0)
        await py.cast(target, (Atom("add"), 5))
        assert await py.call(target, Atom("ping")) == (Atom("pong"), 5)
        with pytest.raises(CallTargetDown) as info:
            await py.call(("nobody", ex_name), Atom("ping"), timeout=20)
        assert info.value.reason == Atom("noproc")
        with pytest.raises(CallTimeout):
            await py.call(target, (Atom("sleep"), 500), timeout=0.1)
        assert await py.call(target, Atom("ping"), timeout=10) == (Atom("pong"), 5)
        calls = py._calls
        assert calls is not None
        assert calls.pending == 0 and not calls.process.state.monitors
        assert not calls.process.state.aliases
        assert not any(p.mailbox._queue for p in py.router.processes())
        with pytest.raises(CallTargetDown) as info:
            await py.call(target, (Atom("stop"), Atom("elixir_says_bye")))
        assert info.value.reason == Atom("elixir_says_bye")
        # The Elixir node dies mid-call (a second node: the first one's server is gone).
        ex2 = ElixirNode(f"{unique_name('ex')}@127.0.0.1", script, epmd.port,
                         [py.name, "serve"])
        elixir_nodes.append(ex2)
        await wait_for(lambda: "READY" in ex2.lines, 60, f"the second node: {ex2.lines}")
        call = asyncio.ensure_future(py.call(("ex_srv", ex2.name), (Atom("sleep"), 20000),
                                             timeout=30))
        t0 = time.monotonic()
        await asyncio.sleep(0.3)
        ex2.proc.kill()
        with pytest.raises(CallTargetDown) as info:
            await call
        assert info.value.reason == Atom("noconnection") and time.monotonic() - t0 < 20
        assert calls.pending == 0 and not calls.process.state.monitors
        # The Python node dies while Elixir waits on a call: {:nodedown, node}.
        srv2 = Counter()
        await py.start_server(srv2, name="counter")
        assert ex.proc.stdin is not None
        ex.proc.stdin.write(b"go\n")
        ex.proc.stdin.flush()
        await wait_for(lambda: len(srv2.deferred) == 1, 30, f"Elixir's last call: {ex.lines}")
        await py.stop()
        await wait_for(lambda: "DONE" in ex.lines, 30, f"the Elixir script to end: {ex.lines}")
        assert ex.results()["nodedown"].startswith(
            f"{{:exit, {{{{:nodedown, :\"{py.name}\"}}, {{GenServer, :call,")
    finally:
        await py.stop()

