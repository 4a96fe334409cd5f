"""A simultaneous connect where our dial has not reached the peer yet (OTP 25 and 28).

The greater name keeps its own attempt and answers the other's ``nok``; an
Erlang node told ``nok`` then waits for our dial with no socket to watch, up
to its setup timeout (``net_setuptime``, 7 s). If our dial is still asking
EPMD it has sent nothing, so we take the peer's attempt instead: otherwise a
Python node killed in that window would stay "connecting" (and its global
names registered) on that Erlang node for 7 s.

Our dial is held at its EPMD look-up (the look-up itself is real, it only
waits for the test), or with its socket connected but not yet handed to us
(so nothing written: the Erlang side has an accepted socket and no name); the
Erlang node dials us meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from erldist.runtime import epmd_client, peers
from erldist.runtime.connection import Connection
from erldist.runtime.node import Node
from tests.support.aio import run
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "simuldial"


def test_a_dial_still_at_epmd_yields_to_the_peers(release: str, epmd: EpmdProcess,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        erl = await asyncio.to_thread(ErlNode, release, name=f"{unique_name('b')}@127.0.0.1",
                                      cookie=COOKIE, epmd_port=epmd.port)
        # "z..." sorts after "b...": the Python node has the greater name.
        node = await Node.start(f"{unique_name('z')}@127.0.0.1", COOKIE, epmd_port=epmd.port)
        release_lookup = asyncio.Event()
        asked = asyncio.Event()
        real = epmd_client.port_please

        async def held(*args: Any, **kwargs: Any) -> Any:
            asked.set()
            await release_lookup.wait()
            return await real(*args, **kwargs)

        monkeypatch.setattr(epmd_client, "port_please", held)
        try:
            dial = asyncio.create_task(node.connect(erl.name))
            await asyncio.wait_for(asked.wait(), 10)
            # The Erlang node dials us while ours waits at EPMD: it must get through.
            assert await asyncio.to_thread(erl.eval, f"net_adm:ping('{node.name}').") \
                == "pong"
            release_lookup.set()
            await asyncio.wait_for(dial, 10)  # our connect is settled by its connection
            assert node.nodes() == [erl.name]
            assert await asyncio.to_thread(erl.eval, "nodes().") == f"['{node.name}']"
            assert await node.ping(erl.name) is True
        finally:
            release_lookup.set()
            await node.stop()
            erl.stop()

    run(scenario())


def test_a_dial_connected_but_silent_yields_to_the_peers(release: str, epmd: EpmdProcess,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The last window before our name is on the wire: the socket is connected,
    asyncio has not yet handed it to our protocol. Answering ``nok`` then would
    leave the Erlang node waiting 7 s (``pang``) if we died before writing."""
    async def scenario() -> None:
        erl = await asyncio.to_thread(ErlNode, release, name=f"{unique_name('b')}@127.0.0.1",
                                      cookie=COOKIE, epmd_port=epmd.port)
        node = await Node.start(f"{unique_name('z')}@127.0.0.1", COOKIE, epmd_port=epmd.port)
        held: list[tuple[Connection, asyncio.BaseTransport]] = []
        connected = asyncio.Event()

        class Held(Connection):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                if self.initiator is None:  # the Erlang node's dial to us
                    super().connection_made(transport)
                    return
                held.append((self, transport))  # ours: handed over when the test says so
                connected.set()

        monkeypatch.setattr(peers, "Connection", Held)
        try:
            dial = asyncio.create_task(node.connect(erl.name))
            await asyncio.wait_for(connected.wait(), 10)
            conn, transport = held[0]
            assert conn.transport is None  # connected, nothing written
            assert await asyncio.to_thread(erl.eval, f"net_adm:ping('{node.name}').") \
                == "pong"
            # Superseded before it wrote anything: handed over now, it closes unwritten.
            Connection.connection_made(conn, transport)
            assert transport.is_closing()
            await asyncio.wait_for(dial, 10)
            assert node.nodes() == [erl.name]
            assert await asyncio.to_thread(erl.eval, "nodes().") == f"['{node.name}']"
            assert await node.ping(erl.name) is True
        finally:
            for _conn, transport in held:
                transport.close()
            await node.stop()
            erl.stop()

    run(scenario())
