"""``run_backtest.py GRID.yaml``: the grid path of the backtest command (arguments parsed there).

Exit codes: 0 every combination stored with its metrics; 1 a problem with the inputs (nothing
ran); 3 the grid finished but some combinations failed (stored with their errors: --resume runs
them again); 130 interrupted (what finished is stored: --resume goes on from there).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from auction_trader.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, resolve_key
from auction_trader.grid.analysis import LOWER_IS_BETTER, Row, export_csv, heatmap_matrix, metric_names, rank, table, write_heatmap
from auction_trader.grid.spec import GridSpec, load_grid

DEFAULT_CATALOG = "catalogs/sample"


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("grid configs (a `grid:` or `zip:` key; see configs/grid.yaml)")
    g.add_argument("--workers", type=int, metavar="N", help="worker processes, or the size of the local Dask cluster (default: backtest_workers, auto = half the cores)")
    g.add_argument("--executor", choices=("local", "dask"), default="local", help="local processes (default) or a Dask cluster")
    g.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster of --workers processes)")
    g.add_argument(
        "--exact-replay",
        action="store_true",
        help="replay every tick through Nautilus for every combination (the old path; slower, same stored results) instead of "
        "the fast path, which runs Nautilus on every tick only while a combination is in the market",
    )
    g.add_argument("--resume", action="store_true", help="skip combinations already stored in --out's execution.db (failed ones run again)")
    g.add_argument("--top", type=int, default=10, metavar="N", help="rows of the result table (default 10)")
    g.add_argument("--by", default="net_pnl", metavar="METRIC", help="metric to rank by (default net_pnl; nested ones dotted, e.g. spread_at_taker_fills.mean)")
    g.add_argument("--export-csv", metavar="FILE", help="write one flat row per combination (parameters and metrics as columns)")
    g.add_argument("--heatmap", metavar="X,Y", action="append", default=[], help="write heatmap_<X>_<Y>.html into --out: --by over two swept parameters, mean over the others (repeatable)")


GRID_ONLY = ("workers", "scheduler", "resume", "export_csv", "heatmap", "exact_replay")


def grid_flags_given(args: argparse.Namespace) -> list[str]:
    """Grid-only options given to a single-run config (an error there)."""
    given = [f"--{name.replace('_', '-')}" for name in GRID_ONLY if getattr(args, name) not in (None, False, [])]
    given += [flag for flag, name, default in (("--executor", "executor", "local"), ("--top", "top", 10), ("--by", "by", "net_pnl")) if getattr(args, name) != default]
    return given


def main(args: argparse.Namespace) -> int:
    from auction_trader.data.timestamps import parse_time  # noqa: PLC0415

    def fail(message: str, code: int = 1) -> int:
        print(f"error: {message}", file=sys.stderr)
        return code

    try:
        spec = load_grid(args.config, args.overrides)
    except ConfigError as exc:
        return fail(str(exc))
    catalog = Path(args.catalog) if args.catalog else (spec.catalog or Path(DEFAULT_CATALOG))
    if not (catalog / "data").is_dir():
        return fail(f"{catalog}: not a catalog (no data/ directory). Build one with `python -m auction_trader.data synth` or `import`.")
    try:
        start_text, end_text = args.start or spec.start, args.end or spec.end
        start, end = parse_time(start_text, "start"), parse_time(end_text, "end")
    except ValueError as exc:
        return fail(str(exc))
    if start is not None and end is not None and start > end:
        return fail(f"start {start_text} is after end {end_text}")
    try:
        workers = args.workers if args.workers is not None else spec.base.backtest.workers
        if workers < 1:
            raise ValueError(f"--workers {workers}: must be >= 1")
        if args.scheduler and args.executor != "dask":
            raise ValueError("--scheduler is the Dask scheduler's address: it needs --executor dask")
        heatmaps = [_heatmap_axes(spec, text) for text in args.heatmap]
        _check_range(catalog, spec.base.instrument_id, start, end)
    except (ConfigError, ValueError) as exc:
        return fail(str(exc))

    from auction_trader.grid.runner import run_grid  # noqa: PLC0415 (imports Nautilus)

    sizes = " x ".join(f"{a.name} ({len(a)})" for a in spec.axes)
    where = f"{start_text or 'first tick'} .. {end_text or 'last tick'}"
    mode = "exact replay (every tick through Nautilus)" if args.exact_replay else "fast path (--exact-replay for the full replay)"
    print(f"grid {args.config}: {len(spec.combinations)} combinations = {sizes}; catalog {catalog}, {where}; {mode}")
    try:
        result = run_grid(
            spec, catalog, start, end, args.out, workers=workers, executor=args.executor, scheduler=args.scheduler, resume=args.resume, quiet=args.quiet,
            exact_replay=args.exact_replay,
        )
    except KeyboardInterrupt:
        return fail("interrupted: the combinations that finished are stored; run again with --resume to go on", 130)
    print(
        f"ran {result.ran} ({result.failed} failed), {result.skipped} already stored; {_duration(result.seconds)} with "
        f"{workers} {args.executor} worker{'s' if workers != 1 else ''} -> {result.db}",
    )
    print()
    print(report(spec, result.rows, args.by, args.top, catalog, start_text, end_text))
    try:
        if args.export_csv:
            print(f"\nwrote {export_csv(Path(args.export_csv), result.rows, spec.keys)}")
        for x, y in heatmaps:
            print(f"wrote {_heatmap(spec, result.rows, x, y, args.by, result.out_dir)}")
    except ValueError as exc:
        return fail(str(exc))
    failed = sum(r.status != "ok" for r in result.rows)
    return 3 if failed else 0


def report(spec: GridSpec, rows: list[Row], metric: str, top: int, catalog: Path, start: str | None, end: str | None) -> str:
    """The result table, the failures, and the command that reruns the best combination alone."""
    out = []
    names = metric_names(rows)
    if names and metric not in names:
        out.append(f"(no metric {metric!r} in the results; numeric metrics: {', '.join(names)})")
    else:
        order = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        sizes = [len(a) for a in spec.axes]
        ranked = rank(rows, sizes, metric, top)
        out.append(
            f"top {len(ranked)} of {sum(r.status == 'ok' for r in rows)} by {metric} ({order}). nbr = the neighbours, one step away "
            "along one axis: a tight spread near the value is a plateau, a spread far below it a lucky spike.",
        )
        out.append(table(ranked, spec.keys, metric))
        if ranked:
            out.append("\nthe best alone (same run id, full outputs): " + _rerun(spec, ranked[0].row, catalog, start, end))
    failed = [r for r in rows if r.status == "failed"]
    if failed:
        out.append(f"\n{len(failed)} failed (stored with the error and traceback in metrics_json):")
        out += [f"  {r.run_id} {_params(r)}: {r.metrics.get('error')}" for r in failed[:5]]
        if len(failed) > 5:
            out.append(f"  ... and {len(failed) - 5} more")
    return "\n".join(out)


def _params(r: Row) -> str:
    return " ".join(f"{k}={v}" for k, v in r.params.items())


def _rerun(spec: GridSpec, row: Row, catalog: Path, start: str | None, end: str | None) -> str:
    base_path = spec.base_path or DEFAULT_CONFIG_PATH
    reference = load_config(base_path).flat()
    config = next(c.config for c in spec.combinations if c.coords == row.coords).flat()
    argv = ["python", "run_backtest.py", _shown(base_path), "--catalog", str(catalog)]
    if start:
        argv += ["--start", start]
    if end:
        argv += ["--end", end]
    for k, v in config.items():
        if v != reference[k] or type(v) is not type(reference[k]):
            argv += ["--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    return shlex.join(argv)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _heatmap_axes(spec: GridSpec, text: str) -> tuple[str, str]:
    names = [n.strip() for n in text.split(",")]
    if len(names) != 2 or not all(names):
        raise ValueError(f"--heatmap {text}: expected two swept parameters, X,Y")
    if spec.axis_of(names[0]) == spec.axis_of(names[1]):
        raise ValueError(f"--heatmap {text}: {names[0]} and {names[1]} are on the same axis (a zip group)")
    leaf = [resolve_key(n).split(".")[1] for n in names]
    return leaf[0], leaf[1]


def _heatmap(spec: GridSpec, rows: list[Row], x: str, y: str, metric: str, out_dir: Path) -> Path:
    xa, ya = spec.axis_of(x), spec.axis_of(y)
    names = metric_names(rows)
    if metric not in names:
        raise ValueError(f"--by {metric}: no such numeric metric in the results ({', '.join(names)})")
    sizes = [len(a) for a in spec.axes]
    matrix = heatmap_matrix(rows, xa, ya, sizes, metric)
    labels = [[", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in step) for step in a.values] for a in spec.axes]
    others = [a.name for i, a in enumerate(spec.axes) if i not in (xa, ya)]
    xn, yn = spec.axes[xa].name, spec.axes[ya].name
    return write_heatmap(out_dir / f"heatmap_{x}_{y}.html", matrix, labels[xa], labels[ya], xn, yn, metric, others)


def _check_range(catalog: Path, instrument_id: str, start: int | None, end: int | None) -> None:
    """Quotes in the range, from the catalog's file names: every combination would fail otherwise."""
    from nautilus_trader.model.data import QuoteTick  # noqa: PLC0415

    from auction_trader.data.catalog import data_dir, file_intervals  # noqa: PLC0415

    lo, hi = -1 if start is None else start, 2**63 if end is None else end
    if not any(a <= hi and b >= lo for a, b, _ in file_intervals(data_dir(catalog, QuoteTick, instrument_id))):
        raise ValueError(f"{catalog}: no quotes for {instrument_id}" + (" in the requested range" if start is not None or end is not None else ""))


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{seconds:.1f}s"
