"""A Python node in its own OS process, driven by JSON lines, for fault tests.

Run as ``python -m tests.support.faultpeer NAME COOKIE EPMD_PORT TICKTIME``
(possibly under ``ip netns exec``). It prints ``{"ready": NAME}`` once
registered, then one line per NodeUp/NodeDown (``{"event": "up"|"down",
"node": ..., "t": time.monotonic()}``; the monotonic clock is the same for
every process on the machine, namespaces included) and one answer per stdin
command:

- ``{"op": "ping", "node": N, "within": S}`` -> ``{"ping": bool}``
- ``{"op": "health", "within": S}`` -> ``{"health": {...}, "elapsed": s}``
- ``{"op": "seqs"}`` -> ``{"seqs": [...]}``: every ``N`` its ``sink`` process
  received as ``{seq, N}``, in arrival order
- ``{"op": "send", "node": N, "first": A, "last": B}`` -> ``{"sent": k}``:
  ``{seq, I}`` to ``{sink, N}`` for I in A..B, stopping at the first failure

Its ``echo`` process answers ``{From, X}`` with ``{EchoPid, X}``. Stdin
closing or SIGTERM stops the node.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any

from erldist import Atom, ConnectError, Node, NodeDown, NodeUp, Pid, Process
from erldist.config import Config

SEQ = Atom("seq")
SINK = Atom("sink")


def _say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def _echo(proc: Process) -> None:
    async for message in proc:
        match message:
            case (Pid() as sender, payload):
                await proc.send(sender, (proc.pid, payload))


async def _sink(proc: Process, seqs: list[int]) -> None:
    async for message in proc:
        match message:
            case (Atom("seq"), int(n)):
                seqs.append(n)


def _on_event(event: object) -> None:
    if isinstance(event, NodeUp | NodeDown):
        kind = "up" if isinstance(event, NodeUp) else "down"
        _say({"event": kind, "node": event.node, "t": time.monotonic()})


async def _command(node: Node, seqs: list[int], request: dict[str, Any]) -> dict[str, Any]:
    match request["op"]:
        case "ping":
            return {"ping": await node.ping(request["node"], timeout=request["within"])}
        case "health":
            began = time.monotonic()
            health = await node.health(timeout=request["within"])
            return {"health": {"connected": list(health.connected_nodes),
                               "reachable": list(health.reachable_nodes),
                               "unreachable": list(health.unreachable_nodes)},
                    "elapsed": time.monotonic() - began}
        case "seqs":
            return {"seqs": list(seqs)}
        case "send":
            sent = 0
            for n in range(request["first"], request["last"] + 1):
                try:
                    await node.send((SINK, request["node"]), (SEQ, n))
                except ConnectError:
                    break
                sent += 1
            return {"sent": sent}
    raise ValueError(f"unknown op {request['op']!r}")


async def _main(name: str, cookie: str, epmd_port: int, ticktime: float) -> None:
    node = await Node.start(name, cookie, epmd_port=epmd_port, embedded_epmd=False,
                            config=Config(net_ticktime=ticktime))
    node.add_listener(_on_event)
    seqs: list[int] = []
    node.spawn(_echo, name="echo")
    node.spawn(_sink, seqs, name="sink")
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _say({"ready": node.name})

    async def commands() -> None:
        while line := await reader.readline():
            _say(await _command(node, seqs, json.loads(line)))

    served = asyncio.ensure_future(commands())
    stop = asyncio.ensure_future(done.wait())
    await asyncio.wait([served, stop], return_when=asyncio.FIRST_COMPLETED)
    served.cancel()
    stop.cancel()
    await node.stop()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
