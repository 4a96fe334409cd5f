"""``erldist demo``: a real cluster on this machine, shown working and then removed.

Everything the demo starts is owned by it and undone by it. The EPMD is an
in-process ``EpmdServer`` on a free port (never the system's 4369), so it
vanishes with the demo, and so does every registration, since EPMD
registrations last as long as their connection. Nodes are child processes,
each in its own process group so a terminal's Ctrl-C reaches only the demo,
which then stops them in order; a ``finally`` and an ``atexit`` hook kill any
that are left. The Erlang node also halts when its stdin closes, so it goes
even if the demo itself is killed.

Nodes report their own view of the cluster: Python nodes run ``erldist node``
and the Erlang node a small ``-eval`` loop over ``net_kernel:monitor_nodes``,
both printing ``nodeup``/``nodedown`` lines that the demo reads. So "every
node sees every other" is what the nodes say, not what the demo assumes.
Every wait is for a condition, under a generous deadline.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from erldist.cli_watch import PeerStatus, format_ping, health_report, probe_peers, render_table
from erldist.errors import ErldistError
from erldist.events import ClusterEvent, NodeDown
from erldist.runtime.epmd_server import EpmdServer
from erldist.runtime.node import Node

__all__ = ["DemoError", "run_demo"]

HOST = "127.0.0.1"
#: Deadlines are generous: a small, busy machine may take seconds to boot a VM.
START_TIMEOUT = 45.0
MESH_TIMEOUT = 30.0
EVENT_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

_EVENT_LINE = re.compile(r"\b(nodeup|nodedown) (\S+)(?: \(([^)]*)\))?")

# The Erlang node: report node events as `erldist node` does, join through the
# seed, and halt when the demo's end of stdin closes.
_ERL_EVAL = """
net_kernel:monitor_nodes(true, [nodedown_reason]),
spawn(fun() -> io:get_line(""), erlang:halt(0) end),
io:format("otp ~s~n", [erlang:system_info(otp_release)]),
Join = fun J(0) -> io:format("cannot reach ~s~n", [SEED]), erlang:halt(1);
           J(N) -> case net_adm:ping(SEED) of pong -> ok; pang -> timer:sleep(200), J(N - 1) end
       end,
Join(150),
Loop = fun L() ->
  receive
    {nodeup, Node, _} -> io:format("nodeup ~s~n", [Node]);
    {nodedown, Node, Info} ->
      io:format("nodedown ~s (~p)~n", [Node, proplists:get_value(nodedown_reason, Info)])
  end,
  L()
end,
Loop().
"""

# Process groups of children not yet seen to exit; the atexit hook kills them.
_live_groups: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort when the demo exits without its cleanup (an error in the cleanup itself)."""
    for pgid in list(_live_groups):
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    _live_groups.clear()


class DemoError(ErldistError):
    """A step did not happen within its deadline; the message says which and why."""


@dataclass
class Member:
    """One node the demo started: its process and what it reports seeing."""

    name: str
    kind: str
    proc: asyncio.subprocess.Process
    sees: set[str] = field(default_factory=set)
    output: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    otp: str = ""
    killed: bool = False

    @property
    def label(self) -> str:
        return self.name.partition("@")[0]

    @property
    def exited(self) -> bool:
        return self.proc.returncode is not None


@dataclass(frozen=True)
class Seen:
    """A nodedown line some member printed, and when the demo read it."""

    member: str
    node: str
    reason: str
    at: float


def say(text: str = "") -> None:
    print(text, flush=True)


_OBSERVER = "the observer"


def _after(seconds: float) -> str:
    return f"{f'+{seconds * 1000:.0f}':>6} ms"


class Demo:
    """The demo's steps, and everything it started, so that all of it can be undone."""

    def __init__(self, python_nodes: int, erl: str | None, epmd_port: int) -> None:
        self.python_nodes = python_nodes
        self.erl = erl
        self.wanted_epmd_port = epmd_port
        self.loop = asyncio.get_running_loop()
        self.cookie = secrets.token_hex(16)
        self.members: dict[str, Member] = {}
        self.changed = asyncio.Event()
        self.nodedowns: list[Seen] = []
        self.epmd: EpmdServer | None = None
        self.observer: Node | None = None
        self.observed: list[tuple[float, ClusterEvent]] = []
        self.tmp: Path | None = None
        self.started = time.monotonic()
        self.interrupted = False

    # --- helpers ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self.epmd is not None
        return self.epmd.port

    def checkpoint(self) -> None:
        """Stop here if interrupted, in case the cancellation was lost on the way.

        Python 3.11's ``asyncio.wait_for`` can swallow a cancel that lands as
        its inner task finishes; the flag makes Ctrl-C stick regardless.
        """
        if self.interrupted:
            raise asyncio.CancelledError

    def step(self, n: int, text: str) -> None:
        self.checkpoint()
        say(f"[{n}/6] {text}")

    async def wait_for(self, cond: Callable[[], bool], timeout: float, what: str, *,
                       cleanup: bool = False) -> float:
        """Wait until ``cond()``; returns the seconds it took. Fails fast if a node dies.

        Waits of the ``cleanup`` are not cut short by an interrupt: they are its point.
        """
        start = self.loop.time()
        deadline = start + timeout
        while not cond():
            if not cleanup:
                self.checkpoint()
            for m in () if cleanup else self.members.values():
                if m.exited and not m.killed:
                    tail = "; ".join(m.output[-3:]) or "no output"
                    raise DemoError(f"{m.name} exited with status {m.proc.returncode} "
                                    f"while waiting for {what} (its last output: {tail})")
            if self.loop.time() >= deadline:
                raise DemoError(f"timed out after {timeout:g} s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                # Also poll: EPMD registrations change without telling us.
                async with asyncio.timeout(0.05):
                    await self.changed.wait()
        return self.loop.time() - start

    async def read_output(self, member: Member) -> None:
        """Follow a member's stdout: its OTP release, and the peers it says it sees."""
        assert member.proc.stdout is not None
        async for raw in member.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            member.output = [*member.output[-19:], line]
            if line.startswith("otp "):
                member.otp = line[4:]
            match = _EVENT_LINE.search(line)
            if match and match.group(2) in self.members:
                what, node, reason = match.groups()
                if what == "nodeup":
                    member.sees.add(node)
                else:
                    member.sees.discard(node)
                    self.nodedowns.append(Seen(member.name, node, reason or "", self.loop.time()))
            self.changed.set()
        await member.proc.wait()
        _live_groups.discard(member.proc.pid)
        self.changed.set()

    async def spawn(self, name: str, kind: str, argv: Sequence[str],
                    env: dict[str, str], *, stdin: int) -> Member:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True,
        )
        _live_groups.add(proc.pid)
        member = Member(name, kind, proc)
        self.members[name] = member
        member.reader = self.loop.create_task(self.read_output(member))
        return member

    def registered(self) -> set[str]:
        assert self.epmd is not None
        return {alive for alive, _ in self.epmd.names()}

    # --- steps ------------------------------------------------------------------------

    async def start_nodes(self, names: list[str], seed: str) -> None:
        """The seed (and the Erlang node) first; the rest once the seed is registered."""
        env = dict(os.environ, ERLDIST_COOKIE=self.cookie, PYTHONUNBUFFERED="1")

        async def python(name: str, *connect: str) -> None:
            argv = [sys.executable, "-m", "erldist", "node", name, "--listen-host", HOST,
                    "--epmd-port", str(self.port)]
            await self.spawn(name, "python", [*argv, "--connect", *connect] if connect else argv,
                             env, stdin=asyncio.subprocess.DEVNULL)

        await python(seed)
        if self.erl is not None:
            await self.start_erlang(f"erl1@{HOST}", seed)
        await self.wait_for(lambda: seed.partition("@")[0] in self.registered(),
                            START_TIMEOUT, f"{seed} to register with EPMD")
        for name in names[1:]:
            await python(name, seed)
        await self.wait_for(lambda: {m.partition("@")[0] for m in self.members}
                            <= self.registered(), START_TIMEOUT, "every node to register")

    async def start_erlang(self, name: str, seed: str) -> None:
        assert self.erl is not None
        # The cookie goes in a private HOME's .erlang.cookie, never on a command
        # line that `ps` shows to every user.
        self.tmp = Path(tempfile.mkdtemp(prefix="erldist-demo-"))
        cookie_file = self.tmp / ".erlang.cookie"
        cookie_file.write_text(self.cookie)
        cookie_file.chmod(0o400)
        env = dict(os.environ, HOME=str(self.tmp), ERL_EPMD_PORT=str(self.port))
        argv = [self.erl, "-noshell", "-name", name, "-start_epmd", "false",
                "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
                "-eval", _ERL_EVAL.replace("SEED", f"'{seed}'")]
        await self.spawn(name, "erlang", argv, env, stdin=asyncio.subprocess.PIPE)

    def meshed(self) -> bool:
        live = {n for n, m in self.members.items() if not m.killed}
        return all(self.members[n].sees >= live - {n} for n in live)

    async def show_health(self, was: int | None = None) -> list[PeerStatus]:
        """Ping every member from the observer and print the table; ``was``: reachable before."""
        assert self.observer is not None
        order = sorted(self.members.values(), key=lambda m: (m.kind != "python", m.name))
        statuses = await probe_peers(self.observer, [m.name for m in order], timeout=10.0)
        live = [m for m in self.members.values() if not m.killed]
        rows = []
        for s in statuses:
            m = self.members[s.node]
            kind = f"erlang {m.otp}".strip() if m.kind == "erlang" else m.kind
            sees = "-" if m.killed else f"{len(m.sees)}/{len(live) - 1}"
            pid = "-" if m.killed else str(m.proc.pid)
            detail = "killed" if m.killed else s.detail
            rows.append((s.node, kind, pid, sees, s.state, format_ping(s.ping_ms), detail))
        say(render_table(("NODE", "KIND", "OS PID", "SEES", "STATE", "PING", "DETAIL"), rows,
                         indent="      "))
        report = health_report(self.observer.name, statuses)
        before = "" if was is None else f" (was {was} reachable)"
        say(f"      health: {report.connected_count} connected, "
            f"{len(report.reachable_nodes)} reachable, "
            f"{len(report.unreachable_nodes)} unreachable{before}")
        return statuses

    async def kill_one(self, victim: Member) -> None:
        """SIGKILL ``victim``; print each NodeDown for it as the observer and members see it."""
        killed_at = self.loop.time()
        victim.killed = True
        os.killpg(victim.proc.pid, signal.SIGKILL)
        waiting = {m.name for m in self.members.values() if not m.killed} | {_OBSERVER}

        def report() -> bool:
            for at, event in self.observed:
                if _OBSERVER in waiting and isinstance(event, NodeDown) and \
                        event.node == victim.name:
                    waiting.discard(_OBSERVER)
                    reason = f" ({event.reason})" if event.reason else ""
                    say(f"      {_after(at - killed_at)}  the observer got "
                        f"NodeDown({victim.name}){reason}")
            for seen in self.nodedowns:
                # Older lines (say, a connection replaced while the mesh formed) are not news.
                if seen.member in waiting and seen.node == victim.name and seen.at >= killed_at:
                    waiting.discard(seen.member)
                    reason = f" ({seen.reason})" if seen.reason else ""
                    say(f"      {_after(seen.at - killed_at)}  {seen.member} printed "
                        f"nodedown {victim.name}{reason}")
            return not waiting

        await self.wait_for(report, EVENT_TIMEOUT, f"every node to see {victim.name} go down")

    async def stop_all(self) -> tuple[int, int]:
        """Stop the observer, then every member (SIGTERM, or EOF for erl); kill stragglers.

        Returns (stopped cleanly, killed).
        """
        if self.observer is not None:
            await self.observer.stop()
        for m in self.members.values():
            if m.exited:
                continue
            if m.kind == "erlang" and m.proc.stdin is not None:
                m.proc.stdin.close()
            else:
                with contextlib.suppress(ProcessLookupError):
                    m.proc.terminate()
        readers = {m.reader for m in self.members.values() if m.reader is not None}
        if readers:
            await asyncio.wait(readers, timeout=STOP_TIMEOUT)
        clean = killed = 0
        for m in self.members.values():
            if m.exited:
                clean += not m.killed
                continue
            killed += 1
            with contextlib.suppress(OSError):
                os.killpg(m.proc.pid, signal.SIGKILL)
            await m.proc.wait()
            _live_groups.discard(m.proc.pid)
        for m in self.members.values():
            if m.reader is not None and not m.reader.done():
                m.reader.cancel()
        return clean, killed

    async def close(self) -> tuple[int, int, int]:
        """Undo everything; returns (stopped cleanly, killed, registrations left)."""
        try:
            clean, killed = await self.stop_all()
            left = 0
            if self.epmd is not None:
                with contextlib.suppress(DemoError):
                    await self.wait_for(lambda: not self.registered(), 5.0, "EPMD to empty",
                                        cleanup=True)
                left = len(self.registered())
                await self.epmd.close()
                self.epmd = None
            return clean, killed, left
        finally:
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
            _kill_leftovers()

    async def run(self) -> None:
        n = self.python_nodes
        names = [f"py{i}@{HOST}" for i in range(1, n + 1)]
        seed = names[0]
        erl_note = "" if self.erl is None else " and a real Erlang node"
        say(f"erldist demo: {n} Python nodes{erl_note}, each its own OS process on this machine.")
        if self.erl is None:
            say("(no `erl` on the PATH: install Erlang/OTP to see a real Erlang node join too)")

        self.epmd = await EpmdServer.start(HOST, self.wanted_epmd_port)
        why = "a free port, so a system epmd is never touched" if not self.wanted_epmd_port \
            else "the port --epmd-port asked for"
        self.step(1, f"Started a private EPMD on {HOST}:{self.port} in this process ({why}).")

        began = self.loop.time()
        await self.start_nodes(names, seed)
        erl = " + erl1 (Erlang)" if self.erl is not None else ""
        self.step(2, f"Started {', '.join(m.partition('@')[0] for m in names)} (Python){erl}, "
                     "sharing a random cookie; all registered.")

        await self.wait_for(self.meshed, MESH_TIMEOUT, "the full mesh")
        self.step(3, f"They joined through {seed.partition('@')[0]} and meshed: each node "
                     f"reports the other {len(self.members) - 1} connected "
                     f"({self.loop.time() - began:.1f} s after the first start).")

        self.observer = await Node.start(f"erldist-demo@{HOST}", self.cookie, hidden=True,
                                         listen_host=HOST, epmd_port=self.port,
                                         embedded_epmd=False)
        self.observer.add_listener(lambda ev: self.observed.append((self.loop.time(), ev)))
        self.step(4, "Cluster health, pinged from a hidden observer node "
                     "(hidden: it is in nobody's nodes()):")
        before = await self.show_health()
        if not all(s.reachable for s in before):
            raise DemoError("not every node answered the observer's ping")

        victim = self.members[names[-1]]
        self.step(5, f"Killing {victim.label} with SIGKILL (no goodbye: the OS just closes "
                     "its sockets). NodeDown arrives:")
        await self.kill_one(victim)
        say("      Cluster health now:")
        await self.show_health(was=len(before))

        clean, killed, left = await self.close()
        forced = f", {killed} had to be killed" if killed else ""
        self.step(6, f"Stopped the observer, {clean} nodes{forced} and the EPMD: "
                     f"{left} registrations and no processes left.")
        say(f"Done in {time.monotonic() - self.started:.1f} s.")
        if left or killed:
            raise DemoError("the cluster did not shut down cleanly")


async def run_demo(*, python_nodes: int, with_erlang: bool, epmd_port: int | None) -> int:
    """Run the demo; Ctrl-C, SIGTERM or SIGHUP stop it, and everything it started, early."""
    erl = shutil.which("erl") if with_erlang else None
    demo = Demo(python_nodes, erl, epmd_port or 0)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def interrupt() -> None:
        if not demo.interrupted:  # a second Ctrl-C must not cut the cleanup short
            demo.interrupted = True
            main.cancel()

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in signals:
        loop.add_signal_handler(sig, interrupt)
    try:
        try:
            await demo.run()
        except asyncio.CancelledError:
            if not demo.interrupted:
                raise
            main.uncancel()  # the cancel was ours; let the cleanup's own timeouts work
            say("\nInterrupted: stopping everything the demo started...")
            await demo.close()
            say("Stopped; nothing is left behind.")
            return 130
        except BaseException:
            await demo.close()
            raise
        return 0
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
