"""``{global, Name}`` calls into Python, the seed's registry API, and a killed
Python node's names, among real Erlang nodes (OTP 25 and 28).

The Python server here is a hand-written process answering ``$gen_call`` with
``runtime.gen.reply`` (the server class of the process work is not used).
Erlang's ``gen_server:call({global, Name}, ...)`` below is the same
``gen:call`` through ``global:whereis_name`` that Elixir's
``GenServer.call({:global, name}, ...)`` makes; that one runs against a real
Elixir node in ``test_process_elixir.py`` (Debian's Elixir, on OTP 25).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from erldist.errors import (
    LookupNodeDown,
    LookupNotFound,
    RegistryAlreadyExists,
    RegistryInvalidArgument,
    RegistryNotOwned,
)
from erldist.registry import lookup, lookup_async, lookup_with_timeout, register, unregister
from erldist.runtime import gen
from erldist.runtime.process import Process
from erldist.runtime.router import Router
from erldist.term.types import Atom, Pid
from tests.interop.test_global_interop import COOKIE, _erl_pair, _is, _sees, _wait_for
from tests.interop.test_global_names_interop import _cluster
from tests.support import pypeer
from tests.support.aio import run
from tests.support.otp import EpmdProcess, unique_name

pytestmark = pytest.mark.interop


async def _adder(proc: Process, router: Router) -> None:
    async for message in proc:
        match message:
            case (Atom("$gen_call"), (Pid() as _caller, _) as from_, (Atom("add"), int(x), int(y))):
                gen.reply(router, proc.pid, from_, x + y)


def test_global_calls_into_python_and_the_registry_api(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            node = await _cluster(a, b, epmd)
            try:
                server = node.spawn(_adder, node.router)
                await register(node, "adder.1", server.pid)
                for erl in (a, b):
                    assert await erl.eval(
                        "gen_server:call({global, <<\"adder.1\">>}, {add, 2, 3}).") == "5"
                with pytest.raises(RegistryAlreadyExists):
                    await register(node, "adder.1", node.process().pid)
                with pytest.raises(RegistryInvalidArgument):
                    await register(node, "bad name", node.process().pid)
                assert lookup(node, "adder.1") == server.pid

                # A name Erlang holds cannot be unregistered from here.
                await a.eval("EH = spawn(fun() -> receive stop -> ok end end), "
                             "yes = global:register_name(<<\"erl.held\">>, EH).")
                await _wait_for(lambda: _known(node, "erl.held"), "erl.held in Python")
                with pytest.raises(RegistryNotOwned):
                    await unregister(node, "erl.held")
                await unregister(node, "adder.1")
                assert await a.eval("global:whereis_name(<<\"adder.1\">>).") == "undefined"

                # Polling lookup: found once Erlang registers it, else not found.
                with pytest.raises(LookupNotFound):
                    await lookup_with_timeout(node, "late", 200, 50)
                finder = asyncio.create_task(lookup_with_timeout(node, "late", 10_000, 20))
                await b.eval("LP = spawn(fun() -> receive stop -> ok end end), "
                             "yes = global:register_name(<<\"late\">>, LP).")
                assert str((await finder).node) == b.name

                # The awaitable lookup gives up as soon as the expected host goes.
                waiter = asyncio.create_task(
                    lookup_async(node, "never", 30_000, 1000, host=b.name))
                start = time.monotonic()
                b.node.stop()
                with pytest.raises(LookupNodeDown):
                    await waiter
                assert time.monotonic() - start < 15
            finally:
                await node.stop()

    run(scenario())


async def _known(node: object, name: str) -> bool:
    return node.whereis_name(name) is not None  # type: ignore[attr-defined]


def test_names_of_a_killed_python_node_vanish(release: str, epmd: EpmdProcess) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b):
            assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"
            for erl in (a, b):
                await erl.eval("{ok, _} = pg:start(pg), ok.")
            py_name = f"{unique_name('pyk')}@127.0.0.1"
            peer = pypeer.spawn(py_name, COOKIE, epmd.port)
            try:
                assert peer.stdout is not None
                line = await asyncio.to_thread(peer.stdout.readline)
                assert line.strip() == b"ready"
                for erl in (a, b):
                    assert await erl.eval(f"net_adm:ping('{py_name}').") == "pong"
                    await _wait_for(lambda e=erl: _sees(e, py_name), "the peer")
                    await erl.sync()
                # Erlang registers the Python echo process under global names.
                await a.eval(f"{{echo, '{py_name}'}} ! {{self(), hi}}, "
                             "EchoPid = receive {P, hi} -> P after 10000 -> none end, "
                             "yes = global:register_name(py_echo, EchoPid), ok.")
                assert await b.eval("node(global:whereis_name(py_echo)).") == f"'{py_name}'"
                # The Python node registers names of its own, and joins a pg group.
                for i, request in enumerate(("{global, py_own}", "{global, <<\"py.own\">>}",
                                             "{pg, py_grp}")):
                    assert await a.eval(f"{{owner, '{py_name}'}} ! {{self(), {request}}}, "
                                        f"receive {{_, Got{i}, _}} -> Got{i} "
                                        "after 10000 -> none end.") in ("yes", "ok")
                for erl in (a, b):
                    for name in ("py_own", "<<\"py.own\">>"):
                        await _wait_for(lambda e=erl, n=name: _is(
                            e, f"node(global:whereis_name({n}))", f"'{py_name}'"), name)
                    await _wait_for(lambda e=erl: _is(e, "length(pg:get_members(py_grp))", "1"),
                                    f"the python member on {erl.name}")
                peer.kill()
                for erl in (a, b):
                    for name in ("py_echo", "py_own", "<<\"py.own\">>"):
                        await _wait_for(lambda e=erl, n=name: _is(
                            e, f"global:whereis_name({n})", "undefined"),
                            f"{name} to go on {erl.name}")
                    await _wait_for(lambda e=erl: _is(e, "pg:get_members(py_grp)", "[]"),
                                    f"the killed node's pg member to go on {erl.name}")
                for erl in (a, b):
                    await erl.sync()
            finally:
                peer.kill()
                peer.wait()

    run(scenario())
