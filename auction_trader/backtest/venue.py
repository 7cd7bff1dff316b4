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
  the outputs mark positions to market every minute;
* progress lines on stderr (:class:`~auction_trader.backtest.progress.Progress`).

Its per-tick cost is two Python calls (``pre_process``, ``process``), one integer comparison
(against the earliest of the next funding instant, minute boundary and progress line) and keeping a
reference to the tick: about 0.7 µs, some 11 % of Nautilus's own cost per tick on these machines
(benchmarks/backtest_bench.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.modules import SimulationModule
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
        self._next_minute: int | None = None
        self._last_trade: TradeTick | None = None  # a trade matched since the latest quote
        self._started = False
        self._next_check = 0  # min(next funding instant, next progress line): one compare per tick

    # -- Nautilus hooks -------------------------------------------------------------------------

    def register_venue(self, exchange) -> None:
        super().register_venue(exchange)
        self.msgbus.subscribe(topic=f"events.fills.{self.instrument_id}", handler=self._on_fill)

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

    def finish(self, ts_now: int) -> None:
        """End of the run: settle instants reached by ``ts_now`` and print the last line."""
        if self._started:
            self._check(ts_now)
            if self._next_minute is not None and self.last_quote is not None:
                self._sample_minutes(self._next_minute)  # the minute holding the last tick
            if self.progress is not None:
                self.progress.report(ts_now, self.ticks, final=True)

    def _start(self, ts: int) -> None:
        self._started = True
        self.ledger.start(ts)
        self._next_minute = (ts // MINUTE_NS + 1) * MINUTE_NS
        if self.progress is not None:
            self.progress.start(ts)
        self._next_check = self._compute_next()

    def _check(self, ts: int) -> None:
        if ts >= self._next_minute:
            self._sample_minutes(ts)
        if self.ledger.due(ts):
            for event in self.ledger.settle_through(ts, self._mark()):
                self._apply(event)
        if self.progress is not None and self.progress.next_ns is not None and ts >= self.progress.next_ns:
            self.progress.report(ts, self.ticks)
        self._next_check = self._compute_next()

    def _sample_minutes(self, ts: int) -> None:
        q = self.last_quote
        bid, ask = (float("nan"), float("nan")) if q is None else (float(q.bid_price.as_decimal()), float(q.ask_price.as_decimal()))
        while self._next_minute <= ts:
            self.minute_quotes.append((self._next_minute, bid, ask))
            self._next_minute += MINUTE_NS

    def _compute_next(self) -> int:
        nexts = [self.ledger.next_instant, self._next_minute]
        if self.progress is not None and self.progress.next_ns is not None:
            nexts.append(self.progress.next_ns)
        return min(n for n in nexts if n is not None)

    def _mark(self) -> Decimal | None:
        q = self.last_quote
        if q is None:
            return None
        return (q.bid_price.as_decimal() + q.ask_price.as_decimal()) / 2

    def _apply(self, event: FundingEvent) -> None:
        self.exchange.adjust_account(Money(-event.amount, self.currency))

    def _on_fill(self, fill) -> None:
        q = self.last_quote
        if q is None:
            self.fills.append(FillRecord(fill, float("nan"), float("nan"), -1))
        else:
            self.fills.append(FillRecord(fill, float(q.bid_price.as_decimal()), float(q.ask_price.as_decimal()), q.ts_event))
        qty = fill.last_qty.as_decimal()
        self.ledger.on_fill(fill.ts_event, qty if fill.order_side == OrderSide.BUY else -qty)
