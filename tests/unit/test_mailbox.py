"""Mailbox: selective receive, many receivers, no lost wake-up, the bound both ways."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from erldist.errors import ProcessExited
from erldist.runtime.mailbox import Mailbox, Overflow


class Source:
    """A connection stand-in that counts pauses and resumes."""

    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0

    def pause_delivery(self) -> None:
        self.paused += 1

    def resume_delivery(self) -> None:
        self.resumed += 1


def box(maxsize: int = 100, overflow: Overflow = Overflow.BLOCK) -> Mailbox:
    return Mailbox("owner", maxsize, overflow)


async def test_messages_come_out_in_arrival_order() -> None:
    b = box()
    for i in range(5):
        b.put(i)
    assert [await b.get() for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_selective_receive_takes_the_oldest_match_and_keeps_the_rest() -> None:
    b = box()
    for m in ("a", 1, "b", 2):
        b.put(m)
    assert await b.get(match=lambda m: isinstance(m, int)) == 1
    assert await b.get(match=lambda m: isinstance(m, int)) == 2
    assert [await b.get(), await b.get()] == ["a", "b"]


async def test_timeout_zero_polls_and_timeout_waits() -> None:
    b = box()
    with pytest.raises(TimeoutError):
        await b.get(0)
    with pytest.raises(TimeoutError):
        await b.get(0.01)
    assert b._waiters == []


async def test_a_waiting_receiver_gets_only_what_it_matches() -> None:
    b = box()
    evens = asyncio.create_task(b.get(match=lambda m: m % 2 == 0))
    await asyncio.sleep(0)
    b.put(1)
    b.put(2)
    assert await evens == 2
    assert await b.get(0) == 1


async def test_many_concurrent_receivers_take_every_message_exactly_once() -> None:
    b = box(maxsize=100_000)
    got: list[Any] = []

    async def receiver(match: Any) -> None:
        while True:
            try:
                got.append(await b.get(0.5, match))
            except TimeoutError:
                return

    matches = [None, lambda m: m % 2 == 0, lambda m: m % 3 == 0, None, lambda m: m > 500]
    tasks = [asyncio.create_task(receiver(m)) for m in matches * 4]
    rng = random.Random(7)
    for i in range(2000):
        b.put(i)
        if rng.random() < 0.1:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert sorted(got) == list(range(2000))
    assert len(b) == 0


async def test_a_receiver_cancelled_as_its_message_arrives_puts_it_back_in_order() -> None:
    b = box()
    waiter = asyncio.create_task(b.get())
    await asyncio.sleep(0)
    b.put("first")  # handed to the waiter...
    b.put("second")
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert [await b.get(0), await b.get(0)] == ["first", "second"]


async def test_a_match_that_raises_fails_only_its_own_receive() -> None:
    b = box()

    def bad(_m: Any) -> bool:
        raise ValueError("filter bug")

    waiter = asyncio.create_task(b.get(match=bad))
    await asyncio.sleep(0)
    b.put("kept")
    with pytest.raises(ValueError, match="filter bug"):
        await waiter
    assert await b.get(0) == "kept"


async def test_close_wakes_every_receiver_with_the_reason() -> None:
    b = box()
    waiters = [asyncio.create_task(b.get()) for _ in range(3)]
    await asyncio.sleep(0)
    b.close("killed")
    for waiter in waiters:
        with pytest.raises(ProcessExited) as info:
            await waiter
        assert info.value.reason == "killed"
    b.put("late")  # a dead process's mail vanishes
    with pytest.raises(ProcessExited):
        await b.get(0)


async def test_drop_policy_refuses_and_counts() -> None:
    b = box(maxsize=3, overflow=Overflow.DROP)
    assert [b.put(i) for i in range(5)] == [True, True, True, False, False]
    assert b.dropped == 2 and len(b) == 3


async def test_block_policy_keeps_everything_and_pauses_the_source_until_half_empty() -> None:
    b = box(maxsize=4)
    src = Source()
    for i in range(6):
        assert b.put(i, src)
    assert len(b) == 6 and src.paused == 1  # paused once, however many more arrive
    for _ in range(3):
        await b.get()
    assert src.resumed == 0  # 3 left, more than half of 4
    await b.get()
    assert src.resumed == 1
    assert [await b.get(), await b.get()] == [4, 5]


async def test_signals_are_never_refused() -> None:
    b = box(maxsize=1, overflow=Overflow.DROP)
    b.put("m")
    b.put_signal("down")
    assert len(b) == 2 and b.dropped == 0


async def test_local_senders_wait_for_space() -> None:
    b = box(maxsize=2)
    b.put(1)
    b.put(2)
    waiting = asyncio.create_task(b.wait_for_space())
    await asyncio.sleep(0)
    assert not waiting.done()
    await b.get()
    await asyncio.wait_for(waiting, 1)


async def test_flush_removes_only_matches() -> None:
    b = box()
    for m in (1, "x", 2, "y"):
        b.put(m)
    assert b.flush(lambda m: isinstance(m, int)) == 2
    assert [await b.get(), await b.get()] == ["x", "y"]
