"""The grid's fast path: a combination pays Nautilus's per-tick cost only while it is in the market.

A grid replays the same ticks for every combination, and a combination is flat with nothing at the
venue most of the time; then the ticks only feed the features. The fast path runs the same
Nautilus engine, strategy and venue as the full replay (:func:`run_fast`), with two changes that
leave every output byte-identical (tests/test_grid_fast.py holds fast and full replay equal on
metrics, fills, signals, positions, snapshots, alerts, features and funding):

**Features are caught up, not fed.** :class:`CatchUpFeatures` is the strategy's indicator with its
tick handlers turned into no-ops: whenever the strategy asks for a minute
(``close_through(T)`` from its minute timer) or ends (``finish``), it first feeds the Rust feature
engine every tick it has not seen with ``ts_init <= T`` - from columns read once per worker
(:class:`TickTape`), with the values the handlers would have read (``ts_event``,
``price.as_double()``, ...), in the same order. Nothing reads the indicator between timers, and at
timer ``T`` the full replay has processed exactly the ticks with ``ts_init <= T`` (Nautilus fires
a timer at ``T`` only after the ticks stamped ``T``), so the Rust engine sees the same calls in
the same order: same rows, same ``nearest_trade_distance``, same ``features_1m``.

**Nautilus gets only the ticks that can matter** (:func:`skip_feed`, a generator for
``engine.add_data_iterator``). Nautilus pulls the next chunk when it pops the last element of the
current one, i.e. *before* it processes that element. A chunk is planned for the next minute timer
``T`` to fire and ends with ``b``, the first tick after ``T``, and ``c``, the tick after ``b``;
``T`` fires when ``b`` is popped, so when ``c``'s pop asks for the next chunk the strategy has
decided at ``T`` and ``b`` has been matched - the order of an entry decided at ``T`` met ``b``
exactly as in the full replay. Then, if the strategy is *idle* (no open, in-flight or emulated
order, no open position: :func:`idle`), the next chunk skips to the next timer; otherwise it holds
every tick up to the next timer. A skipping chunk for timer ``T`` holds, of the ticks before
``b``:

* the last quote before ``T`` and every tick after it up to ``b`` (the trades after that quote and
  the ticks stamped ``T``): the matching engine's L1 book and core, the venue module's touch and
  "trade since the quote" flag (the order gate's restored book), the cache's latest quote (the mid
  for sizing and snapshots) and latest trade (the order watch's market clock) are then those of the
  full replay - a quote overwrites the L1 book and re-syncs the matching core, so what came before
  it is gone;
* the last trade before that quote (the cache's latest trade and the core's last price when no
  trade follows the quote);
* with no quote in the stretch, every tick of it.

What else reads ticks, and why it is unaffected while idle: the venue module samples each minute's
mark and settles funding at the first event at or after the instant, both from the latest quote
before it (kept), and funding on a flat position is zero; the liquidity-consumption ledger only
changes on fills; ``EndOfRun`` cancels and closes nothing when there is nothing (Nautilus returns
before sending a command); progress lines count ticks but are off in grids; the run's tick count is
the catalog's (``ctx``), not Nautilus's iteration count. A pending timer that would fire before the
next chunk's first tick (``c`` on or past the next minute boundary) gets a one-tick chunk, so
nothing is ever decided on a chunk planned before the decision.

Cost per combination: the in-market ticks through Nautilus, a few ticks per flat minute, and one
Python-to-Rust call per tick for the features (benchmarks/grid_fast_bench.py measures it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from nautilus_trader.model.data import QuoteTick, TradeTick

from auction_trader.backtest.engine import BacktestContext, reseed
from auction_trader.indicators import AuctionFeatures

MINUTE_NS = 60_000_000_000
FEED_NAME = "grid-fast-feed"


@dataclass
class TickTape:
    """The replay's ticks (``load_data`` order) as columns, read once per worker and shared by every
    combination: ``ts_init`` for planning, the values the indicator's handlers read for catching up,
    and for every position the index of the latest quote / trade at or before it."""

    ticks: list  # the Nautilus objects, replay order
    ts_init: np.ndarray  # int64
    is_trade: np.ndarray  # bool
    ts_event: np.ndarray  # int64
    a: np.ndarray  # float64: trade price | bid
    b: np.ndarray  # float64: trade size | bid size
    c: np.ndarray  # float64: 0 | ask
    d: np.ndarray  # float64: 0 | ask size
    side: np.ndarray  # uint8: aggressor side | 0
    last_quote: np.ndarray  # int64: index of the latest quote at or before i, -1 if none
    last_trade: np.ndarray  # int64: index of the latest trade at or before i, -1 if none

    @classmethod
    def of(cls, ticks: list) -> TickTape:
        n = len(ticks)
        ts_init = np.empty(n, np.int64)
        ts_event = np.empty(n, np.int64)
        is_trade = np.zeros(n, bool)
        a, b, c, d = (np.zeros(n, np.float64) for _ in range(4))
        side = np.zeros(n, np.uint8)
        for i, t in enumerate(ticks):
            ts_init[i] = t.ts_init
            ts_event[i] = t.ts_event
            if type(t) is TradeTick:
                is_trade[i] = True
                a[i] = t.price.as_double()
                b[i] = t.size.as_double()
                side[i] = int(t.aggressor_side)
            elif type(t) is QuoteTick:
                a[i] = t.bid_price.as_double()
                b[i] = t.bid_size.as_double()
                c[i] = t.ask_price.as_double()
                d[i] = t.ask_size.as_double()
            else:
                raise TypeError(f"tick {i}: {type(t).__name__}, expected TradeTick or QuoteTick")
        if n > 1 and np.any(np.diff(ts_init) < 0):
            raise ValueError("ticks are not in ts_init order")
        idx = np.arange(n, dtype=np.int64)
        last_quote = np.maximum.accumulate(np.where(is_trade, -1, idx)) if n else idx
        last_trade = np.maximum.accumulate(np.where(is_trade, idx, -1)) if n else idx
        return cls(ticks, ts_init, is_trade, ts_event, a, b, c, d, side, last_quote, last_trade)

    def __len__(self) -> int:
        return len(self.ticks)

    def through(self, ts_ns: int) -> int:
        """How many ticks have ``ts_init <= ts_ns``."""
        return int(np.searchsorted(self.ts_init, ts_ns, side="right"))

    def kept_before(self, i: int, b: int, boundary: int) -> list[int]:
        """Indices in ``[i, b)`` a skipping chunk holds for the timer at ``boundary`` (``b`` is the
        first tick after it): see the module docstring."""
        k = i + int(np.searchsorted(self.ts_init[i:b], boundary, side="left"))  # first at/after the boundary
        q = int(self.last_quote[k - 1]) if k > i else -1
        if q < i:
            return list(range(i, b))  # no quote in the stretch: all of it (trades only, rare)
        out = []
        t = int(self.last_trade[q - 1]) if q > i else -1
        if t >= i:
            out.append(t)
        out.extend(range(q, b))
        return out


class CatchUpFeatures(AuctionFeatures):
    """The strategy's indicator, fed from a :class:`TickTape` when the strategy reads it instead of
    from Nautilus's tick handlers (which the fast path lets skip ticks)."""

    def __init__(self, config, spec, tape: TickTape) -> None:
        self._tape = tape
        self._fed = 0
        super().__init__(config, spec)

    def handle_trade_tick(self, tick) -> None:
        """Nothing: the tick reaches the engine from the tape."""

    def handle_quote_tick(self, tick) -> None:
        """Nothing: the tick reaches the engine from the tape."""

    def close_through(self, ts_ns: int) -> bool:
        self._catch_up(self._tape.through(ts_ns))
        return super().close_through(ts_ns)

    def finish(self) -> None:
        self._catch_up(len(self._tape))
        super().finish()

    def _reset(self) -> None:
        super()._reset()
        self._fed = 0

    def _catch_up(self, upto: int) -> None:
        lo = self._fed
        if upto <= lo:
            return
        self._fed = upto
        t = self._tape
        s = slice(lo, upto)
        on_trade, on_quote, closed = self._on_trade, self._on_quote, self._minute_closed
        for trade, ts, a, b, c, d, side in zip(
            t.is_trade[s].tolist(), t.ts_event[s].tolist(), t.a[s].tolist(), t.b[s].tolist(), t.c[s].tolist(), t.d[s].tolist(), t.side[s].tolist(), strict=True,
        ):
            if on_trade(ts, a, b, side) if trade else on_quote(ts, a, b, c, d):
                closed()


def idle(engine, instrument_id) -> Callable[[], bool]:
    """``() -> bool``: nothing of the run's at the venue or on the way there - no open, in-flight or
    emulated order, no open position. Then, until the next minute decision, ticks change nothing
    but the latest quote and trade."""
    cache = engine.kernel.cache

    def check() -> bool:
        return not (
            cache.orders_open_count(instrument_id=instrument_id)
            or cache.orders_inflight_count(instrument_id=instrument_id)
            or cache.orders_emulated_count(instrument_id=instrument_id)
            or cache.positions_open_count(instrument_id=instrument_id)
        )

    return check


@dataclass
class FeedStats:
    """What :func:`skip_feed` handed to Nautilus."""

    yielded: int = 0
    chunks: int = 0
    skipping_chunks: int = 0


def skip_feed(tape: TickTape, is_idle: Callable[[], bool], stats: FeedStats | None = None) -> Iterator[list]:
    """The chunks of ticks Nautilus replays (module docstring). Never yields an empty chunk (that
    ends a Nautilus data stream)."""
    ticks, ts_init, n = tape.ticks, tape.ts_init, len(tape)
    stats = stats if stats is not None else FeedStats()
    i = 0
    p_ts: int | None = None  # the element Nautilus processed last when it asks for a chunk
    c_ts: int | None = None  # the element it just popped (processed after the timers due before it)
    while i < n:
        if c_ts is None:
            boundary = (int(ts_init[0]) // MINUTE_NS + 1) * MINUTE_NS  # the strategy's first timer
        else:
            boundary = -(-p_ts // MINUTE_NS) * MINUTE_NS  # timers before p_ts have fired
            if boundary <= c_ts:
                # That timer fires before the next tick is processed and its decision is unknown
                # now: hand over one tick and decide again after it.
                chunk = [ticks[i]]
                p_ts, c_ts = c_ts, int(ts_init[i])
                i += 1
                stats.yielded += 1
                stats.chunks += 1
                yield chunk
                continue
        b = int(np.searchsorted(ts_init, boundary, side="right"))  # first tick after the timer
        if b >= n:
            chunk = ticks[i:]
            i = n
        else:
            end = min(b + 2, n)
            if is_idle():
                chunk = [ticks[k] for k in tape.kept_before(i, b, boundary)]
                chunk.extend(ticks[b:end])
                stats.skipping_chunks += 1
            else:
                chunk = ticks[i:end]
            p_ts, c_ts = int(ts_init[end - 2]) if end - 2 >= i else None, int(ts_init[end - 1])
            if p_ts is None:  # a one-element chunk at the very end: nothing follows
                p_ts = c_ts
            i = end
        stats.yielded += len(chunk)
        stats.chunks += 1
        yield chunk


def features_factory(tape: TickTape) -> Callable:
    """For ``AuctionStrategy.features_factory``."""

    def make(config, spec) -> CatchUpFeatures:
        return CatchUpFeatures(config, spec, tape)

    return make


def arm_fast(engine, ctx: BacktestContext, strategy, tape: TickTape) -> FeedStats:
    """Make ``strategy`` (an AuctionStrategy added to ``engine``, built with ``add_ticks=False``)
    and the engine's data feed run the fast path; call before :func:`run_fast`."""
    if len(tape) != ctx.ticks:
        raise ValueError(f"the tape holds {len(tape)} ticks, the run {ctx.ticks}")
    strategy.features_factory = features_factory(tape)
    stats = FeedStats()
    engine.add_data_iterator(FEED_NAME, skip_feed(tape, idle(engine, ctx.instrument.id), stats))
    return stats


def run_fast(engine, ctx: BacktestContext) -> None:
    """:func:`~auction_trader.backtest.engine.run_engine` for a fed engine: the range is given
    explicitly (Nautilus takes it from added data otherwise, and there is none)."""
    reseed()
    engine.run(start=ctx.first_ts, end=ctx.last_ts)
    ctx.venue.finish(ctx.last_ts)
