"""Run every scenario against a fresh cluster and print one table."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from tests.support.otp import OtpMissing

from bench import peers
from bench.cluster import Cluster, PeerHost
from bench.procs import Reaper
from bench.scenarios import QUICK, Bench, Plan
from bench.scenarios.connect import cold_connect
from bench.scenarios.health import health
from bench.scenarios.latency import calls, ping, rpcs
from bench.scenarios.memory import memory
from bench.scenarios.messages import messages
from bench.scenarios.tls import tls
from bench.table import Results, render
from erldist import config, core_name

SCENARIOS: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "ping": ping, "calls": calls, "rpc": rpcs, "messages": messages, "connect": cold_connect,
    "health": health, "memory": memory, "tls": tls,
}
#: Healthy peer nodes (RSS needs 200), hosted 50 to a process.
HEALTHY_HOSTS, PER_HOST, SILENT = 4, 50, 25


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="erldist against Erlang/OTP and other Python nodes, one table.")
    parser.add_argument("--quick", action="store_true", help="the one-minute pass")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 3)")
    parser.add_argument("--otp", default="25", choices=("25", "28"),
                        help="the OTP release of the erl nodes (28: from .tools-venv)")
    parser.add_argument("--uvloop", action="store_true",
                        help="run the Python nodes on uvloop instead of asyncio's own loop")
    parser.add_argument("--busy-wait", type=float, metavar="SECONDS",
                        help="Config.busy_wait of the Python nodes in this process "
                             "(default: erldist's; 0: off)")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), metavar="SCENARIO",
                        help=f"run only these ({', '.join(SCENARIOS)})")
    return parser.parse_args(argv)


def _machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (f"{platform.machine()} {model}, nproc {len(os.sched_getaffinity(0))}, "
            f"{mem_kib / 2**20:.0f} GiB, Linux {platform.release()}")


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, check=False, cwd=Path(__file__).resolve().parents[1])
    return found.stdout.strip() or "?"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _run(ns: argparse.Namespace, reaper: Reaper) -> str:
    plan = QUICK if ns.quick else Plan()
    if ns.reps:
        plan = Plan(**{**plan.__dict__, "reps": ns.reps})
    try:
        return await _scenarios(ns, plan, reaper)
    finally:
        await reaper.areap()


async def _scenarios(ns: argparse.Namespace, plan: Plan, reaper: Reaper) -> str:
    chosen = ns.only or list(SCENARIOS)
    if ns.busy_wait is not None:
        config.configure(busy_wait=ns.busy_wait)  # every Python node here follows it
    started = time.monotonic()
    load_before = _load()
    print("bench: starting EPMD, erl nodes and Python peers", file=sys.stderr)
    cluster = await Cluster.start(reaper, ns.otp)
    port = cluster.epmd.port
    hosts = await asyncio.gather(
        *(PeerHost.start(reaper, PER_HOST, "pp", port, uvloop=ns.uvloop)
          for _ in range(HEALTHY_HOSTS)),
        PeerHost.start(reaper, SILENT, "ps", port, uvloop=ns.uvloop))
    bench = Bench(cluster, plan, Results(), healthy=list(hosts[:-1]), silent=hosts[-1],
                  uvloop=ns.uvloop)
    pyi = await peers.probe_py_interface(cluster.a.name, port)
    for n, name in enumerate(chosen, 1):
        print(f"bench: [{n}/{len(chosen)}] {name}", file=sys.stderr)
        await SCENARIOS[name](bench)
    for host in hosts:
        await host.stop()
    await cluster.stop()
    flags = [f for f, on in (("--quick", ns.quick), ("--uvloop", ns.uvloop),
                             (f"--otp {ns.otp}", ns.otp != "25"),
                             (f"--busy-wait {ns.busy_wait}", ns.busy_wait is not None)) if on]
    command = " ".join(["python -m bench", *flags])
    loop = f"uvloop {peers.version('uvloop')}" if ns.uvloop else "asyncio's own"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    otp = cluster.a.version.decode()
    lines = [
        f"erldist benchmark — {now} — `{command}` ({time.monotonic() - started:.0f} s)",
        f"machine: {_machine()}; load average {load_before} before, {_load()} after",
        f"Erlang/OTP {otp} (erts defaults, connect_all false); Python "
        f"{platform.python_version()}, {loop} event loop; "
        f"erldist {_commit()} ({core_name()} core, busy_wait "
        f"{config.get().busy_wait * 1e6:g} µs); "
        f"{peers.PEER} {peers.version(peers.PEER)}",
        f"runs: {plan.reps} per figure, each figure median [min-max] over the runs; "
        f"{plan.pings} pings, {plan.calls} calls (32 callers: {plan.calls_each_of_32} each), "
        f"{plan.messages:,} messages, {plan.connects} connects per run",
        "",
        render(bench.results, peers.PEER),
        "",
        f"{peers.PEER} {peers.version(peers.PEER)}: synchronous client, no listener; "
        "32 callers = 32 threads, one connection each.",
        f"{pyi.name} {pyi.version}: {pyi.status}.",
        *bench.results.notes,
    ]
    return "\n".join(lines)


def _event_loop(uvloop: bool) -> Callable[[Coroutine[Any, Any, str]], str]:
    """``asyncio.run``, or uvloop's equivalent."""
    if uvloop:
        module: Any = importlib.import_module("uvloop")
        return module.run  # type: ignore[no-any-return]
    return asyncio.run


def main(argv: list[str]) -> int:
    ns = _parse(argv)
    reaper = Reaper()
    try:
        print(_event_loop(ns.uvloop)(_run(ns, reaper)))
    except OtpMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        reaper.reap()
    return 0
