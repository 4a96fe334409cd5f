"""SuggestedDialer: the bounds on dials that peers' words cause."""

from __future__ import annotations

import asyncio

import pytest

from erldist.errors import ConnectFailed
from erldist.names import NodeName, atom_budget, parse_node_name
from erldist.runtime.suggested_dials import SuggestedDialer

LOCAL = parse_node_name("me@127.0.0.1")


class Recorder:
    def __init__(self, reachable: set[str] | None = None) -> None:
        self.reachable = reachable or set()
        self.dialed: list[str] = []
        self.running = 0
        self.most = 0
        self.gate = asyncio.Event()

    async def dial(self, peer: NodeName) -> None:
        self.dialed.append(str(peer))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.gate.wait()
            if str(peer) not in self.reachable:
                raise ConnectFailed(f"{peer} is not registered")
        finally:
            self.running -= 1


async def drain(dialer: SuggestedDialer) -> None:
    while dialer.in_flight or dialer.waiting:
        await asyncio.sleep(0)


def test_in_flight_and_waiting_are_capped_and_the_rest_dropped() -> None:
    async def body() -> None:
        rec = Recorder()
        dialer = SuggestedDialer(LOCAL, rec.dial, max_in_flight=3, max_waiting=5)
        accepted = [dialer.suggest(f"n{i}@127.0.0.1") for i in range(20)]
        assert accepted == [True] * 8 + [False] * 12  # 3 running, 5 waiting
        await asyncio.sleep(0)
        assert (dialer.in_flight, dialer.waiting) == (3, 5)
        rec.gate.set()
        await drain(dialer)
        assert rec.most == 3
        assert len(rec.dialed) == 8
        assert dialer.failed == 8

    asyncio.run(body())


def test_failed_names_are_never_retried_and_failures_are_capped() -> None:
    async def body() -> None:
        rec = Recorder(reachable={"up@127.0.0.1"})
        rec.gate.set()
        failures: list[str] = []
        dialer = SuggestedDialer(LOCAL, rec.dial, max_failed=4,
                                 on_failure=lambda peer, _exc: failures.append(str(peer)))
        for i in range(4):
            dialer.suggest(f"dead{i}@127.0.0.1")
        await drain(dialer)
        assert failures == [f"dead{i}@127.0.0.1" for i in range(4)]
        assert not dialer.suggest("dead0@127.0.0.1")  # failed before
        assert not dialer.suggest("fresh@127.0.0.1")  # the failure budget is spent
        assert len(rec.dialed) == 4

    asyncio.run(body())


def test_successes_do_not_count_and_may_be_dialed_again() -> None:
    async def body() -> None:
        rec = Recorder(reachable={"up@127.0.0.1"})
        rec.gate.set()
        dialer = SuggestedDialer(LOCAL, rec.dial, max_failed=1)
        for _ in range(3):
            assert dialer.suggest("up@127.0.0.1")
            await drain(dialer)
        assert rec.dialed == ["up@127.0.0.1"] * 3
        assert dialer.failed == 0

    asyncio.run(body())


@pytest.mark.parametrize("name", ["me@127.0.0.1", "short@host", "not a name", "a@b@c", ""])
def test_own_invalid_and_other_kind_names_are_refused(name: str) -> None:
    async def body() -> None:
        rec = Recorder()
        dialer = SuggestedDialer(LOCAL, rec.dial)
        assert not dialer.suggest(name)
        await drain(dialer)
        assert rec.dialed == []

    asyncio.run(body())


def test_a_name_already_dialing_is_not_dialed_twice() -> None:
    async def body() -> None:
        rec = Recorder(reachable={"up@127.0.0.1"})
        dialer = SuggestedDialer(LOCAL, rec.dial)
        assert dialer.suggest("up@127.0.0.1")
        assert dialer.suggest("up@127.0.0.1")  # already on its way: still True
        rec.gate.set()
        await drain(dialer)
        assert rec.dialed == ["up@127.0.0.1"]

    asyncio.run(body())


def test_suggestions_never_touch_the_atom_budget() -> None:
    async def body() -> None:
        used = atom_budget().used
        rec = Recorder()
        rec.gate.set()
        dialer = SuggestedDialer(LOCAL, rec.dial)
        for i in range(500):
            dialer.suggest(f"budget{i}x{id(rec)}@127.0.0.1")
        await drain(dialer)
        assert atom_budget().used == used

    asyncio.run(body())


def test_close_cancels_running_dials_and_refuses_new_ones() -> None:
    async def body() -> None:
        rec = Recorder()
        dialer = SuggestedDialer(LOCAL, rec.dial, max_in_flight=2)
        for i in range(5):
            dialer.suggest(f"c{i}@127.0.0.1")
        await asyncio.sleep(0)
        assert rec.running == 2
        dialer.close()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert rec.running == 0
        assert dialer.waiting == 0
        assert not dialer.suggest("later@127.0.0.1")
        assert len(rec.dialed) == 2

    asyncio.run(body())


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SuggestedDialer(LOCAL, Recorder().dial, max_in_flight=0)
