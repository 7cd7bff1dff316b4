"""A Bybit v5 stand-in: a protocol-faithful fake Bybit on 127.0.0.1 for offline tests.

Why: the live node runs Nautilus 1.231's own Bybit clients (Rust core behind pyo3). Testing it
offline needs something that speaks Bybit v5 well enough for *those* clients: the same paths,
signatures, envelopes and field sets their serde structs require, and a market that moves.

Use
---
In-process::

    from tests.bybit_standin import StandIn
    with StandIn(seed=7) as s:            # or s = StandIn(seed=7).start(); ...; s.stop()
        s.rest_url, s.public_ws_url, s.private_ws_url, s.trade_ws_url, s.api_key, s.api_secret

Another process: ``python -m tests.bybit_standin --seed 7 --port 0`` prints one JSON line
(``rest_url``, ``public_ws_url``, ``private_ws_url``, ``trade_ws_url``, ``api_key``,
``api_secret``, ``seed``) and serves until SIGTERM/SIGINT; drive it with
``RemoteStandIn(rest_url)`` (or ``with launch(seed=7) as remote:``), which POSTs to
``/__control/<name>``.

One aiohttp server, one port, bound to 127.0.0.1: REST under ``/v5/...``, the public socket at
``/v5/public/linear``, the private one at ``/v5/private``, the trade one at ``/v5/trade``.

The market
----------
The project's synthetic generator (``auction_trader.data.synth``, deterministic by seed) is
played on the wall clock from the moment the feed starts: a tick at offset ``dt`` from the
synthetic start goes out at ``t0 + dt`` stamped with that wall-clock time. ``orderbook.1`` is a
``snapshot`` frame per L1 change (Bybit sends snapshots for depth 1), ``publicTrade`` one frame
per millisecond of trades (taker side in ``S``), ``tickers`` at most every 100 ms with
``fundingRate``/``nextFundingTime``. Prices are printed with two decimals and sizes with three,
as Bybit does for BTCUSDT. After ``hours`` (default 2) the market is replayed from its start.

Accounts and matching: see :mod:`tests.bybit_standin.engine`.

What Nautilus 1.231 asks for (measured against this stand-in)
------------------------------------------------------------
* Instrument provider: ``GET /v5/account/fee-rate`` (signed; maker/taker fees of the instrument
  come from here, not from the instrument) then ``GET /v5/market/instruments-info``
  (``category=linear``). ``priceFilter.tickSize`` is ``"0.10"`` on real Bybit, and Nautilus takes
  the precision from the string: BTCUSDT-LINEAR.BYBIT has **price precision 2** (increment 0.10),
  size increment 0.001, min quantity 0.001 - not the precision 1 of the project's backtest
  instrument.
* Execution client start: ``GET /v5/account/wallet-balance?accountType=UNIFIED``,
  ``GET /v5/user/query-api`` (market-maker level), optional ``POST /v5/position/set-leverage``
  (110043 "not modified" is treated as success), ``/v5/position/switch-mode`` (110025 likewise),
  ``/v5/account/set-margin-mode``; then the private socket (``auth``, ``subscribe`` ``order``,
  ``execution``, ``position``, ``wallet``) and, except in DEMO, the trade socket (``auth``).
* Reconciliation: ``/v5/order/realtime`` (also with ``orderFilter=StopOrder``),
  ``/v5/order/history`` (same), ``/v5/execution/list``, ``/v5/position/list``.
* REST order entry (DEMO): ``POST /v5/order/create`` then a read-back ``GET /v5/order/realtime``
  by ``orderId``/``orderLinkId`` - which must find the order even when it is already filled (a
  market order), so a look-up by id here returns orders in any state.
* ``request_funding_rates`` without a start pages ``/v5/market/funding/history`` backwards until a
  page comes back empty: history here starts 30 days before the stand-in started.
* Signatures: REST ``HMAC_SHA256(secret, timestamp + api_key + recv_window + payload)`` with the
  payload the raw query string (GET) or the body (POST); wrong signature -> ``retCode`` 10004,
  unknown key -> 10003, stale timestamp -> 10002 (HTTP 200, as Bybit). Sockets:
  ``{"op":"auth","args":[key, expires_ms, HMAC_SHA256(secret, "GET/realtime" + expires)]}``.
* Socket envelopes follow Bybit: public/private acks are snake_case
  (``success``/``ret_msg``/``conn_id``/``req_id``; Nautilus sends ``req_id`` = the topic and
  matches acks on it), trade-socket answers camelCase (``reqId``/``retCode``/``retMsg``/``data``/
  ``header``/``connId``). Public ``{"op":"ping"}`` -> ``{"success":true,"ret_msg":"pong",...,
  "op":"ping"}``; private and trade -> ``{"op":"pong","args":[ms],...}``.

Quirks of Nautilus 1.231's Bybit clients (each measured here; tests in tests/test_bybit_standin.py)
--------------------------------------------------------------------------------------------------
* **ModifyOrder drops the trigger price.** The amend Nautilus sends (``order.amend`` on the trade
  socket, ``/v5/order/amend`` in DEMO) carries only ``qty``/``price``: a trigger-only change
  arrives as an empty amend, Bybit answers "The order remains unchanged..." and Nautilus emits
  ``OrderModifyRejected``; a qty + trigger change resizes and silently keeps the old trigger.
  Move a stop by cancel + replace.
* **Rejections on the trade socket are immediate, on REST (DEMO) they are not.** A 10006 or
  110007 answer to ``order.create`` becomes ``OrderRejected`` at once; the same answer to
  ``POST /v5/order/create`` leaves the order SUBMITTED until Nautilus's in-flight check gives up
  and rejects it with reason ``UNKNOWN`` - 42 s after submission here.
* A 10006 answer to a cancel becomes ``OrderCancelRejected``.
* Conditional orders go out with ``triggerBy=LastPrice`` (none on REST: Bybit's default is
  LastPrice too) and ``triggerDirection`` 1 (rises to) / 2 (falls to); a stop-market sell is
  ``orderType=Market`` + ``triggerDirection=2``, a market-if-touched (take-profit) sell
  ``triggerDirection=1``; Nautilus maps them back from ``stopOrderType=Stop`` + direction + side.
  Orders carry ``orderLinkId`` = the Nautilus ``client_order_id``; tags are not sent.
* The stock data client passes ``base_url_http`` as the public socket's URL, so it cannot reach
  ``/v5/public/linear`` here; the tests swap in a ``BybitWebSocketClient.new_public(url=...)``.
* Reconnects: after a dropped socket Nautilus reconnects, re-authenticates (private, trade) and
  resubscribes on its own; nothing reaches Python (watch ``stats()["connects"]``). Its backoff
  grows with each drop in a row: 10 drops of one socket, each reconnection dropped 100 ms after it
  opened, took 22-23 s, gaps 0.2, 0.8, 1.0, 1.4, 2.0, 2.8, 4.0, 5.0, 5.0 s (capped near 5 s);
  the delay did not reset after a connection had stayed up 6 s (6 more drops 6 s apart: ~4.8 s
  each). It resets once a connection has stayed up 10 s (the network crate's stability threshold:
  "remained active for at least 10s, resetting reconnect cycle"); the Bybit sockets' backoff (500 ms
  initial, x1.5, 5 s max, 250 ms jitter) is fixed in Rust and cannot be configured from Python.
  So 100 drops in a row of one socket cost ~8 minutes; cycles of 6 drops of all three sockets
  together, the next cycle 10.4 s after the latest reconnection, ~2.8 s per drop of each socket
  (102 of each in 280-290 s, tests/test_live_drops.py).
  It queues one ``auth`` per reconnection (``expires`` = then + 5 s) and flushes the queue onto the
  connection that survives, so that one receives several auths, the stale ones expired (10002).
  The stand-in keeps a connection authenticated once any auth succeeded (a failed repeat does not
  undo it); whether Bybit does the same is not documented - if it does not, a burst of drops
  leaves Nautilus's trade socket unauthenticated and every order is rejected (10003).
* The private ``order``/``execution`` frames of an order follow its ack by ``private_delay_ms``
  (20 ms, as observed on Bybit). ``delay_acks(ms, frames_first=True)`` sends them before a delayed
  ack; with 1.231 and a 200 ms delay Nautilus still emitted ``OrderAccepted`` and the fill in
  order (the lost-``OrderAccepted`` race reported earlier did not reproduce here).
* pybit 5.x: ``HTTP(max_retries=0)`` never sends a request (UnboundLocalError); use >= 1. Point
  it at the stand-in with ``session.endpoint = rest_url``.

Controls (``StandIn`` methods; the same names under ``/__control/<name>`` and on ``RemoteStandIn``)
-------------------------------------------------------------------------------------------------
``drop(kind, times=1, after_ms=300)`` (kind public/private/trade; with ``times`` > 1 each
reconnection is dropped again ``after_ms`` later), ``freeze(frozen=True)`` (no market data sent;
the market and the matching engine keep going), ``fail_next(n, code=10006|110007|10016,
scope="orders"|"all")``, ``delay_acks(ms, frames_first=False)``, ``partial_fills(max_qty)``
(resting orders fill at most ``max_qty`` per book update or trade that reaches them; ``None``:
whole), ``set_position(size,
avg_price)`` (alias ``seed_position``; signed BTC, pushed on the private ``position`` topic),
``seed_order(**bybit_args)``, ``push_quote(bid, ask, bid_size, ask_size)`` and
``push_trade(price, size, side)`` (deterministic prices; run with ``feed=False``/``--no-feed``),
``settle_funding(rate=None)`` (funding also settles by itself at 00/08/16 UTC). Read-backs:
``orders()``, ``open_orders()``, ``fills()``, ``position()``, ``wallet()``, ``orders_received()``
(client order requests, rejected ones included), ``order_requests()`` (each with its arguments and
answer), ``request_log()``, ``book()``, ``stats()`` (connections per socket kind and when, every socket
auth and its answer, ticks sent, unhandled paths).

Limits: one symbol (BTCUSDT linear), one-way mode, no liquidation, no position TP/SL
(``/v5/position/trading-stop`` answers 10001), ``tickers`` always as full snapshots, the book is
one level deep (``orderbook.50`` etc. get the same one-level snapshots), market orders fill in
full at the touch whatever the displayed size.
"""

from tests.bybit_standin.remote import RemoteStandIn, launch
from tests.bybit_standin.server import StandIn

__all__ = ["StandIn", "RemoteStandIn", "launch"]
