"""Name clashes that an *Erlang* node settles, with a Python holder (OTP 25 and 28).

When two partitions meet, ``global`` settles a clash on the node whose name
sorts first, with the resolve method of the row that node holds, run by
``rpc:call(node(Holder), global, resolve_it, [Method, Name, Pid, Holder])``.
An Erlang node thus settles a clash that involves Python in two ways:

* its row's holder is a Python process: the Erlang node has the Python node
  run the method (the node's ``global:resolve_it``), and the answer decides;
* its row's holder is its own process, registered with a custom ``fun``: the
  fun runs on the Erlang node and exits the Python holder as it decides.

Each scenario runs with the third node (whose process holds the name in one
partition) a Python node, and, as the control, an ``erl`` node of the same
release under a name that sorts the same way: both must end as ``global.erl``
says. ``random_exit_name`` kills the pid on the node that sorts last,
``random_notify_name`` sends that pid ``{global_name_conflict, Name}``
instead, ``notify_all_name`` sends each pid ``{global_name_conflict, Name,
Other}`` and unregisters the name; a kept name is the winner's on every node.

The partitions are made by not connecting them (deterministic): group 1 is
``a`` and the third node or ``a`` alone, group 2 is ``b`` or ``b`` and the
third node; the heal is ``a`` pinging ``b``. ``a`` sorts first, so ``a``
settles every clash, and the third node only learns of the other group
through that sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from erldist.errors import ProcessExited
from erldist.runtime.node import Node
from erldist.runtime.process import Process
from erldist.runtime.services.global_names import RESOLVERS
from erldist.term.types import Atom, Pid
from tests.interop.test_global_interop import (
    _DEFINE_GSYNC,
    COOKIE,
    Erl,
    _erl_pair,
    _is,
    _sees,
    _wait_for,
)
from tests.support.aio import run
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

NAME = "clash"
#: An absence check (no message came) looks this long, once the outcome is final.
QUIET_S = 0.3
#: An Erlang holder forwards the first message it gets to the evaluator, then waits.
_HOLDER = ("Me = self(), {Var} = spawn(fun() -> receive M -> Me ! {{held_got, M}}, "
           "receive stop -> ok end end end), {Var}Mon = erlang:monitor(process, {Var})")
#: A custom resolver: the pid on this node keeps the name, the other exits.
_CUSTOM = ("Custom = fun(N, P1, P2) -> {Keep, Lose} = case node(P1) =:= node() of "
           "true -> {P1, P2}; false -> {P2, P1} end, "
           "exit(Lose, {custom_lost, N}), Keep end")


@dataclass
class Third:
    """The node whose process holds ``clash`` in one partition: Python or ``erl``."""

    name: str
    py: Node | None = None
    erl: Erl | None = None
    holder: Process | None = None
    resolve_calls: list[list[Any]] = field(default_factory=list)

    async def join(self, erl: Erl) -> None:
        """Connect to ``erl`` and wait until ``global`` has synced them."""
        if self.py is not None:
            await self.py.connect(erl.name)
        else:
            assert self.erl is not None
            assert await self.erl.eval(f"net_adm:ping('{erl.name}').") == "pong"
            await self.erl.sync()
        await _wait_for(lambda: _sees(erl, self.name), f"{erl.name} to see {self.name}")
        await erl.sync()

    async def hold(self, resolve: str) -> None:
        """A process of this node registers ``clash`` with OTP's method ``resolve``."""
        if self.py is not None:
            self.holder = self.py.process()
            assert await self.py.register_name(Atom(NAME), self.holder.pid, resolve=resolve)
            return
        assert self.erl is not None
        method = f"fun global:{RESOLVERS[resolve].function}/3"
        await self.erl.eval(_HOLDER.format(Var="HT") +
                            f", yes = global:register_name({NAME}, HT, {method}).")

    def record_resolve_it(self) -> None:
        """Count the ``global:resolve_it`` calls Erlang makes into the Python node."""
        assert self.py is not None
        server = self.py.global_compat
        assert server is not None

        async def recorded(*args: Any) -> Any:
            self.resolve_calls.append(list(args))
            return await server.resolve_it(*args)

        self.py.expose("global", "resolve_it", recorded)

    async def owner(self) -> str:
        """The node of the pid this node's table has for ``clash``, or ``undefined``."""
        if self.py is not None:
            pid = self.py.whereis_name(Atom(NAME))
            return "undefined" if pid is None else f"'{pid.node}'"
        assert self.erl is not None
        return await _owner(self.erl)

    async def fate(self) -> str:
        """The holder's exit reason, or ``alive``."""
        if self.py is not None:
            assert self.holder is not None
            await asyncio.sleep(0)
            return "alive" if self.holder.alive else _text(self.holder.exit_reason)
        assert self.erl is not None
        return await _fate(self.erl, "HT")

    async def got(self, timeout: float) -> str:
        """The first message the holder got (``none`` if none within ``timeout``)."""
        if self.py is not None:
            assert self.holder is not None
            try:
                return _shape(await self.holder.receive(timeout=timeout))
            except (TimeoutError, ProcessExited):  # nothing came (a dead one's queue is empty)
                return "none"
        assert self.erl is not None
        return await _got(self.erl, timeout)


@asynccontextmanager
async def _third(kind: str, prefix: str, release: str, epmd: EpmdProcess
                 ) -> AsyncIterator[Third]:
    name = f"{unique_name(prefix)}@127.0.0.1"
    if kind == "python":
        node = await Node.start(name, COOKIE, epmd_port=epmd.port)
        try:
            yield Third(node.name, py=node)
        finally:
            await node.stop()
        return
    erl_node = await asyncio.to_thread(ErlNode, release, name=name, cookie=COOKIE,
                                       epmd_port=epmd.port)
    try:
        erl = Erl(erl_node)
        await erl.eval(_DEFINE_GSYNC)
        yield Third(erl.name, erl=erl)
    finally:
        erl_node.stop()


async def _owner(erl: Erl) -> str:
    return await erl.eval(f"case global:whereis_name({NAME}) of undefined -> undefined; "
                          "P -> node(P) end.")


async def _fate(erl: Erl, var: str) -> str:
    """An Erlang holder's exit reason (its DOWN is put back, so this can be asked
    again), or ``alive``."""
    return await erl.eval(f"receive {{'DOWN', {var}Mon, process, {var}, R}} = D -> "
                          "self() ! D, R after 0 -> alive end.")


async def _got(erl: Erl, timeout: float) -> str:
    return await erl.eval("receive {held_got, M} -> case M of "
                          "{global_name_conflict, N, P} -> {global_name_conflict, N, node(P)}; "
                          f"_ -> M end after {int(timeout * 1000)} -> none end.")


def _shape(message: Any) -> str:
    """A conflict notice as ``~w`` prints it with its pid replaced by the pid's node."""
    match message:
        case (Atom("global_name_conflict"), Atom() as name):
            return f"{{global_name_conflict,{name}}}"
        case (Atom("global_name_conflict"), Atom() as name, Pid() as other):
            return f"{{global_name_conflict,{name},'{other.node}'}}"
    return repr(message)


def _text(reason: Any) -> str:
    """An exit reason of atoms as ``~w`` prints it."""
    if isinstance(reason, tuple):
        return "{" + ",".join(_text(part) for part in reason) + "}"
    return str(reason)


async def _everywhere(a: Erl, b: Erl, third: Third, want: str) -> None:
    for erl in (a, b):
        await _wait_for(lambda e=erl: _is(e, f"case global:whereis_name({NAME}) of undefined "
                                             "-> undefined; P -> node(P) end", want),
                        f"{NAME} -> {want} on {erl.name}")
    await _wait_for(lambda: _owner_is(third, want), f"{NAME} -> {want} on {third.name}")


async def _owner_is(third: Third, want: str) -> bool:
    return await third.owner() == want


async def _fate_is(get: Any, want: str) -> bool:
    return bool(await get() == want)


# "py..." sorts after b: the third node's holder is the one random_exit/notify picks
# to lose. "ab..." sorts between a and b: b's holder loses (the Python node then
# kills or tells a process of b from its resolve_it).
@pytest.mark.parametrize(("resolve", "prefix"), [
    ("random_exit", "py"), ("random_notify", "py"), ("notify_all", "py"),
    ("random_exit", "ab"), ("random_notify", "ab"),
])
@pytest.mark.parametrize("kind", ["python", "erlang"])
def test_erlang_settles_by_resolve_it_on_the_holders_node(
        release: str, epmd: EpmdProcess, kind: str, resolve: str, prefix: str) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b), \
                _third(kind, prefix, release, epmd) as third:
            assert a.name < b.name
            assert (b.name < third.name) if prefix == "py" else (a.name < third.name < b.name)
            if third.py is not None:
                third.record_resolve_it()
            await third.join(a)  # group 1: a and the third node, which holds the name
            await third.hold(resolve)
            await _wait_for(lambda: _is(a, f"node(global:whereis_name({NAME}))",
                                        f"'{third.name}'"), "a to know the name")
            await b.eval(_HOLDER.format(Var="HB") +  # group 2: b alone, holding it too
                         f", yes = global:register_name({NAME}, HB).")

            assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"  # the heal
            for erl in (a, b):
                await _wait_for(lambda e=erl: _sees(e, third.name), f"{erl.name} sees third")
                await erl.sync()

            third_loses = b.name < third.name
            if resolve == "notify_all":
                await _everywhere(a, b, third, "undefined")
                assert await third.got(10) == f"{{global_name_conflict,{NAME},'{b.name}'}}"
                assert await _got(b, 10) == f"{{global_name_conflict,{NAME},'{third.name}'}}"
            else:
                winner = b.name if third_loses else third.name
                await _everywhere(a, b, third, f"'{winner}'")
                lose_msg = f"{{global_name_conflict,{NAME}}}" \
                    if resolve == "random_notify" else "none"
                if third_loses:
                    assert await third.got(10 if lose_msg != "none" else QUIET_S) == lose_msg
                    assert await _got(b, QUIET_S) == "none"
                else:
                    assert await _got(b, 10 if lose_msg != "none" else QUIET_S) == lose_msg
                    assert await third.got(QUIET_S) == "none"
            # Only random_exit kills, and only the loser.
            killed = resolve == "random_exit"
            want_third = "killed" if killed and third_loses else "alive"
            want_b = "killed" if killed and not third_loses else "alive"
            await _wait_for(lambda: _fate_is(third.fate, want_third), f"third {want_third}")
            await _wait_for(lambda: _fate_is(lambda: _fate(b, "HB"), want_b), f"b {want_b}")
            assert await third.fate() == want_third and await _fate(b, "HB") == want_b
            if third.py is not None:
                # a settled it through the Python node's resolve_it, once.
                assert third.holder is not None
                assert len(third.resolve_calls) == 1, third.resolve_calls
                method, name, pid1, pid2 = third.resolve_calls[0]
                assert (method, name, pid2) == (RESOLVERS[resolve], Atom(NAME),
                                                third.holder.pid)
                assert isinstance(pid1, Pid) and str(pid1.node) == b.name

    run(scenario())


@pytest.mark.parametrize("kind", ["python", "erlang"])
def test_an_erlang_custom_resolver_exits_the_other_holder(
        release: str, epmd: EpmdProcess, kind: str) -> None:
    async def scenario() -> None:
        async with _erl_pair(release, epmd) as (a, b), \
                _third(kind, "py", release, epmd) as third:
            if third.py is not None:
                third.record_resolve_it()
            await third.join(b)  # group 2: b and the third node, which holds the name
            await third.hold("random_exit")
            await _wait_for(lambda: _is(b, f"node(global:whereis_name({NAME}))",
                                        f"'{third.name}'"), "b to know the name")
            await a.eval(f"{_CUSTOM}, AH = spawn(fun() -> receive stop -> ok end end), "
                         f"yes = global:register_name({NAME}, AH, Custom).")  # group 1

            assert await a.eval(f"net_adm:ping('{b.name}').") == "pong"  # the heal
            for erl in (a, b):
                await _wait_for(lambda e=erl: _sees(e, third.name), f"{erl.name} sees third")
                await erl.sync()
            await _everywhere(a, b, third, f"'{a.name}'")
            want = f"{{custom_lost,{NAME}}}"
            await _wait_for(lambda: _fate_is(third.fate, want), f"the third's holder: {want}")
            assert await a.eval("is_process_alive(AH).") == "true"
            assert not third.resolve_calls  # a ran its own fun: nothing asked of Python

    run(scenario())
