"""Every process the bench starts, so each one is ended on any exit.

Processes are ended by their own pid, in reverse start order; a stopped
(SIGSTOP) one is continued first so it can die. ``Reaper.areap`` runs in the
event loop's ``finally`` (so asyncio's child processes are also waited for
there), ``reap`` again after it and from ``atexit``; SIGTERM/SIGHUP become a
normal exit so all of them run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType


def cpu_seconds(os_pid: int) -> float:
    """CPU time (user + system) a process has used so far, from ``/proc``."""
    fields = Path(f"/proc/{os_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Reaper:
    """Stops what was registered, newest first, exactly once."""

    def __init__(self) -> None:
        self._actions: list[Callable[[], None]] = []
        self._children: list[asyncio.subprocess.Process] = []
        atexit.register(self.reap)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on_signal)

    def on_exit(self, action: Callable[[], None]) -> None:
        self._actions.append(action)

    def process(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Kill ``proc`` (continued first, in case it was stopped) on exit."""
        self.on_exit(lambda: kill(proc))
        return proc

    def child(self, proc: asyncio.subprocess.Process) -> asyncio.subprocess.Process:
        """Kill an asyncio child process on exit (continued first) and wait for it."""
        self._children.append(proc)
        self.on_exit(lambda: _kill_child(proc))
        return proc

    async def areap(self) -> None:
        """``reap``, then wait for asyncio's children while the loop still runs."""
        self.reap()
        children, self._children = self._children, []
        for proc in children:
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()

    def reap(self) -> None:
        while self._actions:
            action = self._actions.pop()
            try:
                action()
            except Exception as exc:  # one failed stop must not leak the others
                print(f"bench: cleanup step failed: {exc!r}", file=sys.stderr)


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _kill_child(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
