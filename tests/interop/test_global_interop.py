"""``global`` with a visible Python node among real Erlang nodes (OTP 25 and 28).

OTP's ``global:sync()`` waits for every visible node to finish global's sync
handshake, and global's locks are taken on every known node: a Python member
that did not speak the protocol would block both. These tests run two ``erl``
nodes and one visible Python node (whose name sorts last, so it is the "boss"
whose lock serializes the cluster's registrations) and check that ``sync``
returns ``ok`` within 5 s, that names registered on one Erlang node are seen
on the other, and that the Python node neither leaves Erlang nodes waiting
nor makes them drop anyone, also when it leaves and comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from erldist.runtime.global_compat import GlobalCompat
from erldist.runtime.node import Node
from tests.support.aio import run
from tests.support.otp import EpmdProcess, ErlNode, unique_name

# Each test runs once per OTP release through the ``release`` fixture
# (tests/interop/conftest.py: OTP 25 and 28, a missing one fails).
pytestmark = pytest.mark.interop

COOKIE = "globaltest"
SYNC_BUDGET_MS = 5000

# Bound once per erl node: global:sync() in a helper process, abandoned after T ms,
# so a blocked sync fails the test instead of hanging it.
_DEFINE_GSYNC = (
    "GSync = fun(T) -> Me = self(), "
    "W = spawn(fun() -> Me ! {gsync, global:sync()} end), "
    "receive {gsync, R} -> R after T -> exit(W, kill), timeout end end."
)


@dataclass
class Erl:
    """An ``erl`` node driven from async code (its calls block, so they run in a thread)."""

    node: ErlNode

    @property
    def name(self) -> str:
        return self.node.name

    async def eval(self, expr: str) -> str:
        return await asyncio.to_thread(self.node.eval, expr)

    async def sync(self) -> float:
        """Run ``global:sync()``; assert it returned ``ok`` in budget; return its seconds."""
        start = time.monotonic()
        result = await self.eval(f"GSync({SYNC_BUDGET_MS}).")
        took = time.monotonic() - start
        assert result == "ok", f"global:sync() on {self.name} gave {result} after {took:.1f} s"
        return took

    async def synced(self) -> set[str]:
        return _atoms(await self.eval("gen_server:call(global_name_server, get_synced)."))

    async def known(self) -> set[str]:
        return _atoms(await self.eval("gen_server:call(global_name_server, get_known)."))

    async def nodes(self) -> set[str]:
        return _atoms(await self.eval("nodes()."))

    def complaints(self) -> list[str]:
        """Log lines about global or partitions (global warns before it disconnects)."""
        return [line for line in self.node.log
                if "global" in line.lower() or "overlapping" in line.lower()]


def _atoms(text: str) -> set[str]:
    """Node names from a printed list of quoted atoms like ``['a@h','b@h']``."""
    return {part.strip("'") for part in text.strip("[]").split(",") if part}


@asynccontextmanager
async def _erl_pair(release: str, epmd: EpmdProcess) -> AsyncIterator[tuple[Erl, Erl]]:
    """Two unconnected ``erl`` nodes; the names sort before any ``py...`` name."""
    started: list[ErlNode] = []
    try:
        for prefix in ("a", "b"):
            erl = await asyncio.to_thread(
                ErlNode, release, name=f"{unique_name(prefix)}@127.0.0.1", cookie=COOKIE,
                epmd_port=epmd.port,
            )
            started.append(erl)
            await asyncio.to_thread(erl.eval, _DEFINE_GSYNC)
        yield Erl(started[0]), Erl(started[1])
    finally:
        for erl in started:
            erl.stop()


async def _python_node(name: str, epmd_port: int) -> Node:
    node = await Node.start(name, COOKIE, epmd_port=epmd_port)
    assert isinstance(node.global_compat, GlobalCompat)
    return node


async def _wait_for(cond_coro: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond_coro():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def _check_names_work(a: Erl, b: Erl, label: str) -> None:
    """Register on one Erlang node, find on the other, and the reverse; then clean up."""
    holder = f"Holder_{label}"
    assert await a.eval(f"{holder} = spawn(fun() -> receive stop -> ok end end), "
                        f"global:register_name({label}_a, {holder}).") == "yes"
    assert await b.eval(f"node(global:whereis_name({label}_a)).") == f"'{a.name}'"
    assert await a.eval(f"global:whereis_name({label}_a) =:= {holder}.") == "true"
    assert await b.eval(f"global:register_name({label}_a, self()).") == "no"
    assert await b.eval(f"global:register_name({label}_b, self()).") == "yes"
    assert await a.eval(f"node(global:whereis_name({label}_b)).") == f"'{b.name}'"
    assert await b.eval(f"global:trans({{{label}_res, self()}}, fun() -> in_trans end).") \
        == "in_trans"
    assert await a.eval(f"global:unregister_name({label}_a).") == "ok"
    assert await b.eval(f"global:unregister_name({label}_b).") == "ok"
    await _wait_for(lambda: _is(b, f"global:whereis_name({label}_a)", "undefined"),
                    f"{label}_a to vanish on {b.name}")


async def _is(erl: Erl, expr: str, want: str) -> bool:
    return await erl.eval(f"{expr}.") == want


def test_python_node_joins_a_synced_pair(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"
            await a.sync()
            await b.sync()
            # A name from before the Python node came, so the exchange carries one.
            assert await b.eval("Old = spawn(fun() -> receive stop -> ok end end), "
                                "global:register_name(old_name, Old).") == "yes"

            py_name = f"{unique_name('py')}@127.0.0.1"
            node = await _python_node(py_name, epmd.port)
            try:
                await node.connect(a.name)
                await node.connect(b.name)
                await _wait_for(lambda: _sees(a, py_name), f"{a.name} to see the Python node")
                await _wait_for(lambda: _sees(b, py_name), f"{b.name} to see the Python node")
                for erl in (a, b):
                    await erl.sync()
                    assert py_name in await erl.synced()
                    assert py_name in await erl.known()
                await _check_names_work(a, b, "first")
                assert await a.eval("node(global:whereis_name(old_name)).") == f"'{b.name}'"
                for erl, other in ((a, b), (b, a)):
                    assert await erl.nodes() == {other.name, py_name}
                    assert erl.complaints() == []
            finally:
                await node.stop()

            # Leaving takes nobody else down, and global stays usable. (The other
            # node's global may log that it "requested disconnect" from the leaver:
            # OTP logs that when any node leaves, so the logs are not checked here.)
            for erl, other in ((a, b), (b, a)):
                await _wait_for(lambda e=erl: _lacks(e, py_name), f"{erl.name} to drop it")
                assert await erl.nodes() == {other.name}
                await erl.sync()
            await _check_names_work(a, b, "after_leave")

            # The same name comes back (a new incarnation): a fresh sync with both.
            node = await _python_node(py_name, epmd.port)
            try:
                await node.connect(b.name)
                await node.connect(a.name)
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _sees(e, py_name), f"{erl.name} to see it")
                    await erl.sync()
                    assert py_name in await erl.synced()
                await _check_names_work(a, b, "rejoined")
            finally:
                await node.stop()

    run(scenario())


def test_erlang_nodes_meet_through_a_python_member(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            py_name = f"{unique_name('py')}@127.0.0.1"
            node = await _python_node(py_name, epmd.port)
            try:
                # The Python node knows both before they know each other.
                await node.connect(a.name)
                await node.connect(b.name)
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _sees(e, py_name), f"{erl.name} to see it")
                    await erl.sync()
                    assert await erl.synced() == {py_name}
                assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"
                for erl, other in ((a, b), (b, a)):
                    await erl.sync()
                    assert await erl.synced() == {other.name, py_name}
                await _check_names_work(a, b, "met")
                for erl, other in ((a, b), (b, a)):
                    assert await erl.nodes() == {other.name, py_name}
                    assert erl.complaints() == []
            finally:
                await node.stop()

    run(scenario())


async def _sees(erl: Erl, name: str) -> bool:
    return name in await erl.nodes()


async def _lacks(erl: Erl, name: str) -> bool:
    return name not in await erl.nodes()


def test_a_killed_lock_holder_frees_its_lock_everywhere(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"
            py_name = f"{unique_name('py')}@127.0.0.1"
            node = await _python_node(py_name, epmd.port)
            try:
                await node.connect(a.name)
                await node.connect(b.name)
                for erl in (a, b):
                    await _wait_for(lambda e=erl: _sees(e, py_name), f"{erl.name} to see it")
                    await erl.sync()
                # A process on a takes a lock on all three nodes, then dies holding it.
                assert await a.eval(
                    "Taker = spawn(fun() -> true = global:set_lock({doomed, me}), "
                    "receive _ -> ok end end), ok.") == "ok"
                try_lock = "global:set_lock({doomed, other}, [node() | nodes()], 0)"
                await _wait_for(lambda: _is(b, try_lock, "false"), "the lock to be taken")
                assert await a.eval("exit(Taker, kill).") == "true"
                await _wait_for(lambda: _is(b, try_lock, "true"), "the dead holder's lock to go",
                                timeout=8)
                assert await b.eval("global:del_lock({doomed, other}).") == "true"
            finally:
                await node.stop()

    run(scenario())
