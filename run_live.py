#!/usr/bin/env python
"""Run the auction strategy live on Bybit v5 (dry-run, paper, shadow or live), or control a running node.

    python run_live.py --paper                      # Bybit market data, the backtest's simulated venue
    python run_live.py --paper --dashboard          # ... and its web dashboard (URL printed at start)
    python run_live.py status|activate|deactivate|resolve [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from auction_trader.config import ConfigError, add_config_arguments, config_from_args

CONTROL_COMMANDS = ("status", "activate", "deactivate", "resolve")

DESCRIPTION = """\
Starts a Nautilus TradingNode on Bybit v5 market data (orderbook.1 quotes, publicTrade trades) for
BTCUSDT with the same AuctionStrategy and configuration as the backtest. Modes:
  --dry-run  features and signals every minute, decisions logged, no order sent anywhere
  --paper    orders go to a simulated venue built exactly like the backtest's (fill model,
             slippage, fees, margin, order gate at max_leverage, next-tick latency, funding at
             the rate Bybit publishes): the same ticks through run_backtest.py give the same fills
  --shadow   paper execution, plus the same decisions sized on the real account (read-only REST)
             and compared every minute; a difference raises a shadow_divergence alert; no orders
  --live     real orders through Nautilus's Bybit execution client (leverage max_leverage, one-way,
             cross); needs API keys and a typed confirmation (or --yes-i-mean-live)

Every tick received is recorded into DATA_DIR/catalog (a Nautilus ParquetDataCatalog, kept 48 h).
At start the node replays the recorded last rolling_window_minutes with entries gated off and trades
only after the last warmup_minutes are all covered; on a fresh machine it therefore observes for
warmup_minutes (240 by default) first. With require_manual_activation (default) it places no order
until `run_live.py activate`. One progress line per minute; SIGINT/SIGTERM stops cleanly (exit 0)
and leaves venue orders as they are.

Keys come only from the environment, never from files or flags, and are never printed:
  BYBIT_API_KEY / BYBIT_API_SECRET, or BYBIT_API_KEY_DEMO / BYBIT_API_SECRET_DEMO with
  --environment demo, BYBIT_API_KEY_TESTNET / BYBIT_API_SECRET_TESTNET with --environment testnet.
Needed for --live and --shadow; --dry-run and --paper use public data only.

With --dashboard the node also serves its web dashboard (python -m auction_trader.dashboard's trading
view of this data dir, with the activate / deactivate / resolve buttons) from its own process, on
127.0.0.1:8050 by default; the URL is printed at start, and it stops with the node. Another
--dashboard-host needs AUCTION_TRADER_DASHBOARD_TOKEN (16+ characters) on every request.

Control a running node (same --data-dir): status, activate, deactivate, resolve."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_live.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", dest="mode", action="store_const", const="dry-run", help="signals only, no orders anywhere")
    mode.add_argument("--paper", dest="mode", action="store_const", const="paper", help="Bybit data, the backtest's simulated venue")
    mode.add_argument("--shadow", dest="mode", action="store_const", const="shadow", help="paper execution compared with the real account; no orders")
    mode.add_argument("--live", dest="mode", action="store_const", const="live", help="real orders (keys, confirmation, manual activation)")
    add_config_arguments(parser)
    parser.add_argument("--data-dir", default="live", type=Path, help="recording (DIR/catalog) and store (DIR/execution.db); default live/")
    parser.add_argument("--environment", choices=("mainnet", "demo", "testnet"), default="mainnet", help="Bybit environment (default mainnet; demo = Bybit's demo trading on mainnet data)")
    parser.add_argument("--rest-url", help="Bybit REST base URL (default: the environment's)")
    parser.add_argument("--public-ws-url", help="public WebSocket URL, e.g. ws://127.0.0.1:PORT/v5/public/linear")
    parser.add_argument("--private-ws-url", help="private WebSocket URL (live)")
    parser.add_argument("--trade-ws-url", help="trade WebSocket URL (live, MAINNET/TESTNET orders)")
    parser.add_argument("--warmup-catalog", type=Path, help="a catalog (e.g. imported Bybit history) supplying warm-up ticks before the recording")
    parser.add_argument("--yes-i-mean-live", action="store_true", help="skip the typed confirmation of --live (scripted use)")
    parser.add_argument("--log-level", default="WARNING", help="Nautilus log level (default WARNING)")
    # -- dashboard (the web view of this node, served by the node's process) --
    parser.add_argument("--dashboard", action="store_true", help="also serve the web dashboard of this node (its URL is printed at start)")
    parser.add_argument("--dashboard-host", help="dashboard address (default 127.0.0.1; another needs AUCTION_TRADER_DASHBOARD_TOKEN, 16+ characters)")
    parser.add_argument("--dashboard-port", type=int, help="dashboard port (default 8050; 0 picks a free one)")
    return parser


def dashboard_options(args: argparse.Namespace):
    """``--dashboard``'s options, or an error message: off loopback it needs the token."""
    from auction_trader.dashboard.__main__ import TOKEN_ENV  # noqa: PLC0415
    from auction_trader.dashboard.app import loopback  # noqa: PLC0415
    from auction_trader.live.node import DashboardOptions  # noqa: PLC0415

    host = args.dashboard_host or DashboardOptions.host
    port = DashboardOptions.port if args.dashboard_port is None else args.dashboard_port
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    if not loopback(host) and (token is None or len(token) < 16):
        return f"--dashboard-host {host} is reachable from other machines: set {TOKEN_ENV} (16+ characters); every request must then carry it"
    return DashboardOptions(host, port, token)


def main(argv: list[str] | None = None, strategy_factory=None) -> int:
    """``strategy_factory(config, hooks)``: another strategy than AuctionStrategy (tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in CONTROL_COMMANDS:
        from auction_trader.live.control import cli  # noqa: PLC0415

        return cli(argv)
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from auction_trader.live.node import Endpoints, LiveNode, NodeOptions, StartError, api_keys  # noqa: PLC0415

    dashboard = None
    if not args.dashboard and (args.dashboard_host is not None or args.dashboard_port is not None):
        print("error: --dashboard-host / --dashboard-port need --dashboard", file=sys.stderr)
        return 1
    if args.dashboard:
        dashboard = dashboard_options(args)
        if isinstance(dashboard, str):
            print(f"error: {dashboard}", file=sys.stderr)
            return 1
    keys = api_keys(args.environment)
    if args.mode in ("live", "shadow") and keys is None:
        suffix = {"mainnet": "", "demo": "_DEMO", "testnet": "_TESTNET"}[args.environment]
        print(f"error: --{args.mode} needs BYBIT_API_KEY{suffix} and BYBIT_API_SECRET{suffix} (or BYBIT_API_KEY / BYBIT_API_SECRET) in the environment", file=sys.stderr)
        return 1
    if args.mode == "live" and not args.yes_i_mean_live:
        if not sys.stdin.isatty():
            print("error: --live needs a typed confirmation on a terminal, or --yes-i-mean-live", file=sys.stderr)
            return 1
        typed = input(f"Real orders on Bybit {args.environment.upper()} for {config.market.instrument}. Type LIVE to continue: ")
        if typed.strip() != "LIVE":
            print("not confirmed; nothing started", file=sys.stderr)
            return 1
    endpoints = Endpoints(args.environment, args.rest_url, args.public_ws_url, args.private_ws_url, args.trade_ws_url)
    options = NodeOptions(
        mode=args.mode,
        data_dir=args.data_dir,
        endpoints=endpoints,
        warmup_catalog=args.warmup_catalog,
        api_key=keys[0] if keys and args.mode in ("live", "shadow") else None,
        api_secret=keys[1] if keys and args.mode in ("live", "shadow") else None,
        log_level=args.log_level,
        dashboard=dashboard,
    )
    try:
        return LiveNode(config, options, strategy_factory=strategy_factory).run()
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
