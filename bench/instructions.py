"""Instructions per ping and per message for each core, counted by callgrind.

Wall-clock figures on a shared machine move with the load; the number of
instructions a Python node executes per round trip does not. This runs one
Python node under ``valgrind --tool=callgrind`` (once per core) against a real
``erl`` node outside valgrind, and counts the instructions of the Python
process between two markers around each loop: ``net_adm:ping``-style pings,
``gen_server`` calls (with their monitor) to ``net_kernel``,
messages sent to a registered Erlang process, messages an Erlang process
sends to a Python mailbox, and ``net_adm:ping`` of the Python node from
Erlang. The node does not busy-wait (``busy_wait=0``): the loop turns it
spends polling depend on timing, and would be counted as work. Run:
``python -m bench.instructions``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PINGS = 300
MESSAGES = 2000
WARMUP = 30
CALLS = 300
LOOPS = ("ping", "call", "message sent", "message received", "pinged")
# Registers as `sink`; answers {go, Pid, N} with N {msg, I} messages to Pid, and
# {ping, Pid, N, Node} with N net_adm:ping(Node) in a row, then `pinged` to Pid.
ERL_SINK = (
    "register(sink, self()), "
    "Loop = fun L() -> receive {go, P, N} -> [P ! {msg, I} || I <- lists:seq(1, N)], L(); "
    "{ping, P, N, Node} -> [pong = net_adm:ping(Node) || _ <- lists:seq(1, N)], "
    "P ! pinged, L(); "
    "_ -> L() end end, Loop()."
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _marker() -> None:
    """A libc call callgrind dumps its counters before (``--dump-before=getppid``)."""
    os.getppid()


async def _child() -> None:
    from erldist import Atom, Node, core_name
    from erldist.config import Config

    cookie = secrets.token_hex(8)
    epmd_port = _free_port()
    # No busy waiting: its polling turns would be counted as work, and vary with timing.
    node = await Node.start("cgpy@127.0.0.1", cookie, epmd_port=epmd_port,
                            config=Config(busy_wait=0))
    env = {**os.environ, "ERL_EPMD_PORT": str(epmd_port)}
    erl = subprocess.Popen(
        ["erl", "-name", "cgerl@127.0.0.1", "-setcookie", cookie, "-start_epmd", "false",
         "-noshell", "-eval", ERL_SINK],
        env=env, stdin=subprocess.DEVNULL,
    )
    try:
        peer = "cgerl@127.0.0.1"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while not await node.ping(peer):
            if loop.time() > deadline:
                raise SystemExit("the erl node never answered")
            await asyncio.sleep(0.2)
        for _ in range(WARMUP):
            await node.ping(peer)
        _marker()
        for _ in range(PINGS):
            await node.ping(peer)
        _marker()
        print("ping", PINGS, flush=True)

        # A gen_server call with its monitor: {is_auth, Node} to net_kernel.
        request = (Atom("is_auth"), Atom(node.name))
        for _ in range(WARMUP):
            await node.call(("net_kernel", peer), request)
        _marker()
        for _ in range(CALLS):
            await node.call(("net_kernel", peer), request)
        _marker()
        print("call", CALLS, flush=True)

        for i in range(WARMUP):
            await node.send(("sink", peer), (Atom("msg"), i))
        _marker()
        for i in range(MESSAGES):
            await node.send(("sink", peer), (Atom("msg"), i))
        _marker()
        print("message sent", MESSAGES, flush=True)

        inbox = node.process("inbox")
        await node.send(("sink", peer), (Atom("go"), inbox.pid, WARMUP))
        for _ in range(WARMUP):
            await inbox.receive(timeout=60)
        _marker()
        await node.send(("sink", peer), (Atom("go"), inbox.pid, MESSAGES))
        for _ in range(MESSAGES):
            await inbox.receive(timeout=60)
        _marker()
        print("message received", MESSAGES, flush=True)

        me = Atom(node.name)
        await node.send(("sink", peer), (Atom("ping"), inbox.pid, WARMUP, me))
        await inbox.receive(timeout=60)
        _marker()
        await node.send(("sink", peer), (Atom("ping"), inbox.pid, PINGS, me))
        await inbox.receive(timeout=120)
        _marker()
        print("pinged", PINGS, flush=True)
        print("core", core_name(), flush=True)
    finally:
        erl.kill()
        erl.wait()
        await node.stop()


def count(core: str, loop: str = "asyncio") -> dict[str, float]:
    """Instructions per operation of each loop, with ``ERLDIST_CORE=core`` on ``loop``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--dump-before=getppid",
             f"--callgrind-out-file={tmp}/cg.out", sys.executable, "-m", "bench.instructions",
             "--child", "--loop", loop],
            cwd=REPO, env={**os.environ, "ERLDIST_CORE": core}, check=True,
            capture_output=True, text=True, timeout=1200,
        )
        dumps = sorted(Path(tmp).glob("cg.out.*"), key=lambda f: int(f.name.rsplit(".", 1)[1]))
        totals = []
        for dump in dumps:
            for line in dump.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    totals.append(int(line.split()[1]))
                    break
    lines = [line.rsplit(" ", 1) for line in out.stdout.splitlines()]
    if lines[-1] != ["core", core]:
        raise SystemExit(f"asked for the {core} core, got {lines[-1]}")
    # Dumps in pairs per loop: up to the first marker (ignored), then the loop.
    return {name: totals[2 * i + 1] / int(ops) for i, (name, ops) in enumerate(lines[:-1])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the Python node's event loop (uvloop must be installed)")
    args = parser.parse_args(argv)
    if args.child:
        if args.loop == "uvloop":
            importlib.import_module("uvloop").run(_child())
        else:
            asyncio.run(_child())
        return
    for tool in ("valgrind", "erl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    cores = ["pure"]
    try:
        import erldist_native  # noqa: F401
    except ImportError:
        print("erldist_native is not installed: the pure core only", file=sys.stderr)
    else:
        cores.append("native")
    counts = {core: count(core, args.loop) for core in cores}
    print(f"**Instructions per operation of the Python node** ({args.loop} loop, "
          f"callgrind; {PINGS} pings, "
          f"{CALLS} calls, {MESSAGES:,} messages `{{msg, I}}` each way, "
          "against `erl` outside valgrind)")
    print()
    print("| operation | " + " | ".join(f"erldist {c}" for c in cores)
          + (" | pure / native |" if len(cores) > 1 else " |"))
    print("|---|" + "--:|" * (len(cores) + (len(cores) > 1)))
    for name in LOOPS:
        cells = [f"{counts[c][name]:,.0f}" for c in cores]
        if len(cores) > 1:
            cells.append(f"{counts['pure'][name] / counts['native'][name]:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
