#!/usr/bin/env python
"""Catalog write throughput: our columnar writer vs Nautilus's own object path, measured in one run.

Both write the same ticks (trades and L1 quotes) into fresh catalogs:
  baseline  build TradeTick/QuoteTick objects, ParquetDataCatalog.write_data (what Nautilus offers)
  ours      TradeBatch/QuoteBatch columns -> CatalogWriter (staging, dedupe, atomic move)
and the two catalogs are read back with Nautilus and compared row for row.

    .venv/bin/python benchmarks/catalog_write_bench.py [--ticks 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.data.catalog import CatalogWriter
from auction_trader.data.ticks import QuoteBatch, TradeBatch
from auction_trader.instrument import BTCUSDT


def make_ticks(n: int, seed: int = 1) -> tuple[TradeBatch, QuoteBatch]:
    rng = np.random.default_rng(seed)
    n_trades, n_quotes = n // 3, n - n // 3
    t0 = 1_704_067_200_000_000_000
    bid = 600_000 + np.cumsum(rng.integers(-1, 2, n_quotes))
    quotes = QuoteBatch(
        t0 + np.sort(rng.integers(0, 3_600_000, n_quotes)) * 1_000_000,
        bid,
        bid + 1,
        rng.integers(1, 20_000, n_quotes),
        rng.integers(1, 20_000, n_quotes),
    )
    trades = TradeBatch(
        t0 + np.sort(rng.integers(0, 3_600_000, n_trades)) * 1_000_000,
        600_000 + rng.integers(-50, 50, n_trades),
        rng.integers(1, 5_000, n_trades),
        rng.integers(1, 3, n_trades).astype(np.uint8),
        np.array([str(i) for i in range(n_trades)], dtype=object),
    )
    return trades, quotes


def nautilus_path(trades: TradeBatch, quotes: QuoteBatch, root: Path) -> None:
    iid = InstrumentId.from_str(BTCUSDT.instrument_id)
    trade_objs = [
        TradeTick(iid, Price(p / 10, 1), Quantity(s / 1000, 3), AggressorSide(int(a)), TradeId(t), int(ts), int(ts))
        for p, s, a, t, ts in zip(trades.price.tolist(), trades.size.tolist(), trades.aggressor.tolist(), trades.trade_id, trades.ts_event.tolist())
    ]
    quote_objs = [
        QuoteTick(iid, Price(b / 10, 1), Price(a / 10, 1), Quantity(x / 1000, 3), Quantity(y / 1000, 3), int(ts), int(ts))
        for b, a, x, y, ts in zip(quotes.bid.tolist(), quotes.ask.tolist(), quotes.bid_size.tolist(), quotes.ask_size.tolist(), quotes.ts_event.tolist())
    ]
    catalog = ParquetDataCatalog(str(root))
    catalog.write_data(trade_objs)
    catalog.write_data(quote_objs)


def our_path(trades: TradeBatch, quotes: QuoteBatch, root: Path) -> None:
    with CatalogWriter(root, BTCUSDT) as writer:
        writer.add_trades(trades)
        writer.add_quotes(quotes)
        writer.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=1_000_000)
    args = parser.parse_args()
    trades, quotes = make_ticks(args.ticks)
    tmp = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        timings = {}
        for name, fn in (("nautilus objects + write_data", nautilus_path), ("auction_trader CatalogWriter", our_path)):
            start = time.perf_counter()
            fn(trades, quotes, tmp / name.split()[0])
            timings[name] = time.perf_counter() - start
        a = ParquetDataCatalog(str(tmp / "nautilus"))
        b = ParquetDataCatalog(str(tmp / "auction_trader"))
        same = a.trade_ticks() == b.trade_ticks() and a.quote_ticks() == b.quote_ticks()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = timings["nautilus objects + write_data"]
    print(f"{args.ticks:,} ticks ({len(trades):,} trades, {len(quotes):,} quotes); read back identical: {same}")
    print(f"{'path':<32} {'seconds':>8} {'ticks/s':>12} {'vs baseline':>12}")
    for name, seconds in timings.items():
        print(f"{name:<32} {seconds:>8.2f} {args.ticks / seconds:>12,.0f} {base / seconds:>11.1f}x")


if __name__ == "__main__":
    main()
