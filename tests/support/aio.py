"""Small asyncio helpers for tests that drive real nodes."""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from erldist.events import ClusterEvent
from erldist.runtime.node import Node

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 180.0) -> T:
    """Run a test coroutine with an outer deadline, so no test can hang CI.

    ``ERLDIST_TEST_LOOP=uvloop`` runs it on uvloop (the optional extra), so
    the suite's uvloop pass covers the asyncio API, not only the sync facade.
    """
    factory = None
    if os.environ.get("ERLDIST_TEST_LOOP") == "uvloop":
        factory = importlib.import_module("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(asyncio.wait_for(coro, timeout))


async def wait_for(
    cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``cond`` on the loop until true; fail with ``what`` after a generous deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


class EventLog:
    """Every NodeUp/NodeDown of a node, with the loop time it arrived."""

    def __init__(self, node: Node) -> None:
        self.events: list[tuple[float, ClusterEvent]] = []
        self._loop = asyncio.get_running_loop()
        node.add_listener(self._record)

    def _record(self, event: ClusterEvent) -> None:
        self.events.append((time.monotonic(), event))

    def first(self, cls: type, node: str) -> float | None:
        for at, event in self.events:
            if isinstance(event, cls) and event.node == node:
                return at
        return None

    async def wait(self, cls: type, node: str, timeout: float = 30.0) -> float:
        await wait_for(lambda: self.first(cls, node) is not None, timeout,
                       f"{cls.__name__}({node})")
        at = self.first(cls, node)
        assert at is not None
        return at
