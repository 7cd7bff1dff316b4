"""``python -m auction_trader.dashboard``: the web dashboard over a folder of runs and grids."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from auction_trader.config import REPO_ROOT, ConfigError

TOKEN_ENV = "AUCTION_TRADER_DASHBOARD_TOKEN"

DESCRIPTION = f"""\
Serves the trading view of every backtest run and the table, heatmaps and comparisons of every
grid found under --runs (any depth), at http://HOST:PORT/. Everything, the chart library included,
comes from this process; nothing is fetched from the internet.

Binds to 127.0.0.1. Another address needs --allow-remote and a token in the environment
({TOKEN_ENV}); every request must then carry it (the login form sets a cookie)."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auction_trader.dashboard", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(REPO_ROOT / "runs"), help="folder of run and grid directories (default: runs/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument("--allow-remote", action="store_true", help=f"permit a non-loopback --host; requires {TOKEN_ENV}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE", help="amber thresholds: ambiguous_amber=0.25, heat_amber=0.03 (red comes from each run's config)")
    args = parser.parse_args(argv)

    from auction_trader.dashboard.settings import DashboardSettings  # noqa: PLC0415

    try:
        settings = DashboardSettings.from_overrides(args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    if not _loopback(args.host):
        if not args.allow_remote:
            print(f"error: --host {args.host} is reachable from other machines; add --allow-remote (and set {TOKEN_ENV}) to mean it", file=sys.stderr)
            return 1
        if token is None or len(token) < 16:
            print(f"error: --allow-remote needs a token of at least 16 characters in {TOKEN_ENV}", file=sys.stderr)
            return 1
    runs = Path(args.runs)
    if not runs.is_dir():
        print(f"error: --runs {runs}: no such folder (bash setup.sh demo writes runs/sample and runs/sample-grid)", file=sys.stderr)
        return 1

    import uvicorn  # noqa: PLC0415

    from auction_trader.dashboard.app import create_app  # noqa: PLC0415

    app = create_app(runs, settings, token)
    print(f"dashboard: http://{args.host}:{args.port}/  (runs and grids under {runs.resolve()}; Ctrl-C stops it)", flush=True)
    # No access log: paths are harmless, but a token must never reach a log line by any route.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
