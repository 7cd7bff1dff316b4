#!/usr/bin/env python
"""Backtest speed: the full strategy against an empty one, interleaved in one process.

On one catalog (default catalogs/sample; --hours N generates a synthetic one instead) the ticks are
loaded once, then ``--rounds`` rounds each run every scenario once on a fresh engine, in an order
rotated from round to round (each scenario takes each place in turn), timing ``engine.run()`` only
in CPU time of this process (``time.process_time``: the machine may be shared, and wall time
measures the neighbours):

  1. ``empty, plain Nautilus``: an empty strategy subscribed to the trades and quotes on a stock
     BacktestEngine (L1 book, trade execution, default fill model): the floor;
  2. ``empty, our engine``: the same strategy on :func:`auction_trader.backtest.build_engine`
     (slippage fill model, funding and touch module, order gate, minute marks, end-of-run actor):
     what our infrastructure costs;
  3. ``AuctionStrategy``: the full strategy on our engine, when it can be imported.

Why interleaved: on a shared machine the CPU time of the same work moves by 10-20 % from one
minute to the next (caches and cores shared with the neighbours). Scenarios run minutes apart in
separate processes measure the neighbours as much as themselves; run back to back, round after
round, they meet the same neighbours. Printed: each round's throughputs and its AuctionStrategy /
stock-empty ratio; then each scenario's best round (its least disturbed run) in ticks per CPU
second, the ratio of the bests (the headline: issue 13's target >= 0.85 - the strategy, our venue
model and order gate together against Nautilus doing nothing) and the median of the rounds'
ratios, plus the strategy's ratio to scenario 2 (its own cost on the same engine). Peak RSS is
not measured here (every scenario shares the process): ``benchmarks/long_range_bench.py``.

    .venv/bin/python benchmarks/backtest_bench.py [--catalog DIR | --hours 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
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


def build_scenario(name: str, catalog: Path, data):
    """A ready-to-run engine for one scenario, or a string saying why it is unavailable."""
    from decimal import Decimal  # noqa: PLC0415

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig  # noqa: PLC0415
    from nautilus_trader.config import LoggingConfig  # noqa: PLC0415
    from nautilus_trader.model.currencies import USDT  # noqa: PLC0415
    from nautilus_trader.model.enums import AccountType, BookType, OmsType  # noqa: PLC0415
    from nautilus_trader.model.identifiers import Venue  # noqa: PLC0415
    from nautilus_trader.model.objects import Money  # noqa: PLC0415

    from auction_trader.backtest.engine import build_engine  # noqa: PLC0415
    from auction_trader.config import AuctionConfig  # noqa: PLC0415
    from auction_trader.instrument import btcusdt_perpetual  # noqa: PLC0415

    config = AuctionConfig()
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
        return engine
    if name == "empty-ours":
        return build_engine(config, catalog, None, None, _empty_strategy(), data=data)[0]
    from auction_trader.backtest.outputs import StrategyUnavailable, auction_strategy_factory  # noqa: PLC0415

    try:
        factory = auction_strategy_factory()
    except StrategyUnavailable as exc:
        return str(exc)
    return build_engine(config, catalog, None, None, factory(config), data=data)[0]


def run_scenario(name: str, catalog: Path, data) -> float | str:
    """CPU seconds of one run of ``name`` (``engine.run()`` only), or why it is unavailable."""
    engine = build_scenario(name, catalog, data)
    if isinstance(engine, str):
        return engine
    gc.collect()
    t0 = time.process_time()
    engine.run()
    seconds = time.process_time() - t0
    engine.dispose()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=ROOT / "catalogs" / "sample")
    parser.add_argument("--hours", type=float, help="generate a synthetic catalog of this many hours instead (seed 42)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every scenario, interleaved (default 3)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")

    from auction_trader.backtest.engine import load_data  # noqa: PLC0415
    from auction_trader.config import AuctionConfig  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        catalog = args.catalog
        if args.hours:
            from auction_trader.data.synth import generate, write_synthetic  # noqa: PLC0415

            catalog = Path(tmp) / "synthetic"
            write_synthetic(catalog, generate(args.hours, 42, 1_704_067_200_000_000_000))
        elif not (catalog / "data").is_dir():
            print(f"error: {catalog} is not a catalog; run `bash setup.sh demo` (builds catalogs/sample) or pass --hours 10", file=sys.stderr)
            return 1
        data = load_data(catalog, AuctionConfig().instrument_id)
        ticks = data[1] + data[2]
        name_of_catalog = f"synthetic {args.hours:g} h" if args.hours else str(catalog)
        print(f"catalog {name_of_catalog}: {ticks:,} ticks; {args.rounds} rounds, scenarios interleaved (ticks per CPU second)", flush=True)
        print(f"{'round':>5} " + " ".join(f"{n:>12}" for n in SCENARIOS) + f" {'auction/plain':>14}", flush=True)
        seconds: dict[str, list[float]] = {n: [] for n in SCENARIOS}
        unavailable: dict[str, str] = {}
        round_ratios = []
        for r in range(args.rounds):
            order = SCENARIOS[r % len(SCENARIOS):] + SCENARIOS[: r % len(SCENARIOS)]
            this: dict[str, float] = {}
            for name in order:
                if name in unavailable:
                    continue
                res = run_scenario(name, catalog, data)
                if isinstance(res, str):
                    unavailable[name] = res
                else:
                    this[name] = res
                    seconds[name].append(res)
            cells = [f"{ticks / this[n]:>12,.0f}" if n in this else f"{'-':>12}" for n in SCENARIOS]
            ratio = ""
            if "auction" in this and "empty-plain" in this:
                round_ratios.append(this["empty-plain"] / this["auction"])
                ratio = f"{round_ratios[-1]:>14.3f}"
            print(f"{r + 1:>5} " + " ".join(cells) + f" {ratio}", flush=True)

    if "empty-plain" in unavailable:
        print(f"the stock scenario failed: {unavailable['empty-plain']}", file=sys.stderr)
        return 1
    best = {n: min(s) for n, s in seconds.items() if s}
    base_rate = ticks / best["empty-plain"]
    print(f"\nbest round of each ({args.rounds}):")
    print(f"{'scenario':<34} {'ticks/CPU s':>11} {'vs empty plain':>15}")
    for name in SCENARIOS:
        if name in unavailable:
            print(f"{LABELS[name]:<34} {'-':>11} {'-':>15}   ({unavailable[name]})")
            continue
        rate = ticks / best[name]
        print(f"{LABELS[name]:<34} {rate:>11,.0f} {rate / base_rate:>15.3f}")
    if "auction" in best and "empty-ours" in best:
        stock = best["empty-plain"] / best["auction"]
        print(
            f"\nAuctionStrategy vs the stock empty strategy (same catalog, CPU time, best rounds): {stock:.3f} "
            f"(target >= 0.85: {'met' if stock >= 0.85 else 'NOT met'}); "
            f"median of the rounds' ratios {statistics.median(round_ratios):.3f} (range {min(round_ratios):.3f}-{max(round_ratios):.3f})",
        )
        print(f"AuctionStrategy vs an empty strategy on our engine and venue model: {best['empty-ours'] / best['auction']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
