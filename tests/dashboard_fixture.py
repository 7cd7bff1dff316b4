"""A small runs folder for the dashboard tests: a 2.5-hour synthetic catalog, one backtest run and a
four-combination grid on it (30-minute windows so that the strategy trades; about 10 s in all).

Built once per test session, whichever dashboard test module asks first.
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

SHORT = {"rolling_window_minutes": 30, "warmup_minutes": 30, "spread_lookback_minutes": 30, "min_va_bins": 10, "max_daily_loss": 0.5}
GRID = """\
set:
  rolling_window_minutes: 30
  warmup_minutes: 30
  spread_lookback_minutes: 30
  min_va_bins: 10
  max_daily_loss: 0.5
grid:
  alpha_bin: [0.2, 0.4]
zip:
  - slippage_ticks_entry: [0, 2]
    slippage_ticks_exit: [0, 2]
"""
T0 = int(np.datetime64("2024-01-01T06:30", "ns").astype(np.int64))


@dataclass(frozen=True)
class Fixture:
    root: Path  # the --runs folder
    catalog: Path
    run: Path  # runs/run-a
    grid: Path  # runs/grid-a
    grid_result: object  # GridResult of the grid
    grid_spec: object


@lru_cache(maxsize=1)
def _build(base: Path) -> Fixture:
    from auction_trader.backtest.outputs import run_single  # noqa: PLC0415
    from auction_trader.config import AuctionConfig  # noqa: PLC0415
    from auction_trader.data.synth import generate, write_synthetic  # noqa: PLC0415
    from auction_trader.grid.runner import run_grid  # noqa: PLC0415
    from auction_trader.grid.spec import load_grid  # noqa: PLC0415

    catalog = base / "catalog"
    write_synthetic(catalog, generate(2.5, 11, T0), AuctionConfig())
    root = base / "runs"
    config = AuctionConfig().with_overrides([f"{k}={v}" for k, v in SHORT.items()])
    run_single(config, catalog, None, None, out_dir=root / "run-a", report=False)
    grid_file = base / "grid.yaml"
    grid_file.write_text(textwrap.dedent(GRID))
    spec = load_grid(grid_file)
    result = run_grid(spec, catalog, out_dir=root / "grid-a", workers=1, quiet=True)
    return Fixture(root, catalog, root / "run-a", root / "grid-a", result, spec)


@pytest.fixture(scope="session")
def dash(tmp_path_factory) -> Fixture:
    return _build(tmp_path_factory.getbasetemp() / "dashboard")


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
