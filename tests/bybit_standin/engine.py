"""The stand-in's exchange: one USDT-margined account trading the BTCUSDT linear perpetual.

Good enough to exercise a trading node, not a model of Bybit's matching engine:

* **market** orders fill in full at the touch (buy at the ask, sell at the bid), as taker;
* **limit** orders that cross on arrival fill at the touch as taker (``PostOnly`` ones are
  cancelled instead, as Bybit does); resting ones fill at their own price, as maker, when the
  opposite touch reaches them or a public trade prints through them (strictly beyond) - in full,
  or at most ``maker_fill_cap`` per such event when partial fills are wanted;
* **conditional** orders (``triggerPrice`` + ``triggerDirection`` 1 rise / 2 fall) wait
  ``Untriggered`` and trigger on the last traded price (Bybit's ``LastPrice``, the only trigger
  Nautilus's adapter sends for these), then act as a market or limit order;
* **reduce-only** orders never increase or flip the position: quantity is capped at the position
  when they fill, and they are cancelled (``CancelByReduceOnly``) when there is nothing to reduce;
* one-way position (``positionIdx`` 0) with average entry price, realised P&L net of fees
  (Bybit's ``cumRealisedPnl`` convention), and a USDT wallet (realised P&L and fees booked);
* fees: taker 0.055 %, maker 0.02 % by default (Bybit's VIP-0 linear rates).

Every state change is reported through ``on_event(kind, payload)`` with ``kind`` one of
``order``/``execution``/``position``/``wallet`` and the payload already in Bybit's private-stream
shape, so the server only has to wrap and deliver it.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

from tests.bybit_standin.market import PRICE_TICK, QTY_STEP, Quote, Trade

SYMBOL = "BTCUSDT"
ZERO = Decimal(0)
MIN_QTY = Decimal("0.001")
MAX_QTY = Decimal("100")


class BybitError(Exception):
    """A business error answered with Bybit's ``retCode`` and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def fmt_price(p: Decimal | None) -> str:
    return "0" if p is None else f"{p:.2f}"


def fmt_qty(q: Decimal) -> str:
    return f"{q:.3f}"


def fmt_money(x: Decimal) -> str:
    return f"{x.quantize(Decimal('0.00000001')):f}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Order:
    order_id: str
    link_id: str
    side: str  # Buy / Sell
    order_type: str  # Market / Limit
    qty: Decimal
    price: Decimal | None
    time_in_force: str
    reduce_only: bool
    close_on_trigger: bool
    trigger_price: Decimal | None
    trigger_direction: int  # 0 none, 1 rises to, 2 falls to
    trigger_by: str
    created_ms: int
    last_price_on_created: Decimal | None
    status: str = "New"
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    updated_ms: int = 0
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    create_type: str = "CreateByUser"

    @property
    def is_conditional(self) -> bool:
        return self.trigger_price is not None

    @property
    def leaves(self) -> Decimal:
        if self.status in ("Filled", "Cancelled", "Rejected", "Deactivated", "PartiallyFilledCanceled"):
            return ZERO
        return self.qty - self.cum_qty

    @property
    def open(self) -> bool:
        return self.status in ("New", "PartiallyFilled", "Untriggered", "Triggered")

    @property
    def avg_price(self) -> Decimal | None:
        return (self.cum_value / self.cum_qty) if self.cum_qty else None

    def as_bybit(self, private_stream: bool = False) -> dict:
        """The order in the shape of REST ``/v5/order/realtime`` (and, with ``private_stream``,
        of the private ``order`` topic, which adds ``category``, ``feeCurrency``, ``createType``)."""
        price = self.price  # None for market orders: printed "0" (Bybit prints a protection price)
        avg = self.avg_price
        d = {
            "orderId": self.order_id,
            "orderLinkId": self.link_id,
            "blockTradeId": "",
            "symbol": SYMBOL,
            "price": fmt_price(price),
            "qty": fmt_qty(self.qty),
            "side": self.side,
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": self.status,
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "avgPrice": fmt_price(avg) if avg is not None else ("" if private_stream else "0"),
            "leavesQty": fmt_qty(self.leaves),
            "leavesValue": fmt_money(self.leaves * (price or ZERO)),
            "cumExecQty": fmt_qty(self.cum_qty),
            "cumExecValue": fmt_money(self.cum_value),
            "cumExecFee": fmt_money(self.cum_fee),
            "timeInForce": self.time_in_force,
            "orderType": self.order_type,
            "stopOrderType": "Stop" if self.is_conditional else "",
            "orderIv": "",
            "triggerPrice": fmt_price(self.trigger_price),
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": self.trigger_direction,
            "triggerBy": self.trigger_by if self.is_conditional else "",
            "lastPriceOnCreated": fmt_price(self.last_price_on_created),
            "reduceOnly": self.reduce_only,
            "closeOnTrigger": self.close_on_trigger,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "tpslMode": "",
            "tpLimitPrice": "0",
            "slLimitPrice": "0",
            "placeType": "",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms or self.created_ms),
        }
        if private_stream:
            d["category"] = "linear"
            d["feeCurrency"] = ""
            d["createType"] = self.create_type
        return d


@dataclass
class Fill:
    exec_id: str
    order: Order
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_rate: Decimal
    is_maker: bool
    ts_ms: int
    closed_size: Decimal
    seq: int
    leaves: Decimal
    mark_price: Decimal
    realised: Decimal = ZERO  # closed P&L of this fill, before its fee
    wallet_after: Decimal = ZERO

    def as_bybit(self, private_stream: bool = False) -> dict:
        d = {
            "symbol": SYMBOL,
            "orderId": self.order.order_id,
            "orderLinkId": self.order.link_id,
            "side": self.side,
            "orderPrice": fmt_price(self.order.price),
            "orderQty": fmt_qty(self.order.qty),
            "leavesQty": fmt_qty(self.leaves),
            "createType": self.order.create_type,
            "orderType": self.order.order_type,
            "stopOrderType": "Stop" if self.order.is_conditional else "UNKNOWN",
            "execFee": fmt_money(self.fee),
            "execId": self.exec_id,
            "execPrice": fmt_price(self.price),
            "execQty": fmt_qty(self.qty),
            "execType": "Trade",
            "execValue": fmt_money(self.price * self.qty),
            "execTime": str(self.ts_ms),
            "feeCurrency": "USDT",
            "isMaker": self.is_maker,
            "feeRate": str(self.fee_rate),
            "tradeIv": "",
            "markIv": "",
            "markPrice": fmt_price(self.mark_price),
            "indexPrice": "",
            "underlyingPrice": "",
            "blockTradeId": "",
            "closedSize": fmt_qty(self.closed_size),
            "seq": self.seq,
        }
        if private_stream:
            d["category"] = "linear"
            d["isLeverage"] = "0"
        return d

    def as_record(self) -> dict:
        """Plain values for assertions."""
        return {
            "exec_id": self.exec_id,
            "order_id": self.order.order_id,
            "order_link_id": self.order.link_id,
            "side": self.side,
            "price": str(self.price),
            "qty": str(self.qty),
            "fee": str(self.fee),
            "is_maker": self.is_maker,
            "ts_ms": self.ts_ms,
            "closed_size": str(self.closed_size),
            "realised": str(self.realised),
        }


@dataclass
class Account:
    wallet: Decimal
    size: Decimal = ZERO  # signed: > 0 long, < 0 short
    avg_price: Decimal = ZERO
    cum_realised: Decimal = ZERO  # per position life: P&L net of fees, as Bybit reports it
    cur_realised: Decimal = ZERO
    leverage: Decimal = Decimal(10)
    position_mode: int = 0  # 0 one-way (MergedSingle), 3 hedge (BothSides)
    margin_mode: str = "REGULAR_MARGIN"
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)
    seq: int = 0


class Exchange:
    """Orders, fills, the position and the wallet, driven by the streamed market.

    Not thread-safe: the server calls it only from its event loop.
    """

    def __init__(
        self,
        balance: Decimal = Decimal(100_000),
        taker_fee: Decimal = Decimal("0.00055"),
        maker_fee: Decimal = Decimal("0.0002"),
        on_event: Callable[[str, dict], None] | None = None,
    ) -> None:
        self.account = Account(wallet=Decimal(balance))
        self.taker_fee, self.maker_fee = Decimal(taker_fee), Decimal(maker_fee)
        self.on_event = on_event or (lambda kind, payload: None)
        self.orders: dict[str, Order] = {}  # by orderId, in creation order
        self.by_link: dict[str, str] = {}
        self.fills: list[Fill] = []
        self.funding: list[dict] = []  # transaction-log rows of funding settlements
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        self.bid_size = self.ask_size = ZERO
        self.last: Decimal | None = None
        self.orders_received = 0
        self.maker_fill_cap: Decimal | None = None  # at most this much per maker fill (partial fills)
        self._seq = itertools.count(1)

    # -- market -------------------------------------------------------------------------------

    @property
    def mark(self) -> Decimal:
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last or ZERO

    def on_quote(self, q: Quote) -> None:
        self.bid, self.ask = Decimal(q.bid) * PRICE_TICK, Decimal(q.ask) * PRICE_TICK
        self.bid_size, self.ask_size = Decimal(q.bid_size) * QTY_STEP, Decimal(q.ask_size) * QTY_STEP
        for o in list(self.orders.values()):
            if o.status in ("New", "PartiallyFilled") and o.order_type == "Limit":  # triggered conditionals too
                if (o.side == "Buy" and self.ask <= o.price) or (o.side == "Sell" and self.bid >= o.price):
                    self._fill(o, o.price, maker=True)

    def on_trade(self, t: Trade) -> None:
        price = Decimal(t.price) * PRICE_TICK
        self.last = price
        for o in list(self.orders.values()):
            if not o.open:
                continue
            if o.is_conditional and o.status == "Untriggered":
                if (o.trigger_direction == 1 and price >= o.trigger_price) or (o.trigger_direction == 2 and price <= o.trigger_price):
                    self._trigger(o)
            elif o.order_type == "Limit" and o.status in ("New", "PartiallyFilled"):
                if (o.side == "Buy" and price < o.price) or (o.side == "Sell" and price > o.price):
                    self._fill(o, o.price, maker=True)

    # -- order entry ---------------------------------------------------------------------------

    def find(self, order_id: str | None, link_id: str | None) -> Order | None:
        if order_id:
            return self.orders.get(order_id)
        if link_id:
            oid = self.by_link.get(link_id)
            return self.orders.get(oid) if oid else None
        return None

    def create(self, args: dict) -> Order:
        """``/v5/order/create`` (and the trade socket's ``order.create``): validates, books the
        order, fills what is marketable. Raises :class:`BybitError` with Bybit's codes."""
        self.orders_received += 1
        if args.get("category") != "linear":
            raise BybitError(10001, "category only support linear")
        if args.get("symbol") != SYMBOL:
            raise BybitError(10001, "params error: symbol invalid")
        side, order_type = args.get("side"), args.get("orderType")
        if side not in ("Buy", "Sell"):
            raise BybitError(10001, "params error: side invalid")
        if order_type not in ("Market", "Limit"):
            raise BybitError(10001, "params error: orderType invalid")
        qty = _decimal(args.get("qty"), "qty")
        if qty < MIN_QTY or qty > MAX_QTY or qty % QTY_STEP:
            raise BybitError(10001, "The number of contracts exceeds minimum limit allowed" if qty < MIN_QTY else "Qty invalid")
        price = _decimal(args["price"], "price") if order_type == "Limit" else None
        if order_type == "Limit" and (price is None or price <= 0 or price % PRICE_TICK):
            raise BybitError(10001, "price invalid")
        link = str(args.get("orderLinkId") or "")
        if link and link in self.by_link:
            raise BybitError(10001, "OrderLinkedID is duplicate")
        trigger = _decimal(args["triggerPrice"], "triggerPrice") if args.get("triggerPrice") not in (None, "", "0") else None
        direction = int(args.get("triggerDirection") or 0)
        if trigger is not None:
            if trigger % PRICE_TICK or trigger <= 0:
                raise BybitError(10001, "triggerPrice invalid")
            if direction not in (1, 2):
                raise BybitError(10001, "params error: triggerDirection invalid")
            if self.last is not None and ((direction == 1 and trigger <= self.last) or (direction == 2 and trigger >= self.last)):
                word = "rising" if direction == 1 else "falling"
                raise BybitError(110093 if direction == 1 else 110092, f"expect {word}, but trigger_price[{trigger}] {'<=' if direction == 1 else '>='} current[{self.last}]??LastPrice")
        reduce_only = _flag(args.get("reduceOnly"))
        close_on_trigger = _flag(args.get("closeOnTrigger"))
        tif = args.get("timeInForce") or ("IOC" if order_type == "Market" else "GTC")
        if reduce_only and not self._reducible(side):
            raise BybitError(110017, "current position is zero, cannot fix reduce-only order qty")
        ts = now_ms()
        o = Order(
            order_id=str(uuid.uuid4()),
            link_id=link,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            time_in_force=tif,
            reduce_only=reduce_only or close_on_trigger,
            close_on_trigger=close_on_trigger,
            trigger_price=trigger,
            trigger_direction=direction if trigger is not None else 0,
            trigger_by=args.get("triggerBy") or "LastPrice",
            created_ms=ts,
            updated_ms=ts,
            last_price_on_created=self.last,
            status="Untriggered" if trigger is not None else "New",
        )
        self.orders[o.order_id] = o
        if link:
            self.by_link[link] = o.order_id
        self._emit_order(o)
        if trigger is None:
            self._work(o)
        return o

    def amend(self, args: dict) -> Order:
        self.orders_received += 1
        o = self.find(args.get("orderId"), args.get("orderLinkId"))
        if o is None or not o.open:
            raise BybitError(110001, "order not exists or too late to replace")
        changed = False
        if args.get("qty") not in (None, ""):
            qty = _decimal(args["qty"], "qty")
            if qty % QTY_STEP or qty < MIN_QTY or qty <= o.cum_qty:
                raise BybitError(10001, "Qty invalid")
            changed |= qty != o.qty
            o.qty = qty
        if args.get("price") not in (None, "") and o.order_type == "Limit":
            price = _decimal(args["price"], "price")
            if price % PRICE_TICK or price <= 0:
                raise BybitError(10001, "price invalid")
            changed |= price != o.price
            o.price = price
        if args.get("triggerPrice") not in (None, "") and o.is_conditional:
            trig = _decimal(args["triggerPrice"], "triggerPrice")
            if trig % PRICE_TICK or trig <= 0:
                raise BybitError(10001, "triggerPrice invalid")
            changed |= trig != o.trigger_price
            o.trigger_price = trig
        if not changed:
            raise BybitError(10001, "The order remains unchanged as the parameters entered match the existing ones.")
        o.updated_ms = now_ms()
        self._emit_order(o)
        if o.is_conditional and o.status == "Untriggered" and self.last is not None:
            if (o.trigger_direction == 1 and self.last >= o.trigger_price) or (o.trigger_direction == 2 and self.last <= o.trigger_price):
                self._trigger(o)
        elif not o.is_conditional or o.status == "Triggered":
            self._work(o)
        return o

    def cancel(self, args: dict) -> Order:
        self.orders_received += 1
        o = self.find(args.get("orderId"), args.get("orderLinkId"))
        if o is None or not o.open:
            raise BybitError(110001, "order not exists or too late to cancel")
        self._cancel(o, "CancelByUser")
        return o

    def cancel_all(self, args: dict) -> list[Order]:
        self.orders_received += 1
        flt = args.get("orderFilter")
        done = []
        for o in list(self.orders.values()):
            if not o.open:
                continue
            if flt == "Order" and o.is_conditional or flt == "StopOrder" and not o.is_conditional:
                continue
            self._cancel(o, "CancelByUser")
            done.append(o)
        return done

    # -- state surgery for tests ----------------------------------------------------------------

    def set_position(self, size: Decimal, avg_price: Decimal | None = None) -> None:
        """Replace the position behind the client's back (no fill, no fee), and say so on the
        private ``position`` topic as Bybit would after an out-of-band change."""
        acc = self.account
        acc.size = Decimal(size)
        acc.avg_price = Decimal(avg_price) if avg_price is not None else (self.mark if size else ZERO)
        if not size:
            acc.avg_price = ZERO
        acc.updated_ms = now_ms()
        self._emit_position()
        self._emit_wallet()

    # -- views ---------------------------------------------------------------------------------

    def position_side(self) -> str:
        return "Buy" if self.account.size > 0 else ("Sell" if self.account.size < 0 else "")

    def unrealised(self) -> Decimal:
        acc = self.account
        return (self.mark - acc.avg_price) * acc.size if acc.size else ZERO

    def position_bybit(self, private_stream: bool = False) -> dict:
        acc = self.account
        size = abs(acc.size)
        value = size * acc.avg_price
        im = value / acc.leverage if size else ZERO
        d = {
            "positionIdx": 0,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": SYMBOL,
            "side": self.position_side(),
            "size": fmt_qty(size),
            "avgPrice": fmt_money(acc.avg_price) if size else "0",
            "positionValue": fmt_money(value) if size else "0",
            "tradeMode": 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "adlRankIndicator": 2 if size else 0,
            "leverage": str(acc.leverage),
            "positionBalance": fmt_money(im),
            "markPrice": fmt_price(self.mark),
            "liqPrice": "",
            "bustPrice": "",
            "positionMM": fmt_money(im / 10),
            "positionIM": fmt_money(im),
            "tpslMode": "Full",
            "takeProfit": "0.00",
            "stopLoss": "0.00",
            "trailingStop": "0.00",
            "unrealisedPnl": fmt_money(self.unrealised()),
            "curRealisedPnl": fmt_money(acc.cur_realised),
            "cumRealisedPnl": fmt_money(acc.cum_realised),
            "seq": acc.seq,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "createdTime": str(acc.created_ms),
            "updatedTime": str(acc.updated_ms),
        }
        if private_stream:
            d["category"] = "linear"
            d["entryPrice"] = d.pop("avgPrice")
            d["sessionAvgPrice"] = ""
            d["positionIMByMp"] = d["positionIM"]
            d["positionMMByMp"] = d["positionMM"]
        return d

    def order_margin(self) -> Decimal:
        im = ZERO
        for o in self.orders.values():
            if o.open and not o.is_conditional and o.order_type == "Limit" and not o.reduce_only:
                im += o.leaves * o.price / self.account.leverage
        return im

    def wallet_bybit(self, private_stream: bool = False) -> dict:
        acc = self.account
        upl = self.unrealised()
        equity = acc.wallet + upl
        pos_im = abs(acc.size) * acc.avg_price / acc.leverage
        order_im = self.order_margin()
        available = max(ZERO, acc.wallet - pos_im - order_im + min(upl, ZERO))
        coin = {
            "coin": "USDT",
            "equity": fmt_money(equity),
            "usdValue": fmt_money(equity),
            "walletBalance": fmt_money(acc.wallet),
            "availableToWithdraw": fmt_money(available),
            "availableToBorrow": "",
            "borrowAmount": "0",
            "accruedInterest": "0",
            "totalOrderIM": fmt_money(order_im),
            "totalPositionIM": fmt_money(pos_im),
            "totalPositionMM": fmt_money(pos_im / 10),
            "unrealisedPnl": fmt_money(upl),
            "cumRealisedPnl": fmt_money(acc.cum_realised),
            "bonus": "0",
            "collateralSwitch": True,
            "marginCollateral": True,
            "locked": "0",
            "spotHedgingQty": "0",
            "spotBorrow": "0",
        }
        d = {
            "totalEquity": fmt_money(equity),
            "accountIMRate": "0",
            "totalMarginBalance": fmt_money(equity),
            "totalInitialMargin": fmt_money(pos_im + order_im),
            "accountType": "UNIFIED",
            "totalAvailableBalance": fmt_money(available),
            "accountMMRate": "0",
            "totalPerpUPL": fmt_money(upl),
            "totalWalletBalance": fmt_money(acc.wallet),
            "accountLTV": "0",
            "totalMaintenanceMargin": fmt_money(pos_im / 10),
            "coin": [coin],
        }
        if private_stream:
            d["totalPerpUpl"] = d.pop("totalPerpUPL")
        return d

    def available(self) -> Decimal:
        return Decimal(self.wallet_bybit()["totalAvailableBalance"])

    def margin_short(self, args: dict) -> bool:
        """Would a new (non-reduce-only) order need more initial margin than is available?
        Bybit answers 110007 then; the position-reducing part of an order needs none."""
        try:
            qty = Decimal(str(args.get("qty")))
            px = Decimal(str(args["price"])) if args.get("orderType") == "Limit" and args.get("price") else None
        except Exception:
            return False
        if px is None:
            px = Decimal(str(args["triggerPrice"])) if args.get("triggerPrice") not in (None, "", "0") else (self.ask if args.get("side") == "Buy" else self.bid)
        if px is None:
            return False
        if self._reducible(args.get("side", "")):
            qty = max(ZERO, qty - abs(self.account.size))
        need = qty * px / self.account.leverage + qty * px * self.taker_fee
        return need > self.available()

    # -- internals -----------------------------------------------------------------------------

    def _reducible(self, side: str) -> bool:
        size = self.account.size
        return (side == "Sell" and size > 0) or (side == "Buy" and size < 0)

    def _work(self, o: Order) -> None:
        """Fill what is marketable now (an order just placed, amended or triggered)."""
        if self.bid is None or self.ask is None:
            if o.order_type == "Market":
                self._cancel(o, "CancelByUser", reason="EC_NoImmediateQtyToFill")
            return
        if o.order_type == "Market":
            self._fill(o, self.ask if o.side == "Buy" else self.bid, maker=False)
            return
        crosses = (o.side == "Buy" and o.price >= self.ask) or (o.side == "Sell" and o.price <= self.bid)
        if crosses:
            if o.time_in_force == "PostOnly":
                self._cancel(o, "CancelByUser", reason="EC_PostOnlyWillTakeLiquidity")
                return
            self._fill(o, self.ask if o.side == "Buy" else self.bid, maker=False)
        elif o.time_in_force in ("IOC", "FOK"):
            self._cancel(o, "CancelByUser", reason="EC_NoImmediateQtyToFill")

    def _trigger(self, o: Order) -> None:
        o.status = "Triggered"
        o.updated_ms = now_ms()
        self._emit_order(o)
        if o.reduce_only and not self._reducible(o.side):
            self._cancel(o, "CancelByReduceOnly", status="Deactivated")
            return
        o.status = "New"
        self._work(o)

    def _cancel(self, o: Order, cancel_type: str, reason: str = "EC_NoError", status: str = "Cancelled") -> None:
        if o.is_conditional and o.status == "Untriggered":
            status = "Deactivated"
        o.status = "PartiallyFilledCanceled" if o.cum_qty and status == "Cancelled" else status
        o.cancel_type = cancel_type
        o.reject_reason = reason
        o.updated_ms = now_ms()
        self._emit_order(o)
        self._emit_wallet()

    def _fill(self, o: Order, price: Decimal, maker: bool) -> None:
        qty = o.qty - o.cum_qty
        acc = self.account
        if o.reduce_only:
            if not self._reducible(o.side):
                self._cancel(o, "CancelByReduceOnly")
                return
            qty = min(qty, abs(acc.size))
        if maker and self.maker_fill_cap is not None:
            qty = min(qty, self.maker_fill_cap)  # one fill per market event: the rest waits for the next
        if qty <= 0:
            return
        rate = self.maker_fee if maker else self.taker_fee
        fee = (price * qty * rate).quantize(Decimal("0.00000001"))
        signed = qty if o.side == "Buy" else -qty
        closed = ZERO
        pnl = ZERO
        if acc.size and (acc.size > 0) != (signed > 0):
            closed = min(qty, abs(acc.size))
            pnl = (price - acc.avg_price) * closed * (1 if acc.size > 0 else -1)
        new_size = acc.size + signed
        if acc.size == 0 or (acc.size > 0) == (signed > 0):
            acc.avg_price = (acc.avg_price * abs(acc.size) + price * qty) / abs(new_size)
        elif new_size and (new_size > 0) != (acc.size > 0):
            acc.avg_price = price  # flipped: the remainder opened at this price
        if new_size == 0:
            acc.avg_price = ZERO
        if acc.size == 0:
            acc.cum_realised = ZERO
            acc.created_ms = now_ms()
        acc.size = new_size
        acc.wallet += pnl - fee
        acc.cur_realised = pnl - fee
        acc.cum_realised += pnl - fee
        acc.seq += 1
        ts = now_ms()
        acc.updated_ms = ts
        o.cum_qty += qty
        o.cum_value += price * qty
        o.cum_fee += fee
        o.updated_ms = ts
        o.status = "Filled" if o.cum_qty >= o.qty else "PartiallyFilled"
        fill = Fill(str(uuid.uuid4()), o, o.side, price, qty, fee, rate, maker, ts, closed, next(self._seq), o.leaves, self.mark, pnl, acc.wallet)
        self.fills.append(fill)
        self._emit_order(o)
        self.on_event("execution", fill.as_bybit(private_stream=True))
        self._emit_position()
        self._emit_wallet()
        if o.reduce_only and o.status == "PartiallyFilled" and acc.size == 0 and not maker:
            self._cancel(o, "CancelByReduceOnly")  # capped at the position: the rest is cancelled
        elif o.order_type == "Market" and o.status == "PartiallyFilled":
            self._cancel(o, "CancelByUser")  # IOC remainder
        if acc.size == 0:
            self._prune_reduce_only()

    def _prune_reduce_only(self) -> None:
        """Flat: resting reduce-only limit orders can no longer reduce anything (Bybit cancels them)."""
        for o in list(self.orders.values()):
            if o.open and o.reduce_only and not o.is_conditional:
                self._cancel(o, "CancelByReduceOnly")

    def _emit_order(self, o: Order) -> None:
        self.on_event("order", o.as_bybit(private_stream=True))

    def _emit_position(self) -> None:
        self.on_event("position", self.position_bybit(private_stream=True))

    def _emit_wallet(self) -> None:
        self.on_event("wallet", self.wallet_bybit(private_stream=True))


def _decimal(value, name: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except Exception:
        raise BybitError(10001, f"params error: {name} invalid") from None
    if not d.is_finite():
        raise BybitError(10001, f"params error: {name} invalid")
    return d


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


__all__ = ["BybitError", "Exchange", "Order", "Fill", "SYMBOL"]
