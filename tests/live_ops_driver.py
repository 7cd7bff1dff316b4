"""``python -m tests.live_ops_driver <run_live.py arguments>``: run_live.py with the live node's
reconciliation every ``AUCTION_TEST_RECONCILE_S`` seconds (default 30 in the node; tests cannot
wait that long for two confirmations)."""

from __future__ import annotations

import os
import sys

import auction_trader.live.node as live_node
import run_live

if __name__ == "__main__":
    live_node.RECONCILE_S = float(os.environ.get("AUCTION_TEST_RECONCILE_S", live_node.RECONCILE_S))
    sys.exit(run_live.main(sys.argv[1:]))
