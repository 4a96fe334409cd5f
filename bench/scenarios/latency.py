"""Ping, gen_server calls and erpc calls, both ways: latency and round trips per second."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench import peers
from bench.procs import cpu_seconds
from bench.scenarios import Bench
from bench.stats import percentile
from bench.table import Target
from erldist import Atom, From, GenServer, Node

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
    # CPU per round trip, pinger's and pinged's: what each side's busy waiting
    # (erl's schedulers by default, erldist's ``busy_wait``) spends for its latency.
    cpu: dict[str, list[tuple[float, float]]] = {"erl": [], "py": [], "back": []}
    for _ in range(b.plan.reps):
        with _cpu_per_op(cpu["erl"], c.a.os_pid, c.b.os_pid, n):
            erl = await c.a.call(f"dist_bench:ping_times('{c.b.name}', {n}).")
        with _cpu_per_op(cpu["py"], None, c.a.os_pid, n):
            ours = await asyncio.wait_for(_py_pings(c.py, c.a.name, n), 300)
        with _cpu_per_op(cpu["back"], c.a.os_pid, None, n):
            back = await c.a.call(f"dist_bench:ping_times('{c.py.name}', {n}).")
        peer = (await peers.run("ping", c.a.name, c.epmd.port, n))["times"]
        for q, row, rev in ((0.5, p50, back50), (0.99, p99, back99)):
            row.erlang.append(_us(erl, q))
            rev.erlang.append(_us(erl, q))
            row.erldist.append(_us(ours, q))
            rev.erldist.append(_us(back, q))
            row.peer.append(_us(peer, q))
    res.notes.append(
        "Ping, CPU per round trip (µs of user + system time, pinger + pinged, median over "
        "the runs; each side's figure includes its busy waiting: erl's schedulers' by "
        f"default, erldist's `busy_wait` of {c.py.config.busy_wait * 1e6:g} µs): "
        f"Erlang→Erlang {_cpu_pair(cpu['erl'])}, Python→Erlang {_cpu_pair(cpu['py'])}, "
        f"Erlang→Python {_cpu_pair(cpu['back'])}.")


@contextlib.contextmanager
def _cpu_per_op(into: list[tuple[float, float]], pinger: int | None, pinged: int | None,
                ops: int) -> Iterator[None]:
    """Appends (pinger's, pinged's) CPU seconds per operation; None is this process."""

    def now(os_pid: int | None) -> float:
        return time.process_time() if os_pid is None else cpu_seconds(os_pid)

    start = (now(pinger), now(pinged))
    yield
    into.append(((now(pinger) - start[0]) / ops, (now(pinged) - start[1]) / ops))


def _cpu_pair(runs: list[tuple[float, float]]) -> str:
    pinger = statistics.median(r[0] for r in runs) * 1e6
    pinged = statistics.median(r[1] for r in runs) * 1e6
    return f"{pinger:.0f} + {pinged:.0f}"


async def _py_pings(node: Node, peer: str, count: int) -> list[int]:
    assert await node.ping(peer)
    times = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        ok = await node.ping(peer)
        times.append(time.perf_counter_ns() - t0)
        assert ok
    return times


class _Echo(GenServer):
    """The Python twin of dist_bench's ``bench_echo``: every call answered with its request."""

    def handle_call(self, request: Any, from_: From) -> Any:
        return request


async def _serve_echo(node: Node) -> None:
    """``bench_echo`` and ``dist_bench:echo/1`` on the Python node, as on the erl nodes."""
    if node.whereis("bench_echo") is None:
        await node.start_server(_Echo(), name="bench_echo")
        node.expose("dist_bench", "echo", lambda x: x)


async def calls(b: Bench) -> None:
    """gen_server calls both ways, from 1 and from 32 concurrent callers.

    Erlang→Erlang (node b calling node a's ``bench_echo``) runs in the same
    repetition; Python→Erlang uses ``Node.call``, Erlang→Python calls a
    Python ``GenServer`` with ``gen_server:call``.
    """
    c, res = b.cluster, b.results
    await _serve_echo(c.py)
    to_erl = f"{{bench_echo, '{c.a.name}'}}"
    to_py = f"{{bench_echo, '{c.py.name}'}}"
    rows = {
        (1, "py"): (res.row("call p50, Python→Erlang, 1 caller", "µs", target=Target(1.05)),
                    res.row("calls/s, Python→Erlang, 1 caller", "1/s", lower_better=False)),
        (32, "py"): (res.row("call p50, Python→Erlang, 32 callers", "µs"),
                     res.row("calls/s, Python→Erlang, 32 callers", "1/s", lower_better=False)),
        (1, "erl"): (res.row("call p50, Erlang→Python, 1 caller", "µs", peer_note=NO_LISTENER),
                     res.row("calls/s, Erlang→Python, 1 caller", "1/s", lower_better=False,
                             peer_note=NO_LISTENER)),
        (32, "erl"): (res.row("call p50, Erlang→Python, 32 callers", "µs",
                              peer_note=NO_LISTENER),
                      res.row("calls/s, Erlang→Python, 32 callers", "1/s", lower_better=False,
                              peer_note=NO_LISTENER)),
    }
    for _ in range(b.plan.reps):
        for callers, each in ((1, b.plan.calls), (32, b.plan.calls_each_of_32)):
            total = callers * each
            ns, erl = await c.b.call(f"dist_bench:calls({to_erl}, {callers}, {each}, "
                                     f"{ERL_REQUEST}).")
            seconds, ours = await asyncio.wait_for(
                _py_calls(c.py, c.a.name, callers, each), 300)
            back_ns, back = await c.b.call(f"dist_bench:calls({to_py}, {callers}, {each}, "
                                           f"{ERL_REQUEST}).")
            peer = await peers.run("calls", c.a.name, c.epmd.port, callers, each)
            p50, rate = rows[(callers, "py")]
            back50, back_rate = rows[(callers, "erl")]
            for row in (p50, back50):
                row.erlang.append(_us(erl, 0.5))
            for row in (rate, back_rate):
                row.erlang.append(total / (ns / 1e9))
            p50.erldist.append(_us(ours, 0.5))
            rate.erldist.append(total / seconds)
            back50.erldist.append(_us(back, 0.5))
            back_rate.erldist.append(total / (back_ns / 1e9))
            rate.peer.append(total / peer["seconds"])
            p50.peer.append(_us(peer["times"], 0.5))


async def _py_calls(node: Node, server_node: str, callers: int,
                    count: int) -> tuple[float, list[int]]:
    """``callers`` concurrent tasks, each making ``count`` calls with ``Node.call``."""
    server = ("bench_echo", server_node)
    timings: list[list[int]] = [[] for _ in range(callers)]

    async def caller(times: list[int]) -> None:
        for _ in range(count):
            t0 = time.perf_counter_ns()
            reply = await node.call(server, REQUEST, timeout=60)
            times.append(time.perf_counter_ns() - t0)
            assert reply == REQUEST

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(t) for t in timings))
    return time.perf_counter() - t0, timings[0]


async def rpcs(b: Bench) -> None:
    """``erpc:call`` round trips of ``dist_bench:echo/1``, one caller, both ways."""
    c, res, n = b.cluster, b.results, b.plan.calls
    await _serve_echo(c.py)
    no_rpc = "n/a: no rpc"
    p50 = res.row("rpc p50, Python→Erlang", "µs", peer_note=no_rpc)
    rate = res.row("rpcs/s, Python→Erlang", "1/s", lower_better=False, peer_note=no_rpc)
    back50 = res.row("rpc p50, Erlang→Python", "µs", peer_note=NO_LISTENER)
    back_rate = res.row("rpcs/s, Erlang→Python", "1/s", lower_better=False,
                        peer_note=NO_LISTENER)
    for _ in range(b.plan.reps):
        ns, erl = await c.b.call(f"dist_bench:rpcs('{c.a.name}', {n}, {ERL_REQUEST}).")
        seconds, ours = await asyncio.wait_for(_py_rpcs(c.py, c.a.name, n), 300)
        back_ns, back = await c.b.call(f"dist_bench:rpcs('{c.py.name}', {n}, {ERL_REQUEST}).")
        for row in (p50, back50):
            row.erlang.append(_us(erl, 0.5))
        for row in (rate, back_rate):
            row.erlang.append(n / (ns / 1e9))
        p50.erldist.append(_us(ours, 0.5))
        rate.erldist.append(n / seconds)
        back50.erldist.append(_us(back, 0.5))
        back_rate.erldist.append(n / (back_ns / 1e9))


async def _py_rpcs(node: Node, erl_node: str, count: int) -> tuple[float, list[int]]:
    assert await node.rpc(erl_node, "dist_bench", "echo", [REQUEST]) == REQUEST
    times = []
    t0 = time.perf_counter()
    for _ in range(count):
        t1 = time.perf_counter_ns()
        reply = await node.rpc(erl_node, "dist_bench", "echo", [REQUEST], timeout=60)
        times.append(time.perf_counter_ns() - t1)
        assert reply == REQUEST
    return time.perf_counter() - t0, times
