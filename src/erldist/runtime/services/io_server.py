"""The group leader of the Erlang code this node asks other nodes to run.

An ``rpc`` from Python runs Erlang code whose group leader is this service:
``io:format`` there sends ``{io_request, From, ReplyAs, Request}`` here and
waits, without a timeout, for the ``io_reply``. So every request is answered:
output is logged (capped), anything that asks for input is ``{error, enotsup}``.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from erldist.runtime.router import Router
from erldist.term.types import Atom, Pid, Term

__all__ = ["IoServer"]

log = logging.getLogger("erldist.io")

#: Bytes of one output request that reach the log; the rest is cut.
MAX_LOGGED: Final = 4096
_OK = Atom("ok")
_ENOTSUP = (Atom("error"), Atom("enotsup"))


class IoServer:
    """An unregistered service answering the Erlang I/O protocol."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self.process = router.add_service(None, self._receive)

    def _receive(self, message: Any, peer: str | None) -> None:
        match message:
            case (Atom("io_request"), Pid() as sender, reply_as, request):
                answer = _answer(request, peer, 0)
                self._router.send_nowait(self.process.pid, sender,
                                         (Atom("io_reply"), reply_as, answer))
            case _:
                log.debug("io server: unexpected %r", message)


def _answer(request: Any, peer: str | None, depth: int) -> Term:
    match request:
        case (Atom("put_chars"), _, chars):
            log.info("output from %s: %s", peer, _text(chars))
            return _OK
        case (Atom("put_chars"), chars):
            log.info("output from %s: %s", peer, _text(chars))
            return _OK
        case (Atom("put_chars"), _, Atom("io_lib"), Atom("format"), [fmt, args]):
            # io:format: the formatting is Erlang's; the log gets the format and the terms.
            log.info("output from %s: %s %r", peer, _text(fmt), args)
            return _OK
        case (Atom("requests"), list() as requests) if depth == 0:
            answer: Term = _OK
            for item in requests[:64]:
                answer = _answer(item, peer, depth + 1)
                if answer != _OK:
                    break
            return answer
        case (Atom("setopts"), _):
            return _OK
    return _ENOTSUP


def _text(chars: Any) -> str:
    """The characters of an iolist or binary, at most ``MAX_LOGGED`` bytes of them."""
    out = bytearray()
    stack = [chars]
    while stack and len(out) < MAX_LOGGED:
        item = stack.pop()
        if isinstance(item, bytes):
            out += item
        elif isinstance(item, int) and 0 <= item < 0x110000:
            out += chr(item).encode("utf-8")
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return out[:MAX_LOGGED].decode("utf-8", "replace").rstrip("\n")
