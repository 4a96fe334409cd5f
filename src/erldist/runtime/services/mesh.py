"""``erldist_mesh``: a small gossip that makes Python nodes a full mesh.

When a visible peer comes up, the node tells its other visible peers, and
they connect to it, as OTP nodes do through ``global``. Erlang nodes have no
such name and drop these messages. A peer's announcement is capped, and so is
the number of dials it can have in flight, so the gossip cannot make us open
sockets without bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from erldist.names import NodeName
from erldist.runtime.router import Router
from erldist.runtime.suggested_dials import DialFunction, SuggestedDialer
from erldist.term.types import Atom

__all__ = ["MESH", "Mesh"]

log = logging.getLogger("erldist.mesh")

MESH = Atom("erldist_mesh")
_NODES = Atom("nodes")
#: Names one announcement may carry; a longer one is ignored.
_MESH_MAX = 1024


class Mesh:
    """Registered as ``erldist_mesh``: announces peers and dials announced ones.

    Announced names are a peer's words: they are dialed through a
    ``SuggestedDialer``, which never charges the user's atom budget and bounds
    the dials in flight, waiting, and failed over the node's life.
    """

    def __init__(
        self,
        router: Router,
        *,
        local: NodeName,
        connected: Callable[[str], bool],
        visible_peers: Callable[[], list[str]],
        dial: DialFunction,
    ) -> None:
        self._router = router
        self._connected = connected
        self._visible_peers = visible_peers
        self._dialer = SuggestedDialer(local, dial)
        self.process = router.add_service(str(MESH), self._receive)

    def close(self) -> None:
        self._dialer.close()

    def peer_up(self, peer: str) -> None:
        """Tell ``peer`` about our other visible peers, and them about ``peer``."""
        others = [n for n in self._visible_peers() if n != peer]
        me = self.process.pid
        for other in others:
            self._router.send_nowait(me, (str(MESH), other), (MESH, _NODES, [Atom(peer)]))
        if others:
            self._router.send_nowait(me, (str(MESH), peer),
                                     (MESH, _NODES, [Atom(n) for n in others]))

    def _receive(self, message: Any, _peer: str | None) -> None:
        match message:
            case (Atom("erldist_mesh"), Atom("nodes"), list() as names) if len(names) <= _MESH_MAX:
                for name in names:
                    if isinstance(name, Atom) and not self._connected(str(name)):
                        self._dialer.suggest(str(name))
            case _:
                log.debug("mesh message not understood: %r", message)
