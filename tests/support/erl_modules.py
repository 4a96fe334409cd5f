"""Erlang modules that interop tests compile and load into a running ``erl``.

OTP 28's runtime from the test-tools venv has no compiler, so modules are
compiled by Debian's ``erlc`` (OTP 25), whose code OTP 28 loads, and sent to
the node as a binary for ``code:load_binary``.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from tests.support.otp import ErlNode

#: An Erlang gen_server to call from Python: echo, a slow reply, stop mid-call, casts.
CALLS_SRV = """
-module(calls_srv).
-behaviour(gen_server).
-export([start/1, init/1, handle_call/3, handle_cast/2, handle_info/2]).
start(Name) -> gen_server:start({local, Name}, ?MODULE, [], []).
init([]) -> {ok, []}.
handle_call({echo, X}, _From, S) -> {reply, {echoed, X}, S};
handle_call({sleep, Ms, X}, _From, S) -> timer:sleep(Ms), {reply, {late, X}, S};
handle_call({stop, R}, _From, S) -> {stop, R, S};
handle_call(casts, _From, S) -> {reply, lists:reverse(S), S}.
handle_cast(X, S) -> {noreply, [X | S]}.
handle_info(_, S) -> {noreply, S}.
"""

#: The same ``calc:add/2`` a Python node exposes, for rpc over a mixed cluster.
CALC = """
-module(calc).
-export([add/2]).
add(A, B) -> A + B.
"""


def load_module(node: ErlNode, source: str, workdir: Path) -> None:
    """Compile ``source`` (its ``-module`` names it) and load it into ``node``."""
    name = source.split("-module(", 1)[1].split(")", 1)[0]
    src = workdir / f"{name}.erl"
    if not (workdir / f"{name}.beam").exists():
        src.write_text(source)
        subprocess.run(["erlc", "-o", str(workdir), str(src)], check=True, timeout=60)
    beam = base64.b64encode((workdir / f"{name}.beam").read_bytes()).decode()
    got = node.eval(f"element(1, code:load_binary({name}, \"{name}.beam\", "
                    f"base64:decode(<<\"{beam}\">>))).")
    if got != "module":
        raise RuntimeError(f"loading {name} into {node.name} gave {got}")
