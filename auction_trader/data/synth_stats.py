"""The synthetic market's realised calibration figures, measured an hour at a time.

``synth`` writes these figures into the catalog's ``SYNTHETIC.json``, so they must be exactly
what the whole-market computation (``numpy`` over every trade and quote at once) gives - the
label is part of the catalog's bytes - while the market itself is never held in memory. Every
figure is therefore built from pieces that combine exactly:

* shares and rates are integer counts divided once at the end (``numpy``'s mean of a boolean
  array is exactly that);
* quantiles come from exact histograms of the integer sizes, interpolated the way
  ``numpy.percentile`` interpolates (:func:`percentile_of_counts`, tested against it);
* the mean fill size is summed in ``numpy``'s own pairwise order (:func:`pairwise_mean`), over the
  sizes spilled to a temporary file as they are generated;
* the one-minute return sd needs one mid per minute, which is small.
"""

from __future__ import annotations

import math
import tempfile

import numpy as np

from auction_trader.data.ticks import BUYER, QuoteBatch, TradeBatch
from auction_trader.instrument import BTCUSDT

MS = 1_000_000
LEAF = 1 << 16  # pairwise-sum leaves summed by numpy itself


def percentile_of_counts(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """``numpy.percentile(sample, q)`` (linear method) of the sample holding each of the sorted
    ``values`` ``counts`` times, without building the sample."""
    n = int(counts.sum())
    if n == 0:
        return float("nan")
    v = (n - 1) * (q / 100.0)
    i = math.floor(v)
    ends = np.cumsum(counts)
    a = float(values[int(np.searchsorted(ends, i, "right"))])
    b = float(values[int(np.searchsorted(ends, min(i + 1, n - 1), "right"))])
    if v >= n - 1:
        return b
    t = v - i
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def pairwise_mean(read, n: int) -> float:
    """``numpy.mean`` of ``n`` float64 values, ``read(start, stop)`` giving them a slice at a time.

    numpy sums a contiguous float64 array by halving it (rounded down to a multiple of 8) until
    the halves are small; any part it splits off is summed the same way by ``numpy.add.reduce``,
    so recursing with numpy's split points and handing it leaves of :data:`LEAF` values gives the
    same bits as summing everything at once.
    """
    if n == 0:
        return float("nan")

    def total(lo: int, hi: int) -> float:
        size = hi - lo
        if size <= LEAF:
            return np.add.reduce(read(lo, hi))
        half = size // 2
        half -= half % 8
        return total(lo, lo + half) + total(lo + half, hi)

    return float(total(0, n) / n)


class _Histogram:
    """Exact counts of integer values, merged chunk by chunk."""

    def __init__(self) -> None:
        self.values = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)

    def add(self, values: np.ndarray) -> None:
        v, c = np.unique(values, return_counts=True)
        allv = np.concatenate([self.values, v])
        allc = np.concatenate([self.counts, c])
        order = np.argsort(allv, kind="stable")
        allv, allc = allv[order], allc[order]
        start = np.flatnonzero(np.concatenate([[True], allv[1:] != allv[:-1]]))
        self.values, self.counts = allv[start], np.add.reduceat(allc, start) if len(allc) else allc

    def quantiles(self, scale: int, percents: tuple[int, ...]) -> dict[str, float]:
        floats = self.values / scale
        return {str(p): percentile_of_counts(floats, self.counts, p) for p in percents}


class RealisedStats:
    """Accumulates the figures of :func:`auction_trader.data.synth.realised_stats` chunk by chunk.

    Chunks must come in time order and be whole 100 ms intervals (a print never spans two).
    """

    def __init__(self) -> None:
        self.trades = self.quotes = 0
        self.prints = self.multi_level = self.buys = 0
        self.one_tick = self.price_changes = 0
        self.spread_max: int | None = None
        self.agree = self.ambiguous = self.classified = 0
        self.sizes = _Histogram()
        self.l1 = _Histogram()
        self.first_price = self.last_price = None
        self.low = self.high = None
        self.last_trade_ts: int | None = None
        self.last_quote: tuple[int, int, int] | None = None  # (ts, bid, ask)
        self.first_quote_ts: int | None = None
        self.last_quote_ts: int | None = None
        self.minute_mids: list[float] = []
        self.next_close: int | None = None
        self._spill = tempfile.TemporaryFile(prefix="synth-sizes-")
        self._chunk_quotes: QuoteBatch | None = None

    def add(self, t: TradeBatch, q: QuoteBatch) -> None:
        self._quotes_part(q)
        self._trades_part(t)

    def _quotes_part(self, q: QuoteBatch) -> None:
        if not len(q):
            return
        ts = q.ts_event
        if self.first_quote_ts is None:
            self.first_quote_ts = int(ts[0])
            self.next_close = int(ts[0]) // 60_000_000_000 * 60_000_000_000 + 60_000_000_000 - MS
        self.quotes += len(q)
        spread = q.ask - q.bid
        self.one_tick += int(np.count_nonzero(spread == 1))
        top = int(spread.max())
        self.spread_max = top if self.spread_max is None else max(self.spread_max, top)
        bid = q.bid if self.last_quote is None else np.concatenate([[self.last_quote[1]], q.bid])
        ask = q.ask if self.last_quote is None else np.concatenate([[self.last_quote[2]], q.ask])
        self.price_changes += int(np.count_nonzero((bid[1:] != bid[:-1]) | (ask[1:] != ask[:-1])))
        self.l1.add(np.concatenate([q.bid_size, q.ask_size]))
        # One mid per minute: the last quote at or before each close (closes up to this chunk's last quote).
        last = int(ts[-1])
        if self.next_close <= last:
            closes = np.arange(self.next_close, last + 1, 60_000_000_000, dtype=np.int64)
            i = np.searchsorted(ts, closes, "right") - 1
            before = i < 0
            mids = (q.bid[np.maximum(i, 0)] + q.ask[np.maximum(i, 0)]) / 2.0
            if before.any():
                mids[before] = (self.last_quote[1] + self.last_quote[2]) / 2.0
            self.minute_mids += mids.tolist()
            self.next_close = int(closes[-1]) + 60_000_000_000
        self.last_quote_ts = last
        self._chunk_quotes = q

    def _trades_part(self, t: TradeBatch) -> None:
        q = self._chunk_quotes
        n = len(t)
        if n:
            ts = t.ts_event
            new_ms = np.empty(n, dtype=bool)
            new_ms[0] = self.last_trade_ts is None or ts[0] != self.last_trade_ts
            new_ms[1:] = ts[1:] != ts[:-1]
            self.prints += int(new_ms.sum())
            moved = ~new_ms[1:] & (t.price[1:] != t.price[:-1])
            print_id = np.cumsum(new_ms) - 1
            self.multi_level += len(np.unique(print_id[1:][moved]))
            self.buys += int(np.count_nonzero(t.aggressor == BUYER))
            self.sizes.add(t.size)
            self._spill.write(np.ascontiguousarray(t.size, dtype=np.int64).tobytes())
            if self.first_price is None:
                self.first_price = int(t.price[0])
            self.last_price = int(t.price[-1])
            lo, hi = int(t.price.min()), int(t.price.max())
            self.low = lo if self.low is None else min(self.low, lo)
            self.high = hi if self.high is None else max(self.high, hi)
            self._quote_rule(t, q)
            self.trades += n
            self.last_trade_ts = int(ts[-1])
        if q is not None and len(q):
            self.last_quote = (int(q.ts_event[-1]), int(q.bid[-1]), int(q.ask[-1]))
        self._chunk_quotes = None

    def _quote_rule(self, t: TradeBatch, q: QuoteBatch | None) -> None:
        """Quote-rule sign (latest snapshot strictly before the trade) against the aggressor."""
        qts = q.ts_event if q is not None else np.zeros(0, np.int64)
        i = np.searchsorted(qts, t.ts_event, "left") - 1
        bid = np.where(i >= 0, q.bid[np.maximum(i, 0)] if q is not None and len(q) else 0, self.last_quote[1] if self.last_quote else 0)
        ask = np.where(i >= 0, q.ask[np.maximum(i, 0)] if q is not None and len(q) else 0, self.last_quote[2] if self.last_quote else 0)
        ok = (i >= 0) | (self.last_quote is not None)
        if not ok.any():
            return
        price, side = t.price[ok], t.aggressor[ok]
        bid, ask = bid[ok], ask[ok]
        sign = np.where(price >= ask, 1, np.where(price <= bid, -1, 0))
        truth = np.where(side == BUYER, 1, -1)
        self.agree += int(np.count_nonzero(sign == truth))
        self.ambiguous += int(np.count_nonzero(sign == 0))
        self.classified += int(ok.sum())

    def mean_fill_btc(self) -> float:
        self._spill.flush()

        def read(lo: int, hi: int) -> np.ndarray:
            self._spill.seek(lo * 8)
            return np.frombuffer(self._spill.read((hi - lo) * 8), dtype=np.int64) / BTCUSDT.size_scale

        return pairwise_mean(read, self.trades)

    def mid_1m_sd_bps(self) -> float:
        """As :func:`auction_trader.data.synth.mid_return_sd_bps` for 60 s bars: closes before the last quote."""
        if self.quotes < 2:
            return float("nan")
        first = self.first_quote_ts // 60_000_000_000 * 60_000_000_000
        count = len(range(first + 60_000_000_000 - MS, self.last_quote_ts, 60_000_000_000))
        mids = np.array(self.minute_mids[:count])
        r = np.diff(np.log(mids)) * 1e4
        return float(r.std(ddof=1)) if len(r) > 1 else float("nan")

    def figures(self, seconds: float, regime_counts: dict[str, int]) -> dict:
        n, nq = self.trades, self.quotes
        scale, pscale = BTCUSDT.size_scale, BTCUSDT.price_scale
        out = {
            "seconds": seconds,
            "trades_per_s": n / seconds,
            "prints_per_s": self.prints / seconds,
            "same_ms_share": float(1.0 - self.prints / n) if n else 0.0,
            "multi_level_print_share": float(self.multi_level / self.prints) if n else 0.0,
            "fill_size_btc": self.sizes.quantiles(scale, (10, 25, 50, 75, 90, 99)),
            "mean_fill_btc": self.mean_fill_btc() if n else 0.0,
            "buy_fraction": float(self.buys / n) if n else 0.0,
            "quotes_per_s": nq / seconds,
            "price_changes_per_s": self.price_changes / seconds,
            "spread_1tick_share": float(self.one_tick / nq) if nq else float("nan"),
            "spread_max_ticks": int(self.spread_max) if self.spread_max is not None else 0,
            "l1_size_btc": self.l1.quantiles(scale, (10, 50, 90)),
            "mid_1m_sd_bps": self.mid_1m_sd_bps(),
            "quote_rule_agreement": self.agree / self.classified if self.classified else float("nan"),
            "quote_rule_ambiguous": self.ambiguous / self.classified if self.classified else float("nan"),
            "first_price": float(self.first_price / pscale) if n else float("nan"),
            "last_price": float(self.last_price / pscale) if n else float("nan"),
            "low_price": float(self.low / pscale) if n else float("nan"),
            "high_price": float(self.high / pscale) if n else float("nan"),
            "regime_counts": regime_counts,
        }
        self._spill.close()
        return out
