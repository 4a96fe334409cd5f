"""erldist's own loops are uvloop's when it is installed, asyncio's otherwise or on demand."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import pytest

from erldist import event_loop

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_run_returns_what_the_coroutine_returns_on_the_named_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(event_loop.LOOP_ENV, raising=False)

    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    module = event_loop.run(main())
    assert module.startswith("uvloop" if event_loop.loop_name() == "uvloop" else "asyncio")
    assert event_loop.loop_name() == ("uvloop" if HAS_UVLOOP else "asyncio")


def test_asyncio_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.LOOP_ENV, "asyncio")
    assert event_loop.loop_name() == "asyncio"
    loop = event_loop.new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()


class _DuckTransport:
    """A transport with the methods but not the class, as uvloop's are."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted


async def test_the_embedded_epmd_serves_a_transport_that_is_not_an_asyncio_transport() -> None:
    from erldist.runtime.epmd_server import EpmdServer, _Connection

    server = EpmdServer(max_registrations=4, max_connections=8, request_timeout=5,
                        max_request=1024)
    conn = _Connection(server)
    duck = _DuckTransport()
    conn.connection_made(duck)  # type: ignore[arg-type]
    assert conn.state == "reading" and not duck.aborted
    conn.data_received(b"\x00\x01n")  # NAMES_REQ
    assert duck.written and duck.closed  # answered, then closed
    conn.connection_lost(None)


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is an optional extra; not installed here")
def test_a_node_with_its_embedded_epmd_starts_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    from erldist import Node
    from tests.support.otp import free_port

    async def main() -> str:
        node = await Node.start("uvtest@127.0.0.1", "cookie", epmd_port=free_port())
        try:
            return node.name
        finally:
            await node.stop()

    monkeypatch.delenv(event_loop.LOOP_ENV, raising=False)
    assert event_loop.loop_name() == "uvloop"
    assert event_loop.run(main()) == "uvtest@127.0.0.1"
