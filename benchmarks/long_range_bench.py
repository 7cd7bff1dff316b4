#!/usr/bin/env python
"""Long-range backtest: weeks of synthetic BTCUSDT streamed end to end in bounded memory.

1. A 30-day synthetic catalog (seed 42 from 2024-01-01, ``python -m auction_trader.data synth``,
   which generates an hour at a time) is built once and cached outside the repository, in
   ``$AUCTION_TRADER_BENCH_DIR`` (default ``~/.cache/auction-trader/benchmarks``); generating 720 h
   takes several minutes. The generator's own peak RSS is printed when it runs.
2. Two backtests of AuctionStrategy (``configs/default.yaml``) on that catalog, each in its own child
   process through :func:`auction_trader.backtest.outputs.run_single` (the streamed path, every
   output file written, report.html skipped): the first ``--baseline-hours`` (default 10) and the
   first ``--days`` (default 30). Each child prints its ticks, CPU and wall seconds and its peak
   RSS (``VmHWM`` of ``/proc/self/status``: the most it ever held).

Printed: a table of both runs and the long run's throughput (ticks per CPU second, which the
neighbours on a shared machine do not distort as they do wall time) over the short run's.

    .venv/bin/python benchmarks/long_range_bench.py [--days 30] [--baseline-hours 10] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
HOUR_NS = 3_600_000_000_000
CATALOG_HOURS = 720
SEED = 42


def vm_hwm_mb() -> float:
    """Peak resident set size of this process so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(catalog: Path, hours: float, config_path: Path) -> dict:
    """One streamed backtest of the first ``hours`` of ``catalog`` in this process."""
    from auction_trader.backtest.outputs import run_single  # noqa: PLC0415
    from auction_trader.config import load_config  # noqa: PLC0415

    config = load_config(config_path, [])
    end = T0 + int(hours * HOUR_NS) - 1
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_single(config, catalog, T0, end, Path(tmp) / "run", report=False, progress=True)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        sizes = {p.name: p.stat().st_size for p in result.out_dir.iterdir()}
    return {
        "hours": hours,
        "ticks": result.metrics["ticks"],
        "trades": result.metrics.get("trades"),
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_rss_mb": vm_hwm_mb(),
        "output_bytes": sum(sizes.values()),
    }


def ensure_catalog(cache: Path) -> Path:
    catalog = cache / f"synth-{CATALOG_HOURS}h-seed{SEED}"
    if (catalog / "SYNTHETIC.json").exists():
        return catalog
    print(f"generating the {CATALOG_HOURS} h catalog into {catalog} (once; several minutes) ...", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "auction_trader.data", "synth", "--catalog", str(catalog), "--hours", str(CATALOG_HOURS), "--seed", str(SEED)]
    wall = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"synth failed (exit status {os.waitstatus_to_exitcode(status)})")
    print(
        f"generated {CATALOG_HOURS} h in {time.perf_counter() - wall:,.0f} s wall, {usage.ru_utime + usage.ru_stime:,.0f} s CPU, "
        f"peak RSS {usage.ru_maxrss / 1024:,.0f} MB",
    )
    return catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=30.0, help=f"length of the long run (at most {CATALOG_HOURS // 24}; default 30)")
    parser.add_argument("--baseline-hours", type=float, default=10.0, help="length of the short run (default 10)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("AUCTION_TRADER_BENCH_DIR", Path.home() / ".cache" / "auction-trader" / "benchmarks")))
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # catalog, in a child process
    parser.add_argument("--hours", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, args.hours, args.config)))
        return 0
    if not 0 < args.days <= CATALOG_HOURS / 24 or not 0 < args.baseline_hours <= args.days * 24:
        parser.error(f"--days must be in (0, {CATALOG_HOURS // 24}] and --baseline-hours in (0, days x 24]")

    catalog = ensure_catalog(args.cache)
    runs = []
    for hours in (args.baseline_hours, args.days * 24):
        print(f"backtesting the first {hours:g} h ...", file=sys.stderr)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(catalog), "--hours", str(hours), "--config", str(args.config)],
            stdout=subprocess.PIPE, text=True, check=False,
        )
        if proc.returncode != 0:
            print(f"the {hours:g} h run failed (exit status {proc.returncode})", file=sys.stderr)
            return 1
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    print(f"\ncatalog {catalog} (synthetic, seed {SEED}, {CATALOG_HOURS} h); AuctionStrategy, {args.config.name}; streamed runs")
    print(f"{'range':>10} {'ticks':>13} {'trades':>7} {'CPU s':>9} {'wall s':>9} {'ticks/CPU s':>12} {'peak RSS MB':>12} {'outputs MB':>11}")
    for r in runs:
        print(
            f"{r['hours']:>9g}h {r['ticks']:>13,} {r['trades'] or 0:>7} {r['cpu_s']:>9,.1f} {r['wall_s']:>9,.1f} "
            f"{r['ticks'] / r['cpu_s']:>12,.0f} {r['peak_rss_mb']:>12,.0f} {r['output_bytes'] / 1e6:>11.1f}",
        )
    short, long = runs
    ratio = (long["ticks"] / long["cpu_s"]) / (short["ticks"] / short["cpu_s"])
    print(f"\nthroughput {long['hours']:g} h / {short['hours']:g} h: {ratio:.3f} (target: within 10%, >= 0.90)")
    print(f"peak RSS {long['hours']:g} h: {long['peak_rss_mb']:,.0f} MB (target < 2,048 MB); {short['hours']:g} h: {short['peak_rss_mb']:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
