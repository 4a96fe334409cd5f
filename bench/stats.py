"""Figures: one value per run, summarised as the median and the min-max spread."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Figure:
    """One metric over several runs: each run contributes one value."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def low(self) -> float:
        return min(self.runs)

    @property
    def high(self) -> float:
        return max(self.runs)


def fmt(value: float) -> str:
    """Three significant digits, with k and M for thousands and millions."""
    scale, suffix = (1e6, "M") if value >= 1e6 else (1e3, "k") if value >= 1e3 else (1.0, "")
    scaled = value / scale
    digits = 0 if scaled >= 100 else 1 if scaled >= 10 else 2
    return f"{scaled:.{digits}f}{suffix}"


def fmt_figure(fig: Figure) -> str:
    """``median [min-max]``, or the single value for one run."""
    if len(fig.runs) == 1:
        return fmt(fig.median)
    return f"{fmt(fig.median)} [{fmt(fig.low)}-{fmt(fig.high)}]"
