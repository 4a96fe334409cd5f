"""The ``erldist`` command against a TLS cluster (real OTP 25 with ``-proto_dist inet_tls``).

``ping``, ``health``, ``watch`` and ``node`` take the ``--tls-*`` options; the
same command without them is refused by the TLS node and says why.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.test_cli import ERLDIST, Running, cli_env, erldist
from tests.interop.test_tls_interop import ErlTls, start_erl
from tests.support.otp import EpmdProcess, ErlNode, unique_name
from tests.support.tlscerts import Certs, make_certs

pytestmark = pytest.mark.interop

COOKIE = "tlscookie"  # the cookie start_erl gives its nodes


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tlscli"))


@pytest.fixture
def erl_nodes() -> Iterator[list[ErlNode]]:
    started: list[ErlNode] = []
    yield started
    for node in started:
        node.stop()


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for proc in started:
        proc.kill()


def tls_args(certs: Certs) -> list[str]:
    return ["--tls-certfile", str(certs.good.cert), "--tls-keyfile", str(certs.good.key),
            "--tls-cacertfile", str(certs.ca)]


def test_ping_and_health_over_tls(
    tmp_path: Path, epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, epmd, certs, ErlTls())
    common = ["--cookie", COOKIE, "--epmd-port", str(epmd.port), "--timeout", "30"]
    done = erldist(tmp_path, "ping", e.name, "--sname", unique_name("probe"), *common,
                   *tls_args(certs))
    assert (done.returncode, done.stdout.strip()) == (0, "pong"), done.stderr
    health = erldist(tmp_path, "health", "--connect", e.name, "--sname", unique_name("probe"),
                     "--json", *common, *tls_args(certs))
    assert health.returncode == 0, health.stderr
    assert e.name in health.stdout
    # Without TLS the TLS node refuses the probe, and the probe says why.
    plain = erldist(tmp_path, "ping", e.name, "--sname", unique_name("probe"), *common)
    assert (plain.returncode, plain.stdout.strip()) == (1, "pang")
    assert "peer_requires_tls" in plain.stderr and COOKIE not in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1, plain.stderr  # said once
    # A certificate nobody trusts: refused by the peer, named.
    rogue = erldist(tmp_path, "ping", e.name, "--sname", unique_name("probe"), *common,
                    "--tls-certfile", str(certs.untrusted.cert),
                    "--tls-keyfile", str(certs.untrusted.key), "--tls-cacertfile", str(certs.ca))
    assert (rogue.returncode, rogue.stdout.strip()) == (1, "pang")
    assert "untrusted_certificate" in rogue.stderr
    assert len(rogue.stderr.strip().splitlines()) == 1, rogue.stderr  # said once


def test_bad_tls_options_are_reported(tmp_path: Path, certs: Certs) -> None:
    missing = erldist(tmp_path, "ping", "x@localhost", "--cookie", COOKIE, "--tls-certfile",
                      str(certs.good.cert), "--tls-keyfile", str(certs.dir / "nope.key"),
                      "--tls-cacertfile", str(certs.ca))
    assert missing.returncode == 1
    assert "nope.key" in missing.stderr and "is not a readable file" in missing.stderr
    half = erldist(tmp_path, "ping", "x@localhost", "--cookie", COOKIE, "--tls-keyfile", "k")
    assert half.returncode == 2 and "--tls-keyfile needs --tls-certfile" in half.stderr


def test_node_and_watch_over_tls(
    tmp_path: Path, epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode],
    running: list[Running],
) -> None:
    e = start_erl(erl_nodes, epmd, certs, ErlTls())
    env = cli_env(tmp_path, ERLDIST_COOKIE=COOKIE)
    name = f"{unique_name('cli')}@localhost"
    node = Running([*ERLDIST, "node", "--sname", name, "--epmd-port", str(epmd.port),
                    *tls_args(certs)], env)
    running.append(node)
    node.wait_line(r"is up on port")
    assert e.eval(f"net_adm:ping('{name}').") == "pong"
    node.wait_line(rf"nodeup {re.escape(e.name)}")
    watch = Running([*ERLDIST, "watch", "--connect", e.name, "--epmd-port", str(epmd.port),
                     "--sname", unique_name("w"), *tls_args(certs)], env)
    running.append(watch)
    watch.wait_line(rf"nodeup {re.escape(e.name)}$")
    assert watch.signal(signal.SIGINT) == 0
    assert node.signal(signal.SIGTERM) == 0
