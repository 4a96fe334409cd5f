"""Calls, servers and rpc from plain threaded code (``erldist.cluster``), against
real Erlang nodes, with the telemetry for timed-out calls and targets that are down.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erldist import Atom, cluster, telemetry
from erldist.errors import CallTargetDown, CallTimeout, RpcTimeout, RpcUndefined
from erldist.runtime.gen_server import From, GenServer
from tests.support.erl_modules import CALLS_SRV, load_module
from tests.support.otp import EpmdProcess, ErlNode, unique_name, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("fresh_facade")]

COOKIE = "synccallscookie"


@pytest.fixture
def events() -> Iterator[list[telemetry.TelemetryEvent]]:
    seen: list[telemetry.TelemetryEvent] = []
    telemetry.attach(seen.append)
    yield seen
    telemetry.flush()
    telemetry.detach(seen.append)


class Greeter(GenServer):
    def __init__(self) -> None:
        self.casts: list[Any] = []

    def handle_call(self, request: Any, from_: From) -> Any:
        return (Atom("hello"), request)

    def handle_cast(self, request: Any) -> None:
        self.casts.append(request)


def test_the_sync_facade_calls_serves_and_rpcs_both_ways(
    release: str, epmd: EpmdProcess, tmp_path: Path, events: list[telemetry.TelemetryEvent]
) -> None:
    me = f"{unique_name('s')}@127.0.0.1"
    cluster.start_node(me, COOKIE, epmd_port=epmd.port)
    with ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                 epmd_port=epmd.port) as e:
        load_module(e, CALLS_SRV, tmp_path)
        assert e.eval("element(1, calls_srv:start(srv)).") == "ok"
        # Python calls Erlang, from several threads at once.
        results: list[Any] = []

        def caller(n: int) -> None:
            results.append(cluster.call(("srv", e.name), (Atom("echo"), n)))

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [(Atom("echoed"), n) for n in range(8)]
        cluster.cast(("srv", e.name), Atom("sync_cast"))
        assert cluster.call(("srv", e.name), Atom("casts")) == [Atom("sync_cast")]
        with pytest.raises(CallTimeout):
            cluster.call(("srv", e.name), (Atom("sleep"), 300, 1), timeout=0.1)
        with pytest.raises(CallTargetDown):
            cluster.call(("nobody", e.name), Atom("x"))
        telemetry.flush()
        assert telemetry.CallTimedOut(0.1, repr(("srv", e.name))) in events
        telemetry.flush()
        assert telemetry.CallTargetDown(repr(("nobody", e.name)), "Atom('noproc')") in events
        # Erlang calls a Python server and an exposed function.
        greeter = Greeter()
        cluster.start_server(greeter, name="greeter")
        assert e.eval(f"gen_server:call({{greeter, '{me}'}}, erl).") == "{hello,erl}"
        cluster.expose("sync", "double", lambda x: 2 * x)
        assert e.eval(f"rpc:call('{me}', sync, double, [21]).") == "42"
        assert cluster.unexpose("sync", "double")
        assert e.eval(f"rpc:call('{me}', sync, double, [21]).") == (
            "{badrpc,{'EXIT',{undef,[{sync,double,[21],[]}]}}}")
        # Python rpc into Erlang.
        assert cluster.rpc(e.name, "lists", "reverse", [[1, 2, 3]]) == [3, 2, 1]
        with pytest.raises(RpcUndefined):
            cluster.rpc(e.name, "lists", "no_such_function", [])
        with pytest.raises(RpcTimeout):
            cluster.rpc(e.name, "timer", "sleep", [1000], timeout=0.1)
        telemetry.flush()
        assert any(isinstance(ev, telemetry.CallTimedOut) and "timer:sleep/1" in ev.target
                   for ev in events)
        e.eval(f"gen_server:cast({{greeter, '{me}'}}, bye).")
        wait_until(lambda: greeter.casts == [Atom("bye")], 10, "the cast")
