"""The bench's own environment, ``.bench-venv``: erldist (editable) and the peers.

``python -m bench`` from any Python 3.11+ creates it when missing, installs
what is missing into it, and re-runs itself there; the project itself gains
no dependency.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".bench-venv"
PYTHON = VENV / "bin" / "python"
#: The peer libraries of the table, and uvloop for ``--uvloop``: bench-only.
REQUIREMENTS = ("erldistpy==0.1.7", "py-interface==2.3", "uvloop==0.23.0")
_REEXEC = "ERLDIST_BENCH_REEXEC"


def _missing() -> list[str]:
    wanted = {"erldist": "-e", **{r.split("==")[0]: r for r in REQUIREMENTS}}
    missing = []
    for dist, spec in wanted.items():
        try:
            found = metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing.append(spec)
            continue
        if "==" in spec and found != spec.split("==")[1]:
            missing.append(spec)
    # The native core when a Rust toolchain can build it; else the pure core runs.
    if shutil.which("cargo") is not None:
        try:
            metadata.version("erldist-native")
        except metadata.PackageNotFoundError:
            missing.append(str(REPO / "native"))
    return missing


def enter() -> None:
    """Return when running inside a complete ``.bench-venv``; else make it and re-exec."""
    inside = Path(sys.prefix).resolve() == VENV.resolve()
    if not inside:
        if not PYTHON.exists():
            print("bench: creating .bench-venv", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            (VENV / ".gitignore").write_text("*\n")  # keep it out of git status
        os.execv(PYTHON, [str(PYTHON), "-m", "bench", *sys.argv[1:]])  # noqa: S606
    missing = _missing()
    if missing:
        specs = [s for s in missing if s != "-e"]
        editable = ["-e", str(REPO)] if "-e" in missing else []
        print(f"bench: installing into .bench-venv: {' '.join(specs + editable)}",
              file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", *specs, *editable], check=True)
        # An editable install is a .pth file, read only when Python starts:
        # this process cannot import erldist yet, so start afresh (once).
        if os.environ.get(_REEXEC) == "1":
            sys.exit(f"bench: still missing after installing: {' '.join(_missing())}")
        os.environ[_REEXEC] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]])  # noqa: S606
