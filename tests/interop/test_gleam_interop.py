"""``erldist.gleam`` against a Gleam ``distribute`` stand-in on real OTP 25 and 28.

No Gleam compiler is installed here, so the Gleam side is
``tests/support/erl/gleam_peer.erl``: an Erlang module that sends, calls and
replies with exactly the shapes and bytes of the wire card (§6.2, §6.4,
§7.4) and finds actors with ``global:whereis_name(<<"name">>)``, as
distribute's ``registry.lookup`` does. OTP 28's runtime has no compiler: the
module is compiled by Debian's ``erlc`` and loaded as a binary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erldist import Node, gleam, telemetry
from erldist.codec import INT
from erldist.errors import CallTargetDown, CallTimeout, RegistryAlreadyExists
from erldist.term import Atom, Pid, Reference, decode
from tests.support.aio import wait_for
from tests.support.erl_modules import load_module
from tests.support.gleam_service import (
    GLEAM_PEER,
    SERVICE,
    Counter,
    Crash,
    GetCount,
    Hold,
    Increment,
    Release,
    counter,
)
from tests.support.nodes import erl, erl_until
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "gleamcookie"


@pytest.fixture
def events() -> Iterator[list[Any]]:
    seen: list[Any] = []
    telemetry.attach(seen.append)
    try:
        yield seen
    finally:
        telemetry.detach(seen.append)


async def gleam_and_python(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], workdir: Path
) -> tuple[ErlNode, Node]:
    """A connected pair: an ``erl`` node with the Gleam stand-in loaded, and a Python node."""
    e = await asyncio.to_thread(ErlNode, release, name=f"{unique_name('g')}@127.0.0.1",
                                cookie=COOKIE, epmd_port=epmd.port)
    erl_nodes.append(e)
    await asyncio.to_thread(load_module, e, GLEAM_PEER, workdir)
    py = await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                          embedded_epmd=False)
    await py.connect(e.name)
    await erl_until(e, f"lists:member('{py.name}', nodes()).", "Erlang to see Python")
    assert await erl(e, "global:sync().") == "ok"
    return e, py


async def gleam_actor(py: Node, e: ErlNode, name: str) -> gleam.Subject[Any]:
    """Start the stand-in's counter as ``name`` in Erlang; its subject, as
    ``registry.lookup`` makes it, once Python's ``global`` has the name."""
    await erl(e, f'is_pid(gleam_peer:start_counter(<<"{name}">>)).')
    await wait_for(lambda: py.whereis_name(name) is not None, what=f"{name} in Python")
    return gleam.lookup(py, name, SERVICE)


async def note_watchers(e: ErlNode, name: str) -> str:
    """Bind an Erlang variable to who monitors the actor ``name`` now (``global``
    monitors a registered pid on each node); ``watched_as_before`` compares."""
    var = f"Watchers_{name.replace('.', '_')}"
    await erl(e, f'{var} = lists:sort(element(2, erlang:process_info('
                 f'global:whereis_name(<<"{name}">>), monitored_by))), ok.')
    return var


async def watched_as_before(e: ErlNode, name: str, var: str) -> None:
    """Wait until the actor ``name`` has the watchers of ``var`` again and an empty
    mailbox: the call's monitor is gone on the Gleam side, nothing is queued there."""
    await erl_until(e, f'erlang:process_info(global:whereis_name(<<"{name}">>), '
                       f"message_queue_len) =:= {{message_queue_len, 0}} andalso "
                       f'lists:sort(element(2, erlang:process_info(global:whereis_name('
                       f'<<"{name}">>), monitored_by))) =:= {var}.',
                    f"the call's monitor on {name} to go")


def untouched(py: Node, before: set[Pid]) -> None:
    """No process came or stayed, and no mailbox holds anything."""
    assert {p.pid for p in py.router.processes()} == before
    assert all(len(p.mailbox) == 0 for p in py.router.processes())


# --- Python calls Gleam ------------------------------------------------------------------


async def test_python_sends_to_and_calls_a_gleam_actor(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path
) -> None:
    e, py = await gleam_and_python(release, epmd, erl_nodes, tmp_path)
    try:
        actor = await gleam_actor(py, e, "counter")
        assert actor.tag == b"counter"
        watchers = await note_watchers(e, "counter")
        await gleam.send(py, actor, Increment(5))
        await gleam.send(py, actor, Increment(-2))
        # From a bare pid the tag is nil: the Gleam actor drops it as garbage.
        await gleam.send(py, gleam.from_pid(actor.owner, SERVICE), Increment(100))
        assert await gleam.call(py, actor, GetCount, INT, timeout=10) == 3
        await watched_as_before(e, "counter", watchers)
    finally:
        await py.stop()


async def test_a_call_to_a_dead_gleam_actor_is_target_down(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path,
    events: list[Any],
) -> None:
    e, py = await gleam_and_python(release, epmd, erl_nodes, tmp_path)
    try:
        before = {p.pid for p in py.router.processes()}
        doomed = await gleam_actor(py, e, "doomed")
        await erl(e, 'exit(global:whereis_name(<<"doomed">>), kill).')
        with pytest.raises(CallTargetDown) as gone:
            await gleam.call(py, doomed, GetCount, INT, timeout=10)
        assert gone.value.reason in (Atom("noproc"), Atom("killed"))
        # Dying while the call waits is TargetDown too, with the actor's reason.
        crasher = await gleam_actor(py, e, "crasher")
        with pytest.raises(CallTargetDown) as crashed:
            await gleam.call(py, crasher, Crash, INT, timeout=10)
        assert crashed.value.reason == Atom("crashed")
        untouched(py, before)
        assert telemetry.flush()
        downs = [ev for ev in events if isinstance(ev, telemetry.CallTargetDown)]
        assert [d.target for d in downs] == [repr(doomed.owner), repr(crasher.owner)]
    finally:
        await py.stop()


async def test_a_call_with_no_reply_times_out_and_leaves_nothing_behind(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path,
    events: list[Any],
) -> None:
    e, py = await gleam_and_python(release, epmd, erl_nodes, tmp_path)
    try:
        before = {p.pid for p in py.router.processes()}
        holder = await gleam_actor(py, e, "holder")
        watchers = await note_watchers(e, "holder")
        with pytest.raises(CallTimeout):
            await gleam.call(py, holder, Hold, INT, timeout=0.3)
        untouched(py, before)
        await watched_as_before(e, "holder", watchers)
        # The held request is answered now, after the call gave up: the late reply
        # goes to the call's own process, which no longer exists. The next call's
        # reply comes after it on the same connection, so by then it has arrived.
        await gleam.send(py, holder, Release.RELEASE)
        assert await gleam.call(py, holder, GetCount, INT, timeout=10) == 0
        untouched(py, before)
        assert telemetry.flush()
        assert [ev for ev in events if isinstance(ev, telemetry.CallTimedOut)] == [
            telemetry.CallTimedOut(0.3, repr(holder.owner))]
    finally:
        await py.stop()


# --- Gleam calls Python ------------------------------------------------------------------


async def test_gleam_finds_and_calls_a_python_actor_through_global(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path,
    events: list[Any],
) -> None:
    e, py = await gleam_and_python(release, epmd, erl_nodes, tmp_path)
    try:
        actor = await gleam.start_actor(py, SERVICE, counter, Counter(), name="py.counter")
        await erl_until(e, 'is_pid(global:whereis_name(<<"py.counter">>)).',
                        "the name in Erlang's global")
        sent = await erl(e, 'gleam_peer:send(<<"py.counter">>, '
                            "gleam_peer:request(increment, 7)).")
        assert sent == "ok"
        # Garbage and bad payloads under the right tag: dropped, counted, still serving.
        await erl(e, 'PyActor = global:whereis_name(<<"py.counter">>), '
                     'PyActor ! hello, PyActor ! {<<"other">>, <<>>}, '
                     'PyActor ! {<<"py.counter">>, 42}, PyActor ! {<<"py.counter">>, <<9>>}, '
                     "ok.")
        assert await erl(e, 'gleam_peer:call(<<"py.counter">>, 10000).') == "{ok,7}"
        assert actor.garbage == 2
        assert actor.decode_errors == 2
        asked_by = actor.state.asked[-1]
        assert str(asked_by.owner.node) == e.name and type(asked_by.tag) is Reference

        # call_isolated: the reply subject's owner is a proxy process.
        result, proxy = decode(await asyncio.to_thread(
            e.eval_etf, 'gleam_peer:call_isolated(<<"py.counter">>, 10000).'))
        assert result == (Atom("ok"), 7)
        assert actor.state.asked[-1].owner == proxy != asked_by.owner

        await actor.stop()
        await erl_until(e, 'global:whereis_name(<<"py.counter">>) =:= undefined.',
                        "the name to go")
        assert await erl(e, 'gleam_peer:call(<<"py.counter">>, 1000).') == "{error,not_found}"
        assert telemetry.flush()
        named = [ev for ev in events if isinstance(ev, telemetry.ActorRegistered
                                                   | telemetry.ActorUnregistered)]
        assert named == [telemetry.ActorRegistered("py.counter"),
                         telemetry.ActorUnregistered("py.counter", True)]
    finally:
        await py.stop()


async def test_gleam_calls_each_member_of_a_python_pool(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path
) -> None:
    e, py = await gleam_and_python(release, epmd, erl_nodes, tmp_path)
    try:
        pool = await gleam.start_pool(py, "base", 4, SERVICE, counter,
                                      state=lambda i: Counter(count=100 * i))
        assert [a.name for a in pool.members] == ["base_1", "base_2", "base_3", "base_4"]
        names = '[<<"base_", (integer_to_binary(I))/binary>> || I <- lists:seq(1, 4)]'
        await erl_until(e, f"lists:all(fun(N) -> is_pid(global:whereis_name(N)) end, {names}).",
                        "the pool in Erlang's global")
        got = await erl(e, f"[gleam_peer:call(N, 10000) || N <- {names}].")
        assert got == "[{ok,100},{ok,200},{ok,300},{ok,400}]"
        # Each answered its own call, with a subject Gleam built from the name alone.
        assert [len(a.state.asked) for a in pool.members] == [1, 1, 1, 1]
        assert pool.member(3).pid == py.whereis_name("base_3")
        await pool.stop()
        await erl_until(e, f"lists:all(fun(N) -> global:whereis_name(N) =:= undefined end, "
                           f"{names}).", "the pool's names to go")
    finally:
        await py.stop()


async def test_a_python_actor_that_crashes_or_cannot_register_leaves_no_name(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path,
    events: list[Any],
) -> None:
    e, py = await gleam_and_python(release, epmd, erl_nodes, tmp_path)
    try:
        before = {p.pid for p in py.router.processes()}
        # A name Gleam holds is taken: the new actor is shut down, nothing stays.
        await gleam_actor(py, e, "taken")
        with pytest.raises(RegistryAlreadyExists):
            await gleam.start_actor(py, SERVICE, counter, Counter(), name="taken")
        untouched(py, before)
        # Gleam's call sees a crash of the Python actor as TargetDown, and the name goes.
        actor = await gleam.start_actor(py, SERVICE, counter, Counter(), name="py.crasher")
        await erl_until(e, 'is_pid(global:whereis_name(<<"py.crasher">>)).',
                        "the name in Erlang's global")
        assert await erl(e, 'gleam_peer:call(<<"py.crasher">>, crash, 10000).') \
            == "{error,target_down}"
        assert not actor.alive
        await erl_until(e, 'global:whereis_name(<<"py.crasher">>) =:= undefined.',
                        "the crashed actor's name to go")
        assert py.whereis_name("py.crasher") is None
        assert telemetry.flush()
        failed = [ev for ev in events if isinstance(ev, telemetry.ActorRegistrationFailed)]
        assert failed == [telemetry.ActorRegistrationFailed("taken", "taken")]
    finally:
        await py.stop()


async def test_a_call_whose_gleam_node_goes_away_is_target_down_noconnection(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path
) -> None:
    e, py = await gleam_and_python(release, epmd, erl_nodes, tmp_path)
    try:
        before = {p.pid for p in py.router.processes()}
        holder = await gleam_actor(py, e, "far")
        watchers = await note_watchers(e, "far")
        waiting = asyncio.create_task(gleam.call(py, holder, Hold, INT, timeout=60))
        # Once the Gleam side has the call's monitor, the whole node goes.
        await erl_until(e, 'length(element(2, erlang:process_info(global:whereis_name('
                           f'<<"far">>), monitored_by))) > length({watchers}).',
                        "the call's monitor")
        await asyncio.to_thread(e.stop)
        with pytest.raises(CallTargetDown) as gone:
            await waiting
        assert gone.value.reason == Atom("noconnection")
        untouched(py, before)
    finally:
        await py.stop()
