#!/usr/bin/env bash
# The main job: a demo cluster of Python nodes (plus a real Erlang node when
# `erl` is installed). Needs nothing but Python: the embedded EPMD serves.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/erldist demo "$@"
