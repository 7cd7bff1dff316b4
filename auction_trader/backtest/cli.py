"""``run_backtest.py``: one backtest of AuctionStrategy over a catalog (see ``DESCRIPTION``).

Exit codes: 0 done; 1 a problem with the inputs (configuration, catalog, time range), reported in
one message; 2 something not built yet (grid search).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from auction_trader.config import ConfigError, add_config_arguments, load_config

DESCRIPTION = """\
Runs AuctionStrategy over a catalog on Nautilus's own matching engine: L1 book from quotes, trades
filling resting limits at their price (maker fee or rebate), market, stop-market and take-profit
fills `slippage_ticks_entry/_exit` ticks beyond the quote (taker fee), funding settled at
00:00/08:00/16:00 UTC at `funding_rate_8h_bps`, Bybit margin (orders beyond `max_leverage` x
equity are denied). A position still open at the last tick is closed at market.

A single-run CONFIG runs one backtest and writes into --out (default runs/<run_id>/, the id a hash
of config, catalog and range): metrics.json, fills.parquet, trades.parquet, features_1m.parquet,
signals_1m.parquet, alerts.json, execution.db (positions, state snapshots, funding ledger) and
report.html (Nautilus tearsheet + price chart), then prints a summary table. Same inputs, same
bytes. Progress lines (simulated time, % done, ETA) go to stderr.

A grid CONFIG (a `grid:` of parameter lists) is not built yet: it exits with status 2."""

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str | None, name: str) -> int | None:
    """ISO 8601 (UTC unless it says otherwise) to ns; a clear error otherwise."""
    if text is None:
        return None
    from auction_trader.data.errors import BadRow  # noqa: PLC0415
    from auction_trader.data.timestamps import to_ns  # noqa: PLC0415

    if not _ISO.match(text.strip()):
        raise ValueError(f"{name} {text!r}: not an ISO 8601 timestamp (e.g. 2024-01-01T08:00 or 2024-01-01T08:00:00Z)")
    try:
        return to_ns(text, "iso", name)
    except BadRow:
        raise ValueError(f"{name} {text!r}: not an ISO 8601 timestamp (e.g. 2024-01-01T08:00 or 2024-01-01T08:00:00Z)") from None


def _is_grid(path: str) -> bool:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False  # load_config reports it
    return isinstance(data, dict) and "grid" in data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_backtest.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config: a single run (e.g. configs/default.yaml) or a grid (grid: key; not built yet)")
    parser.add_argument("--catalog", default="catalogs/sample", help="Parquet catalog to replay (default: catalogs/sample)")
    parser.add_argument("--start", help="first timestamp to replay, inclusive (ISO 8601, UTC; default: the catalog's first tick)")
    parser.add_argument("--end", help="last timestamp to replay, inclusive (ISO 8601, UTC; default: the catalog's last tick)")
    parser.add_argument("--out", help="run directory (default: runs/<run_id>/)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--no-report", action="store_true", help="skip report.html (it embeds plotly, ~5 MB)")
    add_config_arguments(parser, positional=True)
    args = parser.parse_args(argv)

    def fail(message: str, code: int = 1) -> int:
        print(f"error: {message}", file=sys.stderr)
        return code

    if _is_grid(args.config):
        return fail(
            f"{args.config} is a grid configuration (it has a `grid:` key). Grid search is the next piece of "
            "work and is not built yet; run a single configuration for now.",
            2,
        )
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        return fail(str(exc))
    catalog = Path(args.catalog)
    if not (catalog / "data").is_dir():
        return fail(f"{catalog}: not a catalog (no data/ directory). Build one with `python -m auction_trader.data synth` or `import`.")
    try:
        start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
    except ValueError as exc:
        return fail(str(exc))
    if start is not None and end is not None and start > end:
        return fail(f"--start {args.start} is after --end {args.end}")

    from auction_trader.backtest import outputs  # noqa: PLC0415 (Nautilus import: after the cheap checks)
    from auction_trader.backtest.engine import load_data  # noqa: PLC0415
    from auction_trader.backtest.report import summary_table  # noqa: PLC0415
    from auction_trader.data.errors import DataError  # noqa: PLC0415

    try:
        data = load_data(catalog, config.instrument_id, start, end)
        if not data[0]:
            raise DataError(f"{catalog}: no trades or quotes for {config.instrument_id}" + (" in the requested range" if args.start or args.end else ""))
    except DataError as exc:
        return fail(str(exc))
    try:
        factory = outputs.auction_strategy_factory()
    except outputs.StrategyUnavailable as exc:
        return fail(f"{exc}. The backtest infrastructure is ready; the strategy arrives with its own issue.", 2)
    try:
        result = outputs.run_single(
            config, catalog, start, end, args.out, factory, progress=not args.quiet, report=not args.no_report, data=data,
        )
    except DataError as exc:
        return fail(str(exc))
    print(summary_table(result.metrics))
    print(f"\nwrote {len(result.files)} files to {result.out_dir}/")
    return 0

