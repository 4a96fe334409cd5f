"""Helpers the interop tests share for driving real ``erl`` nodes from asyncio code."""

from __future__ import annotations

import asyncio

from tests.support.otp import ErlNode


async def erl(node: ErlNode, expr: str, timeout: float = 60) -> str:
    """Evaluate ``expr`` in ``node`` from a worker thread, so the test's loop keeps
    serving the Python nodes while Erlang waits on them."""
    return await asyncio.to_thread(node.eval, expr, timeout)


async def erl_until(node: ErlNode, expr: str, what: str, timeout: float = 20) -> None:
    """Poll the Erlang boolean ``expr`` until true: our signals are asynchronous, as
    Erlang's are, so a test waits until Erlang has seen a link or monitor."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await erl(node, expr) != "true":
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
