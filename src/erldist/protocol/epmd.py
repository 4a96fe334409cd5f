"""EPMD requests and replies as bytes and back, without I/O.

EPMD speaks one request per TCP connection: a 2-byte length, then the request.
Replies carry no length and are framed by their tag, or (NAMES) by the close
of the connection. So the server side reads with a ``RequestReader`` and the
client side with a ``ResponseReader`` made for the request it sent; both take
bytes with ``receive_data`` and hand out at most one message with
``next_event`` (``None`` means "need more bytes").

Errors say whose fault they are: encoding something the protocol cannot carry
raises ``LocalProtocolError``; bytes from the peer that break it raise a
``RemoteProtocolError`` subclass (``MalformedRequest``, ``MalformedResponse``).
Requests are capped at ``MAX_REQUEST`` bytes: a real one is under 300, and a
hostile client must not make a server buffer 64 KiB per connection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from erldist.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "MAX_ALIVE_BYTES",
    "MAX_NAMES_RESPONSE",
    "MAX_REQUEST",
    "NAMES_REQ",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "PROTOCOL_TCP_IPV4",
    "RESULT_NAME_TAKEN",
    "RESULT_OK",
    "RESULT_REFUSED",
    "Alive2Request",
    "Alive2Response",
    "MalformedRequest",
    "MalformedResponse",
    "NamesRequest",
    "NamesResponse",
    "NodeEntry",
    "Port2Response",
    "PortPlease2Request",
    "Request",
    "RequestReader",
    "RequestTooLarge",
    "Response",
    "ResponseReader",
    "UnknownRequest",
    "decode_request",
    "encode_request",
    "encode_response",
]

ALIVE2_REQ: Final = 120  # 'x'
ALIVE2_X_RESP: Final = 118  # 'v'
ALIVE2_RESP: Final = 121  # 'y'
PORT_PLEASE2_REQ: Final = 122  # 'z'
PORT2_RESP: Final = 119  # 'w'
NAMES_REQ: Final = 110  # 'n'

NODE_TYPE_NORMAL: Final = 77  # 'M'
NODE_TYPE_HIDDEN: Final = 72  # 'H'
PROTOCOL_TCP_IPV4: Final = 0

RESULT_OK: Final = 0
#: What OTP's epmd answers to every refused ALIVE2; OTP's client reads any
#: non-zero result as ``duplicate_name``.
RESULT_NAME_TAKEN: Final = 1
#: Our embedded server's answer to an invalid ALIVE2, so our own client can
#: tell it from a taken name. (A full table gets no reply at all: see
#: ``runtime/epmd_server``.)
RESULT_REFUSED: Final = 2

#: OTP's epmd accepts alive names of up to 255 bytes.
MAX_ALIVE_BYTES: Final = 255
#: Largest request body (after the 2-byte length) we write or accept.
MAX_REQUEST: Final = 1024
#: Largest NAMES reply a client buffers before giving up on the server.
MAX_NAMES_RESPONSE: Final = 1 << 20

#: OTP's epmd answers an unknown name with result 1; clients accept any non-zero.
_PORT2_NOT_FOUND: Final = 1

_ALIVE2_FIXED = struct.Struct(">BHBBHHH")  # tag, port, type, proto, high, low, nlen
_PORT2_FIXED = struct.Struct(">HBBHHH")  # port, type, proto, high, low, nlen (after 'w', 0)
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


# --- errors ------------------------------------------------------------------------------


class MalformedRequest(RemoteProtocolError):
    """A client sent a request EPMD cannot accept.

    ``tag`` is the request's first byte when it was readable, so a server can
    still answer in the shape the client expects (an ALIVE2 or PORT2 error).
    """

    def __init__(self, tag: int | None, reason: str) -> None:
        super().__init__(f"malformed EPMD request: {reason}")
        self.tag = tag
        self.reason = reason


class RequestTooLarge(MalformedRequest):
    """The request's length exceeds what we are willing to buffer."""


class UnknownRequest(MalformedRequest):
    """A request tag we do not serve (OTP's epmd drops these without a reply)."""


class MalformedResponse(RemoteProtocolError):
    """EPMD answered with bytes that are not the reply to our request."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed EPMD reply: {reason}")
        self.reason = reason


# --- messages ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """What EPMD knows about one registered node: an ALIVE2 body, a PORT2 answer.

    ``alive`` is the part of the node name before ``@``. OTP registers with
    versions 6/5 and node type ``'M'`` even for hidden nodes.
    """

    alive: str
    port: int
    highest_version: int = 6
    lowest_version: int = 5
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = PROTOCOL_TCP_IPV4
    extra: bytes = b""


@dataclass(frozen=True, slots=True)
class Alive2Request:
    """Register ``node``; the connection that carried it is the registration."""

    node: NodeEntry


@dataclass(frozen=True, slots=True)
class PortPlease2Request:
    """Where does the node called ``alive`` listen?"""

    alive: str


@dataclass(frozen=True, slots=True)
class NamesRequest:
    """List every registered node."""


@dataclass(frozen=True, slots=True)
class Alive2Response:
    """The answer to ALIVE2: ``result`` 0 and a creation, or an error result.

    ``extended`` selects ALIVE2_X_RESP (32-bit creation), which EPMD sends iff
    the registrant's highest version is 6 or more; otherwise ALIVE2_RESP with
    a 16-bit creation.
    """

    result: int
    creation: int
    extended: bool = True

    @property
    def ok(self) -> bool:
        return self.result == RESULT_OK


@dataclass(frozen=True, slots=True)
class Port2Response:
    """The answer to PORT_PLEASE2: the node's entry, or ``None`` if unknown."""

    node: NodeEntry | None


@dataclass(frozen=True, slots=True)
class NamesResponse:
    """The answer to NAMES: EPMD's own port and ``(alive, port)`` per node."""

    epmd_port: int
    names: tuple[tuple[str, int], ...]


Request = Alive2Request | PortPlease2Request | NamesRequest
Response = Alive2Response | Port2Response | NamesResponse


# --- names -------------------------------------------------------------------------------


def _alive_problem(raw: bytes) -> str | None:
    """Why ``raw`` cannot be an alive name, or ``None``.

    Besides OTP's rules (1..255 bytes, no NUL) we refuse line breaks: a
    NAMES reply is one text line per node, and a name with a newline could
    forge lines for nodes that do not exist.
    """
    if not 0 < len(raw) <= MAX_ALIVE_BYTES:
        return f"alive name must be 1..{MAX_ALIVE_BYTES} bytes, got {len(raw)}"
    if b"\x00" in raw or b"\n" in raw or b"\r" in raw:
        return "alive name contains NUL or a line break"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "alive name is not UTF-8"
    return None


def _encode_alive(alive: str) -> bytes:
    raw = alive.encode("utf-8")
    problem = _alive_problem(raw)
    if problem is not None:
        raise LocalProtocolError(problem)
    return raw


def _check_u16(what: str, value: int, low: int = 0) -> None:
    if not low <= value <= 0xFFFF:
        raise LocalProtocolError(f"{what} must be in {low}..65535, got {value}")


# --- encoding ----------------------------------------------------------------------------


def _entry_body(node: NodeEntry) -> bytes:
    """Port, type, protocol, versions, name and extra: shared by ALIVE2 and PORT2."""
    _check_u16("port", node.port, 1)
    _check_u16("highest_version", node.highest_version)
    _check_u16("lowest_version", node.lowest_version)
    if not (0 <= node.node_type <= 255 and 0 <= node.protocol <= 255):
        raise LocalProtocolError("node_type and protocol are single bytes")
    name = _encode_alive(node.alive)
    return (
        _PORT2_FIXED.pack(node.port, node.node_type, node.protocol,
                          node.highest_version, node.lowest_version, len(name))
        + name + _U16.pack(len(node.extra)) + node.extra
    )


def encode_request(request: Request) -> bytes:
    """The request with its 2-byte length prefix, ready to write."""
    if isinstance(request, Alive2Request):
        body = bytes([ALIVE2_REQ]) + _entry_body(request.node)
    elif isinstance(request, PortPlease2Request):
        body = bytes([PORT_PLEASE2_REQ]) + _encode_alive(request.alive)
    else:
        body = bytes([NAMES_REQ])
    if len(body) > MAX_REQUEST:
        raise LocalProtocolError(f"request of {len(body)} bytes exceeds {MAX_REQUEST}")
    return _U16.pack(len(body)) + body


def encode_response(response: Response) -> bytes:
    """The reply bytes exactly as EPMD writes them (replies carry no length)."""
    if isinstance(response, Alive2Response):
        if not 0 <= response.result <= 255:
            raise LocalProtocolError(f"result is one byte, got {response.result}")
        if response.extended:
            if not 0 <= response.creation <= 0xFFFFFFFF:
                raise LocalProtocolError(f"creation must fit 32 bits, got {response.creation}")
            return bytes([ALIVE2_X_RESP, response.result]) + _U32.pack(response.creation)
        _check_u16("a 16-bit creation", response.creation)
        return bytes([ALIVE2_RESP, response.result]) + _U16.pack(response.creation)
    if isinstance(response, Port2Response):
        if response.node is None:
            return bytes([PORT2_RESP, _PORT2_NOT_FOUND])
        return bytes([PORT2_RESP, RESULT_OK]) + _entry_body(response.node)
    if not 0 <= response.epmd_port <= 0xFFFFFFFF:
        raise LocalProtocolError(f"EPMD port must fit 32 bits, got {response.epmd_port}")
    lines = []
    for alive, port in response.names:
        _check_u16("port", port)
        lines.append(b"name " + _encode_alive(alive) + b" at port " + str(port).encode() + b"\n")
    return _U32.pack(response.epmd_port) + b"".join(lines)


# --- decoding requests -------------------------------------------------------------------


def decode_request(body: bytes) -> Request:
    """One request body (the bytes after the length prefix)."""
    if not body:
        raise MalformedRequest(None, "empty request")
    tag = body[0]
    if tag == ALIVE2_REQ:
        return Alive2Request(_decode_alive2(body))
    if tag == PORT_PLEASE2_REQ:
        raw = body[1:]
        problem = _alive_problem(raw)
        if problem is not None:
            raise MalformedRequest(tag, problem)
        return PortPlease2Request(raw.decode("utf-8"))
    if tag == NAMES_REQ:
        if len(body) != 1:
            raise MalformedRequest(tag, "NAMES_REQ carries no payload")
        return NamesRequest()
    raise UnknownRequest(tag, f"unknown request tag {tag}")


def _decode_alive2(body: bytes) -> NodeEntry:
    def bad(reason: str) -> MalformedRequest:
        return MalformedRequest(ALIVE2_REQ, f"ALIVE2_REQ: {reason}")

    if len(body) < _ALIVE2_FIXED.size:
        raise bad(f"{len(body)} bytes is shorter than the fixed part")
    _, port, node_type, protocol, high, low, nlen = _ALIVE2_FIXED.unpack_from(body)
    name_end = _ALIVE2_FIXED.size + nlen
    if name_end + 2 > len(body):
        raise bad(f"name length {nlen} runs past the request")
    (elen,) = _U16.unpack_from(body, name_end)
    if name_end + 2 + elen != len(body):
        raise bad(f"extra length {elen} does not match the request length")
    raw = body[_ALIVE2_FIXED.size:name_end]
    problem = _alive_problem(raw)
    if problem is not None:
        raise bad(problem)
    if port == 0:
        raise bad("port 0")
    if low > high:
        raise bad(f"lowest version {low} above highest {high}")
    return NodeEntry(
        alive=raw.decode("utf-8"), port=port, highest_version=high, lowest_version=low,
        node_type=node_type, protocol=protocol, extra=bytes(body[name_end + 2:]),
    )


class RequestReader:
    """Server side: buffers one length-prefixed request and decodes it.

    A connection carries exactly one request; bytes after it are ignored.
    ``receive_data`` raises ``RequestTooLarge`` as soon as the announced or
    buffered length passes the cap, so the buffer never grows beyond it.
    """

    def __init__(self, max_request: int = MAX_REQUEST) -> None:
        self._max = max_request
        self._buf = bytearray()
        self._done = False

    def receive_data(self, data: bytes) -> None:
        if self._done:
            return
        self._buf += data
        if len(self._buf) >= 2:
            (length,) = _U16.unpack_from(self._buf)
            if length > self._max:
                raise RequestTooLarge(
                    self._buf[2] if len(self._buf) > 2 else None,
                    f"announced length {length} exceeds {self._max}",
                )
            del self._buf[2 + length:]

    def next_event(self) -> Request | None:
        """The request once complete (at most once), else ``None``."""
        if self._done or len(self._buf) < 2:
            return None
        (length,) = _U16.unpack_from(self._buf)
        if len(self._buf) < 2 + length:
            return None
        body = bytes(self._buf[2:2 + length])
        self._done = True
        self._buf.clear()
        return decode_request(body)


# --- decoding responses ------------------------------------------------------------------


class ResponseReader:
    """Client side: decodes the one reply to ``request``.

    ALIVE2 and PORT2 replies are complete once their bytes are in; a NAMES
    reply ends only when EPMD closes, so call ``receive_eof`` when it does.
    After the reply, further bytes are ignored.
    """

    def __init__(self, request: Request, max_names: int = MAX_NAMES_RESPONSE) -> None:
        self._request = request
        self._max_names = max_names
        self._buf = bytearray()
        self._eof = False
        self._done = False

    def receive_data(self, data: bytes) -> None:
        if self._done:
            return
        self._buf += data
        if isinstance(self._request, NamesRequest) and len(self._buf) > self._max_names:
            raise MalformedResponse(f"NAMES reply larger than {self._max_names} bytes")

    @property
    def buffered(self) -> int:
        """Bytes received and not yet part of a reply: 0 means EPMD said nothing."""
        return len(self._buf)

    def receive_eof(self) -> None:
        """EPMD closed the connection; a reply still incomplete is an error."""
        self._eof = True

    def next_event(self) -> Response | None:
        """The reply once complete (at most once), else ``None``."""
        if self._done:
            return None
        if isinstance(self._request, Alive2Request):
            event: Response | None = self._alive2()
        elif isinstance(self._request, PortPlease2Request):
            event = self._port2()
        else:
            event = self._names()
        if event is None and self._eof:
            raise MalformedResponse(f"connection closed after {len(self._buf)} bytes of a reply")
        if event is not None:
            self._done = True
            self._buf.clear()
        return event

    def _alive2(self) -> Alive2Response | None:
        if not self._buf:
            return None
        tag = self._buf[0]
        if tag == ALIVE2_X_RESP:
            if len(self._buf) < 6:
                return None
            return Alive2Response(self._buf[1], _U32.unpack_from(self._buf, 2)[0], extended=True)
        if tag == ALIVE2_RESP:
            if len(self._buf) < 4:
                return None
            return Alive2Response(self._buf[1], _U16.unpack_from(self._buf, 2)[0], extended=False)
        raise MalformedResponse(f"expected ALIVE2_X_RESP or ALIVE2_RESP, got tag {tag}")

    def _port2(self) -> Port2Response | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        if buf[0] != PORT2_RESP:
            raise MalformedResponse(f"expected PORT2_RESP, got tag {buf[0]}")
        if buf[1] != RESULT_OK:
            return Port2Response(None)
        fixed_end = 2 + _PORT2_FIXED.size
        if len(buf) < fixed_end:
            return None
        port, node_type, protocol, high, low, nlen = _PORT2_FIXED.unpack_from(buf, 2)
        name_end = fixed_end + nlen
        if len(buf) < name_end + 2:
            return None
        (elen,) = _U16.unpack_from(buf, name_end)
        if len(buf) < name_end + 2 + elen:
            return None
        raw = bytes(buf[fixed_end:name_end])
        if _alive_problem(raw) is not None:
            raise MalformedResponse("PORT2_RESP carries an invalid node name")
        return Port2Response(NodeEntry(
            alive=raw.decode("utf-8"), port=port, highest_version=high, lowest_version=low,
            node_type=node_type, protocol=protocol,
            extra=bytes(buf[name_end + 2:name_end + 2 + elen]),
        ))

    def _names(self) -> NamesResponse | None:
        if not self._eof:
            return None
        if len(self._buf) < 4:
            return None  # reported as a truncated reply by next_event
        (epmd_port,) = _U32.unpack_from(self._buf)
        text = bytes(self._buf[4:])
        if text and not text.endswith(b"\n"):
            raise MalformedResponse("NAMES reply ends in the middle of a line")
        return NamesResponse(epmd_port, tuple(_parse_names_line(line)
                                              for line in text.split(b"\n")[:-1]))


def _parse_names_line(line: bytes) -> tuple[str, int]:
    """``name <alive> at port <port>``, as OTP's epmd writes each node."""
    head, sep, port_text = line.rpartition(b" at port ")
    if not sep or not head.startswith(b"name ") or not (
        port_text.isdigit() and len(port_text) <= 5
    ):
        raise MalformedResponse(f"unexpected NAMES line {line[:80]!r}")
    raw = head[5:]
    port = int(port_text)
    if _alive_problem(raw) is not None or port > 0xFFFF:
        raise MalformedResponse(f"unexpected NAMES line {line[:80]!r}")
    return raw.decode("utf-8"), port
