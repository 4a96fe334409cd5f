"""The other Python distribution libraries, run side by side with erldist.

Each runs in its own process (``python -m bench.peers LIBRARY OP ...``) from
the bench's virtual environment and prints one JSON line of raw timings.

- ``erldistpy`` (PyPI): a synchronous client: EPMD lookup, the v6 handshake
  and ``gen_server`` calls over one socket. It neither listens nor registers
  with EPMD, so nothing can ping it or dial it: it has no Erlang->Python
  ping and no Python->Python figures. It keeps one call in flight per
  connection and says "use one Node per worker", so 32 callers are 32
  threads, each with its own connection. It has no EPMD port option, so the
  worker points its lookup at the bench's private EPMD; it has no public
  one-way send or receive, so the message scenarios use its ``Channel``.
- ``py-interface`` (PyPI): probed, not measured: whether it imports, and
  whether its ping of an ``erl`` node completes a handshake.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from bench.cluster import COOKIE, HOST, REPO, unique
from erldist.protocol.flags import MANDATORY_25, DFlag

PEER = "erldistpy"


@dataclass(frozen=True)
class PeerInfo:
    """A library's version and what the table should say about it."""

    name: str
    version: str
    status: str


async def run(op: str, node: str, epmd_port: int, *args: int) -> Any:
    """Run ``op`` of the erldistpy worker against ``node``; its JSON answer."""
    code, out, err = await _python("-m", "bench.peers", PEER, op, node, str(epmd_port),
                                   *map(str, args), timeout=300)
    if code != 0:
        raise RuntimeError(f"{PEER} worker {op} failed ({code}): {err.strip()[-500:]}")
    return json.loads(out)


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


# --- the erldistpy worker ------------------------------------------------------------


class _Erldistpy:
    """One erldistpy connection to ``node``, and the terms it needs."""

    def __init__(self, node: str, epmd_port: int) -> None:
        lib = importlib.import_module("erldistpy")
        node_mod: Any = importlib.import_module("erldistpy.node")
        epmd = importlib.import_module("erldistpy.epmd")
        node_mod.lookup = functools.partial(epmd.lookup, port=epmd_port)
        self.lib = lib
        self.atom: Callable[[str], Any] = lib.Atom
        self.peer = node.partition("@")[0]
        self.ours = f"{unique('edp')}@{HOST}"
        self.conn = self.dial()
        self.pid = self.conn._our_pid

    def dial(self) -> Any:
        return self.lib.Node(our_name=self.ours, peer_name=self.peer, cookie=COOKIE,
                             peer_host=HOST)

    def reg_send(self, name: str, payload: Any) -> None:
        self.conn._channel.send_reg_send(self.pid, self.atom(name), payload)

    def send_to(self, pid: Any, payload: Any) -> None:
        self.conn._channel.send_control((2, self.atom(""), pid), payload)

    def receive(self) -> Any:
        self.conn._sock.settimeout(120)
        msg = self.conn._channel.recv_message()
        if msg is None:
            raise RuntimeError("peer closed the connection")
        return msg.payload


def _ping(node: str, epmd_port: int, count: int) -> Any:
    peer = _Erldistpy(node, epmd_port)
    request = (peer.atom("is_auth"), peer.atom(peer.ours))
    assert peer.conn.call("net_kernel", request) == peer.atom("yes")
    times = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        peer.conn.call("net_kernel", request)
        times.append(time.perf_counter_ns() - t0)
    return {"times": times}


def _connect(node: str, epmd_port: int, count: int) -> Any:
    peer = _Erldistpy(node, epmd_port)
    peer.conn.close()
    times = []
    for _ in range(count):
        time.sleep(0.03)
        t0 = time.perf_counter_ns()
        conn = peer.dial()
        times.append(time.perf_counter_ns() - t0)
        conn.close()
    return {"times": times}


def _send(node: str, epmd_port: int, count: int) -> Any:
    peer = _Erldistpy(node, epmd_port)
    seq = peer.atom("seq")
    t0 = time.perf_counter()
    peer.reg_send("bench_sink", (peer.atom("start"), peer.pid, count))
    for i in range(1, count + 1):
        peer.reg_send("bench_sink", (seq, i, b"hello"))
    assert peer.receive() == (peer.atom("done"), count)
    return {"seconds": time.perf_counter() - t0}


def _receive(node: str, epmd_port: int, count: int) -> Any:
    peer = _Erldistpy(node, epmd_port)
    peer.reg_send("bench_ctl", (peer.atom("run"), peer.pid, peer.atom("blast"),
                                [peer.pid, count]))
    _start, sender, n = peer.receive()
    for _ in range(n):
        peer.receive()
    peer.send_to(sender, (peer.atom("done"), n))
    _result, elapsed_ns = peer.receive()
    return {"ns": elapsed_ns}


def _calls(node: str, epmd_port: int, callers: int, count: int) -> Any:
    peers = [_Erldistpy(node, epmd_port) for _ in range(callers)]
    request = (peers[0].atom("req"), b"hello")
    times: list[list[int]] = [[] for _ in peers]
    gate = threading.Barrier(callers + 1)

    def caller(peer: _Erldistpy, out: list[int]) -> None:
        gate.wait()
        for _ in range(count):
            t0 = time.perf_counter_ns()
            peer.conn.call("bench_echo", request)
            out.append(time.perf_counter_ns() - t0)

    threads = [threading.Thread(target=caller, args=(p, t)) for p, t in zip(peers, times,
                                                                           strict=True)]
    for thread in threads:
        thread.start()
    gate.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - t0, "times": times[0]}


_OPS: dict[str, Callable[..., Any]] = {
    "ping": _ping, "connect": _connect, "send": _send, "receive": _receive, "calls": _calls,
}


# --- the py-interface probe ----------------------------------------------------------

# Run with py-interface's own event loop: alias what Python 3.10 removed, point
# its EPMD look-up at the bench's EPMD, ping the target, print what happened.
_PYI_PING = """
import collections, collections.abc, sys
collections.MutableMapping = collections.abc.MutableMapping
from py_interface import erl_epmd, erl_eventhandler, erl_node, erl_opts
target, epmd_port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
erl_epmd.ErlEpmd.__init__.__defaults__ = ("127.0.0.1", epmd_port)
opts = erl_opts.ErlNodeOpts(cookie=sys.argv[4], epmdPort=epmd_port)
node = erl_node.ErlNode(name, opts)
loop = erl_eventhandler.GetEventHandler()
answer = []
node.Ping(target, lambda result: (answer.append(result), loop.StopLooping()))
loop.AddTimerEvent(10, loop.StopLooping)
loop.Loop()
print(opts.GetDistrVersion(), opts.GetDistrFlags(), answer[0] if answer else "no answer")
"""


async def probe_py_interface(target: str, epmd_port: int) -> PeerInfo:
    """Does py-interface import, and does it complete a handshake with ``target``?

    It is asked to ping ``target`` (an OTP node); the flags it offers are
    compared with what OTP 25+ requires of every peer (``MANDATORY_25``).
    """
    found = version("py-interface")
    if found == "not installed":
        return PeerInfo("py-interface", found, "not installed")
    problems = []
    code, _out, err = await _python("-c", "import py_interface.erl_node")
    if code != 0:
        last = err.strip().splitlines()[-1] if err.strip() else "?"
        last = last.split(" (/")[0]  # the error without its file path
        problems.append(f"does not import on Python {sys.version_info.major}."
                        f"{sys.version_info.minor} ({last})")
    code, out, err = await _python("-c", _PYI_PING, target, str(epmd_port),
                                   f"{unique('pyi')}@{HOST}", COOKIE)
    if code != 0:
        problems.append(f"cannot run with that patched ({err.strip()[-200:]})")
    else:
        hs_version, flags, answer = out.split()
        missing = [f.name or "?" for f in DFlag if f & MANDATORY_25 and not f & int(flags)]
        if answer != "pong":
            problems.append(
                f"with that patched, its ping of OTP gets {answer}: it offers handshake "
                f"v{hs_version} without {', '.join(missing) or 'nothing missing'}, which "
                f"OTP 25+ requires, so OTP closes the connection"
            )
    status = "; ".join(problems) if problems else "connects"
    return PeerInfo("py-interface", found, status)


async def _python(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run this Python with ``args``: exit code, stdout, stderr. Killed if cut short."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers")
    parser.add_argument("library", choices=[PEER])
    parser.add_argument("op", choices=sorted(_OPS))
    parser.add_argument("node")
    parser.add_argument("epmd_port", type=int)
    parser.add_argument("args", type=int, nargs="*")
    ns = parser.parse_args()
    print(json.dumps(_OPS[ns.op](ns.node, ns.epmd_port, *ns.args)))


if __name__ == "__main__":
    main()
