"""``python -m tests.bybit_standin --seed 7 --port 0``: run the stand-in until SIGTERM/SIGINT.

Prints one JSON line with the URLs, the accepted API key/secret (test credentials, not secrets)
and the seed, so a test in another process can read where to connect; then serves until told to
stop. Drive it with :class:`tests.bybit_standin.remote.RemoteStandIn`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from tests.bybit_standin.server import StandIn


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bybit_standin", description="A fake Bybit v5 (REST + public/private/trade WebSockets) on 127.0.0.1, streaming the seeded synthetic BTCUSDT market.")
    p.add_argument("--seed", type=int, default=7, help="synthetic market seed (default 7)")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default 0: any free port)")
    p.add_argument("--hours", type=float, default=2.0, help="hours of market to generate before it repeats (default 2)")
    p.add_argument("--balance", default="100000", help="USDT wallet balance at start (default 100000)")
    p.add_argument("--taker-fee", default="0.00055")
    p.add_argument("--maker-fee", default="0.0002")
    p.add_argument("--funding-rate", default="0.0001")
    p.add_argument("--api-key", default="standin-api-key")
    p.add_argument("--api-secret", default="standin-api-secret")
    p.add_argument("--no-feed", action="store_true", help="serve no market data (REST and accounts only)")
    a = p.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    s = StandIn(seed=a.seed, port=a.port, hours=a.hours, balance=a.balance, taker_fee=a.taker_fee, maker_fee=a.maker_fee, funding_rate=a.funding_rate, api_key=a.api_key, api_secret=a.api_secret, feed=not a.no_feed)
    s.start()
    print(json.dumps(s.urls()), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
