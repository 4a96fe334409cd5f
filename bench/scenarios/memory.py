"""Resident memory of a node with 1, 100 and 200 idle peers connected.

The Python node is a fresh ``bench.peerhost`` process hosting just that
node; the Erlang one a fresh ``erl``. Both connect to the same Python peers
and are measured from /proc after a short settle. Per-connection overhead is
(RSS at 200 - RSS at 1) / 199.
"""

from __future__ import annotations

import asyncio

from bench.cluster import PeerHost, rss_kib
from bench.scenarios import Bench
from bench.table import Target

SIZES = (1, 100, 200)
SETTLE_S = 0.5


async def memory(b: Bench) -> None:
    res = b.results
    rows = [res.row(f"RSS, {n} peer{'s' if n > 1 else ''} connected", "MiB",
                    peer_note="n/a: no listener") for n in SIZES]
    per = res.row("RSS per idle connection", "KiB", target=Target(64.0, ratio=False),
                  peer_note="n/a: no listener")
    names = b.healthy_names[: SIZES[-1]]
    for _ in range(b.plan.rss_reps):
        ours = await _python_rss(b, names)
        theirs = await _erlang_rss(b, names)
        for row, mine, erl in zip(rows, ours, theirs, strict=True):
            row.erldist.append(mine / 1024)
            row.erlang.append(erl / 1024)
        span = SIZES[-1] - SIZES[0]
        per.erldist.append((ours[-1] - ours[0]) / span)
        per.erlang.append((theirs[-1] - theirs[0]) / span)


async def _python_rss(b: Bench, names: list[str]) -> list[int]:
    hub = await PeerHost.start(b.cluster.reaper, 1, "rss", b.cluster.epmd.port,
                               uvloop=b.uvloop)
    try:
        sizes = []
        done = 0
        for size in SIZES:
            assert await hub.connect(names[done:size]) == size - done
            done = size
            await asyncio.sleep(SETTLE_S)
            sizes.append(hub.rss_kib())
        return sizes
    finally:
        await hub.stop()


async def _erlang_rss(b: Bench, names: list[str]) -> list[int]:
    erl = await asyncio.to_thread(b.cluster.erl, "rss")
    try:
        sizes = []
        done = 0
        for size in SIZES:
            batch = ",".join(f"'{n}'" for n in names[done:size])
            assert await erl.call(f"dist_bench:connect_all([{batch}]).") == size - done
            done = size
            await asyncio.sleep(SETTLE_S)
            sizes.append(rss_kib(erl.os_pid))
        return sizes
    finally:
        erl.stop()
