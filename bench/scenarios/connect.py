"""Cold connect: EPMD look-up plus handshake, to a node not connected before."""

from __future__ import annotations

import asyncio
import statistics
import time

from bench import peers
from bench.scenarios import Bench
from bench.table import Target
from erldist import Node


async def cold_connect(b: Bench) -> None:
    c, n = b.cluster, b.plan.connects
    row = b.results.row("cold connect (EPMD + handshake)", "ms", target=Target(1.5))
    for _ in range(b.plan.reps):
        erl = await c.a.call(f"dist_bench:connect_times('{c.b.name}', {n}).")
        ours = await asyncio.wait_for(_py_connects(c.py, c.b.name, n), 300)
        peer = await peers.run("connect", c.b.name, c.epmd.port, n)
        row.erlang.append(statistics.median(erl) / 1e6)
        row.erldist.append(statistics.median(ours) / 1e6)
        row.peer.append(statistics.median(peer["times"]) / 1e6)


async def _py_connects(node: Node, peer: str, count: int) -> list[int]:
    """Like ``dist_bench:connect_times/2``: disconnect, pause, then a timed connect."""
    times = []
    for _ in range(count):
        conn = node.connection(peer)
        if conn is not None:
            conn.close()
            await conn.closed
        await asyncio.sleep(0.03)
        t0 = time.perf_counter_ns()
        await node.connect(peer)
        times.append(time.perf_counter_ns() - t0)
    return times
