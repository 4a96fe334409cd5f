"""``rex``: the rpc server's name, answering the feature probe OTP sends on connect.

The answer lists ``erpc``: this node answers erpc's spawn requests
(``runtime/rpc.py``), which OTP 23 and 24 check before they use them for
``rpc:cast`` and ``rpc:multicall`` instead of calls to ``rex``.
"""

from __future__ import annotations

import logging
from typing import Any

from erldist.runtime.router import Router
from erldist.term.types import Atom, Pid

__all__ = ["Rex"]

log = logging.getLogger("erldist.rex")


class Rex:
    """Registered as ``rex``: ``features_request`` gets our feature list."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self.process = router.add_service("rex", self._receive)

    def _receive(self, message: Any, _peer: str | None) -> None:
        match message:
            case (Pid() as caller, Atom("features_request")):
                features: list[Atom] = [Atom("erpc")]
                reply = (Atom("features_reply"), self._router.atom, features)
                self._router.send_nowait(self.process.pid, caller, reply)
            case _:
                log.debug("rex request not handled: %r", message)
