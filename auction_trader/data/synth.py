"""The deterministic synthetic market: a seeded BTCUSDT perpetual with auction structure.

No real multi-hour sample can ship with the project, yet the strategy needs at least four hours of
history before its value area means anything, and tests need markets in which every setup occurs.
So the project makes its own market: trades with their aggressor side and L1 quotes with sizes,
calibrated on real BTCUSDT perpetual feeds, with the auction structure the strategy looks for. Same
seed, hours and start give byte-identical catalogs; the catalog is always labelled synthetic.

The model, from slow to fast
----------------------------

1. **Regimes** (:class:`Regime`, :func:`schedule`). A balance comes first (60-120 min); then
   balances of 30-70 min alternate with imbalances, trends and failed breakouts drawn from a
   shuffled bag so that each kind keeps recurring (a 10-hour run holds 3-5 trends and 3-4 failed
   breakouts, at least one of each after the 4-hour warm-up):

   * *balance*: log-price is an Ornstein-Uhlenbeck process around a centre that random-walks slowly
     (4 bps per sqrt(hour)); stationary sd 10-16 bps, reversion time 20 min, so price rotates
     through a range of some 40-60 bps: value.
   * *trend_up/down* (20-60 min): value migrates. Drift 2.5-5 bps/min in impulse legs of 6-18 min,
     separated by pullbacks of 3-6 min at 30-70 % of that speed the other way (they make the
     retests of a broken edge); nets of 40-180 bps. The next balance forms where the trend ended.
   * *failed_breakout_up/down* (6-17 min): price travels to the edge of the value area the strategy
     would see (the 70 % area of the last 4 h of the path; of the last hour when price is already
     outside it), pokes 3-8 bps beyond it (with noise, 4-16 bps), holds 1-4 min and falls back
     30-60 % of the area's width (at least 6, at most 24 bps) into value within 2-5 min. The
     balance it interrupted then resumes around its old centre.

   Break-ins need no regime of their own: balance rotations and pullbacks across the value edges
   make them.
2. **True book**, on a 100 ms grid. The best bid follows the fair mid with a hysteresis redrawn
   after every move (4-40 ticks), so the book moves in jumps of tens of ticks about once a second,
   as the real book does once conflated to 100 ms. After a jump the side behind sometimes trails
   1-8 ticks for 100-300 ms (the wider spread of a moment), and now and then a maker steps back a
   tick for an instant. L1 sizes follow an AR(1) in log space, redrawn when a level changes,
   updated when prints or maker events touch them, and leaning with the order-flow pressure
   (log bid size + 2.5 p, log ask size - 2.5 p, with p = 2 P(buy) - 1): qimb is positive when
   buyers press, but noisily.
3. **Prints**: taker orders arrive as a doubly stochastic Poisson process (a rate per regime, times
   a slow log-normal activity factor and the recent absolute move). A print fills one maker (65 %)
   or 1 + geometric(mean 4.7) makers, all at one millisecond, at the touch of the true book at that
   millisecond; 8 % of multi-fill prints sweep one tick through. A third of the book's jumps come
   with the print that made them: at the jump's millisecond, against the book before it (a trade
   sharing its millisecond with a book change trades first), filling up to 2 ticks through. The
   aggressor is a buyer with probability 0.5 + 0.15 tanh(r / 2 bps) +- 0.06 in a trend, r the fair
   price's move over +-15 s around the print: flow is informative about returns without being a
   copy of them (50 % buys in balance, 58-61 % in up-trends, 38-42 % in down-trends).
4. **Published quotes**: one L1 snapshot at the end of each 100 ms interval in which the top of
   book changed (price or size), stamped 1-5 ms late: the cadence of Bybit's ob500 archive, which
   is what backtests on downloaded Bybit data see (live orderbook.1 is 10 ms). A trade happens at
   the book of its own millisecond; the strategy classifies it against the last snapshot before it,
   up to ~100 ms stale, so the quote rule is sometimes wrong or ambiguous, as on real data.

Calibration
-----------

Measured on the real Binance USD-M BTCUSDT feeds in ``../shared/data/binance_usdm_btcusdt`` (three
windows around 00:00 UTC, the busiest minutes of the day: 2024-07-18 23:57 (3 min), 2024-07-19
00:00 (5 min), 2024-08-08 23:54 (6 min); tick 0.1 and lot 0.001 as on Bybit). The generator column
is what 10-hour markets realise (seeds 1, 2, 3, 7, 11, 42; :func:`realised_stats`):

=====================================  =======================================  ============================
figure                                 real (three windows)                     generator
=====================================  =======================================  ============================
trades/s                               5.5, 32.5, 61.9                          15.7-17.1 (Bybit: 12-23/s)
prints/s (same ms and side)            2.7, 10.5, 15.8                          5.7-6.3; balance ~5,
                                                                                imbalance ~8
trades sharing the previous one's ms   50 %, 68 %, 75 %                         63-64 %
fills per print                        mean 2.0-3.9, P(1) 0.64-0.79, q99 17-43  mean 2.65, P(1) 0.65
prints filled at more than one price   4.5 %, 12 %, 10 %                        8-9 %
fill size quantiles (BTC) 10/25/50 %   0.002 / 0.002-0.003 / 0.007-0.016        0.002 / 0.003 / 0.011
                          75/90/99 %   0.05-0.08 / 0.22-0.27 / 1.1-2.0          0.065 / 0.24 / 1.3
mean fill size (BTC)                   0.098-0.114                              0.11
spread = 1 tick, share of snapshots    99.1 %, 97.5 %, 94.2 %                   97.3-97.6 %
  (time-weighted)                      99.99 %, 99.8 %, 99.1 %
wider spreads                          2 ticks 0.6-0.9 %, more 0.3-4.9 %,       2-9 ticks, max 9
                                       max 6-243 ticks
bookTicker updates/s                   40, 151, 192                             -
best-price changes/s, raw              0.29, 3.1, 5.9 (24-38 % by 1 tick)      -
mid changes/s at 100 ms conflation     0.05, 0.64, 1.14; median 20-31 ticks     1.0-1.2; median 25 ticks
100 ms intervals with an L1 change     7.1, 9.1, 9.7 per s                      7.4 per s (= snapshots/s)
L1 size 10/50/90 % (BTC)               0.08-5.2 / 2.7-20 / 8-43 (log sd ~2)     0.75 / 6.0 / 47 (log sd 1.5)
corr(qimb, signed volume), 1 s         0.04-0.13                                0.15-0.22 per minute
1 s / 10 s / 1 min mid log-return sd   0.13-1.2 / 0.5-3.6 / 1.9-9.0 bps         1 min: 3.8-4.5 bps
quote rule = taker side: against the   99.7-100 %                               -
  exchange's own latest quote
  against 100 ms-conflated quotes      95.6-100 %, ambiguous 0-0.9 %            97.3-97.6 %, ambiguous 0.2 %
=====================================  =======================================  ============================

The real windows are the busiest minutes of the day, so rates and volatility are scaled down to an
average Bybit day (1-2 M trades a day, 12-23/s); shapes (fills per print, size quantiles, spread,
L1 size dispersion, jumps at 100 ms) are kept. Binance's 0.002 BTC floor (its 100 USDT minimum
notional) becomes Bybit's 0.001. ``synth`` prints the realised figures and writes them, with every
parameter, into the catalog's ``SYNTHETIC.json``.

Determinism: ``numpy.random.default_rng`` seeded with ``[seed, stream]`` for each component, no
wall clock, no Python ``random``, no iteration over unordered containers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from auction_trader.config import AuctionConfig
from auction_trader.data.catalog import CatalogWriter, has_data, is_synthetic
from auction_trader.data.errors import BadRow, DataError
from auction_trader.data.merge import Edges
from auction_trader.data.parse import iso
from auction_trader.data.synth_stats import RealisedStats
from auction_trader.data.ticks import BUYER, SELLER, QuoteBatch, TradeBatch
from auction_trader.data.timestamps import to_ns
from auction_trader.instrument import BTCUSDT

GENERATOR = "auction-trader synth v1"
MS = 1_000_000
STEP_MS = 100
STEP_NS = STEP_MS * MS
STEPS_PER_MIN = 60_000 // STEP_MS
STEPS_PER_HOUR = 60 * STEPS_PER_MIN
MAX_HOURS = 8784.0  # a leap year; generated an hour at a time, so memory does not grow with it
FILE_HOURS = 24  # one Parquet file per type per this many simulated hours
HOUR_NS = 3600 * 1_000_000_000

BALANCE = "balance"
TREND_UP, TREND_DOWN = "trend_up", "trend_down"
FAILED_UP, FAILED_DOWN = "failed_breakout_up", "failed_breakout_down"
KINDS = (BALANCE, TREND_UP, TREND_DOWN, FAILED_UP, FAILED_DOWN)

# Independent random streams: adding draws to one component never changes another.
_PATH, _ACTIVITY, _BOOK, _PRINTS, _QUOTES, _LEVEL = range(6)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Calibration:
    """Every parameter of the generator; the module docstring says where each comes from."""

    start_price: float = 60_000.0
    start_price_range: float = 0.02  # the seed moves the start level within +-2 %
    # regimes (minutes)
    first_balance_min: tuple[float, float] = (60.0, 120.0)
    balance_min: tuple[float, float] = (30.0, 70.0)
    trend_min: tuple[float, float] = (20.0, 60.0)
    trend_drift_bps_min: tuple[float, float] = (2.5, 5.0)
    impulse_min: tuple[float, float] = (6.0, 18.0)
    pullback_min: tuple[float, float] = (3.0, 6.0)
    pullback_speed: tuple[float, float] = (0.3, 0.7)  # fraction of the impulse drift, reversed
    fb_poke_bps: tuple[float, float] = (3.0, 8.0)
    fb_approach_bps_min: float = 4.0
    fb_max_reach_bps: float = 30.0  # prefer the nearer edge when the drawn one is farther than this
    fb_min_approach_min: float = 2.0
    fb_hold_min: tuple[float, float] = (1.0, 4.0)
    fb_return_min: tuple[float, float] = (2.0, 5.0)
    fb_return_depth: tuple[float, float] = (0.3, 0.6)  # fraction of the value area's width ...
    fb_return_max_bps: float = 40.0  # ... of at most this much ...
    fb_return_min_bps: float = 6.0  # ... and at least this much
    fb_tau_s: float = 45.0
    fb_sd_bps: float = 2.5
    va_fraction: float = 0.70
    # volatility
    balance_sd_bps: tuple[float, float] = (10.0, 16.0)
    balance_tau_min: float = 20.0
    centre_drift_bps_sqrt_h: float = 4.0
    trend_sd_1m_bps: float = 3.5
    # order flow
    prints_per_s: dict[str, float] = field(
        default_factory=lambda: {BALANCE: 4.5, "trend": 8.0, "failed_breakout": 7.5},
    )
    activity_sd: float = 0.5
    activity_tau_s: float = 60.0
    activity_move_weight: float = 0.4
    single_fill_prob: float = 0.65
    extra_fills_mean: float = 4.7  # multi-fill prints have 1 + geometric(mean 4.7) fills
    fill_size_knots: tuple[tuple[float, float], ...] = (
        (0.0, 0.001), (0.04, 0.001), (0.12, 0.002), (0.25, 0.0026), (0.50, 0.011),
        (0.75, 0.065), (0.90, 0.24), (0.99, 1.3), (0.999, 3.5), (1.0, 8.0),
    )
    sweep_prob: float = 0.08
    impact_prob: float = 0.35
    impact_max_through: int = 2
    buy_bias: float = 0.15
    trend_buy_bias: float = 0.06  # the trend's side keeps the initiative, pullbacks included
    buy_bias_scale_bps: float = 2.0
    flow_window_s: float = 15.0
    # book
    hysteresis_ticks: tuple[float, float] = (4.0, 40.0)  # redrawn after every move
    lag_prob: float = 0.10
    lag_steps_max: int = 3
    lag_gap_mean_ticks: float = 2.5  # how far the side behind a jump trails, 1..lag_gap_max_ticks
    lag_gap_max_ticks: int = 8
    flicker_prob: float = 0.003
    l1_size_median_btc: float = 6.0
    l1_size_log_sd: float = 1.5
    l1_size_rho: float = 0.9
    qimb_lean: float = 2.5
    maker_update_prob: float = 0.35  # per side and 100 ms interval
    print_update_prob: float = 0.8
    quote_jitter_ms: tuple[int, int] = (1, 5)


DEFAULT_CALIBRATION = Calibration()


# -- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Regime:
    """One stretch of the schedule, [start, end) in ns."""

    kind: str
    start: int
    end: int

    @property
    def minutes(self) -> float:
        return (self.end - self.start) / 60e9

    def as_dict(self) -> dict:
        return {"kind": self.kind, "start": int(self.start), "end": int(self.end)}


@dataclass
class TrueBook:
    """The unconflated top of book: state ``i`` holds after the change in interval ``i - 1``.

    State 0 is the opening book. Interval ``k`` (``start + k*100 ms`` onwards) changes the book at
    millisecond ``change_ms[k]`` of the interval; a trade stamped at or before that millisecond
    trades against state ``k``, after it against state ``k + 1``. Kept so tests can check that
    every trade happened at the touch, and for diagnostics.
    """

    start_ns: int
    change_ms: np.ndarray  # int64, per interval, 1..99
    bid: np.ndarray  # int64 units, n + 1 states
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    jump: np.ndarray  # int64, per interval: signed ticks the leading side moved (0 = none)

    def state_at(self, ts: np.ndarray) -> np.ndarray:
        """Index of the book state a trade at ``ts`` traded against."""
        rel = np.asarray(ts, np.int64) - self.start_ns
        k = rel // STEP_NS
        ms = (rel % STEP_NS) // MS
        return k + (ms > self.change_ms[k])


@dataclass
class Label:
    """What a generated market says about itself: the catalog's ``SYNTHETIC.json`` and the summary.

    The same for a market held in memory (:func:`generate`) and one streamed to a catalog
    (:func:`synth_command`): both are built from the same chunks and the same statistics.
    """

    hours: float
    seed: int
    start_ns: int
    regimes: list[Regime]
    trades: int
    quotes: int
    stats: dict
    calibration: Calibration = DEFAULT_CALIBRATION

    @property
    def end_ns(self) -> int:
        return self.start_ns + n_steps(self.hours) * STEP_NS

    def marker(self) -> dict:
        """The catalog's SYNTHETIC.json: what made it, the schedule, the calibration. No wall clock."""
        return {
            **identity(self.seed, self.hours, self.start_ns),
            "instrument": BTCUSDT.instrument_id,
            "end": iso(self.end_ns),
            "counts": {"trades": self.trades, "quotes": self.quotes},
            "regimes": [r.as_dict() for r in self.regimes],
            "calibration": {"parameters": _jsonable(asdict(self.calibration)), "realised": self.stats},
        }

    def summary(self, seconds: float | None = None) -> str:
        s = self.stats
        kinds = ", ".join(f"{n} {k}" for k, n in s["regime_counts"].items() if n)
        took = f" Generated and written in {seconds:.1f} s." if seconds is not None else ""
        return (
            f"Synthetic BTCUSDT market, seed {self.seed}, {self.hours:g} h from {iso(self.start_ns)}: "
            f"{self.trades:,} trades ({s['trades_per_s']:.1f}/s in {s['prints_per_s']:.1f} prints/s, "
            f"{100 * s['same_ms_share']:.0f}% sharing their millisecond, median fill {s['fill_size_btc']['50']:.3f} BTC, "
            f"{100 * s['buy_fraction']:.1f}% buyer-initiated) and {self.quotes:,} L1 quotes "
            f"({s['quotes_per_s']:.1f}/s, spread 1 tick in {100 * s['spread_1tick_share']:.1f}%); "
            f"{len(self.regimes)} regimes ({kinds}); price {s['first_price']:.1f} -> {s['last_price']:.1f} "
            f"(range {s['low_price']:.1f}-{s['high_price']:.1f}); realised 1-minute mid log-return sd "
            f"{s['mid_1m_sd_bps']:.2f} bps; the quote rule against the published quotes agrees with the "
            f"aggressor on {100 * s['quote_rule_agreement']:.1f}% of trades "
            f"({100 * s['quote_rule_ambiguous']:.1f}% ambiguous).{took}"
        )


@dataclass
class SyntheticMarket:
    """A generated market held in memory, with its schedule and true book (tests, short spans).

    ``synth`` never builds one: it streams the same chunks straight to the catalog.
    """

    hours: float
    seed: int
    start_ns: int
    regimes: list[Regime]
    trades: TradeBatch
    quotes: QuoteBatch
    book: TrueBook
    calibration: Calibration = DEFAULT_CALIBRATION
    _stats: dict | None = field(default=None, repr=False)

    @property
    def end_ns(self) -> int:
        return self.start_ns + n_steps(self.hours) * STEP_NS

    def stats(self) -> dict:
        if self._stats is None:
            self._stats = realised_stats(self)
        return self._stats

    def label(self) -> Label:
        return Label(self.hours, self.seed, self.start_ns, self.regimes, len(self.trades), len(self.quotes), self.stats(), self.calibration)

    def marker(self) -> dict:
        return self.label().marker()

    def summary(self, seconds: float | None = None) -> str:
        return self.label().summary(seconds)


def schedule(hours: float, seed: int, start_ns: int, calibration: Calibration = DEFAULT_CALIBRATION) -> list[Regime]:
    """The regimes ``generate`` would produce, without generating the market."""
    validate(hours, seed, start_ns)
    _, segments = fair_path(hours, seed, calibration)
    return [Regime(kind, start_ns + a * STEP_NS, start_ns + b * STEP_NS) for kind, a, b in segments]


def identity(seed: int, hours: float, start_ns: int) -> dict:
    """What makes two synthetic catalogs the same market."""
    return {"generator": GENERATOR, "seed": int(seed), "hours": float(hours), "start": iso(start_ns)}


def n_steps(hours: float) -> int:
    return max(1, int(round(hours * STEPS_PER_HOUR)))


# -- generation -------------------------------------------------------------------------------------


@dataclass
class Chunk:
    """Intervals ``[k0, k1)`` of the market - an hour, the last one possibly shorter.

    ``bid``/``ask``/``bid_size``/``ask_size`` are the true book's states ``k0 + 1 .. k1`` and
    ``change_ms``/``jump`` its intervals ``k0 .. k1 - 1`` (see :class:`TrueBook`).
    """

    k0: int
    k1: int
    trades: TradeBatch
    quotes: QuoteBatch
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    change_ms: np.ndarray
    jump: np.ndarray


def generate(
    hours: float,
    seed: int,
    start_ns: int,
    calibration: Calibration = DEFAULT_CALIBRATION,
    progress: Progress | None = None,
) -> SyntheticMarket:
    """The whole market for ``hours`` from ``start_ns`` (a whole millisecond), from ``seed`` alone,
    held in memory: the chunks of :class:`MarketStream` put together."""
    stream = MarketStream(hours, seed, start_ns, calibration, progress)
    stats = RealisedStats()
    trades, quotes, books = [], [], []
    for chunk in stream:
        stats.add(chunk.trades, chunk.quotes)
        trades.append(chunk.trades)
        quotes.append(chunk.quotes)
        books.append(chunk)
    opening = stream.opening
    sizes = list(opening[2:])
    book = TrueBook(
        start_ns=int(start_ns),
        change_ms=np.concatenate([c.change_ms for c in books]),
        bid=np.concatenate([[opening[0]]] + [c.bid for c in books]).astype(np.int64),
        ask=np.concatenate([[opening[1]]] + [c.ask for c in books]).astype(np.int64),
        bid_size=np.concatenate([sizes[0]] + [c.bid_size for c in books]),
        ask_size=np.concatenate([sizes[1]] + [c.ask_size for c in books]),
        jump=np.concatenate([c.jump for c in books]),
    )
    market = SyntheticMarket(float(hours), int(seed), int(start_ns), stream.regimes, TradeBatch.concat(trades), QuoteBatch.concat(quotes), book, calibration)
    market._stats = stream.finish(stats)
    return market


def validate(hours: float, seed: int, start_ns: int) -> None:
    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise DataError(f"--hours must be a positive number of hours (got {hours!r})")
    if hours > MAX_HOURS:
        raise DataError(f"--hours {hours:g}: at most {MAX_HOURS:g} h (a year) per synthetic catalog")
    if int(seed) != seed or seed < 0:
        raise DataError(f"--seed must be a non-negative integer (got {seed!r})")
    if start_ns <= 0 or start_ns % MS:
        raise DataError(f"the start must be a whole millisecond after 1970 (got {start_ns} ns)")


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


def _start_level(seed: int, cal: Calibration) -> float:
    """A seed-dependent opening price near ``start_price``, on the tick grid."""
    u = _rng(seed, _LEVEL).uniform(-cal.start_price_range, cal.start_price_range)
    return round(cal.start_price * (1.0 + u), BTCUSDT.price_precision)


def _steps(rng: np.random.Generator, minutes: tuple[float, float]) -> int:
    return max(1, int(round(rng.uniform(*minutes) * STEPS_PER_MIN)))


class MarketStream:
    """The market an hour at a time, in bounded memory, with exactly the ticks of the whole.

    Every component draws from its own seeded stream, so the market is the same whether made at
    once or in pieces, provided each stream sees the same draws in the same order. Two figures
    need the whole span before the first tick can be made, and each costs a pass over the (cheap)
    fair price path, regenerated from its seed rather than stored:

    1. the mean absolute 10-second move, which scales the print rate everywhere (summed in
       numpy's own pairwise order, so it is the same bits as the whole-array mean);
    2. where the print stream stands after drawing every interval's print count, because the
       counts are drawn for the whole span before the first print's details.

    The third pass makes the ticks: per hour the rates, counts, the true book (its sequential
    state carried over), the prints and the published quotes. Memory: about four hours of the
    price path plus one hour of ticks, whatever ``hours`` is.
    """

    def __init__(self, hours: float, seed: int, start_ns: int, calibration: Calibration = DEFAULT_CALIBRATION, progress: Progress | None = None) -> None:
        validate(hours, seed, start_ns)
        self.hours, self.seed, self.start_ns, self.cal = float(hours), int(seed), int(start_ns), calibration
        self.n = n_steps(hours)
        self.say = progress or (lambda _msg: None)
        self.level = _start_level(seed, calibration)
        self.regimes: list[Regime] = []
        self.opening: tuple | None = None
        self.trades = self.quotes = 0

    def __iter__(self) -> Iterator[Chunk]:
        cal, n, seed = self.cal, self.n, self.seed
        self.say(f"  pass 1/3: price path and regimes for {self.hours:g} h ...")
        path = _PathStream(self.hours, seed, cal)
        mean_move = _mean_move(path)
        self.regimes = [Regime(kind, self.start_ns + a * STEP_NS, self.start_ns + b * STEP_NS) for kind, a, b in path.segments]
        kinds = np.array([_GROUP[kind] for kind, _, _ in path.segments], np.int64)
        ends = np.array([b for _, _, b in path.segments], np.int64)
        self.say("  pass 2/3: order-flow intensity ...")
        rng_prints = _rng(seed, _PRINTS)  # after this pass: where the prints' own draws begin
        for _ in _Flow(self, mean_move, kinds, ends, rng_prints, counts_only=True):
            pass
        self.say(f"  pass 3/3: book, trades and quotes over {n:,} 100 ms intervals ...")
        flow = _Flow(self, mean_move, kinds, ends, _rng(seed, _PRINTS))
        rng_book, rng_quotes = _rng(seed, _BOOK), _rng(seed, _QUOTES)
        state = None
        first_id = 1
        prev = None  # the last two published-book states: (k - 1, k)
        began = time.perf_counter()
        report = (6 if n <= 48 * STEPS_PER_HOUR else 24) * STEPS_PER_HOUR
        for k0, k1, mid_units, counts, buy_prob, pressure in flow:
            if state is None:
                state = _BookState.opening(rng_book, float(mid_units[0]), cal)
                opening = state.snapshot()
                size = lambda log: np.maximum(1, np.rint(np.exp(log) * BTCUSDT.size_scale)).astype(np.int64)  # noqa: E731
                self.opening = (int(opening[0][0]), int(opening[1][0]), size(opening[2]), size(opening[3]))
                prev = (None, (self.opening[0], self.opening[1], int(self.opening[2][0]), int(self.opening[3][0])))
            if k0 and k0 % report == 0:
                done = k0 / n
                left = (time.perf_counter() - began) * (1 - done) / done
                self.say(f"    {k0 / STEPS_PER_HOUR:.0f}/{n / STEPS_PER_HOUR:.0f} h: {self.trades:,} trades, {self.quotes:,} quotes; about {left:.0f} s left")
            bids, asks, log_bid, log_ask, jump, change_ms = state.run(rng_book, k0, mid_units, counts, cal.qimb_lean * pressure, cal)
            bid_size = np.maximum(1, np.rint(np.exp(log_bid) * BTCUSDT.size_scale)).astype(np.int64)
            ask_size = np.maximum(1, np.rint(np.exp(log_ask) * BTCUSDT.size_scale)).astype(np.int64)
            states = [np.concatenate([[prev[1][i]], col]) for i, col in enumerate((bids, asks, bid_size, ask_size))]
            change_ms = change_ms.astype(np.int64)
            jump = jump.astype(np.int64)
            trades = _prints(rng_prints, self.start_ns, k0, counts, buy_prob, change_ms, jump, states[0], states[1], cal, first_id)
            first_id += len(trades)
            quotes = _published(rng_quotes, self.start_ns, k0, states, prev[0], cal)
            prev = (tuple(int(c[-2]) for c in states), tuple(int(c[-1]) for c in states))
            self.trades += len(trades)
            self.quotes += len(quotes)
            yield Chunk(k0, k1, trades, quotes, bids.astype(np.int64), asks.astype(np.int64), bid_size, ask_size, change_ms, jump)

    def finish(self, stats: RealisedStats) -> dict:
        """The realised figures of everything yielded (``stats`` fed with every chunk)."""
        counts = {k: sum(r.kind == k for r in self.regimes) for k in KINDS}
        return _jsonable(_rounded(stats.figures(self.n * STEP_NS / 1e9, counts)))

    def label(self, stats: RealisedStats) -> Label:
        return Label(self.hours, self.seed, self.start_ns, self.regimes, self.trades, self.quotes, self.finish(stats), self.cal)


_GROUP = {BALANCE: 0, TREND_UP: 1, TREND_DOWN: 1, FAILED_UP: 2, FAILED_DOWN: 2}
_SIDE = {TREND_UP: 1.0, TREND_DOWN: -1.0}


class _Flow:
    """Per hour: the fair path around it, mid, print rate, print counts, buy probability."""

    MOVE_W = 50  # +-5 s

    def __init__(self, stream: MarketStream, mean_move: float, kinds: np.ndarray, ends: np.ndarray, rng_counts: np.random.Generator, counts_only: bool = False) -> None:
        self.stream, self.mean_move, self.kinds, self.ends = stream, mean_move, kinds, ends
        self.rng_counts, self.counts_only = rng_counts, counts_only
        cal = stream.cal
        self.path = _PathStream(stream.hours, stream.seed, cal)
        self.rng_activity = _rng(stream.seed, _ACTIVITY)
        tau = cal.activity_tau_s * 1000 / STEP_MS
        self.a = math.exp(-1.0 / tau)
        self.noise = 0.0
        self.flow_w = int(cal.flow_window_s * 1000 / STEP_MS)
        self.base = np.array([cal.prints_per_s[BALANCE], cal.prints_per_s["trend"], cal.prints_per_s["failed_breakout"]])
        self.side = np.array([_SIDE.get(r.kind, 0.0) for r in stream.regimes])

    def __iter__(self):
        cal, n = self.stream.cal, self.stream.n
        halo = max(self.MOVE_W, self.flow_w)
        for k0 in range(0, n, STEPS_PER_HOUR):
            k1 = min(n, k0 + STEPS_PER_HOUR)
            lo, hi = max(0, k0 - halo), min(n, k1 + halo)
            x, off = self.path.window(lo, hi)
            self.path.release(k1 - halo)
            i = np.arange(k0, k1)
            seg = np.searchsorted(self.ends, i, "right")
            # Print rate: regime level x slow activity noise x recent absolute move.
            b = cal.activity_sd * math.sqrt(1 - self.a * self.a) * self.rng_activity.standard_normal(k1 - k0)
            noise = _ar1(self.noise, self.a, b)
            self.noise = float(noise[-1])
            w = self.MOVE_W
            move = np.abs(x[np.minimum(i + w, n - 1) - off] - x[np.maximum(i - w, 0) - off])
            factor = (1 - cal.activity_move_weight) + cal.activity_move_weight * move / self.mean_move
            activity = np.exp(noise - cal.activity_sd**2 / 2) * factor
            rates = self.base[self.kinds[seg]] * activity
            counts = self.rng_counts.poisson(rates * (STEP_MS / 1000.0))
            if self.counts_only:
                yield k0, k1, None, counts, None, None
                continue
            # P(buyer is the aggressor): the fair price's move around each interval, and the trend.
            r = x[np.minimum(i + self.flow_w, n - 1) - off] - x[np.maximum(i - self.flow_w, 0) - off]
            buy_prob = 0.5 + cal.buy_bias * np.tanh(r / cal.buy_bias_scale_bps) + cal.trend_buy_bias * self.side[seg]
            mid_units = self.stream.level * BTCUSDT.price_scale * np.exp(x[k0 - off : k1 - off] / 1e4)
            yield k0, k1, mid_units, counts, buy_prob, 2.0 * buy_prob - 1.0


def _mean_move(path: _PathStream) -> float:
    """Mean over the span of the absolute fair move across +-5 s, in numpy's summation order."""
    from auction_trader.data.synth_stats import pairwise_mean

    n, w = path.n, _Flow.MOVE_W

    def read(lo: int, hi: int) -> np.ndarray:
        x, off = path.window(max(0, lo - w), min(n, hi + w))
        path.release(lo)
        i = np.arange(lo, hi)
        return np.abs(x[np.minimum(i + w, n - 1) - off] - x[np.maximum(i - w, 0) - off])

    value = pairwise_mean(read, n)
    path.window(n - 1, n)  # the whole schedule
    return value or 1.0


# -- the fair price path and its regimes ----------------------------------------------------------


def fair_path(hours: float, seed: int, calibration: Calibration = DEFAULT_CALIBRATION) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Fair log-price in bps from the opening level, per 100 ms, and the (kind, start, end) steps.

    Cheap (no trades, no book): tests and the schedule use it for long spans.
    """
    path = _PathStream(hours, seed, calibration)
    x, _ = path.window(0, path.n)
    return x.copy(), path.segments


class _PathStream:
    """The fair path, regime by regime, keeping only the history anyone still looks at.

    A failed breakout aims at the value area of the last four hours, so four hours are always
    kept; consumers say how far back they still need (:meth:`release`).
    """

    HISTORY = 240 * STEPS_PER_MIN

    def __init__(self, hours: float, seed: int, cal: Calibration) -> None:
        self.cal, self.n = cal, n_steps(hours)
        self.rng = _rng(seed, _PATH)
        self.buf = np.zeros(0)
        self.base = 0  # buf[i] is x[base + i]
        self.k = 0
        self.keep = 0
        self.centre, self.first, self.move_next = 0.0, True, False
        self.sd = self.rng.uniform(*cal.balance_sd_bps)
        self.bag: list[str] = []
        self.segments: list[tuple[str, int, int]] = []

    def window(self, a: int, b: int) -> tuple[np.ndarray, int]:
        """(x from ``a``, ``a``): the path over ``[a, b)``, generated as far as needed."""
        while self.k < min(b, self.n):
            self._next()
        return self.buf[a - self.base : b - self.base], a

    def release(self, before: int) -> None:
        self.keep = max(self.keep, before)

    def _x(self, i: int) -> float:
        return self.buf[i - self.base]

    def _append(self, values: np.ndarray) -> None:
        cut = min(self.keep, self.k - self.HISTORY) - self.base
        if cut > 0 and cut >= len(self.buf) // 2:
            self.buf = self.buf[cut:]
            self.base += cut
        self.buf = np.concatenate([self.buf, values])
        self.k += len(values)

    def _next(self) -> None:
        rng, cal, k, n = self.rng, self.cal, self.k, self.n
        if not self.move_next:
            end = min(n, k + _steps(rng, cal.first_balance_min if self.first else cal.balance_min))
            values, self.centre = _balance(rng, self._x(k - 1) if k else 0.0, end - k, self.centre, self.sd, cal)
            self.segments.append((BALANCE, k, end))
            self.first, self.move_next = False, True
        else:
            if not self.bag:
                self.bag = [("trend", "failed_breakout")[i] for i in rng.permutation(2)]
            level = self._x(k - 1)
            if self.bag.pop() == "trend":
                kind, values = _trend(rng, level, n - k, cal)
                self.centre, self.sd = values[-1], rng.uniform(*cal.balance_sd_bps)
            else:
                recent = self.buf[max(0, k - 240 * STEPS_PER_MIN) - self.base : k - self.base : 10]
                last_hour = self.buf[max(0, k - 60 * STEPS_PER_MIN) - self.base : k - self.base : 10]
                kind, values = _failed_breakout(rng, level, recent, last_hour, n - k, cal)
            self.segments.append((kind, k, k + len(values)))
            self.move_next = False
        self._append(values)


def _ar1(x0: float, a: float, b: np.ndarray) -> np.ndarray:
    """x[i] = a x[i-1] + b[i]: the exact discretisation of an OU process with drive ``b``."""
    out = []
    append = out.append
    x = float(x0)
    for bi in b.tolist():
        x = a * x + bi
        append(x)
    return np.array(out)


def _balance(rng: np.random.Generator, prev: float, m: int, centre: float, sd: float, cal: Calibration) -> tuple[np.ndarray, float]:
    """Mean reversion around a slowly wandering centre; the path and the centre where it ended."""
    a = math.exp(-1.0 / (cal.balance_tau_min * STEPS_PER_MIN))
    wander = cal.centre_drift_bps_sqrt_h / math.sqrt(STEPS_PER_HOUR)
    target = centre + np.cumsum(rng.standard_normal(m) * wander)
    drive = (1.0 - a) * target + sd * math.sqrt(1.0 - a * a) * rng.standard_normal(m)
    return _ar1(prev, a, drive), float(target[-1])


def _trend(rng: np.random.Generator, level: float, remaining: int, cal: Calibration) -> tuple[str, np.ndarray]:
    """Value migrates: impulse legs and pullbacks, a random walk with piecewise drift."""
    m = min(remaining, _steps(rng, cal.trend_min))
    up = rng.random() < float(np.clip(0.5 - level / 400.0, 0.15, 0.85))  # lean back towards the start
    sign = 1.0 if up else -1.0
    speed = rng.uniform(*cal.trend_drift_bps_min) / STEPS_PER_MIN
    drift = np.empty(m)
    i, impulse = 0, True
    while i < m:
        if impulse:
            length, v = _steps(rng, cal.impulse_min), speed
        else:
            length, v = _steps(rng, cal.pullback_min), -speed * rng.uniform(*cal.pullback_speed)
        drift[i : i + length] = sign * v
        i, impulse = i + length, not impulse
    sigma = cal.trend_sd_1m_bps / math.sqrt(STEPS_PER_MIN)
    return (TREND_UP if up else TREND_DOWN), level + np.cumsum(drift + sigma * rng.standard_normal(m))


def _failed_breakout(rng: np.random.Generator, level: float, recent: np.ndarray, last_hour: np.ndarray, remaining: int, cal: Calibration) -> tuple[str, np.ndarray]:
    """Travel to the value edge the strategy sees, poke beyond it, hold, fall back into value.

    ``recent``/``last_hour``: the path of the last 4 h / 1 h, every tenth step.
    """
    val, vah = value_area_bps(recent, cal.va_fraction)
    if not val <= level <= vah:  # already outside the 4 h value: the current balance's edges
        val, vah = value_area_bps(last_hour, cal.va_fraction)
    up = rng.random() < 0.5
    reach, other = (vah - level, level - val) if up else (level - val, vah - level)
    if reach > cal.fb_max_reach_bps and other < reach:
        up = not up  # the drawn edge is far away and the other one is nearer
    sign = 1.0 if up else -1.0
    edge = vah if up else val
    peak = edge + sign * rng.uniform(*cal.fb_poke_bps)
    approach = max(cal.fb_min_approach_min, abs(peak - level) / cal.fb_approach_bps_min)
    hold = rng.uniform(*cal.fb_hold_min)
    depth = rng.uniform(*cal.fb_return_depth) * min(vah - val, cal.fb_return_max_bps)
    back = edge - sign * max(depth, cal.fb_return_min_bps)
    ret = rng.uniform(*cal.fb_return_min)
    # The target reaches value after 70 % of the return and waits there for the price to follow.
    knots_t = np.cumsum([0.0, approach, hold, 0.7 * ret, 0.3 * ret]) * STEPS_PER_MIN
    m = min(remaining, int(round(knots_t[-1])))
    target = np.interp(np.arange(1, m + 1), knots_t, [level, peak, peak, back, back])
    a = math.exp(-1.0 / (cal.fb_tau_s * 1000 / STEP_MS))
    drive = (1.0 - a) * target + cal.fb_sd_bps * math.sqrt(1.0 - a * a) * rng.standard_normal(m)
    return (FAILED_UP if up else FAILED_DOWN), _ar1(level, a, drive)


def value_area_bps(samples: np.ndarray, fraction: float = 0.70) -> tuple[float, float]:
    """(low, high) of the ``fraction`` value area of time-weighted samples in 1-bps bins.

    The same expansion as the strategy's (from the POC, larger neighbour first, ties upward),
    on the fair path instead of traded volume: close enough to aim a poke at its edge.
    """
    lo = math.floor(float(samples.min()))
    hist = np.bincount((np.floor(samples) - lo).astype(np.int64)).tolist()
    poc = int(np.argmax(hist))
    low = high = poc
    cum, need = hist[poc], fraction * len(samples)
    while cum < need:
        below = hist[low - 1] if low > 0 else -1
        above = hist[high + 1] if high + 1 < len(hist) else -1
        if above >= below:
            high, cum = high + 1, cum + above
        else:
            low, cum = low - 1, cum + below
    return float(lo + low), float(lo + high + 1)


# -- the true book --------------------------------------------------------------------------------


@dataclass
class _BookState:
    """The top of book between intervals: target bid, displayed prices, log sizes, pending lag."""

    tb: int  # where the bid belongs (the fair mid less half a tick, as of the last move)
    bid: int
    ask: int
    zb: float  # standardised log sizes (AR(1) states)
    za: float
    lb: float  # log sizes as displayed
    la: float
    hyst: float  # ticks the fair mid must stray before the book moves
    lag_until: int = -1  # interval at which a lagging side catches up

    @classmethod
    def opening(cls, rng: np.random.Generator, mid: float, cal: Calibration) -> _BookState:
        tb = int(math.floor(mid))
        zb, za = (float(v) for v in rng.standard_normal(2))
        mu, sl = math.log(cal.l1_size_median_btc), cal.l1_size_log_sd
        hyst = float(rng.uniform(*cal.hysteresis_ticks))
        return cls(tb, tb, tb + 1, zb, za, mu + sl * zb, mu + sl * za, hyst)

    def snapshot(self) -> tuple[np.ndarray, ...]:
        """The opening state as one-row columns (jump and change_ms are per interval: dummies)."""
        return tuple(np.array([v]) for v in (self.bid, self.ask, self.lb, self.la, 0, 0))

    def run(self, rng: np.random.Generator, k0: int, mids: np.ndarray, prints: np.ndarray, lean: np.ndarray, cal: Calibration) -> tuple[np.ndarray, ...]:
        """Advance through the intervals ``k0 ..``; all random numbers are drawn before the loop."""
        m = len(mids)
        lag = (rng.random(m) < cal.lag_prob).tolist()
        lag_len = rng.integers(1, cal.lag_steps_max + 1, m).tolist()
        lag_gap = np.minimum(rng.geometric(1.0 / cal.lag_gap_mean_ticks, m), cal.lag_gap_max_ticks).tolist()
        flicker = (rng.random(m) < cal.flicker_prob).tolist()
        flicker_bid = (rng.random(m) < 0.5).tolist()
        touched = (prints > 0) & (rng.random(m) < cal.print_update_prob)
        upd_bid = (touched | (rng.random(m) < cal.maker_update_prob)).tolist()
        upd_ask = (touched | (rng.random(m) < cal.maker_update_prob)).tolist()
        eta_b, eta_a, fresh_b, fresh_a = (e.tolist() for e in rng.standard_normal((4, m)))
        thresholds = rng.uniform(*cal.hysteresis_ticks, m).tolist()
        change_ms = rng.integers(1, STEP_MS, m)
        mu, sl, rho = math.log(cal.l1_size_median_btc), cal.l1_size_log_sd, cal.l1_size_rho
        innov = math.sqrt(1 - rho * rho)
        lean_l = lean.tolist()

        tb, bid, ask, zb, za, lb, la = self.tb, self.bid, self.ask, self.zb, self.za, self.lb, self.la
        hyst, lag_until = self.hyst, self.lag_until
        bids, asks, lbs, las, jumps = [], [], [], [], []
        for i, mid in enumerate(mids.tolist()):
            k = k0 + i
            dev = mid - (tb + 0.5)
            jump = 0
            old_bid, old_ask = bid, ask
            if dev > hyst or dev < -hyst:
                nb = int(math.floor(mid))
                jump, tb, hyst = nb - tb, nb, thresholds[i]
                bid, ask = tb, tb + 1
                if lag[i]:  # the side behind the move refills a moment later
                    gap = min(lag_gap[i], abs(jump))
                    if jump > 0:
                        bid = tb - gap
                    else:
                        ask = tb + 1 + gap
                    lag_until = k + lag_len[i]
                else:
                    lag_until = -1
            elif k == lag_until or (lag_until < 0 and (bid != tb or ask != tb + 1)):
                bid, ask, lag_until = tb, tb + 1, -1
            elif lag_until < 0 and flicker[i]:  # a maker steps back one tick for an instant
                if flicker_bid[i]:
                    bid = tb - 1
                else:
                    ask = tb + 2
            if bid != old_bid:  # a new level: a new size
                zb = fresh_b[i]
                lb = mu + sl * zb + lean_l[i]
            elif upd_bid[i]:
                zb = rho * zb + innov * eta_b[i]
                lb = mu + sl * zb + lean_l[i]
            if ask != old_ask:
                za = fresh_a[i]
                la = mu + sl * za - lean_l[i]
            elif upd_ask[i]:
                za = rho * za + innov * eta_a[i]
                la = mu + sl * za - lean_l[i]
            bids.append(bid)
            asks.append(ask)
            lbs.append(lb)
            las.append(la)
            jumps.append(jump)
        self.tb, self.bid, self.ask, self.zb, self.za, self.lb, self.la = tb, bid, ask, zb, za, lb, la
        self.hyst, self.lag_until = hyst, lag_until
        return np.array(bids), np.array(asks), np.array(lbs), np.array(las), np.array(jumps), change_ms


# -- trades ---------------------------------------------------------------------------------------


def _prints(
    rng: np.random.Generator,
    start_ns: int,
    k0: int,
    counts: np.ndarray,
    buy_prob: np.ndarray,
    change_ms: np.ndarray,
    jump: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    cal: Calibration,
    first_id: int,
) -> TradeBatch:
    """The prints of the intervals ``k0 ..`` (local arrays: per interval, and ``bid``/``ask`` per
    book state from ``k0``), expanded into maker fills sharing the print's millisecond."""
    m = len(counts)
    # Ordinary prints: Poisson counts per interval, uniform milliseconds inside it.
    step = np.repeat(np.arange(m, dtype=np.int64), counts)
    ms = rng.integers(1, STEP_MS, len(step))
    buy = rng.random(len(step)) < buy_prob[step]
    depth = np.zeros(len(step), np.int64)
    # Prints that moved the book: at the jump's millisecond, against the book before it.
    moved = np.flatnonzero((jump != 0) & (rng.random(m) < cal.impact_prob))
    step = np.concatenate([step, moved])
    ms = np.concatenate([ms, change_ms[moved]])
    buy = np.concatenate([buy, jump[moved] > 0])
    depth = np.concatenate([depth, np.minimum(np.abs(jump[moved]) - 1, cal.impact_max_through)])
    order = np.lexsort((ms, step))
    step, ms, buy, depth = step[order], ms[order], buy[order], depth[order]
    state = step + (ms > change_ms[step])
    touch = np.where(buy, ask[state], bid[state])

    fills = _fills_per_print(rng, len(step), cal)
    fills = np.maximum(fills, depth + 1)
    sweep = (fills >= 2) & (depth == 0) & (rng.random(len(step)) < cal.sweep_prob)
    split = 1 + (rng.random(len(step)) * np.maximum(fills - 1, 1)).astype(np.int64)
    p = np.repeat(np.arange(len(step)), fills)
    first = np.cumsum(fills) - fills
    j = np.arange(len(p)) - first[p]
    through = np.where(depth[p] > 0, (j * (depth[p] + 1)) // fills[p], sweep[p] & (j >= split[p]))
    price = touch[p] + np.where(buy[p], through, -through)
    ts = start_ns + (k0 + step[p]) * STEP_NS + ms[p] * MS
    size = fill_sizes(rng, len(p), cal)
    aggressor = np.where(buy[p], BUYER, SELLER).astype(np.uint8)
    trade_id = np.array([str(i) for i in range(first_id, first_id + len(p))], dtype=object)
    return TradeBatch(ts.astype(np.int64), price.astype(np.int64), size, aggressor, trade_id, np.zeros(0, np.int64))


def _fills_per_print(rng: np.random.Generator, count: int, cal: Calibration) -> np.ndarray:
    single = rng.random(count) < cal.single_fill_prob
    extra = rng.geometric(1.0 / cal.extra_fills_mean, count)
    return np.where(single, 1, 1 + extra).astype(np.int64)


def fill_sizes(rng: np.random.Generator, count: int, cal: Calibration = DEFAULT_CALIBRATION) -> np.ndarray:
    """Maker fill sizes in 0.001 BTC units: the measured quantile function, log-interpolated."""
    u, btc = np.array(cal.fill_size_knots).T
    size = np.exp(np.interp(rng.random(count), u, np.log(btc)))
    return np.maximum(1, np.rint(size * BTCUSDT.size_scale)).astype(np.int64)


# -- published quotes ------------------------------------------------------------------------------


def _published(rng: np.random.Generator, start_ns: int, k0: int, states: list[np.ndarray], before: tuple | None, cal: Calibration) -> QuoteBatch:
    """One snapshot per 100 ms interval whose top of book changed, stamped a few ms late.

    ``states``: the book states ``k0 .. k1`` (bid, ask, bid size, ask size); ``before``: state
    ``k0 - 1``. State ``i`` is published in interval ``i`` if it differs from state ``i - 1``;
    the opening book at the start; the state after the last interval would be stamped past the
    end and is left out.
    """
    m = len(states[0]) - 1
    cols = [c[:m] for c in states]
    changed = np.zeros(m, bool)
    for c, b in zip(cols, before or (None,) * 4, strict=True):
        changed[1:] |= c[1:] != c[:-1]
        if before is not None:
            changed[0] |= c[0] != b
    if k0 == 0:
        changed[0] = True
    jitter = rng.integers(cal.quote_jitter_ms[0], cal.quote_jitter_ms[1] + 1, m)
    local = np.flatnonzero(changed)
    index = k0 + local
    ts = start_ns + index * STEP_NS + np.where(index > 0, jitter[local], 0) * MS
    return QuoteBatch(ts.astype(np.int64), *(c[local].copy() for c in cols))


# -- statistics -----------------------------------------------------------------------------------


def realised_stats(market: SyntheticMarket) -> dict:
    """The calibration figures, measured on a market in memory (what the docstring tabulates)."""
    stats = RealisedStats()
    stats.add(market.trades, market.quotes)
    counts = {k: sum(r.kind == k for r in market.regimes) for k in KINDS}
    return _jsonable(_rounded(stats.figures((market.end_ns - market.start_ns) / 1e9, counts)))


def mid_return_sd_bps(q: QuoteBatch, seconds: int) -> float:
    """Sample sd of log returns of the published mid at the close of each ``seconds`` bar, in bps."""
    if len(q) < 2:
        return float("nan")
    period = seconds * 1_000_000_000
    first = q.ts_event[0] // period * period
    closes = np.arange(first + period - MS, q.ts_event[-1], period)
    i = np.searchsorted(q.ts_event, closes, "right") - 1
    mid = (q.bid[i] + q.ask[i]) / 2.0
    r = np.diff(np.log(mid)) * 1e4
    return float(r.std(ddof=1)) if len(r) > 1 else float("nan")


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value


def _jsonable(value):
    """Plain JSON types only (tuples to lists, numpy scalars to Python), keys as given."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value



# -- writing --------------------------------------------------------------------------------------


def _writer(catalog: Path, start_ns: int, config: AuctionConfig | None) -> CatalogWriter:
    """A writer that replaces the catalog's market wholly, one file per type per FILE_HOURS of market."""
    return CatalogWriter(Path(catalog), BTCUSDT, config, replace=True, direct=True, edges=Edges(FILE_HOURS * HOUR_NS, start_ns))


def _refuse_real(catalog: Path) -> None:
    if is_synthetic(catalog) is None and has_data(catalog):
        raise DataError(
            f"{catalog} already holds market data that is not synthetic; the synthetic market never "
            "overwrites real data (not even with --overwrite). Choose another --catalog directory.",
        )


def write_synthetic(catalog: Path, market: SyntheticMarket, config: AuctionConfig | None = None) -> None:
    """Add a market held in memory to ``catalog`` with its label (tests put markets of different
    times side by side; never into real data). Into an empty catalog, byte-identical to what
    ``synth`` streams for the same market."""
    with CatalogWriter(Path(catalog), BTCUSDT, config, edges=Edges(FILE_HOURS * HOUR_NS, market.start_ns)) as writer:
        _refuse_real(catalog)
        writer.add_trades(market.trades)
        writer.add_quotes(market.quotes)
        writer.commit(marker=market.marker())


# -- command --------------------------------------------------------------------------------------


def parse_start(text: str) -> int:
    try:
        ns = to_ns(text, "iso", "start")
    except BadRow:
        raise DataError(f"--start {text!r}: not an ISO 8601 timestamp (e.g. 2024-01-01T00:00:00Z)") from None
    if ns <= 0 or ns % MS:
        raise DataError(f"--start {text!r}: must be a whole millisecond after 1970-01-01")
    return ns


def _intact(catalog: Path, marker: dict) -> bool:
    """The catalog still holds exactly the rows its label counted."""
    from auction_trader.data.inventory import inventory

    counts = marker.get("counts") or {}
    rows = {s.data_type: s.rows for s in inventory(catalog, verify=False)["series"]}
    return rows.get("trade_tick") == counts.get("trades") and rows.get("quote_tick") == counts.get("quotes")


def synth_command(catalog: Path, hours: float, seed: int, start: str, overwrite: bool, config: AuctionConfig) -> int:
    """``python -m auction_trader.data synth``: make the synthetic catalog unless it is already there.

    Quick when nothing changed (the README's first command runs it every time); replaces only a
    synthetic catalog, and only with ``overwrite``. Real data is never overwritten. The market is
    generated and written an hour at a time (:class:`MarketStream`): any number of hours in
    bounded memory, committed at once at the end.
    """
    from auction_trader.data.catalog import recover_leftovers
    from auction_trader.data.inventory import format_inventory, inventory

    began = time.perf_counter()
    start_ns = parse_start(start)
    validate(hours, seed, start_ns)
    catalog = Path(catalog)
    recover_leftovers(catalog)
    wanted = identity(seed, hours, start_ns)
    action = _action(catalog, wanted, overwrite)
    if action == "up to date":
        print(f"{catalog}: synthetic market already up to date (seed {seed}, {hours:g} h from {wanted['start']}); nothing to do.")
        print(format_inventory(inventory(catalog, verify=False)))
        return 0
    say = _printer()
    note = " (the existing copy is incomplete)" if action == "repair" else ""
    say(f"generating {hours:g} h of synthetic BTCUSDT from {wanted['start']} with seed {seed} into {catalog}{note} ...")
    stream = MarketStream(hours, seed, start_ns, progress=say)
    stats = RealisedStats()
    with _writer(catalog, start_ns, config) as writer:
        _refuse_real(catalog)
        for chunk in stream:
            writer.add_trades(chunk.trades)
            writer.add_quotes(chunk.quotes)
            stats.add(chunk.trades, chunk.quotes)
        label = stream.label(stats)
        writer.commit(marker=label.marker())
    print(label.summary(time.perf_counter() - began))
    print(format_inventory(inventory(catalog, verify=False)))
    return 0


def _action(catalog: Path, wanted: dict, overwrite: bool) -> str:
    """What ``synth`` may do to ``catalog``: 'write', 'replace', 'repair', 'up to date', or refuse."""
    if catalog.exists() and not catalog.is_dir():
        raise DataError(f"{catalog} is a file, not a catalog directory")
    marker = is_synthetic(catalog) if catalog.is_dir() else None
    filled = catalog.is_dir() and has_data(catalog)
    if marker is None:
        if filled:
            raise DataError(
                f"{catalog} already holds market data that is not synthetic; the synthetic market never "
                "overwrites real data (not even with --overwrite). Choose another --catalog directory.",
            )
        return "write"
    if not filled:
        return "replace"  # a label without data: nothing to lose
    if all(marker.get(k) == v for k, v in wanted.items()):
        return "up to date" if _intact(catalog, marker) else "repair"
    if not overwrite:
        raise DataError(
            f"{catalog} holds a synthetic market made with other settings (generator "
            f"{marker.get('generator')}, seed {marker.get('seed')}, {marker.get('hours')} h from "
            f"{marker.get('start')}). Pass --overwrite to replace it, or choose another --catalog.",
        )
    return "replace"


def _printer() -> Progress:
    return lambda message: print(message, flush=True)
