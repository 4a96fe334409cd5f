"""Ping both ways and gen_server-style calls: latency and round trips per second."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import peers
from bench.scenarios import Bench
from bench.stats import percentile
from bench.table import Target
from erldist import Atom, Node

GEN_CALL = Atom("$gen_call")
REQUEST = (Atom("req"), b"hello")
ERL_REQUEST = '{req, <<"hello">>}'
NO_LISTENER = "n/a: no listener"


def _us(times_ns: list[int], q: float) -> float:
    return percentile(times_ns, q) / 1000


async def ping(b: Bench) -> None:
    """``net_adm:ping`` round trips, Python->Erlang and Erlang->Python."""
    c, n, res = b.cluster, b.plan.pings, b.results
    p50 = res.row("ping p50, Python→Erlang", "µs", target=Target(1.05))
    p99 = res.row("ping p99, Python→Erlang", "µs")
    back50 = res.row("ping p50, Erlang→Python", "µs", target=Target(1.3), peer_note=NO_LISTENER)
    back99 = res.row("ping p99, Erlang→Python", "µs", peer_note=NO_LISTENER)
    for _ in range(b.plan.reps):
        erl = await c.a.call(f"dist_bench:ping_times('{c.b.name}', {n}).")
        ours = await asyncio.wait_for(_py_pings(c.py, c.a.name, n), 300)
        back = await c.a.call(f"dist_bench:ping_times('{c.py.name}', {n}).")
        peer = (await peers.run("ping", c.a.name, c.epmd.port, n))["times"]
        for q, row, rev in ((0.5, p50, back50), (0.99, p99, back99)):
            row.erlang.append(_us(erl, q))
            rev.erlang.append(_us(erl, q))
            row.erldist.append(_us(ours, q))
            rev.erldist.append(_us(back, q))
            row.peer.append(_us(peer, q))


async def _py_pings(node: Node, peer: str, count: int) -> list[int]:
    assert await node.ping(peer)
    times = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        ok = await node.ping(peer)
        times.append(time.perf_counter_ns() - t0)
        assert ok
    return times


async def calls(b: Bench) -> None:
    """Calls to a gen_server on Erlang node a, from 1 and from 32 concurrent callers."""
    c, res = b.cluster, b.results
    server = f"{{bench_echo, '{c.a.name}'}}"
    p50 = res.row("call p50, Python→Erlang, 1 caller", "µs", target=Target(1.05))
    rate1 = res.row("calls/s, Python→Erlang, 1 caller", "1/s", lower_better=False)
    rate32 = res.row("calls/s, Python→Erlang, 32 callers", "1/s", lower_better=False)
    for _ in range(b.plan.reps):
        for callers, each, rate in ((1, b.plan.calls, rate1),
                                    (32, b.plan.calls_each_of_32, rate32)):
            total = callers * each
            ns, erl = await c.b.call(f"dist_bench:calls({server}, {callers}, {each}, "
                                     f"{ERL_REQUEST}).")
            seconds, ours = await asyncio.wait_for(
                _py_calls(c.py, c.a.name, callers, each), 300)
            peer = await peers.run("calls", c.a.name, c.epmd.port, callers, each)
            rate.erlang.append(total / (ns / 1e9))
            rate.erldist.append(total / seconds)
            rate.peer.append(total / peer["seconds"])
            if callers == 1:
                p50.erlang.append(_us(erl, 0.5))
                p50.erldist.append(_us(ours, 0.5))
                p50.peer.append(_us(peer["times"], 0.5))


async def _py_calls(node: Node, server_node: str, callers: int,
                    count: int) -> tuple[float, list[int]]:
    """What ``gen_server:call`` does, written with the public API: a mailbox per caller."""
    server = ("bench_echo", server_node)
    timings: list[list[int]] = [[] for _ in range(callers)]

    async def caller(times: list[int]) -> None:
        box = node.process()
        try:
            for _ in range(count):
                t0 = time.perf_counter_ns()
                ref = node.make_ref()
                await node.send(server, (GEN_CALL, (box.pid, ref), REQUEST))
                reply: Any = await box.receive()
                while reply[0] != ref:
                    reply = await box.receive()
                times.append(time.perf_counter_ns() - t0)
        finally:
            box.exit()

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(t) for t in timings))
    return time.perf_counter() - t0, timings[0]
