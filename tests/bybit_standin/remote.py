"""Drive a stand-in running in another process (``python -m tests.bybit_standin``).

:class:`RemoteStandIn` has the controls and read-backs of :class:`~tests.bybit_standin.server.StandIn`
as methods that POST to the server's ``/__control/<name>`` path. :func:`launch` starts the CLI as a
subprocess, reads its one-line JSON of URLs, and stops it (SIGTERM, then kill) on exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]


class RemoteStandIn:
    """Controls of a stand-in at ``rest_url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, rest_url: str, timeout: float = 10.0) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.returncode: int | None = None  # set by launch() once the process has exited
        self.timeout = timeout
        info = self._call("urls")
        self.public_ws_url, self.private_ws_url, self.trade_ws_url = info["public_ws_url"], info["private_ws_url"], info["trade_ws_url"]
        self.api_key, self.api_secret, self.seed = info["api_key"], info["api_secret"], info["seed"]

    def _call(self, name: str, **args: Any) -> Any:
        req = urllib.request.Request(f"{self.rest_url}/__control/{name}", data=json.dumps(args).encode(), headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read())["result"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"stand-in control {name}: {json.loads(e.read()).get('error')}") from None

    def drop(self, kind: str, times: int = 1, after_ms: int = 300) -> int:
        return self._call("drop", kind=kind, times=times, after_ms=after_ms)

    def freeze(self, frozen: bool = True) -> None:
        self._call("freeze", frozen=frozen)

    def fail_next(self, n: int, code: int = 10006, scope: str = "orders") -> None:
        self._call("fail_next", n=n, code=code, scope=scope)

    def delay_acks(self, ms: int, frames_first: bool = False) -> None:
        self._call("delay_acks", ms=ms, frames_first=frames_first)

    def push_quote(self, bid: str, ask: str, bid_size: str = "1.000", ask_size: str = "1.000") -> None:
        self._call("push_quote", bid=str(bid), ask=str(ask), bid_size=str(bid_size), ask_size=str(ask_size))

    def push_trade(self, price: str, size: str = "0.001", side: str = "Buy") -> None:
        self._call("push_trade", price=str(price), size=str(size), side=side)

    def partial_fills(self, max_qty: str | None) -> None:
        self._call("partial_fills", max_qty=None if max_qty is None else str(max_qty))

    def set_position(self, size: str | float, avg_price: str | float | None = None) -> dict:
        return self._call("set_position", size=str(size), avg_price=None if avg_price is None else str(avg_price))

    seed_position = set_position

    def seed_order(self, **args: Any) -> dict:
        return self._call("seed_order", **args)

    def settle_funding(self, rate: str | None = None) -> dict:
        return self._call("settle_funding", rate=rate)

    def orders(self) -> list[dict]:
        return self._call("orders")

    def open_orders(self) -> list[dict]:
        return self._call("open_orders")

    def fills(self) -> list[dict]:
        return self._call("fills")

    def position(self) -> dict:
        return self._call("position")

    def wallet(self) -> dict:
        return self._call("wallet")

    def orders_received(self) -> int:
        return self._call("orders_received")

    def book(self) -> dict:
        return self._call("book")

    def stats(self) -> dict:
        return self._call("stats")

    def request_log(self) -> list[list[str]]:
        return self._call("request_log")

    def order_requests(self) -> list[dict]:
        return self._call("order_requests")


@contextmanager
def launch(seed: int = 7, extra: list[str] | None = None, timeout: float = 60.0) -> Iterator[RemoteStandIn]:
    """Run ``python -m tests.bybit_standin`` in a subprocess for the ``with`` block."""
    errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty server can never block on it
    proc = subprocess.Popen([sys.executable, "-m", "tests.bybit_standin", "--seed", str(seed), "--port", "0", *(extra or [])], cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    remote: RemoteStandIn | None = None
    try:
        deadline = time.monotonic() + timeout
        line = ""
        while not line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline().strip()
        if not line:
            errors.seek(0)
            raise RuntimeError(f"stand-in did not start: {errors.read()[-2000:] if proc.poll() is not None else 'no URL line in time'}")
        remote = RemoteStandIn(json.loads(line)["rest_url"])
        yield remote
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        proc.stdout.close()
        errors.close()
    if remote is not None:
        remote.returncode = proc.returncode  # 0: it stopped cleanly on SIGTERM
