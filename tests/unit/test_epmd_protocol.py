"""EPMD codec: bytes observed from OTP 25.2.3's epmd and erl, malformed input, round trips."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erldist.errors import LocalProtocolError, RemoteProtocolError
from erldist.protocol import epmd
from erldist.protocol.epmd import (
    MAX_REQUEST,
    Alive2Request,
    Alive2Response,
    MalformedRequest,
    MalformedResponse,
    NamesRequest,
    NamesResponse,
    NodeEntry,
    Port2Response,
    PortPlease2Request,
    Request,
    RequestReader,
    RequestTooLarge,
    Response,
    ResponseReader,
    UnknownRequest,
    decode_request,
    encode_request,
    encode_response,
)

# --- byte vectors from the digest (section 1), captured on the wire ---------------------

# erl -name fk@127.0.0.1 registering port 42317 with OTP 25.2.3.
OTP_ALIVE2 = bytes.fromhex("000f78a54d4d0000060005000266 6b0000".replace(" ", ""))
FK = NodeEntry(alive="fk", port=42317, highest_version=6, lowest_version=5)
PORT2_OK = bytes.fromhex("770015b34d00000600050003707936 0000".replace(" ", ""))
PY6 = NodeEntry(alive="py6", port=5555, highest_version=6, lowest_version=5)
NAMES = bytes.fromhex("00003822") + b"name py5 at port 5556\nname py6 at port 5555\n"


def read_request(data: bytes, *, chunk: int | None = None) -> Request | None:
    reader = RequestReader()
    step = chunk or max(1, len(data))
    event = None
    for i in range(0, len(data), step):
        reader.receive_data(data[i:i + step])
        event = event or reader.next_event()
    return event


def read_response(request: Request, data: bytes, *, chunk: int = 1, eof: bool = True) -> Response:
    """Feed ``data`` in ``chunk``-byte pieces; the reply must appear exactly when complete."""
    reader = ResponseReader(request)
    event = None
    for i in range(0, len(data), chunk):
        assert event is None, "a reply was produced before its last byte arrived"
        reader.receive_data(data[i:i + chunk])
        event = reader.next_event()
    if event is None and eof:
        reader.receive_eof()
        event = reader.next_event()
    assert event is not None
    return event


def test_alive2_request_matches_otp_bytes() -> None:
    assert encode_request(Alive2Request(FK)) == OTP_ALIVE2
    assert read_request(OTP_ALIVE2, chunk=1) == Alive2Request(FK)


def test_alive2_x_resp_from_otp_epmd() -> None:
    data = bytes.fromhex("76006b053af0")
    reply = read_response(Alive2Request(FK), data, eof=False)
    assert reply == Alive2Response(0, 0x6B053AF0, extended=True)
    assert isinstance(reply, Alive2Response) and reply.ok
    assert encode_response(reply) == data


def test_alive2_resp_old_16_bit_creation() -> None:
    data = bytes.fromhex("79000003")
    reply = read_response(Alive2Request(FK), data, eof=False)
    assert reply == Alive2Response(0, 3, extended=False)
    assert encode_response(reply) == data


def test_alive2_duplicate_name_reply() -> None:
    reply = read_response(Alive2Request(FK), bytes.fromhex("760100000063"), eof=False)
    assert isinstance(reply, Alive2Response)
    assert (reply.ok, reply.result, reply.creation) == (False, 1, 99)


def test_port_please2_request_and_found_reply() -> None:
    request = PortPlease2Request("py6")
    assert encode_request(request) == b"\x00\x04zpy6"
    assert read_request(b"\x00\x04zpy6", chunk=1) == request
    assert read_response(request, PORT2_OK, eof=False) == Port2Response(PY6)
    assert encode_response(Port2Response(PY6)) == PORT2_OK


def test_port2_not_found_reply() -> None:
    assert read_response(PortPlease2Request("x"), b"\x77\x01", eof=False) == Port2Response(None)
    assert encode_response(Port2Response(None)) == b"\x77\x01"


def test_names_request_and_reply() -> None:
    assert encode_request(NamesRequest()) == b"\x00\x01n"
    assert read_request(b"\x00\x01n") == NamesRequest()
    expected = NamesResponse(14370, (("py5", 5556), ("py6", 5555)))
    assert read_response(NamesRequest(), NAMES) == expected
    assert encode_response(expected) == NAMES


def test_names_reply_needs_the_close() -> None:
    reader = ResponseReader(NamesRequest())
    reader.receive_data(NAMES)
    assert reader.next_event() is None  # more lines may follow until EPMD closes
    reader.receive_eof()
    assert reader.next_event() == NamesResponse(14370, (("py5", 5556), ("py6", 5555)))
    assert reader.next_event() is None  # one reply per connection


def test_empty_names_reply() -> None:
    assert read_response(NamesRequest(), b"\x00\x00\x11\x11") == NamesResponse(0x1111, ())


def test_names_line_with_spaces_and_utf8() -> None:
    data = b"\x00\x00\x00\x01" + "name ñ at port 9 at port 7\n".encode()
    assert read_response(NamesRequest(), data) == NamesResponse(1, (("ñ at port 9", 7),))


def test_hidden_entry_and_extra_round_trip() -> None:
    node = NodeEntry(alive="ñame", port=1, highest_version=6, lowest_version=6,
                     node_type=epmd.NODE_TYPE_HIDDEN, extra=b"\x00\x01xyz")
    assert read_request(encode_request(Alive2Request(node)), chunk=3) == Alive2Request(node)
    assert read_response(PortPlease2Request("ñame"), encode_response(Port2Response(node)),
                         eof=False) == Port2Response(node)


def test_request_reader_waits_for_all_bytes_and_ignores_the_rest() -> None:
    reader = RequestReader()
    reader.receive_data(b"\x00")
    assert reader.next_event() is None
    reader.receive_data(b"\x04zpy")
    assert reader.next_event() is None
    reader.receive_data(b"6garbage after the request")
    assert reader.next_event() == PortPlease2Request("py6")
    reader.receive_data(b"\x00\x01n")
    assert reader.next_event() is None


# --- malformed requests -----------------------------------------------------------------


def alive2_body(name: bytes = b"fk", *, port: int = 42317, high: int = 6, low: int = 5,
                nlen: int | None = None, extra: bytes = b"", elen: int | None = None) -> bytes:
    n = len(name) if nlen is None else nlen
    e = len(extra) if elen is None else elen
    return (bytes([120]) + port.to_bytes(2, "big") + b"M\x00" + high.to_bytes(2, "big")
            + low.to_bytes(2, "big") + n.to_bytes(2, "big") + name + e.to_bytes(2, "big") + extra)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (alive2_body()[:8], "shorter than the fixed part"),
        (alive2_body(nlen=200), "runs past the request"),
        (alive2_body(elen=3), "does not match"),
        (alive2_body(extra=b"ab", elen=1), "does not match"),
        (alive2_body(b""), "1..255 bytes"),
        (alive2_body(b"x" * 256), "1..255 bytes"),
        (alive2_body(b"a\x00b"), "NUL or a line break"),
        (alive2_body(b"a\nname forged at port 1"), "NUL or a line break"),
        (alive2_body(b"\xff\xfe"), "not UTF-8"),
        (alive2_body(port=0), "port 0"),
        (alive2_body(high=5, low=6), "above highest"),
    ],
)
def test_malformed_alive2_requests(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason) as err:
        decode_request(body)
    assert err.value.tag == 120
    assert isinstance(err.value, RemoteProtocolError)


def test_255_byte_name_is_accepted() -> None:
    name = "n" * 255
    assert decode_request(alive2_body(name.encode())) == Alive2Request(NodeEntry(name, 42317))


@pytest.mark.parametrize(
    ("body", "exc", "tag"),
    [
        (b"", MalformedRequest, None),
        (b"z", MalformedRequest, 122),
        (b"z" + b"x" * 256, MalformedRequest, 122),
        (b"zbad\x00", MalformedRequest, 122),
        (b"nx", MalformedRequest, 110),
        (b"k", UnknownRequest, 107),
        (b"\x00\x01\x02", UnknownRequest, 0),
    ],
)
def test_other_malformed_requests(
    body: bytes, exc: type[MalformedRequest], tag: int | None
) -> None:
    with pytest.raises(exc) as err:
        decode_request(body)
    assert err.value.tag == tag


def test_oversized_length_is_refused_before_buffering() -> None:
    reader = RequestReader()
    with pytest.raises(RequestTooLarge) as err:
        reader.receive_data(b"\xff\xffx")
    assert err.value.tag == 120
    with pytest.raises(RequestTooLarge):
        RequestReader().receive_data((MAX_REQUEST + 1).to_bytes(2, "big"))
    limited = RequestReader(max_request=10)
    with pytest.raises(RequestTooLarge):
        limited.receive_data(b"\x00\x0b")


def test_zero_length_request() -> None:
    reader = RequestReader()
    reader.receive_data(b"\x00\x00")
    with pytest.raises(MalformedRequest, match="empty request"):
        reader.next_event()


# --- malformed replies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "data", "reason"),
    [
        (Alive2Request(FK), b"w\x00", "expected ALIVE2"),
        (PortPlease2Request("x"), b"v\x00", "expected PORT2_RESP"),
        (PortPlease2Request("x"), b"w\x00" + PORT2_OK[2:10], "closed after"),
        (Alive2Request(FK), b"v\x00\x00", "closed after"),
        (Alive2Request(FK), b"", "closed after 0 bytes"),
        (NamesRequest(), b"\x00\x00", "closed after"),
        (NamesRequest(), b"\x00\x00\x00\x01name a at port 1", "middle of a line"),
        (NamesRequest(), b"\x00\x00\x00\x01hello\n", "unexpected NAMES line"),
        (NamesRequest(), b"\x00\x00\x00\x01name a at port x\n", "unexpected NAMES line"),
        (NamesRequest(), b"\x00\x00\x00\x01name a at port 70000\n", "unexpected NAMES line"),
        (NamesRequest(), b"\x00\x00\x00\x01name a at port " + b"9" * 5000 + b"\n",
         "unexpected NAMES line"),
        (NamesRequest(), b"\x00\x00\x00\x01name  at port 1\n", "unexpected NAMES line"),
        (NamesRequest(), b"\x00\x00\x00\x01name \xff at port 1\n", "unexpected NAMES line"),
    ],
)
def test_malformed_replies(request_: Request, data: bytes, reason: str) -> None:
    reader = ResponseReader(request_)
    with pytest.raises(MalformedResponse, match=reason):
        reader.receive_data(data)
        assert reader.next_event() is None
        reader.receive_eof()
        reader.next_event()


def test_port2_reply_with_invalid_name() -> None:
    data = b"w\x00" + PORT2_OK[2:10] + b"\x00\x02a\x00\x00\x00"
    with pytest.raises(MalformedResponse, match="invalid node name"):
        read_response(PortPlease2Request("a"), data, eof=False)


def test_names_reply_size_is_capped() -> None:
    reader = ResponseReader(NamesRequest(), max_names=100)
    reader.receive_data(b"\x00" * 100)
    with pytest.raises(MalformedResponse, match="larger than 100"):
        reader.receive_data(b"\x00")


# --- what we refuse to encode ------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        Alive2Request(NodeEntry("", 1)),
        Alive2Request(NodeEntry("x" * 256, 1)),
        Alive2Request(NodeEntry("a\x00", 1)),
        Alive2Request(NodeEntry("a\n", 1)),
        Alive2Request(NodeEntry("a", 0)),
        Alive2Request(NodeEntry("a", 65536)),
        Alive2Request(NodeEntry("a", 1, highest_version=70000)),
        Alive2Request(NodeEntry("a", 1, node_type=300)),
        Alive2Request(NodeEntry("a", 1, extra=b"x" * MAX_REQUEST)),
        PortPlease2Request(""),
        PortPlease2Request("é" * 128),
    ],
)
def test_encoding_refuses_illegal_requests(message: Request) -> None:
    with pytest.raises(LocalProtocolError):
        encode_request(message)


@pytest.mark.parametrize(
    "message",
    [
        Alive2Response(256, 1),
        Alive2Response(0, 1 << 32),
        Alive2Response(0, -1),
        Alive2Response(0, 65536, extended=False),
        NamesResponse(1 << 32, ()),
        NamesResponse(1, (("a", 65536),)),
        NamesResponse(1, (("a\nname b", 1),)),
    ],
)
def test_encoding_refuses_illegal_responses(message: Response) -> None:
    with pytest.raises(LocalProtocolError):
        encode_response(message)


# --- properties ----------------------------------------------------------------------------------

alive_names = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00\n\r"),
    min_size=1, max_size=60,
).filter(lambda s: len(s.encode()) <= 255)
entries = st.builds(
    NodeEntry, alive=alive_names, port=st.integers(1, 65535),
    highest_version=st.integers(5, 7), lowest_version=st.just(5),
    node_type=st.sampled_from([77, 72]), protocol=st.just(0), extra=st.binary(max_size=20),
)


@given(entries, st.integers(1, 7))
def test_alive2_and_port2_round_trip_in_any_chunking(node: NodeEntry, chunk: int) -> None:
    assert read_request(encode_request(Alive2Request(node)), chunk=chunk) == Alive2Request(node)
    reply = encode_response(Port2Response(node))
    assert read_response(PortPlease2Request(node.alive), reply, chunk=chunk,
                         eof=False) == Port2Response(node)


@given(st.integers(0, 0xFFFFFFFF), st.lists(st.tuples(alive_names, st.integers(0, 65535)),
                                            max_size=10))
def test_names_round_trip(port: int, names: list[tuple[str, int]]) -> None:
    response = NamesResponse(port, tuple(names))
    assert read_response(NamesRequest(), encode_response(response), chunk=5) == response


@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_malformed_request(data: bytes) -> None:
    with contextlib.suppress(MalformedRequest):
        read_request(data, chunk=7)


@given(st.sampled_from([Alive2Request(FK), PortPlease2Request("a"), NamesRequest()]),
       st.binary(max_size=300))
def test_arbitrary_replies_only_ever_raise_malformed_response(request_: Request,
                                                              data: bytes) -> None:
    reader = ResponseReader(request_)
    with contextlib.suppress(MalformedResponse):
        reader.receive_data(data)
        if reader.next_event() is None:
            reader.receive_eof()
            reader.next_event()
