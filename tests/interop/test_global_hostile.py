"""Findings F1 and F6 (part): a real ``erl`` peer with the cookie abuses ``global``.

The peer is an ordinary OTP node that completed the handshake; it then sends
``global_name_server`` valid messages with hostile contents. What must hold:
the Python node stays up and useful (pings both ways), the names the peer
mentions do not spend the process's distribution-atom budget, lock state and
memory stay bounded, and no log line or output carries the cookie.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from erldist.errors import ConnectAtomBudgetExceeded, ConnectFailed
from erldist.names import atom_budget
from erldist.runtime import global_compat
from erldist.runtime.node import Node
from erldist.runtime.suggested_dials import DEFAULT_MAX_FAILED, DEFAULT_MAX_IN_FLIGHT
from tests.interop.test_epmd_hostile import rss_mb
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "globalhostilecookie"
#: Growth of this process's resident memory either flood may cause; measured
#: at under 25 MB on a 2-core VM (200,000 set_lock once held ~214 MB).
RSS_BOUND_MB = 100
FRESH_NAMES = 12_000
SET_LOCKS = 200_000


async def _pair(release: str, epmd: EpmdProcess) -> tuple[Node, ErlNode]:
    node = await Node.start(f"{unique_name('victim')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                            embedded_epmd=False)
    try:
        erl = await asyncio.to_thread(ErlNode, release, name=f"{unique_name('evil')}@127.0.0.1",
                                      cookie=COOKIE, epmd_port=epmd.port)
    except BaseException:
        await node.stop()
        raise
    assert await asyncio.to_thread(erl.eval, f"net_adm:ping('{node.name}').") == "pong"
    return node, erl


def _no_cookie(caplog: pytest.LogCaptureFixture, erl: ErlNode) -> None:
    assert COOKIE not in caplog.text
    assert not any(COOKIE in line for line in erl.log)


def test_names_a_peer_mentions_never_spend_the_atom_budget(
    release: str, epmd: EpmdProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="erldist")

    async def body() -> None:
        node, erl = await _pair(release, epmd)
        try:
            compat = node.global_compat
            assert compat is not None
            used = atom_budget().used
            before = rss_mb()
            names = (f"[list_to_atom(\"ghost\" ++ integer_to_list(I) ++ \"@127.0.0.1\") "
                     f"|| I <- lists:seq(1, {FRESH_NAMES})]")
            cast = (f"gen_server:cast({{global_name_server, '{node.name}'}}, "
                    f"{{new_nodes, node(), [], [], {names}, []}}).")
            assert await asyncio.to_thread(erl.eval, cast) == "ok"
            dialer = compat._dialer
            deadline = time.monotonic() + 120
            most = 0
            while dialer.started == 0 or dialer.in_flight or dialer.waiting:
                assert time.monotonic() < deadline, "suggested dials never settled"
                most = max(most, dialer.in_flight)
                await asyncio.sleep(0.001)
            grown = rss_mb() - before
            assert atom_budget().used == used  # not one unit spent on the peer's words
            assert most <= DEFAULT_MAX_IN_FLIGHT
            assert dialer.started <= DEFAULT_MAX_FAILED
            # Still useful: the peer answers, and a fresh name is a network
            # failure, not an exhausted budget.
            assert await node.ping(erl.name)  # the user's first use of that name
            used = atom_budget().used
            with pytest.raises(ConnectFailed):
                await node.connect(f"{unique_name('fresh')}@127.0.0.1", timeout=10)
            assert atom_budget().used == used + 1
            assert grown < RSS_BOUND_MB, f"RSS grew {grown:.0f} MB"
            print(f"new_nodes with {FRESH_NAMES} names: {dialer.started} dials, at most "
                  f"{most} at once, budget spent 0, RSS +{grown:.1f} MB")
            _no_cookie(caplog, erl)
        finally:
            erl.stop()
            await node.stop()

    asyncio.run(body())


def test_a_set_lock_flood_is_bounded_and_the_node_stays_useful(
    release: str, epmd: EpmdProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="erldist")

    async def body() -> None:
        node, erl = await _pair(release, epmd)
        try:
            compat = node.global_compat
            assert compat is not None
            before = rss_mb()
            flood = (
                f"GnsV = {{global_name_server, '{node.name}'}}, GnsMe = self(), "
                f"lists:foreach(fun(I) -> GnsV ! {{'$gen_call', {{GnsMe, {{lk, I}}}}, "
                f"{{set_lock, {{{{res, I}}, GnsMe}}}}}} end, lists:seq(1, {SET_LOCKS})), "
                "GnsCount = fun Loop(0, T, F) -> {T, F}; "
                "Loop(K, T, F) -> receive {{lk, _}, true} -> Loop(K - 1, T + 1, F); "
                "{{lk, _}, false} -> Loop(K - 1, T, F + 1) "
                "after 60000 -> {timeout, T, F} end end, "
                f"GnsCount({SET_LOCKS}, 0, 0)."
            )
            started = time.monotonic()
            replies = await asyncio.to_thread(erl.eval, flood, 600.0)
            took = time.monotonic() - started
            limit = global_compat.MAX_LOCKS_PER_PEER
            assert replies == f"{{{limit},{SET_LOCKS - limit}}}"
            grown = rss_mb() - before
            assert len(compat._locks) == limit
            assert grown < RSS_BOUND_MB, f"RSS grew {grown:.0f} MB"
            assert await node.ping(erl.name)
            # The peer's going releases every lock its processes held.
            await asyncio.to_thread(erl.stop)
            deadline = time.monotonic() + 30
            while compat._locks:
                assert time.monotonic() < deadline, "locks of a dead holder were kept"
                await asyncio.sleep(0.01)
            print(f"{SET_LOCKS} set_lock in {took:.1f} s: {limit} granted, the rest refused; "
                  f"RSS +{grown:.1f} MB")
            _no_cookie(caplog, erl)
        finally:
            erl.stop()
            await node.stop()

    asyncio.run(body())


def test_the_atom_budget_still_guards_the_users_own_names(epmd: EpmdProcess) -> None:
    """The fix moves the peer's names off the budget, not the user's: those still count."""
    async def body() -> None:
        node = await Node.start(f"{unique_name('own')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                                embedded_epmd=False)
        try:
            used = atom_budget().used
            with pytest.raises(ConnectFailed):
                await node.connect(f"{unique_name('mine')}@127.0.0.1", timeout=10)
            assert atom_budget().used == used + 1
            assert not isinstance(ConnectFailed(), ConnectAtomBudgetExceeded)
        finally:
            await node.stop()

    asyncio.run(body())
