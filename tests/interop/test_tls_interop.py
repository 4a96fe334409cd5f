"""TLS distribution (``-proto_dist inet_tls``) against real Erlang, and Python to Python.

Erlang is Debian's OTP 25 with its ``ssl`` application: the OTP 28 runtime of
the test-tools venv has no ``ssl`` application, so it cannot run TLS
distribution at all. Every certificate is made for the session by
``tests.support.tlscerts``; both sides read the same files.

Each refusal is checked on both sides: the Python side raises (dialing) or
reports through telemetry (accepting) the ``TlsFailure`` named by the case;
the Erlang side answers ``pang`` or logs its TLS alert; and no connection is
left on either side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from erldist import Atom, Node, NodeDown, NodeUp, cluster, config, telemetry
from erldist.config import Config
from erldist.errors import ConnectFailed, TlsError, TlsFailure
from erldist.tls_settings import TlsSettings
from tests.support.aio import EventLog, wait_for
from tests.support.nodes import erl
from tests.support.otp import EpmdProcess, ErlNode, unique_name
from tests.support.tlscerts import Certs, Pair, make_certs

pytestmark = pytest.mark.interop

COOKIE = "tlscookie"
#: The only OTP release here with an ``ssl`` application (see the module docstring).
OTP = "25"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def refusals() -> Iterator[list[telemetry.TlsRefused]]:
    seen: list[telemetry.TlsRefused] = []

    def record(event: telemetry.TelemetryEvent) -> None:
        if isinstance(event, telemetry.TlsRefused):
            seen.append(event)

    telemetry.attach(record)
    yield seen
    telemetry.detach(record)


@dataclass
class ErlTls:
    """One Erlang node's ``ssl_dist_optfile``: its certificate, and what it checks."""

    pair: str = "good"
    client_certificate: bool = True
    versions: str | None = None
    tls: bool = True
    extra: dict[str, str] = field(default_factory=dict)


def _q(path: Path) -> str:
    return f'"{path}"'


def start_erl(started: list[ErlNode], epmd: EpmdProcess, certs: Certs, spec: ErlTls) -> ErlNode:
    args: list[str] = []
    if spec.tls:
        pair: Pair = getattr(certs, spec.pair)
        server = {"certfile": _q(pair.cert), "keyfile": _q(pair.key), "cacertfile": _q(certs.ca),
                  "verify": "verify_peer", "fail_if_no_peer_cert": "true"}
        client = {"cacertfile": _q(certs.ca), "verify": "verify_peer"}
        if spec.client_certificate:
            client |= {"certfile": _q(pair.cert), "keyfile": _q(pair.key)}
        if spec.versions is not None:
            server["versions"] = client["versions"] = spec.versions
        optfile = certs.erl_optfile(unique_name("opts"), server=server | spec.extra,
                                    client=client | spec.extra)
        args = ["-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile)]
    node = ErlNode(OTP, name=f"{unique_name('e')}@localhost", cookie=COOKIE,
                   epmd_port=epmd.port, extra_args=args)
    started.append(node)
    node.eval("register(tester, self()).")
    return node


def settings(certs: Certs, pair: str = "good", **options: Any) -> TlsSettings:
    chosen: Pair = getattr(certs, pair)
    return TlsSettings(certfile=str(chosen.cert), keyfile=str(chosen.key),
                       cacertfile=str(certs.ca), **options)


async def start_py(epmd: EpmdProcess, tls: TlsSettings | None) -> Node:
    return await Node.start(f"{unique_name('py')}@localhost", COOKIE, epmd_port=epmd.port,
                            embedded_epmd=False, tls=tls)


async def no_connection_left(py: Node, e: ErlNode | None = None) -> None:
    """Neither side keeps a connection, a handshake or a TLS upgrade in progress."""
    await wait_for(lambda: py.nodes("connected") == [] and py.peers.handshaking == 0, 15,
                   "no connection on the Python side")
    tls = py._tls  # the contexts: their in-progress accept set must drain too
    if tls is not None:
        await wait_for(lambda: not tls.handshakes, 15, "no TLS handshake in progress")
    if e is not None:
        assert await erl(e, "nodes(connected).") == "[]"


def assert_no_secret(certs: Certs, *texts: str) -> None:
    """No cookie, no key material (PEM armour or any line of a key file) in ``texts``."""
    key_lines = {line for pair in (certs.good, certs.other, certs.untrusted, certs.expired,
                                   certs.wrong_host)
                 for line in pair.key.read_text().splitlines() if "-----" not in line}
    for text in texts:
        assert COOKIE not in text and "PRIVATE KEY" not in text, text
        assert not any(line in text for line in key_lines), text


async def erl_logged(e: ErlNode, marker: str) -> None:
    """Wait until ``erl`` printed ``marker`` (its TLS alert report)."""

    async def seen() -> bool:
        await erl(e, "ok.")  # reading an answer collects the lines printed before it
        return any(marker in line for line in e.log)

    deadline = asyncio.get_running_loop().time() + 20
    while not await seen():
        assert asyncio.get_running_loop().time() < deadline, (marker, e.log[-10:])
        await asyncio.sleep(0.1)


# --- working clusters -------------------------------------------------------------------


async def test_python_dials_erlang_with_mutual_tls(
    epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, epmd, certs, ErlTls())
    py = await start_py(epmd, settings(certs))
    try:
        events = EventLog(py)
        assert await erl(e, "net_kernel:monitor_nodes(true).") == "ok"
        assert await py.ping(e.name)
        await events.wait(NodeUp, e.name)
        assert await erl(e, f"receive {{nodeup, '{py.name}'}} -> up after 10000 -> none end.") \
            == "up"
        conn = py.connection(e.name)
        assert conn is not None and conn.transport is not None
        tls_object = conn.transport.get_extra_info("ssl_object")
        assert tls_object is not None and tls_object.version() == "TLSv1.2"
        # Erlang sees a TLS connection from a node whose certificate it checked.
        assert await erl(e, f"{{ok, I}} = net_kernel:node_info('{py.name}'), "
                            "element(4, proplists:get_value(address, I)).") == "tls"
        # Messages both ways, and a gen_server call into Erlang.
        me = py.process("tls_box")
        await py.send(("tester", e.name), (Atom("hello"), me.pid))
        assert await erl(e, "receive {hello, P1} -> P1 ! {pong, node()}, ok "
                            "after 10000 -> timeout end.") == "ok"
        assert await me.receive(10) == (Atom("pong"), Atom(e.name))
        apps = await py.call(("application_controller", e.name), Atom("which_applications"))
        assert Atom("kernel") in [app[0] for app in apps]
        # Erlang closes: NodeDown, and nothing left behind.
        assert await erl(e, f"erlang:disconnect_node('{py.name}').") == "true"
        await events.wait(NodeDown, e.name)
        assert await erl(e, f"receive {{nodedown, '{py.name}'}} -> down after 10000 -> none "
                            "end.") == "down"
        await no_connection_left(py, e)
    finally:
        await py.stop()


async def test_erlang_dials_python_with_mutual_tls(
    epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode]
) -> None:
    py = await start_py(epmd, settings(certs, "other"))
    e = start_erl(erl_nodes, epmd, certs, ErlTls())
    try:
        events = EventLog(py)
        box = py.process("tls_inbox")
        py.expose("tls_echo", "echo", lambda term: (Atom("echoed"), term))
        assert await erl(e, "net_kernel:monitor_nodes(true).") == "ok"
        assert await erl(e, f"net_adm:ping('{py.name}').") == "pong"
        await events.wait(NodeUp, e.name)
        assert await erl(e, f"receive {{nodeup, '{py.name}'}} -> up after 10000 -> none end.") \
            == "up"
        # Erlang calls into Python: erpc, and a gen_server call to its net_kernel.
        assert await erl(e, f"erpc:call('{py.name}', tls_echo, echo, [over_tls], 10000).") \
            == "{echoed,over_tls}"
        assert await erl(e, f"gen_server:call({{net_kernel, '{py.name}'}}, "
                            "{is_auth, node()}, 10000).") == "yes"
        conn = py.connection(e.name)
        assert conn is not None and conn.transport is not None
        peercert = conn.transport.get_extra_info("peercert")
        assert peercert is not None  # Erlang presented its client certificate
        assert ("DNS", "localhost") in peercert["subjectAltName"]
        assert await erl(e, f"{{tls_inbox, '{py.name}'}} ! {{from_erlang, self()}}, ok.") == "ok"
        msg = await box.receive(10)
        assert msg[0] == Atom("from_erlang")
        await box.send(msg[1], Atom("thanks"))
        assert await erl(e, "receive thanks -> got after 10000 -> timeout end.") == "got"
        assert await erl(e, f"lists:member('{py.name}', nodes()).") == "true"
        await py.disconnect(e.name)
        await events.wait(NodeDown, e.name)
        assert await erl(e, f"receive {{nodedown, '{py.name}'}} -> down after 10000 -> none "
                            "end.") == "down"
        await no_connection_left(py, e)
    finally:
        await py.stop()


async def test_tls_1_3_both_directions(
    epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode]
) -> None:
    """An OTP node allowing only TLS 1.3, with Python nodes allowing 1.2 and 1.3: each
    side dials the other, and the link runs TLS 1.3 (post-handshake tickets and all)."""
    e = start_erl(erl_nodes, epmd, certs, ErlTls(versions="['tlsv1.3']"))
    dialer = await start_py(epmd, settings(certs, versions=("tlsv1.2", "tlsv1.3")))
    dialed = await start_py(epmd, settings(certs, "other", versions=("tlsv1.3",)))
    try:
        assert await dialer.ping(e.name)
        assert await erl(e, f"net_adm:ping('{dialed.name}').") == "pong"
        for node in (dialer, dialed):
            conn = node.connection(e.name)
            assert conn is not None and conn.transport is not None
            assert conn.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
        box = dialed.process("tls13")
        assert await erl(e, f"{{tls13, '{dialed.name}'}} ! {{hi, node()}}, ok.") == "ok"
        assert await box.receive(10) == (Atom("hi"), Atom(e.name))
        apps = await dialer.call(("application_controller", e.name), Atom("which_applications"))
        assert Atom("kernel") in [app[0] for app in apps]
    finally:
        await dialer.stop()
        await dialed.stop()


async def test_a_full_mailbox_pauses_reading_through_tls(
    epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode]
) -> None:
    """Erlang floods a small mailbox over TLS: the connection stops reading (the TLS
    transport says so) while the mailbox is full, and every message arrives, in order,
    once it drains; the link then carries on both ways."""
    e = start_erl(erl_nodes, epmd, certs, ErlTls())
    py = await start_py(epmd, settings(certs))
    count = 50_000
    try:
        sink = py.process("tls_sink", maxsize=200)
        assert await py.ping(e.name)
        blast = asyncio.ensure_future(erl(
            e, f"[{{tls_sink, '{py.name}'}} ! {{seq, I, <<\"hello\">>}} "
               f"|| I <- lists:seq(1, {count})], done.", 120))
        conn = py.connection(e.name)
        assert conn is not None and conn.transport is not None
        transport = conn.transport
        await wait_for(lambda: sink.mailbox.full and not transport.is_reading(), 30,
                       "a full mailbox pausing the TLS transport")
        for i in range(1, count + 1):
            assert await sink.receive(60) == (Atom("seq"), i, b"hello")
        assert await blast == "done"
        assert conn.pauses > 0 and conn.dropped == 0 and sink.mailbox.dropped == 0
        assert transport.is_reading() and py.connection(e.name) is conn
        await py.send(("tester", e.name), Atom("after_the_flood"))
        assert await erl(e, "receive after_the_flood -> ok after 10000 -> timeout end.") == "ok"
    finally:
        await py.stop()


async def test_python_to_python_over_tls(epmd: EpmdProcess, certs: Certs) -> None:
    a = await start_py(epmd, settings(certs))
    b = await start_py(epmd, settings(certs, "other", versions=("tlsv1.2", "tlsv1.3")))
    try:
        events = EventLog(b)
        assert await a.ping(b.name)
        await events.wait(NodeUp, a.name)
        box = b.process("p2p")
        await a.send(("p2p", b.name), Atom("over_tls"))
        assert await box.receive(10) == Atom("over_tls")
        b.expose("tls_echo", "echo", lambda term: term)
        assert await a.rpc(b.name, "tls_echo", "echo", [Atom("hi")], timeout=10) == Atom("hi")
        assert await b.call(("net_kernel", a.name), (Atom("is_auth"), Atom(b.name))) \
            == Atom("yes")
        # Mutual TLS: each side holds the certificate the other presented.
        for node, peer, subject in ((a, b, "other"), (b, a, "good")):
            conn = node.connection(peer.name)
            assert conn is not None and conn.transport is not None
            assert conn.transport.get_extra_info("ssl_object") is not None
            peercert = conn.transport.get_extra_info("peercert")
            assert peercert is not None and (("commonName", subject),) in peercert["subject"]
        await a.stop()
        await events.wait(NodeDown, a.name)
        await no_connection_left(b)
    finally:
        await a.stop()
        await b.stop()


# --- refusals against Erlang ---------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One failure case in one direction against Erlang."""

    erl: ErlTls
    py: dict[str, Any] | None  #: TlsSettings options; None for a plain-TCP Python node
    failure: TlsFailure
    by_peer: bool
    #: What erl logs when it is the side that refuses ("" when Python refuses).
    erl_log: str = ""


DIAL_CASES = {
    "untrusted_python_cert": Refusal(ErlTls(), {"pair": "untrusted"},
                                     TlsFailure.UNTRUSTED_CERTIFICATE, True, "Unknown CA"),
    "untrusted_erlang_cert": Refusal(ErlTls(pair="untrusted"), {},
                                     TlsFailure.UNTRUSTED_CERTIFICATE, False),
    "expired_python_cert": Refusal(ErlTls(), {"pair": "expired"},
                                   TlsFailure.CERTIFICATE_EXPIRED, True, "Certificate Expired"),
    "expired_erlang_cert": Refusal(ErlTls(pair="expired"), {},
                                   TlsFailure.CERTIFICATE_EXPIRED, False),
    "erlang_cert_wrong_host": Refusal(ErlTls(pair="wrong_host"), {}, TlsFailure.WRONG_HOST,
                                      False),
    "no_python_client_cert": Refusal(ErlTls(), {"client_certificate": False},
                                     TlsFailure.NO_PEER_CERTIFICATE, True,
                                     "no_client_certificate_provided"),
    "protocol_mismatch": Refusal(ErlTls(), {"versions": ("tlsv1.3",)},
                                 TlsFailure.PROTOCOL_MISMATCH, True, "Protocol Version"),
    "plain_python_to_tls_erlang": Refusal(ErlTls(), None, TlsFailure.PEER_REQUIRES_TLS, False,
                                          "unsupported_record_type"),
    "tls_python_to_plain_erlang": Refusal(ErlTls(tls=False), {}, TlsFailure.PEER_NOT_TLS,
                                          False),
}

ACCEPT_CASES = {
    "untrusted_python_cert": Refusal(ErlTls(), {"pair": "untrusted"},
                                     TlsFailure.UNTRUSTED_CERTIFICATE, True, "Unknown CA"),
    "untrusted_erlang_cert": Refusal(ErlTls(pair="untrusted"), {},
                                     TlsFailure.UNTRUSTED_CERTIFICATE, False),
    "expired_python_cert": Refusal(ErlTls(), {"pair": "expired"},
                                   TlsFailure.CERTIFICATE_EXPIRED, True, "Certificate Expired"),
    "expired_erlang_cert": Refusal(ErlTls(pair="expired"), {},
                                   TlsFailure.CERTIFICATE_EXPIRED, False),
    "python_cert_wrong_host": Refusal(ErlTls(), {"pair": "wrong_host"}, TlsFailure.WRONG_HOST,
                                      True, "hostname_check_failed"),
    "no_erlang_client_cert": Refusal(ErlTls(client_certificate=False), {},
                                     TlsFailure.NO_PEER_CERTIFICATE, False),
    "protocol_mismatch": Refusal(ErlTls(), {"versions": ("tlsv1.3",)},
                                 TlsFailure.PROTOCOL_MISMATCH, False),
    "tls_erlang_to_plain_python": Refusal(ErlTls(), None, TlsFailure.PEER_REQUIRES_TLS, False),
    "plain_erlang_to_tls_python": Refusal(ErlTls(tls=False), {}, TlsFailure.PEER_NOT_TLS,
                                          False),
}


def _py_settings(certs: Certs, options: dict[str, Any] | None) -> TlsSettings | None:
    if options is None:
        return None
    options = dict(options)
    return settings(certs, options.pop("pair", "good"), **options)


@pytest.mark.parametrize("case", DIAL_CASES.values(), ids=DIAL_CASES.keys())
async def test_python_dialing_erlang_is_refused(
    case: Refusal, epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode], *,
    refusals: list[telemetry.TlsRefused], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    e = start_erl(erl_nodes, epmd, certs, case.erl)
    py = await start_py(epmd, _py_settings(certs, case.py))
    try:
        with pytest.raises(TlsError) as caught:
            await py.connect(e.name, timeout=15)
        error = caught.value
        assert (error.failure, error.by_peer) == (case.failure, case.by_peer), error
        telemetry.flush()  # handlers run on the telemetry thread
        assert [(r.failure, r.role, r.peer) for r in refusals] == [
            (case.failure.value, "dial", e.name)]
        assert not await py.ping(e.name, timeout=15)
        if case.erl_log:
            await erl_logged(e, case.erl_log)
        await no_connection_left(py, e)
        assert_no_secret(certs, str(error), repr(error), *map(repr, refusals), caplog.text)
    finally:
        await py.stop()


@pytest.mark.parametrize("case", ACCEPT_CASES.values(), ids=ACCEPT_CASES.keys())
async def test_erlang_dialing_python_is_refused(
    case: Refusal, epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode], *,
    refusals: list[telemetry.TlsRefused], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    py = await start_py(epmd, _py_settings(certs, case.py))
    e = start_erl(erl_nodes, epmd, certs, case.erl)
    try:
        assert await erl(e, f"net_adm:ping('{py.name}').") == "pang"
        await wait_for(lambda: bool(refusals), 20, "a TlsRefused event")
        refused = refusals[0]
        assert (refused.failure, refused.role, refused.by_peer) == (
            case.failure.value, "accept", case.by_peer), refused
        assert refused.peer == "127.0.0.1"
        if case.erl_log:
            await erl_logged(e, case.erl_log)
        await no_connection_left(py, e)
        assert_no_secret(certs, *map(repr, refusals), caplog.text)
    finally:
        await py.stop()


# --- refusals between Python nodes -------------------------------------------------------------


@dataclass(frozen=True)
class PyRefusal:
    """One failure case between two Python nodes: what each side reports."""

    server: dict[str, Any] | None  #: the accepting node's TlsSettings options (None: plain)
    client: dict[str, Any] | None  #: the dialing node's
    failure: TlsFailure  #: the dialer's TlsError
    by_peer: bool
    accepted: TlsFailure  #: the accepting node's TlsRefused
    accepted_by_peer: bool


PY_CASES = {
    "untrusted": PyRefusal({"pair": "untrusted"}, {}, TlsFailure.UNTRUSTED_CERTIFICATE, False,
                           TlsFailure.UNTRUSTED_CERTIFICATE, True),
    "expired": PyRefusal({"pair": "expired"}, {}, TlsFailure.CERTIFICATE_EXPIRED, False,
                         TlsFailure.CERTIFICATE_EXPIRED, True),
    "wrong_host": PyRefusal({"pair": "wrong_host"}, {}, TlsFailure.WRONG_HOST, False,
                            TlsFailure.UNTRUSTED_CERTIFICATE, True),
    "no_client_cert": PyRefusal({}, {"client_certificate": False},
                                TlsFailure.NO_PEER_CERTIFICATE, True,
                                TlsFailure.NO_PEER_CERTIFICATE, False),
    "protocol_mismatch": PyRefusal({"versions": ("tlsv1.3",)}, {},
                                   TlsFailure.PROTOCOL_MISMATCH, True,
                                   TlsFailure.PROTOCOL_MISMATCH, False),
    "plain_to_tls": PyRefusal({}, None, TlsFailure.PEER_REQUIRES_TLS, False,
                              TlsFailure.PEER_NOT_TLS, False),
    "tls_to_plain": PyRefusal(None, {}, TlsFailure.PEER_NOT_TLS, False,
                              TlsFailure.PEER_REQUIRES_TLS, False),
}


@pytest.mark.parametrize("case", PY_CASES.values(), ids=PY_CASES.keys())
async def test_python_to_python_refusals(
    case: PyRefusal, epmd: EpmdProcess, certs: Certs, refusals: list[telemetry.TlsRefused],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start_py(epmd, _py_settings(certs, case.server))
    client = await start_py(epmd, _py_settings(certs, case.client))
    try:
        with pytest.raises(TlsError) as caught:
            await client.connect(server.name, timeout=15)
        assert (caught.value.failure, caught.value.by_peer) == (case.failure, case.by_peer), \
            caught.value
        # The accepting side refused (or was refused) too, and reported it.
        await wait_for(lambda: any(r.role == "accept" for r in refusals), 20,
                       "the server's TlsRefused event")
        telemetry.flush()
        assert [(r.failure, r.by_peer) for r in refusals if r.role == "accept"] == [
            (case.accepted.value, case.accepted_by_peer)], refusals
        await no_connection_left(client)
        await no_connection_left(server)
        assert_no_secret(certs, str(caught.value), *map(repr, refusals), caplog.text)
    finally:
        await client.stop()
        await server.stop()


async def test_client_certificate_must_name_its_address(
    epmd: EpmdProcess, certs: Certs, refusals: list[telemetry.TlsRefused]
) -> None:
    """``verify_client_address`` (OTP's ``verify_client/3``): a client certificate
    that does not name the address it connects from is refused after TLS."""
    server = await start_py(epmd, settings(certs, verify_client_address=True))
    named = await start_py(epmd, settings(certs, "other"))
    unnamed = await start_py(epmd, settings(certs, "wrong_host", check_hostname=True))
    try:
        assert await named.ping(server.name)
        with pytest.raises(ConnectFailed):
            await unnamed.connect(server.name, timeout=15)
        await wait_for(lambda: bool(refusals), 20, "the server's TlsRefused event")
        telemetry.flush()  # handlers run on the telemetry thread
        assert [(r.failure, r.role, r.peer) for r in refusals] == [
            (TlsFailure.WRONG_HOST.value, "accept", "127.0.0.1")]
        await no_connection_left(unnamed)
        assert server.nodes() == [named.name]
    finally:
        for node in (server, named, unnamed):
            await node.stop()


def test_the_sync_facade_starts_a_tls_node(
    epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, epmd, certs, ErlTls())
    cluster.start_node(f"{unique_name('sync')}@localhost", COOKIE, epmd_port=epmd.port,
                       tls=settings(certs))
    try:
        assert cluster.ping(e.name)
        assert cluster.nodes() == [e.name]
        assert e.eval(f"net_adm:ping('{cluster.self_node()}').") == "pong"
    finally:
        cluster.stop_node()


# --- TLS from config alone ---------------------------------------------------------------------


def _config_table(certs: Certs) -> dict[str, str]:
    """The ``tls`` key as a config file's table would give it."""
    return {"certfile": str(certs.good.cert), "keyfile": str(certs.good.key),
            "cacertfile": str(certs.ca)}


async def test_a_node_with_tls_only_in_config_speaks_only_tls(
    epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode],
    refusals: list[telemetry.TlsRefused],
) -> None:
    """``configure(tls=...)`` alone (no ``tls`` argument) makes a TLS node: it joins an
    ``-proto_dist inet_tls`` node and refuses plain TCP in both directions."""
    e = start_erl(erl_nodes, epmd, certs, ErlTls())
    plain = start_erl(erl_nodes, epmd, certs, ErlTls(tls=False))
    config.reset()  # earlier tests started nodes, which fixed config's tls; tests may reset
    config.configure(tls=_config_table(certs))
    try:
        py = await start_py(epmd, None)
        try:
            assert py.tls == settings(certs)
            assert await py.ping(e.name)
            assert await erl(e, f"{{ok, I}} = net_kernel:node_info('{py.name}'), "
                                "element(4, proplists:get_value(address, I)).") == "tls"
            conn = py.connection(e.name)
            assert conn is not None and conn.transport is not None
            assert conn.transport.get_extra_info("ssl_object") is not None
            # Plain TCP, either way: refused, typed, reported, nothing left behind.
            with pytest.raises(TlsError) as caught:
                await py.connect(plain.name, timeout=15)
            assert caught.value.failure is TlsFailure.PEER_NOT_TLS
            assert await erl(plain, f"net_adm:ping('{py.name}').") == "pang"
            await wait_for(lambda: any(r.role == "accept" for r in refusals), 20,
                           "the TlsRefused event of the plain peer's dial")
            telemetry.flush()
            assert [(r.failure, r.role) for r in refusals] == [
                ("peer_not_tls", "dial"), ("peer_not_tls", "accept")]
            assert await erl(plain, "nodes(connected).") == "[]"
            assert py.nodes("connected") == [e.name]
        finally:
            await py.stop()
        # A Config given to Node.start carries TLS the same way.
        own = await Node.start(f"{unique_name('cfg')}@localhost", COOKIE, epmd_port=epmd.port,
                               embedded_epmd=False, config=Config(tls=settings(certs)))
        try:
            assert own.tls == settings(certs) and await own.ping(e.name)
        finally:
            await own.stop()
    finally:
        config.reset()


def test_the_sync_facade_takes_tls_from_config(
    epmd: EpmdProcess, certs: Certs, erl_nodes: list[ErlNode]
) -> None:
    e = start_erl(erl_nodes, epmd, certs, ErlTls())
    config.reset()  # as above
    config.configure(tls=settings(certs))
    try:
        cluster.start_node(f"{unique_name('sync')}@localhost", COOKIE, epmd_port=epmd.port)
        try:
            assert cluster.ping(e.name)
            assert e.eval(f"net_adm:ping('{cluster.self_node()}').") == "pong"
            assert e.eval(f"{{ok, I2}} = net_kernel:node_info('{cluster.self_node()}'), "
                          "element(4, proplists:get_value(address, I2)).") == "tls"
        finally:
            cluster.stop_node()
    finally:
        config.reset()
