"""Finding F5: local floods against the embedded EPMD, over real sockets and real ``erl``.

The server runs on its own loop thread with its default limits; the flood comes
from plain blocking sockets in the test thread, as a hostile local process
would open them. What must hold: look-ups by others keep working during the
flood, the server's memory stays bounded, and a full registration table makes
``erl`` report an EPMD refusal, not a taken name.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator

import pytest

from erldist.protocol.epmd import Alive2Request, NodeEntry, encode_request
from erldist.runtime import epmd_client
from erldist.runtime.epmd_server import DEFAULT_MAX_REGISTRATIONS
from tests.interop.test_epmd_interop import ServerThread
from tests.support.otp import RELEASES, ErlNode, erl_path, unique_name, wait_until

pytestmark = pytest.mark.interop

#: Growth of this process's resident memory a flood may cause (server and
#: the flooding sockets together): measured at ~10 MB on a 2-core VM.
RSS_BOUND_MB = 100


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture
def embedded() -> Iterator[ServerThread]:
    # Both ends of every flooding socket live in this process.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    server = ServerThread()
    try:
        yield server
    finally:
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class IdleFlood:
    """A thread that keeps opening sockets that never speak, ``hold`` at a time."""

    def __init__(self, port: int, hold: int) -> None:
        self.port = port
        self.hold = hold
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        held: deque[socket.socket] = deque()
        try:
            while not self._stop.is_set():
                try:
                    held.append(socket.create_connection(("127.0.0.1", self.port), timeout=5))
                except OSError:
                    time.sleep(0.01)
                    continue
                self.opened += 1
                if len(held) > self.hold:
                    held.popleft().close()
        finally:
            for sock in held:
                sock.close()

    def __enter__(self) -> IdleFlood:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_an_idle_connection_flood_never_blocks_look_ups(embedded: ServerThread) -> None:
    server = embedded.server
    cap = server.max_connections
    alive = unique_name("flooded")
    before = rss_mb()
    with IdleFlood(embedded.port, hold=cap + 256) as flood:
        wait_until(lambda: flood.opened > cap + 256, 120, "the flood to pass the cap")
        assert server.connection_count <= cap
        slowest = 0.0
        for _ in range(30):  # a look-up by someone else, while the flood goes on
            started = time.monotonic()
            assert asyncio.run(epmd_client.names(epmd_port=embedded.port, timeout=5)) == []
            slowest = max(slowest, time.monotonic() - started)
        # A real node can register and be found while the flood goes on.
        with ErlNode("25", name=f"{alive}@127.0.0.1", epmd_port=embedded.port) as node:
            found = asyncio.run(epmd_client.port_please(alive, "127.0.0.1",
                                                        epmd_port=embedded.port, timeout=5))
            assert found is not None
            assert node.eval("erlang:is_alive().") == "true"
        grown = rss_mb() - before
        opened = flood.opened
    assert server.evictions > 0
    assert grown < RSS_BOUND_MB, f"RSS grew {grown:.0f} MB under the flood"
    print(f"idle flood: {opened} sockets against a cap of {cap}; slowest of 30 look-ups "
          f"{slowest * 1000:.0f} ms; RSS +{grown:.1f} MB")


def alive2(port: int, alive: str) -> socket.socket:
    """Register by hand with a blocking socket; the socket holds the name."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(encode_request(Alive2Request(NodeEntry(alive, 4000))))
    reply = b""
    while len(reply) < 6:
        chunk = sock.recv(6 - len(reply))
        assert chunk, "the embedded EPMD closed a registration within its cap"
        reply += chunk
    assert reply[:2] == b"v\x00"
    return sock


def erl_start(release: str, alive: str, epmd_port: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
    return subprocess.run(
        [erl_path(release), "-noshell", "-name", f"{alive}@127.0.0.1", "-start_epmd", "false",
         "-eval", "io:format(\"up ~s~n\", [node()]), halt()."],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )


@pytest.mark.parametrize("release", RELEASES)
def test_a_full_registration_table_is_not_reported_as_a_taken_name(
    release: str, embedded: ServerThread
) -> None:
    port = embedded.port
    holders = [alive2(port, f"squat{i}") for i in range(DEFAULT_MAX_REGISTRATIONS)]
    try:
        assert len(embedded.names()) == DEFAULT_MAX_REGISTRATIONS
        alive = unique_name("late")
        refused = erl_start(release, alive, port)
        said = refused.stdout + refused.stderr
        assert "seems to be in use" not in said, said
        assert "epmd_close" in said, said
        # The server stays up and useful to look-ups with a full table.
        listed = asyncio.run(epmd_client.names(epmd_port=port, timeout=10))
        assert len(listed) == DEFAULT_MAX_REGISTRATIONS
        holders.pop().close()
        wait_until(lambda: len(embedded.names()) < DEFAULT_MAX_REGISTRATIONS, 30,
                   "a slot to free up")
        started = erl_start(release, alive, port)
        assert f"up {alive}@127.0.0.1" in started.stdout, started.stdout + started.stderr
    finally:
        for sock in holders:
            sock.close()
