"""A node SIGKILLed while an Erlang node's handshake to it is half made (OTP 25 and 28).

The node (Python, or ``erl`` as the control) is SIGSTOPped, so the Erlang
node's dial lands in its kernel's listen backlog: connected, ``send_name``
written, waiting for our status, nothing accepted by the stopped process.
Then it is SIGKILLed. Its kernel resets what it never accepted, so the Erlang
node learns of the death from the socket at once, not at its setup timeout
(``net_setuptime``, 7 s), the wait that a ``nok`` answered in a simultaneous
connect costs (see test_simultaneous_dial_interop.py).
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.support import pypeer
from tests.support.otp import EpmdProcess, ErlNode, unique_name, wait_until

pytestmark = pytest.mark.interop

COOKIE = "killmidhandshake"
SETUP_TIME_MS = 7000  # net_setuptime, what a dial waiting for nothing would cost


@pytest.mark.parametrize("victim", ["python", "erl"])
def test_a_node_killed_while_an_erl_dials_it_is_forgotten_at_once(
    release: str, epmd: EpmdProcess, victim: str
) -> None:
    name = f"{unique_name('k')}@127.0.0.1"
    erl = ErlNode(release, name=f"{unique_name('a')}@127.0.0.1", cookie=COOKIE,
                  epmd_port=epmd.port)
    victim_erl: ErlNode | None = None
    peer: subprocess.Popen[bytes] | None = None
    try:
        if victim == "erl":
            victim_erl = ErlNode(release, name=name, cookie=COOKIE, epmd_port=epmd.port)
            pid = victim_erl.proc.pid
        else:
            peer = pypeer.spawn(name, COOKIE, epmd.port)
            assert peer.stdout is not None
            assert peer.stdout.readline().strip() == b"ready"
            pid = peer.pid
        os.kill(pid, signal.SIGSTOP)
        erl.eval(f"Me = self(), spawn(fun() -> R = net_adm:ping('{name}'), "
                 "Me ! {pinged, R, erlang:monotonic_time(millisecond)} end), ok.")

        def waiting_for_status() -> bool:
            # The dial's owner (element 5 of net_kernel's connection record) sits
            # in dist_util's recv_status: connected, its name written.
            return "recv_status" in erl.eval(
                f"[catch process_info(element(5, C), current_stacktrace) "
                f"|| C <- ets:lookup(sys_dist, '{name}')].")

        wait_until(waiting_for_status, 30, "the erl's dial waiting for the status")
        at_kill = int(erl.eval("erlang:monotonic_time(millisecond)."))
        os.kill(pid, signal.SIGKILL)
        answer = erl.eval("receive {pinged, R, T} -> {R, T} after 20000 -> none end.")
        result, _, at_answer = answer.strip("{}").partition(",")
        assert result == "pang"
        elapsed = int(at_answer) - at_kill
        print(f"OTP {release}, {victim} node killed mid-handshake: pang after {elapsed} ms")
        assert elapsed < SETUP_TIME_MS / 2, elapsed
    finally:
        if victim_erl is not None:
            victim_erl.stop()
        if peer is not None:
            peer.kill()
            peer.wait()
            for stream in (peer.stdin, peer.stdout):
                if stream is not None:
                    stream.close()
        erl.stop()
