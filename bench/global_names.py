"""``python -m bench.global_names``: ``global`` with Python members holding names.

Three ``erl`` nodes (OTP 25, or 28 with ``--otp 28``) and two Python nodes in
one cluster, the Python nodes holding ``--names`` global names each. Prints:

* ``global:sync()`` time on every Erlang node (median and max over runs);
* how long a Python node holding names takes from ``connect`` until
  ``global:sync()`` has returned on every Erlang node (its names with them);
* how long every Erlang node keeps a name after its Python process exits;
* how long every Erlang node keeps the names of a SIGKILLed Python node (a
  node in its own OS process that registered ``--kill-names`` names from
  Python, killed once every Erlang node lists them, which may be while its
  connections to the other nodes are still being made).

``--victim erl`` makes the SIGKILLed node a real ``erl`` registering its names
itself, in the same cluster and at the same moment: the control, OTP alone.
``--only-kills`` skips the other measurements; ``--kills N`` sets the number
of SIGKILLs (default ``--runs``).

Removal times are from the event (exit, kill) to the moment the last Erlang
node answers ``undefined``, polled inside Erlang every millisecond. When that
takes over a second, each Erlang node's ``sys_dist`` record of the killed node
(``net_kernel``'s connection state) at that second is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
from dataclasses import dataclass

from tests.support import pypeer
from tests.support.otp import EpmdProcess, ErlNode, unique_name

from erldist.runtime.node import Node
from erldist.term.types import Atom

COOKIE = "benchglobal"
_GSYNC_US = ("GSyncUs = fun() -> {T, ok} = timer:tc(global, sync, []), T end.")
# GoneMs(Names, Node) -> {Ms, Dump}: Dump is ``sys_dist``'s record of Node (its
# connection state) with where its owner (the handshake process) stands, taken
# once a second has passed with a name still there (``fast`` before).
_GONE_MS = ("GoneMs = fun(Ns, Nd) -> T0 = erlang:monotonic_time(millisecond), "
            "Snap = fun() -> [{C, catch erlang:process_info(element(5, C), "
            "current_stacktrace)} || C <- ets:lookup(sys_dist, Nd)] end, "
            "W = fun L(D) -> case [N || N <- Ns, global:whereis_name(N) =/= undefined] of "
            "[] -> D; _ -> timer:sleep(1), "
            "L(case {D, erlang:monotonic_time(millisecond) - T0 > 1000} of "
            "{fast, true} -> Snap(); _ -> D end) end end, "
            "Dump = W(fast), {erlang:monotonic_time(millisecond) - T0, Dump} end.")


async def _eval(erl: ErlNode, expr: str) -> str:
    return await asyncio.to_thread(erl.eval, expr)


async def _until(cond: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _gone_everywhere(erls: list[ErlNode], names: str, t0: float,
                           node: str = "none") -> float:
    """Seconds from ``t0`` until every Erlang node has forgotten each of ``names``
    (an Erlang list); prints the ``sys_dist`` dumps of a removal slower than 1 s."""
    answers = await asyncio.gather(*(_eval(e, f"GoneMs({names}, '{node}').") for e in erls))
    seconds = time.monotonic() - t0
    if seconds > 1.0:
        print(f"  slow removal: {seconds * 1000:.0f} ms for {node}", flush=True)
        for erl, answer in zip(erls, answers, strict=True):
            print(f"    {erl.name}: {answer}", flush=True)
    return seconds


def _figures(label: str, seconds: list[float], what: str) -> str:
    ms = [s * 1000 for s in seconds]
    over = [sum(1 for m in ms if m > limit) for limit in (100, 1000)]
    return (f"  {label:<22} median {statistics.median(ms):7.2f} ms   min {min(ms):7.2f} ms"
            f"   max {max(ms):7.2f} ms   over 100 ms: {over[0]}, over 1 s: {over[1]}"
            f"   ({what})")


@dataclass
class _Victim:
    """The node to SIGKILL: a Python peer process or an ``erl``."""

    name: str
    proc: subprocess.Popen[bytes]
    erl: ErlNode | None = None

    def reap(self) -> None:
        if self.erl is not None:
            self.erl.stop()
        else:
            self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()


async def _victim_with_names(kind: str, release: str, epmd: EpmdProcess, erls: list[ErlNode],
                             *, names: str, count: int) -> _Victim:
    """A fresh node of ``kind`` that met ``erls[0]`` and registered ``names``
    (an Erlang list of ``count``) from its own side."""
    name = f"{unique_name('k')}@127.0.0.1"
    if kind == "erl":
        erl = await asyncio.to_thread(ErlNode, release, name=name, cookie=COOKIE,
                                      epmd_port=epmd.port)
        victim = _Victim(name, erl.proc, erl)
    else:
        victim = _Victim(name, pypeer.spawn(name, COOKIE, epmd.port))
    try:
        if victim.erl is None:
            assert victim.proc.stdout is not None
            assert (await asyncio.to_thread(victim.proc.stdout.readline)).strip() == b"ready"
        await _eval(erls[0], f"net_adm:ping('{name}').")
        if victim.erl is not None:
            await _eval(victim.erl, "[yes = global:register_name(N, spawn(fun() -> receive "
                                    f"stop -> ok end end)) || N <- {names}], ok.")
        else:  # the peer registers its names from Python (its ``owner`` process)
            assert await _eval(erls[0], f"[begin {{owner, '{name}'}} ! {{self(), "
                                        "{global, N}}, receive {_, R, _} -> R after 10000 -> "
                                        f"none end end || N <- {names}]."
                               ) == "[" + ",".join(["yes"] * count) + "]"
    except BaseException:
        victim.reap()
        raise
    return victim


async def _kills(kind: str, release: str, epmd: EpmdProcess, erls: list[ErlNode], *,
                 runs: int, kill_names: int) -> list[float]:
    """Seconds each of ``runs`` SIGKILLed nodes' names took to go from every ``erl``."""
    killed: list[float] = []
    for r in range(runs):
        kill_list = "[" + ",".join(f"{{bench_kill, {r}, {n}}}" for n in range(kill_names)) + "]"
        victim = await _victim_with_names(kind, release, epmd, erls, names=kill_list,
                                          count=kill_names)
        try:
            # No wait for the full mesh: a kill may land while its connections are
            # still being made (a simultaneous connect's nok, see runtime/peers.py).
            for erl in erls:
                await _until(lambda e=erl, n=r, h=victim.name: _is_on(
                    e, f"{{bench_kill, {n}, {kill_names - 1}}}", h), "the names")
            t0 = time.monotonic()
            victim.proc.kill()
            killed.append(await _gone_everywhere(erls, kill_list, t0, victim.name))
        finally:
            victim.reap()
    return killed


async def run(release: str, names: int, runs: int, kill_names: int, *, victim: str = "python",
              kills: int | None = None, only_kills: bool = False) -> None:
    epmd = EpmdProcess.start()
    erls: list[ErlNode] = []
    pys: list[Node] = []
    try:
        for prefix in ("a", "b", "c"):
            erl = await asyncio.to_thread(ErlNode, release, name=f"{unique_name(prefix)}@127.0.0.1",
                                          cookie=COOKIE, epmd_port=epmd.port)
            erls.append(erl)
            await _eval(erl, _GSYNC_US)
            await _eval(erl, _GONE_MS)
        for erl in erls[1:]:
            assert await _eval(erls[0], f"net_adm:ping('{erl.name}').") == "pong"
        for prefix in ("p", "q"):
            node = await Node.start(f"{unique_name(prefix)}@127.0.0.1", COOKIE,
                                    epmd_port=epmd.port)
            pys.append(node)
            await node.connect(erls[0].name)
        everyone = {e.name for e in erls} | {p.name for p in pys}
        for py in pys:
            await _until(lambda p=py: _meshed(p, everyone), f"{py.name} meshed")
        for i, py in enumerate(pys):
            for n in range(names):
                assert await py.register_name(Atom(f"bench_{i}_{n}"), py.process().pid)
        print(f"OTP {release}: 3 erl + 2 Python nodes, {2 * names} Python-held names",
              flush=True)
        if not only_kills:
            await _others(release, epmd, erls, pys, names=names, runs=runs)
        killed = await _kills(victim, release, epmd, erls,
                              runs=runs if kills is None else kills, kill_names=kill_names)
        print(_figures("names gone after kill", killed,
                       f"{len(killed)} SIGKILLs of {'an erl' if victim == 'erl' else 'a Python'}"
                       f" node holding {kill_names} names"))
    finally:
        for py in pys:
            await py.stop()
        for erl in erls:
            erl.stop()
        epmd.stop()


async def _others(release: str, epmd: EpmdProcess, erls: list[ErlNode], pys: list[Node], *,
                  names: int, runs: int) -> None:
    """``global:sync()``, joins, and a name's removal after its process exits."""
    sync_s: list[float] = []
    for _ in range(runs):
        for erl in erls:
            sync_s.append(int(await _eval(erl, "GSyncUs().")) / 1e6)
    print(_figures("global:sync()", sync_s, f"{len(sync_s)} calls"))

    joins: list[float] = []
    for r in range(runs):
        joiner = await Node.start(f"{unique_name('j')}@127.0.0.1", COOKIE,
                                  epmd_port=epmd.port)
        try:
            for n in range(names):
                assert await joiner.register_name(Atom(f"join_{r}_{n}"),
                                                  joiner.process().pid)
            t0 = time.monotonic()
            await joiner.connect(erls[0].name)
            for erl in erls:
                await _until(lambda e=erl, j=joiner.name: _sees(e, j), "nodeup")
            await asyncio.gather(*(_eval(e, "GSyncUs().") for e in erls))
            joins.append(time.monotonic() - t0)
            for erl in erls:
                assert await _is_on(erl, f"join_{r}_0", joiner.name)
        finally:
            await joiner.stop()
    print(_figures("join with names, then", joins,
                   f"{runs} joins of a node holding {names} names, until "
                   "global:sync() returns on all 3"))

    base: list[float] = []
    for r in range(runs):
        joiner_erl = await asyncio.to_thread(
            ErlNode, release, name=f"{unique_name('ej')}@127.0.0.1", cookie=COOKIE,
            epmd_port=epmd.port)
        try:
            await _eval(joiner_erl, f"[yes = global:register_name({{ej, {r}, N}}, "
                                    "spawn(fun() -> receive stop -> ok end end)) "
                                    f"|| N <- lists:seq(1, {names})], ok.")
            t0 = time.monotonic()
            await _eval(joiner_erl, f"pong = net_adm:ping('{erls[0].name}').")
            for erl in erls:
                await _until(lambda e=erl, j=joiner_erl.name: _sees(e, j), "nodeup")
            await asyncio.gather(*(_eval(e, "GSyncUs().") for e in erls))
            base.append(time.monotonic() - t0)
        finally:
            joiner_erl.stop()
    print(_figures("same, an erl node", base, "baseline: OTP's own join"))

    exits: list[float] = []
    for r in range(runs):
        proc = pys[0].process()
        assert await pys[0].register_name(Atom(f"bench_exit_{r}"), proc.pid)
        t0 = time.monotonic()
        proc.exit(Atom("shutdown"))
        exits.append(await _gone_everywhere(erls, f"[bench_exit_{r}]", t0))
    print(_figures("name gone after exit", exits, f"{runs} exits"))


async def _meshed(node: Node, everyone: set[str]) -> bool:
    return set(node.nodes()) == everyone - {node.name}


async def _sees(erl: ErlNode, node: str) -> bool:
    return f"'{node}'" in await _eval(erl, "nodes().")


async def _is_on(erl: ErlNode, name: str, node: str) -> bool:
    # A fun's head binds afresh (the evaluator keeps every other binding).
    return await _eval(erl, "(fun(undefined) -> undefined; (Pid) -> node(Pid) end)"
                            f"(global:whereis_name({name})).") == f"'{node}'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--otp", default="25", choices=("25", "28"))
    parser.add_argument("--names", type=int, default=100, help="names per Python node")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--kill-names", type=int, default=10,
                        help="names the SIGKILLed node registers")
    parser.add_argument("--kills", type=int, default=None,
                        help="SIGKILLs (default: --runs)")
    parser.add_argument("--victim", default="python", choices=("python", "erl"),
                        help="the SIGKILLed node: a Python node, or an erl (OTP alone)")
    parser.add_argument("--only-kills", action="store_true",
                        help="measure the SIGKILLs only")
    args = parser.parse_args()
    asyncio.run(run(args.otp, args.names, args.runs, args.kill_names, victim=args.victim,
                    kills=args.kills, only_kills=args.only_kills))


if __name__ == "__main__":
    main()
