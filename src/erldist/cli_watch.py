"""Probing peers and showing them: what ``erldist health``, ``watch`` and the demo share.

``watch`` is a small state machine per peer (up, down, unreachable) fed by
two sources: the node's NodeUp/NodeDown events, which arrive the moment a
connection opens or dies, and a ping round every interval, which measures
round trips, notices a peer that is connected but no longer answers, and
redials peers that are down. On a terminal the table is redrawn in place;
otherwise each change is one line, so the output can be logged or grepped.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from erldist import config
from erldist.errors import ConnectError, ConnectFailed
from erldist.events import ClusterEvent, NodeUp
from erldist.health import ClusterHealth
from erldist.runtime.node import Node

__all__ = [
    "PeerStatus",
    "connect_reason",
    "format_event",
    "format_ping",
    "health_report",
    "probe_peers",
    "render_table",
    "timestamp",
    "watch",
]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """A plain text table: columns padded to their widest cell, two spaces apart."""
    widths = [max(len(c) for c in col) for col in zip(headers, *rows, strict=True)]
    return "\n".join(
        indent + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    )


def timestamp(at: float | None = None) -> str:
    """Wall-clock time with milliseconds, for event lines."""
    now = time.time() if at is None else at
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


def format_event(event: ClusterEvent, *, hidden: bool = False) -> str:
    """One line per event; ``erldist node``, ``watch`` and the demo's parser share it."""
    if isinstance(event, NodeUp):
        kind = " (hidden)" if hidden else ""
        return f"{timestamp()} nodeup {event.node}{kind}"
    reason = f" ({event.reason})" if event.reason else ""
    return f"{timestamp()} nodedown {event.node}{reason}"


def connect_reason(exc: ConnectError) -> str:
    """What a failed connect observed, without the generic prefix."""
    if isinstance(exc, ConnectFailed) and exc.detail:
        return exc.detail
    return str(exc)


def format_ping(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.1f} ms"


@dataclass(frozen=True)
class PeerStatus:
    """One peer as a probe saw it: connected, answering, and how fast."""

    node: str
    connected: bool
    reachable: bool
    ping_ms: float | None = None
    detail: str = ""

    @property
    def state(self) -> str:
        if self.reachable:
            return "reachable"
        return "unreachable" if self.connected else "not connected"


async def probe_peers(node: Node, peers: Sequence[str], timeout: float) -> list[PeerStatus]:
    """Connect to and ping every peer in parallel, under one absolute deadline.

    A hidden node's ``health()`` covers only visible peers, and it has none,
    so probes measure each peer themselves.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    gate = asyncio.Semaphore(config.get().health_parallelism)

    def left() -> float:
        return max(0.05, deadline - loop.time())

    async def one(peer: str) -> PeerStatus:
        async with gate:
            try:
                await node.connect(peer, timeout=left())
            except ConnectError as exc:
                return PeerStatus(peer, False, False, detail=connect_reason(exc))
            start = time.perf_counter()  # uvloop's loop.time() counts whole ms
            if await node.ping(peer, timeout=left()):
                return PeerStatus(peer, True, True, (time.perf_counter() - start) * 1000)
            return PeerStatus(peer, True, False, detail="no answer to ping")

    return list(await asyncio.gather(*(one(p) for p in peers)))


def health_report(self_node: str, statuses: Sequence[PeerStatus]) -> ClusterHealth:
    """The seed's ``ClusterHealth`` for what a probe saw (peers it could not reach excluded)."""
    connected = tuple(s.node for s in statuses if s.connected)
    return ClusterHealth(
        self_node=self_node,
        is_distributed=True,
        connected_nodes=connected,
        connected_count=len(connected),
        reachable_nodes=tuple(s.node for s in statuses if s.reachable),
        unreachable_nodes=tuple(s.node for s in statuses if s.connected and not s.reachable),
    )


# --- watch -----------------------------------------------------------------------------


@dataclass
class _Peer:
    name: str
    state: str = "connecting"
    since: float = field(default_factory=time.time)
    ping_ms: float | None = None
    detail: str = ""
    check: asyncio.Task[None] | None = None


class _Watch:
    """The peers' states, the rounds that refresh them, and the view that shows them."""

    def __init__(self, node: Node, peers: Sequence[str], interval: float, tty: bool,
                 out: TextIO) -> None:
        self.node = node
        self.peers = {p: _Peer(p) for p in peers}
        self.interval = interval
        self.tty = tty
        self.out = out
        self.wake = asyncio.Event()
        self.drawn = 0
        self.output_closed = False

    def write(self, text: str) -> None:
        """Write and flush; a reader that went away ends the watch instead of raising here."""
        if self.output_closed:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            self.output_closed = True
            self.wake.set()

    def on_event(self, event: ClusterEvent) -> None:
        peer = self.peers.get(event.node)
        if peer is None:
            return
        if isinstance(event, NodeUp):
            self.change(peer, "up", "", format_event(event))
        else:
            peer.ping_ms = None
            self.change(peer, "down", event.reason or "nodedown", format_event(event))

    def change(self, peer: _Peer, state: str, detail: str, line: str | None = None) -> None:
        """Record a new state; a line is printed (plain mode) only when the state changes."""
        if state != peer.state:
            peer.since = time.time()
            if not self.tty:
                suffix = f" ({detail})" if detail else ""
                self.write((line or f"{timestamp()} {state} {peer.name}{suffix}") + "\n")
        peer.state = state
        peer.detail = detail
        self.wake.set()

    async def check(self, peer: _Peer) -> None:
        """One round for one peer: redial it if down, else time a ping."""
        budget = max(self.interval * 2, 2.0)
        if peer.name not in self.node.nodes("connected"):
            try:
                await self.node.connect(peer.name, timeout=budget)
            except ConnectError as exc:
                self.change(peer, "down", connect_reason(exc))
                return
        start = time.perf_counter()
        if await self.node.ping(peer.name, timeout=budget):
            peer.ping_ms = (time.perf_counter() - start) * 1000
            self.change(peer, "up", "")
        elif peer.name in self.node.nodes("connected"):
            peer.ping_ms = None
            self.change(peer, "unreachable", "connected, but no answer to ping")

    def start_round(self) -> None:
        for peer in self.peers.values():
            if peer.check is None or peer.check.done():
                peer.check = asyncio.get_running_loop().create_task(self.check(peer))

    def render(self) -> list[str]:
        counts = {s: sum(p.state == s for p in self.peers.values())
                  for s in ("up", "down", "unreachable", "connecting")}
        rows = [(p.name, p.state, format_ping(p.ping_ms), timestamp(p.since)[:8], p.detail)
                for p in self.peers.values()]
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("up", "down"))
        return [
            f"erldist watch  {time.strftime('%H:%M:%S')}  as {self.node.name} (hidden)  "
            f"every {self.interval:g} s  Ctrl-C quits",
            "",
            *render_table(("NODE", "STATE", "PING", "SINCE", "DETAIL"), rows).splitlines(),
            "",
            f"{len(self.peers)} peers: {summary}",
        ]

    def draw(self) -> None:
        """Redraw the view over the previous one: cursor up, clear below, write."""
        width = max(20, shutil.get_terminal_size().columns - 1)
        lines = [line[:width] for line in self.render()]
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        self.write(up + "\x1b[J" + "\n".join(lines) + "\n")
        self.drawn = len(lines)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        stopped = loop.create_task(stop.wait())
        next_round = loop.time()
        try:
            while not stop.is_set() and not self.output_closed:
                if loop.time() >= next_round:
                    self.start_round()
                    next_round = loop.time() + self.interval
                if self.tty:
                    self.draw()
                self.wake.clear()
                woken = loop.create_task(self.wake.wait())
                await asyncio.wait({stopped, woken}, timeout=max(0.0, next_round - loop.time()),
                                   return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            stopped.cancel()
            checks = [p.check for p in self.peers.values() if p.check is not None]
            for task in checks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*checks, return_exceptions=True)
            if self.tty:
                self.draw()


async def watch(node: Node, peers: Sequence[str], *, interval: float, tty: bool, out: TextIO,
                stop: asyncio.Event) -> int:
    """Show ``peers`` as seen from ``node`` until ``stop`` is set; returns the exit code."""
    view = _Watch(node, peers, interval, tty, out)
    node.add_listener(view.on_event)
    if tty:
        view.write("\x1b[?25l")  # hide the cursor while redrawing
    try:
        await view.run(stop)
    finally:
        node.remove_listener(view.on_event)
        if tty:
            view.write("\x1b[?25h")
    if view.output_closed:
        raise BrokenPipeError("stdout was closed")
    return 0
