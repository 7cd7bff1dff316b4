"""The Bybit v5 stand-in (tests/bybit_standin): signatures, shapes Nautilus 1.231 parses, the
matching engine with hand-checked fills, fees and P&L, the fault controls, the CLI, and one
TradingNode per order path (trade socket, REST) filling a market order end to end."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
import urllib.request
from decimal import Decimal

import aiohttp
import pytest

from tests.bybit_standin import RemoteStandIn, StandIn, launch

SYMBOL = "BTCUSDT"

# Nautilus leaves its executor's worker coroutine pending when a TradingNode is disposed; Python
# reports it when the coroutine is collected after the loop closed. Nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


# -- helpers --------------------------------------------------------------------------------------


def _headers(s, payload: str, secret: str | None = None, key: str | None = None, ts: int | None = None) -> dict:
    ts_s = str(ts if ts is not None else int(time.time() * 1000))
    key = key or s.api_key
    sign = hmac.new((secret or s.api_secret).encode(), (ts_s + key + "5000" + payload).encode(), hashlib.sha256).hexdigest()
    return {"X-BAPI-API-KEY": key, "X-BAPI-SIGN": sign, "X-BAPI-TIMESTAMP": ts_s, "X-BAPI-RECV-WINDOW": "5000"}


def get(s, path: str, params: dict | None = None, **sign) -> dict:
    qs = urllib.parse.urlencode(params or {})
    req = urllib.request.Request(f"{s.rest_url}{path}?{qs}", headers=_headers(s, qs, **sign))
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def post(s, path: str, body: dict, **sign) -> dict:
    text = json.dumps(body)
    req = urllib.request.Request(f"{s.rest_url}{path}", data=text.encode(), method="POST", headers={"Content-Type": "application/json", **_headers(s, text, **sign)})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def order(s, signing: dict | None = None, **args) -> dict:
    return post(s, "/v5/order/create", {"category": "linear", "symbol": SYMBOL, **args}, **(signing or {}))


def wait_until(cond, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def quiet():
    """A stand-in with no synthetic feed: the book and last price move only when a test says so."""
    with StandIn(seed=7, feed=False) as s:
        s.push_quote("50000.0", "50000.1", "2.000", "3.000")
        s.push_trade("50000.0", "0.001", "Sell")
        yield s


@pytest.fixture(scope="module")
def live():
    """A stand-in streaming the seeded synthetic market."""
    with StandIn(seed=7) as s:
        wait_until(lambda: s.book()["bid"] is not None, 30, "the first synthetic quote")
        yield s


# -- REST: signatures and shapes ------------------------------------------------------------------


def test_rest_signature_is_checked_like_bybit(quiet):
    ok = get(quiet, "/v5/account/wallet-balance", {"accountType": "UNIFIED"})
    assert ok["retCode"] == 0 and ok["result"]["list"][0]["totalWalletBalance"] == "100000.00000000"
    bad = get(quiet, "/v5/account/wallet-balance", {"accountType": "UNIFIED"}, secret="not-the-secret")
    assert bad["retCode"] == 10004 and bad["retMsg"].startswith("error sign!")
    assert get(quiet, "/v5/account/wallet-balance", {"accountType": "UNIFIED"}, key="someone-else")["retCode"] == 10003
    assert get(quiet, "/v5/account/wallet-balance", {"accountType": "UNIFIED"}, ts=int(time.time() * 1000) - 60_000)["retCode"] == 10002
    # POST signs the body: a body signed with the wrong secret is refused and places nothing.
    assert order(quiet, {"secret": "nope"}, side="Buy", orderType="Market", qty="0.001")["retCode"] == 10004
    assert quiet.orders() == []
    # Public market endpoints need no signature.
    with urllib.request.urlopen(f"{quiet.rest_url}/v5/market/time", timeout=5) as r:
        t = json.loads(r.read())
    assert t["retCode"] == 0 and abs(int(t["result"]["timeSecond"]) - time.time()) < 5


def test_instrument_parses_in_nautilus_with_bybit_precisions(quiet):
    from nautilus_trader.adapters.bybit.providers import BybitInstrumentProvider
    from nautilus_trader.config import InstrumentProviderConfig
    from nautilus_trader.core import nautilus_pyo3
    from nautilus_trader.core.nautilus_pyo3 import BybitProductType

    async def load():
        http = nautilus_pyo3.BybitHttpClient(api_key=quiet.api_key, api_secret=quiet.api_secret, base_url=quiet.rest_url, demo=False, testnet=False, proxy_url=None)
        provider = BybitInstrumentProvider(http, (BybitProductType.LINEAR,), InstrumentProviderConfig(load_all=True))
        await asyncio.wait_for(provider.load_all_async(), 20)
        return provider.list_all()

    (inst,) = asyncio.run(load())
    assert str(inst.id) == "BTCUSDT-LINEAR.BYBIT"
    assert inst.price_precision == 2 and str(inst.price_increment) == "0.10"  # tickSize "0.10"
    assert str(inst.size_increment) == "0.001" and str(inst.min_quantity) == "0.001"
    assert inst.maker_fee == Decimal("0.0002") and inst.taker_fee == Decimal("0.00055")  # from /v5/account/fee-rate
    assert ("GET", "/v5/account/fee-rate") in quiet.request_log()


def test_nautilus_http_client_reads_orders_fills_and_positions(quiet):
    from nautilus_trader.core import nautilus_pyo3 as p
    from nautilus_trader.core.nautilus_pyo3 import BybitProductType as PT

    order(quiet, side="Buy", orderType="Market", qty="0.010", orderLinkId="mkt-1")
    order(quiet, side="Sell", orderType="Market", qty="0.010", orderLinkId="stop-1", triggerPrice="49000.0", triggerDirection=2, reduceOnly=True)
    order(quiet, side="Buy", orderType="Limit", qty="0.005", price="49500.0", orderLinkId="lim-1", timeInForce="GTC")

    async def read():
        http = p.BybitHttpClient(api_key=quiet.api_key, api_secret=quiet.api_secret, base_url=quiet.rest_url, demo=False, testnet=False, proxy_url=None)
        for inst in (await http.request_instruments(PT.LINEAR)):
            http.cache_instrument(inst)
        acct, iid = p.AccountId("BYBIT-UNIFIED"), p.InstrumentId.from_str("BTCUSDT-LINEAR.BYBIT")
        state = await http.request_account_state(p.BybitAccountType.UNIFIED, acct)
        orders = await http.request_order_status_reports(acct, PT.LINEAR, iid, True)
        fills = await http.request_fill_reports(acct, PT.LINEAR, None)
        positions = await http.request_position_status_reports(acct, PT.LINEAR, None)
        stop = await http.query_order(acct, PT.LINEAR, iid, p.ClientOrderId("stop-1"))
        return state, orders, fills, positions, stop

    state, orders, fills, positions, stop = asyncio.run(asyncio.wait_for(read(), 30))
    fee = Decimal("500.001") * Decimal("0.00055")  # 0.010 BTC bought at the ask 50000.1
    assert str(state.balances[0].total) == f"{Decimal(100000) - fee} USDT"
    assert sorted(str(o.order_type) for o in orders) == ["LIMIT", "STOP_MARKET"]
    (fill,) = fills
    assert str(fill.last_px) == "50000.10" and str(fill.last_qty) == "0.010" and str(fill.commission) == f"{fee} USDT"
    (pos,) = positions
    assert str(pos.position_side) == "LONG" and str(pos.quantity) == "0.010"
    assert str(stop.trigger_price) == "49000.00" and str(stop.order_status) == "ACCEPTED"


# -- matching engine (hand-checked) --------------------------------------------------------------


def test_market_order_fills_at_the_touch_and_books_fee_position_and_wallet(quiet):
    r = order(quiet, side="Buy", orderType="Market", qty="0.010", orderLinkId="m1")
    assert r["retCode"] == 0 and r["result"]["orderLinkId"] == "m1"
    (f,) = quiet.fills()
    assert (f["price"], f["qty"], f["is_maker"]) == ("50000.1", "0.010", False)
    assert Decimal(f["fee"]) == Decimal("0.27500055")  # 500.001 * 0.055 %
    pos = quiet.position()
    assert (pos["side"], pos["size"], pos["avgPrice"]) == ("Buy", "0.010", "50000.10000000")
    assert quiet.wallet()["totalWalletBalance"] == "99999.72499945"
    # Sell at the bid closes it: realised (50000.0 - 50000.1) * 0.01 = -0.001, minus both fees.
    order(quiet, side="Sell", orderType="Market", qty="0.010")
    pos = quiet.position()
    assert (pos["side"], pos["size"]) == ("", "0.000")
    sell_fee = Decimal("500.000") * Decimal("0.00055")
    assert Decimal(quiet.wallet()["totalWalletBalance"]) == Decimal(100000) - Decimal("0.27500055") - Decimal("0.001") - sell_fee


def test_limit_rests_then_fills_as_maker_when_crossed_or_traded_through(quiet):
    buy = order(quiet, side="Buy", orderType="Limit", qty="0.020", price="49990.0", timeInForce="GTC")["result"]["orderId"]
    sell = order(quiet, side="Sell", orderType="Limit", qty="0.010", price="50010.0", timeInForce="GTC")["result"]["orderId"]
    assert {o["orderId"]: o["orderStatus"] for o in quiet.open_orders()} == {buy: "New", sell: "New"}
    quiet.push_trade("50010.0", "0.5", "Buy")  # at the limit, not through it: no fill
    assert quiet.fills() == []
    quiet.push_trade("50010.1", "0.5", "Buy")  # through it
    quiet.push_quote("49989.9", "49990.0")  # the ask comes down to the buy
    fills = {f["order_id"]: f for f in quiet.fills()}
    assert (fills[sell]["price"], fills[sell]["is_maker"]) == ("50010.0", True)
    assert (fills[buy]["price"], fills[buy]["qty"], fills[buy]["is_maker"]) == ("49990.0", "0.020", True)
    assert Decimal(fills[buy]["fee"]) == Decimal("999.800") * Decimal("0.0002")
    pos = quiet.position()
    assert (pos["side"], pos["size"], pos["avgPrice"]) == ("Buy", "0.010", "49990.00000000")
    # realised on the 0.010 closed: (49990.0 - 50010.0) * -0.010 (a short closed lower) = +0.2
    assert Decimal(pos["curRealisedPnl"]) == Decimal("0.2") - Decimal("999.800") * Decimal("0.0002")
    assert quiet.open_orders() == []


def test_a_closing_fill_books_realised_pnl_in_the_transaction_log(quiet):
    order(quiet, side="Buy", orderType="Market", qty="0.010")  # at 50000.1
    quiet.push_quote("50100.0", "50100.1")
    order(quiet, side="Sell", orderType="Market", qty="0.010")  # at 50100.0
    rows = get(quiet, "/v5/account/transaction-log", {"accountType": "UNIFIED", "category": "linear", "type": "TRADE"})["result"]["list"]
    assert [r["side"] for r in rows] == ["Sell", "Buy"]  # newest first
    close = rows[0]
    fee = Decimal("501.000") * Decimal("0.00055")
    assert Decimal(close["cashFlow"]) == Decimal("0.999")  # (50100.0 - 50000.1) * 0.010
    assert Decimal(close["fee"]) == fee and Decimal(close["change"]) == Decimal("0.999") - fee
    assert close["cashBalance"] == quiet.wallet()["totalWalletBalance"]
    assert Decimal(quiet.position()["cumRealisedPnl"]) == Decimal("0.999") - fee - Decimal("500.001") * Decimal("0.00055")


def test_a_triggered_stop_limit_rests_then_fills_on_the_book(quiet):
    order(quiet, side="Buy", orderType="Limit", qty="0.010", price="50050.0", triggerPrice="50050.0", triggerDirection=1, orderLinkId="sl")
    quiet.push_quote("50060.0", "50060.1")
    quiet.push_trade("50060.0", "0.001", "Buy")  # triggers; the limit 50050.0 is below the ask: rests
    (o,) = quiet.orders()
    assert o["orderStatus"] == "New" and quiet.fills() == []
    quiet.push_quote("50049.9", "50050.0")
    (f,) = quiet.fills()
    assert (f["order_link_id"], f["price"], f["is_maker"]) == ("sl", "50050.0", True)


def test_partial_fills_control_fills_resting_orders_in_parts(quiet):
    quiet.partial_fills("0.004")
    oid = order(quiet, side="Buy", orderType="Limit", qty="0.010", price="49990.0", timeInForce="GTC")["result"]["orderId"]
    quiet.push_quote("49989.9", "49990.0")  # reaches it: 0.004
    quiet.push_trade("49989.9", "0.050", "Sell")  # prints through it: 0.004
    (o,) = quiet.open_orders()
    assert (o["orderStatus"], o["cumExecQty"], o["leavesQty"]) == ("PartiallyFilled", "0.008", "0.002")
    quiet.push_quote("49989.8", "49989.9")
    assert [f["qty"] for f in quiet.fills()] == ["0.004", "0.004", "0.002"] and quiet.open_orders() == []
    assert {o["orderId"]: o["orderStatus"] for o in quiet.orders()} == {oid: "Filled"}
    quiet.partial_fills(None)
    order(quiet, side="Sell", orderType="Limit", qty="0.010", price="49995.0", timeInForce="GTC")
    quiet.push_trade("49995.1", "0.5", "Buy")
    assert quiet.fills()[-1]["qty"] == "0.010" and quiet.position()["size"] == "0.000"


def test_post_only_limit_that_would_cross_is_cancelled(quiet):
    r = order(quiet, side="Buy", orderType="Limit", qty="0.010", price="50000.1", timeInForce="PostOnly")
    assert r["retCode"] == 0
    (o,) = quiet.orders()
    assert (o["orderStatus"], o["rejectReason"]) == ("Cancelled", "EC_PostOnlyWillTakeLiquidity")
    assert quiet.fills() == []


def test_reduce_only_never_increases_or_flips(quiet):
    r = order(quiet, side="Sell", orderType="Market", qty="0.010", reduceOnly=True)
    assert r["retCode"] == 110017  # nothing to reduce
    order(quiet, side="Buy", orderType="Market", qty="0.010")
    order(quiet, side="Sell", orderType="Market", qty="0.030", reduceOnly=True)  # capped at 0.010
    pos = quiet.position()
    assert (pos["side"], pos["size"]) == ("", "0.000")
    closing = quiet.fills()[-1]
    assert (closing["qty"], closing["closed_size"]) == ("0.010", "0.010")
    o = quiet.orders()[-1]
    assert (o["orderStatus"], o["cumExecQty"], o["cancelType"]) == ("PartiallyFilledCanceled", "0.010", "CancelByReduceOnly")


def test_stop_market_triggers_on_last_price_and_take_profit_on_the_way_up(quiet):
    order(quiet, side="Buy", orderType="Market", qty="0.020")
    stop = order(quiet, side="Sell", orderType="Market", qty="0.010", triggerPrice="49900.0", triggerDirection=2, reduceOnly=True, orderLinkId="stop")
    tp = order(quiet, side="Sell", orderType="Market", qty="0.010", triggerPrice="50100.0", triggerDirection=1, reduceOnly=True, orderLinkId="tp")
    assert stop["retCode"] == 0 and tp["retCode"] == 0
    assert sorted(o["orderStatus"] for o in quiet.open_orders()) == ["Untriggered", "Untriggered"]
    # The book alone never triggers: Bybit's trigger here is LastPrice.
    quiet.push_quote("49800.0", "49800.1")
    assert len(quiet.fills()) == 1
    quiet.push_trade("49900.1", "0.001", "Sell")
    assert len(quiet.fills()) == 1
    quiet.push_trade("49900.0", "0.001", "Sell")
    stop_fill = quiet.fills()[-1]
    assert (stop_fill["order_link_id"], stop_fill["price"], stop_fill["is_maker"]) == ("stop", "49800.0", False)  # market at the bid
    quiet.push_quote("50150.0", "50150.1")
    quiet.push_trade("50100.0", "0.001", "Buy")
    tp_fill = quiet.fills()[-1]
    assert (tp_fill["order_link_id"], tp_fill["price"]) == ("tp", "50150.0")
    assert quiet.position()["size"] == "0.000"
    by_link = {o["orderLinkId"]: o for o in quiet.orders()}
    assert by_link["stop"]["orderStatus"] == by_link["tp"]["orderStatus"] == "Filled"
    assert by_link["stop"]["stopOrderType"] == "Stop" and by_link["stop"]["triggerDirection"] == 2


def test_a_trigger_on_the_wrong_side_of_last_is_refused(quiet):
    r = order(quiet, side="Sell", orderType="Market", qty="0.010", triggerPrice="50100.0", triggerDirection=2)
    assert r["retCode"] == 110092  # "falls to" a price above the last trade


def test_amend_moves_a_trigger_and_cancel_ends_an_order(quiet):
    order(quiet, side="Buy", orderType="Market", qty="0.010")
    order(quiet, side="Sell", orderType="Market", qty="0.010", triggerPrice="49900.0", triggerDirection=2, reduceOnly=True, orderLinkId="s")
    a = post(quiet, "/v5/order/amend", {"category": "linear", "symbol": SYMBOL, "orderLinkId": "s", "triggerPrice": "49800.0"})
    assert a["retCode"] == 0
    quiet.push_trade("49850.0", "0.001", "Sell")  # would have hit the old trigger
    assert quiet.position()["size"] == "0.010"
    assert post(quiet, "/v5/order/amend", {"category": "linear", "symbol": SYMBOL, "orderLinkId": "s", "triggerPrice": "49800.0"})["retCode"] == 10001  # unchanged
    c = post(quiet, "/v5/order/cancel", {"category": "linear", "symbol": SYMBOL, "orderLinkId": "s"})
    assert c["retCode"] == 0
    (o,) = [o for o in quiet.orders() if o["orderLinkId"] == "s"]
    assert o["orderStatus"] == "Deactivated"  # Bybit's state for a cancelled untriggered conditional
    assert post(quiet, "/v5/order/cancel", {"category": "linear", "symbol": SYMBOL, "orderLinkId": "s"})["retCode"] == 110001
    quiet.push_trade("49700.0", "0.001", "Sell")
    assert quiet.position()["size"] == "0.010"


def test_insufficient_margin_is_110007(quiet):
    # 100000 USDT at 10x leverage buys about 19.9 BTC at 50000.
    assert order(quiet, side="Buy", orderType="Market", qty="25.000")["retCode"] == 110007
    assert order(quiet, side="Buy", orderType="Market", qty="1.000")["retCode"] == 0


def test_account_settings_answer_like_bybit(quiet):
    lev = {"category": "linear", "symbol": SYMBOL, "buyLeverage": "5", "sellLeverage": "5"}
    assert post(quiet, "/v5/position/set-leverage", lev)["retCode"] == 0
    assert post(quiet, "/v5/position/set-leverage", lev)["retCode"] == 110043
    assert post(quiet, "/v5/position/switch-mode", {"category": "linear", "symbol": SYMBOL, "mode": 0})["retCode"] == 110025
    assert post(quiet, "/v5/account/set-margin-mode", {"setMarginMode": "REGULAR_MARGIN"})["retCode"] == 0
    assert quiet.position()["leverage"] == "5"


def test_funding_history_ticker_and_transaction_log(quiet):
    hist = get(quiet, "/v5/market/funding/history", {"category": "linear", "symbol": SYMBOL, "limit": 3})["result"]["list"]
    stamps = [int(r["fundingRateTimestamp"]) for r in hist]
    assert len(stamps) == 3 and all(t % (8 * 3600_000) == 0 for t in stamps) and stamps == sorted(stamps, reverse=True)
    (tick,) = get(quiet, "/v5/market/tickers", {"category": "linear", "symbol": SYMBOL})["result"]["list"]
    assert tick["fundingRate"] == "0.0001" and tick["bid1Price"] == "50000.00" and tick["ask1Price"] == "50000.10"
    order(quiet, side="Buy", orderType="Market", qty="0.100")
    settled = quiet.settle_funding("0.0002")
    # long 0.1 BTC marked at the mid 50000.05 pays 0.02 % of 5000.005
    assert Decimal(settled["funding"]) == Decimal("1.00000100")
    log = get(quiet, "/v5/account/transaction-log", {"accountType": "UNIFIED", "category": "linear", "type": "SETTLEMENT"})["result"]["list"]
    assert [(r["type"], r["funding"], r["side"]) for r in log] == [("SETTLEMENT", "1.00000100", "Buy")]


# -- public socket --------------------------------------------------------------------------------


def test_public_frames_decode_with_nautilus_websocket_client(live):
    from nautilus_trader.core import nautilus_pyo3 as p
    from nautilus_trader.core.nautilus_pyo3 import BybitEnvironment, BybitProductType
    from nautilus_trader.model.data import OrderBookDeltas, TradeTick, capsule_to_data
    from nautilus_trader.model.enums import AggressorSide, BookAction

    got: list = []

    async def run():
        http = p.BybitHttpClient(api_key=None, api_secret=None, base_url=live.rest_url, demo=False, testnet=False, proxy_url=None)
        ws = p.BybitWebSocketClient.new_public(product_type=BybitProductType.LINEAR, environment=BybitEnvironment.MAINNET, url=live.public_ws_url)
        for inst in await http.request_instruments(BybitProductType.LINEAR):
            ws.cache_instrument(inst)
        iid = p.InstrumentId.from_str("BTCUSDT-LINEAR.BYBIT")
        await ws.connect(asyncio.get_running_loop(), lambda m: got.append(capsule_to_data(m) if p.is_pycapsule(m) else m))
        await ws.wait_until_active(10.0)
        await ws.subscribe_orderbook(iid, 1)
        await ws.subscribe_trades(iid)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not ({OrderBookDeltas, TradeTick} <= {type(x) for x in got} and len(got) >= 10):
            await asyncio.sleep(0.1)
        await ws.close()

    asyncio.run(asyncio.wait_for(run(), 40))
    books = [x for x in got if isinstance(x, OrderBookDeltas)]
    trades = [x for x in got if isinstance(x, TradeTick)]
    assert books and trades
    # An orderbook.1 snapshot: clear, then one bid and one ask level, prices on the 0.10 grid.
    deltas = books[-1].deltas
    assert deltas[0].action == BookAction.CLEAR and len(deltas) == 3
    bid, ask = deltas[1].order, deltas[2].order
    assert bid.price.precision == 2 and bid.price < ask.price and (ask.price.as_decimal() - bid.price.as_decimal()) % Decimal("0.1") == 0
    assert all(t.size.precision == 3 and t.aggressor_side in (AggressorSide.BUYER, AggressorSide.SELLER) for t in trades)
    assert abs(trades[-1].ts_event / 1e9 - time.time()) < 5  # stamped on the wall clock


def test_public_socket_ping_pong_subscribe_errors_and_freeze(live):
    async def run():
        async with aiohttp.ClientSession() as session, session.ws_connect(live.public_ws_url) as ws:
            await ws.send_str(json.dumps({"op": "ping", "req_id": "p1"}))
            pong = json.loads((await ws.receive(timeout=5)).data)
            assert pong == {"success": True, "ret_msg": "pong", "conn_id": pong["conn_id"], "req_id": "p1", "op": "ping"}
            await ws.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.1.ETHUSDT"], "req_id": "bad"}))
            nack = json.loads((await ws.receive(timeout=5)).data)
            assert nack["success"] is False and "orderbook.1.ETHUSDT" in nack["ret_msg"]
            await ws.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.1.BTCUSDT"], "req_id": "orderbook.1.BTCUSDT"}))
            ack = json.loads((await ws.receive(timeout=5)).data)
            assert ack["success"] is True and ack["req_id"] == "orderbook.1.BTCUSDT"
            first = json.loads((await ws.receive(timeout=10)).data)
            assert first["topic"] == "orderbook.1.BTCUSDT" and first["type"] == "snapshot" and len(first["data"]["b"]) == 1
            live.freeze(True)
            await asyncio.sleep(0.2)
            while True:  # drain what was in flight
                try:
                    await ws.receive(timeout=0.3)
                except asyncio.TimeoutError:
                    break
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=2.0)
            live.freeze(False)
            resumed = json.loads((await ws.receive(timeout=10)).data)
            assert resumed["topic"] == "orderbook.1.BTCUSDT"

    try:
        asyncio.run(run())
    finally:
        live.freeze(False)


# -- private and trade sockets ---------------------------------------------------------------------


def _auth(s, secret: str | None = None) -> dict:
    expires = int(time.time() * 1000) + 10_000
    sign = hmac.new((secret or s.api_secret).encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    return {"op": "auth", "args": [s.api_key, expires, sign]}


def test_private_and_trade_sockets_ack_then_order_frames(quiet):
    async def run():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(quiet.private_ws_url) as priv, session.ws_connect(quiet.trade_ws_url) as trade:
                await priv.send_str(json.dumps(_auth(quiet, secret="wrong")))
                refused = json.loads((await priv.receive(timeout=5)).data)
                assert refused["success"] is False and refused["op"] == "auth"
                await priv.send_str(json.dumps(_auth(quiet)))
                assert json.loads((await priv.receive(timeout=5)).data)["success"] is True
                await priv.send_str(json.dumps({"op": "subscribe", "args": ["order", "execution", "position", "wallet"], "req_id": "order"}))
                assert json.loads((await priv.receive(timeout=5)).data)["success"] is True
                await trade.send_str(json.dumps(_auth(quiet)))
                auth = json.loads((await trade.receive(timeout=5)).data)
                assert (auth["op"], auth["retCode"]) == ("auth", 0)
                await trade.send_str(json.dumps({"reqId": "r1", "header": {"X-BAPI-TIMESTAMP": str(int(time.time() * 1000))}, "op": "order.create", "args": [{"category": "linear", "symbol": SYMBOL, "side": "Buy", "orderType": "Market", "qty": "0.010", "orderLinkId": "w1"}]}))
                ack = json.loads((await trade.receive(timeout=5)).data)
                t_ack = time.monotonic()
                assert (ack["reqId"], ack["retCode"], ack["retMsg"], ack["op"], ack["data"]["orderLinkId"]) == ("r1", 0, "OK", "order.create", "w1")
                topics = []
                while len(topics) < 4:
                    frame = json.loads((await priv.receive(timeout=5)).data)
                    if not topics:
                        assert time.monotonic() - t_ack >= 0.015  # private frames trail the ack by ~20 ms
                    topics.append(frame["topic"])
                    if frame["topic"] == "execution":
                        assert frame["data"][0]["execPrice"] == "50000.10" and frame["data"][0]["orderLinkId"] == "w1"
                assert topics == ["order", "order", "execution", "position"]  # New, Filled, the fill, the position
                quiet.fail_next(1, 10006)
                await trade.send_str(json.dumps({"reqId": "r2", "op": "order.create", "args": [{"category": "linear", "symbol": SYMBOL, "side": "Buy", "orderType": "Market", "qty": "0.010"}]}))
                limited = json.loads((await trade.receive(timeout=5)).data)
                assert (limited["reqId"], limited["retCode"]) == ("r2", 10006)

    asyncio.run(asyncio.wait_for(run(), 30))
    assert quiet.position()["size"] == "0.010"
    assert quiet.orders_received() == 2


# -- controls --------------------------------------------------------------------------------------


def test_fail_next_answers_rest_orders_with_10006_then_recovers(quiet):
    quiet.fail_next(2, 10006)
    assert [order(quiet, side="Buy", orderType="Market", qty="0.001")["retCode"] for _ in range(3)] == [10006, 10006, 0]
    quiet.fail_next(1, 110007)
    r = order(quiet, side="Buy", orderType="Market", qty="0.001")
    assert (r["retCode"], r["retMsg"]) == (110007, "ab not enough for new order")
    assert len(quiet.fills()) == 1 and quiet.orders_received() == 4


def test_drop_closes_sockets_and_drops_again_after_reconnects(quiet):
    async def run():
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(quiet.private_ws_url)
            assert quiet.drop("private", times=2, after_ms=100) == 1
            msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            again = await session.ws_connect(quiet.private_ws_url)  # the reconnect is dropped too
            msg = await again.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            third = await session.ws_connect(quiet.private_ws_url)  # armed drops used up
            await third.send_str(json.dumps({"op": "ping"}))
            assert json.loads((await third.receive(timeout=5)).data)["op"] == "pong"
            await third.close()

    asyncio.run(asyncio.wait_for(run(), 30))
    assert quiet.stats()["connects"]["private"] == 3


def test_seeded_position_and_orders_show_up_in_rest_and_on_the_private_stream(quiet):
    async def run():
        async with aiohttp.ClientSession() as session, session.ws_connect(quiet.private_ws_url) as priv:
            await priv.send_str(json.dumps(_auth(quiet)))
            await priv.receive(timeout=5)
            await priv.send_str(json.dumps({"op": "subscribe", "args": ["position"]}))
            await priv.receive(timeout=5)
            quiet.set_position("-0.250", "51000.0")  # behind the client's back
            frame = json.loads((await priv.receive(timeout=5)).data)
            return frame

    frame = asyncio.run(asyncio.wait_for(run(), 30))
    (p,) = frame["data"]
    assert (frame["topic"], p["side"], p["size"], p["entryPrice"]) == ("position", "Sell", "0.250", "51000.00000000")
    (rest,) = get(quiet, "/v5/position/list", {"category": "linear", "symbol": SYMBOL})["result"]["list"]
    assert (rest["side"], rest["size"]) == ("Sell", "0.250")
    # unrealised at the mid 50000.05: (50000.05 - 51000) * -0.25 = 999.95 * 0.25 = 249.9875
    assert Decimal(rest["unrealisedPnl"]) == Decimal("249.9875")
    seeded = quiet.seed_order(side="Buy", orderType="Market", qty="0.250", triggerPrice="51500.0", triggerDirection=1, reduceOnly=True, orderLinkId="their-stop")
    assert seeded["orderStatus"] == "Untriggered"
    realtime = get(quiet, "/v5/order/realtime", {"category": "linear", "orderFilter": "StopOrder"})["result"]["list"]
    assert [o["orderLinkId"] for o in realtime] == ["their-stop"]
    assert quiet.orders_received() == 0  # seeding is not a client request


def test_cli_and_remote_controls():
    with launch(seed=3, extra=["--no-feed"]) as remote:
        assert isinstance(remote, RemoteStandIn)
        assert remote.public_ws_url.endswith("/v5/public/linear") and remote.seed == 3
        remote.push_quote("40000.0", "40000.1")
        remote.fail_next(1, 10006)
        r1 = post(remote, "/v5/order/create", {"category": "linear", "symbol": SYMBOL, "side": "Sell", "orderType": "Market", "qty": "0.002"})
        r2 = post(remote, "/v5/order/create", {"category": "linear", "symbol": SYMBOL, "side": "Sell", "orderType": "Market", "qty": "0.002"})
        assert (r1["retCode"], r2["retCode"]) == (10006, 0)
        assert [f["price"] for f in remote.fills()] == ["40000.0"]
        assert remote.position()["side"] == "Sell" and remote.orders_received() == 2
        with pytest.raises(RuntimeError, match="kind must be one of"):
            remote.drop("everything")
    assert remote.returncode == 0  # SIGTERM stops it cleanly


# -- pybit (the project's REST look-ups) ------------------------------------------------------------


def test_pybit_session_pointed_at_the_stand_in(quiet):
    pybit = pytest.importorskip("pybit.unified_trading", reason="pybit is not installed in this tree")
    http = pybit.HTTP(api_key=quiet.api_key, api_secret=quiet.api_secret, max_retries=1, timeout=5)  # max_retries=0 breaks pybit 5.x
    http.endpoint = quiet.rest_url
    assert http.place_order(category="linear", symbol=SYMBOL, side="Sell", orderType="Market", qty="0.004")["retCode"] == 0
    (pos,) = http.get_positions(category="linear", symbol=SYMBOL)["result"]["list"]
    assert (pos["side"], pos["size"], pos["avgPrice"]) == ("Sell", "0.004", "50000.00000000")
    wallet = http.get_wallet_balance(accountType="UNIFIED", coin="USDT")["result"]["list"][0]
    assert Decimal(wallet["totalWalletBalance"]) == Decimal(100000) - Decimal("200.0") * Decimal("0.00055")
    (rate,) = http.get_funding_rate_history(category="linear", symbol=SYMBOL, limit=1)["result"]["list"]
    assert rate["fundingRate"] == "0.0001" and int(rate["fundingRateTimestamp"]) % (8 * 3600_000) == 0
    quiet.settle_funding()
    (row,) = http.get_transaction_log(accountType="UNIFIED", category="linear", type="SETTLEMENT")["result"]["list"]
    # short 0.004 marked at 50000.05 receives 0.01 % of 200.0002
    assert Decimal(row["funding"]) == Decimal("-0.02000002") and row["side"] == "Sell"


# -- Nautilus TradingNode end to end ----------------------------------------------------------------


class Node:
    """A minimal Nautilus TradingNode on Bybit's own clients, pointed at a stand-in.

    ``driver`` is a strategy whose order events are collected; ``do(fn)`` runs ``fn(driver)`` on
    the node's event loop (Nautilus objects are not thread-safe) and returns its result.
    """

    def __init__(self, standin, environment: str = "MAINNET") -> None:
        from nautilus_trader.adapters.bybit import BYBIT, BybitDataClientConfig, BybitExecClientConfig, BybitLiveDataClientFactory, BybitLiveExecClientFactory
        from nautilus_trader.config import InstrumentProviderConfig, LoggingConfig, StrategyConfig, TradingNodeConfig
        from nautilus_trader.core import nautilus_pyo3
        from nautilus_trader.core.nautilus_pyo3 import BybitEnvironment, BybitProductType
        from nautilus_trader.live.node import TradingNode
        from nautilus_trader.model.enums import BookType
        from nautilus_trader.model.identifiers import ClientId, InstrumentId
        from nautilus_trader.trading.strategy import Strategy

        self.iid = iid = InstrumentId.from_str("BTCUSDT-LINEAR.BYBIT")

        class Driver(Strategy):
            def __init__(self) -> None:
                super().__init__(StrategyConfig(strategy_id="Driver-001"))
                self.events: list = []
                self.books = 0

            def on_start(self) -> None:
                self.subscribe_order_book_deltas(iid, book_type=BookType.L2_MBP, depth=1)

            def on_order_book_deltas(self, deltas) -> None:
                self.books += 1

            def on_order_event(self, event) -> None:
                self.events.append(event)

        env = getattr(BybitEnvironment, environment)
        providers = InstrumentProviderConfig(load_ids=frozenset({iid}))
        common = {"api_key": standin.api_key, "api_secret": standin.api_secret, "product_types": (BybitProductType.LINEAR,), "environment": env, "base_url_http": standin.rest_url, "instrument_provider": providers}
        config = TradingNodeConfig(
            trader_id="STANDIN-001",
            logging=LoggingConfig(log_level="WARNING"),
            data_clients={BYBIT: BybitDataClientConfig(**common, instrument_status_poll_secs=None)},
            exec_clients={BYBIT: BybitExecClientConfig(**common, base_url_ws_private=standin.private_ws_url, base_url_ws_trade=standin.trade_ws_url)},
            timeout_connection=20.0,
            timeout_reconciliation=10.0,
            timeout_portfolio=10.0,
            timeout_disconnection=5.0,
            timeout_post_stop=1.0,
        )
        self.loop = asyncio.new_event_loop()  # Nautilus refuses to make one under pytest
        self.node = TradingNode(config=config, loop=self.loop)
        self.node.add_data_client_factory(BYBIT, BybitLiveDataClientFactory)
        self.node.add_exec_client_factory(BYBIT, BybitLiveExecClientFactory)
        self.driver = Driver()
        self.node.trader.add_strategy(self.driver)
        self.node.build()
        # The stock data client hands its HTTP base URL to the public socket: point it at ours.
        data_client = self.node.kernel.data_engine._clients[ClientId(BYBIT)]
        for product_type in list(data_client._ws_clients):
            data_client._ws_clients[product_type] = nautilus_pyo3.BybitWebSocketClient.new_public(product_type=product_type, environment=env, url=standin.public_ws_url)
        self.runner = threading.Thread(target=self.node.run, daemon=True)

    def __enter__(self) -> Node:
        self.runner.start()
        wait_until(lambda: self.node.is_running and self.driver.is_running, 45, "the node to run")
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.node.stop()
            self.runner.join(15)
        finally:
            self.node.dispose()
            if not self.loop.is_closed():
                self.loop.close()
            gc.collect()  # collect Nautilus's pending executor coroutine here, under this module's filter
        assert not self.runner.is_alive()

    def do(self, fn):
        done = threading.Event()
        box: list = []

        def run():
            try:
                box.append(fn(self.driver))
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(10), "the node's loop did not run the action"
        return box[0] if box else None

    def events(self, client_order_id) -> list[str]:
        return [type(e).__name__ for e in list(self.driver.events) if e.client_order_id == client_order_id]

    def wait_event(self, client_order_id, name: str, timeout: float = 30.0) -> None:
        """Waits for an order event. 30 s: on CI's 2 loaded cores the node's queues once took
        over 10 s to pass a submitted order on (the message says where it stood)."""
        try:
            wait_until(lambda: name in self.events(client_order_id), timeout, f"{name} for {client_order_id}")
        except AssertionError as e:
            kernel = self.node.kernel
            queues = f"risk cmd {kernel.risk_engine.cmd_qsize()}, exec cmd {kernel.exec_engine.cmd_qsize()}, exec evt {kernel.exec_engine.evt_qsize()}"
            raise AssertionError(f"{e} (got {self.events(client_order_id)}; queues: {queues})") from None

    def submit(self, make) -> object:
        """``make(order_factory, instrument_id)`` -> order; submits it and returns its client id."""

        def go(d):
            o = make(d.order_factory, self.iid)
            d.submit_order(o)
            return o.client_order_id

        return self.do(go)


def _qty(text: str):
    from nautilus_trader.model.objects import Quantity

    return Quantity.from_str(text)


def _px(text: str):
    from nautilus_trader.model.objects import Price

    return Price.from_str(text)


@pytest.mark.parametrize("environment", ["MAINNET", "DEMO"])  # orders over the trade socket / over REST
def test_trading_node_market_order_fills_against_the_streamed_market(live, environment):
    from nautilus_trader.model.enums import OrderSide

    before, fills_before = live.position()["size"], len(live.fills())
    with Node(live, environment) as n:
        wait_until(lambda: n.driver.books >= 2, 20, "order book updates")
        coid = n.submit(lambda f, i: f.market(i, OrderSide.BUY, _qty("0.010")))
        n.wait_event(coid, "OrderFilled", 20)
        events = list(n.driver.events)
    assert [type(e).__name__ for e in events] == ["OrderInitialized", "OrderSubmitted", "OrderAccepted", "OrderFilled"]
    filled = events[-1]
    venue_fill = live.fills()[fills_before]
    assert venue_fill["order_link_id"] == str(coid)  # orderLinkId = client_order_id
    assert filled.last_px.as_decimal() == Decimal(venue_fill["price"]) and filled.last_px.precision == 2
    assert filled.commission.as_decimal() == Decimal(venue_fill["fee"])
    assert Decimal(live.position()["size"]) == Decimal(before) + Decimal("0.010")


def test_trading_node_stop_take_profit_amend_cancel_and_a_rate_limit(quiet):
    """Over the trade socket: a stop and a take-profit (reduce-only, LastPrice), the TP filled on a
    last-price touch, the stop resized and then capped at what is left, a limit cancelled, and
    10006/110007 answers surfacing as OrderRejected.

    Measured quirk: Nautilus 1.231's Bybit ModifyOrder drops ``trigger_price`` (its amend carries
    only qty and price), so moving a stop's trigger is rejected as "unchanged" and a stop must be
    moved by cancel + replace."""
    from nautilus_trader.model.enums import OrderSide, TimeInForce

    with Node(quiet) as n:
        entry = n.submit(lambda f, i: f.market(i, OrderSide.BUY, _qty("0.010")))
        n.wait_event(entry, "OrderFilled")
        stop = n.submit(lambda f, i: f.stop_market(i, OrderSide.SELL, _qty("0.010"), _px("49900.00"), reduce_only=True))
        tp = n.submit(lambda f, i: f.market_if_touched(i, OrderSide.SELL, _qty("0.005"), _px("50100.00"), reduce_only=True))
        n.wait_event(stop, "OrderAccepted")
        n.wait_event(tp, "OrderAccepted")
        venue = {o["orderLinkId"]: o for o in quiet.orders()}
        assert (venue[str(stop)]["triggerDirection"], venue[str(stop)]["reduceOnly"], venue[str(stop)]["triggerBy"]) == (2, True, "LastPrice")
        assert (venue[str(tp)]["triggerDirection"], venue[str(tp)]["orderStatus"]) == (1, "Untriggered")

        n.do(lambda d: d.modify_order(d.cache.order(stop), trigger_price=_px("49800.00")))
        n.wait_event(stop, "OrderModifyRejected")
        amend = quiet.order_requests()[-1]
        assert amend["action"] == "amend" and "triggerPrice" not in amend["args"] and amend["retCode"] == 10001
        n.do(lambda d: d.modify_order(d.cache.order(stop), quantity=_qty("0.008")))
        n.wait_event(stop, "OrderUpdated")
        assert {o["orderLinkId"]: o for o in quiet.orders()}[str(stop)]["qty"] == "0.008"

        quiet.push_quote("50150.0", "50150.1")
        quiet.push_trade("50100.0", "0.001", "Buy")  # touches the TP
        n.wait_event(tp, "OrderFilled")
        quiet.push_quote("49750.0", "49750.1")
        quiet.push_trade("49900.0", "0.001", "Sell")  # the stop: 0.008 against the 0.005 left
        n.wait_event(stop, "OrderFilled")
        wait_until(lambda: n.do(lambda d: d.cache.order(stop).is_closed), 30, "the capped stop to close")
        stop_fills = [e for e in n.driver.events if e.client_order_id == stop and type(e).__name__ == "OrderFilled"]
        assert [str(e.last_qty) for e in stop_fills] == ["0.005"] and stop_fills[0].last_px.as_decimal() == Decimal("49750.0")
        assert quiet.position()["size"] == "0.000"

        limit = n.submit(lambda f, i: f.limit(i, OrderSide.BUY, _qty("0.010"), _px("49000.00"), time_in_force=TimeInForce.GTC))
        n.wait_event(limit, "OrderAccepted")
        n.do(lambda d: d.cancel_order(d.cache.order(limit)))
        n.wait_event(limit, "OrderCanceled")

        quiet.fail_next(1, 10006)
        limited = n.submit(lambda f, i: f.market(i, OrderSide.BUY, _qty("0.010")))
        n.wait_event(limited, "OrderRejected")
        quiet.fail_next(1, 110007)
        poor = n.submit(lambda f, i: f.market(i, OrderSide.BUY, _qty("0.010")))
        n.wait_event(poor, "OrderRejected")

        quiet.partial_fills("0.004")  # a resting entry filled in three parts
        parts = n.submit(lambda f, i: f.limit(i, OrderSide.BUY, _qty("0.010"), _px("49700.00"), time_in_force=TimeInForce.GTC))
        n.wait_event(parts, "OrderAccepted")
        for bid, ask in (("49699.9", "49700.0"), ("49699.8", "49699.9"), ("49699.7", "49699.8")):
            quiet.push_quote(bid, ask)
        wait_until(lambda: n.events(parts).count("OrderFilled") == 3, 30, "three partial fills")
        assert [str(e.last_qty) for e in n.driver.events if e.client_order_id == parts and type(e).__name__ == "OrderFilled"] == ["0.004", "0.004", "0.002"]
        assert n.do(lambda d: (d.cache.order(parts).status_string(), str(d.cache.order(parts).filled_qty))) == ("FILLED", "0.010")
        quiet.partial_fills(None)
        flat = n.submit(lambda f, i: f.market(i, OrderSide.SELL, _qty("0.010"), reduce_only=True))
        n.wait_event(flat, "OrderFilled")
        stop_events = n.events(stop)
    assert stop_events[:3] == ["OrderInitialized", "OrderSubmitted", "OrderAccepted"]
    assert [r["action"] for r in quiet.order_requests()] == ["create", "create", "create", "amend", "amend", "create", "cancel", "create", "create", "create", "create"]
    assert all(r["via"] == "ws" for r in quiet.order_requests())
    assert quiet.open_orders() == []


def test_trading_node_reconnects_after_drops_and_keeps_trading(live):
    """Each socket dropped three times in a row (each reconnection dropped 100 ms after it opens):
    Nautilus reconnects with a growing backoff, re-authenticates, resubscribes, and trades on."""
    from nautilus_trader.model.enums import OrderSide

    with Node(live) as n:
        wait_until(lambda: n.driver.books >= 2, 20, "order book updates")
        before = dict(live.stats()["connects"])
        for kind in ("public", "private", "trade"):
            assert live.drop(kind, times=3, after_ms=100) == 1
        wait_until(lambda: all(live.stats()["connects"][k] >= before[k] + 3 for k in ("public", "private", "trade")), 45, "three reconnections of each socket")
        time.sleep(0.5)  # the last connections authenticate and resubscribe
        books = n.driver.books
        wait_until(lambda: n.driver.books > books + 2, 20, "book updates after the public reconnects")
        coid = n.submit(lambda f, i: f.market(i, OrderSide.BUY, _qty("0.001")))
        n.wait_event(coid, "OrderFilled", 20)
        auths = live.stats()["auths"]
    # Nautilus queues one auth per reconnection and flushes the queue onto the connection that
    # survives, so that connection sees several, some already expired (10002); one success is enough.
    last_trade = [a for a in auths if a["kind"] == "trade"][-1]["conn_id"]
    assert any(a["conn_id"] == last_trade and a["retCode"] == 0 for a in auths)
    assert live.order_requests()[-1]["args"]["orderLinkId"] == str(coid)
