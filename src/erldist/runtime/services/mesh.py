"""``erldist_mesh``: a small gossip that makes Python nodes a full mesh.

When a visible peer comes up, the node tells its other visible peers, and
they connect to it, as OTP nodes do through ``global``. Erlang nodes have no
such name and drop these messages. A peer's announcement is capped, and so is
the number of dials it can have in flight, so the gossip cannot make us open
sockets without bound.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from erldist.errors import ConnectError
from erldist.names import NameFormatError, parse_node_name
from erldist.runtime.router import Router
from erldist.term.types import Atom

__all__ = ["MESH", "Mesh"]

log = logging.getLogger("erldist.mesh")

MESH = Atom("erldist_mesh")
_NODES = Atom("nodes")
#: Names one announcement may carry; a longer one is ignored.
_MESH_MAX = 1024
#: Gossip-started dials in flight at once; names past it wait for a later announcement.
_DIALS_MAX = 64


class Mesh:
    """Registered as ``erldist_mesh``: announces peers and dials announced ones."""

    def __init__(
        self,
        router: Router,
        *,
        long_names: bool,
        connected: Callable[[str], bool],
        visible_peers: Callable[[], list[str]],
        dial: Callable[[str], Awaitable[None]],
    ) -> None:
        self._router = router
        self._long = long_names
        self._connected = connected
        self._visible_peers = visible_peers
        self._dial = dial
        self._dialing: set[str] = set()
        self.process = router.add_service(str(MESH), self._receive)

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
                    if isinstance(name, Atom):
                        self._connect(str(name))
            case _:
                log.debug("mesh message not understood: %r", message)

    def _connect(self, name: str) -> None:
        if (name == self._router.name or name in self._dialing or self._connected(name)
                or len(self._dialing) >= _DIALS_MAX):
            return
        try:
            peer = parse_node_name(name)
        except NameFormatError:
            return
        if peer.long != self._long:
            return
        self._dialing.add(name)
        self._router.start_task(self._dial_one(name))

    async def _dial_one(self, name: str) -> None:
        try:
            await self._dial(name)
        except ConnectError as exc:
            log.info("mesh connect to %s failed: %s", name, exc)
        finally:
            self._dialing.discard(name)
