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

Removal times are from the event (exit, kill) to the moment the last Erlang
node answers ``undefined``, polled inside Erlang every millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from tests.support import pypeer
from tests.support.otp import EpmdProcess, ErlNode, unique_name

from erldist.runtime.node import Node
from erldist.term.types import Atom

COOKIE = "benchglobal"
_GSYNC_US = ("GSyncUs = fun() -> {T, ok} = timer:tc(global, sync, []), T end.")
_GONE_MS = ("GoneMs = fun(Ns) -> T0 = erlang:monotonic_time(millisecond), "
            "W = fun L() -> case [N || N <- Ns, global:whereis_name(N) =/= undefined] of "
            "[] -> ok; _ -> timer:sleep(1), L() end end, W(), "
            "erlang:monotonic_time(millisecond) - T0 end.")


async def _eval(erl: ErlNode, expr: str) -> str:
    return await asyncio.to_thread(erl.eval, expr)


async def _until(cond: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _gone_everywhere(erls: list[ErlNode], names: str, t0: float) -> float:
    """Seconds from ``t0`` until every Erlang node has forgotten each of ``names``
    (an Erlang list)."""
    await asyncio.gather(*(_eval(e, f"GoneMs({names}).") for e in erls))
    return time.monotonic() - t0


def _figures(label: str, seconds: list[float], what: str) -> str:
    ms = [s * 1000 for s in seconds]
    return (f"  {label:<22} median {statistics.median(ms):7.2f} ms   min {min(ms):7.2f} ms"
            f"   max {max(ms):7.2f} ms   ({what})")


async def run(release: str, names: int, runs: int, kill_names: int) -> None:
    epmd = EpmdProcess.start()
    erls: list[ErlNode] = []
    pys: list[Node] = []
    peer = None
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

        sync_s: list[float] = []
        for _ in range(runs):
            for erl in erls:
                sync_s.append(int(await _eval(erl, "GSyncUs().")) / 1e6)
        print(f"OTP {release}: 3 erl + 2 Python nodes, {2 * names} Python-held names")
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

        killed: list[float] = []
        for r in range(runs):
            name = f"{unique_name('k')}@127.0.0.1"
            peer = pypeer.spawn(name, COOKIE, epmd.port)
            assert peer.stdout is not None
            assert (await asyncio.to_thread(peer.stdout.readline)).strip() == b"ready"
            await _eval(erls[0], f"net_adm:ping('{name}').")
            # The peer registers its names from Python (its ``owner`` process).
            kill_list = "[" + ",".join(f"{{bench_kill, {r}, {n}}}" for n in range(kill_names)) + "]"
            assert await _eval(erls[0], f"[begin {{owner, '{name}'}} ! {{self(), {{global, N}}}}, "
                                        "receive {_, R, _} -> R after 10000 -> none end end "
                                        f"|| N <- {kill_list}].") \
                == "[" + ",".join(["yes"] * kill_names) + "]"
            # No wait for the full mesh: a kill may land while its connections are
            # still being made (a simultaneous connect's nok, see runtime/peers.py).
            for erl in erls:
                await _until(lambda e=erl, n=r, h=name: _is_on(
                    e, f"{{bench_kill, {n}, {kill_names - 1}}}", h), "the names")
            t0 = time.monotonic()
            peer.kill()
            killed.append(await _gone_everywhere(erls, kill_list, t0))
            peer.wait()
            peer = None
        print(_figures("names gone after kill", killed,
                       f"{runs} SIGKILLs of a node holding {kill_names} names"))
    finally:
        if peer is not None:
            peer.kill()
            peer.wait()
        for py in pys:
            await py.stop()
        for erl in erls:
            erl.stop()
        epmd.stop()


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
    args = parser.parse_args()
    asyncio.run(run(args.otp, args.names, args.runs, args.kill_names))


if __name__ == "__main__":
    main()
