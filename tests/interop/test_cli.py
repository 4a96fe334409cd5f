"""The ``erldist`` command driven as a user would, against real Erlang/OTP nodes.

One-shot commands run as subprocesses (``python -m erldist`` and the installed
``erldist`` script); ``watch`` also runs in a real terminal (tmux). Every test
runs against OTP 25 and OTP 28; a missing runtime or tmux fails, never skips.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.otp import EpmdProcess, ErlNode, epmd_path, free_port, unique_name, wait_until

pytestmark = pytest.mark.interop

COOKIE = "clicookie"
#: Where an answer is expected, allow a slow, busy machine far more than the 8 s default.
PATIENT = ("--timeout", "30")
ERLDIST = [sys.executable, "-m", "erldist"]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with their own HOME and no erldist settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ERLDIST_COOKIE", "ERL_EPMD_PORT", "XDG_CONFIG_HOME")}
    return env | {"HOME": str(home), "PYTHONUNBUFFERED": "1"} | extra


def erldist(
    home: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ERLDIST, *args], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(home, **env), check=False)


class Running:
    """A long-running ``erldist`` subprocess whose output lines are collected as they come."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, start_new_session=True)
        self.lines: list[str] = []
        self.err: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 30) -> str:
        """The first output line matching ``pattern``, waiting for it to appear."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [ln for ln in self.lines if re.search(pattern, ln)]
            return bool(found) or self.proc.poll() is not None

        wait_until(seen, timeout, f"a line matching {pattern!r}")
        assert found, f"exited {self.proc.returncode} first: {self.lines} {self.err}"
        return found[0]

    def signal(self, sig: int, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for proc in started:
        proc.kill()


@pytest.fixture
def erl(release: str, epmd: EpmdProcess) -> Iterator[ErlNode]:
    node = ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    try:
        yield node
    finally:
        node.stop()


# --- ping ------------------------------------------------------------------------------


def test_ping_pong_and_pang_for_a_wrong_cookie(home: Path, epmd: EpmdProcess, erl: ErlNode) -> None:
    assert erl.name is not None
    port = str(epmd.port)
    ok = erldist(home, "ping", erl.name, "--epmd-port", port, "--cookie", COOKIE, *PATIENT)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "pong\n", "")

    bad = erldist(home, "ping", erl.name, "--epmd-port", port, "--cookie", "wrongcookie")
    assert (bad.returncode, bad.stdout) == (1, "pang\n")
    assert bad.stderr.startswith(f"erldist ping: {erl.name}: ")
    assert len(bad.stderr.splitlines()) == 1
    assert "wrongcookie" not in bad.stderr

    missing = erldist(home, "ping", "nobody@127.0.0.1", "--epmd-port", port, "--cookie", COOKIE)
    assert (missing.returncode, missing.stdout) == (1, "pang\n")
    assert "not registered" in missing.stderr
    # The probes were hidden and are gone: the Erlang node saw no visible peer.
    assert erl.eval("nodes().") == "[]"


def test_ping_cookie_from_environment_file_and_erl_epmd_port(
    home: Path, epmd: EpmdProcess, erl: ErlNode
) -> None:
    assert erl.name is not None
    via_env = erldist(home, "ping", erl.name, *PATIENT, ERLDIST_COOKIE=COOKIE,
                      ERL_EPMD_PORT=str(epmd.port))
    assert (via_env.returncode, via_env.stdout) == (0, "pong\n")

    cookie_file = home / ".erlang.cookie"
    cookie_file.write_text(COOKIE + "\n")
    cookie_file.chmod(0o644)
    loose = erldist(home, "ping", erl.name, "--epmd-port", str(epmd.port))
    assert loose.returncode == 1
    assert loose.stderr == (f"erldist ping: error: cookie file {cookie_file} must be accessible "
                            f"by owner only (mode is 644; run: chmod 400 {cookie_file})\n")
    cookie_file.chmod(0o400)
    script = Path(sys.executable).with_name("erldist")
    via_file = subprocess.run([str(script), "ping", erl.name, "--epmd-port", str(epmd.port),
                               *PATIENT],
                              capture_output=True, text=True, env=cli_env(home), timeout=60,
                              check=False)
    assert (via_file.returncode, via_file.stdout) == (0, "pong\n")


def test_ping_with_an_explicit_short_probe_name(
    release: str, epmd: EpmdProcess, home: Path
) -> None:
    node = ErlNode(release, name=f"{unique_name('s')}@localhost", cookie=COOKIE,
                   epmd_port=epmd.port)
    try:
        assert node.name is not None
        done = erldist(home, "ping", node.name, "--sname", unique_name("me"), "--cookie", COOKIE,
                       "--epmd-port", str(epmd.port), *PATIENT)
        assert (done.returncode, done.stdout) == (0, "pong\n")
    finally:
        node.stop()


# --- health and names ------------------------------------------------------------------


def test_health_table_and_json(home: Path, epmd: EpmdProcess, erl: ErlNode) -> None:
    assert erl.name is not None
    common = ["--epmd-port", str(epmd.port), "--cookie", COOKIE, *PATIENT]
    good = erldist(home, "health", "--connect", erl.name, *common)
    assert good.returncode == 0, good.stderr
    header, row, summary = good.stdout.splitlines()
    assert header.split() == ["NODE", "STATE", "PING", "DETAIL"]
    assert row.split()[:2] == [erl.name, "reachable"]
    assert summary.startswith("1 of 1 reachable (probe erldist-health-")

    absent = "absent@127.0.0.1"
    mixed = erldist(home, "health", "--connect", erl.name, absent, "--json", *common)
    assert mixed.returncode == 1
    doc = json.loads(mixed.stdout)
    assert doc["self_node"].startswith("erldist-health-")
    assert doc["is_distributed"] is True
    assert doc["connected_nodes"] == [erl.name]
    assert doc["connected_count"] == 1
    assert doc["reachable_nodes"] == [erl.name]
    assert doc["unreachable_nodes"] == []
    assert "not registered" in doc["not_connected"][absent]
    assert doc["ping_ms"][erl.name] > 0
    assert erl.eval("nodes().") == "[]"


def test_names_matches_epmd_names(
    release: str, home: Path, epmd: EpmdProcess, erl: ErlNode
) -> None:
    ours = erldist(home, "names", "--epmd-port", str(epmd.port))
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run([epmd_path(release), "-port", str(epmd.port), "-names"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert ours.stdout == theirs.stdout
    assert erl.name is not None
    assert f"name {erl.name.partition('@')[0]} at port " in ours.stdout

    nothing = erldist(home, "names", "--epmd-port", str(free_port()), "--timeout", "5")
    assert nothing.returncode == 1
    assert nothing.stderr.startswith("erldist names: error: EPMD unavailable")
    assert len(nothing.stderr.splitlines()) == 1


# --- epmd and node ---------------------------------------------------------------------


def test_epmd_command_serves_a_real_erl(
    release: str, home: Path, running: list[Running]
) -> None:
    port = free_port()
    server = Running([*ERLDIST, "epmd", "--port", str(port)], cli_env(home))
    running.append(server)
    server.wait_line(f"EPMD listening on 127.0.0.1:{port}")
    node = ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE, epmd_port=port)
    try:
        assert node.name is not None
        listed = erldist(home, "names", "--epmd-port", str(port))
        assert f"name {node.name.partition('@')[0]} at port" in listed.stdout
        pinged = erldist(home, "ping", node.name, "--epmd-port", str(port), "--cookie", COOKIE,
                         *PATIENT)
        assert pinged.stdout == "pong\n"
    finally:
        node.stop()
    assert server.signal(signal.SIGTERM) == 0
    assert server.lines[-1] == "EPMD stopped"


def test_node_runs_in_the_foreground_and_prints_events(
    home: Path, epmd: EpmdProcess, erl: ErlNode, running: list[Running]
) -> None:
    assert erl.name is not None
    name = f"{unique_name('py')}@127.0.0.1"
    node = Running([*ERLDIST, "node", name, "--epmd-port", str(epmd.port), "--connect", erl.name],
                   cli_env(home, ERLDIST_COOKIE=COOKIE))
    running.append(node)
    first = node.wait_line(r"is up on port")
    assert first.startswith(f"node {name} is up on port ")
    assert "cookie from ERLDIST_COOKIE" in first
    assert COOKIE not in " ".join(node.lines + node.err)
    node.wait_line(rf"^\d\d:\d\d:\d\d\.\d{{3}} nodeup {re.escape(erl.name)}$")
    assert erl.eval("nodes().") == f"['{name}']"

    assert erl.eval(f"erlang:disconnect_node('{name}').") == "true"
    node.wait_line(rf"nodedown {re.escape(erl.name)}")
    assert erl.eval(f"net_adm:ping('{name}').") == "pong"
    wait_until(lambda: sum(f"nodeup {erl.name}" in ln for ln in node.lines) == 2, 30,
               "the second nodeup")

    assert node.signal(signal.SIGTERM) == 0
    assert node.lines[-1] == f"node {name} stopped"
    listed = erldist(home, "names", "--epmd-port", str(epmd.port))
    assert f"name {name.partition('@')[0]} " not in listed.stdout
    wait_until(lambda: erl.eval("nodes().") == "[]", 30, "erl to see the node go")


def test_nodes_need_no_epmd_installed(release: str, home: Path, running: list[Running]) -> None:
    """The first node serves an embedded EPMD; when it dies the next one takes over."""
    port = str(free_port())
    env = cli_env(home, ERLDIST_COOKIE=COOKIE)
    one, two = (f"{unique_name(n)}@127.0.0.1" for n in ("one", "two"))
    first = Running([*ERLDIST, "node", one, "--epmd-port", port], env)
    running.append(first)
    first.wait_line(f"epmd: no EPMD answered on port {port}; started the embedded EPMD")
    first.wait_line("is up on port")
    second = Running([*ERLDIST, "node", two, "--epmd-port", port, "--connect", one], env)
    running.append(second)
    second.wait_line(f"nodeup {re.escape(one)}$")
    first.wait_line(f"nodeup {re.escape(two)}$")
    listed = erldist(home, "names", "--epmd-port", port).stdout
    assert f"name {one.partition('@')[0]} " in listed
    assert f"name {two.partition('@')[0]} " in listed

    first.kill()
    second.wait_line(f"nodedown {re.escape(one)}")
    second.wait_line(r"epmd: .* registered again with the embedded EPMD")
    listed = erldist(home, "names", "--epmd-port", port).stdout
    assert f"name {one.partition('@')[0]} " not in listed
    # A real Erlang node can use the embedded EPMD too.
    node = ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=int(port))
    try:
        assert node.eval(f"net_adm:ping('{two}').") == "pong"
        second.wait_line(f"nodeup {re.escape(str(node.name))}$")
    finally:
        node.stop()
    assert second.signal(signal.SIGTERM) == 0


def test_node_with_short_name_and_hidden(
    release: str, home: Path, epmd: EpmdProcess, running: list[Running]
) -> None:
    short = ErlNode(release, name=f"{unique_name('s')}@localhost", cookie=COOKIE,
                    epmd_port=epmd.port)
    try:
        assert short.name is not None
        alive = unique_name("hid")
        node = Running([*ERLDIST, "node", "--sname", f"{alive}@localhost", "--hidden",
                        "--epmd-port", str(epmd.port), "--connect", short.name],
                       cli_env(home, ERLDIST_COOKIE=COOKIE))
        running.append(node)
        assert node.wait_line("is up").startswith(f"hidden node {alive}@localhost is up")
        node.wait_line(f"nodeup {re.escape(short.name)}")
        assert short.eval("nodes().") == "[]"
        assert short.eval("nodes(hidden).").replace("'", "") == f"[{alive}@localhost]"
        assert node.signal(signal.SIGINT) == 0
    finally:
        short.stop()


# --- watch -----------------------------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket) running one command in a real terminal."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        if shutil.which("tmux") is None:
            raise AssertionError("tmux is required for the terminal tests (apt-get install tmux)")
        self.socket = unique_name("erldist-tmux")
        shell = (f"env -i {shlex.join(f'{k}={v}' for k, v in env.items())} "
                 f"{shlex.join(command)}; echo EXIT=$?; sleep 600")
        self._tmux("new-session", "-d", "-x", "140", "-y", "30", shell)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p")

    def row(self, node: str) -> list[str]:
        for line in self.screen().splitlines():
            if line.startswith(node + " "):
                return line.split()
        return []

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30, check=False)


def test_watch_in_a_terminal_redraws_in_place(release: str, home: Path, epmd: EpmdProcess) -> None:
    peer = ErlNode(release, name=f"{unique_name('w')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    other = ErlNode(release, name=f"{unique_name('v')}@127.0.0.1", cookie=COOKIE,
                    epmd_port=epmd.port)
    assert peer.name is not None and other.name is not None
    term = Tmux([*ERLDIST, "watch", "--connect", peer.name, other.name, "--interval", "0.5",
                 "--epmd-port", str(epmd.port)], cli_env(home, ERLDIST_COOKIE=COOKIE))
    try:
        wait_until(lambda: term.row(peer.name)[1:2] == ["up"] and
                   term.row(other.name)[1:2] == ["up"], 30, "both peers up")
        assert term.row(peer.name)[3] == "ms"  # a measured ping time, e.g. "0.7 ms"
        # The watcher is hidden: in no one's nodes(), in nodes(hidden).
        assert peer.eval("nodes().") == "[]"
        assert "erldist-watch-" in peer.eval("nodes(hidden).")

        os.kill(peer.proc.pid, signal.SIGSTOP)  # alive but silent: unreachable, not down
        try:
            wait_until(lambda: term.row(peer.name)[1:2] == ["unreachable"], 30,
                       "the frozen peer to show unreachable")
        finally:
            os.kill(peer.proc.pid, signal.SIGCONT)
        wait_until(lambda: term.row(peer.name)[1:2] == ["up"], 30, "the peer back up")

        killed_at = time.monotonic()
        other.proc.kill()
        wait_until(lambda: term.row(other.name)[1:2] == ["down"], 15,
                   "the killed peer to show down")
        assert time.monotonic() - killed_at < 15
        wait_until(lambda: "2 peers: 1 up, 1 down" in term.screen(), 30, "the summary line")
        screen = term.screen()
        assert screen.count("erldist watch") == 1, screen  # redrawn, never scrolled

        term.send("C-c")
        wait_until(lambda: "EXIT=0" in term.screen(), 30, "watch to exit 0 on Ctrl-C")
    finally:
        term.close()
        peer.stop()
        other.stop()


def test_watch_prints_lines_when_not_a_terminal(
    release: str, home: Path, epmd: EpmdProcess, running: list[Running]
) -> None:
    peer = ErlNode(release, name=f"{unique_name('p')}@127.0.0.1", cookie=COOKIE,
                   epmd_port=epmd.port)
    try:
        assert peer.name is not None
        watch = Running([*ERLDIST, "watch", "--connect", peer.name, "absent@127.0.0.1",
                         "--epmd-port", str(epmd.port)], cli_env(home, ERLDIST_COOKIE=COOKIE))
        running.append(watch)
        watch.wait_line(rf"nodeup {re.escape(peer.name)}$")
        watch.wait_line(r"down absent@127.0.0.1 \(absent is not registered on 127.0.0.1\)")
        peer.proc.kill()
        watch.wait_line(rf"nodedown {re.escape(peer.name)}", 15)
        assert watch.signal(signal.SIGINT) == 0
        assert not any("\x1b" in line for line in watch.lines)
        assert all(re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line) for line in watch.lines)
        assert watch.err == []
    finally:
        peer.stop()
