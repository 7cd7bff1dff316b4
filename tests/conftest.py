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
