"""EPMD against real Erlang/OTP: real ``erl`` on our embedded server, us on real ``epmd``.

A missing OTP fails these tests (``OtpMissing``), it never skips them.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from erldist.errors import EpmdError
from erldist.runtime import epmd_client
from erldist.runtime.epmd_policy import NodeRegistration, register_node
from erldist.runtime.epmd_server import EpmdServer
from tests.support.otp import (
    RELEASES,
    EpmdProcess,
    ErlNode,
    epmd_path,
    free_port,
    unique_name,
    wait_until,
)

pytestmark = pytest.mark.interop

T = TypeVar("T")


class LoopThread:
    """An event loop on its own thread: blocking test code (erl, subprocesses) cannot stall it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class ServerThread(LoopThread):
    """Our embedded EPMD, served from a loop thread."""

    def __init__(self) -> None:
        super().__init__()
        self.server = self.call(EpmdServer.start("127.0.0.1", 0))
        self.port = self.server.port

    def names(self) -> list[tuple[str, int]]:
        async def read() -> list[tuple[str, int]]:
            return self.server.names()

        return self.call(read())

    def stop(self) -> None:
        try:
            self.call(self.server.close())
        finally:
            super().stop()


@pytest.fixture
def embedded() -> Iterator[ServerThread]:
    server = ServerThread()
    try:
        yield server
    finally:
        server.stop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def epmd_names_output(release: str, port: int) -> str:
    """What the real ``epmd -names`` prints for the EPMD on ``port``."""
    done = subprocess.run([epmd_path(release), "-port", str(port), "-names"],
                          capture_output=True, text=True, timeout=30, check=False)
    return done.stdout


def erl_node(release: str, alive: str, epmd_port: int, dist_port: int | None = None) -> ErlNode:
    extra: list[str] = []
    if dist_port is not None:
        extra = ["-kernel", "inet_dist_listen_min", str(dist_port),
                 "inet_dist_listen_max", str(dist_port)]
    return ErlNode(release, name=f"{alive}@127.0.0.1", epmd_port=epmd_port, extra_args=extra)


# --- real erl on our embedded EPMD -------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_real_erl_registers_and_is_listed(release: str, embedded: ServerThread) -> None:
    alive = unique_name("reg")
    dist_port = free_port()
    with erl_node(release, alive, embedded.port, dist_port) as node:
        assert embedded.names() == [(alive, dist_port)]
        assert run(epmd_client.names(epmd_port=embedded.port)) == [(alive, dist_port)]
        # OTP's NAMES client checks the first 4 bytes against its own EPMD port.
        listed = node.eval('{ok, L} = net_adm:names("127.0.0.1"), '
                           '[{list_to_atom(N), P} || {N, P} <- L].')
        assert listed == f"[{{{alive},{dist_port}}}]"
        # The creation it got from us is a 32-bit ALIVE2_X_RESP creation, not 1..3.
        assert int(node.eval("erlang:system_info(creation).")) > 3
        address = run(epmd_client.port_please(alive, "127.0.0.1", epmd_port=embedded.port))
        assert address is not None
        assert (address.port, address.highest_version) == (dist_port, 6)


@pytest.mark.parametrize(("release_a", "release_b"), [("25", "25"), ("28", "28"), ("25", "28")])
def test_two_real_erl_nodes_find_each_other(
    release_a: str, release_b: str, embedded: ServerThread
) -> None:
    a_alive, b_alive = unique_name("pa"), unique_name("pb")
    with erl_node(release_a, a_alive, embedded.port) as a, \
            erl_node(release_b, b_alive, embedded.port) as b:
        assert sorted(n for n, _ in embedded.names()) == sorted([a_alive, b_alive])
        assert a.eval(f"net_adm:ping('{b_alive}@127.0.0.1').") == "pong"
        assert b.eval("nodes().") == f"['{a_alive}@127.0.0.1']"
        # An unknown name is a clean PORT2 miss: pang at once, not a 7 s stall.
        started = time.monotonic()
        assert a.eval("net_adm:ping('nobody@127.0.0.1').") == "pang"
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("release", RELEASES)
def test_real_erl_registration_vanishes_when_it_dies(release: str, embedded: ServerThread) -> None:
    alive = unique_name("gone")
    node = erl_node(release, alive, embedded.port)
    try:
        assert [n for n, _ in embedded.names()] == [alive]
        killed = time.monotonic()
        node.proc.kill()
        wait_until(lambda: not embedded.names(), 30, f"{alive} to be unregistered")
        assert time.monotonic() - killed < 1.0
    finally:
        node.stop()


def test_real_epmd_names_reads_embedded_server(embedded: ServerThread) -> None:
    """``epmd -names`` (the real binary) against our server; ``format_names`` matches it."""
    async def register_two() -> list[epmd_client.Registration]:
        return [await epmd_client.register(alive, port, epmd_port=embedded.port)
                for alive, port in (("first", 4001), ("second", 4002))]

    registrations = embedded.call(register_two())
    try:
        for release in RELEASES:
            text = epmd_names_output(release, embedded.port)
            assert text == (f"epmd: up and running on port {embedded.port} with data:\n"
                            "name second at port 4002\nname first at port 4001\n")
            assert text == epmd_client.format_names(embedded.port, embedded.names())
    finally:
        for registration in registrations:
            embedded.call(registration.close())


# --- our client on the real epmd -----------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_client_registers_with_real_epmd(release: str) -> None:
    real_epmd = EpmdProcess.start(release)
    alive = unique_name("py")

    async def scenario() -> None:
        reg = await epmd_client.register(alive, 45678, epmd_port=real_epmd.port, timeout=10)
        try:
            assert 3 < reg.creation <= 0xFFFFFFFF
            listed = await asyncio.to_thread(epmd_names_output, release, real_epmd.port)
            assert f"name {alive} at port 45678\n" in listed
            assert listed.startswith(f"epmd: up and running on port {real_epmd.port} with data:")
            assert await epmd_client.names(epmd_port=real_epmd.port) == [(alive, 45678)]
            found = await epmd_client.port_please(alive, "127.0.0.1", epmd_port=real_epmd.port)
            assert found is not None
            assert (found.port, found.highest_version, found.lowest_version) == (45678, 6, 5)
            with pytest.raises(EpmdError) as taken:
                await epmd_client.register(alive, 45679, epmd_port=real_epmd.port)
            assert taken.value.kind == "name_taken"
        finally:
            await reg.close()
        # Closing the connection unregisters at once.
        assert await epmd_client.port_please(
            alive, "127.0.0.1", epmd_port=real_epmd.port) is None
        assert f"name {alive}" not in await asyncio.to_thread(
            epmd_names_output, release, real_epmd.port)

    try:
        run(scenario())
    finally:
        real_epmd.stop()


@pytest.mark.parametrize("release", RELEASES)
def test_client_finds_real_erl_node(release: str) -> None:
    epmd = EpmdProcess.start(release)
    try:
        alive = unique_name("find")
        dist_port = free_port()
        with erl_node(release, alive, epmd.port, dist_port) as node:
            address = run(epmd_client.port_please(alive, "127.0.0.1", epmd_port=epmd.port))
            assert address is not None
            assert address.port == dist_port
            assert address.highest_version == 6
            assert address.lowest_version in (5, 6)
            assert not address.hidden
            assert (alive, dist_port) in run(epmd_client.names(epmd_port=epmd.port))
            assert run(epmd_client.port_please("absent", "127.0.0.1", epmd_port=epmd.port)) is None
            assert node.eval("node().") == f"'{alive}@127.0.0.1'"
    finally:
        epmd.stop()


@pytest.mark.parametrize("release", RELEASES)
def test_real_erl_cannot_take_a_name_we_hold(
    release: str, embedded: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERL_CRASH_DUMP_SECONDS", "0")  # the failed boot writes no dump
    alive = unique_name("held")
    registration = embedded.call(epmd_client.register(alive, 4100, epmd_port=embedded.port))
    try:
        with pytest.raises(RuntimeError, match="in use"):
            erl_node(release, alive, embedded.port).stop()
        assert embedded.names() == [(alive, 4100)]
    finally:
        embedded.call(registration.close())


# --- the start-up policy with real OTP ---------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_policy_uses_real_epmd_then_takes_over_when_it_dies(release: str) -> None:
    """Registered with a real epmd that then dies: the node serves itself, erl finds it."""
    epmd = EpmdProcess.start(release)
    thread = LoopThread()
    alive = unique_name("pol")
    node: NodeRegistration | None = None
    try:
        node = thread.call(register_node(alive, 47001, epmd_port=epmd.port, timeout=10))
        assert node.server is None  # the real epmd answered
        assert f"name {alive} at port 47001\n" in epmd_names_output(release, epmd.port)
        creation = node.creation
        epmd.stop()
        wait_until(lambda: node is not None and node.restorations == 1, 30, "re-registration")
        assert node.server is not None and node.server.port == epmd.port
        assert node.creation == creation
        # Real OTP tools now talk to our embedded EPMD on the same port.
        assert epmd_names_output(release, epmd.port) == epmd_client.format_names(
            epmd.port, [(alive, 47001)])
        with ErlNode(release, name=f"{unique_name('look')}@127.0.0.1",
                     epmd_port=epmd.port) as erl:
            assert erl.eval(f'erl_epmd:port_please("{alive}", "127.0.0.1").') == (
                "{port,47001,6}")
    finally:
        if node is not None:
            thread.call(node.close())
        thread.stop()
        epmd.stop()
