"""Hostile peers over real sockets: the node stays up, fair and bounded.

F2: a crowd of sockets that connect and say nothing must not keep real peers
out. F3: a burst of costly but valid frames must not stall the event loop.
F4: a valid term that breaks an error message's ``repr`` must not escape
into asyncio. A real ``erl`` peer stays connected through each attack.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Iterator

import pytest

from erldist import Atom, Node
from erldist.term import encode
from tests.support import pypeer, rawpeer
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "attackcookie"


@pytest.fixture
def erl(epmd: EpmdProcess) -> Iterator[ErlNode]:
    node = ErlNode("25", name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    try:
        yield node
    finally:
        node.stop()


async def start(epmd: EpmdProcess) -> Node:
    return await Node.start(f"{unique_name('t')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                            embedded_epmd=False)


def ping_ms(erl: ErlNode, node: str) -> float:
    """``net_adm:ping`` from Erlang, timed inside Erlang, in milliseconds."""
    # Inside a fun, so no variable is left bound in the evaluator's shell.
    micros = erl.eval(f"(fun() -> {{Us, pong}} = timer:tc(net_adm, ping, ['{node}']), Us end)().",
                      60)
    return int(micros) / 1000


async def test_f4_a_term_that_breaks_repr_is_contained(
    epmd: EpmdProcess, erl: ErlNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    node = await start(epmd)
    try:
        assert await asyncio.to_thread(ping_ms, erl, node.name) >= 0
        attacker = await rawpeer.connect(f"{unique_name('x')}@127.0.0.1", COOKIE, "127.0.0.1",
                                         node.port, node.name)
        huge = int.from_bytes(b"\xff" * 4096, "big")  # within DecodeLimits.max_bigint_bytes
        await attacker.send(attacker.frame((huge,)), attacker.frame((huge, 1, 2)))
        assert await asyncio.wait_for(attacker.reader.read(), 10) == b""  # closed on us
        attacker.close()
        assert not [r for r in caplog.records if "Fatal error" in r.getMessage()]
        assert await asyncio.to_thread(ping_ms, erl, node.name) < 5000
        assert erl.name in node.nodes()
    finally:
        await node.stop()


async def test_f2_a_silent_crowd_cannot_keep_real_peers_out(
    epmd: EpmdProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="erldist")
    node = await start(epmd)
    crowd: list[asyncio.StreamWriter] = []

    async def renew() -> None:
        for writer in crowd:
            writer.close()
        crowd.clear()
        for _ in range(300):
            _, writer = await asyncio.open_connection("127.0.0.1", node.port)
            crowd.append(writer)

    try:
        times: list[float] = []
        end = time.monotonic() + 30
        next_wave = 0.0
        while time.monotonic() < end:
            if time.monotonic() >= next_wave:
                await renew()  # the crowd comes back every 7 s, as in the finding
                next_wave = time.monotonic() + 7
            # Each legitimate connect meets a full admission table of silent sockets
            # (topped up until full: the oldest of them time out after 2 s).
            full_by = time.monotonic() + 20
            while node.peers.handshaking < 256:
                assert time.monotonic() < full_by, "the admission table never filled"
                for _ in range(256 - node.peers.handshaking):
                    _, writer = await asyncio.open_connection("127.0.0.1", node.port)
                    crowd.append(writer)
                await asyncio.sleep(0.02)  # the node accepts them on its loop
            legit = await start(epmd)
            try:
                t0 = time.monotonic()
                await legit.connect(node.name)
                times.append(time.monotonic() - t0)
            finally:
                await legit.stop()
            await asyncio.sleep(1)
        assert max(times) < 1.0, times
        assert node.peers.evicted >= len(times)  # each one had to make its own room
        assert node.peers.handshaking <= 256
        warnings = [r for r in caplog.records if "handshakes in progress" in r.getMessage()]
        assert len(warnings) <= 5  # rate-limited: at most one line per 10 s
    finally:
        for writer in crowd:
            writer.close()
        await node.stop()


def _bomb() -> bytes:
    """A compressed list of 999,999 small integers, about 2 KB on the wire."""
    plain = encode([0] * 999_999)[1:]
    return bytes([80]) + len(plain).to_bytes(4, "big") + zlib.compress(plain, 9)


async def test_f3_costly_frames_do_not_stall_the_node(epmd: EpmdProcess, erl: ErlNode) -> None:
    name = f"{unique_name('v')}@127.0.0.1"
    victim = pypeer.spawn(name, COOKIE, epmd.port)
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == b"ready"
        assert await asyncio.to_thread(ping_ms, erl, name) >= 0
        port = await _port_of(epmd, name)
        attacker = await rawpeer.connect(f"{unique_name('x')}@127.0.0.1", COOKIE, "127.0.0.1",
                                         port, name)
        bomb = _bomb()
        # REG_SEND {6, From, '', nobody} with the bomb as payload: each frame is valid
        # and within the decode caps; 300 of them in one write.
        header = attacker.frame((6, attacker.pid(), Atom(""), Atom("nobody")), 0)[:-2]
        frame = header + bomb
        frame = (len(frame) - 4).to_bytes(4, "big") + frame[4:]
        blast = asyncio.ensure_future(attacker.send(*[frame] * 300))
        pings: list[float] = []
        while not blast.done() or len(pings) < 20:
            pings.append(await asyncio.to_thread(ping_ms, erl, name))
            await asyncio.sleep(0.1)
            if len(pings) > 200:
                break
        await blast
        rss_kib = _peak_rss_kib(victim.pid)
        attacker.close()
        print(f"F3: {len(pings)} pings, max {max(pings):.1f} ms, "
              f"p50 {sorted(pings)[len(pings) // 2]:.1f} ms; peak RSS {rss_kib} KiB")
        assert max(pings) < 1000, sorted(pings)[-5:]
        assert rss_kib < 200 * 1024, rss_kib
    finally:
        victim.kill()
        victim.wait(10)


async def _port_of(epmd: EpmdProcess, node: str) -> int:
    from erldist.runtime import epmd_client

    address = await epmd_client.port_please(node.split("@", maxsplit=1)[0], "127.0.0.1",
                                            epmd_port=epmd.port, timeout=10)
    assert address is not None
    return address.port


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


async def test_f6_mesh_gossip_dials_within_bounds_and_spends_no_budget(
    epmd: EpmdProcess, erl: ErlNode
) -> None:
    from erldist.names import atom_budget

    node = await start(epmd)
    try:
        spent = atom_budget().used
        attacker = await rawpeer.connect(f"{unique_name('x')}@127.0.0.1", COOKIE, "127.0.0.1",
                                         node.port, node.name)
        for wave in range(10):
            names = [Atom(f"ghost{wave}x{i}@127.0.0.1") for i in range(1000)]
            gossip = (Atom("erldist_mesh"), Atom("nodes"), names)
            await attacker.send(attacker.frame((6, attacker.pid(), Atom(""),
                                                Atom("erldist_mesh")), gossip))
        mesh = node._mesh
        assert mesh is not None
        dialer = mesh._dialer
        for _ in range(200):
            assert dialer.in_flight <= 8 and dialer.waiting <= 256
            await asyncio.sleep(0.05)
        assert dialer.started <= 1024 + 256 + 8
        assert atom_budget().used == spent  # a peer's words spent nothing
        assert await asyncio.to_thread(ping_ms, erl, node.name) < 5000
        attacker.close()
    finally:
        await node.stop()
