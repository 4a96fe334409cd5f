"""Many Python peer nodes in one OS process (``python -m bench.peerhost``).

The many-peer scenarios need 100-200 real peers; one interpreter per peer
would cost more than what is measured, so one process hosts ``--count``
erldist nodes on one event loop. Each node registers with the bench's EPMD
and runs a message sink (``bench.sink``). The first line printed is JSON
``{"pid": ..., "names": [...]}``; then each stdin line ``{"connect": [...]}``
makes the first node connect to those peers and prints ``{"connected": N}``.
Stdin closing (or SIGTERM) stops every node.

Bench peers stay a star around the node under test: the erldist mesh gossip
would have each peer dial every other one it hears of (4,950 links for 100
peers), which would measure the peers, not the node.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import sys
from typing import Any

from bench import sink
from erldist import Node
from erldist.errors import ConnectError


async def _connect_all(node: Node, names: list[str]) -> int:
    gate = asyncio.Semaphore(16)

    async def one(name: str) -> bool:
        async with gate:
            try:
                await node.connect(name)
            except ConnectError:
                return False
            return True

    return sum(await asyncio.gather(*(one(n) for n in names)))


async def _main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    nodes = [
        await Node.start(f"{args.prefix}{i}@127.0.0.1", args.cookie,
                         epmd_port=args.epmd_port, embedded_epmd=False, connect_all=False)
        for i in range(args.count)
    ]
    sinks = []
    for node in nodes:
        sinks.append(loop.create_task(sink.serve(node, node.process("bench_sink"))))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"pid": os.getpid(), "names": [n.name for n in nodes]}), flush=True)

    async def commands() -> None:
        while line := await reader.readline():
            request = json.loads(line)
            connected = await _connect_all(nodes[0], request["connect"])
            print(json.dumps({"connected": connected}), flush=True)

    done = loop.create_task(commands())
    stopped = loop.create_task(stop.wait())
    await asyncio.wait([done, stopped], return_when=asyncio.FIRST_COMPLETED)
    for node in nodes:
        await node.stop()
    for task in (*sinks, done, stopped):
        task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peerhost")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--epmd-port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    run: Any = importlib.import_module("uvloop").run if args.uvloop else asyncio.run
    run(_main(args))


if __name__ == "__main__":
    main()
