"""``python -m auction_trader.features``: replay a catalog through the feature engine."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from auction_trader.config import ConfigError, add_config_arguments, config_from_args
from auction_trader.data.errors import DataError, check_output_file


def _time(text: str) -> int:
    """ISO 8601 (UTC when no zone is given) or integer nanoseconds."""
    if text.isdigit():
        return int(text)
    stamp = pd.Timestamp(text)
    return int((stamp if stamp.tzinfo else stamp.tz_localize("UTC")).value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m auction_trader.features",
        description="Replay a catalog's trades and quotes in time order through the feature engine and write "
        "one row per minute (bars, L1 close, order flow, quote imbalance, volatility, value area; see "
        "docs/features.md) to a Parquet file, then print a summary.",
    )
    parser.add_argument("--catalog", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="features Parquet file to write")
    parser.add_argument("--start", help="first timestamp (ISO 8601 UTC, or ns)")
    parser.add_argument("--end", help="last timestamp (ISO 8601 UTC, or ns)")
    parser.add_argument("--instrument", help="instrument id (default: the config's, BTCUSDT-LINEAR.BYBIT)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        from auction_trader.features import compute, load_ticks, summary, write_features

        config = config_from_args(args)
        check_output_file(args.out)
        instrument = args.instrument or config.instrument_id
        start = time.perf_counter()
        try:
            start_ns = _time(args.start) if args.start else None
            end_ns = _time(args.end) if args.end else None
        except ValueError as exc:
            raise DataError(f"--start/--end: {exc}") from None
        ticks = load_ticks(args.catalog, instrument, start_ns, end_ns)
        loaded = time.perf_counter()
        print(f"loaded {len(ticks.trade_ts):,} trades and {len(ticks.quote_ts):,} quotes of {instrument} in {loaded - start:.1f} s", file=sys.stderr)
        table = compute(ticks, config)
        computed = time.perf_counter()
        print(f"computed {table.num_rows:,} minutes in {computed - loaded:.2f} s ({ticks.count / max(computed - loaded, 1e-9) / 1e6:.1f} M ticks/s)", file=sys.stderr)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_features(table, args.out, config, source=f"{args.catalog} {instrument}")
        print(summary(table))
        print(f"wrote {args.out}")
        return 0
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
