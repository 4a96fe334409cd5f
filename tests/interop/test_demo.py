"""``erldist demo``, the README's main job: runs to the end and leaves nothing behind.

The demo runs as a user runs it, as a subprocess, with the real ``erl`` of
each OTP release first on the PATH, and once with no Erlang at all. After
every run, finished or interrupted, no process may remain that belongs to it:
the Python nodes carry the demo's private EPMD port on their command line and
the Erlang node in its environment, so ``/proc`` shows any straggler.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.otp import erl_path, wait_until

pytestmark = pytest.mark.interop

DEMO = [sys.executable, "-m", "erldist", "demo"]


def demo_env(path: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ERLDIST_COOKIE", "ERL_EPMD_PORT")}
    return env | {"PATH": path, "HOME": str(home)}


def epmd_port_of(output: str) -> int:
    found = re.search(r"private EPMD on 127\.0\.0\.1:(\d+)", output)
    assert found, output
    return int(found.group(1))


def leftovers(epmd_port: int) -> list[str]:
    """Every process still tied to the demo's EPMD port, by command line or environment."""
    mark_argv = f"--epmd-port\0{epmd_port}\0".encode()
    mark_env = f"ERL_EPMD_PORT={epmd_port}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
            env = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if mark_argv in argv or mark_env in env:
            command = argv.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def assert_nothing_left(epmd_port: int) -> None:
    wait_until(lambda: not leftovers(epmd_port), 10, "the demo's processes to be gone")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", epmd_port), 2):
        pass  # the private EPMD is closed too


def test_demo_with_a_real_erlang_node(release: str, tmp_path: Path) -> None:
    erl_dir = str(Path(erl_path(release)).parent)
    started = time.monotonic()
    done = subprocess.run(DEMO, capture_output=True, text=True, timeout=180, check=False,
                          env=demo_env(f"{erl_dir}:{os.environ['PATH']}", tmp_path))
    took = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert done.stderr == ""
    for step in range(1, 7):
        assert f"[{step}/6] " in out
    assert re.search(rf"erl1@127\.0\.0\.1 +erlang {release} +\d+ +3/3 +reachable", out), out
    for i in (1, 2, 3):
        assert re.search(rf"py{i}@127\.0\.0\.1 +python +\d+ +3/3 +reachable", out), out
    assert "health: 4 connected, 4 reachable, 0 unreachable" in out
    # The kill: the observer and all three survivors saw py3 go.
    assert "the observer got NodeDown(py3@127.0.0.1)" in out
    for survivor in ("py1", "py2", "erl1"):
        assert f"{survivor}@127.0.0.1 printed nodedown py3@127.0.0.1" in out
    assert re.search(r"py3@127\.0\.0\.1 +python +- +- +not connected +- +killed", out), out
    assert "health: 3 connected, 3 reachable, 0 unreachable (was 4 reachable)" in out
    assert "0 registrations and no processes left." in out
    assert len(out.splitlines()) < 40  # one line per step, two short tables
    assert took < 60, f"the demo took {took:.1f} s"
    assert_nothing_left(epmd_port_of(out))


def test_demo_needs_nothing_but_the_package(tmp_path: Path) -> None:
    """No Erlang on the PATH and no EPMD anywhere: the embedded one serves."""
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run([*DEMO, "--nodes", "2"], capture_output=True, text=True, timeout=180,
                          check=False, env=demo_env(str(empty), tmp_path))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "no `erl` on the PATH" in out
    assert "erl1" not in out
    assert "health: 2 connected, 2 reachable, 0 unreachable" in out
    assert "health: 1 connected, 1 reachable, 0 unreachable (was 2 reachable)" in out
    assert_nothing_left(epmd_port_of(out))


@pytest.mark.parametrize(
    ("after", "sig"),
    [("[1/6]", signal.SIGINT), ("[2/6]", signal.SIGINT), ("[4/6]", signal.SIGINT),
     ("[3/6]", signal.SIGTERM)],
    ids=["ctrl-c-while-starting", "ctrl-c-while-meshing", "ctrl-c-before-the-kill", "sigterm"],
)
def test_interrupted_demo_leaves_nothing_behind(
    tmp_path: Path, after: str, sig: signal.Signals
) -> None:
    demo = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=demo_env(os.environ["PATH"], tmp_path))
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith(after):
                demo.send_signal(sig)
                break
        rest, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    out = "".join(lines) + rest
    assert demo.returncode == 130, out + err
    assert "Interrupted: stopping everything the demo started" in out
    assert out.rstrip().endswith("Stopped; nothing is left behind.")
    assert "Traceback" not in err
    assert_nothing_left(epmd_port_of(out))
