"""The Rust feature engine against the independent oracle: every column of every minute.

``rust_indicators.compute_features`` and ``tests/features_oracle.oracle_features`` are fed the
same events; the comparison asserts the same NaN pattern, equal integers and booleans, and floats
within a relative 1e-9 (absolute 1e-12 near zero). A failure prints the first differing minute with
both rows side by side.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import shared_file
from tests.features_oracle import BOOL_COLUMNS, COLUMNS, INT_COLUMNS, OracleParams, oracle_features

REL_TOL = 1e-9
ABS_TOL = 1e-12


# -- running the two implementations ---------------------------------------------------------------


def _arrays(trades, quotes):
    t = np.array(trades, dtype=object).reshape(-1, 4)
    q = np.array(quotes, dtype=object).reshape(-1, 5)
    return (
        t[:, 0].astype(np.int64), t[:, 1].astype(np.float64), t[:, 2].astype(np.float64),
        t[:, 3].astype(np.uint8),
        q[:, 0].astype(np.int64), q[:, 1].astype(np.float64), q[:, 2].astype(np.float64),
        q[:, 3].astype(np.float64), q[:, 4].astype(np.float64),
    )  # fmt: skip


def run_engine(trades, quotes, params: OracleParams) -> dict[str, np.ndarray]:
    import rust_indicators

    cfg = rust_indicators.EngineConfig(**asdict(params))
    return rust_indicators.compute_features(cfg, *_arrays(trades, quotes))


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    return str(int(v)) if isinstance(v, (int, np.integer)) else repr(v)


def _events_of_minute(trades, quotes, ts_min: int, limit: int = 12) -> str:
    lo, hi = ts_min * 1_000_000, (ts_min + 60_000) * 1_000_000
    tr = [t for t in trades if lo <= t[0] < hi]
    qu = [q for q in quotes if lo <= q[0] < hi]
    prev_q = [q for q in quotes if q[0] < lo][-1:]
    out = [f"  {len(tr)} trades, {len(qu)} quotes in the minute; last quote before it: {prev_q}"]
    out += [f"  trade {t}" for t in tr[:limit]] + [f"  quote {q}" for q in qu[:limit]]
    if len(tr) > limit or len(qu) > limit:
        out.append("  ...")
    return "\n".join(out)


def oracle_differences(engine: dict, rows: list[dict], label: str, params: OracleParams, trades=None, quotes=None) -> str:
    """"" when the engine's columns equal the oracle's; else a report of the differing minutes."""
    import rust_indicators

    assert list(rust_indicators.FEATURE_COLUMNS) == COLUMNS
    assert sorted(engine) == sorted(COLUMNS), f"{label}: engine columns {sorted(engine)}"
    n = len(rows)
    lengths = {c: len(engine[c]) for c in COLUMNS}
    assert set(lengths.values()) == {n}, f"{label}: oracle has {n} minutes, engine column lengths {lengths}"
    bad = np.zeros((n, len(COLUMNS)), dtype=bool)
    for j, c in enumerate(COLUMNS):
        e = np.asarray(engine[c])
        o = [r[c] for r in rows]
        if c in INT_COLUMNS:
            assert e.dtype.kind in "iu", f"{label}: {c} has dtype {e.dtype}, expected an integer type"
            bad[:, j] = e.astype(np.int64) != np.array(o, dtype=np.int64)
        elif c in BOOL_COLUMNS:
            assert e.dtype == np.bool_, f"{label}: {c} has dtype {e.dtype}, expected bool"
            bad[:, j] = e != np.array(o, dtype=bool)
        else:
            assert e.dtype == np.float64, f"{label}: {c} has dtype {e.dtype}, expected float64"
            o = np.array(o, dtype=np.float64)
            nan_e, nan_o = np.isnan(e), np.isnan(o)
            with np.errstate(invalid="ignore"):
                tol = np.maximum(REL_TOL * np.maximum(np.abs(e), np.abs(o)), ABS_TOL)
                close = np.abs(e - o) <= tol
            bad[:, j] = (nan_e != nan_o) | (~nan_e & ~nan_o & ~close)
    if not bad.any():
        return ""
    i = int(np.argmax(bad.any(axis=1)))
    per_col = {c: int(bad[:, j].sum()) for j, c in enumerate(COLUMNS) if bad[:, j].any()}
    lines = [
        f"{label}: engine and oracle differ in {int(bad.any(axis=1).sum())} of {n} minutes; "
        f"differing cells per column: {per_col}",
        f"params: {params}",
        f"first differing minute: row {i}, ts_min {rows[i]['ts_min']}",
        f"{'column':<26}{'oracle':>26}{'engine':>26}",
    ]
    for j, c in enumerate(COLUMNS):
        mark = "   <-- differs" if bad[i, j] else ""
        lines.append(f"{c:<26}{_fmt(rows[i][c]):>26}{_fmt(engine[c][i]):>26}{mark}")
    if trades is not None:
        lines.append(_events_of_minute(trades, quotes, rows[i]["ts_min"]))
    return "\n".join(lines)


def check(trades, quotes, params: OracleParams, label: str):
    """Oracle rows, engine columns and the report of their differences ("" when equal)."""
    rows = oracle_features(trades, quotes, params)
    engine = run_engine(trades, quotes, params)
    return rows, engine, oracle_differences(engine, rows, label, params, trades, quotes)


# -- the hand-checked cases of test_features_oracle.py, through the engine --------------------------


def _hand_cases():
    from tests.test_features_oracle import ns, rebucket_market

    P = OracleParams
    cases = []
    vols = {49800: 100, 49900: 250, 50000: 400, 50100: 300, 50200: 150, 50300: 50}
    cases.append(("specv2_20_3", [(ns(0, 1000 * i), float(p), float(v), 0) for i, (p, v) in enumerate(vols.items())],
                  [], P(tick_size=100.0, size_step=1.0, min_va_bins=6)))
    agg = [(ns(0, 100), 49800.0, 0.060, 1), (ns(0, 200), 49899.9, 0.040, 2), (ns(0, 300), 49950.5, 0.250, 1),
           (ns(0, 400), 50000.0, 0.150, 2), (ns(0, 500), 50099.9, 0.250, 1), (ns(0, 600), 50100.0, 0.300, 1),
           (ns(0, 700), 50250.0, 0.150, 2), (ns(0, 800), 50399.9, 0.050, 1)]
    cases.append(("specv2_20_3_aggregated", agg, [], P(base_bin_ticks=1000, bin_width_max_ticks=1000, min_va_bins=6)))
    of_q = [(ns(0, 500), 50000.0, 1.0, 50001.0, 1.0)]
    of_t = [(ns(0, 1000), 50001.0, 0.10, 1), (ns(0, 2000), 50000.0, 0.20, 2), (ns(0, 3000), 50000.5, 0.15, 1),
            (ns(0, 4000), 50001.0, 0.25, 1)]
    for fb in (True, False):
        for stale in (250, 10_000):
            cases.append((f"specv2_20_4_fallback{fb}_stale{stale}", of_t, of_q,
                          P(tick_size=0.5, use_tick_rule_fallback=fb, max_quote_staleness_ms=stale)))
    for name, v, frac in [("poc_low_edge", {100: 50, 101: 20, 102: 20, 103: 10}, 0.7),
                          ("poc_high_edge", {100: 10, 101: 20, 102: 20, 103: 50}, 0.7),
                          ("zero_bins", {100: 30, 102: 40, 104: 30}, 0.7),
                          ("walk_empty", {100: 40, 103: 60}, 0.7),
                          ("poc_tie_lower", {100: 5, 101: 30, 102: 5, 103: 5, 104: 30, 105: 5}, 0.7),
                          ("poc_tie_middle", {100: 30, 101: 5, 102: 5, 103: 30, 104: 5}, 0.7),
                          ("va_fraction_decimal", {100: 55, 101: 45}, 0.55)]:
        tr = [(ns(0, 1000 * i), float(p), float(x), 0) for i, (p, x) in enumerate(sorted(v.items()))]
        cases.append((name, tr, [], P(tick_size=1.0, size_step=1.0, min_va_bins=1, va_fraction=frac)))
    q0 = [(ns(0, 0), 100.0, 1.0, 100.2, 1.0)]
    cases.append(("same_ts_prints", [(ns(0, 1000), 100.2, 0.002, 1), (ns(0, 1000, 500), 100.2, 0.003, 1),
                                     (ns(0, 2000), 100.0, 0.004, 2), (ns(0, 2000, 999_999), 100.0, 0.001, 1),
                                     (ns(0, 3000), 100.1, 0.001, 0), (ns(0, 3000), 100.3, 0.001, 0)], q0, P()))
    cases.append(("same_ms_quote", [(ns(0, 500), 100.1, 0.003, 1)],
                  [(ns(0, 100), 100.0, 1.0, 100.1, 1.0), (ns(0, 500), 100.1, 2.0, 100.2, 1.0)], P()))
    fb_t = [(ns(0, 100), 100.2, 0.001, 1), (ns(0, 200), 100.1, 0.001, 2), (ns(0, 300), 100.1, 0.001, 2),
            (ns(0, 400), 100.1, 0.001, 1)]
    for fb in (True, False):
        cases.append((f"tick_rule_fallback{fb}", fb_t, q0, P(max_quote_staleness_ms=10_000, use_tick_rule_fallback=fb)))
    sq = [(ns(0, 1000), 100.0, 1.0, 100.1, 1.0), (ns(3, 1000), 100.1, 1.0, 100.2, 1.0)]
    for kw in ({}, {"base_bin_ticks": 3}, {"base_bin_ticks": 3, "alpha_bin": 1e6}, {"alpha_bin": 20.0},
               {"alpha_bin": 20.0, "base_bin_ticks": 5}):
        tag = "_".join(f"{k}{v:g}" for k, v in kw.items()) or "defaults"
        cases.append((f"sigma_clamps_{tag}", [], sq, P(rolling_window_minutes=10, **kw)))
    rt, rq = rebucket_market()
    for interval in (15, 1000, 1):
        cases.append((f"rebucket_interval{interval}", rt, rq,
                      P(rolling_window_minutes=2, alpha_bin=1.0, min_va_bins=1, rebucket_interval_minutes=interval)))
    qt = [(ns(0, 0), 100.0, 0.001, 1), (ns(2, 0), 100.0, 0.001, 1)]
    qq = [(ns(1, 0), 100.0, 3.0, 100.1, 1.0), (ns(1, 20_000), 100.0, 1.0, 100.1, 3.0),
          (ns(1, 40_000), 100.0, 2.0, 100.1, 2.0)]
    for tau in (60.0, 30.0):
        cases.append((f"qimb_ema_tau{tau}", qt, qq, P(qimb_ema_span_seconds=tau)))
    cases.append(("spread_avg", [(ns(0, 5), 100.0, 0.001, 1)],
                  [(ns(1, 10_000), 100.0, 1.0, 100.2, 1.0), (ns(2, 10_000), 100.0, 1.0, 100.1, 1.0),
                   (ns(4, 10_000), 100.0, 1.0, 100.3, 1.0)], P(spread_lookback_minutes=3)))
    bt = [(ns(0, 100), 100.0, 0.001, 1), (ns(1, 100), 100.2, 0.001, 1), (ns(2, 100), 100.3, 0.002, 1),
          (ns(2, 200), 100.1, 0.003, 2), (ns(4, 100), 100.4, 0.004, 1)]
    cases.append(("bvc", bt, [], P(use_bvc=True, lookback_bvc=3)))
    cases.append(("bvc_flat", [(ns(i, 100), 100.0, 0.001, 1) for i in range(4)], [], P(use_bvc=True, lookback_bvc=3)))
    cases.append(("empty_minute", [(ns(0, 10), 100.0, 0.001, 1), (ns(2, 10), 100.1, 0.002, 2)], [],
                  P(rolling_window_minutes=1, min_va_bins=1)))
    cases.append(("ms_floor", [(ns(0, 59_999, 999_999), 100.0, 0.001, 1)], [(ns(1, 0), 99.9, 1.0, 100.0, 1.0)], P()))
    cases.append(("first_print_no_quote_fallback_off", [(ns(0, 100), 100.1, 0.003, 1)],
                  [(ns(0, 100, 999_999), 100.0, 1.0, 100.1, 1.0)], P(use_tick_rule_fallback=False)))
    return cases


HAND_CASES = _hand_cases()


@pytest.mark.parametrize(("name", "trades", "quotes", "params"), HAND_CASES, ids=[c[0] for c in HAND_CASES])
def test_hand_cases_through_the_engine(name, trades, quotes, params):
    _, _, report = check(trades, quotes, params, f"hand case {name}")
    assert not report, report


def test_disagreement_cause_when_the_fallback_gives_sign_0():
    # The fallback is on, the print is ambiguous (no quote before it) and the fallback's rule gives
    # 0 ("0 for the very first print"): the buyer's trade disagrees and, the print being unsigned,
    # the cause is disagree_inside (docs/features.md: fallback = a +1/-1 the tick rule got wrong).
    from tests.test_features_oracle import ns

    trades = [(ns(0, 100), 100.1, 0.003, 1)]
    quotes = [(ns(0, 100, 999_999), 100.0, 1.0, 100.1, 1.0)]
    rows, _, report = check(trades, quotes, OracleParams(use_tick_rule_fallback=True), "fallback gives sign 0")
    assert not report, report
    assert (rows[0]["disagree_fallback"], rows[0]["disagree_inside"]) == (0, 1)


# -- random streams ---------------------------------------------------------------------------------

BASE_MINUTES = [28_800_000, 28_800_007, 28_800_014, 28_800_059]  # minute indices; % 15 == 0, 7, 14, 14


@st.composite
def small_markets(draw):
    """A few minutes, few prices, many equal timestamps, gaps, quotes sometimes missing early."""
    base = draw(st.sampled_from(BASE_MINUTES))
    span = draw(st.integers(0, 12))
    tick = draw(st.sampled_from([0.1, 0.1, 0.5]))
    ms = st.one_of(st.sampled_from([0, 1, 250, 251, 500, 30_000, 59_999]), st.integers(0, 59_999))
    sub = st.sampled_from([0, 0, 999_999])
    minute = st.integers(0, span)
    raw_t = draw(
        st.lists(
            st.tuples(minute, ms, sub, st.integers(0, 8), st.integers(1, 30), st.sampled_from([0, 1, 2, 2, 1])),
            max_size=40,
        )
    )
    raw_q = draw(
        st.lists(
            st.tuples(minute, ms, sub, st.integers(0, 7), st.integers(1, 3), st.integers(1, 20), st.integers(1, 20)),
            max_size=40,
        )
    )
    q_start = draw(st.integers(0, span)) if draw(st.booleans()) else 0
    px0 = 600_000 if tick == 0.1 else 120_000

    def price(ticks: int) -> float:
        return ticks / 10 if tick == 0.1 else ticks * tick

    # time order; equal timestamps keep their (random) generated order: sort by time only, stably
    trades = sorted(
        [(((base + m) * 60_000 + t) * 1_000_000 + s, price(px0 + k), lots / 1000, side)
         for m, t, s, k, lots, side in raw_t],
        key=lambda x: x[0],
    )  # fmt: skip
    quotes = sorted(
        [(((base + m) * 60_000 + t) * 1_000_000 + s, price(px0 + k), bl / 1000, price(px0 + k + sp), al / 1000)
         for m, t, s, k, sp, bl, al in raw_q if m >= q_start],
        key=lambda x: x[0],
    )  # fmt: skip
    params = OracleParams(
        tick_size=tick,
        rolling_window_minutes=draw(st.integers(1, 10)),
        va_fraction=draw(st.sampled_from([0.7, 0.7, 0.5, 0.55, 0.9, 1.0])),
        base_bin_ticks=draw(st.sampled_from([1, 1, 2, 3])),
        alpha_bin=draw(st.sampled_from([0.25, 2.0, 10.0, 100.0, 1000.0])),
        bin_width_max_ticks=draw(st.sampled_from([200, 5, 8])),
        rebucket_interval_minutes=draw(st.integers(1, 15)),
        rebucket_change_pct=draw(st.sampled_from([0.25, 0.1, 0.2, 0.5, 0.3])),
        min_va_bins=draw(st.integers(1, 5)),
        max_quote_staleness_ms=draw(st.sampled_from([0, 250, 1000, 100_000])),
        use_tick_rule_fallback=draw(st.booleans()),
        qimb_ema_span_seconds=draw(st.sampled_from([60.0, 1.0, 15.5])),
        spread_lookback_minutes=draw(st.integers(1, 6)),
        use_bvc=draw(st.booleans()),
        lookback_bvc=draw(st.integers(2, 6)),
    )
    return trades, quotes, params


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_markets())
def test_random_small_markets(market):
    trades, quotes, params = market
    _, _, report = check(trades, quotes, params, "hypothesis market")
    assert not report, report


def numpy_market(seed: int, minutes: int = 40):
    """A random walk with bursts of same-ms trades, some inside the spread, gaps of several minutes."""
    rng = np.random.default_rng(seed)
    base = BASE_MINUTES[seed % len(BASE_MINUTES)]
    active = np.sort(rng.choice(minutes, size=int(minutes * 0.7), replace=False))
    trades, quotes = [], []
    bid = 600_000
    for m in active:
        n_q = int(rng.integers(0, 30))
        q_ms = np.sort(rng.integers(0, 60_000, n_q))
        for t in q_ms:
            bid += int(rng.choice([-2, -1, 0, 0, 1, 2]))
            spread = int(rng.choice([1, 1, 1, 2, 3, 5]))
            quotes.append(
                (((base + int(m)) * 60_000 + int(t)) * 1_000_000, bid / 10, int(rng.integers(1, 5000)) / 1000,
                 (bid + spread) / 10, int(rng.integers(1, 5000)) / 1000)
            )  # fmt: skip
        n_p = int(rng.integers(0, 60))
        p_ms = np.sort(rng.integers(0, 60_000, n_p))
        for t in p_ms:
            for _ in range(int(rng.geometric(0.5))):  # 1, 2, 3, ... fills at one ms
                px = bid + int(rng.integers(-2, 6))
                size = int(rng.choice([1, 2, 3, 10, 50, 500])) / 1000
                side = int(rng.choice([0, 1, 1, 2, 2]))
                trades.append((((base + int(m)) * 60_000 + int(t)) * 1_000_000 + int(rng.integers(0, 1_000_000)),
                               px / 10, size, side))  # fmt: skip
    trades.sort(key=lambda x: x[0])
    quotes.sort(key=lambda x: x[0])
    if seed % 2:  # no quotes during the first minutes
        first = base + int(active[min(3, len(active) - 1)])
        quotes = [q for q in quotes if q[0] >= first * 60_000 * 1_000_000]
    return trades, quotes


NUMPY_CASES = [
    (1, OracleParams(rolling_window_minutes=5, min_va_bins=3, spread_lookback_minutes=4)),
    (2, OracleParams(rolling_window_minutes=10, min_va_bins=5, alpha_bin=20.0, rebucket_interval_minutes=7,
                     use_tick_rule_fallback=False, use_bvc=True, lookback_bvc=5)),
    (3, OracleParams(rolling_window_minutes=3, min_va_bins=2, alpha_bin=200.0, bin_width_max_ticks=12,
                     base_bin_ticks=2, rebucket_change_pct=0.1, max_quote_staleness_ms=50,
                     qimb_ema_span_seconds=5.0, use_bvc=True, lookback_bvc=3)),
    (4, OracleParams(rolling_window_minutes=8, min_va_bins=4, va_fraction=0.55, alpha_bin=5.0,
                     spread_lookback_minutes=2, use_bvc=True, lookback_bvc=10)),
    (5, OracleParams(rolling_window_minutes=6, min_va_bins=3, alpha_bin=30.0, order_flow_source="exchange")),
    (6, OracleParams(rolling_window_minutes=4, min_va_bins=2, base_bin_ticks=3, use_tick_rule_fallback=False,
                     order_flow_source="exchange")),
]  # fmt: skip


@pytest.mark.parametrize(("seed", "params"), NUMPY_CASES, ids=[f"seed{s}" for s, _ in NUMPY_CASES])
def test_random_numpy_markets(seed, params):
    trades, quotes = numpy_market(seed)
    assert len(trades) > 500 and len(quotes) > 200
    _, _, report = check(trades, quotes, params, f"numpy market seed {seed}")
    assert not report, report


# -- the synthetic market ---------------------------------------------------------------------------

SYNTH_START_NS = 1_717_200_000_000_000_000  # 2024-06-01 00:00 UTC


@functools.lru_cache(maxsize=1)
def synthetic_market(hours: float = 3.0, seed: int = 11):
    from auction_trader.data import synth

    m = synth.generate(hours, seed, SYNTH_START_NS)
    tr, q = m.trades, m.quotes
    trades = list(
        zip(tr.ts_event.tolist(), (tr.price / 10).tolist(), (tr.size / 1000).tolist(), tr.aggressor.tolist())
    )
    quotes = list(
        zip(q.ts_event.tolist(), (q.bid / 10).tolist(), (q.bid_size / 1000).tolist(), (q.ask / 10).tolist(),
            (q.ask_size / 1000).tolist())
    )  # fmt: skip
    return trades, quotes


SYNTH_PARAMS = OracleParams(rolling_window_minutes=60, spread_lookback_minutes=30)


def test_synthetic_market_3h():
    trades, quotes = synthetic_market()
    rows, engine, report = check(trades, quotes, SYNTH_PARAMS, "synthetic 3 h, seed 11")
    assert not report, report
    assert len(rows) == 180
    # the comparison means something: valid value areas, rebucketing, all disagreement causes seen
    assert sum(r["va_valid"] for r in rows) > 100
    assert len({r["bin_width_applied"] for r in rows}) > 3
    assert sum(r["disagree_quote"] for r in rows) > 0 and sum(r["disagree_stale"] for r in rows) > 0


def assert_levels_are_the_value_area_edges(rows: list[dict], label: str) -> int:
    """DESIGN.md: VAL = lower edge of the lowest VA bin, VAH = upper edge of the highest, POC =
    centre of its bin, so VAL <= POC <= VAH and VAH - VAL = (number of VA bins) x applied width on
    every minute with a value area. The number of VA bins comes from the bin keys. Returns how
    many valid minutes were checked."""
    checked = 0
    for r in rows:
        if math.isnan(r["poc"]):
            assert math.isnan(r["val"]) and math.isnan(r["vah"]) and not r["va_valid"], (label, r["ts_min"])
            continue
        w = round(r["bin_width_applied"] * 10)
        val, vah, poc = (round(r[c] * 10, 6) for c in ("val", "vah", "poc"))
        val_bin, vah_bin, poc_bin = (round(r[c] * 10) for c in ("val_bin", "vah_bin", "poc_bin"))
        assert val <= poc <= vah, (label, r["ts_min"], val, poc, vah)
        n_bins = (vah_bin - val_bin) // w + 1
        assert vah - val == n_bins * w and (vah_bin - val_bin) % w == 0, (label, r["ts_min"])
        assert (val, vah, poc) == (val_bin, vah_bin + w, poc_bin + w / 2), (label, r["ts_min"])
        checked += r["va_valid"]
    return checked


def test_levels_on_every_valid_minute():
    trades, quotes = synthetic_market()
    rows, engine, report = check(trades, quotes, SYNTH_PARAMS, "synthetic 3 h, seed 11")
    assert not report, report
    engine_rows = [dict(zip(engine, values)) for values in zip(*(engine[c].tolist() for c in engine))]
    assert assert_levels_are_the_value_area_edges(engine_rows, "engine") > 100
    assert assert_levels_are_the_value_area_edges(rows, "oracle") > 100
    # the width varies over the run, so the identity is not one fixed multiple
    assert len({r["bin_width_applied"] for r in engine_rows if r["va_valid"]}) > 3


def _where_inference_is_exact(trades, quotes):
    """The synthetic trades the quote rule signs as the exchange did: a buyer at or above the ask
    of the latest earlier quote, a seller at or below its bid, in a millisecond with one side."""
    q_ms = [q[0] // 1_000_000 for q in quotes]
    sides_at: dict[int, set] = {}
    for t in trades:
        sides_at.setdefault(t[0] // 1_000_000, set()).add(t[3])
    kept = []
    for t in trades:
        ms = t[0] // 1_000_000
        k = bisect.bisect_left(q_ms, ms) - 1
        if k < 0 or len(sides_at[ms]) > 1:
            continue
        _, bid, _, ask, _ = quotes[k]
        if (t[3] == 1 and t[1] >= ask) or (t[3] == 2 and t[1] <= bid):
            kept.append(t)
    return kept


def test_exchange_and_inferred_flow_agree_where_inference_is_exact_and_differ_where_not():
    trades, quotes = synthetic_market()
    exchange = replace(SYNTH_PARAMS, order_flow_source="exchange")
    # 1. the synthetic market as generated: the exchange's flow, cell for cell the oracle's
    rows, _, report = check(trades, quotes, exchange, "synthetic 3 h, seed 11, exchange taker side")
    assert not report, report
    inferred = run_engine(trades, quotes, SYNTH_PARAMS)
    busy = [i for i, r in enumerate(rows) if r["trade_count"]]
    for i in busy:
        r = rows[i]
        assert r["ambiguous_trade_frac_1m"] == 0.0, "every synthetic trade has a taker side"
        assert r["of_1m"] == r["of_1m_exchange"] and inferred["of_1m"][i] == pytest.approx(r["of_1m_inferred"], abs=1e-12)
    # latency and same-millisecond prints make the inference wrong now and then: the sources differ
    differ = [i for i in busy if abs(rows[i]["of_1m_exchange"] - rows[i]["of_1m_inferred"]) > 1e-9]
    assert len(differ) > len(busy) // 2 and all(rows[i]["side_disagree"] > 0 for i in differ)
    # 2. only the trades inference signs exactly: the two sources give the same flow every minute
    exact = _where_inference_is_exact(trades, quotes)
    assert len(exact) > len(trades) // 2
    rows, _, report = check(exact, quotes, exchange, "synthetic 3 h, exactly inferable trades, exchange")
    assert not report, report
    inferred = run_engine(exact, quotes, SYNTH_PARAMS)
    busy = [i for i, r in enumerate(rows) if r["trade_count"]]
    assert len(busy) > 150 and all(rows[i]["side_disagree"] == 0 for i in busy)
    np.testing.assert_allclose(inferred["of_1m"][busy], [rows[i]["of_1m"] for i in busy], rtol=0, atol=1e-9)
    np.testing.assert_allclose(inferred["of_norm_1m"][busy], [rows[i]["of_norm_1m"] for i in busy], rtol=0, atol=1e-12)


def test_synthetic_market_with_bvc_and_no_fallback():
    trades, quotes = synthetic_market()
    params = replace(SYNTH_PARAMS, use_bvc=True, use_tick_rule_fallback=False, rolling_window_minutes=30)
    _, _, report = check(trades, quotes, params, "synthetic 3 h, seed 11, BVC on, no fallback")
    assert not report, report


# -- the real Binance feeds -------------------------------------------------------------------------


def parse_binance_feed(path: Path):
    """Trades ``(T ms x 1e6, p, q, side)`` (m = buyer is maker -> seller aggressor = 2) and bookTicker
    quotes ``(T ms x 1e6, b, B, a, A)``, each in exchange-time order (stable: file order at equal T)."""
    trades, quotes = [], []
    with gzip.open(path, "rt") as f:
        for line in f:
            if "@trade" in line[:80]:
                d = json.loads(line.split(" ", 1)[1])["data"]
                trades.append((int(d["T"]) * 1_000_000, float(d["p"]), float(d["q"]), 2 if d["m"] else 1))
            elif "@bookTicker" in line[:80]:
                d = json.loads(line.split(" ", 1)[1])["data"]
                quotes.append((int(d["T"]) * 1_000_000, float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])))
    trades.sort(key=lambda x: x[0])
    quotes.sort(key=lambda x: x[0])
    return trades, quotes


@functools.lru_cache(maxsize=1)
def _real_feeds(paths: tuple[str, ...]):
    trades, quotes = [], []
    for p in paths:
        t, q = parse_binance_feed(Path(p))
        trades += t
        quotes += q
    trades.sort(key=lambda x: x[0])
    quotes.sort(key=lambda x: x[0])
    return trades, quotes


REAL_PARAMS = OracleParams(rolling_window_minutes=3, min_va_bins=5, spread_lookback_minutes=3)


def test_real_binance_feeds(binance_feeds):
    assert len(binance_feeds) == 3
    trades, quotes = _real_feeds(tuple(str(p) for p in binance_feeds))
    assert len(trades) == 974 + 9_727 + 21_313 and len(quotes) == 7_113 + 45_147 + 66_089
    rows, engine, report = check(trades, quotes, REAL_PARAMS, "real Binance feeds")
    assert not report, report
    assert assert_levels_are_the_value_area_edges(rows, "real feeds") > 5
    # every minute from 2024-07-18 23:57 to 2024-08-09 00:00, the 20-day gap included
    first = min(trades[0][0], quotes[0][0]) // 60_000_000_000
    last = max(trades[-1][0], quotes[-1][0]) // 60_000_000_000
    assert [r["ts_min"] for r in rows] == [m * 60_000 for m in range(first, last + 1)]
    assert len(rows) > 20 * 24 * 60
    gap = [r for r in rows if r["ts_min"] == 1_722_000_000_000 // 60_000 * 60_000]  # 2024-07-26, in the gap
    assert gap and gap[0]["trade_count"] == 0 and not math.isnan(gap[0]["mid_close"])
    busy = [r for r in rows if r["trade_count"]]
    assert sum(r["va_valid"] for r in busy) > 5
    assert sum(r["side_agree"] for r in busy) > 0.8 * sum(r["side_agree"] + r["side_disagree"] for r in busy)


def test_real_feed_with_fallback_off_and_bvc(binance_feeds):
    trades, quotes = _real_feeds(tuple(str(p) for p in binance_feeds))
    params = replace(REAL_PARAMS, use_tick_rule_fallback=False, use_bvc=True, lookback_bvc=4, rolling_window_minutes=5)
    _, _, report = check(trades, quotes, params, "real Binance feeds, no fallback, BVC")
    assert not report, report


def test_real_feed_with_the_exchange_taker_side(binance_feeds):
    """Binance's `m` flag: the exchange's flow, equal to the oracle's reading cell for cell; it
    differs from the inference on the minutes where some trade's inferred side was wrong."""
    trades, quotes = _real_feeds(tuple(str(p) for p in binance_feeds))
    params = replace(REAL_PARAMS, order_flow_source="exchange")
    rows, _, report = check(trades, quotes, params, "real Binance feeds, exchange taker side")
    assert not report, report
    busy = [r for r in rows if r["trade_count"]]
    assert all(r["ambiguous_trade_frac_1m"] == 0.0 for r in busy)
    assert any(abs(r["of_1m_exchange"] - r["of_1m_inferred"]) > 1e-9 for r in busy if r["side_disagree"])


# -- determinism ------------------------------------------------------------------------------------


def test_engine_is_deterministic():
    trades, quotes = synthetic_market()
    a = run_engine(trades, quotes, SYNTH_PARAMS)
    b = run_engine(trades, quotes, SYNTH_PARAMS)
    assert sorted(a) == sorted(b)
    for c in COLUMNS:
        x, y = np.asarray(a[c]), np.asarray(b[c])
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), c
    t2, q2 = numpy_market(3)
    params = NUMPY_CASES[2][1]
    a, b = run_engine(t2, q2, params), run_engine(t2, q2, params)
    assert all(np.asarray(a[c]).tobytes() == np.asarray(b[c]).tobytes() for c in COLUMNS)


def test_column_list_is_the_contract():
    import rust_indicators

    assert list(rust_indicators.FEATURE_COLUMNS) == COLUMNS
