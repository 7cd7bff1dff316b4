"""The stand-in's server: Bybit v5 REST and the three WebSockets on one aiohttp port.

See the package docstring for what is served and why. This module holds :class:`StandIn` (the
in-process API: a server on its own event loop in a thread) and the request handlers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from aiohttp import WSMsgType, web

from tests.bybit_standin.engine import SYMBOL, BybitError, Exchange, fmt_money, fmt_price, fmt_qty, now_ms
from tests.bybit_standin.market import Quote, Trade, price_text, qty_text, synthetic_events

KINDS = ("public", "private", "trade")
ORDER_PATHS = {"/v5/order/create", "/v5/order/amend", "/v5/order/cancel", "/v5/order/cancel-all", "/v5/order/cancel-batch", "/v5/order/create-batch"}
ERRORS = {
    10006: "Too many visits. Exceeded the API Rate Limit.",
    110007: "ab not enough for new order",
    10016: "Internal server error.",
}
FUNDING_MS = 8 * 3600 * 1000


def _ok(result: Any, code: int = 0, msg: str = "OK", ext: dict | None = None) -> dict:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": ext or {}, "time": now_ms()}


def _err(code: int, msg: str) -> dict:
    return {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now_ms()}


def _limit_headers() -> dict:
    return {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9", "X-Bapi-Limit-Reset-Timestamp": str(now_ms() + 1000), "Traceid": secrets.token_hex(16), "Timenow": str(now_ms())}


@dataclass
class _Conn:
    kind: str
    ws: web.WebSocketResponse
    conn_id: str = field(default_factory=lambda: f"{secrets.token_hex(10)}-{secrets.token_hex(2)}")
    topics: set[str] = field(default_factory=set)
    authed: bool = False
    queue: asyncio.Queue | None = None  # private: (due_monotonic, text)
    sender: asyncio.Task | None = None


@dataclass
class Faults:
    """Armed failures; each counter counts down as it is used."""

    drops: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})  # further drops after the next (re)connect
    drop_after_ms: int = 300
    frozen: bool = False
    fail_code: int = 0
    fail_left: int = 0
    fail_scope: str = "orders"  # orders | all (every signed REST request and trade-socket op)
    ack_delay_ms: int = 0
    frames_first: bool = False


class StandIn:
    """A fake Bybit v5 on 127.0.0.1, serving the seeded synthetic market on the wall clock.

    ``with StandIn(seed=7) as s:`` (or ``s.start()`` / ``s.stop()``) runs the server on its own
    event loop in a daemon thread. Point Nautilus at ``s.rest_url``, ``s.public_ws_url``,
    ``s.private_ws_url``, ``s.trade_ws_url`` with ``s.api_key`` / ``s.api_secret``. Controls and
    read-backs are plain methods, safe to call from any thread; the same are served under
    ``/__control/<name>`` for :class:`tests.bybit_standin.remote.RemoteStandIn`.
    """

    def __init__(
        self,
        seed: int = 7,
        port: int = 0,
        host: str = "127.0.0.1",
        api_key: str = "standin-api-key",
        api_secret: str = "standin-api-secret",
        hours: float = 2.0,
        balance: float | str = 100_000,
        taker_fee: str = "0.00055",
        maker_fee: str = "0.0002",
        funding_rate: str = "0.0001",
        private_delay_ms: int = 20,
        recv_window_ms: int = 5_000,
        feed: bool = True,
    ) -> None:
        self.seed, self.host, self._port_wanted, self.hours = int(seed), host, int(port), float(hours)
        self.api_key, self.api_secret = api_key, api_secret
        self.funding_rate = Decimal(funding_rate)
        self.private_delay_ms = int(private_delay_ms)
        self.recv_window_ms = int(recv_window_ms)
        self.feed = feed
        self.exchange = Exchange(Decimal(str(balance)), Decimal(taker_fee), Decimal(maker_fee), on_event=self._on_engine_event)
        self.faults = Faults()
        self.requests: deque[tuple[str, str]] = deque(maxlen=20_000)  # (method, path or ws op), in arrival order
        self.unhandled: list[str] = []
        self.auth_log: deque[dict] = deque(maxlen=1000)  # every socket auth: kind, conn_id, retCode, retMsg
        self.order_log: deque[dict] = deque(maxlen=1000)  # every order request: via, action, args, answer
        self.connections: dict[str, list[_Conn]] = {k: [] for k in KINDS}
        self.connects: dict[str, int] = {k: 0 for k in KINDS}
        self.connect_times: dict[str, list[int]] = {k: [] for k in KINDS}  # wall ms of every connection
        self.ticks_sent = {"quotes": 0, "trades": 0}
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self._held: list[tuple[str, dict]] | None = None
        self._recent_trades: deque[Trade] = deque(maxlen=1000)
        self._last_quote: Quote | None = None
        self._book_u = 0
        self._cycle = 0  # how many times the span has been replayed (keeps trade ids unique)
        self._t0_ms = 0
        self._ticker_sent_ms = 0
        self._error: BaseException | None = None
        # Funding history begins 30 days before start (Bybit's goes back to the 2020 listing;
        # Nautilus pages backwards until a page comes back empty).
        self._funding_since_ms = (now_ms() - 30 * 86_400_000) // FUNDING_MS * FUNDING_MS

    # -- URLs --------------------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def public_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v5/public/linear"

    @property
    def private_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v5/private"

    @property
    def trade_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v5/trade"

    def urls(self) -> dict:
        return {"rest_url": self.rest_url, "public_ws_url": self.public_ws_url, "private_ws_url": self.private_ws_url, "trade_ws_url": self.trade_ws_url, "api_key": self.api_key, "api_secret": self.api_secret, "seed": self.seed}

    # -- life cycle --------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> StandIn:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"bybit-standin-{self.seed}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"Bybit stand-in did not start within {timeout:g} s")
        if self._error:
            raise RuntimeError(f"Bybit stand-in failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as e:  # reported to start()
            self._error = e
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/__control/{name}", self._control)
        app.router.add_get("/v5/public/linear", self._ws_public)
        app.router.add_get("/v5/private", self._ws_private)
        app.router.add_get("/v5/trade", self._ws_trade)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port_wanted)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the port the OS gave us
        self._t0_ms = now_ms()
        if self.feed:
            self._tasks.append(asyncio.get_running_loop().create_task(self._publish()))
        self._tasks.append(asyncio.get_running_loop().create_task(self._funding_clock()))

    async def _shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        for kind in KINDS:
            for c in list(self.connections[kind]):
                await self._close(c)
        if self._runner:
            await self._runner.cleanup()

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``fn`` on the server's loop (the exchange is single-threaded) and return its result."""
        if self._loop is None:
            return fn()

        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    # -- controls ----------------------------------------------------------------------------

    def drop(self, kind: str, times: int = 1, after_ms: int = 300) -> int:
        """Close every open ``kind`` socket now (``public``/``private``/``trade``); with
        ``times`` > 1, close it again ``after_ms`` after each of the next ``times - 1``
        reconnections. Returns how many sockets were closed now."""
        if kind not in KINDS:
            raise ValueError(f"drop: kind must be one of {KINDS}, got {kind!r}")

        def go():
            self.faults.drops[kind] = max(0, int(times) - 1)
            self.faults.drop_after_ms = int(after_ms)
            conns = list(self.connections[kind])
            for c in conns:
                asyncio.get_running_loop().create_task(self._close(c))
            return len(conns)

        return self.call(go)

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or resume) sending market data; the market keeps moving underneath."""
        self.call(lambda: setattr(self.faults, "frozen", bool(frozen)))

    def fail_next(self, n: int, code: int = 10006, scope: str = "orders") -> None:
        """Answer the next ``n`` order requests (REST ``/v5/order/*`` and trade-socket ops; with
        ``scope="all"`` every signed REST request too) with business error ``code``."""
        if code not in ERRORS:
            raise ValueError(f"fail_next: code must be one of {sorted(ERRORS)}, got {code}")
        if scope not in ("orders", "all"):
            raise ValueError(f"fail_next: scope must be 'orders' or 'all', got {scope!r}")
        def arm():
            self.faults.fail_code, self.faults.fail_left, self.faults.fail_scope = int(code), int(n), scope

        self.call(arm)

    def delay_acks(self, ms: int, frames_first: bool = False) -> None:
        """Hold every order acknowledgement (REST and trade socket) for ``ms`` milliseconds.
        Normally the private order/execution frames an order causes follow its ack by
        ``private_delay_ms``; with ``frames_first`` they go out at once, before the delayed ack
        (the ordering that makes Nautilus 1.231 lose ``OrderAccepted``)."""
        def arm():
            self.faults.ack_delay_ms = int(ms)
            self.faults.frames_first = bool(frames_first)

        self.call(arm)

    def partial_fills(self, max_qty: str | None) -> None:
        """Fill resting (maker) orders at most ``max_qty`` BTC per market event - per book update
        or public trade that reaches them - so an order fills in parts; ``None`` restores fills in
        full. Taker fills (market orders, crossing limits, triggered stops) stay whole."""
        cap = None if max_qty is None else Decimal(str(max_qty))
        if cap is not None and (cap <= 0 or cap % Decimal("0.001")):
            raise ValueError(f"partial_fills: max_qty must be a positive multiple of 0.001, got {max_qty}")
        self.call(lambda: setattr(self.exchange, "maker_fill_cap", cap))

    def set_position(self, size: str | float, avg_price: str | float | None = None) -> dict:
        """Seed or change the position behind the client's back (signed size in BTC)."""
        return self.call(lambda: (self.exchange.set_position(Decimal(str(size)), None if avg_price is None else Decimal(str(avg_price))), self.exchange.position_bybit())[1])

    seed_position = set_position

    def seed_order(self, **args) -> dict:
        """Place an order as if from elsewhere (Bybit ``order/create`` fields; ``category`` and
        ``symbol`` default to linear BTCUSDT). Returns the order in REST shape."""
        args.setdefault("category", "linear")
        args.setdefault("symbol", SYMBOL)

        def go():
            o = self.exchange.create(args)
            self.exchange.orders_received -= 1  # not a client request
            return o.as_bybit()

        return self.call(go)

    def push_quote(self, bid: str, ask: str, bid_size: str = "1.000", ask_size: str = "1.000") -> None:
        """Inject an L1 change (prices in USDT, sizes in BTC): the exchange sees it and
        subscribers get an ``orderbook.1`` snapshot. For deterministic tests run with
        ``feed=False`` (``--no-feed``) so the synthetic market does not move the book too."""
        q = Quote(self._offset_ns(), _units(bid, 10), _units(ask, 10), _units(bid_size, 1000), _units(ask_size, 1000))

        def go():
            self._last_quote = q
            self.exchange.on_quote(q)
            self._send_book(q, now_ms())
            self._send_ticker()

        self.call(go)

    def push_trade(self, price: str, size: str = "0.001", side: str = "Buy") -> None:
        """Inject a public trade (taker ``side``): triggers conditionals, fills limits it prints
        through, and goes out on ``publicTrade``."""
        if side not in ("Buy", "Sell"):
            raise ValueError(f"push_trade: side must be Buy or Sell, got {side!r}")
        t = Trade(self._offset_ns(), _units(price, 10), _units(size, 1000), side, f"inj-{uuid.uuid4().hex[:12]}")

        def go():
            self.exchange.on_trade(t)
            self._recent_trades.append(t)
            self._send_trades([t])

        self.call(go)

    def _offset_ns(self) -> int:
        return (now_ms() - self._t0_ms) * 1_000_000

    def settle_funding(self, rate: str | None = None) -> dict:
        """Settle funding now at ``rate`` (default: the stand-in's rate) on the open position."""
        return self.call(lambda: self._settle(Decimal(rate) if rate is not None else self.funding_rate))

    def orders(self) -> list[dict]:
        return self.call(lambda: [o.as_bybit() for o in self.exchange.orders.values()])

    def open_orders(self) -> list[dict]:
        return self.call(lambda: [o.as_bybit() for o in self.exchange.orders.values() if o.open])

    def fills(self) -> list[dict]:
        return self.call(lambda: [f.as_record() for f in self.exchange.fills])

    def position(self) -> dict:
        return self.call(lambda: self.exchange.position_bybit())

    def wallet(self) -> dict:
        return self.call(lambda: self.exchange.wallet_bybit())

    def orders_received(self) -> int:
        return self.call(lambda: self.exchange.orders_received)

    def book(self) -> dict:
        ex = self.exchange
        return self.call(lambda: {"bid": str(ex.bid) if ex.bid is not None else None, "ask": str(ex.ask) if ex.ask is not None else None, "last": str(ex.last) if ex.last is not None else None})

    def stats(self) -> dict:
        return self.call(lambda: {
            "connects": dict(self.connects),
            "connect_times": {k: list(v) for k, v in self.connect_times.items()},
            "auths": list(self.auth_log),
            "open": {k: len(v) for k, v in self.connections.items()},
            "ticks_sent": dict(self.ticks_sent),
            "requests": len(self.requests),
            "unhandled": list(self.unhandled),
            "orders_received": self.exchange.orders_received,
            "frozen": self.faults.frozen,
        })

    def request_log(self) -> list[tuple[str, str]]:
        return self.call(lambda: list(self.requests))

    def order_requests(self) -> list[dict]:
        """Every order request (create/amend/cancel, REST or trade socket) with its arguments and
        the ``retCode``/``retMsg`` it got, oldest first (the last 1000)."""
        return self.call(lambda: list(self.order_log))

    async def _control(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        args = await request.json() if request.can_read_body else {}
        allowed = {"drop", "freeze", "fail_next", "delay_acks", "partial_fills", "set_position", "seed_order", "settle_funding", "push_quote", "push_trade", "orders", "open_orders", "fills", "position", "wallet", "orders_received", "book", "stats", "request_log", "order_requests", "urls"}
        if name not in allowed:
            return web.json_response({"error": f"unknown control {name!r}; one of {sorted(allowed)}"}, status=404)
        # Controls run in a worker thread: they call back into this loop through ``call``.
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, lambda: getattr(self, name)(**args))
        except (TypeError, ValueError, BybitError) as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"result": result})

    # -- market feed -------------------------------------------------------------------------

    async def _publish(self) -> None:
        """Play the synthetic market on the wall clock: orderbook.1 snapshot per quote,
        publicTrade per millisecond of trades, tickers at most every 100 ms."""
        loop = asyncio.get_running_loop()
        batch: list[Trade] = []
        events = None
        t0 = 0
        while True:
            if events is None:
                events = synthetic_events(self.seed, self.hours)
                first = True
            # Making an hour of market costs seconds of CPU: pull events off the loop.
            event = await loop.run_in_executor(None, next, events, None)
            if event is None:  # the span is over: play it again from now
                events = None
                self._cycle += 1
                continue
            if first:  # the span starts now, whatever its generation took
                t0 = self._t0_ms = now_ms() - event.dt_ns // 1_000_000
                first = False
            due_ms = t0 + event.dt_ns // 1_000_000
            wait = due_ms - now_ms()
            if wait > 0:
                if batch:
                    self._send_trades(batch)
                    batch = []
                await asyncio.sleep(min(wait, 60_000) / 1000)
            if isinstance(event, Trade):
                if batch and batch[-1].dt_ns // 1_000_000 != event.dt_ns // 1_000_000:
                    self._send_trades(batch)
                    batch = []
                batch.append(event)
                self.exchange.on_trade(event)
                self._recent_trades.append(event)
            else:
                if batch:
                    self._send_trades(batch)
                    batch = []
                self._last_quote = event
                self.exchange.on_quote(event)
                self._send_book(event, due_ms)
            if now_ms() - self._ticker_sent_ms >= 100:
                self._send_ticker()

    def _wall(self, dt_ns: int) -> int:
        return self._t0_ms + dt_ns // 1_000_000

    def _send_book(self, q: Quote, ts_ms: int) -> None:
        self._book_u += 1
        frame = {
            "topic": f"orderbook.1.{SYMBOL}",
            "type": "snapshot",
            "ts": ts_ms,
            "data": {"s": SYMBOL, "b": [[price_text(q.bid), qty_text(q.bid_size)]], "a": [[price_text(q.ask), qty_text(q.ask_size)]], "u": self._book_u, "seq": self._book_u},
            "cts": ts_ms,
        }
        if self._broadcast_public(frame["topic"], frame):
            self.ticks_sent["quotes"] += 1

    def _send_trades(self, trades: list[Trade]) -> None:
        ts = self._wall(trades[-1].dt_ns)
        data = []
        prev = self._recent_trades[-len(trades) - 1].price if len(self._recent_trades) > len(trades) else trades[0].price
        for t in trades:
            tick = "PlusTick" if t.price > prev else ("MinusTick" if t.price < prev else "ZeroPlusTick")
            prev = t.price
            data.append({"T": self._wall(t.dt_ns), "s": SYMBOL, "S": t.side, "v": qty_text(t.size), "p": price_text(t.price), "L": tick, "i": self._trade_uuid(t), "BT": False, "RPI": False})
        frame = {"topic": f"publicTrade.{SYMBOL}", "type": "snapshot", "ts": ts, "data": data}
        if self._broadcast_public(frame["topic"], frame):
            self.ticks_sent["trades"] += len(trades)

    def _trade_uuid(self, t: Trade) -> str:
        """Bybit's trade ids are UUIDs; ours are fixed by seed, replay cycle and generator id."""
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{self.seed}-{self._cycle}-{t.trade_id}"))

    def _ticker_data(self) -> dict:
        ex = self.exchange
        q = self._last_quote
        last = ex.last if ex.last is not None else ex.mark
        nxt = (now_ms() // FUNDING_MS + 1) * FUNDING_MS
        d = {
            "symbol": SYMBOL,
            "tickDirection": "ZeroPlusTick",
            "price24hPcnt": "0.0",
            "lastPrice": fmt_price(last),
            "prevPrice24h": fmt_price(last),
            "highPrice24h": fmt_price(last),
            "lowPrice24h": fmt_price(last),
            "prevPrice1h": fmt_price(last),
            "markPrice": fmt_price(ex.mark),
            "indexPrice": fmt_price(ex.mark),
            "openInterest": "50000.000",
            "openInterestValue": fmt_money(ex.mark * 50000),
            "turnover24h": "0",
            "volume24h": "0",
            "nextFundingTime": str(nxt),
            "fundingRate": str(self.funding_rate),
            "bid1Price": price_text(q.bid) if q else "0",
            "bid1Size": qty_text(q.bid_size) if q else "0",
            "ask1Price": price_text(q.ask) if q else "0",
            "ask1Size": qty_text(q.ask_size) if q else "0",
            "fundingIntervalHour": "8",
        }
        return d

    def _send_ticker(self) -> None:
        if self._last_quote is None:
            return
        self._ticker_sent_ms = now_ms()
        frame = {"topic": f"tickers.{SYMBOL}", "type": "snapshot", "data": self._ticker_data(), "cs": self._book_u, "ts": self._ticker_sent_ms}
        self._broadcast_public(frame["topic"], frame)

    def _broadcast_public(self, topic: str, frame: dict) -> bool:
        if self.faults.frozen:
            return False
        text = None
        sent = False
        for c in self.connections["public"]:
            if topic in c.topics and not c.ws.closed:
                text = text or json.dumps(frame, separators=(",", ":"))
                asyncio.get_running_loop().create_task(self._safe_send(c, text))
                sent = True
        return sent

    async def _funding_clock(self) -> None:
        """Settle funding at 00:00, 08:00 and 16:00 UTC while running."""
        while True:
            nxt = (now_ms() // FUNDING_MS + 1) * FUNDING_MS
            await asyncio.sleep(min(max(0.0, (nxt - now_ms()) / 1000), 3600.0))
            if now_ms() >= nxt:
                self._settle(self.funding_rate, nxt)

    def _settle(self, rate: Decimal, ts_ms: int | None = None) -> dict:
        ex = self.exchange
        acc = ex.account
        ts = ts_ms or now_ms()
        value = acc.size * ex.mark  # signed position value
        funding = (value * rate).quantize(Decimal("0.00000001"))  # > 0: paid by the account
        acc.wallet -= funding
        row = {"ts_ms": ts, "rate": rate, "funding": funding, "size": acc.size, "mark": ex.mark, "wallet_after": acc.wallet}
        ex.funding.append(row)
        if acc.size:
            ex._emit_wallet()
        return {"ts_ms": ts, "rate": str(rate), "funding": str(funding), "size": str(acc.size), "mark": str(ex.mark)}

    # -- engine events -> private stream ------------------------------------------------------

    def _on_engine_event(self, kind: str, payload: dict) -> None:
        if self._held is not None:
            self._held.append((kind, payload))
        else:
            self._deliver(kind, payload, 0)

    def _deliver(self, kind: str, payload: dict, delay_ms: int) -> None:
        frame = {"id": f"{uuid.uuid4().hex[:12]}-{uuid.uuid4()}", "topic": kind, "creationTime": now_ms(), "data": [payload]}
        text = json.dumps(frame, separators=(",", ":"))
        due = time.monotonic() + delay_ms / 1000
        for c in self.connections["private"]:
            if c.authed and kind in c.topics and c.queue is not None:
                c.queue.put_nowait((due, text))

    def _release_held(self, held: list[tuple[str, dict]], delay_ms: int | None = None) -> None:
        for kind, payload in held:
            self._deliver(kind, payload, self.private_delay_ms if delay_ms is None else delay_ms)

    async def _private_sender(self, c: _Conn) -> None:
        while True:
            due, text = await c.queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._safe_send(c, text)

    # -- websockets ----------------------------------------------------------------------------

    async def _safe_send(self, c: _Conn, text: str) -> None:
        try:
            if not c.ws.closed:
                await c.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            pass

    async def _close(self, c: _Conn) -> None:
        try:
            await c.ws.close()
        except Exception:
            pass

    async def _open(self, request: web.Request, kind: str) -> _Conn:
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        c = _Conn(kind, ws)
        if kind == "private":
            c.queue = asyncio.Queue()
            c.sender = asyncio.get_running_loop().create_task(self._private_sender(c))
        self.connections[kind].append(c)
        self.connects[kind] += 1
        self.connect_times[kind].append(now_ms())
        self.requests.append(("WS", f"connect {kind}"))
        if self.faults.drops[kind] > 0:
            self.faults.drops[kind] -= 1
            asyncio.get_running_loop().call_later(self.faults.drop_after_ms / 1000, lambda: asyncio.ensure_future(self._close(c)))
        return c

    async def _serve(self, c: _Conn, handle: Callable[[_Conn, dict], Any]) -> web.WebSocketResponse:
        try:
            async for msg in c.ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await self._safe_send(c, json.dumps({"success": False, "ret_msg": f"error:invalid json: {msg.data[:100]}", "conn_id": c.conn_id, "op": ""}))
                    continue
                if not isinstance(req, dict):
                    continue
                self.requests.append(("WS", f"{c.kind} {req.get('op')}"))
                await handle(c, req)
        finally:
            if c in self.connections[c.kind]:
                self.connections[c.kind].remove(c)
            if c.sender:
                c.sender.cancel()
        return c.ws

    async def _ws_public(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(await self._open(request, "public"), self._on_public)

    async def _ws_private(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(await self._open(request, "private"), self._on_private)

    async def _ws_trade(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(await self._open(request, "trade"), self._on_trade_ws)

    async def _on_public(self, c: _Conn, req: dict) -> None:
        op, req_id = req.get("op"), req.get("req_id", "")
        if op == "ping":
            await self._safe_send(c, json.dumps({"success": True, "ret_msg": "pong", "conn_id": c.conn_id, "req_id": req_id, "op": "ping"}))
            return
        if op in ("subscribe", "unsubscribe"):
            args = req.get("args") or []
            valid = {f"orderbook.{d}.{SYMBOL}" for d in (1, 50, 200, 500)} | {f"publicTrade.{SYMBOL}", f"tickers.{SYMBOL}"}
            bad = [a for a in args if a not in valid]
            if bad:
                await self._safe_send(c, json.dumps({"success": False, "ret_msg": f"error:handler not found,topic:{bad[0]}", "conn_id": c.conn_id, "req_id": req_id, "op": op}))
                return
            if op == "subscribe":
                dup = [a for a in args if a in c.topics]
                if dup:
                    await self._safe_send(c, json.dumps({"success": False, "ret_msg": f"error:already subscribed,topic:{dup[0]}", "conn_id": c.conn_id, "req_id": req_id, "op": op}))
                    return
                c.topics.update(args)
            else:
                c.topics.difference_update(args)
            await self._safe_send(c, json.dumps({"success": True, "ret_msg": "", "conn_id": c.conn_id, "req_id": req_id, "op": op}))
            if op == "subscribe":
                await self._initial_public(c, args)
            return
        await self._safe_send(c, json.dumps({"success": False, "ret_msg": f"error:unsupported op {op}", "conn_id": c.conn_id, "req_id": req_id, "op": op}))

    async def _initial_public(self, c: _Conn, topics: list[str]) -> None:
        """Bybit answers a subscription with the current state: a book snapshot, a ticker snapshot."""
        q = self._last_quote
        for topic in topics:
            if topic.startswith("orderbook.") and q is not None and not self.faults.frozen:
                ts = now_ms()
                frame = {"topic": topic, "type": "snapshot", "ts": ts, "data": {"s": SYMBOL, "b": [[price_text(q.bid), qty_text(q.bid_size)]], "a": [[price_text(q.ask), qty_text(q.ask_size)]], "u": self._book_u, "seq": self._book_u}, "cts": ts}
                await self._safe_send(c, json.dumps(frame, separators=(",", ":")))
            elif topic.startswith("tickers.") and q is not None and not self.faults.frozen:
                frame = {"topic": topic, "type": "snapshot", "data": self._ticker_data(), "cs": self._book_u, "ts": now_ms()}
                await self._safe_send(c, json.dumps(frame, separators=(",", ":")))

    def _check_ws_auth(self, args: list) -> tuple[int, str]:
        if len(args) != 3:
            return 10001, "Params Error"
        key, expires, sign = args
        if key != self.api_key:
            return 10003, "Invalid apikey"
        try:
            expires = int(expires)
        except (TypeError, ValueError):
            return 10001, "Params Error"
        if expires <= now_ms():
            return 10002, "Params Error: request expired"
        want = hmac.new(self.api_secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, str(sign)):
            return 10004, "Invalid sign"
        return 0, ""

    async def _on_private(self, c: _Conn, req: dict) -> None:
        op, req_id = req.get("op"), req.get("req_id", "")
        if op == "ping":
            await self._safe_send(c, json.dumps({"req_id": req_id, "op": "pong", "args": [str(now_ms())], "conn_id": c.conn_id}))
            return
        if op == "auth":
            code, msg = self._check_ws_auth(req.get("args") or [])
            c.authed = c.authed or code == 0  # a failed repeat does not undo an earlier success
            self.auth_log.append({"kind": "private", "conn_id": c.conn_id, "retCode": code, "retMsg": msg})
            await self._safe_send(c, json.dumps({"success": code == 0, "ret_msg": msg, "op": "auth", "conn_id": c.conn_id, **({} if code == 0 else {"retCode": code, "retMsg": msg})}))
            return
        if op in ("subscribe", "unsubscribe"):
            if not c.authed:
                await self._safe_send(c, json.dumps({"success": False, "ret_msg": "Request not authorized", "conn_id": c.conn_id, "req_id": req_id, "op": op}))
                return
            args = req.get("args") or []
            valid = {"order", "execution", "position", "wallet", "execution.fast", "order.linear", "execution.linear", "position.linear"}
            bad = [a for a in args if a not in valid]
            if bad:
                await self._safe_send(c, json.dumps({"success": False, "ret_msg": f"error:handler not found,topic:{bad[0]}", "conn_id": c.conn_id, "req_id": req_id, "op": op}))
                return
            topics = {a.split(".")[0] if a != "execution.fast" else a for a in args}
            if op == "subscribe":
                c.topics.update(topics)
            else:
                c.topics.difference_update(topics)
            await self._safe_send(c, json.dumps({"success": True, "ret_msg": "", "conn_id": c.conn_id, "req_id": req_id, "op": op}))
            return
        await self._safe_send(c, json.dumps({"success": False, "ret_msg": f"error:unsupported op {op}", "conn_id": c.conn_id, "req_id": req_id, "op": op}))

    async def _on_trade_ws(self, c: _Conn, req: dict) -> None:
        op = req.get("op")
        req_id = req.get("reqId") or req.get("req_id") or ""
        if op == "ping":
            await self._safe_send(c, json.dumps({"req_id": req_id, "op": "pong", "args": [str(now_ms())], "conn_id": c.conn_id}))
            return
        if op == "auth":
            code, msg = self._check_ws_auth(req.get("args") or [])
            c.authed = c.authed or code == 0
            self.auth_log.append({"kind": "trade", "conn_id": c.conn_id, "retCode": code, "retMsg": msg})
            await self._safe_send(c, json.dumps({"retCode": code, "retMsg": "OK" if code == 0 else msg, "op": "auth", "connId": c.conn_id}))
            return
        base = {"reqId": req_id, "op": op, "connId": c.conn_id}
        if not c.authed:
            await self._safe_send(c, json.dumps({**base, "retCode": 10003, "retMsg": "Request not authorized", "data": {}, "retExtInfo": {}, "header": _limit_headers()}))
            return
        handlers = {"order.create": "create", "order.amend": "amend", "order.cancel": "cancel"}
        batch = {"order.create-batch": "create", "order.amend-batch": "amend", "order.cancel-batch": "cancel"}
        args = req.get("args") or [{}]
        self._held = []
        try:
            if op in handlers:
                code, msg, data = self._order_op(handlers[op], args[0] if args else {}, via="ws")
                resp = {**base, "retCode": code, "retMsg": msg, "data": data, "retExtInfo": {}, "header": _limit_headers()}
            elif op in batch:
                arg = args[0] if args else {}
                results, ext = [], []
                for item in arg.get("request") or []:
                    code, msg, data = self._order_op(batch[op], {"category": arg.get("category"), **item}, via="ws")
                    results.append({"category": arg.get("category"), "symbol": item.get("symbol"), **(data or {"orderId": "", "orderLinkId": item.get("orderLinkId", "")}), "createAt": str(now_ms())})
                    ext.append({"code": code, "msg": msg or "OK"})
                resp = {**base, "retCode": 0, "retMsg": "OK", "data": {"list": results}, "retExtInfo": {"list": ext}, "header": _limit_headers()}
            else:
                resp = {**base, "retCode": 10001, "retMsg": f"unsupported op {op}", "data": {}, "retExtInfo": {}, "header": _limit_headers()}
        finally:
            held, self._held = self._held, None
        if self.faults.frames_first:
            self._release_held(held, 0)
            held = []
        if self.faults.ack_delay_ms:
            await asyncio.sleep(self.faults.ack_delay_ms / 1000)
        await self._safe_send(c, json.dumps(resp))
        self._release_held(held)

    # -- order operations shared by REST and the trade socket -----------------------------------

    def _take_fault(self, order: bool) -> int:
        f = self.faults
        if f.fail_left > 0 and (order or f.fail_scope == "all"):
            f.fail_left -= 1
            return f.fail_code
        return 0

    def _order_op(self, action: str, args: dict, via: str = "rest") -> tuple[int, str, dict]:
        code, msg, data = self._order_op_inner(action, args)
        self.order_log.append({"via": via, "action": action, "args": dict(args), "retCode": code, "retMsg": msg})
        return code, msg, data

    def _order_op_inner(self, action: str, args: dict) -> tuple[int, str, dict]:
        code = self._take_fault(True)
        if code:
            if action == "create":
                self.exchange.orders_received += 1
            return code, ERRORS[code], {}
        ex = self.exchange
        try:
            if action == "create" and not _truthy(args.get("reduceOnly")) and not _truthy(args.get("closeOnTrigger")) and ex.margin_short(args):
                ex.orders_received += 1
                return 110007, ERRORS[110007], {}
            o = getattr(ex, action)(args)
        except BybitError as e:
            return e.code, e.message, {}
        return 0, "OK", {"orderId": o.order_id, "orderLinkId": o.link_id}

    # -- REST ----------------------------------------------------------------------------------

    def _check_sign(self, request: web.Request, payload: str) -> tuple[int, str] | None:
        h = request.headers
        key, sign, ts, window = h.get("X-BAPI-API-KEY"), h.get("X-BAPI-SIGN"), h.get("X-BAPI-TIMESTAMP"), h.get("X-BAPI-RECV-WINDOW", "5000")
        if not key or not sign or not ts:
            return 10003, "API key is invalid." if not key else "Missing some parameters that must be filled in."
        if key != self.api_key:
            return 10003, "API key is invalid."
        try:
            ts_i, win_i = int(ts), int(window)
        except ValueError:
            return 10001, "Params Error: timestamp"
        if not (ts_i - 1000 <= now_ms() < ts_i + win_i):
            return 10002, f"invalid request, please check your server timestamp or recv_window param. req_timestamp[{ts_i}],server_timestamp[{now_ms()}],recv_window[{win_i}]"
        origin = f"{ts}{key}{window}{payload}"
        want = hmac.new(self.api_secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sign.lower()):
            return 10004, f"error sign! origin_string[{origin}]"
        return None

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path
        method = request.method
        self.requests.append((method, path))
        body_text = await request.text() if method == "POST" else ""
        route = REST_ROUTES.get((method, path))
        if route is None:
            self.unhandled.append(f"{method} {path}")
            return web.json_response({"retCode": 404, "retMsg": f"stand-in: {method} {path} is not served"}, status=404)
        handler, signed = route
        if signed:
            payload = request.rel_url.raw_query_string if method == "GET" else body_text
            bad = self._check_sign(request, payload)
            if bad:
                return web.json_response(_err(*bad), headers=_limit_headers())
            code = 0 if path in ORDER_PATHS else self._take_fault(False)  # order paths: see _order_op
            if code:
                return web.json_response(_err(code, ERRORS[code]), headers=_limit_headers())
        try:
            body = json.loads(body_text) if body_text else {}
        except ValueError:
            return web.json_response(_err(10001, "Request parameter error: body is not JSON"), headers=_limit_headers())
        q = dict(request.query)
        held: list = []
        if path in ORDER_PATHS:
            self._held = []
        try:
            result = handler(self, q, body)
        except BybitError as e:
            result = _err(e.code, e.message)
        finally:
            if path in ORDER_PATHS:
                held, self._held = self._held, None
        if held and self.faults.frames_first:
            self._release_held(held, 0)
            held = []
        if path in ORDER_PATHS and self.faults.ack_delay_ms:
            await asyncio.sleep(self.faults.ack_delay_ms / 1000)
        response = web.json_response(result, headers=_limit_headers(), dumps=lambda o: json.dumps(o, separators=(",", ":")))
        if held:
            self._release_held(held)
        return response

    # REST handlers: (self, query, body) -> Bybit JSON

    def _market_time(self, q, b):
        ns = time.time_ns()
        return _ok({"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)})

    def _instruments(self, q, b):
        rows = []
        if q.get("category") == "linear" and q.get("symbol") in (None, SYMBOL) and q.get("status") in (None, "Trading"):
            rows.append(INSTRUMENT)
        return _ok({"category": q.get("category", ""), "list": rows, "nextPageCursor": ""})

    def _tickers(self, q, b):
        rows = [self._ticker_data() | {"predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0", "basis": "", "preOpenPrice": "", "preQty": "", "curPreListingPhase": ""}] if q.get("category") == "linear" and q.get("symbol") in (None, SYMBOL) else []
        return _ok({"category": q.get("category", ""), "list": rows})

    def _funding_history(self, q, b):
        if q.get("category") != "linear" or q.get("symbol") != SYMBOL:
            raise BybitError(10001, "params error: category/symbol")
        end = int(q.get("endTime") or now_ms())
        start = int(q["startTime"]) if q.get("startTime") else None
        limit = min(int(q.get("limit") or 200), 200)
        t = end // FUNDING_MS * FUNDING_MS
        rows = []
        first = self._funding_since_ms
        while len(rows) < limit and (start is None or t >= start) and t >= first:
            rows.append({"symbol": SYMBOL, "fundingRate": str(self.funding_rate), "fundingRateTimestamp": str(t)})
            t -= FUNDING_MS
        return _ok({"category": "linear", "list": rows})

    def _recent_trades(self, q, b):
        limit = min(int(q.get("limit") or 500), 1000)
        rows = [
            {"execId": self._trade_uuid(t), "symbol": SYMBOL, "price": price_text(t.price), "size": qty_text(t.size), "side": t.side, "time": str(self._wall(t.dt_ns)), "isBlockTrade": False, "isRPITrade": False}
            for t in list(self._recent_trades)[-limit:][::-1]
        ]
        return _ok({"category": "linear", "list": rows})

    def _orderbook(self, q, b):
        qt = self._last_quote
        ts = now_ms()
        return _ok({"s": SYMBOL, "b": [[price_text(qt.bid), qty_text(qt.bid_size)]] if qt else [], "a": [[price_text(qt.ask), qty_text(qt.ask_size)]] if qt else [], "ts": ts, "u": self._book_u, "seq": self._book_u, "cts": ts})

    def _kline(self, q, b):
        return _ok({"category": q.get("category", "linear"), "symbol": q.get("symbol", SYMBOL), "list": []})

    def _fee_rate(self, q, b):
        ex = self.exchange
        return _ok({"list": [{"symbol": SYMBOL, "takerFeeRate": str(ex.taker_fee), "makerFeeRate": str(ex.maker_fee), "baseCoin": ""}]})

    def _wallet_balance(self, q, b):
        if q.get("accountType") != "UNIFIED":
            raise BybitError(10001, "accountType only support UNIFIED.")
        return _ok({"list": [self.exchange.wallet_bybit()]})

    def _account_info(self, q, b):
        return _ok({"marginMode": self.exchange.account.margin_mode, "updatedTime": str(self.exchange.account.updated_ms), "unifiedMarginStatus": 5, "dcpStatus": "OFF", "timeWindow": 10, "smpGroup": 0, "isMasterTrader": False, "spotHedgingStatus": "OFF"})

    def _query_api(self, q, b):
        perms = {"ContractTrade": ["Order", "Position"], "Spot": ["SpotTrade"], "Wallet": ["AccountTransfer"], "Options": ["OptionsTrade"], "Derivatives": ["DerivativesTrade"], "CopyTrading": [], "BlockTrade": [], "Exchange": [], "NFT": [], "Affiliate": []}
        return _ok({"id": "1", "note": "stand-in", "apiKey": self.api_key, "readOnly": 0, "secret": "", "permissions": perms, "ips": ["*"], "type": 1, "deadlineDay": -2, "expiredAt": "", "createdAt": "2024-01-01T00:00:00Z", "unified": 0, "uta": 1, "userID": 1, "inviterID": 0, "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "", "isMaster": True, "parentUid": "0", "kycLevel": "LEVEL_DEFAULT", "kycRegion": ""})

    def _position_list(self, q, b):
        if q.get("category") != "linear":
            raise BybitError(10001, "params error: category")
        if not q.get("symbol") and not q.get("settleCoin"):
            raise BybitError(10001, "Either symbol or settleCoin is required")
        if q.get("symbol") not in (None, SYMBOL) or q.get("settleCoin") not in (None, "USDT"):
            return _ok({"list": [], "nextPageCursor": "", "category": "linear"})
        return _ok({"list": [self.exchange.position_bybit()], "nextPageCursor": "", "category": "linear"})

    def _orders_query(self, q, history: bool):
        if q.get("category") != "linear":
            raise BybitError(10001, "params error: category")
        ex = self.exchange
        # Unified accounts: realtime = open orders (openOnly=0; openOnly=1: the recent closed ones),
        # and a look-up by orderId/orderLinkId finds an order whatever its state (Nautilus's REST
        # submit reads a just-filled market order back this way); history = final-state orders.
        if history:
            rows = [o for o in ex.orders.values() if not o.open]
        elif q.get("orderId") or q.get("orderLinkId"):
            rows = list(ex.orders.values())
        elif q.get("openOnly") == "1":
            rows = [o for o in ex.orders.values() if not o.open][-500:]
        else:
            rows = [o for o in ex.orders.values() if o.open]
        if q.get("symbol") and q["symbol"] != SYMBOL:
            rows = []
        if q.get("orderId"):
            rows = [o for o in rows if o.order_id == q["orderId"]]
        if q.get("orderLinkId"):
            rows = [o for o in rows if o.link_id == q["orderLinkId"]]
        flt = q.get("orderFilter")
        if flt == "Order":
            rows = [o for o in rows if not o.is_conditional]
        elif flt == "StopOrder":
            rows = [o for o in rows if o.is_conditional]
        elif flt == "tpslOrder":
            rows = []
        rows.sort(key=lambda o: o.created_ms, reverse=True)
        return self._page(q, [o.as_bybit() for o in rows], default_limit=20, max_limit=50)

    def _page(self, q, rows: list[dict], default_limit: int, max_limit: int, category: str | None = "linear"):
        limit = min(int(q.get("limit") or default_limit), max_limit)
        offset = int(q.get("cursor") or 0)
        page = rows[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(rows) else ""
        result = {"list": page, "nextPageCursor": nxt}
        if category:
            result["category"] = category
        return _ok(result)

    def _order_realtime(self, q, b):
        return self._orders_query(q, history=False)

    def _order_history(self, q, b):
        return self._orders_query(q, history=True)

    def _execution_list(self, q, b):
        if q.get("category") != "linear":
            raise BybitError(10001, "params error: category")
        fills = list(self.exchange.fills)
        if q.get("symbol") and q["symbol"] != SYMBOL:
            fills = []
        if q.get("orderId"):
            fills = [f for f in fills if f.order.order_id == q["orderId"]]
        if q.get("orderLinkId"):
            fills = [f for f in fills if f.order.link_id == q["orderLinkId"]]
        if q.get("startTime"):
            fills = [f for f in fills if f.ts_ms >= int(q["startTime"])]
        if q.get("endTime"):
            fills = [f for f in fills if f.ts_ms <= int(q["endTime"])]
        fills.sort(key=lambda f: f.ts_ms, reverse=True)
        return self._page(q, [f.as_bybit() for f in fills], default_limit=50, max_limit=100)

    def _transaction_log(self, q, b):
        ex = self.exchange
        rows = []
        for f in ex.fills:
            rows.append({"id": f.exec_id, "symbol": SYMBOL, "category": "linear", "side": f.side, "transactionTime": str(f.ts_ms), "type": "TRADE", "transSubType": "", "qty": fmt_qty(f.qty), "size": "", "currency": "USDT", "tradePrice": fmt_price(f.price), "funding": "", "fee": fmt_money(f.fee), "cashFlow": fmt_money(f.realised), "change": fmt_money(f.realised - f.fee), "cashBalance": fmt_money(f.wallet_after), "feeRate": str(f.fee_rate), "bonusChange": "", "tradeId": f.exec_id, "orderId": f.order.order_id, "orderLinkId": f.order.link_id, "extraFees": ""})
        for r in ex.funding:
            side = "Buy" if r["size"] > 0 else ("Sell" if r["size"] < 0 else "None")
            rows.append({"id": uuid.uuid5(uuid.NAMESPACE_OID, f"funding-{r['ts_ms']}").hex, "symbol": SYMBOL, "category": "linear", "side": side, "transactionTime": str(r["ts_ms"]), "type": "SETTLEMENT", "transSubType": "", "qty": fmt_qty(abs(r["size"])), "size": fmt_qty(r["size"]), "currency": "USDT", "tradePrice": fmt_price(r["mark"]), "funding": fmt_money(r["funding"]), "fee": "", "cashFlow": "0", "change": fmt_money(-r["funding"]), "cashBalance": fmt_money(r["wallet_after"]), "feeRate": str(r["rate"]), "bonusChange": "", "tradeId": "", "orderId": "", "orderLinkId": "", "extraFees": ""})
        if q.get("type"):
            rows = [r for r in rows if r["type"] == q["type"]]
        if q.get("startTime"):
            rows = [r for r in rows if int(r["transactionTime"]) >= int(q["startTime"])]
        if q.get("endTime"):
            rows = [r for r in rows if int(r["transactionTime"]) <= int(q["endTime"])]
        rows.sort(key=lambda r: int(r["transactionTime"]), reverse=True)
        return self._page(q, rows, default_limit=20, max_limit=50, category=None)

    def _set_leverage(self, q, b):
        acc = self.exchange.account
        if b.get("category") != "linear" or b.get("symbol") != SYMBOL:
            raise BybitError(10001, "params error: category/symbol")
        buy, sell = Decimal(str(b.get("buyLeverage"))), Decimal(str(b.get("sellLeverage")))
        if buy != sell:
            raise BybitError(10001, "buy leverage must be equal to sell leverage in one-way mode")
        if not (1 <= buy <= 100):
            raise BybitError(10001, "leverage invalid")
        if buy == acc.leverage:
            raise BybitError(110043, "Set leverage has not been modified.")
        acc.leverage = buy
        return _ok({})

    def _switch_mode(self, q, b):
        mode = int(b.get("mode", -1))
        if mode not in (0, 3):
            raise BybitError(10001, "params error: mode")
        if mode == self.exchange.account.position_mode:
            raise BybitError(110025, "Position mode is not modified")
        if self.exchange.account.size or any(o.open for o in self.exchange.orders.values()):
            raise BybitError(110024, "You have an existing position, so position mode cannot be switched")
        self.exchange.account.position_mode = mode
        return _ok({})

    def _set_margin_mode(self, q, b):
        mode = b.get("setMarginMode")
        if mode not in ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN"):
            raise BybitError(10001, "params error: setMarginMode")
        self.exchange.account.margin_mode = mode
        return _ok({"reasons": []})

    def _trading_stop(self, q, b):
        raise BybitError(10001, "stand-in: position/trading-stop (position TP/SL) is not supported; use conditional orders")

    def _order_create(self, q, b):
        return self._rest_order("create", b)

    def _order_amend(self, q, b):
        return self._rest_order("amend", b)

    def _order_cancel(self, q, b):
        return self._rest_order("cancel", b)

    def _rest_order(self, action: str, b: dict):
        code, msg, data = self._order_op(action, b)
        if code:
            return _err(code, msg)
        return _ok(data)

    def _order_cancel_all(self, q, b):
        code = self._take_fault(True)
        if code:
            return _err(code, ERRORS[code])
        if b.get("category") != "linear":
            raise BybitError(10001, "params error: category")
        done = self.exchange.cancel_all(b)
        self.order_log.append({"via": "rest", "action": "cancel_all", "args": dict(b), "retCode": 0, "retMsg": "OK"})
        return _ok({"list": [{"orderId": o.order_id, "orderLinkId": o.link_id} for o in done], "success": "1"})

    def _order_cancel_batch(self, q, b):
        results, ext = [], []
        for item in b.get("request") or []:
            code, msg, data = self._order_op("cancel", {"category": b.get("category"), **item})
            results.append({"category": b.get("category"), "symbol": item.get("symbol"), **(data or {"orderId": item.get("orderId", ""), "orderLinkId": item.get("orderLinkId", "")})})
            ext.append({"code": code, "msg": msg})
        return _ok({"list": results}, ext={"list": ext})

    def _order_create_batch(self, q, b):
        results, ext = [], []
        for item in b.get("request") or []:
            code, msg, data = self._order_op("create", {"category": b.get("category"), **item})
            results.append({"category": b.get("category"), "symbol": item.get("symbol"), **(data or {"orderId": "", "orderLinkId": item.get("orderLinkId", "")}), "createAt": str(now_ms())})
            ext.append({"code": code, "msg": msg})
        return _ok({"list": results}, ext={"list": ext})


def _units(value: str | float, per_unit: int) -> int:
    """``"50000.1"`` with 10 per unit -> 500001, exactly; refuses values off the grid."""
    d = Decimal(str(value)) * per_unit
    if d != d.to_integral_value():
        raise ValueError(f"{value} is not a multiple of {Decimal(1) / per_unit}")
    return int(d)


def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.lower() == "true")


# Real BTCUSDT linear perpetual definition (Bybit mainnet values): tick 0.10 (so Nautilus parses a
# price precision of 2), qty step 0.001, funding every 480 minutes.
INSTRUMENT = {
    "symbol": SYMBOL,
    "contractType": "LinearPerpetual",
    "status": "Trading",
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "launchTime": "1585526400000",
    "deliveryTime": "0",
    "deliveryFeeRate": "",
    "priceScale": "2",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
    "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001", "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "100.000", "minNotionalValue": "5"},
    "unifiedMarginTrade": True,
    "fundingInterval": 480,
    "settleCoin": "USDT",
    "copyTrading": "both",
    "upperFundingRate": "0.005",
    "lowerFundingRate": "-0.005",
    "isPreListing": False,
    "preListingInfo": None,
    "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
    "displayName": "",
    "symbolType": "",
}

S = StandIn
REST_ROUTES: dict[tuple[str, str], tuple[Callable, bool]] = {
    ("GET", "/v5/market/time"): (S._market_time, False),
    ("GET", "/v5/market/instruments-info"): (S._instruments, False),
    ("GET", "/v5/market/tickers"): (S._tickers, False),
    ("GET", "/v5/market/funding/history"): (S._funding_history, False),
    ("GET", "/v5/market/recent-trade"): (S._recent_trades, False),
    ("GET", "/v5/market/orderbook"): (S._orderbook, False),
    ("GET", "/v5/market/kline"): (S._kline, False),
    ("GET", "/v5/account/fee-rate"): (S._fee_rate, True),
    ("GET", "/v5/account/wallet-balance"): (S._wallet_balance, True),
    ("GET", "/v5/account/info"): (S._account_info, True),
    ("GET", "/v5/account/transaction-log"): (S._transaction_log, True),
    ("GET", "/v5/user/query-api"): (S._query_api, True),
    ("GET", "/v5/position/list"): (S._position_list, True),
    ("GET", "/v5/order/realtime"): (S._order_realtime, True),
    ("GET", "/v5/order/history"): (S._order_history, True),
    ("GET", "/v5/execution/list"): (S._execution_list, True),
    ("POST", "/v5/position/set-leverage"): (S._set_leverage, True),
    ("POST", "/v5/position/switch-mode"): (S._switch_mode, True),
    ("POST", "/v5/position/trading-stop"): (S._trading_stop, True),
    ("POST", "/v5/account/set-margin-mode"): (S._set_margin_mode, True),
    ("POST", "/v5/order/create"): (S._order_create, True),
    ("POST", "/v5/order/amend"): (S._order_amend, True),
    ("POST", "/v5/order/cancel"): (S._order_cancel, True),
    ("POST", "/v5/order/cancel-all"): (S._order_cancel_all, True),
    ("POST", "/v5/order/cancel-batch"): (S._order_cancel_batch, True),
    ("POST", "/v5/order/create-batch"): (S._order_create_batch, True),
}
del S
