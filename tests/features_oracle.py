"""The independent oracle of the per-minute features: a plain Python reading of ``docs/features.md``.

This module is the *check* on the Rust feature engine (``rust_indicators``). It was written from the
written definitions only (``docs/features.md``, DESIGN.md "Feature definitions, precisely", specv2
§4-5 and §20.3-20.4), never from the engine's source, and it recomputes everything the slow and
obvious way:

* every minute's profile is rebuilt from scratch from the raw trades of its window;
* every minute's sigma (and BVC's s) is a fresh sample standard deviation of the window's values
  (``statistics.stdev``, which works on exact fractions);
* the print VWAP is an exact rational (``fractions.Fraction`` / integer cross-multiplication), so
  the quote rule and the tick rule never see a rounded price;
* prices are integer ticks ``round(price / tick_size)`` and sizes integer lots
  ``round(size / size_step)`` wherever the contract says so.

Readings of the contract where its words allow two (each is a hand-checked test):

* ``va_fraction`` and ``rebucket_change_pct`` are compared as the decimals they are configured as
  (``Fraction(repr(x))``): 55 lots of 100 is 55 %, although ``0.55 * 100`` is 55.00000000000001.
* Disagreement causes, first that applies: ``disagree_fallback`` when the quote rule left the
  print ambiguous and the fallback gave it +1 or -1 (wrongly); ``disagree_inside`` when the print
  stayed unsigned (sign 0) - the fallback disabled, or its rule itself giving 0 (the very first
  print, or a zero-tick continuation of a 0).

Domain: both streams in time order (by ``ts_ns``), sizes of at least half a lot (every print has
a positive size) and quote sizes with a positive sum. Outside it the oracle raises ``ValueError``
rather than guess.

``oracle_features(trades, quotes, params)`` returns one dict per minute (keys = ``COLUMNS``).
"""

from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass
from fractions import Fraction

NAN = float("nan")

COLUMNS = [
    "ts_min", "open", "high", "low", "close", "volume", "vwap", "trade_count",
    "bid_px_close", "ask_px_close", "bid_sz_close", "ask_sz_close", "spread_close", "spread_avg_60m",
    "mid_close", "sigma_240", "bin_width", "poc", "vah", "val", "va_coverage", "va_bin_count",
    "of_1m", "of_norm_1m", "qimb_close", "qimb_ema_60s", "ambiguous_trade_frac_1m", "total_volume_4h",
    "va_valid", "bin_width_applied", "poc_bin", "val_bin", "vah_bin", "of_1m_inferred", "of_1m_exchange",
    "side_agree", "side_disagree", "side_unknown", "disagree_same_ts",
    "disagree_stale", "disagree_fallback", "disagree_inside", "disagree_quote",
    "quote_staleness_max_ms", "bvc_net",
]  # fmt: skip

INT_COLUMNS = {
    "ts_min", "trade_count", "va_bin_count", "side_agree", "side_disagree", "side_unknown",
    "disagree_same_ts", "disagree_stale", "disagree_fallback", "disagree_inside", "disagree_quote",
}  # fmt: skip
BOOL_COLUMNS = {"va_valid"}
FLOAT_COLUMNS = [c for c in COLUMNS if c not in INT_COLUMNS and c not in BOOL_COLUMNS]

MS_PER_MIN = 60_000


@dataclass(frozen=True)
class OracleParams:
    tick_size: float = 0.1
    size_step: float = 0.001
    rolling_window_minutes: int = 240
    va_fraction: float = 0.7
    base_bin_ticks: int = 1
    alpha_bin: float = 0.25
    bin_width_max_ticks: int = 200
    rebucket_interval_minutes: int = 15
    rebucket_change_pct: float = 0.25
    min_va_bins: int = 20
    max_quote_staleness_ms: int = 250
    use_tick_rule_fallback: bool = True
    order_flow_source: str = "inferred"  # or "exchange": the recorded taker side
    qimb_ema_span_seconds: float = 60.0
    spread_lookback_minutes: int = 60
    use_bvc: bool = False
    lookback_bvc: int = 60


def _round_half_up(x: float) -> int:
    """``round`` for the tick/lot conversion (inputs are on the grid, so halves do not occur)."""
    return int(math.floor(x + 0.5))


def _sample_sd(values: list[float]) -> float:
    """Sample standard deviation (n - 1); NaN with fewer than 2 values."""
    if len(values) < 2:
        return NAN
    return statistics.stdev(values)


@dataclass
class _Print:
    """Trades sharing one millisecond."""

    ms: int
    trade_idx: list[int]
    lots: int  # sum of lots
    tick_lots: int  # sum of ticks x lots: the VWAP is tick_lots / lots, kept exact
    quote_idx: int  # latest quote strictly before, -1 when none
    ambiguous: bool  # the quote rule (alone) left it unsigned
    sign: int  # final sign
    staleness_ms: int | None


def oracle_features(trades, quotes, params: OracleParams = OracleParams()) -> list[dict]:
    """One dict per UTC minute from the first event's minute to the last event's minute.

    ``trades``: ``(ts_ns, price, size, side)``, side 0 none / 1 buyer / 2 seller.
    ``quotes``: ``(ts_ns, bid, bid_size, ask, ask_size)``. Both in time order.
    """
    p = params
    tick, step = p.tick_size, p.size_step
    if p.base_bin_ticks < 1 or p.bin_width_max_ticks < p.base_bin_ticks:
        raise ValueError("need 1 <= base_bin_ticks <= bin_width_max_ticks")

    # -- inputs on the integer grids, all logic on milliseconds ---------------------------------
    t_ms, t_px, t_ticks, t_lots, t_side = [], [], [], [], []
    for ts_ns, price, size, side in trades:
        t_ms.append(int(ts_ns) // 1_000_000)
        t_px.append(float(price))
        t_ticks.append(_round_half_up(float(price) / tick))
        t_lots.append(_round_half_up(float(size) / step))
        t_side.append(int(side))
    q_ms, q_bid, q_ask, q_bsz, q_asz, q_bid_t, q_ask_t, q_bl, q_al = ([] for _ in range(9))
    for ts_ns, bid, bid_size, ask, ask_size in quotes:
        q_ms.append(int(ts_ns) // 1_000_000)
        q_bid.append(float(bid))
        q_ask.append(float(ask))
        q_bsz.append(float(bid_size))
        q_asz.append(float(ask_size))
        q_bid_t.append(_round_half_up(float(bid) / tick))
        q_ask_t.append(_round_half_up(float(ask) / tick))
        q_bl.append(_round_half_up(float(bid_size) / step))
        q_al.append(_round_half_up(float(ask_size) / step))
    if any(a > b for a, b in zip(t_ms, t_ms[1:])) or any(a > b for a, b in zip(q_ms, q_ms[1:])):
        raise ValueError("trades and quotes must each be in time order")
    if not t_ms and not q_ms:
        return []

    first_min = min(x[0] for x in (t_ms, q_ms) if x) // MS_PER_MIN
    last_min = max(x[-1] for x in (t_ms, q_ms) if x) // MS_PER_MIN
    minutes = list(range(first_min, last_min + 1))
    n_min = len(minutes)
    t_min = [ms // MS_PER_MIN for ms in t_ms]

    # trades of each minute (index ranges; the trades are in time order)
    def trade_range(m_lo: int, m_hi: int) -> tuple[int, int]:
        """Indices [a, b) of the trades of minutes m_lo..m_hi."""
        return bisect.bisect_left(t_min, m_lo), bisect.bisect_right(t_min, m_hi)

    # -- prints and their signs (one pass in time order, across minutes) -----------------------
    prints: list[_Print] = []
    i = 0
    while i < len(t_ms):
        j = i
        while j < len(t_ms) and t_ms[j] == t_ms[i]:
            j += 1
        idx = list(range(i, j))
        lots = sum(t_lots[k] for k in idx)
        if lots <= 0:
            raise ValueError(f"print at {t_ms[i]} ms has no size")
        tick_lots = sum(t_ticks[k] * t_lots[k] for k in idx)
        qi = bisect.bisect_left(q_ms, t_ms[i]) - 1  # latest quote with ts_ms strictly earlier
        prints.append(_Print(t_ms[i], idx, lots, tick_lots, qi, True, 0, None))
        i = j

    prev_price: Fraction | None = None
    prev_sign = 0
    for pr in prints:
        price = Fraction(pr.tick_lots, pr.lots)
        sign = 0
        ambiguous = True
        if pr.quote_idx >= 0:
            pr.staleness_ms = pr.ms - q_ms[pr.quote_idx]
            # price >= ask  <=>  tick_lots >= ask * lots (lots > 0): exact integer comparison
            if pr.tick_lots >= q_ask_t[pr.quote_idx] * pr.lots:
                sign, ambiguous = 1, False
            elif pr.tick_lots <= q_bid_t[pr.quote_idx] * pr.lots:
                sign, ambiguous = -1, False
        if ambiguous and p.use_tick_rule_fallback:
            if prev_price is None:
                sign = 0
            elif price > prev_price:
                sign = 1
            elif price < prev_price:
                sign = -1
            else:
                sign = prev_sign
        pr.sign, pr.ambiguous = sign, ambiguous
        prev_price, prev_sign = price, sign

    prints_by_min: dict[int, list[_Print]] = {}
    for pr in prints:
        prints_by_min.setdefault(pr.ms // MS_PER_MIN, []).append(pr)

    # -- qimb EMA: quotes and minute closes in time order -------------------------------------
    def imbalance(k: int) -> float:
        den = q_bl[k] + q_al[k]
        if den <= 0:
            raise ValueError(f"quote {k} has no size on either side")
        return (q_bl[k] - q_al[k]) / den

    tau_ms = p.qimb_ema_span_seconds * 1000.0
    ema_at_close: list[float] = []
    started = False
    ema = t_last = q_stand = 0.0
    qk = 0
    for m in minutes:
        close_ms = m * MS_PER_MIN + 59_999
        while qk < len(q_ms) and q_ms[qk] <= close_ms:
            if not started:
                ema = q_stand = imbalance(qk)
                t_last = q_ms[qk]
                started = True
            else:
                now = q_ms[qk]
                ema += (1.0 - math.exp(-(now - t_last) / tau_ms)) * (q_stand - ema)
                t_last = now
                q_stand = imbalance(qk)
            qk += 1
        if started:
            ema += (1.0 - math.exp(-(close_ms - t_last) / tau_ms)) * (q_stand - ema)
            t_last = close_ms
            ema_at_close.append(ema)
        else:
            ema_at_close.append(NAN)

    # -- per-minute pass ----------------------------------------------------------------------
    rows: list[dict] = []
    spread_hist: list[float] = []  # spread_close per minute (NaN when none)
    mid_hist: list[float] = []
    ret_hist: list[float | None] = []  # r_m, None when undefined
    last_trade_tick: list[int | None] = []  # c_m (carried), in ticks
    d_hist: list[int | None] = []  # d_m in ticks
    applied: int | None = None  # applied bin width, ticks
    B = p.base_bin_ticks
    width_max = (p.bin_width_max_ticks // B) * B

    for pos, m in enumerate(minutes):
        row: dict = {"ts_min": m * MS_PER_MIN}
        close_ms = m * MS_PER_MIN + 59_999

        # bars
        a, b = trade_range(m, m)
        if b > a:
            ticks = t_ticks[a:b]
            lots = t_lots[a:b]
            vol_lots = sum(lots)
            row["open"] = t_px[a]  # the trades' own prices, in input order
            row["high"] = max(t_px[a:b])
            row["low"] = min(t_px[a:b])
            row["close"] = t_px[b - 1]
            row["volume"] = vol_lots * step
            row["vwap"] = sum(t * l for t, l in zip(ticks, lots)) / vol_lots * tick
            row["trade_count"] = b - a
        else:
            vol_lots = 0
            for c in ("open", "high", "low", "close", "vwap"):
                row[c] = NAN
            row["volume"] = 0.0
            row["trade_count"] = 0

        # L1 close snapshot: latest quote with ts_ms <= close time, however old
        k = bisect.bisect_right(q_ms, close_ms) - 1
        if k >= 0:
            row["bid_px_close"], row["ask_px_close"] = q_bid[k], q_ask[k]
            row["bid_sz_close"], row["ask_sz_close"] = q_bsz[k], q_asz[k]
            row["spread_close"] = q_ask[k] - q_bid[k]
            row["mid_close"] = (q_bid[k] + q_ask[k]) / 2.0
            row["qimb_close"] = imbalance(k)
        else:
            for c in ("bid_px_close", "ask_px_close", "bid_sz_close", "ask_sz_close", "spread_close",
                      "mid_close", "qimb_close"):  # fmt: skip
                row[c] = NAN
        spread_hist.append(row["spread_close"])
        mid_hist.append(row["mid_close"])
        lb = spread_hist[max(0, pos - p.spread_lookback_minutes + 1) : pos + 1]
        have = [s for s in lb if not math.isnan(s)]
        row["spread_avg_60m"] = math.fsum(have) / len(have) if have else NAN
        row["qimb_ema_60s"] = ema_at_close[pos]

        # returns and sigma over minutes m-W+1..m
        if pos > 0 and not math.isnan(mid_hist[pos]) and not math.isnan(mid_hist[pos - 1]):
            ret_hist.append(math.log(mid_hist[pos] / mid_hist[pos - 1]))
        else:
            ret_hist.append(None)
        W = p.rolling_window_minutes
        rets = [r for r in ret_hist[max(0, pos - W + 1) : pos + 1] if r is not None]
        sigma = _sample_sd(rets)
        row["sigma_240"] = sigma

        # bin width (ticks) and the applied width
        if math.isnan(sigma):
            width = B
        else:
            raw = p.alpha_bin * (row["mid_close"] / tick) * sigma
            n = math.floor(raw / B + 0.5)
            width = min(max(n * B, B), width_max)
        if applied is None:
            applied = width
        elif (
            Fraction(abs(width - applied), applied) >= Fraction(repr(p.rebucket_change_pct))
            or m % p.rebucket_interval_minutes == 0
        ):
            applied = width
        row["bin_width"] = width * tick
        row["bin_width_applied"] = applied * tick

        # profile of the window's raw trades at the applied width
        a, b = trade_range(m - W + 1, m)
        profile: dict[int, int] = {}
        for k2 in range(a, b):
            key = (t_ticks[k2] // applied) * applied  # floor division: floor(price_ticks / w) * w
            profile[key] = profile.get(key, 0) + t_lots[k2]
        _value_area(profile, applied, p, row, tick, step)

        # order flow and agreement
        of_lots = 0
        amb_lots = 0
        inferred_lots = exchange_lots = 0
        stale_max: int | None = None
        counts = dict.fromkeys(
            ("side_agree", "side_disagree", "side_unknown", "disagree_same_ts", "disagree_stale",
             "disagree_fallback", "disagree_inside", "disagree_quote"), 0)  # fmt: skip
        for pr in prints_by_min.get(m, []):
            # the exchange's flow: each trade's recorded taker side, a trade without one counts 0
            sided = {1: 0, 2: 0, 0: 0}
            for k2 in pr.trade_idx:
                sided[t_side[k2]] += t_lots[k2]
            inferred_lots += pr.sign * pr.lots
            exchange_lots += sided[1] - sided[2]
            if p.order_flow_source == "exchange":
                # a trade without a side takes its print's inferred sign, and is ambiguous when the
                # quote rule could not sign the print
                of_lots += sided[1] - sided[2] + pr.sign * sided[0]
                if pr.ambiguous:
                    amb_lots += sided[0]
            else:
                of_lots += pr.sign * pr.lots
                if pr.ambiguous:
                    amb_lots += pr.lots
            if pr.staleness_ms is not None:
                stale_max = pr.staleness_ms if stale_max is None else max(stale_max, pr.staleness_ms)
            sides = {t_side[k2] for k2 in pr.trade_idx}
            mixed = 1 in sides and 2 in sides
            for k2 in pr.trade_idx:
                s = t_side[k2]
                if s == 0:
                    counts["side_unknown"] += 1
                    continue
                taker = 1 if s == 1 else -1
                if pr.sign == taker:
                    counts["side_agree"] += 1
                    continue
                counts["side_disagree"] += 1
                if mixed:
                    counts["disagree_same_ts"] += 1
                elif pr.staleness_ms is not None and pr.staleness_ms > p.max_quote_staleness_ms:
                    counts["disagree_stale"] += 1
                elif pr.ambiguous and pr.sign != 0:
                    counts["disagree_fallback"] += 1
                elif pr.ambiguous:
                    counts["disagree_inside"] += 1
                else:
                    counts["disagree_quote"] += 1
        row["of_1m"] = of_lots * step
        row["of_1m_inferred"] = inferred_lots * step
        row["of_1m_exchange"] = exchange_lots * step
        row["of_norm_1m"] = of_lots / vol_lots if vol_lots else NAN
        row["ambiguous_trade_frac_1m"] = amb_lots / vol_lots if vol_lots else NAN
        row["quote_staleness_max_ms"] = float(stale_max) if stale_max is not None else NAN
        row.update(counts)

        # BVC proxy
        upto = bisect.bisect_right(t_min, m)  # trades of minutes <= m
        c_now = t_ticks[upto - 1] if upto > 0 else None  # c_m: the last trade price up to m, carried
        c_prev = last_trade_tick[-1] if last_trade_tick else None
        last_trade_tick.append(c_now)
        d = c_now - c_prev if c_now is not None and c_prev is not None else None
        d_hist.append(d)
        row["bvc_net"] = NAN
        if p.use_bvc and d is not None:
            ds = [x * tick for x in d_hist[max(0, pos - p.lookback_bvc + 1) : pos + 1] if x is not None]
            s = _sample_sd(ds)
            if not math.isnan(s) and s != 0:
                z = d * tick / s
                row["bvc_net"] = vol_lots * step * (2.0 * statistics.NormalDist().cdf(z) - 1.0)

        rows.append({c: row[c] for c in COLUMNS})
    return rows


def _value_area(profile: dict[int, int], w: int, p: OracleParams, row: dict, tick: float, step: float) -> None:
    """POC / VAL / VAH of a profile {bin key (ticks): lots} with bins of ``w`` ticks."""
    profile = {k: v for k, v in profile.items() if v > 0}
    total = sum(profile.values())
    row["total_volume_4h"] = total * step
    row["va_bin_count"] = len(profile)
    row["va_valid"] = len(profile) >= p.min_va_bins
    if not profile:
        for c in ("poc", "vah", "val", "poc_bin", "val_bin", "vah_bin", "va_coverage"):
            row[c] = NAN
        return
    lo_key, hi_key = min(profile), max(profile)
    keys = list(range(lo_key, hi_key + 1, w))  # the contiguous range, zero-volume bins included
    vols = [profile.get(k, 0) for k in keys]
    top = max(vols)
    # POC ties: nearest the middle of lowest..highest (|2 key - (lo + hi)|), then the lower price
    poc = min((i for i, v in enumerate(vols) if v == top), key=lambda i: (abs(2 * keys[i] - (lo_key + hi_key)), keys[i]))
    lo = hi = poc
    va = vols[poc]
    # until va >= va_fraction x total. va_fraction is read as the decimal it was configured as (0.7 is
    # 7/10, not the binary double just below it), so the comparison is exact: 63 lots of 70 is 90 %.
    frac = Fraction(repr(p.va_fraction))
    while va * frac.denominator < frac.numerator * total:
        up = vols[hi + 1] if hi + 1 < len(vols) else None
        dn = vols[lo - 1] if lo > 0 else None
        if up is None and dn is None:
            break
        if dn is None or (up is not None and up >= dn):  # larger neighbour first, the upper on a tie
            hi += 1
            va += up
        else:
            lo -= 1
            va += dn
    # The bins by their keys (lower edges); the levels are the value area as a price range: VAL the
    # lowest bin's lower edge, VAH the highest bin's upper edge, POC the middle of its bin.
    row["poc_bin"] = keys[poc] * tick
    row["val_bin"] = keys[lo] * tick
    row["vah_bin"] = keys[hi] * tick
    row["val"] = keys[lo] * tick
    row["vah"] = (keys[hi] + w) * tick
    row["poc"] = (keys[poc] + w / 2) * tick
    row["va_coverage"] = va / total


def rows_to_columns(rows: list[dict]) -> dict[str, list]:
    return {c: [r[c] for r in rows] for c in COLUMNS}
