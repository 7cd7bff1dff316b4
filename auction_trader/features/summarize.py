"""The features table in numbers a trader checks first."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def summary(table: pa.Table) -> str:
    """The numbers a trader checks first: coverage, validity, ambiguity, agreement with the exchange."""
    n = table.num_rows
    if n == 0:
        return "no minutes"
    col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    valid = int(col["va_valid"].sum())
    ambiguous = col["ambiguous_trade_frac_1m"]
    trading = ~np.isnan(ambiguous)
    agree, disagree, unknown = (int(col[c].sum()) for c in ("side_agree", "side_disagree", "side_unknown"))
    known = agree + disagree
    causes = [
        ("same-timestamp print (buyers and sellers merged)", "disagree_same_ts"),
        ("stale quote", "disagree_stale"),
        ("tick-rule fallback", "disagree_fallback"),
        ("inside the spread, unsigned", "disagree_inside"),
        ("quote rule against a fresh quote (feed latency)", "disagree_quote"),
    ]
    first, last = (str(np.datetime64(int(col["ts_min"][i]), "ms")) for i in (0, -1))
    lines = [
        f"{'minutes':<52} {n:>10,}   ({first} .. {last} UTC)",
        f"{'minutes with trades':<52} {int(trading.sum()):>10,}",
        f"{'minutes with a valid value area':<52} {valid:>10,}   ({valid / n:.1%})",
        f"{'mean ambiguous fraction (minutes with trades)':<52} {float(np.mean(ambiguous[trading])) if trading.any() else float('nan'):>10.4f}",
    ]
    if known:
        lines.append(f"{'trades with the exchange taker side':<52} {known:>10,}")
        lines.append(f"{'  inferred sign agrees':<52} {agree:>10,}   ({agree / known:.2%})")
        lines.append(f"{'  disagrees':<52} {disagree:>10,}   ({disagree / known:.2%})")
        for label, name in causes:
            count = int(col[name].sum())
            lines.append(f"{'    ' + label:<52} {count:>10,}   ({count / known:.2%})")
    if unknown:
        lines.append(f"{'trades without a taker side in the data':<52} {unknown:>10,}")
    lines += flow_comparison(col)
    return "\n".join(lines)


def flow_comparison(col: dict) -> list[str]:
    """How far the inferred order flow differs from the exchange's taker side, minute by minute
    (both are in every features table, whatever ``order_flow_source`` chose for ``of_1m``)."""
    volume = col["volume"]
    sided = (col["side_agree"] + col["side_disagree"]) > 0
    if not sided.any():
        return []
    inferred, exchange = col["of_1m_inferred"][sided], col["of_1m_exchange"][sided]
    gap = np.abs(inferred - exchange) / volume[sided]
    flipped = int(np.sum(np.sign(inferred) != np.sign(exchange)))
    n = int(sided.sum())
    return [
        f"{'order flow, inferred vs the exchange taker side':<52} {n:>10,}   minutes",
        f"{'  mean |OF_norm inferred - OF_norm exchange|':<52} {float(np.mean(gap)):>10.4f}",
        f"{'  minutes where the sign of OF_1m differs':<52} {flipped:>10,}   ({flipped / n:.2%})",
    ]
