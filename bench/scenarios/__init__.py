"""The scenarios; each adds its rows to ``Results`` for every repetition.

Within a repetition each implementation does the same fixed number of
operations, one after the other (Erlang, erldist, the peer), so drift on a
busy machine touches them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.cluster import Cluster, PeerHost
from bench.table import Results


@dataclass(frozen=True)
class Plan:
    """Operation counts and repetitions; ``QUICK`` is the one-minute pass."""

    reps: int = 5
    pings: int = 5000
    connects: int = 20
    messages: int = 200_000
    calls: int = 5000
    calls_each_of_32: int = 500
    health_runs: int = 15
    health_deadline: float = 2.0
    rss_reps: int = 3


QUICK = Plan(reps=3, pings=1000, connects=8, messages=50_000, calls=1000,
             calls_each_of_32=100, health_runs=5, health_deadline=1.0, rss_reps=2)


@dataclass
class Bench:
    """What a scenario gets: the cluster, the plan, the results, the peer hosts."""

    cluster: Cluster
    plan: Plan
    results: Results
    healthy: list[PeerHost] = field(default_factory=list)
    silent: PeerHost | None = None
    uvloop: bool = False

    @property
    def healthy_names(self) -> list[str]:
        return [name for host in self.healthy for name in host.names]
