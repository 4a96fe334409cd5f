"""TLS distribution settings: what OTP's ``-ssl_dist_optfile`` configures, as data.

A leaf module (like ``config``, which holds these settings as its ``tls``
key): plain values checked on construction, no ``ssl`` context and no file
read. ``runtime.tls`` turns them into contexts when a node starts, so a
missing or unreadable file fails the start, not the construction.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from erldist.errors import TlsSettingsError

__all__ = ["VERSIONS", "TlsSettings"]

#: The versions a node may allow, by OTP's names.
VERSIONS = {"tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}

_REQUIRED_PATHS = ("certfile", "keyfile", "cacertfile")
_OPTIONAL_PATHS = ("client_certfile", "client_keyfile")
_FLAGS = ("client_certificate", "verify_peer", "fail_if_no_peer_cert", "check_hostname",
          "verify_client_address")


@dataclass(frozen=True)
class TlsSettings:
    """One node's TLS distribution settings (OTP's ``ssl_dist_optfile``).

    ``certfile``/``keyfile`` are this node's certificate (PEM, may hold the
    chain) and key, used when accepting (OTP's ``server_certfile``) and, unless
    ``client_certfile`` is given, when dialing. ``client_keyfile`` defaults to
    ``client_certfile`` (a PEM holding both), as OTP's ``keyfile`` defaults to
    its ``certfile``. ``cacertfile`` holds the CAs trusted for the peer's
    certificate. ``client_certificate=False`` dials without presenting one (an
    OTP ``client`` list without ``certfile``): only peers that do not require
    mutual TLS accept such a node.

    ``verify_peer`` is OTP's ``{verify, verify_peer}`` in both roles;
    ``fail_if_no_peer_cert`` makes accepting refuse a peer without a
    certificate (mutual TLS); ``check_hostname`` makes dialing check the
    server certificate against the host part of the node name (OTP does so
    through SNI); ``verify_client_address`` is OTP's
    ``inet_tls_dist:verify_client/3``: the client certificate must name the
    address it connects from. ``versions`` are OTP's names (``tlsv1.2``,
    ``tlsv1.3``); OTP's distribution defaults to ``tlsv1.2`` alone. ``ciphers``
    is an OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's).

    Paths may be ``str`` or ``os.PathLike`` (kept as ``str``); a bad value
    raises ``TlsSettingsError`` naming the field, never the password.
    """

    certfile: str
    keyfile: str
    cacertfile: str
    client_certfile: str | None = None
    client_keyfile: str | None = None
    client_certificate: bool = True
    password: str | None = field(default=None, repr=False)
    verify_peer: bool = True
    fail_if_no_peer_cert: bool = True
    check_hostname: bool = True
    verify_client_address: bool = False
    versions: tuple[str, ...] = ("tlsv1.2",)
    ciphers: str | None = None

    def __post_init__(self) -> None:
        for name in _REQUIRED_PATHS + _OPTIONAL_PATHS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_PATHS:
                continue
            object.__setattr__(self, name, _path(name, value))
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise TlsSettingsError(f"TLS {name} must be True or False, not "
                                       f"{type(getattr(self, name)).__name__}")
        if self.password is not None and not isinstance(self.password, str):
            raise TlsSettingsError("TLS password must be a str or None")
        if self.client_keyfile is not None and self.client_certfile is None:
            raise TlsSettingsError("TLS client_keyfile needs client_certfile")
        if self.client_certfile is not None and not self.client_certificate:
            raise TlsSettingsError("TLS client_certfile contradicts client_certificate=False")
        object.__setattr__(self, "versions", _versions(self.versions))
        if self.ciphers is not None and (not isinstance(self.ciphers, str)
                                         or not self.ciphers.strip()):
            raise TlsSettingsError("TLS ciphers must be a non-empty OpenSSL cipher list or None")

    @property
    def client_identity(self) -> tuple[str, str] | None:
        """The certificate and key presented when dialing; None when none is."""
        if not self.client_certificate:
            return None
        if self.client_certfile is not None:
            return self.client_certfile, self.client_keyfile or self.client_certfile
        return self.certfile, self.keyfile

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> TlsSettings:
        """Settings from a mapping of field names (a config file's table, say)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise TlsSettingsError(f"unknown TLS setting(s) {', '.join(unknown)}; "
                                   f"known: {', '.join(f.name for f in fields(cls))}")
        missing = [name for name in _REQUIRED_PATHS if name not in values]
        if missing:
            raise TlsSettingsError(f"TLS needs {', '.join(missing)}")
        return cls(**values)  # type: ignore[arg-type]


def _path(name: str, value: object) -> str:
    if not isinstance(value, str | os.PathLike):
        raise TlsSettingsError(f"TLS {name} must be a path, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise TlsSettingsError(f"TLS {name} must be a non-empty path")
    return path


def _versions(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise TlsSettingsError(f"TLS versions must be a tuple of names such as "
                               f"('tlsv1.2',), not {value!r}")
    versions = tuple(value)
    if not all(isinstance(v, str) for v in versions):
        raise TlsSettingsError(f"TLS versions must be names such as 'tlsv1.2', not {value!r}")
    if not versions:
        raise TlsSettingsError("TLS versions must name at least one TLS version")
    unknown = [v for v in versions if v not in VERSIONS]
    if unknown:
        raise TlsSettingsError(f"unknown TLS version(s) {', '.join(map(repr, unknown))}; "
                               f"known: {', '.join(VERSIONS)}")
    return versions
