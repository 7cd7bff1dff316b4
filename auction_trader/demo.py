"""The README's first command: build the embedded default data and run the main job on it.

1. ``catalogs/sample``: the synthetic market, 10 hours from 2024-01-01 00:00 UTC, seed 42 (enough
   for the 4-hour warm-up and six hours of setups); generated once.
2. A backtest of AuctionStrategy with ``configs/default.yaml`` on it, into ``runs/sample/``, and its
   summary table. The run is skipped when its inputs - configuration, catalog and the code itself -
   are unchanged since the last one; the stored summary is printed instead.
3. The grid search ``configs/grid.yaml`` (as shipped: ``--config``/``--set`` apply to step 2) on the
   sample, into ``runs/sample-grid/``, and its table of the best combinations with their
   neighbours. With grid, catalog and code unchanged since the last demo it resumes: every
   combination is stored already, so the table comes at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from auction_trader.config import REPO_ROOT, ConfigError, add_config_arguments, config_from_args
from auction_trader.data.errors import DataError

SAMPLE_CATALOG = REPO_ROOT / "catalogs" / "sample"
SAMPLE_RUN = REPO_ROOT / "runs" / "sample"
SAMPLE_GRID = REPO_ROOT / "configs" / "grid.yaml"
SAMPLE_GRID_RUN = REPO_ROOT / "runs" / "sample-grid"
SAMPLE_HOURS = 10.0
SAMPLE_SEED = 42
SAMPLE_START = "2024-01-01T00:00:00Z"
STAMP = ".demo-inputs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash setup.sh demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        from auction_trader.data.synth import synth_command  # noqa: PLC0415

        print(f"[demo] synthetic sample market -> {SAMPLE_CATALOG.relative_to(REPO_ROOT)}")
        code = synth_command(SAMPLE_CATALOG, hours=SAMPLE_HOURS, seed=SAMPLE_SEED, start=SAMPLE_START, overwrite=True, config=config)
        if code:
            return code
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    code = _backtest(args, config)
    code = code or _grid()
    if code == 0:
        print(f"\n[demo] look at it in the browser: .venv/bin/python -m auction_trader.dashboard --runs {SAMPLE_RUN.parent.relative_to(REPO_ROOT)}"
              f"  then open http://127.0.0.1:8050/run/{SAMPLE_RUN.name} (and /grid/{SAMPLE_GRID_RUN.name})")
    return code


def _backtest(args: argparse.Namespace, config) -> int:
    key = _fingerprint(json.dumps(config.model_dump(), sort_keys=True, default=str).encode())
    stamp = SAMPLE_RUN / STAMP
    print(f"\n[demo] backtest of AuctionStrategy on the sample -> {SAMPLE_RUN.relative_to(REPO_ROOT)}")
    if stamp.exists() and stamp.read_text() == key and (SAMPLE_RUN / "metrics.json").exists():
        from auction_trader.backtest.report import summary_table  # noqa: PLC0415

        print("(inputs and code unchanged since the last run: its results are current)\n")
        print(summary_table(json.loads((SAMPLE_RUN / "metrics.json").read_text())))
        return 0
    from auction_trader.backtest.cli import main as backtest  # noqa: PLC0415

    argv = [args.config, "--catalog", str(SAMPLE_CATALOG), "--out", str(SAMPLE_RUN)]
    for item in args.overrides:
        argv += ["--set", item]
    code = backtest(argv)
    if code == 0:
        stamp.write_text(key)
    return code


def _grid() -> int:
    """The shipped grid on the sample; resumed (instant) when nothing it depends on changed."""
    from auction_trader.backtest.cli import main as backtest  # noqa: PLC0415
    from auction_trader.grid.spec import load_grid  # noqa: PLC0415

    print(f"\n[demo] grid search {SAMPLE_GRID.relative_to(REPO_ROOT)} on the sample -> {SAMPLE_GRID_RUN.relative_to(REPO_ROOT)}")
    spec = load_grid(SAMPLE_GRID)
    inputs = SAMPLE_GRID.read_bytes() + (spec.base_path.read_bytes() if spec.base_path else b"")
    key = _fingerprint(inputs)
    stamp = SAMPLE_GRID_RUN / STAMP
    current = stamp.exists() and stamp.read_text() == key
    if current:
        print("(grid, catalog and code unchanged since the last run: its stored results are current)")
    argv = [str(SAMPLE_GRID), "--catalog", str(SAMPLE_CATALOG), "--out", str(SAMPLE_GRID_RUN)] + (["--resume"] if current else [])
    code = backtest(argv)
    if code == 0:
        stamp.write_text(key)
    return code


def _fingerprint(inputs: bytes) -> str:
    """What a run depends on: its inputs, the catalog's files and every source file."""
    digest = hashlib.sha256(inputs)
    roots = [SAMPLE_CATALOG, REPO_ROOT / "auction_trader", REPO_ROOT / "rust_indicators" / "src"]
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes() if path.suffix in (".py", ".rs", ".json") else str(path.stat().st_size).encode())
    return digest.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
