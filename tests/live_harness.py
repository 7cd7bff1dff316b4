"""Helpers for the live-node tests: a pre-seeded recording, the node in a subprocess, the store.

The node runs as its own process (``run_live.py``, or ``tests/live_driver.py`` with a scripted
strategy), exactly as an operator starts it; tests talk to it through its stdout, SIGINT and the
files it writes. Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from auction_trader.config import AuctionConfig
from auction_trader.data.synth import generate, write_synthetic

REPO = Path(__file__).resolve().parent.parent
MINUTE_NS = 60_000_000_000


def preseed(data_dir: Path, minutes: int, seed: int = 3) -> tuple[int, int]:
    """A synthetic recording of the ``minutes`` before now (to the millisecond) in ``DIR/catalog``;
    returns its (start, end) ns."""
    now_ms = time.time_ns() // 1_000_000
    start_ns = (now_ms - minutes * 60_000) * 1_000_000
    market = generate(minutes / 60, seed, start_ns)
    write_synthetic(Path(data_dir) / "catalog", market, AuctionConfig())
    return start_ns, now_ms * 1_000_000


def endpoint_args(standin) -> list[str]:
    return ["--rest-url", standin.rest_url, "--public-ws-url", standin.public_ws_url, "--private-ws-url", standin.private_ws_url, "--trade-ws-url", standin.trade_ws_url]


def set_args(settings: Iterable[str]) -> list[str]:
    """``--set name=value`` for each of ``settings``."""
    return [a for s in settings for a in ("--set", s)]


@pytest.fixture
def standin():
    """The Bybit stand-in on a free port of 127.0.0.1, streaming its synthetic market (seed 7);
    stopped afterwards. Import it into a test module to use it."""
    standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")
    s = standin_mod.StandIn(seed=7, port=0).start()
    try:
        yield s
    finally:
        s.stop()


class NodeProcess:
    """``run_live.py`` as a child process, its output collected; ``scripted``: through the scripted
    driver (tests/live_driver.py); ``module``: through that test driver module instead."""

    def __init__(self, args: list[str], env: dict | None = None, scripted: bool = False, module: str | None = None) -> None:
        module = module or ("tests.live_driver" if scripted else None)
        cmd = [sys.executable, "-m", module, *args] if module else [sys.executable, "run_live.py", *args]
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, count: int = 1) -> re.Match | None:
        """The ``count``-th line matching ``pattern`` (from the start of the output), or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        found = 0
        while time.monotonic() < deadline:
            lines = self.lines
            for line in lines[seen:]:
                m = rx.search(line)
                if m:
                    found += 1
                    if found == count:
                        return m
            seen = len(lines)
            if self.proc.poll() is not None and seen == len(self.lines):
                return None
            time.sleep(0.1)
        return None

    def kill(self) -> int:
        """SIGKILL (``kill -9``: no shutdown code runs); returns the wall time after it, in ms."""
        self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        return time.time_ns() // 1_000_000

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGINT) -> int:
        """SIGINT (or ``sig``), then wait (bounded); kills it if it does not stop and fails loudly."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"the node did not stop within {timeout} s of SIGINT\n{self.output[-3000:]}") from None
        self._reader.join(5)
        return rc


def until(fn, timeout: float, what: str, node: NodeProcess, standin=None):
    """``fn()``'s first truthy value within ``timeout`` s, else a failure showing the node's recent
    output and, with ``standin``, the venue's open orders, position and latest requests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    venue = f"\nvenue open orders: {standin.open_orders()}\nposition: {standin.position()}\nrequests: {standin.request_log()[-30:]}" if standin is not None else ""
    raise AssertionError(f"timed out waiting for {what}{venue}\n{node.output[-4000:]}")


def checkpoint(data_dir: Path) -> dict:
    """The node's stored checkpoint (``{}`` before the first one)."""
    from auction_trader.live.store import StoreReader  # noqa: PLC0415

    with StoreReader(data_dir) as r:
        return r.checkpoint() or {}


def rows(data_dir: Path, table: str) -> list[dict]:
    db = sqlite3.connect(f"file:{Path(data_dir) / 'execution.db'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        db.close()


def minute_ms_after(seconds: float) -> int:
    """ts_min (ms) of the minute holding now + ``seconds``: its close is the next boundary after that."""
    t = time.time_ns() + int(seconds * 1e9)
    return t // MINUTE_NS * MINUTE_NS // 1_000_000
