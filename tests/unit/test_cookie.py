"""Cookie resolution: flag, environment, then the file OTP reads, refused as OTP refuses it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from erldist.cookie import CookieError, ResolvedCookie, read_cookie_file, resolve_cookie


def _write(path: Path, content: bytes, mode: int = 0o400) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def env_for(home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), **extra}


def test_flag_wins_over_everything(home: Path) -> None:
    env = env_for(home, ERLDIST_COOKIE="fromenv")
    _write(home / ".erlang.cookie", b"fromfile")
    assert resolve_cookie("fromflag", env) == ResolvedCookie("fromflag", "--cookie")


def test_environment_before_file(home: Path) -> None:
    env = env_for(home, ERLDIST_COOKIE="fromenv")
    _write(home / ".erlang.cookie", b"fromfile")
    assert resolve_cookie(None, env) == ResolvedCookie("fromenv", "ERLDIST_COOKIE")


def test_empty_environment_counts_as_unset(home: Path) -> None:
    env = env_for(home, ERLDIST_COOKIE="")
    _write(home / ".erlang.cookie", b"fromfile\n")
    assert resolve_cookie(None, env).value == "fromfile"


def test_home_file_before_config_dir(home: Path) -> None:
    env = env_for(home)
    _write(home / ".erlang.cookie", b"homecookie\n")
    _write(home / ".config/erlang/.erlang.cookie", b"xdgcookie\n")
    got = resolve_cookie(None, env)
    assert got.value == "homecookie"
    assert got.source == str(home / ".erlang.cookie")


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="XDG layout is Linux's")
def test_config_dir_when_home_file_is_missing(home: Path, tmp_path: Path) -> None:
    _write(home / ".config/erlang/.erlang.cookie", b"xdgcookie\n")
    assert resolve_cookie(None, env_for(home)).value == "xdgcookie"
    xdg = tmp_path / "xdg"
    _write(xdg / "erlang/.erlang.cookie", b"elsewhere")
    assert resolve_cookie(None, env_for(home, XDG_CONFIG_HOME=str(xdg))).value == "elsewhere"


@pytest.mark.parametrize("mode", [0o440, 0o404, 0o600 | 0o020, 0o644, 0o700 | 0o001])
def test_loose_permissions_are_refused_as_otp_does(home: Path, mode: int) -> None:
    path = _write(home / ".erlang.cookie", b"secretvalue", mode)
    with pytest.raises(CookieError, match="owner only") as info:
        resolve_cookie(None, env_for(home))
    assert "secretvalue" not in str(info.value)
    assert f"chmod 400 {path}" in str(info.value)


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o700, 0o200 | 0o400])
def test_owner_only_modes_are_accepted(home: Path, mode: int) -> None:
    _write(home / ".erlang.cookie", b"okcookie", mode)
    assert resolve_cookie(None, env_for(home)).value == "okcookie"


def test_a_loose_home_file_does_not_fall_back_to_the_config_dir(home: Path) -> None:
    _write(home / ".erlang.cookie", b"loose", 0o644)
    _write(home / ".config/erlang/.erlang.cookie", b"tight")
    with pytest.raises(CookieError, match="owner only"):
        resolve_cookie(None, env_for(home))


@pytest.mark.parametrize(
    ("content", "cookie"),
    [(b"abc", "abc"), (b"abc\n", "abc"), (b"abc\r\n\n", "abc"), (b"a-b_C9\n \n", "a-b_C9")],
)
def test_file_content_is_read_as_otp_reads_it(tmp_path: Path, content: bytes, cookie: str) -> None:
    assert read_cookie_file(_write(tmp_path / "c", content)) == cookie


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"abc\ndef", "bad characters"),
        (b"abc\tdef", "bad characters"),
        (b"ab\xc3\xa9", "bad characters"),
        (b"abc def", r"\[a-zA-Z0-9_-\]"),
        (b"x" * 256, "too long"),
    ],
)
def test_bad_file_content_is_refused_without_quoting_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    with pytest.raises(CookieError, match=message) as info:
        read_cookie_file(_write(tmp_path / "c", content))
    if len(content) > 2:
        assert content.decode("latin-1") not in str(info.value)


def test_a_directory_is_not_a_cookie_file(home: Path) -> None:
    (home / ".erlang.cookie").mkdir(parents=True)
    with pytest.raises(CookieError, match="not a regular file"):
        resolve_cookie(None, {"HOME": str(home)})


def test_missing_everywhere_says_what_to_do_and_creates_nothing(home: Path) -> None:
    env = env_for(home)
    with pytest.raises(CookieError, match=r"--cookie.*ERLDIST_COOKIE.*erlang\.cookie"):
        resolve_cookie(None, env)
    assert list(home.iterdir()) == []


@pytest.mark.parametrize("bad", ["", "has space", "é", "x" * 256])
def test_flag_and_environment_values_are_validated(home: Path, bad: str) -> None:
    with pytest.raises(CookieError, match="--cookie") as info:
        resolve_cookie(bad, env_for(home))
    if bad:
        assert bad not in str(info.value)
    with pytest.raises(CookieError, match="ERLDIST_COOKIE"):
        resolve_cookie(None, env_for(home, ERLDIST_COOKIE=bad or " "))


def test_repr_hides_the_value() -> None:
    assert "hunter2" not in repr(ResolvedCookie("hunter2", "--cookie"))
