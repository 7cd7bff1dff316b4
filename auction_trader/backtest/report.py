"""``report.html`` and the end-of-run summary table.

The page is Nautilus's own tearsheet (``create_tearsheet_from_stats``: the analyzer's P&L, returns
and general statistics, equity and drawdown charts) followed by the run's key metrics and a price
chart: minute closes (or OHLC candles when the strategy's features carry them), POC / VAH / VAL,
signal markers from the strategy's signal records and the fills.

Deterministic bytes: the tearsheet is given run information without wall-clock fields (Nautilus's
own adds run start/finish times, elapsed time and a random run UUID) and a title without them, and
plotly's random ``<div>`` ids are replaced by fixed ones. The tearsheet's returns are the run's
per-minute equity returns (Nautilus's default, daily account returns, has one or two points for an
intraday run).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from nautilus_trader.analysis.tearsheet import create_tearsheet_from_stats
from nautilus_trader.model.currencies import USDT

_UUID_DIV = re.compile(r'<div id="([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"')

SIGNAL_KEYS = [
    ("signal_breakin_long", "break-in long", "triangle-up", "#1f77b4"),
    ("signal_breakin_short", "break-in short", "triangle-down", "#1f77b4"),
    ("signal_breakout_long", "breakout long", "triangle-up", "#9467bd"),
    ("signal_breakout_short", "breakout short", "triangle-down", "#9467bd"),
    ("signal_failbreak_long", "failed breakout long", "triangle-up", "#ff7f0e"),
    ("signal_failbreak_short", "failed breakout short", "triangle-down", "#ff7f0e"),
]

SUMMARY_ROWS = [
    ("starting_balance", "Starting balance (USDT)", "{:,.2f}"),
    ("ending_balance", "Ending balance (USDT)", "{:,.2f}"),
    ("gross_pnl", "Gross P&L", "{:,.2f}"),
    ("fees_paid", "Fees paid", "{:,.2f}"),
    ("funding_paid", "Funding paid", "{:,.4f}"),
    ("net_pnl", "Net P&L", "{:,.2f}"),
    ("return_pct", "Return %", "{:.3f}"),
    ("trades", "Round trips", "{:d}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("pnl_per_trade", "Net P&L per trade", "{:,.2f}"),
    ("avg_win", "Average win", "{:,.2f}"),
    ("avg_loss", "Average loss", "{:,.2f}"),
    ("profit_factor", "Profit factor", "{:.2f}"),
    ("max_drawdown", "Max drawdown (USDT)", "{:,.2f}"),
    ("max_drawdown_pct", "Max drawdown %", "{:.3f}"),
    ("sharpe_annualised_1m", "Sharpe (1-min returns, annualised)", "{:.2f}"),
    ("slippage_cost", "Slippage cost (USDT)", "{:,.2f}"),
    ("funding_events", "Funding settlements", "{:d}"),
    ("fills", "Fills (maker / taker)", None),
]


def _fmt(metrics: dict, key: str, fmt: str | None) -> str:
    if key == "fills":
        return f"{metrics.get('fills', 0)} ({metrics.get('maker_fills', 0)} / {metrics.get('taker_fills', 0)})"
    value = metrics.get(key)
    if value is None:
        return "-"
    try:
        return fmt.format(value) if fmt else str(value)
    except (ValueError, TypeError):
        return str(value)


def summary_table(metrics: dict) -> str:
    """The key metrics as a plain-text table (printed at the end of a run)."""
    run = metrics.get("run", {})
    width = max(len(label) for _, label, _ in SUMMARY_ROWS)
    lines = [
        f"run {run.get('run_id', '?')}  {run.get('instrument', '')}  {run.get('first_tick', '')[:19]} .. {run.get('last_tick', '')[:19]} UTC"
        + ("  [SYNTHETIC data]" if run.get("synthetic_data") else ""),
        "-" * (width + 18),
    ]
    for key, label, fmt in SUMMARY_ROWS:
        lines.append(f"{label:<{width}}  {_fmt(metrics, key, fmt):>14}")
    spread = metrics.get("spread_at_taker_fills") or {}
    if spread.get("count"):
        lines.append(f"{'Spread at taker fills (mean)':<{width}}  {spread['mean']:>14.4f}")
    by_setup = metrics.get("trades_by_setup") or {}
    if by_setup:
        lines.append(f"{'Trades by setup':<{width}}  " + ", ".join(f"{k} {v}" for k, v in by_setup.items()))
    by_exit = metrics.get("exits_by_reason") or {}
    if by_exit:
        lines.append(f"{'Exits by reason':<{width}}  " + ", ".join(f"{k} {v}" for k, v in by_exit.items()))
    return "\n".join(lines)


def _dt(ns) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(ns, dtype=np.int64), unit="ns", utc=True)


def price_figure(
    *,
    fills,
    minute_quotes: list[tuple[int, float, float]],
    features: dict[str, np.ndarray] | None,
    signals: list[dict] | None,
) -> go.Figure:
    fig = go.Figure()
    closes_ts = closes = None
    if features and "ts_min" in features and "close" in features:
        ts = np.asarray(features["ts_min"], dtype=np.int64) * 1_000_000  # minute start, ms -> ns
        x = _dt(ts)
        if all(k in features for k in ("open", "high", "low")):
            fig.add_trace(
                go.Candlestick(x=x, open=features["open"], high=features["high"], low=features["low"], close=features["close"], name="1m OHLC"),
            )
        else:
            fig.add_trace(go.Scatter(x=x, y=features["close"], mode="lines", name="1m close"))
        closes_ts, closes = ts, np.asarray(features["close"], dtype=np.float64)
        for key, colour in (("poc", "#d62728"), ("vah", "#2ca02c"), ("val", "#2ca02c")):
            if key in features:
                fig.add_trace(
                    go.Scatter(x=x, y=features[key], mode="lines", name=key.upper(), line={"width": 1, "color": colour, "dash": "dot" if key != "poc" else "solid"}),
                )
    elif minute_quotes:
        ts = np.array([m[0] for m in minute_quotes], dtype=np.int64) - 60_000_000_000
        mid = np.array([(m[1] + m[2]) / 2 for m in minute_quotes])
        fig.add_trace(go.Scatter(x=_dt(ts), y=mid, mode="lines", name="1m mid close"))
        closes_ts, closes = ts, mid
    if signals and closes is not None:
        sig_ts = np.array([int(r.get("ts_min", 0)) for r in signals], dtype=np.int64) * 1_000_000
        idx = np.clip(np.searchsorted(closes_ts, sig_ts), 0, len(closes) - 1)
        for key, label, symbol, colour in SIGNAL_KEYS:
            hit = np.array([bool(r.get(key)) for r in signals])
            if hit.any():
                fig.add_trace(
                    go.Scatter(
                        x=_dt(sig_ts[hit]),
                        y=closes[idx[hit]],
                        mode="markers",
                        name=f"signal: {label}",
                        marker={"symbol": symbol, "size": 11, "color": colour, "line": {"width": 1, "color": "black"}},
                    ),
                )
    for side, name, symbol, colour in ((1, "buy fills", "triangle-up", "#2ca02c"), (-1, "sell fills", "triangle-down", "#d62728")):
        chosen = [f for f in fills if f.side == side]
        if chosen:
            fig.add_trace(
                go.Scatter(
                    x=_dt([f.ts for f in chosen]),
                    y=[float(f.price) for f in chosen],
                    mode="markers",
                    name=name,
                    marker={"symbol": symbol, "size": 9, "color": colour},
                    text=[f"{f.order_type} {f.liquidity} {f.qty} @ {f.price} purpose={f.purpose} setup={f.setup}" for f in chosen],
                    hoverinfo="text+x",
                ),
            )
    fig.update_layout(
        title="Price, value area, signals and fills (UTC)",
        template="plotly_white",
        height=700,
        xaxis_rangeslider_visible=False,
        legend={"orientation": "h"},
    )
    return fig


def _metrics_html(metrics: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td style='text-align:right'>{html.escape(_fmt(metrics, key, fmt))}</td></tr>"
        for key, label, fmt in SUMMARY_ROWS
    )
    run = metrics.get("run", {})
    note = " (SYNTHETIC market data)" if run.get("synthetic_data") else ""
    return (
        "<div style='font-family:sans-serif;margin:24px'>"
        f"<h2>auction-trader run {html.escape(str(run.get('run_id', '')))}{note}</h2>"
        "<p>P&amp;L identity: net = gross − fees − funding = ending − starting balance. "
        "Prices of market fills include the configured slippage; funding settled at 00/08/16 UTC.</p>"
        f"<table style='border-collapse:collapse'>{rows}</table></div>"
    )


def write_report(
    path: Path,
    *,
    engine,
    run_id: str,
    metrics: dict,
    fills,
    minute_ts: np.ndarray,
    equity: np.ndarray,
    minute_quotes,
    features,
    signals,
) -> Path:
    analyzer = engine.portfolio.analyzer
    run = metrics.get("run", {})
    returns = pd.Series(dtype=np.float64)
    if len(equity) >= 2:
        returns = pd.Series(equity[1:] / equity[:-1] - 1.0, index=_dt(minute_ts[1:]))
    pnls = analyzer.get_performance_stats_pnls(currency=USDT)
    run_info = {
        "Run ID": run_id,
        "Strategy": str(run.get("strategy", "")),
        "Backtest start": str(run.get("first_tick", "")),
        "Backtest end": str(run.get("last_tick", "")),
        "Ticks": f"{run.get('trade_ticks', 0) + run.get('quote_ticks', 0):_}",
        "Iterations": f"{engine.iteration:_}",
        "Total events": f"{engine.kernel.exec_engine.event_count:_}",
        "Total orders": f"{engine.kernel.cache.orders_total_count():_}",
    }
    account_info = {
        "Starting balance (USDT)": f"{metrics['starting_balance']:,.2f} USDT",
        "Ending balance (USDT)": f"{metrics['ending_balance']:,.2f} USDT",
    }
    title = (
        f"<b>auction-trader</b> backtest {run_id}"
        f"<br><sub>{run.get('instrument', '')} | {str(run.get('first_tick', ''))[:19]} .. {str(run.get('last_tick', ''))[:19]} UTC"
        f"{' | SYNTHETIC data' if run.get('synthetic_data') else ''}</sub>"
    )
    page = create_tearsheet_from_stats(
        stats_pnls={"USDT": pnls} if pnls else {},
        stats_returns=analyzer.get_performance_stats_returns(),
        stats_general=analyzer.get_performance_stats_general(),
        returns=returns,
        output_path=None,
        title=title,
        run_info=run_info,
        account_info=account_info,
    )
    page = _stable_ids(page, "tearsheet")
    chart = price_figure(fills=fills, minute_quotes=minute_quotes, features=features, signals=signals)
    chart_html = chart.to_html(full_html=False, include_plotlyjs=False, div_id="price-chart")
    insert = _metrics_html(metrics) + chart_html
    if "</body>" in page:
        page = page.replace("</body>", insert + "</body>", 1)
    else:
        page += insert
    path.write_text(page)
    return path


def _stable_ids(page: str, prefix: str) -> str:
    for n, uid in enumerate(dict.fromkeys(_UUID_DIV.findall(page))):
        page = page.replace(uid, f"{prefix}-{n}")
    return page
