"""The venue-side hook: one ``SimulationModule`` that sees every tick before the matching engine.

Nautilus calls ``pre_process(data)`` for each tick before matching it, and ``process(now)`` after
each step's commands are settled. :class:`VenueModule` uses them for

* the touch: the latest quote the venue has processed (the slippage fill model prices market
  orders off it, and every fill records it as ``bid_at_fill`` / ``ask_at_fill``);
* funding: :class:`~auction_trader.backtest.funding.FundingLedger` settles each 00:00/08:00/16:00
  UTC instant through ``exchange.adjust_account`` (checked before the first tick at or after the
  instant is matched, so that tick's fills do not count);
* fills: it subscribes to ``events.fills.<instrument>`` and keeps every fill in venue order with
  the quote it filled against;
* the quoted book: Nautilus 1.231's L1 book takes every trade as both best bid and best ask (size =
  the trade's) until the next quote, so an order placed after a trade would be matched against that
  trade although it printed before the order existed (a buy limit at the bid placed after a sell
  print at the bid fills at once). :meth:`restore_quoted_book` puts the latest quote back into the
  matching engine (not the data engine: strategies see nothing) once a trade has been matched; the
  engine's order gate calls it before every trading command;
* minute marks: the latest quote before each UTC minute boundary (``minute_quotes``), from which
  the outputs mark positions to market every minute, and progress lines on stderr
  (:class:`~auction_trader.backtest.progress.Progress`) - both from :class:`MinuteMarks`, an actor
  with a one-minute timer on the boundaries (it reads the cache's quotes, which are the venue's:
  the exchange and the data engine see every tick in turn).

Per-tick cost, only while needed. ``pre_process`` / ``process`` are Python calls Nautilus makes
for every tick (two per tick, ~15 % of Nautilus's own cost per tick). They matter only while an
order is at the venue or a position is open (fills, their quote, funding); a strategy is flat
with no orders most of the time. So the module leaves ``exchange.modules`` when the last order is
done and the position is flat (checked after fills and order events), and the order gate brings it
back (:meth:`VenueModule.attach`) before any trading command reaches the venue, restoring from the
cache what it did not watch meanwhile: the latest quote, and whether a trade was matched after it.
Funding instants passed while flat owe nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.objects import Money

from auction_trader.backtest.funding import FundingEvent, FundingLedger
from auction_trader.backtest.progress import MINUTE_NS, Progress


@dataclass(frozen=True)
class FillRecord:
    """A fill as the venue made it, with the L1 quote it was matched against."""

    fill: object  # nautilus OrderFilled
    bid: float  # NaN before the first quote
    ask: float
    quote_ts: int  # ts_event of that quote (-1 before the first quote)


class VenueModule(SimulationModule):
    """Touch tracking, funding settlement, the fill log and progress, for one instrument."""

    def __init__(self, instrument_id, currency, funding_rate_bps: float, progress: Progress | None = None) -> None:
        super().__init__(SimulationModuleConfig())
        self.instrument_id = instrument_id
        self.currency = currency
        self.funding_rate_bps = funding_rate_bps
        self.progress = progress
        self.engine = None  # the BacktestEngine, for its iteration count (ticks processed)
        self.marks: MinuteMarks | None = None  # set by MinuteMarks
        self._new_run()

    def _new_run(self) -> None:
        """Per-run state, from scratch. New objects rather than cleared ones: a finished run's
        outputs may still hold the previous lists when the engine is reset for the next run."""
        self.ledger = FundingLedger(self.funding_rate_bps, currency_precision=self.currency.precision)
        self.last_quote: QuoteTick | None = None
        self.restated = 0  # quotes re-applied after trades (restore_quoted_book)
        self.fills: list[FillRecord] = []
        # (minute end ns, bid, ask) of the latest quote stamped before each minute boundary
        self.minute_quotes: list[tuple[int, float, float]] = []
        self._last_trade: TradeTick | None = None  # a trade matched since the latest quote
        self._restored: TradeTick | None = None  # the trade the latest restore_quoted_book undid
        self._started = False
        self._next_check = 0  # the next funding instant: one compare per tick
        self._maybe_idle = True  # look after this step whether the module can leave the exchange
        self.detached_ticks = 0  # ticks the module did not see (diagnostics)

    # -- Nautilus hooks -------------------------------------------------------------------------

    def register_venue(self, exchange) -> None:
        super().register_venue(exchange)
        self.msgbus.subscribe(topic=f"events.fills.{self.instrument_id}", handler=self._on_fill)
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)

    @property
    def attached(self) -> bool:
        return self.exchange is not None and self in self.exchange.modules

    def pre_process(self, data) -> None:
        ts = data.ts_init
        if ts >= self._next_check:
            if not self._started:
                self._start(ts)
            self._check(ts)
        if type(data) is QuoteTick:
            self.last_quote = data
            self._last_trade = None
        else:
            self._last_trade = data

    def process(self, ts_now: int) -> None:
        if ts_now >= self._next_check and self._started:
            self._check(ts_now)
        if self._maybe_idle:
            self._maybe_idle = False
            if self._started and self._idle():
                self.exchange.modules.remove(self)
                self._detached_at = self.engine.iteration if self.engine is not None else 0

    def _idle(self) -> bool:
        """Flat, and no order open or in flight at the venue: nothing here needs the ticks."""
        if self.ledger.position != 0:
            return False
        cache = self.exchange.cache
        return cache.orders_open_count(instrument_id=self.instrument_id) == 0 and cache.orders_inflight_count(instrument_id=self.instrument_id) == 0

    def attach(self) -> None:
        """Back into the exchange's modules before a trading command (the order gate calls this),
        with the state of the ticks it did not see: the cache's latest quote, and the latest trade
        if it was matched after that quote (at equal times trades come first) and not undone yet."""
        if self.attached or self.exchange is None:
            return
        self.exchange.modules.append(self)
        if self.engine is not None:
            self.detached_ticks += self.engine.iteration - self._detached_at
        cache = self.exchange.cache
        quote, trade = cache.quote_tick(self.instrument_id), cache.trade_tick(self.instrument_id)
        self.last_quote = quote
        newer = trade is not None and (quote is None or trade.ts_init > quote.ts_init)
        self._last_trade = trade if newer and trade is not self._restored else None
        if self._started:
            self._check(self.clock.timestamp_ns())  # instants passed while flat: nothing owed

    def rejoin(self) -> None:
        """Into the exchange's modules again without restoring anything (before a reset, and at
        the end of a run: Nautilus resets and reports only the modules it holds)."""
        if self.exchange is not None and not self.attached:
            self.exchange.modules.append(self)

    def log_diagnostics(self, logger) -> None:
        logger.info(f"Funding settlements: {len(self.ledger.events)}, paid {self.ledger.total_paid} {self.currency}")

    def reset(self) -> None:
        """Called by ``BacktestEngine.reset()`` (through the exchange): grids reuse one engine, so
        the next run starts from nothing of this one, with the current ``funding_rate_bps`` and
        ``progress``."""
        self._new_run()

    # -- helpers --------------------------------------------------------------------------------

    def touch(self):
        """``(bid, ask)`` Prices of the latest quote, or None before the first one."""
        q = self.last_quote
        return None if q is None else (q.bid_price, q.ask_price)

    def restore_quoted_book(self) -> bool:
        """Re-apply the latest quote to the matching engine if a trade was matched since it."""
        trade, q = self._last_trade, self.last_quote
        if trade is None or q is None or type(trade) is not TradeTick:
            return False
        self._last_trade = None
        self._restored = trade
        # Stamped now (never before the trade: the book ignores older updates, and the clock must
        # not move back).
        ts = max(trade.ts_event, trade.ts_init, self.clock.timestamp_ns())
        bid, ask, bid_size, ask_size = q.bid_price, q.ask_price, q.bid_size, q.ask_size
        restated = QuoteTick.from_raw(
            self.instrument_id,
            bid.raw,
            ask.raw,
            bid.precision,
            ask.precision,
            bid_size.raw,
            ask_size.raw,
            bid_size.precision,
            ask_size.precision,
            ts,
            ts,
        )
        self.exchange.get_matching_engine(self.instrument_id).process_quote_tick(restated)
        self.restated += 1
        return True

    @property
    def ticks(self) -> int:
        """Ticks processed so far (the engine's iteration count)."""
        return int(self.engine.iteration) if self.engine is not None else 0

    def finish(self, ts_now: int, marks: MinuteMarks | None = None) -> None:
        """End of the run: settle instants reached by ``ts_now``, mark the minute holding the last
        tick (``marks``: default the :class:`MinuteMarks` built with this module) and print the
        last line."""
        marks = marks or self.marks
        if self._started:
            if not self.attached:
                self.attach()
            self._check(ts_now)
            if marks is not None:
                marks.finish(ts_now)
            if self.progress is not None:
                self.progress.report(ts_now, self.ticks, final=True)
        self.rejoin()

    def _start(self, ts: int) -> None:
        self._started = True
        self.ledger.start(ts)
        if self.progress is not None:
            self.progress.start(ts)
        self._next_check = self._compute_next()

    def _check(self, ts: int) -> None:
        if self.ledger.due(ts):
            for event in self.ledger.settle_through(ts, self._mark()):
                self._apply(event)
        self._next_check = self._compute_next()

    def _compute_next(self) -> int:
        n = self.ledger.next_instant
        return 2**63 - 1 if n is None else n

    def _mark(self) -> Decimal | None:
        q = self.last_quote
        if q is None:
            return None
        return (q.bid_price.as_decimal() + q.ask_price.as_decimal()) / 2

    def _apply(self, event: FundingEvent) -> None:
        self.exchange.adjust_account(Money(-event.amount, self.currency))

    def _on_order_event(self, _event) -> None:
        self._maybe_idle = True

    def _on_fill(self, fill) -> None:
        self._maybe_idle = True
        q = self.last_quote
        if q is None:
            self.fills.append(FillRecord(fill, float("nan"), float("nan"), -1))
        else:
            self.fills.append(FillRecord(fill, float(q.bid_price.as_decimal()), float(q.ask_price.as_decimal()), q.ts_event))
        qty = fill.last_qty.as_decimal()
        self.ledger.on_fill(fill.ts_event, qty if fill.order_side == OrderSide.BUY else -qty)


class MinuteMarks(Actor):
    """The latest quote stamped before each UTC minute boundary, into ``venue.minute_quotes``, and
    the progress lines, from a one-minute timer on the boundaries.

    On the boundaries, not 1 ns before them: Nautilus settles the venues (matches orders in
    flight) at every instant a timer fires, so a timer at a new instant would change when orders
    fill; AuctionStrategy's own minute timer fires at these instants already. A timer fires after
    the ticks stamped at its instant, so the quote is looked up in the cache's history: the latest
    one stamped before the boundary.
    """

    def __init__(self, venue: VenueModule, first_ts: int) -> None:
        super().__init__(ActorConfig(component_id="MinuteMarks"))
        self.venue = venue
        venue.marks = self
        self._first_ts = int(first_ts)
        self._next = 0

    def on_start(self) -> None:
        self._next = (self._first_ts // MINUTE_NS + 1) * MINUTE_NS
        # A Nautilus timer first fires one interval after its start.
        self.clock.set_timer_ns("minute-marks", MINUTE_NS, self._next - MINUTE_NS, 0, self._on_mark)

    def on_stop(self) -> None:
        if "minute-marks" in self.clock.timer_names:
            self.clock.cancel_timer("minute-marks")

    def _on_mark(self, event) -> None:
        while self._next <= event.ts_event:
            self._sample(self._next)
            self._next += MINUTE_NS
        progress = self.venue.progress
        if progress is not None and progress.next_ns is not None and event.ts_event >= progress.next_ns:
            progress.report(event.ts_event, self.venue.ticks)

    def finish(self, ts_now: int) -> None:
        """After the last tick: the boundaries reached, then the one closing the last minute."""
        while self._next <= ts_now:
            self._sample(self._next)
            self._next += MINUTE_NS
        self._sample(self._next)
        self._next += MINUTE_NS

    def _sample(self, boundary: int) -> None:
        cache, iid = self.cache, self.venue.instrument_id
        index = 0
        q = cache.quote_tick(iid, index)
        while q is not None and q.ts_init >= boundary:
            index += 1
            q = cache.quote_tick(iid, index)
        bid, ask = (float("nan"), float("nan")) if q is None else (float(q.bid_price.as_decimal()), float(q.ask_price.as_decimal()))
        self.venue.minute_quotes.append((boundary, bid, ask))
