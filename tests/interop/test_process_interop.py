"""Python processes with the BEAM's semantics, as real Erlang processes observe them.

Every test runs against OTP 25 and OTP 28. The Erlang side is the evaluator
process of an ``erl`` node (registered as ``tester``): it learns a Python pid
from a message, then monitors, links, and kills as Erlang code would, and the
test reads what that Erlang process saw.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
from pathlib import Path

import pytest

from erldist import Atom, DecodeLimits, Down, Exit, Node, Pid, Process, ProcessExited, telemetry
from erldist.config import Config
from erldist.errors import CallTargetDown, CallTimeout
from tests.support import pypeer
from tests.support.aio import wait_for
from tests.support.nodes import erl, erl_until
from tests.support.otp import EpmdProcess, ErlNode, unique_name

pytestmark = pytest.mark.interop

COOKIE = "processcookie"
NOCONNECTION = Atom("noconnection")
ping = Atom("ping")


def start_erl(started: list[ErlNode], release: str, epmd: EpmdProcess) -> ErlNode:
    node = ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    started.append(node)
    node.eval("register(tester, self()).")
    return node


async def start_py(epmd: EpmdProcess) -> Node:
    return await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                            embedded_epmd=False)


async def teach(py: Node, e: ErlNode, var: str, pid: Pid) -> None:
    """Bind the Erlang variable ``var`` to ``pid`` in the tester's shell.

    The shell keeps every binding between evaluations, so each pattern
    variable here has a name of its own.
    """
    await py.send(("tester", e.name), (Atom("pid"), Atom(var), pid))
    got = await erl(e, f"{var} = receive {{pid, '{var}', P{var}}} -> P{var} after 10000 -> "
                       "timeout end, ok.")
    assert got == "ok"


def down_reason(e: ErlNode, ref_var: str, timeout_ms: int = 10000) -> str:
    return e.eval(f"receive {{'DOWN', {ref_var}, process, _, R}} -> R "
                  f"after {timeout_ms} -> timeout end.")


# --- Erlang watches Python ------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("normal", "normal"),
        ("custom", "{shutdown,<<\"bye\">>}"),
        ("kill", "killed"),
        ("exception", "{python,'ValueError',<<\"bad input\">>}"),
        ("node_stop", "noconnection"),
    ],
)
async def test_erlang_monitor_and_link_see_every_exit_of_a_python_process(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], how: str, expected: str
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    stopped = False
    try:
        started = asyncio.Event()

        async def body(p: Process) -> None:
            started.set()
            msg = await p.receive()
            if msg == Atom("raise"):
                raise ValueError("bad input")

        proc = py.spawn(body)
        await started.wait()
        await teach(py, e, "Py", proc.pid)
        await erl(e, "process_flag(trap_exit, true), link(Py), Ref = monitor(process, Py), ok.")
        if how == "normal":
            await py.send(proc.pid, Atom("go"))
        elif how == "custom":
            proc.exit((Atom("shutdown"), b"bye"))
        elif how == "kill":
            await erl(e, "exit(Py, kill).")
        elif how == "exception":
            await py.send(proc.pid, Atom("raise"))
        else:
            await py.stop()
            stopped = True
        got = await erl(e, "receive {'DOWN', Ref, process, Py, R} -> R after 10000 -> timeout "
                           f"end =:= {expected}.")
        assert got == "true"
        got = await erl(e, f"receive {{'EXIT', Py, R2}} -> R2 after 10000 -> timeout end =:= "
                           f"{expected}.")
        assert got == "true"
        if not stopped:
            await wait_for(lambda: not proc.alive, 10, "the Python process to exit")
    finally:
        await py.stop()


async def test_an_erlang_monitor_of_a_missing_python_process_is_noproc(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        gone = py.process()
        gone.exit()
        await teach(py, e, "Gone", gone.pid)
        await erl(e, f"R1 = monitor(process, Gone), R2 = monitor(process, {{nobody, '{py.name}'}}),"
                     " ok.")
        assert await asyncio.to_thread(down_reason, e, "R1") == "noproc"
        assert await asyncio.to_thread(down_reason, e, "R2") == "noproc"
        got = await erl(e, "process_flag(trap_exit, true), link(Gone), "
                           "receive {'EXIT', Gone, R} -> R after 10000 -> timeout end.")
        assert got == "noproc"
    finally:
        await py.stop()


async def test_an_untrapped_erlang_process_dies_with_its_linked_python_process(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        proc = py.process()
        await teach(py, e, "Py", proc.pid)
        await erl(e, "W = spawn(fun() -> link(Py), receive never -> ok end end), "
                     "WRef = monitor(process, W), ok.")
        await wait_for(lambda: len(proc.state.links) == 1, 10, "the link to arrive")
        proc.exit(Atom("crashed"))
        assert await asyncio.to_thread(down_reason, e, "WRef") == "crashed"
    finally:
        await py.stop()


async def test_a_python_node_killed_with_sigkill_is_noconnection_to_erlang(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    name = f"{unique_name('peer')}@127.0.0.1"
    peer = pypeer.spawn(name, COOKIE, epmd.port)
    try:
        assert peer.stdout is not None
        assert peer.stdout.readline().strip() == b"ready"
        await erl(e, f"process_flag(trap_exit, true), {{echo, '{name}'}} ! {{self(), hello}}, "
                     "EchoPid = receive {P, hello} when is_pid(P) -> P after 10000 -> "
                     "timeout end, link(EchoPid), Ref = monitor(process, EchoPid), ok.")
        os.kill(peer.pid, signal.SIGKILL)
        assert await asyncio.to_thread(down_reason, e, "Ref", 30000) == "noconnection"
        got = await erl(e, "receive {'EXIT', EchoPid, R} -> R after 10000 -> timeout end.")
        assert got == "noconnection"
    finally:
        peer.kill()
        peer.wait(10)


# --- Python watches Erlang ------------------------------------------------------------


async def test_python_monitors_erlang_processes_for_every_cause(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        watcher = py.process()
        await teach(py, e, "W", watcher.pid)
        await erl(e, "Spawn = fun() -> spawn(fun() -> receive {exit, R} -> exit(R) end end) end,"
                     " ok.")
        for n, reason in enumerate(("normal", "{custom, <<\"term\">>, 42}", "kill")):
            await erl(e, f"T{n} = Spawn(), W ! {{target, T{n}}}, ok.")
            (_, target) = await watcher.receive(10)
            ref = await watcher.monitor(target)
            await erl_until(e, f"element(2, process_info(T{n}, monitored_by)) =/= [].",
                            "the monitor to arrive")
            await erl(e, f"T{n} ! {{exit, {reason}}}, ok.")
            down = await watcher.receive(10)
            assert isinstance(down, Down) and down.ref == ref and down.object == target
            expected = {"normal": Atom("normal"), "kill": Atom("killed")}.get(
                reason, (Atom("custom"), b"term", 42))
            if reason == "kill":
                expected = Atom("kill")  # exit(kill) from itself: its monitors see 'kill'
            assert down.reason == expected
        ref = await watcher.monitor(("no_such_name", e.name))
        assert await watcher.receive(10) == Down(ref, (Atom("no_such_name"), Atom(e.name)),
                                                 Atom("noproc"))
        await erl(e, "register(named_target, Spawn()), ok.")
        ref = await watcher.monitor(("named_target", e.name))
        await erl_until(e, "element(2, process_info(whereis(named_target), monitored_by)) =/= [].",
                        "the monitor to arrive")
        await erl(e, "named_target ! {exit, bye}, ok.")
        assert await watcher.receive(10) == Down(ref, (Atom("named_target"), Atom(e.name)),
                                                 Atom("bye"))
        ref = await watcher.monitor(("anything", "nowhere@127.0.0.1"))
        assert await watcher.receive(10) == Down(
            ref, (Atom("anything"), Atom("nowhere@127.0.0.1")), NOCONNECTION)
    finally:
        await py.stop()


async def test_python_linked_to_erlang_dies_with_it_or_traps_the_exit(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        inbox = py.process()
        await teach(py, e, "I", inbox.pid)
        plain = py.process()
        trapping = py.process(trap_exit=True)
        await erl(e, "T1 = spawn(fun() -> receive {exit, R} -> exit(R) end end), I ! T1, ok.")
        target = await inbox.receive(10)
        await plain.link(target)
        await trapping.link(target)
        await erl_until(e, "length(element(2, process_info(T1, links))) =:= 2.",
                        "both links to arrive")
        await erl(e, "T1 ! {exit, {worker, failed}}, ok.")
        assert await trapping.receive(10) == Exit(target, (Atom("worker"), Atom("failed")))
        await wait_for(lambda: not plain.alive, 10, "the linked process to die")
        assert plain.exit_reason == (Atom("worker"), Atom("failed"))
        with pytest.raises(ProcessExited):
            await plain.receive(0)
        # exit/2 from Erlang: trappable, except kill.
        await teach(py, e, "Tr", trapping.pid)
        await erl(e, "exit(Tr, please_stop), ok.")
        exit_msg = await trapping.receive(10)
        assert isinstance(exit_msg, Exit) and exit_msg.reason == Atom("please_stop")
        await erl(e, "exit(Tr, kill), ok.")
        await wait_for(lambda: not trapping.alive, 10, "kill to end a trapping process")
        assert trapping.exit_reason == Atom("killed")
    finally:
        await py.stop()


async def test_links_and_monitors_break_with_noconnection_when_erlang_dies(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        inbox = py.process()
        await teach(py, e, "I", inbox.pid)
        await erl(e, "T = spawn(fun() -> receive _ -> ok end end), I ! T, ok.")
        target = await inbox.receive(10)
        trapping = py.process(trap_exit=True)
        await trapping.link(target)
        ref = await trapping.monitor(target)
        await trapping.monitor_node(e.name)
        await erl_until(e, "element(2, process_info(T, monitored_by)) =/= [] andalso "
                           "element(2, process_info(T, links)) =/= [].", "link and monitor")
        e.proc.kill()  # SIGKILL: no goodbye on the wire
        got = [await trapping.receive(30) for _ in range(3)]
        assert Exit(target, NOCONNECTION) in got
        assert Down(ref, target, NOCONNECTION) in got
        assert any(getattr(m, "node", None) == e.name for m in got)
    finally:
        await py.stop()


async def test_unlink_racing_an_exit_leaves_the_python_process_alive(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        inbox = py.process()
        await teach(py, e, "I", inbox.pid)
        for n in range(20):
            proc = py.process(trap_exit=n % 2 == 1)
            await erl(e, f"T{n} = spawn(fun() -> receive go -> exit(racing) end end), I ! T{n}, "
                         "ok.")
            target = await inbox.receive(10)
            await proc.link(target)
            await erl_until(e, f"element(2, process_info(T{n}, links)) =/= [].", "the link")
            # 'go' and the unlink leave in one write: the target exits before it
            # reads the UNLINK_ID, so its EXIT crosses our unlink on the wire.
            await proc.send(target, Atom("go"))
            proc.unlink(target)
            with pytest.raises(TimeoutError):
                await proc.receive(0.3)  # no EXIT message for a trapping one either
            assert proc.alive, proc.exit_reason
            proc.exit()
    finally:
        await py.stop()


async def test_an_erlang_supervisor_restarts_a_child_that_dies_with_its_python_peer(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode], tmp_path: Path
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        peer = py.process("py_peer")
        await teach(py, e, "PyPid", peer.pid)
        # OTP's supervisor needs a callback module: compile a tiny one. Its one
        # child links to the Python process.
        src = (
            "-module(py_sup).\n-behaviour(supervisor).\n-export([init/1, start_child/1]).\n"
            "init(Py) -> {ok, {#{strategy => one_for_one, intensity => 10, period => 10},\n"
            "  [#{id => c, start => {py_sup, start_child, [Py]}}]}}.\n"
            "start_child(Py) -> Pid = spawn_link(fun() -> link(Py),\n"
            "  tester ! {child_up, self()}, receive never -> ok end end), {ok, Pid}.\n"
        )
        # Compiled by OTP 25's erlc: the OTP 28 runtime the tests use has no compiler,
        # and loads OTP 25 code.
        (tmp_path / "py_sup.erl").write_text(src)
        subprocess.run(["erlc", "-o", str(tmp_path), str(tmp_path / "py_sup.erl")], check=True,
                       timeout=60)
        beam = base64.b64encode((tmp_path / "py_sup.beam").read_bytes()).decode()
        await erl(e, f"{{module, py_sup}} = code:load_binary(py_sup, \"py_sup.beam\", "
                     f"base64:decode(<<\"{beam}\">>)), ok.")
        await erl(e, "{ok, Sup} = supervisor:start_link(py_sup, PyPid), unlink(Sup), ok.")
        first = await erl(e, "receive {child_up, C1} -> C1 after 10000 -> timeout end.")
        assert first.startswith("<")
        await wait_for(lambda: len(peer.state.links) == 1, 10, "the child's link")
        # The Python process dies: the child dies with it and the supervisor restarts it.
        peer.exit(Atom("python_went_away"))
        second = await erl(e, "receive {child_up, C2} -> C2 after 10000 -> timeout end.")
        assert second.startswith("<") and second != first
    finally:
        await py.stop()


# --- messages -------------------------------------------------------------------------


async def test_100k_messages_each_way_by_pid_and_name_none_lost_or_reordered_with_a_small_bound(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    count = 100_000
    try:
        sink = py.process("sink", maxsize=500)  # far below the count: back-pressure
        await teach(py, e, "Sink", sink.pid)
        blast = asyncio.ensure_future(asyncio.to_thread(
            e.eval, f"[Sink ! {{seq, I}} || I <- lists:seq(1, {count // 2})], "
                    f"[{{sink, '{py.name}'}} ! {{seq, I}} || I <- lists:seq({count // 2 + 1}, "
                    f"{count})], done.", 120))
        for i in range(1, count + 1):
            assert await sink.receive(60) == (Atom("seq"), i)
        assert await blast == "done"
        assert sink.mailbox.dropped == 0
        connection = py.connection(e.name)
        assert connection is not None and connection.dropped == 0
        assert connection.pauses > 0  # the bound was reached and pushed back
        # Python -> Erlang, by pid and by name; Erlang checks order and count.
        collector = await asyncio.to_thread(e.eval, f"""
            Collect = spawn(fun() -> Loop = fun L(N) when N > {count} -> tester ! {{got, N - 1}};
                                                L(N) -> receive {{seq, N}} -> L(N + 1) end end,
                                     Loop(1) end), register(collector, Collect), ok.""")
        assert collector == "ok"
        target_pid = await erl_collect_pid(py, e)
        sender = py.process()
        for i in range(1, count // 2 + 1):
            await sender.send(target_pid, (Atom("seq"), i))
        for i in range(count // 2 + 1, count + 1):
            await sender.send(("collector", e.name), (Atom("seq"), i))
        got = await erl(e, "receive {got, N} -> N after 60000 -> timeout end.")
        assert got == str(count)
    finally:
        await py.stop()


async def erl_collect_pid(py: Node, e: ErlNode) -> Pid:
    inbox = py.process()
    await teach(py, e, "Inbox", inbox.pid)
    await erl(e, "Inbox ! whereis(collector), ok.")
    pid = await inbox.receive(10)
    assert isinstance(pid, Pid)
    inbox.exit()
    return pid


async def test_calls_from_python_fail_fast_for_missing_targets_and_time_out_cleanly(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    py = await start_py(epmd)
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(CallTargetDown) as info:
            await py.call(("no_such_server", e.name), ping, timeout=20)
        assert info.value.reason == Atom("noproc") and loop.time() - t0 < 10
        await erl(e, "register(silent, spawn(fun() -> receive _ -> timer:sleep(infinity) end "
                     "end)), ok.")
        with pytest.raises(CallTimeout):
            await py.call(("silent", e.name), ping, timeout=0.5)
        assert py._calls is not None and py._calls.pending == 0
        monitors = sum(len(p.state.monitors) for p in py.router.processes())
        assert monitors == 0
    finally:
        await py.stop()



async def test_the_decode_caps_and_the_drop_policy_are_the_users_to_set(
    release: str, epmd: EpmdProcess, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, release, epmd)
    dropped: list[telemetry.MessageDropped] = []

    def record(event: telemetry.TelemetryEvent) -> None:
        if isinstance(event, telemetry.MessageDropped):
            dropped.append(event)

    telemetry.attach(record)
    default = await start_py(epmd)
    roomy = await Node.start(f"{unique_name('py')}@127.0.0.1", COOKIE, epmd_port=epmd.port,
                             embedded_epmd=False,
                             config=Config(decode_limits=DecodeLimits(max_elements=3_000_000)))
    try:
        big = "lists:seq(1, 1500000)"  # 1.5 M elements: over the default cap of 1 M
        for node in (default, roomy):
            box = node.process("big")
            await erl(e, f"{{big, '{node.name}'}} ! {big}, {{big, '{node.name}'}} ! done_big, ok.")
            first = await box.receive(60)
            if node is default:
                assert first == Atom("done_big")
                conn = node.connection(e.name)
                assert conn is not None and conn.dropped == 1
            else:
                assert isinstance(first, list) and len(first) == 1_500_000
                assert await box.receive(10) == Atom("done_big")
        # The drop policy: a bound of 50, 200 messages, the rest refused and counted.
        small = default.process("small", maxsize=50, overflow="drop")
        await erl(e, f"[{{small, '{default.name}'}} ! I || I <- lists:seq(1, 200)], "
                     f"{{big, '{default.name}'}} ! sent, ok.")
        big_box = default.router.lookup(Atom("big"))
        assert big_box is not None and await big_box.receive(30) == Atom("sent")
        assert len(small.mailbox) == 50 and small.mailbox.dropped == 150
        assert [await small.receive(0) for _ in range(50)] == list(range(1, 51))
        telemetry.flush()
        reasons = [d.reason for d in dropped]
        assert reasons.count("undecodable") == 1 and reasons.count("mailbox_full") == 150
    finally:
        telemetry.detach(record)
        await default.stop()
        await roomy.stop()
