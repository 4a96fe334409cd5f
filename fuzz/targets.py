"""The fuzz targets: one function per decoder that reads a peer's bytes.

Each target takes one input and raises only when it finds a bug: the typed
errors a decoder documents for bad input (``RemoteProtocolError`` and its
subclasses, ``DecodeError``) are the expected outcome and are swallowed;
anything else (``IndexError``, ``TypeError``, a broken invariant) escapes.
``seeds()`` gives each target valid inputs to start mutating from.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from erldist.errors import DecodeError, EncodeError, RemoteProtocolError
from erldist.protocol import control
from erldist.protocol.epmd import (
    Alive2Request,
    Alive2Response,
    NamesRequest,
    NamesResponse,
    NodeEntry,
    Port2Response,
    PortPlease2Request,
    Request,
    RequestReader,
    ResponseReader,
    encode_request,
    encode_response,
)
from erldist.protocol.flags import OUR_FLAGS, DFlag
from erldist.protocol.framing import NO_PAYLOAD, DistDecoder, DistEncoder, FrameReader
from erldist.protocol.handshake import (
    Acceptor,
    AliveQuery,
    HandshakeError,
    Initiator,
    StatusRequired,
)
from erldist.term.decode import decode
from erldist.term.encode import encode
from erldist.term.types import Atom, Pid, Reference
from fuzz.session import node_session, session_seeds
from fuzz.source import ByteSource

__all__ = ["TARGETS", "Target"]

COOKIE = b"fuzzcookie"
LOCAL = "fuzz@127.0.0.1"
PEER = "peer@127.0.0.1"
_CHALLENGE_A = 0x1234_5678
_CHALLENGE_I = 0x0BAD_F00D
#: Negotiated flags without atom cache and fragments put a connection in
#: pass-through mode (no distribution header); we decode both layouts.
_PASS_THROUGH_FLAGS = int(OUR_FLAGS & ~(DFlag.DIST_HDR_ATOM_CACHE | DFlag.FRAGMENTS))
_HEADER_FLAGS = int(OUR_FLAGS | DFlag.DIST_HDR_ATOM_CACHE | DFlag.FRAGMENTS)


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    doc: str


def _chunks(src: ByteSource) -> Iterator[bytes]:
    """The rest of the input in pieces of a size its next byte chooses: reassembly
    gets exercised."""
    size = 1 + src.byte()
    data = src.rest()
    for i in range(0, len(data), size):
        yield data[i:i + size]


# --- term decoder ------------------------------------------------------------------------


def term(data: bytes) -> None:
    try:
        value = decode(data)
    except DecodeError:
        return
    # Whatever we accept we can send back, and it reads the same again.
    try:
        again = encode(value)
    except EncodeError:
        return
    decode(again)


def _term_seeds() -> list[bytes]:
    src = ByteSource(bytes(range(256)) * 4)
    values: list[Any] = [Atom("ok"), 1, -(2**70), 1.5, b"bin", "text", [1, [2]], (1, Atom("a")),
                         {Atom("k"): [1, 2]}, Pid(Atom(PEER), 1, 2, 3),
                         Reference(Atom(PEER), 4, (1, 2, 3)), src.term(), src.term()]
    seeds = [encode(v) for v in values]
    seeds.append(encode([1] * 200, compressed=True))
    return seeds


# --- handshake, both roles -----------------------------------------------------------------


def _framed(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


def handshake_acceptor(data: bytes) -> None:
    """Bytes from a dialling peer: send_name, status answer, complement, challenge reply."""
    src = ByteSource(data)
    status = ["ok", "ok_simultaneous", "alive", "nok"][src.below(4)]
    machine = Acceptor(local_name=LOCAL, cookie=COOKIE, flags=OUR_FLAGS, creation=7,
                       challenge=_CHALLENGE_A)
    try:
        for chunk in _chunks(src):
            machine.receive_data(chunk)
            while (event := machine.next_event()) is not None:
                if isinstance(event, StatusRequired):
                    machine.send_status(status)
                machine.data_to_send()
        machine.connection_lost()
    except HandshakeError:
        assert machine.state == "failed"
        return
    assert machine.state in ("connected", "failed"), machine.state


def handshake_initiator(data: bytes) -> None:
    """Bytes from the node we dialled: status, challenge, challenge ack."""
    src = ByteSource(data)
    version = 6 if src.byte() & 1 == 0 else 5
    keep = bool(src.byte() & 1)
    # The roles of ``_run_pair``'s initiator, so its recorded replies check out.
    machine = Initiator(local_name=PEER, peer_name=LOCAL, cookie=COOKIE, flags=OUR_FLAGS,
                        creation=9, version=version, challenge=_CHALLENGE_I)
    machine.data_to_send()
    try:
        for chunk in _chunks(src):
            machine.receive_data(chunk)
            while (event := machine.next_event()) is not None:
                if isinstance(event, AliveQuery):
                    machine.answer_alive(keep)
                machine.data_to_send()
        machine.connection_lost()
    except HandshakeError:
        assert machine.state == "failed"
        return
    assert machine.state in ("connected", "failed"), machine.state


def _run_pair(version: int) -> tuple[bytes, bytes]:
    """A successful handshake in memory: (bytes the initiator sent, bytes the acceptor sent)."""
    init = Initiator(local_name=PEER, peer_name=LOCAL, cookie=COOKIE, flags=OUR_FLAGS,
                     creation=9, version=version, challenge=_CHALLENGE_I)
    acc = Acceptor(local_name=LOCAL, cookie=COOKIE, flags=OUR_FLAGS, creation=7,
                   challenge=_CHALLENGE_A)
    from_init = bytearray()
    from_acc = bytearray()
    for _ in range(10):
        out = init.data_to_send()
        from_init += out
        acc.receive_data(out)
        while (event := acc.next_event()) is not None:
            if isinstance(event, StatusRequired):
                acc.send_status("ok")
        back = acc.data_to_send()
        from_acc += back
        init.receive_data(back)
        while init.next_event() is not None:
            pass
    assert isinstance(init.state, str) and init.state == acc.state == "connected"
    return bytes(from_init), bytes(from_acc)


def _acceptor_seeds() -> list[bytes]:
    # Byte-sized pieces: a peer that sent its reply before our status would be
    # refused, so only small pieces let the whole exchange happen.
    return [b"\x00\x00" + _run_pair(v)[0] for v in (6, 5)] + [
        b"\x02\x00" + _run_pair(6)[0], b"\x00\xff" + _framed(b"N" + bytes(14))]


def _initiator_seeds() -> list[bytes]:
    return [bytes([v & 1, 0, 0]) + _run_pair(6 if v == 0 else 5)[1] for v in (0, 1)] + [
        b"\x00\x01\x10" + _framed(b"salive")]


# --- framing, fragments and control parsing ----------------------------------------------


def _pipeline(flags: int, src: ByteSource) -> list[control.ControlMessage]:
    """Frames -> terms -> control messages, as a connection reads them after a handshake."""
    reader = FrameReader(max_frame=1 << 20)
    decoder = DistDecoder(flags, max_fragment_sequences=4, max_reassembly=1 << 20)
    parsed: list[control.ControlMessage] = []
    for chunk in _chunks(src):
        for frame in reader.feed(chunk):
            if frame is None:
                continue  # a tick
            try:
                terms = decoder.decode(frame)
            except RemoteProtocolError:
                continue  # the runtime drops it (or the link): both are fine here
            if terms is None:
                continue
            ctrl, payload = terms
            try:
                msg = control.parse(ctrl, payload)
            except RemoteProtocolError:
                continue
            # What we parsed is exactly what came: nothing lost or invented.
            assert control.to_terms(msg) == (ctrl, payload), msg
            parsed.append(msg)
        assert decoder.buffered <= 1 << 20
    return parsed


def framing(data: bytes) -> None:
    """Raw connected-phase bytes: lengths, ticks, headers, fragments, terms, control tuples."""
    src = ByteSource(data)
    flags = _HEADER_FLAGS if src.byte() & 1 == 0 else _PASS_THROUGH_FLAGS
    try:
        _pipeline(flags, src)
    except RemoteProtocolError:
        return  # an oversized frame: the connection is cut


def _fragments(body: bytes, seq: int, pieces: int) -> bytes:
    """``body`` (header-less terms) cut into OTP fragment frames, length prefixes included."""
    size = max(1, -(-len(body) // pieces))
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    out = bytearray()
    count = len(parts)
    for index, part in enumerate(parts):
        frag_id = count - index
        if index == 0:
            head = bytes([131, 69]) + struct.pack(">QQ", seq, frag_id) + b"\x00"
        else:
            head = bytes([131, 70]) + struct.pack(">QQ", seq, frag_id)
        frame = head + part
        out += struct.pack(">I", len(frame)) + frame
    return bytes(out)


def _framing_seeds() -> list[bytes]:
    me, peer = Pid(Atom(LOCAL), 1, 0, 7), Pid(Atom(PEER), 2, 0, 9)
    msgs = [control.reg_send(peer, Atom("net_kernel"), (Atom("$gen_call"), (peer, 1), 2)),
            control.Link(peer, me), control.MonitorP(peer, me, Reference(Atom(PEER), 9, (1,)))]
    seeds = []
    for first, flags in ((0, _HEADER_FLAGS), (1, _PASS_THROUGH_FLAGS)):
        enc = DistEncoder(flags)
        stream = b"\x00\x00\x00\x00" + b"".join(enc.frame(*control.to_terms(m)) for m in msgs)
        seeds.append(bytes([first, 0xFF]) + stream)
    body = DistEncoder(_HEADER_FLAGS).frame(*control.to_terms(msgs[0]))[7:]
    seeds.append(b"\x00\x10" + _fragments(body, 5, 3) + _fragments(body, 6, 1))
    return seeds


_FIELD_MAKERS: dict[str, Callable[[ByteSource], Any]] = {
    "pid": ByteSource.pid,
    "ref": lambda s: Reference(s.node(), 9, (s.integer() & 0xFFFFFFFF,)),
    "name": ByteSource.atom,
    "mfa": lambda s: (s.atom(), s.atom(), s.byte()),
    "flags": lambda s: s.integer() & 0xFFFF,
}


def _field(src: ByteSource, name: str) -> Any:
    """A value that usually passes ``name``'s type check, sometimes any term."""
    if src.byte() < 24:
        return src.term()
    for key, make in _FIELD_MAKERS.items():
        if key in name:
            return make(src)
    return src.term()


def dist_valid(data: bytes) -> None:
    """Well-formed frames of every op with hostile contents, as after a good handshake."""
    src = ByteSource(data)
    flags = _HEADER_FLAGS if src.byte() & 1 == 0 else _PASS_THROUGH_FLAGS
    ops = sorted(control._BY_OP.items())
    stream = bytearray()
    for _ in range(1 + src.below(4)):
        op, cls = ops[src.below(len(ops))]
        ctrl = (op, *(_field(src, name) for name, _ in cls._wire))
        payload = NO_PAYLOAD if cls._payload is None and src.byte() < 240 else src.term()
        try:
            stream += DistEncoder(flags).frame(ctrl, payload)
        except EncodeError:
            continue
    _pipeline(flags, ByteSource(bytes([src.byte()]) + bytes(stream)))


def _dist_valid_seeds() -> list[bytes]:
    return [bytes([i % 2]) + bytes((i * 37 + j) % 256 for j in range(300)) for i in range(8)]


# --- EPMD requests and replies -----------------------------------------------------------


def epmd_request(data: bytes) -> None:
    """What a client sends the embedded EPMD, in pieces."""
    src = ByteSource(data)
    reader = RequestReader()
    try:
        for chunk in _chunks(src):
            reader.receive_data(chunk)
            request = reader.next_event()
            if request is not None:
                # What we accept we could have sent: the codec agrees with itself.
                assert reader.next_event() is None
                encode_request(request)
                return
    except RemoteProtocolError:
        return


def _epmd_request_seeds() -> list[bytes]:
    node = NodeEntry("fuzz", 4369, extra=b"x")
    requests: list[Request] = [Alive2Request(node), PortPlease2Request("fuzz"), NamesRequest()]
    return [b"\x03" + encode_request(r) for r in requests]


def epmd_response(data: bytes) -> None:
    """What an EPMD answers to each request kind, in pieces, then its close."""
    src = ByteSource(data)
    requests: list[Request] = [Alive2Request(NodeEntry("fuzz", 1)), PortPlease2Request("fuzz"),
                               NamesRequest()]
    request = requests[src.below(3)]
    reader = ResponseReader(request, max_names=1 << 16)
    try:
        for chunk in _chunks(src):
            reader.receive_data(chunk)
            if reader.next_event() is not None:
                return
        reader.receive_eof()
        reader.next_event()
    except RemoteProtocolError:
        return


def _epmd_response_seeds() -> list[bytes]:
    return [
        b"\x00\x05" + encode_response(Alive2Response(0, 77)),
        b"\x00\x05" + encode_response(Alive2Response(0, 2, extended=False)),
        b"\x01\x05" + encode_response(Port2Response(NodeEntry("fuzz", 4370, extra=b"e"))),
        b"\x01\x05" + encode_response(Port2Response(None)),
        b"\x02\x05" + encode_response(NamesResponse(4369, (("a", 1), ("b", 2)))),
    ]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("term", term, _term_seeds, "external term format decoder (and re-encode)"),
        Target("handshake_acceptor", handshake_acceptor, _acceptor_seeds,
               "handshake as the accepting side, v5 and v6 peers"),
        Target("handshake_initiator", handshake_initiator, _initiator_seeds,
               "handshake as the dialling side"),
        Target("framing", framing, _framing_seeds,
               "4-byte frames, ticks, headers, fragments, terms and control parsing"),
        Target("dist_valid", dist_valid, _dist_valid_seeds,
               "well-formed frames of every control op with hostile contents"),
        Target("epmd_request", epmd_request, _epmd_request_seeds, "EPMD requests (server side)"),
        Target("epmd_response", epmd_response, _epmd_response_seeds,
               "EPMD replies (client side)"),
        Target("node_session", node_session, session_seeds,
               "a live node after a real handshake: valid frames, hostile contents"),
    )
}
