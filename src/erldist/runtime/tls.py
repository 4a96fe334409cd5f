"""TLS distribution: OTP's ``-proto_dist inet_tls``, in both roles.

``TlsSettings`` (``erldist.tls_settings``, plain data) holds what OTP's
``-ssl_dist_optfile`` configures (its ``server``/``client`` lists):
certificates and keys, trusted CAs, whether the peer must present a
certificate and how its names are checked, the TLS versions and ciphers.
``TlsContexts`` turns them into ``ssl`` contexts once, at node start, so a
bad file fails the start, not the first connection.

On the wire this is OTP's ``inet_tls_dist``: TLS starts on the first byte of
the TCP connection; the dialer sends the peer's host (from its node name) as
SNI and checks the server certificate against it; the cookie handshake then
runs inside TLS with a 4-byte length prefix on each message.

Both roles open a plain TCP socket and then upgrade it to TLS themselves
(``_Upgrade``, asyncio's ``start_tls`` with ``_AlertingTls``: a refused
handshake still sends its alert, and reads are paced), so every refusal
reaches this node as a typed ``TlsError`` (with telemetry) instead of a line
in asyncio's log, the peer learns why it was refused, and only a peer that
completed TLS ever reaches the distribution handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import ssl
from asyncio import sslproto
from collections.abc import Callable
from typing import Any, cast

from erldist import telemetry
from erldist.errors import TlsError, TlsFailure, TlsSettingsError
from erldist.runtime import tcp
from erldist.tls_settings import VERSIONS, TlsSettings

__all__ = ["TlsContexts", "TlsListener", "classify", "dial"]

log = logging.getLogger("erldist.tls")

#: A fatal TLS 1.2 ``unexpected_message`` alert, in a plaintext record.
_UNEXPECTED_MESSAGE_ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0A])
#: TLS handshakes being accepted at once; past this new sockets are closed at once.
MAX_TLS_HANDSHAKES = 256


class TlsContexts:
    """The two ``ssl`` contexts of a node, built and checked once."""

    def __init__(self, settings: TlsSettings) -> None:
        self.settings = settings
        #: Incoming TLS handshakes in progress (bounded by ``MAX_TLS_HANDSHAKES``).
        self.handshakes: set[asyncio.Task[None]] = set()
        self.server = self._context(ssl.PROTOCOL_TLS_SERVER, (settings.certfile, settings.keyfile))
        self.client = self._context(ssl.PROTOCOL_TLS_CLIENT, settings.client_identity)
        if settings.verify_peer:
            self.server.verify_mode = (ssl.CERT_REQUIRED if settings.fail_if_no_peer_cert
                                       else ssl.CERT_OPTIONAL)
            self.client.check_hostname = settings.check_hostname
            self.client.verify_mode = ssl.CERT_REQUIRED
        else:
            self.server.verify_mode = ssl.CERT_NONE
            self.client.check_hostname = False
            self.client.verify_mode = ssl.CERT_NONE

    async def close(self) -> None:
        """Cancel the TLS handshakes still in progress (the node is stopping)."""
        tasks = list(self.handshakes)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _context(self, protocol: ssl._SSLMethod,
                 identity: tuple[str, str] | None) -> ssl.SSLContext:
        """A context of ``protocol`` presenting ``identity`` (certificate, key) if any."""
        s = self.settings
        ctx = ssl.SSLContext(protocol)
        ranks = sorted(VERSIONS[v] for v in s.versions)
        ctx.minimum_version, ctx.maximum_version = ranks[0], ranks[-1]
        files = [("cacertfile", s.cacertfile)]
        if identity is not None:
            files += [("certfile", identity[0]), ("keyfile", identity[1])]
        for what, path in files:
            if not os.path.isfile(path):
                raise TlsSettingsError(f"TLS {what} {path!r} is not a readable file")
        if identity is not None:
            certfile, keyfile = identity
            try:
                ctx.load_cert_chain(certfile, keyfile, password=s.password)
            except (ssl.SSLError, OSError) as exc:
                # The message names the files, never the password.
                raise TlsSettingsError(f"cannot load the certificate {certfile!r} with the "
                                       f"key {keyfile!r}: {_reason(exc)}") from None
        try:
            ctx.load_verify_locations(cafile=s.cacertfile)
        except (ssl.SSLError, OSError) as exc:
            raise TlsSettingsError(f"cannot load the CA file {s.cacertfile!r}: "
                                   f"{_reason(exc)}") from None
        if s.ciphers is not None:
            try:
                ctx.set_ciphers(s.ciphers)
            except ssl.SSLError:
                raise TlsSettingsError(f"no usable cipher in {s.ciphers!r}") from None
        return ctx


# --- classifying failures -------------------------------------------------------------

#: OpenSSL verify codes (``X509_V_ERR_*``) of a certificate this node refused.
_VERIFY_CODES = {
    9: TlsFailure.CERTIFICATE_EXPIRED,  # not yet valid
    10: TlsFailure.CERTIFICATE_EXPIRED,
    62: TlsFailure.WRONG_HOST,
    64: TlsFailure.WRONG_HOST,  # IP address mismatch
}
#: OpenSSL reason codes: (failure, whether the peer's alert reported it).
_REASONS: dict[str, tuple[TlsFailure, bool]] = {
    "TLSV1_ALERT_UNKNOWN_CA": (TlsFailure.UNTRUSTED_CERTIFICATE, True),
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": (TlsFailure.CERTIFICATE_EXPIRED, True),
    "SSLV3_ALERT_BAD_CERTIFICATE": (TlsFailure.UNTRUSTED_CERTIFICATE, True),
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": (TlsFailure.UNTRUSTED_CERTIFICATE, True),
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": (TlsFailure.NO_PEER_CERTIFICATE, True),
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": (TlsFailure.NO_PEER_CERTIFICATE, False),
    "TLSV1_ALERT_PROTOCOL_VERSION": (TlsFailure.PROTOCOL_MISMATCH, True),
    "UNSUPPORTED_PROTOCOL": (TlsFailure.PROTOCOL_MISMATCH, False),
    "NO_PROTOCOLS_AVAILABLE": (TlsFailure.PROTOCOL_MISMATCH, False),
    "NO_SHARED_CIPHER": (TlsFailure.PROTOCOL_MISMATCH, False),
    "NO_CIPHERS_AVAILABLE": (TlsFailure.PROTOCOL_MISMATCH, False),
    "SSLV3_ALERT_HANDSHAKE_FAILURE": (TlsFailure.HANDSHAKE_FAILED, True),
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": (TlsFailure.PROTOCOL_MISMATCH, True),
    "WRONG_VERSION_NUMBER": (TlsFailure.PEER_NOT_TLS, False),
    "HTTP_REQUEST": (TlsFailure.PEER_NOT_TLS, False),
    "UNKNOWN_PROTOCOL": (TlsFailure.PEER_NOT_TLS, False),
    "PACKET_LENGTH_TOO_LONG": (TlsFailure.PEER_NOT_TLS, False),
    "RECORD_LAYER_FAILURE": (TlsFailure.PEER_NOT_TLS, False),
}


def classify(exc: BaseException, peer: str, *, accepting: bool,
             sent_certificate: bool = True) -> TlsError:
    """The ``TlsError`` for a failed TLS handshake with ``peer``.

    TLS 1.2 has one alert, ``handshake_failure``, for several causes; which
    one it is follows from the role. OTP's client sends it when the server
    certificate does not name the host it dialed; OTP's server sends it when
    a client it requires a certificate of sent none.
    """
    if isinstance(exc, TlsError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        failure = _VERIFY_CODES.get(exc.verify_code, TlsFailure.UNTRUSTED_CERTIFICATE)
        return TlsError(failure, peer, f"the peer's certificate: {exc.verify_message}")
    reason = getattr(exc, "reason", None) if isinstance(exc, ssl.SSLError) else None
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        if accepting:
            return TlsError(TlsFailure.WRONG_HOST, peer, "alert handshake failure: our "
                            "certificate does not name the host the peer dialed", by_peer=True)
        if not sent_certificate:
            return TlsError(TlsFailure.NO_PEER_CERTIFICATE, peer, "alert handshake failure: "
                            "the peer requires a client certificate", by_peer=True)
    if reason in _REASONS:
        failure, by_peer = _REASONS[reason]
        return TlsError(failure, peer, _reason(exc), by_peer=by_peer)
    if isinstance(exc, TimeoutError):
        return TlsError(TlsFailure.PEER_NOT_TLS, peer,
                        "no TLS answer in time (is the peer a plain-TCP node?)")
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | ConnectionAbortedError
                  | EOFError | BrokenPipeError):
        return TlsError(TlsFailure.PEER_NOT_TLS, peer,
                        "the peer closed the connection during the TLS handshake "
                        "(a plain-TCP node, or it refused us without saying why)")
    return TlsError(TlsFailure.HANDSHAKE_FAILED, peer, _reason(exc))


def _failure_of(exc: BaseException) -> TlsFailure | None:
    reason = getattr(exc, "reason", None) if isinstance(exc, ssl.SSLError) else None
    return _REASONS[reason][0] if reason in _REASONS else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        text = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        return str(text).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def report(error: TlsError, role: str) -> None:
    """Log and emit telemetry for one refused TLS connection."""
    log.warning("%s", error)
    telemetry.emit(telemetry.TlsRefused(error.peer, role, error.failure.value, error.detail,
                                        error.by_peer))


def address_matches(peercert: dict[str, Any], address: str) -> bool:
    """Whether a certificate names ``address`` in an IP subjectAltName."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(str(value).strip()) == ip:
                    return True
    return False


# --- the TLS layer -------------------------------------------------------------------


class _AlertingTls(sslproto.SSLProtocol):
    """asyncio's TLS protocol, except that a refused handshake still sends its alert.

    asyncio drops the alert OpenSSL wrote when a handshake fails, so the peer
    sees only a closed socket. OTP sends it, and the peer's error then names
    the cause (unknown CA, expired, protocol version); so does this.

    It also reads the socket 64 KiB at a time, not asyncio's 256 KiB. 256 KiB of
    a peer's flood is about 3,000 messages, which the node works through before it
    reads again. Against ``erl`` floods over TLS (alternating runs), the node then
    sat idle, waiting for the peer, for 16 to 36% of the flood; with 64 KiB reads
    (about 750 messages each) for 0 to 10%, its CPU per message was lower as well
    (the buffers likely staying in cache) and the flood 1.3 to 1.7x as fast.
    """

    max_size = 64 * 1024
    #: Reading paused until the next loop turn (see ``buffer_updated``).
    _yielding = False

    def buffer_updated(self, nbytes: int) -> None:
        """Take one socket read, then let the loop turn before the next.

        asyncio's own loop reads once per turn; uvloop reads on while data
        comes (libuv: up to 32 reads), so a flood put 44,000 messages in a
        mailbox before its reader ran once, and the node spent more per
        message. Reading resumes next turn unless the TLS layer paused it.
        Only a read that filled the buffer pauses: a shorter one emptied the
        socket, and a lone request (a ping) then pays no pause and no resume.
        """
        super().buffer_updated(nbytes)
        transport = cast(asyncio.Transport | None, self._transport)
        if (nbytes < self.max_size or transport is None or self._yielding
                or transport.is_closing()
                or getattr(self, "_ssl_reading_paused", False)):
            return
        self._yielding = True
        transport.pause_reading()
        self._loop.call_soon(self._read_on, transport)

    def _read_on(self, transport: asyncio.Transport) -> None:
        self._yielding = False
        if not transport.is_closing() and not getattr(self, "_ssl_reading_paused", False):
            transport.resume_reading()

    def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            flush = getattr(self, "_process_outgoing", None)
            transport = getattr(self, "_transport", None)
            with contextlib.suppress(Exception):
                if flush is not None:
                    flush()
                if (transport is not None and getattr(self, "_server_side", False)
                        and _failure_of(handshake_exc) is TlsFailure.PEER_NOT_TLS):
                    # OpenSSL stays silent to a peer that is not speaking TLS; OTP
                    # answers with this alert, and a plain-TCP node that knows it
                    # can say "the peer speaks TLS" instead of "connection closed".
                    transport.write(_UNEXPECTED_MESSAGE_ALERT)
        super()._on_handshake_complete(handshake_exc)


class _Relay(asyncio.Protocol):
    """Holds what the TLS layer delivers between the handshake and the handover.

    The TLS layer may pass on application data before the coroutine that
    awaited the handshake runs again; nothing is lost, it is replayed to the
    real protocol.
    """

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self._eof = False
        self._lost: tuple[Exception | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).pause_reading()

    def data_received(self, data: bytes) -> None:
        self._data.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = (exc,)

    def hand_over(self, transport: asyncio.Transport, protocol: asyncio.Protocol) -> None:
        transport.set_protocol(_Feed(protocol))
        # The connection batches a loop turn's frames itself (the first at once,
        # the rest as one write at the turn's end), so each write is one record.
        protocol.connection_made(transport)
        for chunk in self._data:
            protocol.data_received(chunk)
        self._data = []
        if self._eof:
            protocol.eof_received()
        if self._lost is not None:
            protocol.connection_lost(self._lost[0])


class _Feed(asyncio.BufferedProtocol):
    """Hands decrypted bytes to a plain ``Protocol`` from one reused buffer.

    Given a plain protocol, asyncio's TLS layer reads each record into a fresh
    256 KiB buffer (twice per socket read); given a buffered one, it decrypts
    into that protocol's buffer. This is that buffer: the cost per read is
    one copy of what arrived.
    """

    def __init__(self, protocol: asyncio.Protocol) -> None:
        self._protocol = protocol
        self._buffer = bytearray(64 * 1024)
        self._view = memoryview(self._buffer)

    def get_buffer(self, sizehint: int) -> memoryview:
        if sizehint > len(self._buffer):
            self._buffer = bytearray(sizehint)
            self._view = memoryview(self._buffer)
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self._protocol.data_received(bytes(self._view[:nbytes]))

    def eof_received(self) -> bool | None:
        return self._protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()


class _Upgrade:
    """A plain socket being upgraded: the TLS layer already under it, the handshake running.

    The layer takes the socket's protocol at once, in the same callback that
    asks for it: uvloop starts reading an accepted connection after its
    ``connection_made`` returns, whatever that asked (a ``pause_reading``
    there is lost), so a peer's first bytes must find the layer already in
    place, never the plain protocol before it (a dialing plain-TCP node's
    name, read and dropped there, left the TLS layer waiting in silence).
    """

    def __init__(self, plain: asyncio.Transport, context: ssl.SSLContext, *,
                 server_side: bool, server_hostname: str | None, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self.plain = plain
        self.relay = _Relay()
        self._waiter: asyncio.Future[None] = loop.create_future()
        # typeshed says int; asyncio takes any number of seconds.
        self._layer = _AlertingTls(loop, self.relay, context, self._waiter, server_side,
                                   server_hostname, call_connection_made=False,
                                   ssl_handshake_timeout=timeout)  # type: ignore[arg-type]
        plain.set_protocol(self._layer)
        self._layer.connection_made(plain)
        plain.resume_reading()  # a dial's socket was held by its first protocol

    async def done(self) -> tuple[asyncio.Transport, _Relay]:
        """The TLS transport once the handshake completed, and what it read so far."""
        try:
            await self._waiter
        except BaseException:
            self.plain.abort()
            raise
        return self._layer._app_transport, self.relay


async def dial(contexts: TlsContexts, host: str, port: int, timeout: float,
               make_protocol: Callable[[], asyncio.Protocol], *, peer: str) -> asyncio.Protocol:
    """Connect to ``host:port`` with TLS, checking its certificate against ``host``
    (sent as SNI, as OTP does); returns ``make_protocol()`` running over it.

    A TLS failure raises ``TlsError``; a TCP one (refused, unreachable) ``OSError``.
    """
    loop = asyncio.get_running_loop()
    plain, _ = await tcp.open_connection(loop, _Relay, host, port)
    try:
        secure, relay = await _Upgrade(plain, contexts.client, server_side=False,
                                       server_hostname=host, timeout=timeout).done()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise classify(exc, peer, accepting=False,
                       sent_certificate=contexts.settings.client_certificate) from None
    protocol = make_protocol()
    relay.hand_over(secure, protocol)
    return protocol


class TlsListener(asyncio.Protocol):
    """The server's factory product: a plain TCP socket to upgrade to TLS first.

    Only a peer that completes TLS (and, with ``verify_client_address``, whose
    certificate names its address) reaches ``make_protocol``'s protocol.
    """

    def __init__(self, contexts: TlsContexts, make_protocol: Callable[[], asyncio.Protocol],
                 timeout: float) -> None:
        self._contexts = contexts
        self._make_protocol = make_protocol
        self._timeout = timeout

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        plain = cast(asyncio.Transport, transport)
        contexts = self._contexts
        if len(contexts.handshakes) >= MAX_TLS_HANDSHAKES:
            log.warning("%d TLS handshakes in progress: refusing a new connection",
                        MAX_TLS_HANDSHAKES)
            plain.abort()
            return
        upgrade = _Upgrade(plain, contexts.server, server_side=True, server_hostname=None,
                           timeout=self._timeout)
        task = asyncio.get_running_loop().create_task(self._upgrade(upgrade))
        contexts.handshakes.add(task)
        task.add_done_callback(contexts.handshakes.discard)

    async def _upgrade(self, upgrade: _Upgrade) -> None:
        peername = upgrade.plain.get_extra_info("peername")
        address = str(peername[0]) if peername else "?"
        try:
            secure, relay = await upgrade.done()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is refused and reported, none escapes
            report(classify(exc, address, accepting=True), "accept")
            return
        if self._contexts.settings.verify_client_address:
            cert = secure.get_extra_info("peercert") or {}
            if not address_matches(cert, address):
                secure.abort()
                report(TlsError(TlsFailure.WRONG_HOST, address, "the peer's certificate "
                                "does not name the address it connects from"), "accept")
                return
        relay.hand_over(secure, self._make_protocol())
