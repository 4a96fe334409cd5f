#!/usr/bin/env bash
# The codec benchmark from a clean clone: makes .bench-venv (erldist editable
# plus erlang-py, the pure-Python codec it is compared with), installs Debian's
# erlang-nox when there is no `erl` (as root), then runs `python -m bench.codec`
# with the arguments given (--quick, --reps N, --erl PATH, --profile).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v erl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Erlang/OTP (erlang-nox)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq erlang-nox >/dev/null
  else
    echo "error: the benchmark compares with Erlang/OTP: install Debian's erlang-nox" >&2
    exit 1
  fi
fi

if [ ! -x .bench-venv/bin/python ]; then
  echo "== bench venv (.bench-venv)" >&2
  "$PY" -m venv .bench-venv
  echo '*' >.bench-venv/.gitignore  # keep the venv out of git status
fi
.bench-venv/bin/python -c 'import erlang, erldist' 2>/dev/null \
  || .bench-venv/bin/python -m pip install -q --disable-pip-version-check 'erlang-py==2.0.7' -e . >&2

# The native core too, when a Rust toolchain can build it (its column is
# left out otherwise); rebuilt each run so it matches this checkout.
if command -v cargo >/dev/null 2>&1; then
  .bench-venv/bin/python -m pip install -q --disable-pip-version-check ./native >&2
fi

exec .bench-venv/bin/python -m bench.codec "$@"
