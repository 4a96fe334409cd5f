"""The seed's ``ClusterEvent``: a peer came up or went down.

A leaf module so the runtime (which emits these), the monitor and telemetry
(which carry them) can share one definition without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["ClusterEvent", "NodeDown", "NodeUp"]


@dataclass(frozen=True, slots=True)
class NodeUp:
    """A connection to ``node`` finished its handshake."""

    node: str


@dataclass(frozen=True, slots=True)
class NodeDown:
    """The connection to ``node`` ended; ``reason`` says why when it is known."""

    node: str
    reason: str = ""


ClusterEvent: TypeAlias = NodeUp | NodeDown
