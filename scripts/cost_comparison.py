#!/usr/bin/env python
"""Execution-cost sensitivity (specv2 §21.3): the same backtest under different cost assumptions.

Runs the strategy on one catalog range once per variant, everything else equal, and prints the
metrics side by side:

  as configured      the config as given
  0-tick slippage    slippage_ticks_entry = slippage_ticks_exit = 0
  1-tick slippage    slippage_ticks_entry = slippage_ticks_exit = 1
  maker = taker fee  maker_fee_bps set to taker_fee_bps (no rebate: every fill pays the taker rate)
  market entries     use_limit_for_entry = false (entries cross the spread as takers)

    .venv/bin/python scripts/cost_comparison.py [CONFIG] [--catalog DIR] [--start T] [--end T] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auction_trader.config import AuctionConfig, ConfigError, add_config_arguments, load_config  # noqa: E402


def variants(config: AuctionConfig) -> list[tuple[str, list[str]]]:
    taker = config.execution.taker_fee_bps
    return [
        ("as configured", []),
        ("0-tick slippage", ["slippage_ticks_entry=0", "slippage_ticks_exit=0"]),
        ("1-tick slippage", ["slippage_ticks_entry=1", "slippage_ticks_exit=1"]),
        ("maker = taker fee", [f"maker_fee_bps={taker}"]),
        ("market entries", ["use_limit_for_entry=false"]),
    ]


ROWS = [
    ("net_pnl", "net P&L", "{:,.2f}"),
    ("gross_pnl", "gross P&L", "{:,.2f}"),
    ("fees_paid", "fees paid", "{:,.2f}"),
    ("funding_paid", "funding paid", "{:,.2f}"),
    ("slippage_cost", "slippage cost", "{:,.2f}"),
    ("trades", "round trips", "{:d}"),
    ("win_rate", "win rate", "{:.1%}"),
    ("pnl_per_trade", "net P&L / trade", "{:,.2f}"),
    ("max_drawdown", "max drawdown", "{:,.2f}"),
    ("sharpe_annualised_1m", "Sharpe (1m, ann.)", "{:.2f}"),
    ("maker_fills", "maker fills", "{:d}"),
    ("taker_fills", "taker fills", "{:d}"),
    ("flips", "flips", "{:d}"),
    ("entries_after_first_flip", "entries after 1st flip", "{:d}"),
    ("orders_stuck", "orders stuck", "{:d}"),
]


def compare(
    config: AuctionConfig,
    catalog: Path,
    start: int | None,
    end: int | None,
    factory: Callable[[AuctionConfig], object],
    chosen: list[tuple[str, list[str]]] | None = None,
) -> list[tuple[str, dict]]:
    """(variant name, metrics) per variant; the ticks are loaded once and shared."""
    from auction_trader.backtest.engine import load_data  # noqa: PLC0415
    from auction_trader.backtest.outputs import run_single  # noqa: PLC0415

    data = load_data(catalog, config.instrument_id, start, end)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (name, overrides) in enumerate(chosen or variants(config)):
            cfg = config.with_overrides(overrides)
            result = run_single(cfg, catalog, start, end, Path(tmp) / str(n), factory, report=False, data=data)
            out.append((name, {**result.metrics, **_order_health(result.out_dir)}))
    return out


def _order_health(run_dir: Path) -> dict:
    """Flips, entries after the first one, and market orders the strategy found stuck (alerts):
    a variant whose orders hang stops trading after its first flip."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    signals = pq.read_table(run_dir / "signals_1m.parquet").to_pylist() if (run_dir / "signals_1m.parquet").exists() else []
    alerts = json.loads((run_dir / "alerts.json").read_text()) if (run_dir / "alerts.json").exists() else []
    flips = [r["ts_min"] for r in signals if r["reason_code"].startswith("FLIP:")]
    entries = [r["ts_min"] for r in signals if r["chosen_action"].startswith("ENTER")]
    return {
        "flips": len(flips),
        "entries_after_first_flip": sum(t > flips[0] for t in entries) if flips else 0,
        "orders_stuck": sum(a["alert"] == "order stuck" for a in alerts),
    }


def table(results: list[tuple[str, dict]]) -> str:
    width = max(len(label) for _, label, _ in ROWS)
    col = max(16, *(len(name) + 2 for name, _ in results))
    lines = [f"{'':<{width}}" + "".join(f"{name:>{col}}" for name, _ in results)]
    for key, label, fmt in ROWS:
        cells = []
        for _, m in results:
            v = m.get(key)
            cells.append("-" if v is None else fmt.format(v))
        lines.append(f"{label:<{width}}" + "".join(f"{c:>{col}}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default=str(ROOT / "configs" / "default.yaml"))
    parser.add_argument("--catalog", default=str(ROOT / "catalogs" / "sample"))
    parser.add_argument("--start", help="ISO 8601, UTC")
    parser.add_argument("--end", help="ISO 8601, UTC")
    add_config_arguments(parser, positional=True)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from auction_trader.backtest.outputs import StrategyUnavailable, auction_strategy_factory  # noqa: PLC0415
    from auction_trader.data.errors import DataError  # noqa: PLC0415
    from auction_trader.backtest.cli import parse_time  # noqa: PLC0415

    try:
        start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
        factory = auction_strategy_factory()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StrategyUnavailable as exc:
        print(f"error: {exc}; nothing to compare yet.", file=sys.stderr)
        return 2
    try:
        results = compare(config, Path(args.catalog), start, end, factory)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"cost sensitivity on {args.catalog}" + (f" {args.start} .. {args.end}" if args.start or args.end else ""))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
