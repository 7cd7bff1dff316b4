#!/usr/bin/env python
"""Backtest speed and memory: the full strategy against an empty one, measured in the same run.

On one catalog (default catalogs/sample; --hours N generates a synthetic one instead), each scenario
runs in its own child process (so each peak RSS is its own), timing ``engine.run()`` only, in CPU
time of that process (``time.process_time``: the machine is shared, wall time measures the
neighbours):

  1. ``empty, plain Nautilus``: an empty strategy subscribed to the trades and quotes on a stock
     BacktestEngine (L1 book, trade execution, default fill model): the floor;
  2. ``empty, our engine``: the same strategy on :func:`auction_trader.backtest.build_engine`
     (slippage fill model, funding and touch module, order gate): what our infrastructure costs;
  3. ``AuctionStrategy``: the full strategy on our engine, when it can be imported.

Printed: ticks per CPU second of each, the ratio to scenario 1, peak RSS, and the headline: the
AuctionStrategy's throughput over the stock empty strategy's (issue 13's target, >= 0.85: the
strategy, our venue model and order gate together against Nautilus doing nothing), plus the
strategy's ratio to scenario 2 (its own cost on the same engine).

    .venv/bin/python benchmarks/backtest_bench.py [--catalog DIR | --hours 10] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIOS = ["empty-plain", "empty-ours", "auction"]
LABELS = {"empty-plain": "empty strategy, plain Nautilus", "empty-ours": "empty strategy, our engine", "auction": "AuctionStrategy, our engine"}


def _empty_strategy():
    from nautilus_trader.config import StrategyConfig  # noqa: PLC0415
    from nautilus_trader.model.identifiers import InstrumentId  # noqa: PLC0415
    from nautilus_trader.trading.strategy import Strategy  # noqa: PLC0415

    class Subscriber(Strategy):
        def __init__(self) -> None:
            super().__init__(StrategyConfig(strategy_id="BENCH-001"))

        def on_start(self) -> None:
            iid = InstrumentId.from_str("BTCUSDT-LINEAR.BYBIT")
            self.subscribe_quote_ticks(iid)
            self.subscribe_trade_ticks(iid)

    return Subscriber()


def run_scenario(name: str, catalog: Path) -> dict:
    """One scenario in this process: returns ticks, seconds and peak RSS."""
    from decimal import Decimal  # noqa: PLC0415

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig  # noqa: PLC0415
    from nautilus_trader.config import LoggingConfig  # noqa: PLC0415
    from nautilus_trader.model.currencies import USDT  # noqa: PLC0415
    from nautilus_trader.model.enums import AccountType, BookType, OmsType  # noqa: PLC0415
    from nautilus_trader.model.identifiers import Venue  # noqa: PLC0415
    from nautilus_trader.model.objects import Money  # noqa: PLC0415

    from auction_trader.backtest.engine import build_engine, load_data  # noqa: PLC0415
    from auction_trader.config import AuctionConfig  # noqa: PLC0415
    from auction_trader.instrument import btcusdt_perpetual  # noqa: PLC0415

    config = AuctionConfig()
    data = load_data(catalog, config.instrument_id)
    ticks = data[1] + data[2]
    if name == "empty-plain":
        engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
        engine.add_venue(
            venue=Venue("BYBIT"),
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            starting_balances=[Money(10_000, USDT)],
            base_currency=USDT,
            default_leverage=Decimal(10),
            book_type=BookType.L1_MBP,
            trade_execution=True,
        )
        engine.add_instrument(btcusdt_perpetual(config))
        engine.add_data(data[0], sort=False)
        engine.sort_data()
        engine.add_strategy(_empty_strategy())
    elif name == "empty-ours":
        engine, _ = build_engine(config, catalog, None, None, _empty_strategy(), data=data)
    else:
        from auction_trader.backtest.outputs import StrategyUnavailable, auction_strategy_factory  # noqa: PLC0415

        try:
            factory = auction_strategy_factory()
        except StrategyUnavailable as exc:
            return {"unavailable": str(exc)}
        engine, _ = build_engine(config, catalog, None, None, factory(config), data=data)
    t0 = time.process_time()
    engine.run()
    seconds = time.process_time() - t0
    engine.dispose()
    return {"ticks": ticks, "seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=ROOT / "catalogs" / "sample")
    parser.add_argument("--hours", type=float, help="generate a synthetic catalog of this many hours instead (seed 42)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per scenario; the best is kept (default 2)")
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)

    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.catalog)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        catalog = args.catalog
        if args.hours:
            from auction_trader.data.synth import generate, write_synthetic  # noqa: PLC0415

            catalog = Path(tmp) / "synthetic"
            write_synthetic(catalog, generate(args.hours, 42, 1_704_067_200_000_000_000))
        elif not (catalog / "data").is_dir():
            print(f"error: {catalog} is not a catalog; run `bash setup.sh demo` (builds catalogs/sample) or pass --hours 10", file=sys.stderr)
            return 1
        results: dict[str, dict] = {}
        for name in SCENARIOS:
            best = None
            for _ in range(max(1, args.repeat)):
                proc = subprocess.run(
                    [sys.executable, __file__, "--scenario", name, "--catalog", str(catalog)],
                    capture_output=True, text=True, check=False,
                )
                if proc.returncode != 0:
                    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    best = {"unavailable": f"failed: {last}"}
                    print(f"{LABELS[name]} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                    break
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                if "unavailable" in res:
                    best = res
                    break
                if best is None or res["seconds"] < best["seconds"]:
                    best = res
            results[name] = best

    base = results["empty-plain"]
    if "unavailable" in base:
        return 1
    base_rate = base["ticks"] / base["seconds"]
    print(f"catalog {catalog if not args.hours else f'synthetic {args.hours:g} h'}: {base['ticks']:,} ticks (best of {args.repeat})")
    print(f"{'scenario':<34} {'ticks/CPU s':>11} {'vs empty plain':>15} {'peak RSS MB':>12}")
    for name in SCENARIOS:
        res = results[name]
        if "unavailable" in res:
            print(f"{LABELS[name]:<34} {'-':>10} {'-':>15} {'-':>12}   ({res['unavailable']})")
            continue
        rate = res["ticks"] / res["seconds"]
        print(f"{LABELS[name]:<34} {rate:>11,.0f} {rate / base_rate:>15.3f} {res['peak_rss_mb']:>12,.0f}")
    auction, ours = results["auction"], results["empty-ours"]
    if "unavailable" not in auction and "unavailable" not in ours:
        rate = auction["ticks"] / auction["seconds"]
        same_engine = rate / (ours["ticks"] / ours["seconds"])
        stock = rate / base_rate
        print(
            f"\nAuctionStrategy vs the stock empty strategy (same catalog, CPU time): {stock:.3f} "
            f"(target >= 0.85: {'met' if stock >= 0.85 else 'NOT met'})",
        )
        print(f"AuctionStrategy vs an empty strategy on our engine and venue model: {same_engine:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
