"""What a system service may ask of the node it runs on, and nothing more.

``global`` and ``pg`` need the node's identity, its connections and its
NodeUp/NodeDown events. They take a ``ServiceHost`` (which ``Node`` is)
instead of importing ``Node``, so a service never reaches into the node's
other parts and the node module is the only one that knows them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from erldist.events import ClusterEvent
from erldist.names import NodeName
from erldist.runtime.connection import Connection
from erldist.runtime.peers import Peers
from erldist.term.types import Atom

__all__ = ["ServiceHost"]


class ServiceHost(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def node_name(self) -> NodeName: ...

    atom: Atom
    loop: asyncio.AbstractEventLoop

    @property
    def peers(self) -> Peers: ...

    def nodes(self, kind: str = "visible") -> list[str]: ...

    def connection(self, peer: str) -> Connection | None: ...

    def add_listener(self, listener: Callable[[ClusterEvent], None]) -> None: ...

    def remove_listener(self, listener: Callable[[ClusterEvent], None]) -> None: ...
