"""Throw-away certificates for TLS tests, made by the ``openssl`` command at test time.

No key is ever committed: each test session makes a fresh CA and the
certificates below in a temporary folder. ``Certs.erl_optfile`` writes the
same settings as OTP's ``-ssl_dist_optfile`` so both sides of an interop
test read one set of files.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Every name a test node's certificate must bear: tests name nodes ``x@localhost``,
#: and the address is what a client certificate is checked against.
GOOD_NAMES = "DNS:localhost,IP:127.0.0.1"


@dataclass(frozen=True)
class Pair:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Certs:
    """A trusted CA and the certificates the TLS tests use."""

    dir: Path
    ca: Path
    good: Pair  #: signed by ``ca``, names localhost and 127.0.0.1
    other: Pair  #: a second good one (a distinct client identity)
    expired: Pair  #: signed by ``ca``, expired
    wrong_host: Pair  #: signed by ``ca``, names only wrong.example
    untrusted: Pair  #: signed by a CA nobody trusts

    def erl_optfile(self, name: str, *, server: dict[str, str], client: dict[str, str]) -> Path:
        """An ``-ssl_dist_optfile`` with these ``server``/``client`` options (already
        Erlang terms: ``{"certfile": '"/path"', "verify": "verify_peer"}``)."""

        def options(opts: dict[str, str]) -> str:
            return "[" + ",".join(f"{{{k},{v}}}" for k, v in opts.items()) + "]"

        path = self.dir / f"{name}.conf"
        path.write_text(f"[{{server,{options(server)}}},{{client,{options(client)}}}].\n")
        return path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(dir: Path, name: str) -> Pair:
    pair = Pair(dir / f"{name}.pem", dir / f"{name}.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(pair.key), "-out", str(pair.cert), "-days", "2",
             "-subj", f"/CN=erldist test {name}", cwd=dir)
    return pair


def _leaf(dir: Path, ca: Pair, name: str, names: str, days: int) -> Pair:
    """A certificate for both roles; ``days`` < 0 makes one already expired."""
    pair = Pair(dir / f"{name}.pem", dir / f"{name}.key")
    csr = dir / f"{name}.csr"
    ext = dir / f"{name}.ext"
    ext.write_text(f"subjectAltName={names}\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(pair.key), "-out", str(csr), "-subj", f"/CN={name}", cwd=dir)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
             "-set_serial", str(secrets.randbits(62)), "-days", str(days),
             "-extfile", str(ext), "-out", str(pair.cert), cwd=dir)
    return pair


def make_certs(dir: Path) -> Certs:
    """Make the CA and every certificate under ``dir``."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the TLS tests need the openssl command (Debian's openssl package)")
    ca = _ca(dir, "ca")
    rogue = _ca(dir, "rogue-ca")
    return Certs(
        dir=dir,
        ca=ca.cert,
        good=_leaf(dir, ca, "good", GOOD_NAMES, 2),
        other=_leaf(dir, ca, "other", GOOD_NAMES, 2),
        expired=_leaf(dir, ca, "expired", GOOD_NAMES, -1),
        wrong_host=_leaf(dir, ca, "wrong-host", "DNS:wrong.example", 2),
        untrusted=_leaf(dir, rogue, "untrusted", GOOD_NAMES, 2),
    )
