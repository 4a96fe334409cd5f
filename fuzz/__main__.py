"""``python -m fuzz``: run the fuzz targets under atheris (libFuzzer, coverage-guided).

    python -m fuzz --list
    python -m fuzz TARGET --seconds 60          # one target, growing .fuzz/corpus/TARGET
    python -m fuzz all --seconds 30             # every target in turn
    python -m fuzz ci                           # the fixed-seed pass scripts/test.sh runs

A crash leaves its input in ``.fuzz/crashes/``; fix the bug, then copy the
input to ``fuzz/regressions/TARGET/`` so ``tests/unit/test_fuzz_regressions.py``
replays it forever. Needs the ``fuzz`` extra (``pip install -e '.[fuzz]'``).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".fuzz"
REGRESSIONS = ROOT / "fuzz" / "regressions"

#: The CI pass: this many inputs per target from a fresh seed corpus, with a
#: fixed libFuzzer seed, so every run tries the same inputs (~30 s in all on
#: a 2-core VM).
CI_SEED = 1
CI_RUNS = {"term": 30000, "handshake_acceptor": 8000, "handshake_initiator": 8000,
           "framing": 10000, "dist_valid": 1500, "epmd_request": 20000,
           "epmd_response": 20000, "node_session": 1500}
#: A per-target ceiling so a slow machine cannot stretch the CI pass.
CI_MAX_SECONDS = 5


def _target_names() -> list[str]:
    # Imported lazily: a single-target run must import erldist under instrumentation.
    from fuzz.targets import TARGETS

    return list(TARGETS)


def _run_one(name: str, libfuzzer_args: list[str], corpus: Path) -> int:
    """Fuzz ``name`` in this process; libFuzzer exits the process when done."""
    import atheris
    from atheris.import_hook import instrument_imports

    # Nothing of erldist may be imported before this, or it runs uninstrumented.
    with instrument_imports(include=["erldist", "fuzz"]):
        from fuzz.targets import TARGETS

    if name not in TARGETS:
        print(f"unknown target {name!r}; see python -m fuzz --list", file=sys.stderr)
        return 2
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in TARGETS[name].seeds():
        (corpus / hashlib.sha1(seed, usedforsecurity=False).hexdigest()).write_bytes(seed)
    target = TARGETS[name].run
    dirs = [str(corpus)]
    if (REGRESSIONS / name).is_dir():
        dirs.append(str(REGRESSIONS / name))
    (WORK / "crashes").mkdir(parents=True, exist_ok=True)
    argv = [f"fuzz-{name}", *libfuzzer_args, "-max_len=4096", "-rss_limit_mb=2048",
            "-timeout=20", f"-artifact_prefix={WORK / 'crashes'}/{name}-", *dirs]
    atheris.Setup(argv, target)
    atheris.Fuzz()
    return 0


def _spawn(name: str, args: list[str]) -> int:
    command = [sys.executable, "-m", "fuzz", name, *args]
    print(f"== fuzz {name}: {' '.join(args)}", flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", help="a target name, 'all' or 'ci'")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--seconds", type=int, default=60, help="time per target")
    parser.add_argument("--runs", type=int, default=None, help="inputs per target instead")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer seed (0: random)")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="corpus folder (default .fuzz/corpus/TARGET)")
    args = parser.parse_args(argv)
    if args.list or args.target is None:
        from fuzz.targets import TARGETS

        for target in TARGETS.values():
            print(f"{target.name:22} {target.doc}")
        return 0
    limits = [f"-runs={args.runs}"] if args.runs is not None else []
    limits.append(f"-max_total_time={args.seconds}")
    if args.seed:
        limits.append(f"-seed={args.seed}")
    if args.target == "all":
        extra = [f"--seconds={args.seconds}", f"--seed={args.seed}"]
        if args.runs is not None:
            extra.append(f"--runs={args.runs}")
        failed = [n for n in _target_names() if _spawn(n, extra) != 0]
        print("fuzz: all targets held" if not failed else f"fuzz: crashes in {failed}")
        return 1 if failed else 0
    if args.target == "ci":
        started = time.monotonic()
        failed = []
        for name in _target_names():
            with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as corpus:
                code = _spawn(name, [f"--runs={CI_RUNS.get(name, 5000)}",
                                     f"--seconds={CI_MAX_SECONDS}", f"--seed={CI_SEED}",
                                     f"--corpus={corpus}"])
            if code != 0:
                failed.append(name)
        took = time.monotonic() - started
        print(f"fuzz ci: {len(CI_RUNS)} targets in {took:.0f} s, "
              + ("all held" if not failed else f"crashes in {failed}"))
        return 1 if failed else 0
    return _run_one(args.target, limits, args.corpus or WORK / "corpus" / args.target)


if __name__ == "__main__":
    sys.exit(main())
