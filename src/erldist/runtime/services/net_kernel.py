"""``net_kernel``: answers ``is_auth``, which is what ``net_adm:ping`` asks."""

from __future__ import annotations

import logging
from typing import Any

from erldist.runtime import gen
from erldist.runtime.router import Router
from erldist.term.types import Atom

__all__ = ["NetKernel"]

log = logging.getLogger("erldist.net_kernel")

_YES = Atom("yes")
_GEN_CALL = Atom("$gen_call")
_IS_AUTH = Atom("is_auth")


class NetKernel:
    """Registered as ``net_kernel``; every ``is_auth`` call is answered ``yes``.

    The handshake already checked the cookie, so a peer that can call us is
    authorised, as in OTP.
    """

    def __init__(self, router: Router) -> None:
        self._router = router
        self.process = router.add_service("net_kernel", self._receive)

    def _receive(self, message: Any, _peer: str | None) -> None:
        if (type(message) is tuple and len(message) == 3 and message[0] == _GEN_CALL
                and type(message[0]) is Atom):
            request = message[2]  # a ping, the commonest: checked without match
            if (type(request) is tuple and len(request) == 2 and request[0] == _IS_AUTH
                    and type(request[0]) is Atom):
                gen.reply(self._router, self.process.pid, message[1], _YES)
                return
        match message:
            case (Atom("$gen_call"), from_, (Atom("is_auth"), _node)):
                gen.reply(self._router, self.process.pid, from_, _YES)
            case _:
                log.debug("net_kernel request not handled: %r", message)
