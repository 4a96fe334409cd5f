"""One-way small messages ``{seq, I, <<"hello">>}``: messages per second.

Every direction uses the same receiver protocol (``bench.sink`` and
``dist_bench:sink/0``); a run lasts from the first send until the sender
hears ``{done, N}``, so queued-but-unreceived messages never count.
"""

from __future__ import annotations

import asyncio
import time

from bench import peers, sink
from bench.scenarios import Bench
from bench.table import Target
from erldist import Node


async def messages(b: Bench) -> None:
    c, n, res = b.cluster, b.plan.messages, b.results
    out = res.row("messages/s, Python→Erlang", "1/s", lower_better=False, target=Target(1.0))
    back = res.row("messages/s, Erlang→Python", "1/s", lower_better=False, target=Target(0.7))
    local = res.row("messages/s, Python→Python", "1/s", lower_better=False,
                    peer_note="n/a: no listener")
    box = c.py.process("bench_pysink", maxsize=n + 16)
    receiver = asyncio.get_running_loop().create_task(sink.serve(c.py, box))
    python_peer = b.healthy[0].names[0]
    try:
        for _ in range(b.plan.reps):
            erl_ns = await c.a.call(f"dist_bench:blast({{bench_sink, '{c.b.name}'}}, {n}).")
            for row in (out, back, local):
                row.erlang.append(n / (erl_ns / 1e9))
            out.erldist.append(n / await _py_blast(c.py, ("bench_sink", c.a.name), n))
            back_ns = await c.a.call(f"dist_bench:blast({{bench_pysink, '{c.py.name}'}}, {n}).")
            back.erldist.append(n / (back_ns / 1e9))
            local.erldist.append(n / await _py_blast(c.py, ("bench_sink", python_peer), n))
            sent = await peers.run("send", c.a.name, c.epmd.port, n)
            out.peer.append(n / sent["seconds"])
            got = await peers.run("receive", c.a.name, c.epmd.port, n)
            back.peer.append(n / (got["ns"] / 1e9))
    finally:
        box.exit()
        await receiver
    if box.mailbox.dropped:
        res.notes.append(f"the Python sink dropped {box.mailbox.dropped} messages (mailbox full)")


async def _py_blast(node: Node, dest: tuple[str, str], count: int) -> float:
    """Seconds from the first send until the sink reports all ``count`` received."""
    box = node.process()
    try:
        t0 = time.perf_counter()
        await node.send(dest, (sink.START, box.pid, count))
        for i in range(1, count + 1):
            await node.send(dest, (sink.SEQ, i, sink.HELLO))
        reply = await box.receive(timeout=300)
        elapsed = time.perf_counter() - t0
    finally:
        box.exit()
    assert reply == (sink.DONE, count), reply
    return elapsed
