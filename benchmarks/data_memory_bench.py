#!/usr/bin/env python
"""Peak memory and speed of the streamed data tools (issue 13): synth and import, 1 day vs N days.

Every figure is the real command line (``python -m auction_trader.data ...``) run as a child
process; its peak resident memory is the kernel's own count for that child (``wait4``). The
one-day run of each tool is the baseline measured in the same run: memory that does not grow
with the span shows as an N-day/1-day ratio near 1.0, time as a ratio near N.

1. ``synth --hours 24`` and ``synth --hours 24*N``.
2. The N-day synthetic market exported as exchange files - Bybit's daily trade dumps
   (``bybit-trades``, .csv.gz) and one L1 quote CSV per day (``csv``) - then imported: one day,
   and all N days in one command per format.
3. With ``--long-hours H`` (e.g. 720, the 30-day catalog the streamed backtest uses): ``synth``
   for H hours.
4. With ``--baseline REF`` (a git commit, e.g. the one before streaming): the same one-day import
   and both synth runs with the data layer of that commit, for comparison in the same run.

    .venv/bin/python benchmarks/data_memory_bench.py [--days 7] [--long-hours 720] [--baseline REF] [--work DIR]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from auction_trader.data.ticks import decode_fixed

REPO = Path(__file__).resolve().parent.parent
DAY_NS = 86_400 * 10**9
BYBIT_HEADER = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"


# A small process starts the command and reports its peak RSS: Linux counts a child's memory from
# before its exec, so a child forked straight from this (large) process would inherit our figure.
WRAPPER = """
import os, subprocess, sys, time
began = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
print(f"@@ {os.waitstatus_to_exitcode(status)} {time.perf_counter() - began} {usage.ru_maxrss}", flush=True)
"""


def measure(label: str, args: list[str], source: Path | None = None) -> dict:
    """Run ``python -m auction_trader.data <args>`` (from ``source``'s package, if given); its wall
    time and peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(source)) if source else None
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-m", "auction_trader.data", *args],
        cwd=source or REPO, capture_output=True, text=True, check=False, env=env,
    )
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if not tail.startswith("@@ ") or tail.split()[1] != "0":
        raise SystemExit(f"{label} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    _, _, seconds, rss_kb = tail.split()
    seconds, rss_mb = float(seconds), int(rss_kb) / 1024  # ru_maxrss is in kB on Linux
    print(f"  {label:<34} {seconds:8.1f} s   peak RSS {rss_mb:8.0f} MB", flush=True)
    return {"label": label, "s": seconds, "rss": rss_mb, "out": proc.stdout}


def export_days(catalog: Path, out: Path, days: int) -> list[tuple[Path, Path, int]]:
    """The synthetic market as exchange files: (bybit trades .csv.gz, quotes .csv, ticks) per day."""
    trade_files = sorted((catalog / "data" / "trade_tick").rglob("*.parquet"))
    quote_files = sorted((catalog / "data" / "quote_tick").rglob("*.parquet"))
    made = []
    for day, (tf, qf) in enumerate(zip(trade_files[:days], quote_files[:days], strict=True)):
        trades_path, quotes_path = out / f"BTCUSDT-day{day + 1}.csv.gz", out / f"quotes-day{day + 1}.csv"
        t = pq.read_table(tf)
        q = pq.read_table(qf)
        if not trades_path.exists():
            ts = t.column("ts_event").to_numpy().astype(np.int64) // 1_000_000
            price = decode_fixed(t.column("price"), 1)
            size = decode_fixed(t.column("size"), 3)
            side = t.column("aggressor_side").to_numpy()
            ids = t.column("trade_id").to_numpy(zero_copy_only=False)
            lines = [BYBIT_HEADER]
            for ms, p, z, s, i in zip(ts.tolist(), price.tolist(), size.tolist(), side.tolist(), ids.tolist(), strict=True):
                notional = p * z / 10_000
                lines.append(
                    f"{ms // 1000}.{ms % 1000:03d},BTCUSDT,{'Buy' if s == 1 else 'Sell'},{z // 1000}.{z % 1000:03d},{p // 10}.{p % 10},"
                    f"ZeroPlusTick,{int(i):08x}-0000-4000-8000-{int(i):012x},{notional * 1e8:.0f},{z / 1000},{notional:.4f}",
                )
            with gzip.open(trades_path, "wt", compresslevel=1) as f:
                f.write("\n".join(lines) + "\n")
        if not quotes_path.exists():
            ts = q.column("ts_event").to_numpy().astype(np.int64) // 1_000_000
            cols = [decode_fixed(q.column(c), p) for c, p in (("bid_price", 1), ("bid_size", 3), ("ask_price", 1), ("ask_size", 3))]
            with quotes_path.open("w") as f:
                f.write("ts,bid,bid_size,ask,ask_size\n")
                for ms, b, bs, a, az in zip(ts.tolist(), *(c.tolist() for c in cols), strict=True):
                    f.write(f"{ms},{b // 10}.{b % 10},{bs // 1000}.{bs % 1000:03d},{a // 10}.{a % 10},{az // 1000}.{az % 1000:03d}\n")
        made.append((trades_path, quotes_path, t.num_rows + q.num_rows))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--long-hours", type=float, default=0, help="also time synth for this many hours (e.g. 720)")
    parser.add_argument("--work", type=Path, help="working directory, kept for reruns (default: a temporary one)")
    parser.add_argument("--baseline", metavar="REF", help="also measure the data layer of this git commit (one-day import, synth)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="data-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores; work dir {work}")
    rows = []

    print(f"synth: 1 day vs {args.days} days")
    for hours in (24, 24 * args.days):
        shutil.rmtree(work / f"synth{hours}", ignore_errors=True)
        r = measure(f"synth --hours {hours}", ["synth", "--catalog", str(work / f"synth{hours}"), "--hours", str(hours), "--seed", "7"])
        rows.append(r)
    synth_1, synth_n = rows[-2], rows[-1]

    print(f"exporting the {args.days}-day market as Bybit trade dumps and quote CSVs ...", flush=True)
    (work / "files").mkdir(exist_ok=True)
    files = export_days(work / f"synth{24 * args.days}", work / "files", args.days)
    ticks_1, ticks_n = files[0][2], sum(f[2] for f in files)

    print(f"import: 1 day vs {args.days} days (trades, then quotes, into a fresh catalog)")
    results = {}
    for label, chosen in (("1 day", files[:1]), (f"{args.days} days", files)):
        catalog = work / f"imported-{len(chosen)}"
        shutil.rmtree(catalog, ignore_errors=True)
        t = measure(f"import bybit-trades, {label}", ["import", "bybit-trades", *(str(f[0]) for f in chosen), "--catalog", str(catalog)])
        q = measure(f"import csv quotes, {label}", ["import", "csv", *(str(f[1]) for f in chosen), "--catalog", str(catalog), "--kind", "quotes", "--ts-unit", "ms"])
        results[label] = (t, q)
        rows += [t, q]

    base = {}
    if args.baseline:
        source = work / f"baseline-{args.baseline}"
        if not (source / "configs").is_dir():
            shutil.rmtree(source, ignore_errors=True)
            source.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, "auction_trader", "configs"], capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        print(f"baseline: the data layer of {args.baseline}")
        for hours in (24, 24 * args.days):
            shutil.rmtree(work / f"base-synth{hours}", ignore_errors=True)
            base[f"synth{hours}"] = measure(f"synth --hours {hours}", ["synth", "--catalog", str(work / f"base-synth{hours}"), "--hours", str(hours), "--seed", "7"], source)
        shutil.rmtree(work / "base-imported", ignore_errors=True)
        base["t1"] = measure("import bybit-trades, 1 day", ["import", "bybit-trades", str(files[0][0]), "--catalog", str(work / "base-imported")], source)
        base["q1"] = measure("import csv quotes, 1 day", ["import", "csv", str(files[0][1]), "--catalog", str(work / "base-imported"), "--kind", "quotes", "--ts-unit", "ms"], source)

    long = None
    if args.long_hours:
        print(f"synth --hours {args.long_hours:g}")
        shutil.rmtree(work / "synth-long", ignore_errors=True)
        long = measure(f"synth --hours {args.long_hours:g}", ["synth", "--catalog", str(work / "synth-long"), "--hours", str(args.long_hours), "--seed", "7"])

    (t1, q1), (tn, qn) = results["1 day"], results[f"{args.days} days"]
    print()
    print(f"{'':<28}{'1 day':>16}{f'{args.days} days':>16}{'ratio':>10}")
    print(f"{'synth peak RSS (MB)':<28}{synth_1['rss']:>16.0f}{synth_n['rss']:>16.0f}{synth_n['rss'] / synth_1['rss']:>10.2f}")
    print(f"{'synth time (s)':<28}{synth_1['s']:>16.1f}{synth_n['s']:>16.1f}{synth_n['s'] / synth_1['s']:>10.2f}")
    imp1, impn = max(t1["rss"], q1["rss"]), max(tn["rss"], qn["rss"])
    print(f"{'import peak RSS (MB)':<28}{imp1:>16.0f}{impn:>16.0f}{impn / imp1:>10.2f}")
    s1, sn = t1["s"] + q1["s"], tn["s"] + qn["s"]
    print(f"{'import time (s)':<28}{s1:>16.1f}{sn:>16.1f}{sn / s1:>10.2f}")
    print(f"{'import ticks/s':<28}{ticks_1 / s1:>16,.0f}{ticks_n / sn:>16,.0f}{(ticks_n / sn) / (ticks_1 / s1):>10.2f}")
    if base:
        b1, bn = base["synth24"], base[f"synth{24 * args.days}"]
        bi = max(base["t1"]["rss"], base["q1"]["rss"])
        print(f"baseline {args.baseline}: synth peak RSS {b1['rss']:.0f} MB (1 day), {bn['rss']:.0f} MB ({args.days} days), "
              f"time {b1['s']:.1f} s / {bn['s']:.1f} s; one-day import peak RSS {bi:.0f} MB, {base['t1']['s'] + base['q1']['s']:.1f} s")
        print(f"streamed / baseline, {args.days} days: synth peak RSS {synth_n['rss'] / bn['rss']:.2f}, time {synth_n['s'] / bn['s']:.2f}; "
              f"one-day import peak RSS {imp1 / bi:.2f}, time {s1 / (base['t1']['s'] + base['q1']['s']):.2f}")
    if long is not None:
        print(f"synth --hours {args.long_hours:g}: {long['s']:.0f} s, peak RSS {long['rss']:.0f} MB")
    limit = 2048
    worst = max(synth_n["rss"], impn, long["rss"] if long else 0)
    print(f"peak RSS bound {limit} MB: {'held' if worst < limit else 'EXCEEDED'} (worst {worst:.0f} MB)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
