"""Where the ``erldist`` command finds the cookie: flag, environment, OTP's file.

The order is ``--cookie``, then ``ERLDIST_COOKIE``, then the file OTP's
``auth`` module reads: ``~/.erlang.cookie``, or when that does not exist
``<user config dir>/erlang/.erlang.cookie`` (``filename:basedir(user_config,
"erlang")``, which OTP 25 already consults). The file is refused exactly when
OTP refuses it (not a regular file; on POSIX any group or other permission
bit set), so a cookie that works for ``erl`` works here and one ``erl`` would
reject is not quietly accepted. Unlike ``erl`` we never *create* the file: a
fresh random cookie cannot authenticate to an existing cluster, so a missing
cookie is reported instead. No message here ever contains the cookie.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from erldist.errors import ErldistError
from erldist.names import CookieFormatError, validate_cookie

__all__ = ["ENV_VAR", "CookieError", "ResolvedCookie", "cookie_paths", "read_cookie_file",
           "resolve_cookie"]

#: The environment variable consulted when ``--cookie`` is not given.
ENV_VAR = "ERLDIST_COOKIE"


class CookieError(ErldistError):
    """No usable cookie; the message says where we looked, never what we found."""


@dataclass(frozen=True)
class ResolvedCookie:
    """A cookie and where it came from; ``repr`` hides the value."""

    value: str = field(repr=False)
    source: str


def _user_config_dir(env: Mapping[str, str], home: Path) -> Path:
    """``filename:basedir(user_config, "erlang")`` for this platform."""
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "erlang"
    if sys.platform == "win32":
        appdata = env.get("APPDATA")
        return Path(appdata) / "erlang" if appdata else home / "AppData" / "Roaming" / "erlang"
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else home / ".config"
    return base / "erlang"


def cookie_paths(env: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """The two files OTP tries, in its order: ``~/.erlang.cookie``, then the config dir's."""
    env = os.environ if env is None else env
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".erlang.cookie", _user_config_dir(env, home) / ".erlang.cookie"


def read_cookie_file(path: Path) -> str:
    """The cookie in ``path``, checked as OTP's ``auth:read_cookie`` checks it.

    OTP takes printable ASCII up to the first other character, allows only
    newlines, carriage returns and spaces after it, and refuses an empty
    result. The cookie must then pass erldist's own charset check.
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise CookieError(f"cannot read cookie file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CookieError(f"cookie file {path} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise CookieError(
            f"cookie file {path} must be accessible by owner only "
            f"(mode is {stat.S_IMODE(info.st_mode):o}; run: chmod 400 {path})"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CookieError(f"cannot read cookie file {path}: {exc.strerror}") from None
    end = 0
    while end < len(data) and 0x20 <= data[end] <= 0x7E:
        end += 1
    if data[end:].strip(b"\r\n "):
        raise CookieError(f"cookie file {path} has bad characters (printable ASCII only)")
    if end == 0:
        raise CookieError(f"cookie file {path} is empty")
    cookie = data[:end].decode("ascii")
    try:
        validate_cookie(cookie)
    except CookieFormatError as exc:
        raise CookieError(f"cookie file {path}: {exc}") from None
    return cookie


def resolve_cookie(explicit: str | None, env: Mapping[str, str] | None = None) -> ResolvedCookie:
    """The cookie to use: ``explicit`` (``--cookie``), ``ERLDIST_COOKIE``, or OTP's file.

    An empty ``ERLDIST_COOKIE`` counts as unset, as shells make it easy to
    export one by accident.
    """
    env = os.environ if env is None else env
    if explicit is not None:
        return ResolvedCookie(_checked(explicit, "--cookie"), "--cookie")
    if env.get(ENV_VAR):
        return ResolvedCookie(_checked(env[ENV_VAR], ENV_VAR), ENV_VAR)
    home_file, config_file = cookie_paths(env)
    for path in (home_file, config_file):
        if os.path.lexists(path):
            return ResolvedCookie(read_cookie_file(path), str(path))
    raise CookieError(
        f"no cookie: pass --cookie, set {ENV_VAR}, or create {home_file} (mode 400)"
    )


def _checked(cookie: str, source: str) -> str:
    try:
        validate_cookie(cookie)
    except CookieFormatError as exc:
        raise CookieError(f"{source}: {exc}") from None
    return cookie
