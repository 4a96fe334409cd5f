"""The ``erldist`` command line without a network: parsing, names, exit codes, messages."""

from __future__ import annotations

import logging
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from erldist import cli
from erldist.cli_watch import PeerStatus, health_report, render_table
from erldist.names import parse_node_name

COMMANDS = ("demo", "node", "ping", "health", "watch", "names", "epmd")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test may read the developer's cookie or environment, or leave logging configured."""
    monkeypatch.delenv("ERLDIST_COOKIE", raising=False)
    monkeypatch.delenv("ERL_EPMD_PORT", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"usage: erldist {command}" in out
    assert "examples:" in out
    assert f"erldist {command}" in out.split("examples:")[1]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "demo"])
def test_epmd_port_option_everywhere_it_is_needed(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, "--help"]) == 0
    assert "--epmd-port PORT" in capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: erldist" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("erldist ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frobnicate"], "invalid choice"),
        (["ping"], "required: NODE"),
        (["ping", "a@b", "--epmd-port", "0"], "not a port number"),
        (["ping", "a@b", "--epmd-port", "70000"], "not a port number"),
        (["ping", "a@b", "--timeout", "-1"], "not a number of seconds"),
        (["ping", "a@b", "--name", "x", "--sname", "y"], "not allowed with"),
        (["health"], "--connect"),
        (["watch", "--connect"], "expected at least one argument"),
        (["demo", "--nodes", "1"], "2..8 Python nodes"),
        (["node", "--port", "x"], "not a port number"),
    ],
)
def test_usage_errors_exit_2_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "--help" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ping", "nohost", "--cookie", "c"], "'nohost' is not a node name"),
        (["ping", "a@b@c", "--cookie", "c"], "is not a node name"),
        (["health", "--connect", "a@h", "b@h.example.com", "--cookie", "c"], "cannot mix"),
        (["ping", "a@h", "--sname", "me@h.example.com", "--cookie", "c"],
         "--sname needs a host without dots"),
        (["ping", "a@h.x", "--name", "me@h", "--cookie", "c"], "--name needs a host with dots"),
        (["node", "--cookie", "c"], "give the node's name once"),
        (["node", "a@127.0.0.1", "--sname", "b", "--cookie", "c"], "give the node's name once"),
        (["node", "a@127.0.0.1", "--connect", "bad", "--cookie", "c"], "'bad' is not a node"),
    ],
)
def test_semantic_usage_errors_exit_2_before_any_network(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_bad_erl_epmd_port_variable_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ERL_EPMD_PORT", "fourthousand")
    assert cli.main(["names"]) == 2
    assert "ERL_EPMD_PORT" in capsys.readouterr().err


def test_missing_cookie_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ping", "a@127.0.0.1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("erldist ping: error: no cookie")
    assert len(err.strip().splitlines()) == 1


def test_loose_cookie_file_is_refused_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cookie = tmp_path / ".erlang.cookie"
    cookie.write_text("topsecretcookie\n")
    cookie.chmod(stat.S_IRUSR | stat.S_IRGRP)
    assert cli.main(["health", "--connect", "a@127.0.0.1"]) == 1
    err = capsys.readouterr().err
    assert "must be accessible by owner only" in err
    assert "topsecretcookie" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_cookie_value_is_refused_without_showing_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["ping", "a@127.0.0.1", "--cookie", "not secret!"]) == 1
    err = capsys.readouterr().err
    assert "--cookie" in err
    assert "not secret!" not in err


# --- names -----------------------------------------------------------------------------


def test_qualify_follows_erl() -> None:
    short = socket.gethostname().split(".")[0]
    assert cli.qualify("a", long=False) in (f"a@{short}", "a@localhost")
    assert cli.qualify("a@box", long=False) == "a@box"
    assert cli.qualify("a@127.0.0.1", long=True) == "a@127.0.0.1"
    with pytest.raises(cli.UsageError, match="--sname needs a host without dots"):
        cli.qualify("a@127.0.0.1", long=False)
    with pytest.raises(cli.UsageError, match="not a node name"):
        cli.qualify("bad name", long=False)


def test_bare_long_name_needs_a_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda: "box")
    with pytest.raises(cli.UsageError, match=r"no domain name.*a@127\.0\.0\.1"):
        cli.qualify("a", long=True)
    monkeypatch.setattr(socket, "getfqdn", lambda: "box.example.com")
    assert cli.qualify("a", long=True) == "a@box.example.com"


@pytest.mark.parametrize(
    ("targets", "long"),
    [(["a@127.0.0.1"], True), (["a@db.example.com", "b@127.0.0.1"], True),
     (["a@localhost"], False), (["a@box", "b@box"], False)],
)
def test_probe_names_match_the_targets_kind(targets: list[str], long: bool) -> None:
    parsed = cli.parse_targets(targets)
    first = cli.probe_name("ping", parsed)
    second = cli.probe_name("ping", parsed)
    assert first != second
    name = parse_node_name(first)
    assert name.long is long
    assert name.alive.startswith("erldist-ping-")


def test_short_host_falls_back_when_the_hostname_is_not_a_valid_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "my box")
    assert cli.probe_name("watch", cli.parse_targets(["a@b"])).endswith("@localhost")


# --- rendering -------------------------------------------------------------------------


def test_render_table_pads_columns() -> None:
    text = render_table(("NODE", "STATE"), [("a@h", "up"), ("longer@h", "down")], indent="  ")
    assert text.splitlines() == [
        "  NODE      STATE",
        "  a@h       up",
        "  longer@h  down",
    ]


def test_health_report_keeps_the_seed_invariants() -> None:
    statuses = [
        PeerStatus("a@h", True, True, 1.0),
        PeerStatus("b@h", False, False, detail="not registered"),
        PeerStatus("c@h", True, False, detail="no answer to ping"),
    ]
    report = health_report("me@h", statuses)
    assert report.connected_nodes == ("a@h", "c@h")
    assert report.connected_count == 2
    assert report.reachable_nodes == ("a@h",)
    assert report.unreachable_nodes == ("c@h",)
    assert [s.state for s in statuses] == ["reachable", "not connected", "unreachable"]

