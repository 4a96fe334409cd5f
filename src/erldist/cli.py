"""The ``erldist`` command: a demo cluster, a foreground node, and cluster probes.

Every sub-command is a thin shell over the public asyncio API (``Node``,
``epmd_client``, ``EpmdServer``), so what the command shows is what a library
user gets. The probes (``ping``, ``health``, ``watch``) run as *hidden* nodes
with generated names: like ``erl -remsh`` they must never show up in the
``nodes()`` of the cluster they inspect.

Exit codes: 0 ok, 1 failure (pang, an unreachable peer, a network error),
2 usage. Errors are one line on stderr; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict
from typing import Any, NoReturn

from erldist import __version__, event_loop, telemetry
from erldist.cli_demo import run_demo
from erldist.cli_watch import (
    connect_reason,
    format_event,
    format_ping,
    health_report,
    probe_peers,
    render_table,
    timestamp,
    watch,
)
from erldist.cookie import ENV_VAR, resolve_cookie
from erldist.core import core_name
from erldist.errors import ConnectError, EpmdError, ErldistError
from erldist.events import ClusterEvent, NodeUp
from erldist.names import NameFormatError, NodeName, parse_node_name
from erldist.runtime import epmd_client
from erldist.runtime.epmd_server import EpmdServer
from erldist.runtime.node import Node
from erldist.tls_settings import TlsSettings

__all__ = ["UsageError", "build_parser", "main"]

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

PROG = "erldist"
#: Where a TLS key's password comes from (a secret stays off the command line).
TLS_PASSWORD_ENV = "ERLDIST_TLS_KEY_PASSWORD"  # noqa: S105 (a variable's name, not a secret)
COOKIE_HELP = (
    f"the cluster's cookie (default: ${ENV_VAR}, else ~/.erlang.cookie as erl reads it); "
    "prefer those two, a command line is visible to every user in ps"
)


class UsageError(ErldistError):
    """A mistake in the command line; reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: the full usage is one ``--help`` away."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- names -----------------------------------------------------------------------------


def _short_host() -> str:
    """This machine's short host name, as ``erl -sname`` picks it."""
    host = socket.gethostname().split(".")[0]
    try:
        parse_node_name(f"x@{host}")
    except NameFormatError:
        return "localhost"
    return host


def qualify(name: str, *, long: bool) -> str:
    """``name`` completed as ``erl -name``/``-sname`` would, and checked.

    A bare long name takes this host's fully qualified name; when the host has
    no domain that is a usage error, as it is for ``erl -name``.
    """
    alive, at, host = name.partition("@")
    if not at:
        if long:
            host = socket.getfqdn()
            if "." not in host:
                raise UsageError(
                    f"this host has no domain name ({host!r}): use --name {alive}@HOST, "
                    f"e.g. {alive}@127.0.0.1"
                )
        else:
            host = _short_host()
    full = f"{alive}@{host}"
    try:
        parsed = parse_node_name(full)
    except NameFormatError as exc:
        raise UsageError(f"{full!r} is not a node name: {exc}") from None
    if parsed.long != long:
        flag, want = ("--name", "a host with dots") if long else ("--sname", "a host without dots")
        raise UsageError(f"{flag} needs {want}, not {full!r}")
    return full


def own_name(args: argparse.Namespace) -> str | None:
    """The node name given with ``--name``/``--sname``, or None."""
    if args.name is not None:
        return qualify(args.name, long=True)
    if args.sname is not None:
        return qualify(args.sname, long=False)
    return None


def parse_targets(names: Sequence[str]) -> list[NodeName]:
    """Validate peer names up front, and refuse a mix OTP would refuse."""
    targets = []
    for name in names:
        try:
            targets.append(parse_node_name(name))
        except NameFormatError as exc:
            raise UsageError(f"{name!r} is not a node name: {exc}") from None
    if len({t.long for t in targets}) > 1:
        raise UsageError("cannot mix long names (host with dots) and short names in one call")
    return targets


def probe_name(command: str, targets: Sequence[NodeName]) -> str:
    """A fresh name for a probe, of the kind its targets need.

    A long name uses 127.0.0.1 rather than this host's FQDN: the name only has
    to be unique and valid (nobody dials a probe), and an FQDN lookup can hang.
    """
    host = "127.0.0.1" if any(t.long for t in targets) else _short_host()
    return f"erldist-{command}-{secrets.token_hex(3)}@{host}"


# --- shared pieces ---------------------------------------------------------------------


def epmd_port_of(args: argparse.Namespace) -> int:
    """``--epmd-port``, else ``ERL_EPMD_PORT``, else 4369; a bad variable is a usage error."""
    try:
        return epmd_client.resolve_epmd_port(args.epmd_port)
    except EpmdError as exc:
        raise UsageError(exc.detail) from None


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Turn Ctrl-C, SIGTERM and SIGHUP into ``stop.set()`` so cleanup runs in order."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def start_probe(args: argparse.Namespace, command: str, targets: Sequence[NodeName]) -> Node:
    """A hidden node for a one-shot command; it listens on loopback only (nobody dials it).

    The command reports each failure itself, in one line: the TLS layer's own
    warning for the same refusal would say it twice (``--verbose`` keeps it).
    """
    if not args.verbose:
        logging.getLogger("erldist.tls").setLevel(logging.ERROR)
    cookie = resolve_cookie(args.cookie)
    name = own_name(args) or probe_name(command, targets)
    return await Node.start(name, cookie.value, hidden=True, listen_host="127.0.0.1",
                            epmd_port=epmd_port_of(args), tls=tls_settings_of(args))


def tls_settings_of(args: argparse.Namespace) -> TlsSettings | None:
    """The ``--tls-*`` options as ``TlsSettings``; None (plain TCP) without ``--tls-certfile``."""
    if args.tls_certfile is None:
        given = [o for o in ("tls_keyfile", "tls_cacertfile", "tls_client_certfile",
                             "tls_client_keyfile", "tls_versions", "tls_ciphers")
                 if getattr(args, o) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} needs --tls-certfile")
        return None
    if args.tls_keyfile is None or args.tls_cacertfile is None:
        raise UsageError("TLS needs --tls-certfile, --tls-keyfile and --tls-cacertfile")
    versions = ("tlsv1.2",) if args.tls_versions is None else tuple(
        v.strip() for v in args.tls_versions.split(",") if v.strip())
    return TlsSettings(
        certfile=args.tls_certfile, keyfile=args.tls_keyfile, cacertfile=args.tls_cacertfile,
        client_certfile=args.tls_client_certfile, client_keyfile=args.tls_client_keyfile,
        password=os.environ.get(TLS_PASSWORD_ENV),
        verify_peer=not args.tls_no_verify,
        fail_if_no_peer_cert=not args.tls_no_peer_cert_required,
        check_hostname=not args.tls_no_hostname_check,
        verify_client_address=args.tls_verify_client_address,
        versions=versions, ciphers=args.tls_ciphers,
    )


# --- commands --------------------------------------------------------------------------


async def cmd_node(args: argparse.Namespace) -> int:
    """Run a node in the foreground, printing NodeUp/NodeDown until Ctrl-C or SIGTERM."""
    given = own_name(args)
    if (given is None) == (args.node_name is None):
        raise UsageError("give the node's name once: NAME, --name NAME or --sname NAME")
    if given is None:
        given = qualify(args.node_name, long="." in args.node_name.partition("@")[2])
    parse_targets([given, *args.connect])
    cookie = resolve_cookie(args.cookie)
    epmd_port = epmd_port_of(args)

    def epmd_news(event: telemetry.TelemetryEvent) -> None:
        # Starting or losing an EPMD is news for whoever runs a node by hand.
        if isinstance(event, telemetry.EpmdFallback):
            print(f"{timestamp()} epmd: {event.detail}", flush=True)

    if not args.verbose:  # the same news is logged; print it once
        logging.getLogger("erldist.epmd_policy").setLevel(logging.ERROR)
    stop = asyncio.Event()
    telemetry.attach(epmd_news)
    try:
        with stop_on_signals(stop):
            node = await Node.start(given, cookie.value, hidden=args.hidden,
                                    listen_host=args.listen_host, port=args.port,
                                    epmd_port=epmd_port, tls=tls_settings_of(args))
            await asyncio.to_thread(telemetry.flush)  # its epmd news prints before "is up"
            try:
                kind = "hidden node" if args.hidden else "node"
                print(f"{kind} {node.name} is up on port {node.port} (EPMD port {epmd_port}, "
                      f"cookie from {cookie.source}); Ctrl-C stops it", flush=True)
                await _serve(node, args.connect, stop)
            finally:
                await node.stop()
    finally:
        telemetry.detach(epmd_news)
    print(f"node {node.name} stopped", flush=True)
    return 0


async def _serve(node: Node, peers: Sequence[str], stop: asyncio.Event) -> None:
    """Print the node's events while it connects to ``peers`` and runs until ``stop``."""

    def show(event: ClusterEvent) -> None:
        hidden = isinstance(event, NodeUp) and event.node in node.nodes("hidden")
        print(format_event(event, hidden=hidden), flush=True)

    node.add_listener(show)
    try:
        for peer in peers:
            try:
                await node.connect(peer)
            except ConnectError as exc:
                print(f"{timestamp()} cannot connect to {peer}: {connect_reason(exc)}",
                      file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        node.remove_listener(show)  # the NodeDowns of our own stop are not news


async def cmd_ping(args: argparse.Namespace) -> int:
    """``net_adm:ping`` from the shell: pong (exit 0) or pang (exit 1)."""
    targets = parse_targets([args.node])
    node = await start_probe(args, "ping", targets)
    try:
        [status] = await probe_peers(node, [args.node], args.timeout)
    finally:
        await node.stop()
    print("pong" if status.reachable else "pang", flush=True)
    if not status.reachable:  # why, for a human; stdout stays just "pang" for scripts
        print(f"{PROG} ping: {args.node}: {status.detail}", file=sys.stderr)
    return 0 if status.reachable else 1


async def cmd_health(args: argparse.Namespace) -> int:
    """Connect to the peers, ping each, report; exit 1 unless every one answered."""
    targets = parse_targets(args.connect)
    node = await start_probe(args, "health", targets)
    try:
        statuses = await probe_peers(node, [str(t) for t in targets], args.timeout)
    finally:
        await node.stop()
    report = health_report(node.name, statuses)
    if args.json:
        doc = asdict(report) | {
            "not_connected": {s.node: s.detail for s in statuses if not s.connected},
            "ping_ms": {s.node: round(s.ping_ms, 3) for s in statuses if s.ping_ms is not None},
        }
        print(json.dumps(doc, indent=2))
    else:
        rows = [(s.node, s.state, format_ping(s.ping_ms), s.detail) for s in statuses]
        print(render_table(("NODE", "STATE", "PING", "DETAIL"), rows))
        print(f"{len(report.reachable_nodes)} of {len(statuses)} reachable "
              f"(probe {node.name}, hidden)")
    return 0 if all(s.reachable for s in statuses) else 1


async def cmd_names(args: argparse.Namespace) -> int:
    """``epmd -names`` for any host, without needing Erlang installed."""
    port = epmd_port_of(args)
    entries = await epmd_client.names(args.host, epmd_port=port, timeout=args.timeout)
    sys.stdout.write(epmd_client.format_names(port, entries))
    return 0


async def cmd_epmd(args: argparse.Namespace) -> int:
    """Serve EPMD in the foreground, for machines without Erlang."""
    port = epmd_port_of(args)
    stop = asyncio.Event()
    with stop_on_signals(stop):
        server = await EpmdServer.start(host=args.bind, port=port)
        try:
            print(f"EPMD listening on {args.bind}:{port}; Ctrl-C stops it", flush=True)
            await stop.wait()
        finally:
            await server.close()
    print("EPMD stopped", flush=True)
    return 0


async def cmd_watch(args: argparse.Namespace) -> int:
    """Show peers live until Ctrl-C; the node's own logs would only garble the view."""
    if not args.verbose:
        logging.getLogger("erldist").setLevel(logging.ERROR)
    targets = parse_targets(args.connect)
    stop = asyncio.Event()
    with stop_on_signals(stop):
        node = await start_probe(args, "watch", targets)
        try:
            return await watch(node, [str(t) for t in targets], interval=args.interval,
                               tty=sys.stdout.isatty(), out=sys.stdout, stop=stop)
        finally:
            await node.stop()


async def cmd_demo(args: argparse.Namespace) -> int:
    return await run_demo(python_nodes=args.nodes, with_erlang=not args.no_erlang,
                          epmd_port=args.epmd_port)


# --- the parser ------------------------------------------------------------------------


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"not a port number (1..65535): {text!r}")
    return int(text)


def _listen_port(text: str) -> int:
    return 0 if text == "0" else _port(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"not a number of seconds in (0, 3600): {text!r}")
    return value


def _node_count(text: str) -> int:
    if not text.isdigit() or not 2 <= int(text) <= 8:
        raise argparse.ArgumentTypeError(f"the demo runs 2..8 Python nodes, not {text!r}")
    return int(text)


def _add_epmd_port(p: argparse.ArgumentParser, *names: str) -> None:
    p.add_argument(*names, "--epmd-port", dest="epmd_port", type=_port, metavar="PORT",
                   help="EPMD's port (default: $ERL_EPMD_PORT, else 4369)")


def _add_identity(p: argparse.ArgumentParser, *, probe: bool) -> None:
    p.add_argument("--cookie", metavar="COOKIE", help=COOKIE_HELP)
    group = p.add_mutually_exclusive_group()
    who = "this probe's" if probe else "the node's"
    default = " (default: a generated one)" if probe else ""
    group.add_argument("--name", metavar="NAME[@HOST]",
                       help=f"{who} long name, as erl -name{default}")
    group.add_argument("--sname", metavar="NAME[@HOST]",
                       help=f"{who} short name, as erl -sname")


def _add_tls(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "TLS distribution (as erl -proto_dist inet_tls -ssl_dist_optfile FILE)",
        f"TLS is on when --tls-certfile is given; a key's password comes from "
        f"${TLS_PASSWORD_ENV}, never from the command line.")
    g.add_argument("--tls-certfile", metavar="PEM",
                   help="this node's certificate (server_certfile; also client_certfile)")
    g.add_argument("--tls-keyfile", metavar="PEM", help="its private key")
    g.add_argument("--tls-cacertfile", metavar="PEM", help="the CAs trusted for peers")
    g.add_argument("--tls-client-certfile", metavar="PEM",
                   help="a different certificate when dialing (client_certfile)")
    g.add_argument("--tls-client-keyfile", metavar="PEM", help="its private key")
    g.add_argument("--tls-no-verify", action="store_true",
                   help="do not verify peers' certificates (verify_none): encryption only")
    g.add_argument("--tls-no-peer-cert-required", action="store_true",
                   help="accept peers without a certificate (fail_if_no_peer_cert false)")
    g.add_argument("--tls-no-hostname-check", action="store_true",
                   help="do not check a server certificate against the host dialed")
    g.add_argument("--tls-verify-client-address", action="store_true",
                   help="a client certificate must name the address it connects from "
                        "(inet_tls_dist:verify_client/3)")
    g.add_argument("--tls-versions", metavar="V[,V]",
                   help="allowed versions: tlsv1.2 (default, as OTP), tlsv1.3")
    g.add_argument("--tls-ciphers", metavar="LIST", help="OpenSSL cipher list for TLS 1.2")


def _command(sub: argparse._SubParsersAction[_Parser], name: str, run: Command, *,
             summary: str, details: str, examples: str) -> _Parser:
    p = sub.add_parser(name, help=summary, description=f"{summary}\n\n{details}",
                       epilog=f"examples:\n{examples}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=run)
    return p


def build_parser() -> _Parser:
    """The ``erldist`` argument parser, one sub-parser per command."""
    parser = _Parser(
        prog=PROG,
        description="Make Python processes real nodes of an Erlang distribution cluster.",
        epilog="Start with `erldist demo`. Every command has --help with examples.\n"
               "Exit codes: 0 ok, 1 failure (e.g. pang), 2 usage.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__} ({core_name()} core, "
                                f"{event_loop.loop_name()} loop)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what the nodes do (to stderr)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = _command(
        sub, "demo", cmd_demo,
        summary="run a small cluster on this machine and show it work",
        details="Starts Python nodes (and a real Erlang node when `erl` is on the PATH) as\n"
                "separate processes on a private EPMD, connects them, prints the cluster's\n"
                "health, kills one node to show NodeDown arrive, then stops everything it\n"
                "started. Needs nothing but this package.",
        examples="  erldist demo\n  erldist demo --nodes 4 --no-erlang",
    )
    p.add_argument("--nodes", type=_node_count, default=3, metavar="N",
                   help="how many Python nodes (2..8, default 3)")
    p.add_argument("--no-erlang", action="store_true",
                   help="leave out the Erlang node even when `erl` is installed")
    p.add_argument("--epmd-port", type=_port, metavar="PORT",
                   help="port for the demo's private EPMD (default: a free one)")

    p = _command(
        sub, "node", cmd_node,
        summary="run a node in the foreground until Ctrl-C or SIGTERM",
        details="Prints NodeUp/NodeDown events as they happen. NAME is NAME@HOST, or a bare\n"
                "NAME that becomes a short name on this host (as erl -sname). When no EPMD\n"
                "runs on this host the node serves an embedded one.",
        examples="  erldist node py1@127.0.0.1 --cookie secret\n"
                 "  erldist node --sname py2 --connect py1@$(hostname -s)\n"
                 "  ERLDIST_COOKIE=secret erldist node py3@127.0.0.1 --connect a@127.0.0.1",
    )
    p.add_argument("node_name", nargs="?", metavar="NAME", help="the node's name")
    _add_identity(p, probe=False)
    p.add_argument("--connect", nargs="+", default=[], metavar="PEER",
                   help="peers to connect to once up (a failure is reported, not fatal)")
    p.add_argument("--hidden", action="store_true",
                   help="a hidden node, as erl -hidden: not in other nodes' nodes()")
    p.add_argument("--listen-host", default="0.0.0.0", metavar="ADDR",
                   help="address to accept connections on (default 0.0.0.0)")
    p.add_argument("--port", type=_listen_port, default=0,
                   help="port to accept connections on (default: any free port)")
    _add_epmd_port(p)
    _add_tls(p)

    p = _command(
        sub, "ping", cmd_ping,
        summary="ping a node: prints pong (exit 0) or pang (exit 1)",
        details="Like net_adm:ping/1, from a hidden node with a generated name, so the\n"
                "probe never shows in the cluster's nodes(). A wrong cookie gives pang.",
        examples="  erldist ping app@db1.example.com --cookie secret\n"
                 "  erldist ping rabbit@$(hostname -s) && echo up",
    )
    p.add_argument("node", metavar="NODE", help="the node to ping, NAME@HOST")
    _add_identity(p, probe=True)
    p.add_argument("--timeout", type=_seconds, default=8.0, metavar="SECONDS",
                   help="give up after this long (default 8)")
    _add_epmd_port(p)
    _add_tls(p)

    p = _command(
        sub, "health", cmd_health,
        summary="one-shot health report of some peers",
        details="Connects to each PEER from a hidden node, pings all of them in parallel\n"
                "under one deadline, and prints a table (or JSON with the fields of\n"
                "erldist.ClusterHealth). Exits 1 unless every peer answered.",
        examples="  erldist health --connect a@127.0.0.1 b@127.0.0.1\n"
                 "  erldist health --connect app@$(hostname -s) --json | jq .reachable_nodes",
    )
    p.add_argument("--connect", nargs="+", required=True, metavar="PEER",
                   help="the peers to check")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_identity(p, probe=True)
    p.add_argument("--timeout", type=_seconds, default=8.0, metavar="SECONDS",
                   help="one deadline for all connects and pings (default 8)")
    _add_epmd_port(p)
    _add_tls(p)

    p = _command(
        sub, "watch", cmd_watch,
        summary="live view of peers: up/down, reachability, ping time",
        details="Redraws in place as events arrive and on every tick; when stdout is not a\n"
                "terminal it prints one line per change instead. Down peers are retried.\n"
                "Ctrl-C stops it.",
        examples="  erldist watch --connect a@127.0.0.1 b@127.0.0.1\n"
                 "  erldist watch --connect app@$(hostname -s) --interval 5 > watch.log",
    )
    p.add_argument("--connect", nargs="+", required=True, metavar="PEER",
                   help="the peers to watch")
    p.add_argument("--interval", type=_seconds, default=1.0, metavar="SECONDS",
                   help="seconds between ping rounds and reconnect attempts (default 1)")
    _add_identity(p, probe=True)
    _add_epmd_port(p)
    _add_tls(p)

    p = _command(
        sub, "names", cmd_names,
        summary="list the nodes registered with an EPMD (as epmd -names)",
        details="Works without Erlang installed.",
        examples="  erldist names\n  erldist names db1.example.com --epmd-port 4370",
    )
    p.add_argument("host", nargs="?", default="127.0.0.1", metavar="HOST",
                   help="whose EPMD to ask (default 127.0.0.1)")
    p.add_argument("--timeout", type=_seconds, default=5.0, metavar="SECONDS",
                   help="give up after this long (default 5)")
    _add_epmd_port(p)

    p = _command(
        sub, "epmd", cmd_epmd,
        summary="run an EPMD in the foreground",
        details="The port mapper erl and erldist nodes register with, for hosts without\n"
                "Erlang. Ctrl-C or SIGTERM stops it.",
        examples="  erldist epmd\n  erldist epmd --epmd-port 4370 --bind 0.0.0.0",
    )
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                   help="address to listen on (default 127.0.0.1)")
    _add_epmd_port(p, "--port")
    return parser


# --- entry point -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``erldist`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(format="erldist: %(message)s", stream=sys.stderr,
                        level=logging.INFO if args.verbose else logging.WARNING)
    prog = f"{PROG} {args.command}"
    try:
        run: Command = args.run
        return event_loop.run(run(args))
    except UsageError as exc:
        print(f"{prog}: error: {exc} (see '{prog} --help')", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Whoever read our stdout stopped (`erldist watch | head`): stop quietly, and
        # point stdout at /dev/null so the interpreter's final flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ErldistError, OSError) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return " ".join(str(exc).split()) or type(exc).__name__
