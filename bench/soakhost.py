"""Python nodes for the soak (``python -m bench.soakhost``), several per OS process.

Each hosted node runs a process registered as ``soak`` that counts the
sequence-numbered messages ``{soak, FromNode, Incarnation, Epoch, Seq}`` it
receives (per sender incarnation and epoch: how many, the last sequence
number, and how many arrived at or below the last one, i.e. twice or out of
order) and answers ``gen_server`` calls ``{echo, X}`` with ``{ok, X}``.

Each node also sends to every other soak node, one task per peer. The epoch
of a (node, peer) pair is the number of NodeDowns this node has seen for that
peer: OTP promises delivery in order, once, only while a connection stays up,
so the soak counts loss separately for epochs that ended in a NodeDown.

Stdin lines: ``stop`` ends the sending (the counts freeze), ``report`` prints
one JSON line with every node's counts. Stdin closing or SIGTERM stops the
nodes. The first line printed is ``{"pid": ..., "names": [...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from erldist import Atom, CallError, ConnectError, Node, NodeDown, Pid, Process
from erldist.config import Config
from erldist.runtime.gen import reply

SOAK = Atom("soak")
ECHO = Atom("echo")
OK = Atom("ok")


@dataclass
class SoakNode:
    """One node's soak state: what it sent, received and called."""

    node: Node
    incarnation: int = field(default_factory=lambda: secrets.randbits(40))
    epoch: Counter[str] = field(default_factory=Counter)
    sent: dict[tuple[str, int], int] = field(default_factory=dict)
    received: dict[tuple[str, int, int], list[int]] = field(default_factory=dict)
    calls_ok: int = 0
    calls_failed: Counter[str] = field(default_factory=Counter)
    sending: bool = True

    def on_event(self, event: object) -> None:
        if isinstance(event, NodeDown):
            self.epoch[event.node] += 1

    async def serve(self, proc: Process) -> None:
        async for message in proc:
            match message:
                case (Atom("soak"), Atom() as sender, int(inc), int(ep), int(seq)):
                    entry = self.received.setdefault((str(sender), inc, ep), [0, 0, 0])
                    entry[0] += 1
                    if seq <= entry[1]:
                        entry[2] += 1
                    else:
                        entry[1] = seq
                case (Atom("$gen_call"), from_, (Atom("echo"), payload)):
                    reply(self.node.router, proc.pid, from_, (OK, payload))

    async def send_to(self, peer: str, interval: float, me: Pid) -> None:
        seqs: Counter[int] = Counter()
        while self.sending:
            ep = self.epoch[peer]
            seq = seqs[ep] + 1
            try:
                await self.node.send((SOAK, peer), (SOAK, self.node.atom, self.incarnation,
                                                    ep, seq), sender=me)
            except ConnectError:
                await asyncio.sleep(1.0)
                continue
            seqs[ep] = seq
            self.sent[(peer, ep)] = seq  # a send that returns after `stop` still counts
            await asyncio.sleep(interval)

    async def call_to(self, peer: str, interval: float) -> None:
        n = 0
        while self.sending:
            n += 1
            try:
                answer = await self.node.call((SOAK, peer), (ECHO, n), timeout=5.0)
            except CallError as exc:
                self.calls_failed[type(exc).__name__] += 1
                await asyncio.sleep(1.0)
                continue
            except ConnectError:
                self.calls_failed["ConnectError"] += 1
                await asyncio.sleep(1.0)
                continue
            if answer == (OK, n):
                self.calls_ok += 1
            else:
                self.calls_failed["wrong_answer"] += 1
            await asyncio.sleep(interval)

    def report(self) -> dict[str, Any]:
        connected = set(self.node.nodes())
        return {
            "node": self.node.name,
            "incarnation": self.incarnation,
            "sent": [[peer, ep, n, ep == self.epoch[peer] and peer in connected]
                     for (peer, ep), n in self.sent.items()],
            "received": [[s, inc, ep, *v] for (s, inc, ep), v in self.received.items()],
            "calls_ok": self.calls_ok,
            "calls_failed": dict(self.calls_failed),
            "connected": sorted(connected),
        }


async def _main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    config = Config(net_ticktime=args.ticktime)
    peers = args.peers.split(",")
    souls: list[SoakNode] = []
    tasks: list[asyncio.Task[None]] = []
    for name in args.names.split(","):
        node = await Node.start(name, args.cookie, epmd_port=args.epmd_port,
                                embedded_epmd=False, connect_all=False, config=config)
        soul = SoakNode(node)
        node.add_listener(soul.on_event)
        proc = node.process("soak")
        tasks.append(loop.create_task(soul.serve(proc)))
        souls.append(soul)
    for soul in souls:
        me = soul.node.process()
        for peer in peers:
            if peer != soul.node.name:
                tasks.append(loop.create_task(soul.send_to(peer, args.interval, me.pid)))
                tasks.append(loop.create_task(soul.call_to(peer, args.call_interval)))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"pid": os.getpid(), "names": [s.node.name for s in souls]}), flush=True)

    async def commands() -> None:
        while line := await reader.readline():
            match line.strip():
                case b"stop":
                    for soul in souls:
                        soul.sending = False
                    print(json.dumps({"stopped": True}), flush=True)
                case b"report":
                    print(json.dumps({"report": [s.report() for s in souls]}), flush=True)

    done = loop.create_task(commands())
    stopped = loop.create_task(stop.wait())
    await asyncio.wait([done, stopped], return_when=asyncio.FIRST_COMPLETED)
    for task in (*tasks, done, stopped):
        task.cancel()
    for soul in souls:
        await soul.node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soakhost")
    parser.add_argument("--names", required=True, help="comma-separated nodes to run here")
    parser.add_argument("--peers", required=True, help="comma-separated soak nodes")
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--epmd-port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--call-interval", type=float, default=1.0)
    parser.add_argument("--ticktime", type=float, default=4.0)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
