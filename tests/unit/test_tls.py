"""TLS settings, failure classification and the handshake's framing inside TLS (no sockets)."""

from __future__ import annotations

import ssl
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from erldist.cli import build_parser, tls_settings_of
from erldist.errors import LocalProtocolError, TlsError, TlsFailure, TlsSettingsError
from erldist.protocol.flags import OUR_FLAGS
from erldist.protocol.handshake import Acceptor, HandshakeError, HandshakeFailure, Initiator
from erldist.runtime.tls import TlsContexts, address_matches, classify
from erldist.tls_settings import TlsSettings
from tests.support.tlscerts import Certs, make_certs

SECRET = "hunter2-key-password"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tlsunit"))


def settings(certs: Certs, **options: object) -> TlsSettings:
    return TlsSettings(certfile=str(certs.good.cert), keyfile=str(certs.good.key),
                       cacertfile=str(certs.ca), **options)  # type: ignore[arg-type]


# --- settings and contexts ----------------------------------------------------------------


def test_defaults_are_mutual_tls_with_otps_version(certs: Certs) -> None:
    ctx = TlsContexts(settings(certs))
    assert ctx.server.verify_mode is ssl.CERT_REQUIRED
    assert ctx.client.verify_mode is ssl.CERT_REQUIRED and ctx.client.check_hostname
    assert ctx.server.minimum_version is ssl.TLSVersion.TLSv1_2
    assert ctx.server.maximum_version is ssl.TLSVersion.TLSv1_2


def test_options_change_the_contexts(certs: Certs) -> None:
    optional = TlsContexts(settings(certs, fail_if_no_peer_cert=False, check_hostname=False,
                                    versions=("tlsv1.3", "tlsv1.2")))
    assert optional.server.verify_mode is ssl.CERT_OPTIONAL
    assert not optional.client.check_hostname
    assert optional.client.maximum_version is ssl.TLSVersion.TLSv1_3
    none = TlsContexts(settings(certs, verify_peer=False))
    assert none.server.verify_mode is ssl.CERT_NONE and none.client.verify_mode is ssl.CERT_NONE


@pytest.mark.parametrize("versions", [(), ("tlsv1.1",), ("sslv3", "tlsv1.2")])
def test_unknown_versions_are_refused(certs: Certs, versions: tuple[str, ...]) -> None:
    with pytest.raises(TlsSettingsError):
        settings(certs, versions=versions)


def test_a_missing_file_is_named(certs: Certs, tmp_path: Path) -> None:
    with pytest.raises(TlsSettingsError, match=r"nope\.pem"):
        TlsContexts(TlsSettings(certfile=str(tmp_path / "nope.pem"),
                                keyfile=str(certs.good.key), cacertfile=str(certs.ca)))


def test_a_key_that_does_not_match_is_refused(certs: Certs) -> None:
    with pytest.raises(TlsSettingsError, match="cannot load the certificate"):
        TlsContexts(TlsSettings(certfile=str(certs.good.cert), keyfile=str(certs.other.key),
                                cacertfile=str(certs.ca)))


def test_the_password_is_never_shown(certs: Certs, tmp_path: Path) -> None:
    locked = tmp_path / "locked.key"
    subprocess.run(["openssl", "pkey", "-in", str(certs.good.key), "-aes256",
                    "-passout", f"pass:{SECRET}", "-out", str(locked)], check=True, timeout=60)
    good = TlsSettings(certfile=str(certs.good.cert), keyfile=str(locked),
                       cacertfile=str(certs.ca), password=SECRET)
    assert SECRET not in repr(good)
    TlsContexts(good)  # the right password opens it
    wrong = TlsSettings(certfile=str(certs.good.cert), keyfile=str(locked),
                        cacertfile=str(certs.ca), password="not-" + SECRET)
    with pytest.raises(TlsSettingsError) as caught:
        TlsContexts(wrong)
    assert SECRET not in str(caught.value) and "not-" not in str(caught.value)


def test_settings_check_their_values_without_reading_files(tmp_path: Path) -> None:
    made = TlsSettings(certfile=tmp_path / "n.pem", keyfile=tmp_path / "n.key",  # type: ignore[arg-type]
                       cacertfile="ca.pem", versions=["tlsv1.3"])  # type: ignore[arg-type]
    assert made.certfile == str(tmp_path / "n.pem") and made.versions == ("tlsv1.3",)
    with pytest.raises(TlsSettingsError, match="TLS keyfile must be a path, not int"):
        TlsSettings(certfile="c", keyfile=3, cacertfile="a")  # type: ignore[arg-type]
    with pytest.raises(TlsSettingsError, match="check_hostname must be True or False"):
        TlsSettings(certfile="c", keyfile="k", cacertfile="a",
                    check_hostname=1)  # type: ignore[arg-type]
    with pytest.raises(TlsSettingsError, match="client_keyfile needs client_certfile"):
        TlsSettings(certfile="c", keyfile="k", cacertfile="a", client_keyfile="ck")
    with pytest.raises(TlsSettingsError, match="contradicts client_certificate=False"):
        TlsSettings(certfile="c", keyfile="k", cacertfile="a", client_certfile="cc",
                    client_certificate=False)
    with pytest.raises(TlsSettingsError, match="ciphers must be a non-empty"):
        TlsSettings(certfile="c", keyfile="k", cacertfile="a", ciphers=" ")


def test_the_client_identity_follows_otps_defaults() -> None:
    def made(**options: Any) -> TlsSettings:
        return TlsSettings(certfile="n.pem", keyfile="n.key", cacertfile="ca.pem", **options)

    assert made().client_identity == ("n.pem", "n.key")
    # OTP's keyfile defaults to its certfile: a PEM holding both.
    assert made(client_certfile="c.pem").client_identity == ("c.pem", "c.pem")
    assert made(client_certfile="c.pem", client_keyfile="c.key").client_identity == (
        "c.pem", "c.key")
    assert made(client_certificate=False).client_identity is None


def test_a_client_certificate_of_its_own_is_loaded(certs: Certs) -> None:
    TlsContexts(settings(certs, client_certfile=str(certs.other.cert),
                         client_keyfile=str(certs.other.key)))
    with pytest.raises(TlsSettingsError, match="cannot load the certificate"):
        # without client_keyfile the key is looked for in the certificate's file
        TlsContexts(settings(certs, client_certfile=str(certs.other.cert)))


def test_client_certificate_can_be_left_out(certs: Certs) -> None:
    ctx = TlsContexts(settings(certs, client_certificate=False))
    assert ctx.client.verify_mode is ssl.CERT_REQUIRED  # still checks the server


# --- classifying failures ---------------------------------------------------------------------


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_code = code
    exc.verify_message = message
    return exc


def _alert(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, reason)
    exc.reason = reason
    return exc


@pytest.mark.parametrize(("exc", "accepting", "sent", "failure", "by_peer"), [
    (_verify_error(10, "certificate has expired"), False, True,
     TlsFailure.CERTIFICATE_EXPIRED, False),
    (_verify_error(62, "Hostname mismatch"), False, True, TlsFailure.WRONG_HOST, False),
    (_verify_error(20, "unable to get local issuer certificate"), True, True,
     TlsFailure.UNTRUSTED_CERTIFICATE, False),
    (_alert("TLSV1_ALERT_UNKNOWN_CA"), False, True, TlsFailure.UNTRUSTED_CERTIFICATE, True),
    (_alert("SSLV3_ALERT_CERTIFICATE_EXPIRED"), True, True, TlsFailure.CERTIFICATE_EXPIRED,
     True),
    (_alert("PEER_DID_NOT_RETURN_A_CERTIFICATE"), True, True,
     TlsFailure.NO_PEER_CERTIFICATE, False),
    (_alert("SSLV3_ALERT_HANDSHAKE_FAILURE"), False, False,
     TlsFailure.NO_PEER_CERTIFICATE, True),
    (_alert("SSLV3_ALERT_HANDSHAKE_FAILURE"), True, True, TlsFailure.WRONG_HOST, True),
    (_alert("SSLV3_ALERT_HANDSHAKE_FAILURE"), False, True, TlsFailure.HANDSHAKE_FAILED, True),
    (_alert("TLSV1_ALERT_PROTOCOL_VERSION"), False, True, TlsFailure.PROTOCOL_MISMATCH, True),
    (_alert("UNSUPPORTED_PROTOCOL"), True, True, TlsFailure.PROTOCOL_MISMATCH, False),
    (_alert("WRONG_VERSION_NUMBER"), True, True, TlsFailure.PEER_NOT_TLS, False),
    (ConnectionResetError(), False, True, TlsFailure.PEER_NOT_TLS, False),
    (TimeoutError(), False, True, TlsFailure.PEER_NOT_TLS, False),
])
def test_classify(exc: BaseException, accepting: bool, sent: bool, failure: TlsFailure,
                  by_peer: bool) -> None:
    error = classify(exc, "a@localhost", accepting=accepting, sent_certificate=sent)
    assert (error.failure, error.by_peer, error.peer) == (failure, by_peer, "a@localhost")
    assert failure.value in str(error) and "a@localhost" in str(error)


def test_a_tls_error_is_a_connect_failure() -> None:
    from erldist.errors import ConnectFailed

    error = TlsError(TlsFailure.WRONG_HOST, "b@h", "x")
    assert isinstance(error, ConnectFailed) and error.detail.startswith("TLS refused")


def test_address_matches_only_ip_names() -> None:
    cert = {"subjectAltName": (("DNS", "localhost"), ("IP Address", "127.0.0.1"))}
    assert address_matches(cert, "127.0.0.1")
    assert not address_matches(cert, "127.0.0.2")
    assert not address_matches({"subjectAltName": (("DNS", "127.0.0.1"),)}, "127.0.0.1")
    assert not address_matches(cert, "localhost")


# --- the handshake inside TLS ---------------------------------------------------------------


def _machines(prefix: int) -> tuple[Initiator, Acceptor]:
    initiator = Initiator(local_name="a@h", peer_name="b@h", cookie=b"c", flags=OUR_FLAGS,
                          creation=1, length_prefix=prefix)
    acceptor = Acceptor(local_name="b@h", cookie=b"c", flags=OUR_FLAGS, creation=2,
                        length_prefix=prefix)
    return initiator, acceptor


def test_inside_tls_each_message_has_a_4_byte_length() -> None:
    initiator, acceptor = _machines(4)
    opening = initiator.data_to_send()
    (length,) = struct.unpack(">I", opening[:4])
    assert length == len(opening) - 4 and opening[4:5] == b"N"
    acceptor.receive_data(opening)
    acceptor.send_status("ok")
    answer = acceptor.data_to_send()
    assert answer[:4] == struct.pack(">I", 3) and answer[4:7] == b"sok"


def test_over_tcp_the_length_stays_2_bytes() -> None:
    initiator, _ = _machines(2)
    opening = initiator.data_to_send()
    assert struct.unpack(">H", opening[:2])[0] == len(opening) - 2


def test_only_2_or_4_byte_lengths() -> None:
    with pytest.raises(LocalProtocolError):
        _machines(3)


@pytest.mark.parametrize("record", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a ClientHello
    b"\x15\x03\x03\x00\x02\x02\x0a",  # an unexpected_message alert
])
def test_a_plain_node_recognises_a_tls_peer(record: bytes) -> None:
    _, acceptor = _machines(2)
    with pytest.raises(HandshakeError) as caught:
        acceptor.receive_data(record)
    assert caught.value.failure is HandshakeFailure.PEER_SPEAKS_TLS


# --- the command line ---------------------------------------------------------------------


def test_cli_tls_options(certs: Certs) -> None:
    args = build_parser().parse_args([
        "ping", "a@localhost", "--tls-certfile", str(certs.good.cert), "--tls-keyfile",
        str(certs.good.key), "--tls-cacertfile", str(certs.ca), "--tls-versions",
        "tlsv1.2,tlsv1.3", "--tls-no-hostname-check", "--tls-verify-client-address"])
    tls = tls_settings_of(args)
    assert tls is not None
    assert tls.versions == ("tlsv1.2", "tlsv1.3")
    assert not tls.check_hostname and tls.verify_client_address and tls.fail_if_no_peer_cert
    assert tls_settings_of(build_parser().parse_args(["ping", "a@localhost"])) is None
