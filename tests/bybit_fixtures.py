"""Synthetic Bybit daily archives in the exact published formats, and a local server for them.

Why this exists: the downloader and the Bybit importers must be tested end to end without the
internet, against files that look like the real ones (same names, headers, number formats, line
endings, one-member zip), with the expected catalog contents worked out here independently -
straight from the generated rows and messages, not by the code under test.

* :func:`make_day` builds one UTC day's ``BTCUSDT{day}.csv.gz`` trade dump and
  ``{day}_BTCUSDT_ob500.data.zip`` order-book archive (seeded, byte-for-byte deterministic), with
  the expected trades and L1 rows.
* :class:`ArchiveServer` serves such files on 127.0.0.1 at Bybit's URL paths, with Range/If-Range,
  ETag/Last-Modified, and switches for cut-off bodies, 404s, corrupt bodies and 5xx errors.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import socket
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import formatdate
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SYMBOL = "BTCUSDT"
TRADES_HEADER = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"
BUYER, SELLER = 1, 2  # Nautilus AggressorSide codes
MS = 1_000_000


def trades_path(day: date, symbol: str = SYMBOL) -> str:
    """URL path of a day's trade dump, as on public.bybit.com."""
    return f"/trading/{symbol}/{symbol}{day.isoformat()}.csv.gz"


def ob500_path(day: date, symbol: str = SYMBOL) -> str:
    """URL path of a day's ob500 archive, as on quote-saver.bycsi.com."""
    return f"/orderbook/linear/{symbol}/{day.isoformat()}_{symbol}_ob500.data.zip"


@dataclass(frozen=True)
class Trade:
    """An expected trade in exact units: price in 0.1 USDT ticks, size in 0.001 BTC."""

    ts_ns: int
    price: int
    size: int
    aggressor: int  # 1 buyer, 2 seller
    trade_id: str


@dataclass(frozen=True)
class L1:
    """An expected top of book after a message, in exact units."""

    ts_ns: int
    bid: int
    bid_size: int
    ask: int
    ask_size: int


@dataclass
class DayFixture:
    day: date
    trades_gz: bytes
    ob_zip: bytes
    trades: list[Trade]  # ascending by time, as the catalog should hold them
    l1: list[L1]  # one row per message that changed the top of book
    messages: list[dict]  # the ob500 messages, in file order

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Both archives under their Bybit file names, for tests that import files directly."""
        directory.mkdir(parents=True, exist_ok=True)
        t = directory / trades_path(self.day).rsplit("/", 1)[1]
        o = directory / ob500_path(self.day).rsplit("/", 1)[1]
        t.write_bytes(self.trades_gz)
        o.write_bytes(self.ob_zip)
        return t, o


# -- order book ----------------------------------------------------------------------------------


def _price(units: int) -> str:
    return f"{units / 10:.2f}"  # the ob500 archives print BTCUSDT prices with two decimals


def _qty(units: int) -> str:
    return f"{units / 1000:.3f}"


def _lot(rng: random.Random) -> int:
    """A resting size in 0.001 BTC: mostly small, sometimes large."""
    return min(50_000, max(1, int(rng.paretovariate(1.2) * rng.choice((1, 5, 20, 100)))))


def _levels(side: dict[int, int], descending: bool) -> list[list[str]]:
    return [[_price(p), _qty(s)] for p, s in sorted(side.items(), reverse=descending)]


def _snapshot_book(rng: random.Random, mid: int, depth: int) -> tuple[dict[int, int], dict[int, int]]:
    bids, asks = {}, {}
    p = mid
    while len(bids) < depth:
        bids[p] = _lot(rng)
        p -= 1 + (rng.random() < 0.2)  # a few empty ticks
    p = mid + 1
    while len(asks) < depth:
        asks[p] = _lot(rng)
        p += 1 + (rng.random() < 0.2)
    return bids, asks


def _delta(rng: random.Random, bids: dict[int, int], asks: dict[int, int]) -> tuple[dict[int, int], dict[int, int]]:
    """Random changes to the book (new size per price, 0 = delete) that never cross it."""
    before = (dict(bids), dict(asks))
    for side in (bids, asks):
        for p in rng.sample(sorted(side), k=min(len(side), rng.randint(0, 4))):
            side[p] = _lot(rng)  # resize deep levels
        if rng.random() < 0.4:
            best = max(side) if side is bids else min(side)
            side[best] = _lot(rng)  # resize the top
    if rng.random() < 0.15 and len(bids) > 15:
        del bids[max(bids)]  # the bid side gives way
    if rng.random() < 0.15 and len(asks) > 15:
        del asks[min(asks)]
    spread = min(asks) - max(bids)
    if spread > 1 and (rng.random() < 0.4 or spread > 6):
        p = rng.randint(max(bids) + 1, min(asks) - 1)  # a new level inside the spread, either side
        (bids if rng.random() < 0.5 else asks)[p] = _lot(rng)
    for side, deeper in ((bids, -1), (asks, 1)):
        if rng.random() < 0.3 or len(side) < 20:
            worst = min(side) if side is bids else max(side)
            side[worst + deeper * rng.randint(1, 3)] = _lot(rng)
        if rng.random() < 0.3 and len(side) > 20:
            del side[min(side) if side is bids else max(side)]
    assert max(bids) < min(asks), "the generator crossed the book"
    changes = []
    for side, old in zip((bids, asks), before):
        diff = {p: side.get(p, 0) for p in set(side) | set(old) if side.get(p, 0) != old.get(p, 0)}
        if rng.random() < 0.05 and side:
            p = rng.choice(sorted(side))
            diff[p] = side[p]  # Bybit also repeats unchanged levels now and then
        changes.append(diff)
    return changes[0], changes[1]


def _message(kind: str, ts: int, cts: int, bids: dict, asks: dict, u: int, seq: int, symbol: str) -> dict:
    return {
        "topic": f"orderbook.500.{symbol}",
        "type": kind,
        "ts": ts,
        "data": {"s": symbol, "b": _levels(bids, True), "a": _levels(asks, False), "u": u, "seq": seq},
        "cts": cts,
    }


def _book_messages(rng: random.Random, day_ms: int, steps: int, mid: int, symbol: str) -> tuple[list[dict], list[tuple[int, dict, dict]]]:
    """ob500 messages every 100 ms (a snapshot, deltas, one mid-day re-snapshot) and the book after each."""
    bids, asks = _snapshot_book(rng, mid, 40)
    messages, states = [], []
    seq = 130_000_000_000 + rng.randint(0, 10**6)
    for i in range(steps):
        ts = day_ms + 150 + 100 * i
        cts = ts - rng.randint(2, 90)
        seq += rng.randint(1, 400)
        if i == 0:
            messages.append(_message("snapshot", ts, cts, bids, asks, 1 + i, seq, symbol))
        elif i == steps // 2:
            _delta(rng, bids, asks)  # a re-snapshot replaces the book with its current state
            messages.append(_message("snapshot", ts, cts, bids, asks, 1 + i, seq, symbol))
        else:
            db, da = _delta(rng, bids, asks)
            messages.append(_message("delta", ts, cts, db, da, 1 + i, seq, symbol))
        states.append((cts, dict(bids), dict(asks)))
    return messages, states


def expected_l1(messages: list[dict]) -> list[L1]:
    """Replay the messages as documented (snapshot replaces, size 0 deletes) and keep each new top."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    out: list[L1] = []
    for m in messages:
        if m["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for side, key in ((bids, "b"), (asks, "a")):
            for price, size in m["data"][key]:
                if Decimal(size) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(size)
        bid, ask = max(bids), min(asks)
        row = L1(m["cts"] * MS, int(bid * 10), int(bids[bid] * 1000), int(ask * 10), int(asks[ask] * 1000))
        if not out or (row.bid, row.bid_size, row.ask, row.ask_size) != (out[-1].bid, out[-1].bid_size, out[-1].ask, out[-1].ask_size):
            out.append(row)
    return out


def _zip(day: date, messages: list[dict], symbol: str) -> bytes:
    text = "".join(json.dumps(m, separators=(",", ":")) + "\r\n" for m in messages)  # CRLF, as Bybit's files
    buffer = io.BytesIO()
    info = zipfile.ZipInfo(f"{day.isoformat()}_{symbol}_ob500.data", date_time=(day.year, day.month, day.day, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, text.encode())
    return buffer.getvalue()


# -- trades -------------------------------------------------------------------------------------


def _ts_text(tick: int) -> str:
    """100 µs ticks -> Bybit's float seconds ('1704067200.1791'; trailing zeros dropped like a float)."""
    whole, frac = divmod(tick, 10_000)
    return f"{whole}.{frac:04d}".rstrip("0").rstrip(".") + (".0" if frac == 0 else "")


def _trades(rng: random.Random, states: list[tuple[int, dict, dict]]) -> list[tuple[int, Trade]]:
    """Trades against the book of the moment: buys lift the ask, sells hit the bid, some sweep levels."""
    out: list[tuple[int, Trade]] = []
    for i, (cts, bids, asks) in enumerate(states):
        end = states[i + 1][0] if i + 1 < len(states) else cts + 100
        for _ in range(rng.choice((0, 0, 1, 1, 2, 2, 3, 4, 5))):
            tick = rng.randint(cts * 10, end * 10 - 1)
            buy = rng.random() < 0.5
            book = sorted(asks) if buy else sorted(bids, reverse=True)
            for level in book[: 1 if rng.random() < 0.9 else rng.randint(2, 4)]:  # a sweep: same time, next levels
                size = min(_lot(rng), 5_000)
                out.append((tick, Trade(tick * 100_000, level, size, BUYER if buy else SELLER, str(uuid.UUID(int=rng.getrandbits(128), version=4)))))
    out.sort(key=lambda t: t[0])  # stable: a sweep keeps its order
    return out


def _tick_direction(prices: list[int]) -> list[str]:
    out, last, last_dir = [], None, "ZeroPlusTick"
    for p in prices:
        if last is None or p == last:
            d = last_dir if last_dir.startswith("Zero") else ("ZeroPlusTick" if last_dir == "PlusTick" else "ZeroMinusTick")
        else:
            d = "PlusTick" if p > last else "MinusTick"
        out.append(d)
        last, last_dir = p, d
    return out


def _trades_gz(rows: list[tuple[int, Trade]], symbol: str, newest_first: bool, rpi: bool) -> bytes:
    header = TRADES_HEADER + (",RPI" if rpi else "")
    directions = _tick_direction([t.price for _, t in rows])
    lines = [header]
    body = []
    for (tick, t), direction in zip(rows, directions):
        price, size = Decimal(t.price) / 10, Decimal(t.size) / 1000
        notional = price * size
        line = (
            f"{_ts_text(tick)},{symbol},{'Buy' if t.aggressor == BUYER else 'Sell'},{size:.3f},{price:.1f},{direction},"
            f"{t.trade_id},{float(notional * 10**8)!r},{size:.3f},{float(notional)!r}"
        )
        if rpi:
            line += "," + ("1" if (t.price + t.size) % 17 == 0 else "0")
        body.append(line)
    lines += reversed(body) if newest_first else body
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


# -- one day ------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def make_day(
    day: date,
    seed: int,
    steps: int = 1500,
    mid_price: float = 42_000.0,
    newest_first: bool = False,
    rpi: bool = False,
    symbol: str = SYMBOL,
) -> DayFixture:
    """One UTC day's archives: ``steps`` ob500 messages (100 ms apart from midnight) and the trades
    between them (about two per message). Same arguments, same bytes."""
    rng = random.Random(f"{day}:{seed}")
    day_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    messages, states = _book_messages(rng, day_ms, steps, round(mid_price * 10), symbol)
    trades = _trades(rng, states)
    return DayFixture(
        day=day,
        trades_gz=_trades_gz(trades, symbol, newest_first, rpi),
        ob_zip=_zip(day, messages, symbol),
        trades=[t for _, t in trades],
        l1=expected_l1(messages),
        messages=messages,
    )


# -- the server ---------------------------------------------------------------------------------


@dataclass
class Served:
    body: bytes
    etag: str
    last_modified: str


@dataclass
class Hit:
    """One request as the server saw it."""

    path: str
    range: str | None
    if_range: str | None
    user_agent: str | None
    status: int = 0


@dataclass
class _Switches:
    cut: dict[str, int] = field(default_factory=dict)  # path -> cut the next body after N bytes
    corrupt: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # path -> (how, times left or None = always)
    errors: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (status, times left)
    missing: set[str] = field(default_factory=set)


def corrupted(body: bytes, how: str) -> bytes:
    """A damaged copy: 'flip' inverts 16 bytes in the middle (same size), 'truncate' drops the last third."""
    if how == "flip":
        mid = len(body) // 2
        return body[:mid] + bytes(b ^ 0xFF for b in body[mid : mid + 16]) + body[mid + 16 :]
    if how == "truncate":
        return body[: len(body) * 2 // 3]
    raise ValueError(how)


class ArchiveServer:
    """Bybit's two hosts on one local port: ``{url}/trading/...`` and ``{url}/orderbook/linear/...``.

    Use as a context manager. Every switch is per URL path.
    """

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.hits: list[Hit] = []
        self.switches = _Switches()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ArchiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    # -- content ---------------------------------------------------------------------------------

    def put(self, path: str, body: bytes, modified: int = 1_704_153_600) -> None:
        """Serve ``body`` at ``path`` (replacing what was there: new ETag and Last-Modified)."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        with self.lock:
            self.files[path] = Served(body, etag, formatdate(modified, usegmt=True))

    def put_day(self, fixture: DayFixture) -> None:
        self.put(trades_path(fixture.day), fixture.trades_gz)
        self.put(ob500_path(fixture.day), fixture.ob_zip)

    # -- switches -------------------------------------------------------------------------------

    def cut_once(self, path: str, after: int) -> None:
        """The next response for ``path`` closes the connection after ``after`` body bytes."""
        with self.lock:
            self.switches.cut[path] = after

    def corrupt(self, path: str, how: str = "flip", times: int | None = 1) -> None:
        """Serve a damaged body ``times`` times (None: always)."""
        with self.lock:
            self.switches.corrupt[path] = (how, times)

    def fail(self, path: str, status: int = 503, times: int = 1) -> None:
        with self.lock:
            self.switches.errors[path] = (status, times)

    def make_missing(self, path: str) -> None:
        with self.lock:
            self.switches.missing.add(path)

    # -- what happened --------------------------------------------------------------------------

    def count(self, path: str | None = None) -> int:
        with self.lock:
            return sum(1 for h in self.hits if path is None or h.path == path)

    def hits_for(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    # -- serving --------------------------------------------------------------------------------

    def _plan(self, hit: Hit) -> tuple[int, dict[str, str], bytes, int | None]:
        """(status, headers, body, cut after) for one GET, consuming one-shot switches."""
        with self.lock:
            s = self.switches
            served = self.files.get(hit.path)
            if served is None or hit.path in s.missing:
                return 404, {"Content-Type": "text/plain"}, b"not found\n", None
            if hit.path in s.errors:
                status, left = s.errors[hit.path]
                s.errors[hit.path] = (status, left - 1)
                if left - 1 <= 0:
                    del s.errors[hit.path]
                return status, {"Content-Type": "text/plain", "Retry-After": "0"}, b"try again\n", None
            body = served.body
            if hit.path in s.corrupt:
                how, left = s.corrupt[hit.path]
                body = corrupted(body, how)
                if left is not None:
                    if left - 1 <= 0:
                        del s.corrupt[hit.path]
                    else:
                        s.corrupt[hit.path] = (how, left - 1)
            cut = s.cut.pop(hit.path, None)
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": served.etag,
            "Last-Modified": served.last_modified,
            "Accept-Ranges": "bytes",
        }
        start = _range_start(hit.range)
        if start is not None and hit.if_range not in (None, served.etag, served.last_modified):
            start = None  # If-Range does not match: the whole (changed) file
        if start is None:
            return 200, headers, body, cut
        if start >= len(body):
            return 416, {"Content-Range": f"bytes */{len(body)}", "Content-Type": "text/plain"}, b"", None
        headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        return 206, headers, body[start:], cut


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return None
    try:
        return int(header[len("bytes=") : -1])
    except ValueError:
        return None


def _handler(server: ArchiveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            hit = Hit(self.path, self.headers.get("Range"), self.headers.get("If-Range"), self.headers.get("User-Agent"))
            status, headers, body, cut = server._plan(hit)
            hit.status = status
            with server.lock:
                server.hits.append(hit)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if cut is not None and cut < len(body):
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # mid-body, as a dropped link would
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            """Quiet: tests read the server's hit log, not its stderr."""

    return Handler
