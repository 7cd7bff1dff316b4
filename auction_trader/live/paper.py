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
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from nautilus_trader.model.data import QuoteTick

from auction_trader.backtest.engine import build_engine
from auction_trader.backtest.outputs import collect_fills, fills_table
from auction_trader.config import AuctionConfig


class PaperVenue:
    """One streaming ``BacktestEngine`` around ``strategy``; :meth:`feed` advances it."""

    def __init__(self, config: AuctionConfig, strategy, catalog: Path) -> None:
        self.config = config
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
            )
            if self._rate_bps is not None:
                self.set_funding_rate(self._rate_bps)
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

    def account(self):
        return None if self.engine is None else self.engine.cache.account_for_venue(self.ctx.instrument.id.venue)

    def finish(self) -> None:
        """Stop the engine (no flattening: paper positions stay as they are, like venue orders)."""
        if self.engine is not None:
            self.engine.end()
            self.engine.dispose()
            self.engine = None
