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
"""

from tests.bybit_standin.remote import RemoteStandIn, launch
from tests.bybit_standin.server import StandIn

__all__ = ["StandIn", "RemoteStandIn", "launch"]
