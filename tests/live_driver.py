"""``python -m tests.live_driver <run_live.py arguments>``: run_live.py with the scripted strategy of
:mod:`tests.live_script` (``AUCTION_TEST_SCRIPT``) instead of AuctionStrategy's own setups."""

from __future__ import annotations

import sys

import run_live
from tests.live_script import factory_from_env

if __name__ == "__main__":
    sys.exit(run_live.main(sys.argv[1:], strategy_factory=factory_from_env()))
