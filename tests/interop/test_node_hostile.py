"""Hostile clients against a node's distribution port: it stays up and serving."""

from __future__ import annotations

import asyncio
import os

import pytest

from erldist import telemetry
from erldist.config import Config
from erldist.runtime.node import Node
from erldist.runtime.peers import MAX_HANDSHAKES
from tests.support.aio import run, wait_for
from tests.support.otp import EpmdProcess, unique_name

pytestmark = pytest.mark.interop

COOKIE = "hostilecookie"


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 20.0) -> bool:
    """True once the node closes our socket (EOF or reset) within the deadline."""
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass
    except ConnectionError:
        pass
    return True


def test_garbage_and_oversized_handshakes_are_cut_off(epmd: EpmdProcess) -> None:
    async def body() -> None:
        node = await Node.start(f"{unique_name('h')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                                embedded_epmd=False)
        other = await Node.start(f"{unique_name('h')}@127.0.0.1", COOKIE,
                                 epmd_port=epmd.port, embedded_epmd=False)
        try:
            for payload in (os.urandom(1000), b"\xff\xff" + b"N" * 70000, b"\x00\x05sbad!"):
                reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
                writer.write(payload)
                assert await closed_by_peer(reader)
                writer.close()
            await wait_for(lambda: node.peers.handshaking == 0, 20, "no handshake left behind")
            assert await other.ping(node.name) is True
        finally:
            await other.stop()
            await node.stop()

    run(body())


def test_handshake_flood_is_capped_and_the_node_recovers(epmd: EpmdProcess) -> None:
    async def body() -> None:
        node = await Node.start(f"{unique_name('h')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                                embedded_epmd=False)
        other = await Node.start(f"{unique_name('h')}@127.0.0.1", COOKIE,
                                 epmd_port=epmd.port, embedded_epmd=False)
        writers: list[asyncio.StreamWriter] = []
        try:
            for _ in range(MAX_HANDSHAKES + 44):
                _, writer = await asyncio.open_connection("127.0.0.1", node.port)
                writers.append(writer)
            await wait_for(lambda: node.peers.handshaking == MAX_HANDSHAKES, 20,
                           "the handshake table to fill up to its cap")
            await asyncio.sleep(0.2)  # more accepts have had their turn: still capped
            assert node.peers.handshaking == MAX_HANDSHAKES
            for writer in writers:
                writer.close()
            await wait_for(lambda: node.peers.handshaking == 0, 30, "the idle sockets to be reaped")
            assert await other.ping(node.name) is True
        finally:
            for writer in writers:
                writer.close()
            await other.stop()
            await node.stop()

    run(body())


def test_a_stalled_partial_handshake_is_cut_off_at_the_deadline(epmd: EpmdProcess) -> None:
    rejected: list[telemetry.HandshakeRejected] = []

    def record(event: telemetry.TelemetryEvent) -> None:
        if isinstance(event, telemetry.HandshakeRejected):
            rejected.append(event)

    async def body() -> None:
        node = await Node.start(f"{unique_name('h')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                                embedded_epmd=False, config=Config(connect_timeout=1.0))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
            # A send_name frame announced as 32 bytes, of which 5 arrive: then silence.
            # Nothing but the handshake deadline can end this connection.
            writer.write(b"\x00\x20N\x00\x00\x00\x00")
            await writer.drain()
            assert await closed_by_peer(reader, timeout=20)
            writer.close()
        finally:
            await node.stop()

    telemetry.attach(record)
    try:
        run(body())
        assert telemetry.flush()
    finally:
        telemetry.detach(record)
    assert [event.reason.split(":")[0] for event in rejected] == ["TIMED_OUT"]
