"""BusyWait: the loop polls for the window after the last traffic, then sleeps again."""

from __future__ import annotations

import asyncio

from erldist.runtime.busy_wait import BusyWait
from tests.support.aio import run, wait_for

WINDOW = 0.005


async def _spin_ends(busy: BusyWait) -> float:
    """Loop time at which ``busy`` stopped spinning (a generous deadline otherwise)."""
    await wait_for(lambda: not busy.spinning, timeout=30, what="the spinner to stop")
    return asyncio.get_running_loop().time()


def test_a_touch_keeps_the_loop_polling_for_the_window_then_stops() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy = BusyWait(loop, WINDOW)
        assert not busy.spinning
        touched = loop.time()
        busy.touch()
        assert busy.spinning
        # Never before the window has passed since the touch; stops once it has.
        assert await _spin_ends(busy) >= touched + WINDOW

    run(main())


def test_traffic_during_the_window_pushes_its_end_on() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy = BusyWait(loop, WINDOW)
        busy.touch()
        last = loop.time()
        for _ in range(5):
            await asyncio.sleep(WINDOW / 4)
            last = loop.time()
            busy.touch()
        assert await _spin_ends(busy) >= last + WINDOW
        assert busy.spins == 1  # one wake-up: the touches only pushed its end on
        busy.touch()
        assert busy.spins == 2

    run(main())


def test_a_window_of_zero_never_spins_and_a_new_window_applies_at_the_next_wake_up() -> None:
    async def main() -> None:
        busy = BusyWait(asyncio.get_running_loop(), 0.0)
        busy.touch()
        assert not busy.spinning and busy.spins == 0  # 0 is off: nothing scheduled
        busy.window = WINDOW
        busy.touch()
        assert busy.spinning
        await _spin_ends(busy)
        busy.window = 0.0
        busy.touch()
        assert not busy.spinning

    run(main())


def test_a_closed_spinner_stops_and_never_starts_again() -> None:
    async def main() -> None:
        busy = BusyWait(asyncio.get_running_loop(), 0.01)
        busy.touch()
        busy.close()
        await _spin_ends(busy)
        busy.touch()
        assert not busy.spinning

    run(main())


def test_other_callbacks_run_while_it_spins() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy = BusyWait(loop, 0.01)
        ran: list[int] = []
        busy.touch()
        for i in range(100):
            loop.call_soon(ran.append, i)
            await asyncio.sleep(0)
        assert ran == list(range(100))
        await _spin_ends(busy)

    run(main())
