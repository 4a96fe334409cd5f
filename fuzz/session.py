"""The ``node_session`` target: valid frames with hostile contents into a live node.

A real ``Node`` (with its embedded EPMD on a private port) runs on a loop
thread. The fuzzer plays a peer that knows the cookie: it completes a real
handshake over a loopback socket, then each input becomes a few well-formed
frames (sends to ``net_kernel``, ``rex``, ``global_name_server`` and other
names and pids, ``global``'s sync and lock messages, links, monitors, exits,
any op) followed by a ping that must be answered. A bug is any exception that
reaches the node's event loop, any log record with a traceback, or a node
that stops answering a fresh connection's ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, Final

from erldist.errors import EncodeError
from erldist.protocol import control
from erldist.protocol.flags import OUR_FLAGS, DFlag
from erldist.protocol.framing import NO_PAYLOAD, DistDecoder, DistEncoder, FrameReader
from erldist.protocol.handshake import AliveQuery, Initiator
from erldist.runtime.node import Node
from erldist.term.types import Atom, Pid, Reference
from fuzz.source import ByteSource

__all__ = ["close_session", "node_session", "session_seeds"]

COOKIE: Final = "fuzzsessioncookie"
HOST: Final = "127.0.0.1"
#: How long the node gets to answer the closing ping of one input.
REPLY_DEADLINE: Final = 20.0
_NAMES: Final = ("net_kernel", "rex", "global_name_server", "erldist_mesh", "nobody")


class _Failures(logging.Handler):
    """Collects the node's loop errors and its tracebacks in logs: each is a bug."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self.found.append(self.format(record))

    def loop_error(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.found.append(f"{context.get('message')}: {context.get('exception')!r}")


class _Victim:
    """The node under test, on its own loop thread, until ``close_session``."""

    def __init__(self) -> None:
        self.failures = _Failures()
        logging.getLogger("erldist").addHandler(self.failures)
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self.failures.loop_error)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            epmd_port = probe.getsockname()[1]
        self.node: Node = asyncio.run_coroutine_threadsafe(
            Node.start(f"victim@{HOST}", COOKIE, epmd_port=epmd_port, listen_host=HOST),
            self.loop).result(60)


class _Peer:
    """The fuzzer's side of one connection: a blocking socket after a real handshake."""

    _serial = itertools.count(1)

    def __init__(self, victim: Node) -> None:
        self.name = Atom(f"fuzzpeer{next(self._serial)}@{HOST}")
        self.victim = Atom(victim.name)
        self.sock = socket.create_connection((HOST, victim.port), timeout=REPLY_DEADLINE)
        machine = Initiator(local_name=self.name, peer_name=self.victim,
                            cookie=COOKIE.encode(), flags=OUR_FLAGS | DFlag.PUBLISHED,
                            creation=5, version=6)
        self.sock.sendall(machine.data_to_send())
        while machine.state not in ("connected", "failed"):
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"the node closed the handshake in {machine.state}")
            machine.receive_data(data)
            while (event := machine.next_event()) is not None:
                if isinstance(event, AliveQuery):
                    machine.answer_alive(True)
            self.sock.sendall(machine.data_to_send())
        assert machine.state == "connected", machine.error
        self.encoder = DistEncoder(OUR_FLAGS)
        self.decoder = DistDecoder(OUR_FLAGS)
        self.reader = FrameReader()
        self.pending = machine.leftover
        self.me = Pid(self.name, 1, 0, 5)
        self.refs = itertools.count(1)

    def send(self, ctrl: tuple[Any, ...], payload: Any = NO_PAYLOAD) -> None:
        self.sock.sendall(self.encoder.frame(ctrl, payload))

    def ping(self) -> bool:
        """``net_adm:ping`` from this peer; False when the node closed the connection."""
        ref = Reference(self.name, 5, (next(self.refs), 0, 0))
        call = (Atom("$gen_call"), (self.me, ref), (Atom("is_auth"), self.name))
        try:
            self.send(*control.to_terms(control.reg_send(self.me, Atom("net_kernel"), call)))
            while True:
                for frame in self.reader.feed(self.pending):
                    if frame is None:
                        continue
                    decoded = self.decoder.decode(frame)
                    if decoded is not None and _is_reply(decoded, ref):
                        self.pending = b""
                        return True
                self.pending = self.sock.recv(65536)
                if not self.pending:
                    return False
        except OSError:
            return False

    def close(self) -> None:
        self.sock.close()


def _is_reply(decoded: tuple[Any, Any], ref: Reference) -> bool:
    _, payload = decoded
    return isinstance(payload, tuple) and len(payload) == 2 and payload[0] == ref


def _global_message(src: ByteSource, peer: _Peer) -> Any:
    """One of ``global``'s sync or lock messages with fuzzed fields."""
    choice = src.below(13)  # first, so a short input still picks any kind
    tag = src.integer()
    if choice < 6:
        nodes = [Atom(f"ghost{src.byte()}@{HOST}") for _ in range(src.below(4))]
        casts: list[Callable[[], Any]] = [
            lambda: (Atom("init_connect"), (8, tag), peer.name,
                     (Atom("locker"), src.term(), [], peer.me)),
            lambda: (Atom("lock_set"), peer.me, True, src.term(), tag),
            lambda: (Atom("exchange"), peer.name, src.term(), src.term(), tag),
            lambda: (Atom("resolved"), peer.name, src.term(), nodes, src.term(), src.term(),
                     tag),
            lambda: (Atom("new_nodes"), peer.name, src.term(), src.term(), nodes, src.term()),
            lambda: (Atom("in_sync"), peer.name, True),
        ]
        return (Atom("$gen_cast"), casts[choice]())
    if choice < 10:
        calls: list[Callable[[], Any]] = [
            lambda: (Atom("set_lock"), ((Atom("res"), src.byte()), src.term())),
            lambda: (Atom("del_lock"), ((Atom("res"), src.byte()), src.term())),
            lambda: (Atom("register"), src.atom(), peer.me, src.term()),
            src.term,
        ]
        ref = Reference(peer.name, 5, (src.integer() & 0xFFFFFFFF,))
        return (Atom("$gen_call"), (peer.me, ref), calls[choice - 6]())
    if choice == 10:
        return (Atom("init_connect_ack"), peer.name, tag, src.integer())
    if choice == 11:
        return (Atom("cancel_connect"), peer.name, tag)
    return (Atom("DOWN"), Reference(peer.name, 5, (src.byte(),)), Atom("process"), peer.me,
            src.term())


def _frame(src: ByteSource, peer: _Peer, victim: Node) -> tuple[tuple[Any, ...], Any]:
    """One control message aimed at the node: mostly meaningful, sometimes anything."""
    target = Pid(peer.victim, src.below(64), 0, victim.creation)
    kind = src.below(8)
    if kind <= 2:  # global's protocol gets the most attention: it keeps state per peer
        name = Atom("global_name_server" if kind < 2 else _NAMES[src.below(len(_NAMES))])
        return control.to_terms(control.reg_send(peer.me, name, _global_message(src, peer)))
    if kind == 3:
        name = Atom(_NAMES[src.below(len(_NAMES))])
        return control.to_terms(control.reg_send(peer.me, name, src.term()))
    if kind == 4:
        return control.to_terms(control.send_to_pid(peer.me, target, src.term(), OUR_FLAGS))
    if kind <= 6:
        ref = Reference(peer.name, 5, (src.byte(),))
        signals = [control.Link(peer.me, target), control.Unlink(peer.me, target),
                   control.MonitorP(peer.me, target, ref),
                   control.DemonitorP(peer.me, target, ref),
                   control.Exit(peer.me, target, src.term())]
        return control.to_terms(signals[src.below(len(signals))])
    ops = sorted(control._BY_OP)
    fields = tuple(src.term() if src.byte() < 64 else target for _ in range(src.below(6)))
    return (ops[src.below(len(ops))], *fields), src.term() if src.byte() & 1 else NO_PAYLOAD


_victim: _Victim | None = None
_peer: _Peer | None = None


def node_session(data: bytes) -> None:
    global _victim, _peer
    if _victim is None:
        _victim = _Victim()
    victim = _victim.node
    if _peer is None:
        _peer = _Peer(victim)
    peer = _peer
    src = ByteSource(data)
    batch = bytearray()
    for _ in range(1 + src.below(4)):
        ctrl, payload = _frame(src, peer, victim)
        try:
            batch += peer.encoder.frame(ctrl, payload)
        except EncodeError:
            continue
    with contextlib.suppress(OSError):  # a closed link shows in the ping below
        peer.sock.sendall(bytes(batch))
    if not peer.ping():
        # The node may cut a link that broke the protocol; it must take a new one.
        peer.close()
        _peer = _Peer(victim)
        assert _peer.ping(), "the node did not answer a fresh connection's ping"
    if _victim.failures.found:
        found, _victim.failures.found = _victim.failures.found, []
        raise AssertionError("the node hit an unexpected error:\n" + "\n".join(found))


def close_session() -> None:
    """Stop the node and its thread (the regression tests call this; the fuzzer exits)."""
    global _victim, _peer
    if _peer is not None:
        _peer.close()
        _peer = None
    if _victim is not None:
        victim, _victim = _victim, None
        asyncio.run_coroutine_threadsafe(victim.node.stop(), victim.loop).result(60)
        victim.loop.call_soon_threadsafe(victim.loop.stop)
        victim.thread.join(30)
        victim.loop.close()
        logging.getLogger("erldist").removeHandler(victim.failures)


def session_seeds() -> list[bytes]:
    return [bytes([k * 32]) + bytes((k * 53 + j) % 256 for j in range(200)) for k in range(8)]
