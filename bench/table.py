"""Rows of results, targets, and the one table the bench prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.stats import Figure, fmt, fmt_figure


@dataclass(frozen=True)
class Target:
    """What erldist should reach: a ratio to Erlang's figure, or an absolute bound."""

    bound: float
    ratio: bool = True

    def text(self, lower_better: bool) -> str:
        sign = "≤" if lower_better else "≥"
        return f"{sign} {self.bound:g}x OTP" if self.ratio else f"{sign} {fmt(self.bound)}"


@dataclass
class Row:
    """One metric: raw per-run values for Erlang, erldist and the peer library."""

    label: str
    unit: str
    lower_better: bool = True
    target: Target | None = None
    erlang: list[float] = field(default_factory=list)
    erldist: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)
    peer_note: str = ""

    def ratio(self, values: list[float]) -> float | None:
        if not values or not self.erlang:
            return None
        return Figure(tuple(values)).median / Figure(tuple(self.erlang)).median

    def met(self) -> bool | None:
        if self.target is None or not self.erldist:
            return None
        value = self.ratio(self.erldist) if self.target.ratio else Figure(
            tuple(self.erldist)).median
        if value is None:
            return None
        return value <= self.target.bound if self.lower_better else value >= self.target.bound


class Results:
    """Rows in the order the scenarios first mention them."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.notes: list[str] = []

    def row(self, label: str, unit: str, *, lower_better: bool = True,
            target: Target | None = None, peer_note: str = "") -> Row:
        if label not in self.rows:
            self.rows[label] = Row(label, unit, lower_better, target, peer_note=peer_note)
        return self.rows[label]


def _cell(values: list[float], note: str = "") -> str:
    return fmt_figure(Figure(tuple(values))) if values else (note or "—")


def _ratio(row: Row, values: list[float]) -> str:
    ratio = row.ratio(values)
    return "" if ratio is None else f"{ratio:.2f}x"


def render(results: Results, peer_name: str) -> str:
    """The table: median [min-max] over the runs, ratios to Erlang, targets."""
    header = ["scenario", "unit", "Erlang→Erlang", "erldist", "÷OTP", peer_name, "÷OTP",
              "target", "met"]
    lines = [header]
    for row in results.rows.values():
        met = row.met()
        lines.append([
            row.label, row.unit, _cell(row.erlang), _cell(row.erldist),
            _ratio(row, row.erldist), _cell(row.peer, row.peer_note), _ratio(row, row.peer),
            row.target.text(row.lower_better) if row.target else "",
            "" if met is None else ("met" if met else "NOT MET"),
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                 enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
