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
        from auction_trader.features.catalog import iter_ticks  # noqa: PLC0415 (Nautilus import: after parsing)
        from auction_trader.features.rows import compute_streamed, write_features  # noqa: PLC0415
        from auction_trader.features.summarize import summary  # noqa: PLC0415

        config = config_from_args(args)
        check_output_file(args.out)
        instrument = args.instrument or config.instrument_id
        start = time.perf_counter()
        try:
            start_ns = _time(args.start) if args.start else None
            end_ns = _time(args.end) if args.end else None
        except ValueError as exc:
            raise DataError(f"--start/--end: {exc}") from None
        counts = [0, 0]
        next_report = [time.perf_counter() + 10.0]

        def progress(ticks) -> None:
            counts[0] += len(ticks.trade_ts)
            counts[1] += len(ticks.quote_ts)
            now = time.perf_counter()
            if now >= next_report[0]:
                last = ticks.quote_ts[-1] if len(ticks.quote_ts) else ticks.trade_ts[-1]
                print(f"  through {pd.Timestamp(int(last), tz='UTC'):%Y-%m-%d %H:%M} UTC: {counts[0]:,} trades, {counts[1]:,} quotes, {now - start:.0f} s", file=sys.stderr)
                next_report[0] = now + 10.0

        # Streamed: a chunk of ticks at a time (bounded memory whatever the range), the same rows
        # as one pass over the whole range.
        table = compute_streamed(iter_ticks(args.catalog, instrument, start_ns, end_ns), config, progress)
        computed = time.perf_counter()
        print(
            f"read and computed {counts[0]:,} trades and {counts[1]:,} quotes of {instrument} into {table.num_rows:,} minutes "
            f"in {computed - start:.1f} s ({sum(counts) / max(computed - start, 1e-9) / 1e6:.2f} M ticks/s)",
            file=sys.stderr,
        )
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
