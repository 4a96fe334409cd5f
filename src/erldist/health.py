"""The seed's ``ClusterHealth`` report, shared by the asyncio and sync faces."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClusterHealth"]


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    """A snapshot of the cluster as this node sees it.

    ``reachable_nodes`` and ``unreachable_nodes`` keep the order of
    ``connected_nodes`` and together are exactly ``connected_nodes``.
    """

    self_node: str
    is_distributed: bool
    connected_nodes: tuple[str, ...]
    connected_count: int
    reachable_nodes: tuple[str, ...]
    unreachable_nodes: tuple[str, ...]

    @classmethod
    def not_distributed(cls, self_node: str = "nonode@nohost") -> ClusterHealth:
        """The empty report a node that is not distributed returns at once."""
        return cls(self_node, False, (), 0, (), ())
