"""TLS distribution (``-proto_dist inet_tls``): erldist beside Erlang↔Erlang over TLS.

Its own small cluster: two ``erl`` nodes (OTP 25, the release with an
``ssl`` application) and one Python node, all with mutual TLS from a
throw-away CA made for the run. Erlang's figures are node a to node b over
TLS; erldist's are the Python node to node a, measured the same way as the
plain-TCP scenarios (cold connect, ping p50, one-way messages both ways).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.tlscerts import Certs, make_certs

from bench import sink
from bench.cluster import COOKIE, Erl, unique
from bench.procs import cpu_seconds
from bench.scenarios import Bench
from bench.scenarios.connect import _py_connects
from bench.scenarios.latency import _py_pings, _us
from bench.scenarios.messages import _py_blast
from bench.table import Target
from erldist import Node, TlsSettings

#: TLS certificates name this host; the nodes are NAME@localhost.
TLS_HOST = "localhost"
NO_TLS = "n/a: no TLS"


def _erl_args(certs: Certs) -> tuple[str, ...]:
    def opts(*, client: bool) -> str:
        pair = certs.good
        items = [f'{{certfile,"{pair.cert}"}}', f'{{keyfile,"{pair.key}"}}',
                 f'{{cacertfile,"{certs.ca}"}}', "{verify,verify_peer}"]
        if not client:
            items.append("{fail_if_no_peer_cert,true}")
        return "[" + ",".join(items) + "]"

    optfile = certs.dir / "dist.conf"
    optfile.write_text(f"[{{server,{opts(client=False)}}},{{client,{opts(client=True)}}}].\n")
    return ("-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile))


async def tls(b: Bench) -> None:
    c, plan, res = b.cluster, b.plan, b.results
    folder = Path(tempfile.mkdtemp(prefix="erldist-bench-tls-"))
    c.reaper.on_exit(lambda: shutil.rmtree(folder, ignore_errors=True))
    certs = make_certs(folder)
    args = _erl_args(certs)
    a, bb = await asyncio.gather(*(
        asyncio.to_thread(Erl, c.reaper, "25", c.ebin, c.epmd.port, prefix, extra_args=args,
                          host=TLS_HOST)
        for prefix in ("ta", "tb")))
    py = await Node.start(f"{unique('tpy')}@{TLS_HOST}", COOKIE, epmd_port=c.epmd.port,
                          embedded_epmd=False, tls=TlsSettings(
                              certfile=str(certs.good.cert), keyfile=str(certs.good.key),
                              cacertfile=str(certs.ca)))
    connect = res.row("TLS cold connect (EPMD + TLS + handshake)", "ms", target=Target(1.5),
                      peer_note=NO_TLS)
    ping = res.row("TLS ping p50, Python→Erlang", "µs", target=Target(1.5), peer_note=NO_TLS)
    back_ping = res.row("TLS ping p50, Erlang→Python", "µs", target=Target(1.5),
                        peer_note=NO_TLS)
    out = res.row("TLS messages/s, Python→Erlang", "1/s", lower_better=False,
                  target=Target(0.7), peer_note=NO_TLS)
    back = res.row("TLS messages/s, Erlang→Python", "1/s", lower_better=False,
                   target=Target(0.7), peer_note=NO_TLS)
    # CPU per message of each blast, by who spent it: steadier than the rates on a
    # shared machine, and it shows which side a throughput gap comes from.
    cpu: dict[str, list[float]] = {"py_in": [], "erl_in": [], "erl_to_py": [], "erl_to_erl": []}
    box = py.process("bench_pysink", maxsize=plan.messages + 16)
    receiver = asyncio.get_running_loop().create_task(sink.serve(py, box))
    try:
        for _ in range(plan.reps):
            erl = await a.call(f"dist_bench:connect_times('{bb.name}', {plan.connects}).")
            ours = await asyncio.wait_for(_py_connects(py, a.name, plan.connects), 300)
            connect.erlang.append(statistics.median(erl) / 1e6)
            connect.erldist.append(statistics.median(ours) / 1e6)
            erl = await a.call(f"dist_bench:ping_times('{bb.name}', {plan.pings}).")
            ours = await asyncio.wait_for(_py_pings(py, a.name, plan.pings), 300)
            answered = await a.call(f"dist_bench:ping_times('{py.name}', {plan.pings}).")
            ping.erlang.append(_us(erl, 0.5))
            back_ping.erlang.append(_us(erl, 0.5))
            ping.erldist.append(_us(ours, 0.5))
            back_ping.erldist.append(_us(answered, 0.5))
            n = plan.messages
            sender, erl_receiver = cpu_seconds(a.os_pid), cpu_seconds(bb.os_pid)
            erl_ns = await a.call(f"dist_bench:blast({{bench_sink, '{bb.name}'}}, {n}).")
            cpu["erl_to_erl"].append((cpu_seconds(a.os_pid) - sender) / n)
            cpu["erl_in"].append((cpu_seconds(bb.os_pid) - erl_receiver) / n)
            for row in (out, back):
                row.erlang.append(n / (erl_ns / 1e9))
            out.erldist.append(n / await _py_blast(py, ("bench_sink", a.name), n))
            sender, ours_before = cpu_seconds(a.os_pid), time.process_time()
            back_ns = await a.call(f"dist_bench:blast({{bench_pysink, '{py.name}'}}, {n}).")
            cpu["py_in"].append((time.process_time() - ours_before) / n)
            cpu["erl_to_py"].append((cpu_seconds(a.os_pid) - sender) / n)
            back.erldist.append(n / (back_ns / 1e9))
    finally:
        box.exit()
        await receiver
        await py.stop()
        a.stop()
        bb.stop()
    res.notes.append(
        "TLS blasts, CPU per message (µs, median over the runs; an erl node's figure "
        "includes its schedulers' busy-waiting): received by the Python node "
        f"{_per_message(cpu['py_in'])}, by the erl node {_per_message(cpu['erl_in'])}; sent "
        f"by erl to Python {_per_message(cpu['erl_to_py'])}, to erl "
        f"{_per_message(cpu['erl_to_erl'])}.")
    res.notes.append("TLS rows: mutual TLS 1.2 (OTP's inet_tls_dist default), ECDSA P-256 "
                     "certificates; Erlang→Erlang is OTP 25 over TLS whatever --otp says.")


def _per_message(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1e6:.2f}"
