"""``erldist.gleam`` from plain threaded code (``erldist.cluster``) against the Gleam
stand-in on real OTP 25 and 28; no asyncio here on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from erldist import cluster, gleam
from erldist.codec import INT
from tests.support.erl_modules import load_module
from tests.support.gleam_service import GLEAM_PEER, SERVICE, Counter, GetCount, Increment, counter
from tests.support.otp import EpmdProcess, ErlNode, unique_name, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("fresh_facade")]

COOKIE = "gleamsynccookie"


@pytest.fixture
def erl(release: str, epmd: EpmdProcess, tmp_path: Path) -> Iterator[ErlNode]:
    node = ErlNode(release, name=f"{unique_name('g')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    try:
        node.eval("register(tester, self()).")
        load_module(node, GLEAM_PEER, tmp_path)
        yield node
    finally:
        node.stop()


def test_sync_code_sends_calls_serves_and_receives_typed(epmd: EpmdProcess, erl: ErlNode) -> None:
    cluster.start_node(f"{unique_name('s')}@127.0.0.1", COOKIE, epmd_port=epmd.port)
    cluster.connect(erl.name)
    assert erl.eval("global:sync().") == "ok"

    # Python -> the Gleam actor, found through global.
    assert erl.eval('is_pid(gleam_peer:start_counter(<<"sync.counter">>)).') == "true"
    wait_until(lambda: cluster.whereis_name("sync.counter") is not None, 20,
               "sync.counter in Python")
    remote = cluster.subject_lookup("sync.counter", SERVICE)
    cluster.subject_send(remote, Increment(4))
    assert cluster.subject_call(remote, GetCount, INT, timeout=10) == 4

    # The Gleam side -> a Python actor registered from sync code.
    actor = cluster.actor_start(SERVICE, counter, Counter(count=11), name="sync.py")
    wait_until(lambda: erl.eval('is_pid(global:whereis_name(<<"sync.py">>)).') == "true", 20,
               "sync.py in Erlang")
    assert erl.eval('gleam_peer:call(<<"sync.py">>, 10000).') == "{ok,11}"
    cluster.actor_stop(actor)
    assert not actor.alive

    # A typed receive on a process of this thread's own.
    inbox = cluster.process()
    subject = gleam.Subject(inbox.pid, "inbox", INT)
    inbox.send(("tester", erl.name), inbox.pid)
    erl.eval('receive P when is_pid(P) -> P ! {other, <<1:64>>}, '
             'P ! {<<"inbox">>, <<42:64>>} after 10000 -> timeout end.')
    assert inbox.receive_typed(subject, timeout=10) == 42
    assert inbox.receive(timeout=1) == ("other", b"\x00" * 7 + b"\x01")
