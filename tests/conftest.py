"""Shared test fixtures: where the real market data lives, and a catalog snapshot helper."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("AUCTION_TRADER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

warnings.filterwarnings("ignore", message=".*Pandas4Warning.*")


def shared_file(*parts: str) -> Path:
    """A file of the real-data folder, or skip the test saying where it was looked for."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real market data not found at {path} (set AUCTION_TRADER_SHARED_DATA to the folder "
            "holding binance_usdm_btcusdt/ and bybit_v5/)",
        )
    return path


@pytest.fixture
def binance_feeds() -> list[Path]:
    folder = shared_file("binance_usdm_btcusdt")
    return sorted(folder.glob("*_raw-feed.gz"))


@pytest.fixture
def ob500_zip() -> Path:
    return shared_file("bybit_v5", "bybit_XRPUSDT_2024-12-01_ob500.data.zip")


@pytest.fixture
def ob500_jsonl() -> Path:
    return shared_file("bybit_v5", "2024-12-01_XRPUSDT_ob500.data.jsonl")


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (empty when it does not exist)."""
    root = Path(root)
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# The slowest files first (per-file wall time measured with --durations on the 2-core machine,
# largest first). With ``--dist loadfile`` xdist hands files to workers in collection order, so a
# long live-node file collected last would leave one worker running alone for minutes at the end.
# Only the order changes; a file missing here runs after these, in its usual place.
SLOW_FIRST = (
    "test_live_drops.py",
    "test_live_orders.py",
    "test_positions_vs_oracle.py",
    "test_live_trader.py",
    "test_checkpoint.py",
    "test_live_paper_restart.py",
    "test_live_paper.py",
    "test_stream.py",
    "test_live_restart.py",
    "test_grid_fast.py",
    "test_features_vs_oracle.py",
    "test_dashboard_browser.py",
    "test_live_restart_down.py",
    "test_grid.py",
    "test_strategy.py",
    "test_live_ops_node.py",
    "test_signals_vs_oracle.py",
    "test_lifecycle_identity.py",
    "test_live_shadow.py",
    "test_dashboard_api.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order
