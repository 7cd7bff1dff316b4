"""Reading a grid's results: the top combinations with their neighbourhoods, CSV, heatmaps.

Robust plateau or lucky spike: a combination's *neighbours* are the combinations one step away
along exactly one axis (a ``zip`` group is one axis, stepped along its index), so an interior
point of a 3-axis grid has 6. For each of the top N the table shows the metric's min / median / max
over the neighbours that have a value; a best combination whose neighbours are far worse sits on
a spike that a small change of any parameter loses.

These functions take plain data (axis sizes, coordinates, metric values), so they can be checked
on hand-built result sets.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Metrics where smaller is better (ranked ascending); every other metric ranks descending.
LOWER_IS_BETTER = frozenset({"max_drawdown", "max_drawdown_pct", "fees_paid", "funding_paid", "slippage_cost", "slippage_ticks_mean", "margin_denials"})


@dataclass(frozen=True)
class Row:
    """A combination as the analysis sees it."""

    coords: tuple[int, ...]
    params: dict[str, Any]  # swept leaf -> value
    run_id: str
    status: str  # ok | failed | missing
    metrics: dict[str, Any]  # flattened (dotted names); the error for a failure


@dataclass(frozen=True)
class Ranked:
    row: Row
    value: float
    neighbours: int  # neighbours with a value
    lo: float | None
    median: float | None
    hi: float | None


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def neighbour_coords(coords: Sequence[int], sizes: Sequence[int]) -> list[tuple[int, ...]]:
    """The coordinates one step away along exactly one axis, inside the grid."""
    out = []
    for axis, size in enumerate(sizes):
        for step in (-1, 1):
            c = coords[axis] + step
            if 0 <= c < size:
                out.append((*coords[:axis], c, *coords[axis + 1 :]))
    return out


def rank(rows: Sequence[Row], sizes: Sequence[int], metric: str, top: int) -> list[Ranked]:
    """The ``top`` rows by ``metric`` (best first; ties by grid order), with neighbour spreads."""
    values = {r.coords: numeric(r.metrics.get(metric)) for r in rows if r.status == "ok"}
    scored = [(v, r) for r in rows if (v := values.get(r.coords)) is not None]
    sign = 1 if metric in LOWER_IS_BETTER else -1
    scored.sort(key=lambda vr: (sign * vr[0], vr[1].coords))
    out = []
    for value, row in scored[: max(0, top)]:
        near = [v for c in neighbour_coords(row.coords, sizes) if (v := values.get(c)) is not None]
        out.append(
            Ranked(
                row=row,
                value=value,
                neighbours=len(near),
                lo=min(near) if near else None,
                median=statistics.median(near) if near else None,
                hi=max(near) if near else None,
            ),
        )
    return out


def metric_names(rows: Sequence[Row]) -> list[str]:
    """Numeric metrics present in the results, in first-seen order."""
    names: dict[str, None] = {}
    for r in rows:
        if r.status == "ok":
            for k, v in r.metrics.items():
                if numeric(v) is not None:
                    names.setdefault(k)
    return list(names)


# -- the table ------------------------------------------------------------------------------------


def table(ranked: Sequence[Ranked], keys: Sequence[str], metric: str) -> str:
    """The top-N table: parameters, the metric, trades, and the neighbours' spread."""
    head = ["#", *keys, metric, "trades", "nbrs", "nbr min", "nbr median", "nbr max"]
    lines = []
    for i, r in enumerate(ranked, 1):
        lines.append(
            [
                str(i),
                *(_cell(r.row.params.get(k)) for k in keys),
                _num(r.value),
                _cell(r.row.metrics.get("trades")),
                str(r.neighbours),
                _num(r.lo),
                _num(r.median),
                _num(r.hi),
            ],
        )
    widths = [max(len(h), *(len(line[j]) for line in lines)) if lines else len(h) for j, h in enumerate(head)]
    left = set(range(1, 1 + len(keys)))

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([fmt(head), *(fmt(line) for line in lines)])


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.2f}" if abs(v) >= 1 or v == 0 else f"{v:.4g}"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


# -- CSV ------------------------------------------------------------------------------------------


def export_csv(path: Path, rows: Sequence[Row], keys: Sequence[str]) -> Path:
    """One flat row per combination: run_id, status, the swept parameters, every metric (nested
    ones as dotted names; a name that is also a parameter gets a ``metrics.`` prefix), error."""
    metrics: dict[str, None] = {}
    for r in rows:
        if r.status == "ok":
            for k in r.metrics:
                metrics.setdefault(k)
    columns = {k: ("metrics." + k if k in keys or k in ("run_id", "status", "error") else k) for k in metrics}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run_id", "status", *keys, *columns.values(), "error"])
        for r in rows:
            ok = r.status == "ok"
            values = [_csv(r.metrics.get(k)) if ok else "" for k in metrics]
            error = "" if ok else str(r.metrics.get("error", ""))
            writer.writerow([r.run_id, r.status, *(_csv(r.params.get(k)) for k in keys), *values, error])
    return path


def _csv(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True)
    return v


# -- heatmap --------------------------------------------------------------------------------------


def heatmap_matrix(rows: Sequence[Row], x_axis: int, y_axis: int, sizes: Sequence[int], metric: str) -> list[list[float | None]]:
    """``[y][x]``: the mean of ``metric`` over every combination at that (x, y), whatever its
    other coordinates (None where no combination there has a value)."""
    sums = [[0.0] * sizes[x_axis] for _ in range(sizes[y_axis])]
    counts = [[0] * sizes[x_axis] for _ in range(sizes[y_axis])]
    for r in rows:
        v = numeric(r.metrics.get(metric)) if r.status == "ok" else None
        if v is not None:
            sums[r.coords[y_axis]][r.coords[x_axis]] += v
            counts[r.coords[y_axis]][r.coords[x_axis]] += 1
    return [[s / n if n else None for s, n in zip(srow, nrow, strict=True)] for srow, nrow in zip(sums, counts, strict=True)]


def write_heatmap(path: Path, matrix: list[list[float | None]], x_labels: list[str], y_labels: list[str], x_name: str, y_name: str, metric: str, others: Sequence[str]) -> Path:
    import plotly.graph_objects as go  # noqa: PLC0415 (heavy)

    aggregated = f"mean over {', '.join(others)}" if others else "one combination per cell"
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=x_labels,
            y=y_labels,
            colorscale="RdYlGn_r" if metric in LOWER_IS_BETTER else "RdYlGn",
            colorbar={"title": metric},
            texttemplate="%{z:.2f}",
            hovertemplate=f"{x_name}=%{{x}}<br>{y_name}=%{{y}}<br>{metric}=%{{z:.4f}}<extra></extra>",
        ),
    )
    fig.update_layout(
        title=f"{metric} by {x_name} and {y_name} ({aggregated})",
        xaxis={"title": x_name, "type": "category"},
        yaxis={"title": y_name, "type": "category"},
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path
