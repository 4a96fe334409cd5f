"""``health()`` over 10, 50 and 100 connected Python peers: all healthy, then
with a quarter of them silent (their process SIGSTOPped: connected, mute).

The node under test is a fresh erldist node in the bench process for each
case, connected to nothing but those peers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from bench.cluster import COOKIE, HOST, unique
from bench.scenarios import Bench
from bench.table import Target
from erldist import Node

SIZES = (10, 50, 100)


async def health(b: Bench) -> None:
    assert b.silent is not None
    res, deadline = b.results, b.plan.health_deadline
    peer_note = "n/a: no health()"
    for size in SIZES:
        quiet = size // 4
        ok = res.row(f"health(), {size} peers", "ms",
                     target=Target(50.0, ratio=False) if size == 100 else None,
                     peer_note=peer_note)
        mute = res.row(f"health(), {size} peers, {quiet} silent (deadline {deadline:g} s)",
                       "s", target=Target(deadline + 0.5, ratio=False), peer_note=peer_note)
        names = b.healthy_names[:size]
        for seconds in await _health_times(b, names, [], b.plan.health_runs):
            ok.erldist.append(seconds * 1000)
        names = b.healthy_names[: size - quiet] + b.silent.names[:quiet]
        os_pid = b.silent.pid
        mute.erldist.extend(await _health_times(b, names, b.silent.names[:quiet],
                                                b.plan.reps, stop_pid=os_pid))


async def _health_times(b: Bench, peers: list[str], silent: list[str], runs: int,
                        stop_pid: int | None = None) -> list[float]:
    """Seconds per ``health()`` call of a fresh node connected to ``peers``."""
    deadline = b.plan.health_deadline
    hub = await Node.start(f"{unique('hub')}@{HOST}", COOKIE,
                           epmd_port=b.cluster.epmd.port, embedded_epmd=False)
    try:
        await asyncio.gather(*(hub.connect(p) for p in peers))
        if stop_pid is not None:
            os.kill(stop_pid, signal.SIGSTOP)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            report = await hub.health(timeout=deadline)
            times.append(time.perf_counter() - t0)
            if set(report.unreachable_nodes) != set(silent):
                b.results.notes.append(
                    f"health() of {len(peers)} peers: {len(report.unreachable_nodes)} "
                    f"unreachable, expected {len(silent)}")
        return times
    finally:
        await hub.stop()
        if stop_pid is not None:
            os.kill(stop_pid, signal.SIGCONT)
