"""The seed's ``ClusterEvent``: a peer came up or went down.

A leaf module so the runtime (which emits these), the monitor and telemetry
(which carry them) can share one definition without importing each other.

Every event says whether the peer is a visible node (one ``nodes()`` lists)
or a hidden one (a remote shell, a one-shot command), as OTP's
``{node_type, visible | hidden}``, so subscribers can agree with ``nodes()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias, cast

from erldist.errors import InvalidArgument

__all__ = [
    "ClusterEvent",
    "NodeDown",
    "NodeType",
    "NodeTypes",
    "NodeUp",
    "check_node_types",
    "wanted",
]

#: What kind of peer an event is about.
NodeType: TypeAlias = Literal["visible", "hidden"]
#: Which kinds a subscriber asks for (OTP's ``{node_type, visible | hidden | all}``).
NodeTypes: TypeAlias = Literal["visible", "hidden", "all"]
_NODE_TYPES = frozenset({"visible", "hidden", "all"})


@dataclass(frozen=True, slots=True)
class NodeUp:
    """A connection to ``node`` finished its handshake."""

    node: str
    node_type: NodeType = field(default="visible", kw_only=True)


@dataclass(frozen=True, slots=True)
class NodeDown:
    """The connection to ``node`` ended; ``reason`` says why when it is known."""

    node: str
    reason: str = ""
    node_type: NodeType = field(default="visible", kw_only=True)


ClusterEvent: TypeAlias = NodeUp | NodeDown


def check_node_types(node_types: object) -> NodeTypes:
    """``node_types`` if it is one a subscriber may ask for, else ``InvalidArgument``."""
    if node_types in _NODE_TYPES:
        return cast(NodeTypes, node_types)
    raise InvalidArgument(f"node_type must be 'visible', 'hidden' or 'all', not {node_types!r}")


def wanted(event: ClusterEvent, node_types: NodeTypes) -> bool:
    """Whether a subscriber that asked for ``node_types`` gets ``event``."""
    return node_types in ("all", event.node_type)
