"""The paper venue: the backtest's engine, driven by live ticks.

Paper must fill exactly as the backtest does (specv2 §11.2: same ticks in, same fills out), and
Nautilus's ``SandboxExecutionClient`` cannot (fixed FillModel, zero latency, leverage 1, fees from
the venue). So paper *is* the backtest: :func:`auction_trader.backtest.engine.build_engine` builds
the venue (``SlippageFillModel``, fees from our config, ``BybitMarginModel``, ``OrderGate`` at
``max_leverage``, next-tick latency, the funding ledger of ``VenueModule``) around the same
``AuctionStrategy``, and the node's minute sequencer feeds it the live ticks, in exchange-time
order, in batches (``BacktestEngine.run(streaming=True)``). Minutes close, orders fill and funding
settles in exchange time exactly as in a backtest over the recording; what differs from a backtest
is only *when* the work happens (each batch runs once its ticks are older than the sequencer's
grace).

The funding rate is the one the node fetches from Bybit after each settlement
(:meth:`set_funding_rate`); until the first fetch, the config's ``funding_rate_8h_bps``.

Restart. The engine lives in the node's process, so ``kill -9`` loses it; the node's checkpoint
keeps :meth:`PaperVenue.state` (the wallet balance to the last unit, after fees, funding and
realised P&L; the open position's side, quantity and average price). A restarted venue is built
with that balance (``resume``) and, once the strategy's plan is restored, :meth:`restore_position`
opens the stored position again - one fill at the stored average price, no fee (the entry fees are
in the balance already), booked by Nautilus's execution engine as a venue fill would be, so the
account, the position, the funding ledger and the order gate all hold it. The plan's working orders
are placed again by the plan itself (the rebuilt venue holds none).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderType
from nautilus_trader.model.events import OrderAccepted, OrderFilled, OrderSubmitted
from nautilus_trader.model.identifiers import TradeId, VenueOrderId
from nautilus_trader.model.objects import Money, Price

from auction_trader.backtest.engine import build_engine
from auction_trader.backtest.outputs import collect_fills, fills_table
from auction_trader.config import AuctionConfig


class PaperVenue:
    """One streaming ``BacktestEngine`` around ``strategy``; :meth:`feed` advances it."""

    def __init__(self, config: AuctionConfig, strategy, catalog: Path, resume: dict | None = None, on_order_event=None) -> None:
        self.config = config
        self.on_order_event = on_order_event  # called with every order event of the venue (the node stores them)
        # A restarted venue's stored account (:meth:`state`): the balance it is built with, the
        # position :meth:`restore_position` opens. None: the config's starting balance, flat.
        self.resume = resume
        self.strategy = strategy
        self.catalog = Path(catalog)
        self.engine = None
        self.ctx = None
        self._pending: list = []
        self._fills_seen = 0
        self.ticks_fed = 0
        self.last_ts: int | None = None  # exchange time of the latest tick fed
        self._rate_bps: float | None = None

    @property
    def started(self) -> bool:
        return self.engine is not None

    def feed(self, ticks: list) -> list[dict]:
        """Run the engine over ``ticks`` (exchange-time order, all later than anything fed before).

        Returns the fills made meanwhile as ``fills`` rows (the backtest's ``FILL_COLUMNS``). The
        engine is built at the first batch holding a quote (the L1 book is built from quotes).
        """
        if not ticks:
            return []
        if self.engine is None:
            self._pending.extend(ticks)
            n_quotes = sum(1 for t in self._pending if type(t) is QuoteTick)
            if n_quotes == 0:
                return []
            data, self._pending = self._pending, []
            self.engine, self.ctx = build_engine(
                self.config,
                self.catalog,
                None,
                None,
                self.strategy,
                data=(data, len(data) - n_quotes, n_quotes),
                flatten_at_end=False,
                starting_balance=Decimal(self.resume["balance"]) if self.resume else None,
            )
            if self._rate_bps is not None:
                self.set_funding_rate(self._rate_bps)
            if self.on_order_event is not None:
                self.engine.kernel.msgbus.subscribe(topic="events.order.*", handler=self.on_order_event)
        else:
            self.engine.clear_data()
            self.engine.add_data(ticks, sort=True)
        self.engine.run(streaming=True)
        self.ticks_fed += len(ticks)
        self.last_ts = ticks[-1].ts_init
        return self.new_fills()

    def new_fills(self) -> list[dict]:
        if self.ctx is None or len(self.ctx.venue.fills) == self._fills_seen:
            return []
        fills = collect_fills(self.engine, self.ctx)[self._fills_seen :]
        self._fills_seen += len(fills)
        return fills_table(fills).to_pylist()

    def set_funding_rate(self, rate_bps: float) -> None:
        """The 8-hour rate (bps) the next settlements use (the latest Bybit published)."""
        self._rate_bps = float(rate_bps)
        if self.ctx is not None:
            ledger = self.ctx.venue.ledger
            ledger.rate_bps = float(rate_bps)
            ledger._rate = Decimal(repr(float(rate_bps))) / Decimal(10_000)

    def state(self) -> dict | None:
        """The account to resume from after a restart: ``balance`` (USDT, exact, as a string), the
        open ``position`` (``side`` LONG/SHORT, ``qty`` and ``avg_px`` as strings) or None when flat,
        ``last_ts``, the exchange time of the latest tick the venue has processed (its effects are in
        this state), and ``order_count``, the client order ids the strategy has generated. None
        before the engine exists (nothing traded yet)."""
        account = self.account()
        if account is None:
            return None
        out = {"balance": str(account.balance_total(USDT).as_decimal()), "position": None, "last_ts": self.last_ts,
               "order_count": self.strategy.order_factory.get_client_order_id_count()}
        positions = self.engine.cache.positions_open(instrument_id=self.ctx.instrument.id)
        if positions:
            p = positions[0]
            out["position"] = {"side": p.side.name, "qty": str(p.quantity.as_decimal()), "avg_px": repr(float(p.avg_px_open)), "ts_opened": int(p.ts_opened)}
        return out

    def continue_order_ids(self, count: int) -> None:
        """Client order ids continue after the ``count`` the stored run had generated. Nautilus
        makes them from the clock's second and a counter that starts at 1 with every engine, and a
        rebuilt venue's clock is back at the recorded ticks' time: without this, a new order could
        take the id of an order of the plan (the first new one, that of its entry)."""
        self.strategy.order_factory.set_client_order_id_count(int(count))

    def restore_position(self, position: dict) -> None:
        """Open the stored ``position`` (from :meth:`state`) on this venue, now: one fill of its
        quantity at its average price, commission 0, through Nautilus's execution engine (the
        account, the venue's position, the funding ledger and the order gate see it). The order is
        the strategy's (NETTING: the strategy's exits close this position) but no order of its plan:
        the plan ignores the fill. It is no trade of this run either: no ``fills`` row."""
        if self.engine is None:
            raise RuntimeError("restore_position() needs the venue built (a batch holding a quote fed)")
        kernel = self.engine.kernel
        cache, clock = kernel.cache, kernel.clock
        iid = self.ctx.instrument.id
        account = cache.account_for_venue(iid.venue)
        side = {"LONG": OrderSide.BUY, "SHORT": OrderSide.SELL}[position["side"]]
        qty = self.ctx.instrument.make_qty(Decimal(position["qty"]))
        if qty.as_decimal() <= 0:
            raise ValueError(f"stored position quantity {position['qty']!r} is not positive")
        # The average of several entry fills may lie between two ticks: keep every digit it has.
        avg = Decimal(position["avg_px"]).normalize()
        precision = max(self.ctx.instrument.price_precision, -avg.as_tuple().exponent)
        price = Price(float(avg), precision)
        order = self.strategy.order_factory.market(iid, side, qty, tags=["purpose=restored_position"])
        cid, sid, tid = order.client_order_id, order.strategy_id, order.trader_id
        # Funding instants passed while the venue was flat owe nothing: settled before the fill.
        self.ctx.venue.attach()
        cache.add_order(order)
        ts = clock.timestamp_ns()
        venue_order_id = VenueOrderId(f"RESTORED-{cid.value}")
        engine = kernel.exec_engine
        engine.process(OrderSubmitted(tid, sid, iid, cid, account.id, UUID4(), ts, ts))
        engine.process(OrderAccepted(tid, sid, iid, cid, venue_order_id, account.id, UUID4(), ts, ts))
        engine.process(
            OrderFilled(tid, sid, iid, cid, venue_order_id, account.id, TradeId(f"RESTORED-{cid.value}"), None, side, OrderType.MARKET,
                        qty, price, USDT, Money(0, USDT), LiquiditySide.TAKER, UUID4(), ts, ts),
        )  # fmt: skip
        self._fills_seen = len(self.ctx.venue.fills)

    def account(self):
        return None if self.engine is None else self.engine.cache.account_for_venue(self.ctx.instrument.id.venue)

    def finish(self) -> None:
        """Stop the engine (no flattening: paper positions stay as they are, like venue orders)."""
        if self.engine is not None:
            self.engine.end()
            self.engine.dispose()
            self.engine = None
