"""Calls, Python servers and RPC without sockets: a fake network records signals.

The interop tests check the same protocol against real Erlang and Elixir nodes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from erldist import telemetry
from erldist.errors import (
    CallTargetDown,
    CallTimeout,
    RpcExit,
    RpcKilled,
    RpcNodeDown,
    RpcRaised,
    RpcRefused,
    RpcThrow,
    RpcTimeout,
    RpcUndefined,
    ServerStartFailed,
)
from erldist.protocol import signals
from erldist.runtime.gen import CallClient
from erldist.runtime.gen_server import NOREPLY, From, GenServer, start_server
from erldist.runtime.router import Router
from erldist.runtime.rpc import RpcClient, RpcServer
from erldist.runtime.services.io_server import IoServer
from erldist.term.types import Atom, ImproperList, Pid, Reference
from tests.unit.test_router import PEER, REMOTE, Link, make

NOPROC = Atom("noproc")


class Counter(GenServer):
    """Counts calls; defers ``later`` calls; raises on ``crash``."""

    def __init__(self) -> None:
        self.count = 0
        self.deferred: list[From] = []
        self.casts: list[Any] = []
        self.terminated: list[Any] = []

    async def init(self, start: int) -> None:
        if start < 0:
            raise ValueError("negative start")
        self.count = start

    async def handle_call(self, request: Any, from_: From) -> Any:
        if request == Atom("crash"):
            raise RuntimeError("handler failed")
        if request == Atom("later"):
            self.deferred.append(from_)
            return NOREPLY
        if request == Atom("stop"):
            self.stop(Atom("asked"))
            return Atom("stopping")
        self.count += 1
        return (request, self.count)

    def handle_cast(self, request: Any) -> None:  # a plain method works too
        self.casts.append(request)

    async def terminate(self, reason: Any) -> None:
        self.terminated.append(reason)


async def server(router: Router, srv: GenServer, *args: Any, name: str | None = None) -> Pid:
    return await start_server(router, srv, args, name=name, link=None, timeout=5)


def events() -> list[Any]:
    got: list[Any] = []
    telemetry.attach(got.append)
    return got


async def test_a_call_to_a_python_server_by_name_and_pid_leaves_no_alias_or_monitor() -> None:
    router, _ = make()
    calls = CallClient(router)
    srv = Counter()
    pid = await server(router, srv, 10, name="counter")
    assert await calls.call("counter", Atom("a"), 5) == (Atom("a"), 11)
    assert await calls.call(pid, Atom("b"), 5) == (Atom("b"), 12)
    assert calls.pending == 0
    assert not calls.process.state.monitors and not calls.process.state.aliases
    assert not srv.process.state.watchers


async def test_calls_are_served_one_at_a_time_in_arrival_order() -> None:
    router, _ = make()
    calls = CallClient(router)
    await server(router, Counter(), 0, name="counter")
    results = await asyncio.gather(*(calls.call("counter", i, 5) for i in range(50)))
    assert results == [(i, i + 1) for i in range(50)]


async def test_a_deferred_reply_reaches_the_caller_and_casts_arrive() -> None:
    router, _ = make()
    calls = CallClient(router)
    srv = Counter()
    await server(router, srv, 0, name="counter")
    waiting = asyncio.ensure_future(calls.call("counter", Atom("later"), 5))
    await calls.cast("counter", Atom("hello"))
    while not srv.deferred:
        await asyncio.sleep(0)
    assert not waiting.done()
    srv.reply(srv.deferred[0], Atom("done"))
    assert await waiting == Atom("done")
    assert srv.casts == [Atom("hello")]


async def test_a_raising_handler_ends_the_server_and_the_caller_gets_its_reason() -> None:
    router, _ = make()
    calls = CallClient(router)
    srv = Counter()
    pid = await server(router, srv, 0, name="counter")
    seen = events()
    try:
        with pytest.raises(CallTargetDown) as info:
            await calls.call(pid, Atom("crash"), 5)
    finally:
        telemetry.flush()
        telemetry.detach(seen.append)
    reason = (Atom("python"), Atom("RuntimeError"), b"handler failed")
    assert info.value.reason == reason
    assert srv.terminated == [reason]
    assert router.whereis("counter") is None
    assert telemetry.CallTargetDown(repr(pid), repr(reason)) in seen


async def test_stop_replies_then_ends_the_server_with_the_reason() -> None:
    router, _ = make()
    calls = CallClient(router)
    srv = Counter()
    await server(router, srv, 0, name="counter")
    assert await calls.call("counter", Atom("stop"), 5) == Atom("stopping")
    while srv.process.alive:
        await asyncio.sleep(0)
    assert srv.process.exit_reason == Atom("asked")
    assert srv.terminated == [Atom("asked")]


async def test_init_that_raises_fails_the_start() -> None:
    router, _ = make()
    with pytest.raises(ServerStartFailed) as info:
        await server(router, Counter(), -1, name="counter")
    assert info.value.reason == (Atom("python"), Atom("ValueError"), b"negative start")
    assert router.whereis("counter") is None


async def test_a_call_to_a_missing_name_or_dead_pid_is_noproc_at_once() -> None:
    router, _ = make()
    calls = CallClient(router)
    gone = router.new_process()
    gone.exit()
    loop = asyncio.get_running_loop()
    for dest in ("nobody", gone.pid):
        t0 = loop.time()
        with pytest.raises(CallTargetDown) as info:
            await calls.call(dest, Atom("x"), 30)
        assert info.value.reason == NOPROC and loop.time() - t0 < 1
    assert calls.pending == 0 and not calls.process.state.monitors


async def test_a_timed_out_call_leaves_nothing_and_its_late_reply_is_dropped() -> None:
    router, _ = make()
    calls = CallClient(router)
    srv = Counter()
    await server(router, srv, 0, name="counter")
    seen = events()
    try:
        with pytest.raises(CallTimeout):
            await calls.call("counter", Atom("later"), 0.05)
    finally:
        telemetry.flush()
        telemetry.detach(seen.append)
    assert telemetry.CallTimedOut(0.05, "'counter'") in seen
    assert calls.pending == 0
    assert not calls.process.state.monitors and not calls.process.state.aliases
    srv.reply(srv.deferred[0], Atom("too late"))  # to an alias that is gone: dropped
    raw = srv.deferred[0]
    router.send_nowait(srv.process.pid, raw.pid, (raw.tag, Atom("to the pid")))  # dropped here
    assert calls.pending == 0 and not calls.process.mailbox._queue


async def test_a_call_sends_an_alias_tag_and_a_monitor_to_a_remote_server() -> None:
    router, net = make()
    calls = CallClient(router)
    call = asyncio.ensure_future(calls.call(("srv", PEER), Atom("q"), 5))
    while len(net.links[PEER].sent) < 2:
        await asyncio.sleep(0)
    monitor, message = net.links[PEER].sent  # the monitor leads, as in gen:call
    assert isinstance(monitor, signals.MonitorSignal) and monitor.target == Atom("srv")
    assert isinstance(message, signals.MessageSignal)
    tag = ImproperList((Atom("alias"),), monitor.ref)
    assert message.message == (Atom("$gen_call"), (calls.process.pid, tag), Atom("q"))
    # The server answers to the alias (ALIAS_SEND), as gen:reply does.
    router.dispatch(signals.MessageSignal(REMOTE, monitor.ref, (tag, Atom("a"))),
                    net.links[PEER])
    assert await call == Atom("a")
    assert isinstance(net.links[PEER].sent[-1], signals.DemonitorSignal)


async def test_a_call_whose_node_goes_down_fails_with_noconnection() -> None:
    router, net = make()
    calls = CallClient(router)
    call = asyncio.ensure_future(calls.call(("srv", PEER), Atom("q"), 30))
    while len(net.links[PEER].sent) < 2:
        await asyncio.sleep(0)
    router.node_down(PEER)
    with pytest.raises(CallTargetDown) as info:
        await call
    assert info.value.reason == Atom("noconnection")


# --- erpc into Python ------------------------------------------------------------------------


def spawn_call(router: Router, link: Link, module: str, function: str,
               args: list[Any]) -> tuple[Reference, Reference]:
    req_id, res = router.make_ref(), router.make_ref()
    router.dispatch(signals.SpawnRequestSignal(
        req_id, REMOTE, REMOTE, Atom("erpc"), Atom("execute_call"),
        [res, Atom(module), Atom(function), args], [Atom("monitor")]),
        link)
    return req_id, res


async def down_of(link: Link, req_id: Reference) -> Any:
    for _ in range(1000):
        for sig in link.sent:
            if isinstance(sig, signals.DownSignal) and sig.ref == req_id:
                return sig.reason
        await asyncio.sleep(0)
    raise AssertionError("no DOWN")


async def test_erpc_runs_exposed_functions_sync_and_async() -> None:
    router, net = make()
    rpc = RpcServer(router)
    link = net.links[PEER]

    async def slow_add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    rpc.expose("calc", "add", lambda a, b: a + b)
    rpc.expose("calc", "slow_add", slow_add)
    rpc.expose("calc", "nothing", lambda: None)
    req_id, res = spawn_call(router, link, "calc", "add", [1, 2])
    reply = link.sent[0]
    assert isinstance(reply, signals.SpawnReplySignal) and reply.flags == 2
    assert reply.req_id == req_id and isinstance(reply.result, Pid)
    assert await down_of(link, req_id) == (res, Atom("return"), 3)
    req_id, res = spawn_call(router, link, "calc", "slow_add", [40, 2])
    assert await down_of(link, req_id) == (res, Atom("return"), 42)
    req_id, res = spawn_call(router, link, "calc", "nothing", [])
    assert await down_of(link, req_id) == (res, Atom("return"), Atom("ok"))
    assert rpc.running == 0


async def test_erpc_of_an_unexposed_function_or_wrong_arity_is_undef() -> None:
    router, net = make()
    rpc = RpcServer(router)
    rpc.expose("calc", "add", lambda a, b: a + b)
    link = net.links[PEER]
    for module, function, args in (("calc", "nope", [1]), ("os", "system", [b"ls"]),
                                   ("calc", "add", [1])):
        req_id, res = spawn_call(router, link, module, function, args)
        assert await down_of(link, req_id) == (
            res, Atom("error"), Atom("undef"), [(Atom(module), Atom(function), args, [])])
    assert rpc.unexpose("calc", "add") and not rpc.unexpose("calc", "add")


async def test_erpc_exceptions_throws_and_exits_answer_as_erlang_reports_them() -> None:
    router, net = make()
    rpc = RpcServer(router)
    link = net.links[PEER]

    def fail(text: bytes) -> None:
        raise ValueError(text.decode())

    def throw(value: Any) -> None:
        raise RpcThrow(value)

    def leave(reason: Any) -> None:
        raise RpcExit(reason)

    rpc.expose("m", "fail", fail)
    rpc.expose("m", "throw", throw)
    rpc.expose("m", "exit", leave)
    rpc.expose("m", "unencodable", object)
    req_id, res = spawn_call(router, link, "m", "fail", [b"bad input"])
    assert await down_of(link, req_id) == (
        res, Atom("error"), (Atom("python"), Atom("ValueError"), b"bad input"),
        [(Atom("m"), Atom("fail"), 1, [])])
    req_id, res = spawn_call(router, link, "m", "throw", [42])
    assert await down_of(link, req_id) == (res, Atom("throw"), 42)
    req_id, res = spawn_call(router, link, "m", "exit", [Atom("bye")])
    assert await down_of(link, req_id) == (res, Atom("exit"), Atom("bye"))
    req_id, res = spawn_call(router, link, "m", "unencodable", [])
    reason = await down_of(link, req_id)
    assert reason[:2] == (res, Atom("error")) and reason[2][1] == Atom("erldist.errors.EncodeError")


async def test_a_caller_that_demonitors_or_goes_away_ends_the_running_function() -> None:
    router, net = make()
    rpc = RpcServer(router)
    link = net.links[PEER]
    cancelled: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    rpc.expose("m", "forever", forever)
    before = len(router.processes())
    req_id, _ = spawn_call(router, link, "m", "forever", [])
    reply = link.sent[0]
    assert isinstance(reply, signals.SpawnReplySignal) and isinstance(reply.result, Pid)
    await asyncio.sleep(0.01)
    assert rpc.running == 1
    router.dispatch(signals.DemonitorSignal(REMOTE, reply.result, req_id), link)
    for _ in range(100):
        await asyncio.sleep(0)
    assert cancelled == [True] and rpc.running == 0 and len(router.processes()) == before
    spawn_call(router, link, "m", "forever", [])
    await asyncio.sleep(0.01)
    router.node_down(PEER)
    for _ in range(100):
        await asyncio.sleep(0)
    assert cancelled == [True, True] and rpc.running == 0


async def test_erpc_cast_runs_and_other_spawns_are_notsup() -> None:
    router, net = make()
    rpc = RpcServer(router)
    link = net.links[PEER]
    got: list[Any] = []
    rpc.expose("m", "note", got.append)
    req_id = router.make_ref()
    router.dispatch(signals.SpawnRequestSignal(req_id, REMOTE, REMOTE, Atom("erpc"),
                                               Atom("execute_cast"),
                                               [Atom("m"), Atom("note"), [7]], []), link)
    reply = link.sent[0]
    assert isinstance(reply, signals.SpawnReplySignal) and reply.flags == 0
    for _ in range(10):
        await asyncio.sleep(0)
    assert got == [7]
    other = router.make_ref()
    router.dispatch(signals.SpawnRequestSignal(other, REMOTE, REMOTE, Atom("erlang"),
                                               Atom("node"), [], []), link)
    assert link.sent[-1] == signals.SpawnReplySignal(other, REMOTE, 0, Atom("notsup"))
    # A peer cannot have us run something in another node's name.
    elsewhere = Pid(Atom("third@127.0.0.1"), 1, 0, 1)
    forged = router.make_ref()
    router.dispatch(signals.SpawnRequestSignal(forged, elsewhere, elsewhere, Atom("erpc"),
                                               Atom("execute_cast"),
                                               [Atom("m"), Atom("note"), [8]], []), link)
    assert link.sent[-1] == signals.SpawnReplySignal(forged, elsewhere, 0, Atom("badarg"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert got == [7]


# --- rpc into Erlang -------------------------------------------------------------------------


async def rpc_request(
    link: Link, client: RpcClient, mfa: tuple[str, str, list[Any]], timeout: float = 5
) -> tuple[asyncio.Future[Any], signals.SpawnRequestSignal]:
    before = len(link.sent)
    call = asyncio.ensure_future(client.rpc(PEER, mfa[0], mfa[1], mfa[2], timeout))
    for _ in range(100):
        if len(link.sent) > before and isinstance(link.sent[-1], signals.SpawnRequestSignal):
            break
        await asyncio.sleep(0)
    request = link.sent[-1]
    assert isinstance(request, signals.SpawnRequestSignal)
    return call, request


def answer(router: Router, link: Link, request: signals.SpawnRequestSignal, reason: Any) -> Pid:
    worker = Pid(Atom(PEER), 500, 0, 3)
    router.dispatch(signals.SpawnReplySignal(request.req_id, request.sender, 2, worker), link)
    router.dispatch(signals.DownSignal(worker, request.sender, request.req_id, reason), link)
    return worker


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (lambda res: (res, Atom("throw"), 1), RpcThrow),
        (lambda res: (res, Atom("exit"), Atom("x")), RpcExit),
        (lambda res: (res, Atom("error"), Atom("badarith"), []), RpcRaised),
        (lambda res: (res, Atom("error"), Atom("undef"), []), RpcUndefined),
        (lambda res: (res, Atom("error"), (Atom("erpc"), Atom("system_limit"))), RpcRefused),
        (lambda res: Atom("killed"), RpcKilled),
        (lambda res: Atom("noconnection"), RpcNodeDown),
    ],
)
async def test_rpc_maps_every_erpc_outcome_to_a_typed_exception(
    outcome: Any, expected: type[Exception]
) -> None:
    router, net = make()
    link = net.links[PEER]
    client = RpcClient(router, IoServer(router).process.pid)
    call, request = await rpc_request(link, client, ("m", "f", [1]))
    assert (request.module, request.function) == (Atom("erpc"), Atom("execute_call"))
    assert request.opts == [Atom("monitor")]
    res, m, f, a = request.args
    assert (m, f, a) == (Atom("m"), Atom("f"), [1])
    answer(router, link, request, outcome(res))
    with pytest.raises(expected):
        await call
    assert client.pending == 0 and not client.process.state.monitors


async def test_rpc_returns_the_value_and_a_refused_spawn_is_typed() -> None:
    router, net = make()
    link = net.links[PEER]
    client = RpcClient(router, IoServer(router).process.pid)
    call, request = await rpc_request(link, client, ("m", "f", []))
    answer(router, link, request, (request.args[0], Atom("return"), [1, 2]))
    assert await call == [1, 2]
    call, request = await rpc_request(link, client, ("m", "f", []))
    router.dispatch(signals.SpawnReplySignal(request.req_id, request.sender, 0, Atom("notsup")),
                    link)
    with pytest.raises(RpcRefused) as info:
        await call
    assert info.value.reason == Atom("notsup")
    with pytest.raises(RpcNodeDown):
        await client.rpc("nowhere@127.0.0.1", "m", "f", [], 5)


async def test_an_rpc_timeout_abandons_the_request_and_drops_what_comes_later() -> None:
    router, net = make()
    link = net.links[PEER]
    client = RpcClient(router, IoServer(router).process.pid)
    call, request = await rpc_request(link, client, ("m", "f", []), 0.05)
    with pytest.raises(RpcTimeout):
        await call
    # The reply comes after the caller gave up: the spawned process is told to go.
    worker = answer(router, link, request, (request.args[0], Atom("return"), 1))
    assert signals.ExitSignal(request.sender, worker, Atom("abandoned"), linked=False) in link.sent
    assert client.pending == 0 and not client.process.state.monitors
    # After the reply: the monitor is dropped on timeout.
    call, request = await rpc_request(link, client, ("m", "f", []), 0.2)
    worker = Pid(Atom(PEER), 501, 0, 3)
    router.dispatch(signals.SpawnReplySignal(request.req_id, request.sender, 2, worker), link)
    with pytest.raises(RpcTimeout):
        await call
    assert link.sent[-1] == signals.DemonitorSignal(request.sender, worker, request.req_id)
    router.dispatch(signals.DownSignal(worker, request.sender, request.req_id, Atom("late")),
                    link)
    assert client.pending == 0 and not client.process.state.monitors


async def test_the_io_server_answers_every_request() -> None:
    router, net = make()
    io = IoServer(router)
    link = net.links[PEER]
    for request, expected in (
        ((Atom("put_chars"), Atom("unicode"), b"hello\n"), Atom("ok")),
        ((Atom("put_chars"), Atom("unicode"), Atom("io_lib"), Atom("format"), [b"~p", [1]]),
         Atom("ok")),
        ((Atom("get_line"), Atom("unicode"), b"> "), (Atom("error"), Atom("enotsup"))),
    ):
        router.dispatch(signals.MessageSignal(REMOTE, io.process.pid,
                                              (Atom("io_request"), REMOTE, 5, request)), link)
        sent = link.sent[-1]
        assert isinstance(sent, signals.MessageSignal)
        assert sent.message == (Atom("io_reply"), 5, expected)


async def test_down_from_the_wrong_node_does_not_end_a_call() -> None:
    router, net = make()
    calls = CallClient(router)
    call = asyncio.ensure_future(calls.call(("srv", PEER), Atom("q"), 0.2))
    while len(net.links[PEER].sent) < 2:
        await asyncio.sleep(0)
    monitor = net.links[PEER].sent[0]
    assert isinstance(monitor, signals.MonitorSignal)
    other = Link("other@127.0.0.1")
    router.dispatch(signals.DownSignal(Atom("srv"), calls.process.pid, monitor.ref,
                                       Atom("fake")), other)
    with pytest.raises(CallTimeout):  # the fake DOWN did not end it
        await call
    assert calls.pending == 0 and not calls.process.state.monitors


async def test_an_unmonitored_call_sends_no_monitor_and_ends_at_nodedown() -> None:
    router, net = make()
    calls = CallClient(router)
    link: Link = net.links[PEER]
    pending = asyncio.ensure_future(
        calls.call(("net_kernel", PEER), Atom("is_auth"), 30, monitor=False))
    await asyncio.sleep(0)
    assert [type(s) for s in link.sent] == [signals.MessageSignal]  # no MONITOR_P
    router.node_down(PEER)
    calls.node_down(PEER)
    with pytest.raises(CallTargetDown) as info:
        await asyncio.wait_for(pending, 5)
    assert info.value.reason == Atom("noconnection")
    assert calls.pending == 0


async def test_remote_calls_share_one_deadline_timer_and_each_times_out_on_its_own() -> None:
    router, net = make()
    calls = CallClient(router)
    link = net.links[PEER]
    loop = asyncio.get_running_loop()
    started = loop.time()
    # Answered calls leave heap entries behind; they are dropped, never fired.
    for n in range(300):
        call = asyncio.ensure_future(calls.call(("srv", PEER), n, 30))
        while not link.sent or not isinstance(link.sent[-1], signals.MessageSignal):
            await asyncio.sleep(0)
        request = link.sent[-1]
        tag = request.message[1][1]
        router.dispatch(signals.MessageSignal(REMOTE, tag.tail, (tag, n)), link)
        assert await call == n
        link.sent.clear()
    assert len(calls._deadlines._heap) <= 2 * calls.pending + 65
    # Unanswered calls end one by one, each at its own deadline.
    timeouts = [0.05, 0.2, 0.1]
    waiting = [asyncio.ensure_future(calls.call(("srv", PEER), Atom("q"), t)) for t in timeouts]
    ended: list[float] = []
    for fut in asyncio.as_completed(waiting):
        with pytest.raises(CallTimeout):
            await fut
        ended.append(loop.time())
    assert ended == sorted(ended)
    assert ended[-1] - started >= 0.2
    assert calls.pending == 0
    assert not calls.process.state.monitors and not calls.process.state.aliases
