"""A Python node in its own OS process, for tests that SIGSTOP or kill peers.

Run as ``python -m tests.support.pypeer NAME COOKIE EPMD_PORT``; prints
``ready`` once registered, and stops when its stdin closes or on SIGTERM. Its
process ``echo`` answers ``{From, X}`` with ``{EchoPid, X}``. Its process
``owner`` makes names from Python: ``{From, {global, Name}}`` registers a new
process under the global ``Name`` and ``{From, {pg, Group}}`` makes one join
``Group`` in the default ``pg`` scope; each answers ``{OwnerPid, Result, Pid}``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from erldist import Atom, Node, Pid, Process

REPO = Path(__file__).resolve().parents[2]


async def _echo(proc: Process) -> None:
    async for message in proc:
        match message:
            case (Pid() as sender, payload):
                await proc.send(sender, (proc.pid, payload))


async def _owner(proc: Process, node: Node) -> None:
    held: list[Process] = []  # the processes that hold the names stay alive
    async for message in proc:
        match message:
            case (Pid() as sender, (Atom("global"), name)):
                holder = node.process()
                held.append(holder)
                yes = await node.register_name(name, holder.pid)
                await proc.send(sender, (proc.pid, Atom("yes" if yes else "no"), holder.pid))
            case (Pid() as sender, (Atom("pg"), group)):
                member = node.process()
                held.append(member)
                node.pg().join(group, member.pid)
                await proc.send(sender, (proc.pid, Atom("ok"), member.pid))


async def _main(name: str, cookie: str, epmd_port: int) -> None:
    node = await Node.start(name, cookie, epmd_port=epmd_port, embedded_epmd=False)
    node.spawn(_echo, name="echo")
    node.spawn(_owner, node, name="owner")
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    eof = asyncio.ensure_future(reader.read())
    stop = asyncio.ensure_future(done.wait())
    await asyncio.wait([eof, stop], return_when=asyncio.FIRST_COMPLETED)
    await node.stop()


def spawn(name: str, cookie: str, epmd_port: int) -> subprocess.Popen[bytes]:
    """Start a peer process; the caller waits for its ``ready`` line."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.pypeer", name, cookie, str(epmd_port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
