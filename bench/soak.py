"""The soak: many mixed nodes exchanging messages and calls while some are killed.

``python -m bench.soak --minutes 10`` (minutes, not part of CI). Python nodes
(``bench.soakhost``, a few per OS process) and real ``erl`` nodes (OTP 25 and
28) each send sequence-numbered messages to every other node and make
``gen_server`` calls to every other node, continuously. Every ``--kill-every``
seconds one Python host process or one ``erl`` is SIGKILLed and restarted
under the same names a few seconds later; the last ``--quiet`` seconds have
no kills so the mesh heals before the counts are read.

A message belongs to an epoch: the number of NodeDowns its sender had seen for
its receiver when it was sent. OTP delivers in order and once while a
connection stays up, and promises nothing across a NodeDown, so loss is
reported apart for epochs still connected at the end (must be 0) and for
epochs that ended in a NodeDown. Duplicates (a sequence number at or below
one already received, in any epoch) must be 0. The run also samples the
Python processes' RSS and open file descriptors: the count with the full mesh
up at the end is compared with the count when it first formed.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.otp import EpmdProcess, ErlNode

from bench.cluster import rss_kib
from bench.procs import Reaper, kill
from erldist.term import Atom, decode

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
COOKIE = "soakcookie"


def _erl_setup(name: str, peers: list[str], interval_ms: int, call_ms: int,
               ticktime: float) -> str:
    """The Erlang side of the soak, as one expression for the ``ErlNode`` evaluator.

    ``net_kernel:start/1`` ignores ``-kernel net_ticktime``: its third element,
    the tick interval in ms (a quarter of the tick time), sets it.
    """
    peer_list = ",".join(f"'{p}'" for p in peers)
    tick_ms = int(ticktime * 1000 / 4)
    return f"""
SoakTab = ets:new(soak_tab, [named_table, public, set]),
SoakInc = erlang:system_time(microsecond),
ets:insert(soak_tab, [{{inc, SoakInc}}, {{calls_ok, 0}}, {{calls_failed, 0}}]),
SoakServe = fun SoakServeLoop() ->
  receive
    {{soak, SFrom, SInc, SEp, SSeq}} ->
      SKey = {{recv, SFrom, SInc, SEp}},
      case ets:lookup(soak_tab, SKey) of
        [] -> ets:insert(soak_tab, {{SKey, 1, SSeq, 0}});
        [{{_, SC, SLast, SD}}] when SSeq =< SLast ->
          ets:insert(soak_tab, {{SKey, SC + 1, SLast, SD + 1}});
        [{{_, SC, _, SD}}] -> ets:insert(soak_tab, {{SKey, SC + 1, SSeq, SD}})
      end,
      SoakServeLoop();
    {{'$gen_call', SCallFrom, {{echo, SX}}}} -> gen:reply(SCallFrom, {{ok, SX}}), SoakServeLoop();
    _ -> SoakServeLoop()
  end
end,
register(soak, spawn(SoakServe)),
{{ok, _}} = net_kernel:start(['{name}', longnames, {tick_ms}]),
SoakSend = fun SoakSendLoop(SPeer, SE, SN) ->
  case ets:member(soak_tab, stop) of
    true -> ok;
    false ->
      receive
        {{nodedown, SPeer}} ->
          ets:insert(soak_tab, {{{{epoch, SPeer}}, SE + 1}}),
          timer:sleep(1000),
          monitor_node(SPeer, true),
          SoakSendLoop(SPeer, SE + 1, 0)
      after {interval_ms} ->
        {{soak, SPeer}} ! {{soak, node(), SoakInc, SE, SN + 1}},
        ets:insert(soak_tab, {{{{sent, SPeer, SE}}, SN + 1}}),
        SoakSendLoop(SPeer, SE, SN + 1)
      end
  end
end,
SoakCall = fun SoakCallLoop(CPeer, CN) ->
  case ets:member(soak_tab, stop) of
    true -> ok;
    false ->
      case catch gen_server:call({{soak, CPeer}}, {{echo, CN}}, 5000) of
        {{ok, CN}} -> ets:update_counter(soak_tab, calls_ok, 1), timer:sleep({call_ms});
        _ -> ets:update_counter(soak_tab, calls_failed, 1), timer:sleep(1000)
      end,
      SoakCallLoop(CPeer, CN + 1)
  end
end,
[begin
   spawn(fun() ->
     ets:insert(soak_tab, {{{{epoch, SP}}, 0}}), monitor_node(SP, true), SoakSend(SP, 0, 0)
   end),
   spawn(fun() -> SoakCall(SP, 1) end)
 end || SP <- [{peer_list}], SP =/= '{name}'],
ok.
"""


_ERL_REPORT = "{node(), nodes(), ets:tab2list(soak_tab)}."


def _erl_report(node: ErlNode) -> dict[str, Any]:
    """The soak counts of one ``erl``, in the shape ``bench.soakhost`` prints."""
    name, connected, rows = decode(node.eval_etf(_ERL_REPORT, 60))
    table: dict[Any, Any] = {}
    sent: list[list[Any]] = []
    received: list[list[Any]] = []
    for row in rows:
        key = row[0]
        if isinstance(key, tuple) and key[0] == Atom("recv"):
            received.append([str(key[1]), key[2], key[3], row[1], row[2], row[3]])
        elif isinstance(key, tuple) and key[0] == Atom("sent"):
            sent.append([str(key[1]), key[2], row[1]])
        else:
            table[key] = row[1] if len(row) > 1 else True
    up = {str(n) for n in connected}
    epochs = {str(k[1]): v for k, v in table.items() if isinstance(k, tuple)}
    return {
        "node": str(name),
        "incarnation": table[Atom("inc")],
        "sent": [[p, ep, n, ep == epochs.get(p, 0) and p in up] for p, ep, n in sent],
        "received": received,
        "calls_ok": table[Atom("calls_ok")],
        "calls_failed": {"failed": table[Atom("calls_failed")]},
        "connected": sorted(up),
    }


class Lines:
    """Lines of a child's stdout, read on a thread so waits have deadlines."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.queue: queue.Queue[bytes] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put(b"")

    def next_json(self, key: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            line = self.queue.get(timeout=max(0.01, deadline - time.monotonic()))
            if not line:
                raise RuntimeError("soak host exited")
            message = json.loads(line)
            if key in message:
                return message


@dataclass
class PyHost:
    """A ``bench.soakhost`` process running ``names``."""

    names: list[str]
    peers: list[str]
    epmd_port: int
    args: argparse.Namespace
    reaper: Reaper
    proc: subprocess.Popen[bytes] | None = None
    lines: Lines | None = None
    kills: int = 0

    def start(self) -> None:
        self.proc = self.reaper.process(subprocess.Popen(
            [sys.executable, "-m", "bench.soakhost", "--names", ",".join(self.names),
             "--peers", ",".join(self.peers), "--cookie", COOKIE,
             "--epmd-port", str(self.epmd_port), "--interval", str(self.args.interval),
             "--call-interval", str(self.args.call_interval),
             "--ticktime", str(self.args.ticktime)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO))
        self.lines = Lines(self.proc)
        self.lines.next_json("pid", 60)

    def command(self, word: str, key: str) -> Any:
        assert self.proc is not None and self.proc.stdin is not None and self.lines
        self.proc.stdin.write(word.encode() + b"\n")
        self.proc.stdin.flush()
        return self.lines.next_json(key, 60)[key]

    def kill(self) -> None:
        assert self.proc is not None
        kill(self.proc)
        self.kills += 1


@dataclass
class ErlPeer:
    name: str
    release: str
    peers: list[str]
    epmd_port: int
    args: argparse.Namespace
    reaper: Reaper
    node: ErlNode | None = None
    kills: int = 0

    def start(self) -> None:
        # Distribution starts only once `soak` is registered: a message that came
        # before would be dropped and counted as lost.
        self.node = ErlNode(self.release, cookie=COOKIE, epmd_port=self.epmd_port,
                            extra_args=("-setcookie", COOKIE, "-kernel", "net_ticktime",
                                        str(int(self.args.ticktime)), "-connect_all", "false"))
        self.reaper.process(self.node.proc)
        self.node.eval(_erl_setup(self.name, self.peers, int(self.args.interval * 1000),
                                  int(self.args.call_interval * 1000), self.args.ticktime), 60)
        assert self.node.eval("net_kernel:get_net_ticktime().") == str(int(self.args.ticktime))

    def kill(self) -> None:
        assert self.node is not None
        self.node.stop()
        self.kills += 1


@dataclass
class Figures:
    """What the soak counts, over every incarnation of every node."""

    snapshots: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    rss_peak_kib: int = 0
    fd_samples: list[tuple[float, int]] = field(default_factory=list)

    def keep(self, report: dict[str, Any]) -> None:
        self.snapshots[(report["node"], report["incarnation"])] = report


def _reports(hosts: list[PyHost], erls: list[ErlPeer]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for host in hosts:
        out.extend(host.command("report", "report"))
    for erl in erls:
        assert erl.node is not None
        out.append(_erl_report(erl.node))
    return out


def _sample(hosts: list[PyHost], figures: Figures) -> int:
    """Sample RSS (peak kept) and open fds of the Python host processes; total fds."""
    fds = 0
    for host in hosts:
        assert host.proc is not None
        try:
            figures.rss_peak_kib = max(figures.rss_peak_kib, rss_kib(host.proc.pid))
            fds += len(os.listdir(f"/proc/{host.proc.pid}/fd"))
        except (OSError, RuntimeError):
            continue  # killed between the choice and the read
    return fds


def _full_mesh(hosts: list[PyHost], erls: list[ErlPeer], everyone: list[str],
               timeout: float) -> tuple[float, list[str]]:
    """Wait until every node is connected to every other: seconds it took, and the
    links (``a -> b``: b not in a's ``nodes()``) still missing at the deadline."""
    start = time.monotonic()
    while True:
        missing = [f"{r['node']} -> {peer}" for r in _reports(hosts, erls)
                   for peer in everyone if peer != r["node"] and peer not in r["connected"]]
        if not missing or time.monotonic() - start >= timeout:
            return time.monotonic() - start, missing
        time.sleep(2)


def _analyse(final: list[dict[str, Any]], figures: Figures) -> dict[str, Any]:
    # What any incarnation of a receiver was last seen to hold (a killed one's
    # last sample is at most --sample seconds old).
    receivers: dict[str, Counter[tuple[str, int, int]]] = {}
    for snap in figures.snapshots.values():
        seen = receivers.setdefault(snap["node"], Counter())
        for s, inc, ep, n, _last, _dups in snap["received"]:
            seen[(s, inc, ep)] += n
    lost_clean = lost_broken = clean_pairs = 0
    losses: list[list[Any]] = []
    for r in final:
        for peer, ep, n, clean in r["sent"]:
            got = receivers.get(peer, Counter())[(r["node"], r["incarnation"], ep)]
            if clean:
                clean_pairs += 1
                lost_clean += n - got
                if got != n:
                    losses.append([r["node"], peer, ep, n, got])
            else:
                lost_broken += max(0, n - got)
    sent = sum(n for s in figures.snapshots.values() for _p, _e, n, _c in s["sent"])
    delivered = sum(v[3] for s in figures.snapshots.values() for v in s["received"])
    duplicated = sum(v[5] for s in figures.snapshots.values() for v in s["received"])
    calls_ok = sum(s["calls_ok"] for s in figures.snapshots.values())
    calls_failed = sum(sum(s["calls_failed"].values()) for s in figures.snapshots.values())
    return {"sent": sent, "delivered": delivered, "duplicated": duplicated,
            "lost_clean": lost_clean, "clean_pairs": clean_pairs,
            "clean_losses": losses,
            "unaccounted_after_nodedown": lost_broken,
            "calls_ok": calls_ok, "calls_failed": calls_failed}


def run(args: argparse.Namespace) -> dict[str, Any]:
    reaper = Reaper()
    epmd = EpmdProcess.start("25")
    reaper.on_exit(epmd.stop)
    tag = f"{os.getpid()}"
    py_names = [f"soakpy{tag}n{i}@{HOST}" for i in range(args.python_nodes)]
    erl_names = [f"soakerl{tag}n{i}@{HOST}" for i in range(args.erl_nodes)]
    everyone = py_names + erl_names
    per = args.nodes_per_host
    hosts = [PyHost(py_names[i:i + per], everyone, epmd.port, args, reaper)
             for i in range(0, len(py_names), per)]
    erls = [ErlPeer(n, "25" if i % 2 == 0 else "28", everyone, epmd.port, args, reaper)
            for i, n in enumerate(erl_names)]
    for host in hosts:
        host.start()
    for erl in erls:
        erl.start()
    figures = Figures()
    mesh_s, missing = _full_mesh(hosts, erls, everyone, 120)
    print(f"soak: mesh of {len(everyone)} nodes after {mesh_s:.1f} s, links missing: "
          f"{missing}", flush=True)
    fds_first = _sample(hosts, figures)
    rng = random.Random(args.seed)
    began = time.monotonic()
    end = began + args.minutes * 60
    next_kill = began + args.kill_every
    next_sample = began + args.sample
    kills = Counter[str]()
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_kill and now < end - args.quiet:
            candidates: list[PyHost | ErlPeer] = [*hosts, *erls]
            victim = rng.choice(candidates)
            victim.kill()
            kills["python_process" if isinstance(victim, PyHost) else "erl"] += 1
            time.sleep(args.down)
            victim.start()
            next_kill = time.monotonic() + args.kill_every
        if now >= next_sample:
            for report in _reports(hosts, erls):
                figures.keep(report)
            figures.fd_samples.append((now - began, _sample(hosts, figures)))
            next_sample = now + args.sample
        time.sleep(0.5)
    mesh_end_s, missing_end = _full_mesh(hosts, erls, everyone, 120)
    print(f"soak: mesh after the quiet period: {mesh_end_s:.1f} s, links missing: "
          f"{missing_end}", flush=True)
    for host in hosts:
        host.command("stop", "stopped")
    for erl in erls:
        assert erl.node is not None
        erl.node.eval("ets:insert(soak_tab, {stop}).")
    time.sleep(args.drain)
    final = _reports(hosts, erls)
    for report in final:
        figures.keep(report)
    fds_end = _sample(hosts, figures)
    result = _analyse(final, figures)
    result.update({
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.uname().nodename} ({os.cpu_count()} cores)",
        "minutes": args.minutes,
        "python_nodes": len(py_names), "python_processes": len(hosts),
        "erl_nodes": len(erl_names), "kills": dict(kills),
        "incarnations": len(figures.snapshots),
        "mesh_heal_s": round(mesh_end_s, 1), "links_missing_at_start": len(missing),
        "links_missing_at_end": len(missing_end),
        "python_rss_peak_mib": round(figures.rss_peak_kib / 1024, 1),
        "python_fds_first_mesh": fds_first, "python_fds_end": fds_end,
        "python_fds_max": max([fds_first, fds_end, *(f for _t, f in figures.fd_samples)]),
    })
    reaper.reap()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--python-nodes", type=int, default=16)
    parser.add_argument("--nodes-per-host", type=int, default=2)
    parser.add_argument("--erl-nodes", type=int, default=6)
    parser.add_argument("--interval", type=float, default=0.2, help="s between messages per pair")
    parser.add_argument("--call-interval", type=float, default=1.0, help="s between calls")
    parser.add_argument("--ticktime", type=float, default=4.0)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--down", type=float, default=3.0, help="s a killed node stays down")
    parser.add_argument("--quiet", type=float, default=45.0, help="last s without kills")
    parser.add_argument("--drain", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--sample", type=float, default=10.0, help="s between samples")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    result = run(args)
    print(json.dumps(result, indent=1), flush=True)
    ok = result["lost_clean"] == 0 and result["duplicated"] == 0
    print("soak:", "HELD" if ok else "FAILED", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
