"""``python -m auction_trader.dashboard``: the web dashboard over a folder of runs and grids."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from auction_trader.config import REPO_ROOT, ConfigError
from auction_trader.dashboard.app import loopback

TOKEN_ENV = "AUCTION_TRADER_DASHBOARD_TOKEN"

DESCRIPTION = f"""\
Serves the trading view of every backtest run and the table, heatmaps and comparisons of every
grid found under --runs (any depth), at http://HOST:PORT/, and with --data-dir the trading view of a
live node (its store DIR/execution.db and recording DIR/catalog) at /run/live, updated as minutes
close, with its activate / deactivate / resolve controls. Everything, the chart library included,
comes from this process; nothing is fetched from the internet.

Binds to 127.0.0.1. Another address needs --allow-remote and a token in the environment
({TOKEN_ENV}); every request must then carry it (the login form sets a cookie)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auction_trader.dashboard", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=None, help="folder of run and grid directories (default: runs/; with --data-dir only if it exists)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="a live node's data dir (DIR/execution.db, DIR/catalog): its view at /run/live")
    parser.add_argument("--config", default=None, metavar="FILE", help="with --data-dir: the node's configuration file (its windows and thresholds; default: the built-in defaults)")
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
    if not loopback(args.host):
        if not args.allow_remote:
            print(f"error: --host {args.host} is reachable from other machines; add --allow-remote (and set {TOKEN_ENV}) to mean it", file=sys.stderr)
            return 1
        if token is None or len(token) < 16:
            print(f"error: --allow-remote needs a token of at least 16 characters in {TOKEN_ENV}", file=sys.stderr)
            return 1
    runs: Path | None = Path(args.runs) if args.runs else REPO_ROOT / "runs"
    if not runs.is_dir():
        if args.runs or not args.data_dir:
            print(f"error: --runs {runs}: no such folder (bash setup.sh demo writes runs/sample and runs/sample-grid)", file=sys.stderr)
            return 1
        runs = None
    live = None
    if args.data_dir:
        data_dir = Path(args.data_dir)
        if not data_dir.is_dir():
            print(f"error: --data-dir {data_dir}: no such folder (the live node's data dir, with execution.db and catalog/)", file=sys.stderr)
            return 1
        from auction_trader.config import load_config  # noqa: PLC0415
        from auction_trader.dashboard.live import LiveSource  # noqa: PLC0415

        try:
            config = load_config(args.config)
        except (ConfigError, OSError) as exc:
            print(f"error: --config: {exc}", file=sys.stderr)
            return 1
        live = LiveSource(data_dir, config, settings)

    import uvicorn  # noqa: PLC0415

    from auction_trader.dashboard.app import create_app  # noqa: PLC0415

    app = create_app(runs, settings, token, live=live)
    where = [f"runs and grids under {runs.resolve()}"] if runs else []
    if live is not None:
        where.append(f"live node {live.path.resolve()} at http://{args.host}:{args.port}/run/{live.key}")
    print(f"dashboard: http://{args.host}:{args.port}/  ({'; '.join(where)}; Ctrl-C stops it)", flush=True)
    # No access log: paths are harmless, but a token must never reach a log line by any route.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
