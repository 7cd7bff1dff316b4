"""The oracle (tests/features_oracle.py) proves itself on numbers derived by hand.

Every expected value below was worked out on paper from docs/features.md (the contract) and the
worked examples of specv2 §20.3/§20.4; the derivation is in the comment next to it. Nothing here
is computed by the oracle's own helpers.

Time: all cases start at minute index ``M0`` (a UTC minute since the epoch) with M0 % 15 == 10,
so ``m % rebucket_interval_minutes == 0`` with the default interval of 15 only at M0 + 5.
"""

from __future__ import annotations

import math

import pytest

from tests.features_oracle import COLUMNS, OracleParams, oracle_features

M0 = 28_800_010
assert M0 % 15 == 10

nan = float("nan")


def ns(minute: int, ms: int = 0, sub_ms_ns: int = 0) -> int:
    """The timestamp (ns) of ``ms`` milliseconds into minute ``M0 + minute``."""
    return ((M0 + minute) * 60_000 + ms) * 1_000_000 + sub_ms_ns


def run(trades, quotes, **params) -> list[dict]:
    rows = oracle_features(trades, quotes, OracleParams(**params))
    for row in rows:
        assert list(row) == COLUMNS
    return rows


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def keys(row: dict) -> tuple:
    """(POC, VAL, VAH) bin keys: the bins' lower edges, as specv2 §20.3 states its example."""
    return row["poc_bin"], row["val_bin"], row["vah_bin"]


def levels(row: dict) -> tuple:
    """(POC, VAL, VAH) levels: the POC bin's centre, the value area's lower and upper edges."""
    return row["poc"], row["val"], row["vah"]


def profile_of(volumes: dict[float, float], **params) -> dict:
    """One minute whose trades put ``volume`` at each ``price`` (tick 1, lot 1: price = bin key)."""
    trades = [(ns(0, 1000 * i), price, vol, 0) for i, (price, vol) in enumerate(sorted(volumes.items()))]
    params = {"tick_size": 1.0, "size_step": 1.0, "min_va_bins": 1, **params}
    (row,) = run(trades, [], **params)
    return row


# -- specv2 §20.3: value area ----------------------------------------------------------------------


def test_value_area_worked_example_bins_as_ticks():
    # tick_size 100 and lot 1: each price is its own bin (the first minute's applied width is the base
    # bin, 1 tick = 100, as sigma is undefined). Bins 49800..50300 = 100, 250, 400, 300, 150, 50.
    # total 1250, target 0.70 x 1250 = 875; POC 50000 (400); neighbours 300 (up) > 250 -> 700;
    # then 250 (down) > 150 -> 950 >= 875. VAL 49900, VAH 50100, coverage 950 / 1250 = 0.76.
    vols = {49800: 100, 49900: 250, 50000: 400, 50100: 300, 50200: 150, 50300: 50}
    trades = [(ns(0, 1000 * i), float(p), float(v), 0) for i, (p, v) in enumerate(vols.items())]
    (row,) = run(trades, [], tick_size=100.0, size_step=1.0, min_va_bins=6)
    assert keys(row) == (50000.0, 49900.0, 50100.0)
    # as a price range the value area runs from the 49900 bin's lower edge to the 50100 bin's
    # upper edge (50200); the POC level is the middle of its bin
    assert levels(row) == (50050.0, 49900.0, 50200.0)
    assert row["va_coverage"] == approx(0.76)
    assert row["total_volume_4h"] == 1250.0
    assert row["va_bin_count"] == 6 and row["va_valid"] is True
    assert row["bin_width"] == 100.0 and row["bin_width_applied"] == 100.0
    # 6 bins with volume < min_va_bins = 7 -> not valid (levels still reported)
    (row7,) = run(trades, [], tick_size=100.0, size_step=1.0, min_va_bins=7)
    assert row7["va_valid"] is False and row7["va_bin_count"] == 6 and row7["poc_bin"] == 50000.0


def test_value_area_worked_example_aggregated_from_ticks():
    # The same histogram reached by aggregation: tick 0.1, lot 0.001 BTC, base_bin_ticks = 1000
    # (a 100 USD bin, and bin_width_max_ticks raised to it; the first minute's applied width is
    # that base bin). key = floor(ticks / 1000)
    # x 1000, so 49899.9 (498999 ticks) lands in the 49800 bin and 50099.9 in the 50000 bin.
    # Lots per bin: 49800: 60 + 40 = 100; 49900: 250; 50000: 150 + 250 = 400; 50100: 300;
    # 50200: 150; 50300: 50 -> as in §20.3: POC 50000, VAL 49900, VAH 50100, coverage 0.76,
    # total 1250 lots = 1.25 BTC.
    trades = [
        (ns(0, 100), 49800.0, 0.060, 1),
        (ns(0, 200), 49899.9, 0.040, 2),
        (ns(0, 300), 49950.5, 0.250, 1),
        (ns(0, 400), 50000.0, 0.150, 2),
        (ns(0, 500), 50099.9, 0.250, 1),
        (ns(0, 600), 50100.0, 0.300, 1),
        (ns(0, 700), 50250.0, 0.150, 2),
        (ns(0, 800), 50399.9, 0.050, 1),
    ]
    (row,) = run(trades, [], base_bin_ticks=1000, bin_width_max_ticks=1000, min_va_bins=6)
    assert keys(row) == (50000.0, 49900.0, 50100.0)
    assert levels(row) == (50050.0, 49900.0, 50200.0)
    assert row["va_coverage"] == approx(0.76)
    assert row["total_volume_4h"] == approx(1.25)
    assert row["va_bin_count"] == 6 and row["va_valid"] is True
    assert row["bin_width"] == 100.0
    # bars from the individual trades: open 49800.0, close 50399.9, high 50399.9, low 49800.0
    assert (row["open"], row["close"], row["high"], row["low"]) == (49800.0, 50399.9, 50399.9, 49800.0)
    assert row["trade_count"] == 8 and row["volume"] == approx(1.25)


# -- specv2 §20.4: order flow ---------------------------------------------------------------------


def _of_example(**params) -> dict:
    # tick 0.5 so that 50000.5 is on the grid. Quote bid 50000 / ask 50001 at 0.5 s; trades at 1, 2,
    # 3, 4 s of the same minute: 50001 x 0.1 (buyer), 50000 x 0.2 (seller), 50000.5 x 0.15 (buyer),
    # 50001 x 0.25 (buyer).
    quotes = [(ns(0, 500), 50000.0, 1.0, 50001.0, 1.0)]
    trades = [
        (ns(0, 1000), 50001.0, 0.10, 1),
        (ns(0, 2000), 50000.0, 0.20, 2),
        (ns(0, 3000), 50000.5, 0.15, 1),
        (ns(0, 4000), 50001.0, 0.25, 1),
    ]
    (row,) = run(trades, quotes, tick_size=0.5, **params)
    return row


def test_order_flow_worked_example_with_fallback():
    # +1 (at ask), -1 (at bid), ambiguous -> tick rule 50000.5 > 50000 -> +1, +1 (at ask):
    # OF = 0.1 - 0.2 + 0.15 + 0.25 = 0.3; volume 0.7; OF_norm = 0.3 / 0.7 = 0.428571...;
    # ambiguous = 0.15 / 0.7 = 0.214285...
    row = _of_example(use_tick_rule_fallback=True, max_quote_staleness_ms=10_000)
    assert row["of_1m"] == approx(0.3)
    assert row["volume"] == approx(0.7)
    assert row["of_norm_1m"] == approx(0.3 / 0.7)
    assert row["ambiguous_trade_frac_1m"] == approx(0.15 / 0.7)
    # every inferred sign equals the taker side; the quote is 4000 - 500 = 3500 ms old at the last
    assert (row["side_agree"], row["side_disagree"], row["side_unknown"]) == (4, 0, 0)
    assert row["quote_staleness_max_ms"] == 3500.0


def test_order_flow_worked_example_without_fallback():
    # the ambiguous print keeps sign 0: OF = 0.1 - 0.2 + 0.25 = 0.15; OF_norm = 0.15 / 0.7
    row = _of_example(use_tick_rule_fallback=False, max_quote_staleness_ms=10_000)
    assert row["of_1m"] == approx(0.15)
    assert row["of_norm_1m"] == approx(0.15 / 0.7)
    assert row["ambiguous_trade_frac_1m"] == approx(0.15 / 0.7)
    # the buyer at 50000.5 got sign 0: a disagreement, inside the spread with no fallback
    assert (row["side_agree"], row["side_disagree"], row["disagree_inside"]) == (3, 1, 1)
    # with the default 250 ms limit the 2500 ms old quote is stale, and "stale" is checked first
    row = _of_example(use_tick_rule_fallback=False)
    assert (row["side_disagree"], row["disagree_stale"], row["disagree_inside"]) == (1, 1, 0)


# -- value-area edge cases (tick 1, lot 1: a price is its bin key) ----------------------------------


def test_empty_minute_and_empty_profile():
    # trades in minutes 0 and 2 only, no quotes at all; window W = 1 minute. Minute 1 must still be
    # a row: no trades -> OHLC/vwap NaN, volume 0, count 0, OF 0 with NaN ratios; its profile is
    # empty -> NaN levels and coverage, count 0, not valid, total 0.
    trades = [(ns(0, 10), 100.0, 0.001, 1), (ns(2, 10), 100.1, 0.002, 2)]
    rows = run(trades, [], rolling_window_minutes=1, min_va_bins=1)
    assert [r["ts_min"] for r in rows] == [(M0 + i) * 60_000 for i in range(3)]
    r = rows[1]
    for c in ("open", "high", "low", "close", "vwap", "poc", "vah", "val", "poc_bin", "val_bin", "vah_bin", "va_coverage", "of_norm_1m",
              "ambiguous_trade_frac_1m", "quote_staleness_max_ms", "bid_px_close", "mid_close",
              "spread_avg_60m", "qimb_close", "qimb_ema_60s", "sigma_240", "bvc_net"):  # fmt: skip
        assert math.isnan(r[c]), c
    assert r["volume"] == 0.0 and r["trade_count"] == 0 and r["of_1m"] == 0.0
    assert r["va_bin_count"] == 0 and r["va_valid"] is False and r["total_volume_4h"] == 0.0
    # minutes 0 and 2: one bin each, valid with min_va_bins = 1; the no-quote prints are ambiguous
    # and the very first print has no previous print -> sign 0 even with the fallback.
    assert rows[0]["poc_bin"] == 100.0 and rows[0]["va_valid"] is True and rows[0]["of_1m"] == 0.0
    # one bin of one tick: VAL 100.0, VAH its upper edge 100.1, POC its middle 100.05
    assert levels(rows[0]) == (approx(100.05), 100.0, approx(100.1))
    assert rows[0]["ambiguous_trade_frac_1m"] == 1.0
    # minute 2's print is ambiguous too; tick rule: 100.1 > 100.0 -> +1 -> OF = +0.002
    assert rows[2]["of_1m"] == approx(0.002) and rows[2]["poc_bin"] == approx(100.1)
    # with W = 2, minute 1's profile still holds minute 0's trade
    rows = run(trades, [], rolling_window_minutes=2, min_va_bins=1)
    assert rows[1]["poc_bin"] == 100.0 and rows[1]["total_volume_4h"] == approx(0.001)
    # minute 2's window is minutes 1..2: minute 1 has no trades, so only the 100.1 trade remains
    assert rows[2]["va_bin_count"] == 1 and rows[2]["total_volume_4h"] == approx(0.002)


def test_poc_at_the_lower_edge_expands_only_upward():
    # 100:50, 101:20, 102:20, 103:10; total 100, target 70. POC 100 has no lower neighbour:
    # +101 -> 70 >= 70: VAL 100, VAH 101, coverage 0.70
    row = profile_of({100: 50, 101: 20, 102: 20, 103: 10})
    assert keys(row) == (100.0, 100.0, 101.0)
    assert levels(row) == (100.5, 100.0, 102.0)  # one-tick bins: VAH is the 101 bin's upper edge
    assert row["va_coverage"] == approx(0.7)


def test_poc_at_the_upper_edge_expands_only_downward():
    # mirror image: 100:10, 101:20, 102:20, 103:50 -> POC 103, +102 -> 70: VAL 102, VAH 103
    row = profile_of({100: 10, 101: 20, 102: 20, 103: 50})
    assert keys(row) == (103.0, 102.0, 103.0)
    assert levels(row) == (103.5, 102.0, 104.0)
    assert row["va_coverage"] == approx(0.7)


def test_zero_volume_bins_inside_the_value_area():
    # 100:30, 101:0, 102:40, 103:0, 104:30; total 100, target 70. POC 102 (40).
    # Neighbours 101:0 and 103:0 tie -> the upper, 103 (cum 40); then 104:30 > 101:0 -> 104 (70).
    # VAL 102, VAH 104 with the empty bin 103 inside; 3 bins with volume.
    row = profile_of({100: 30, 102: 40, 104: 30})
    assert keys(row) == (102.0, 102.0, 104.0)
    assert row["va_coverage"] == approx(0.7)
    assert row["va_bin_count"] == 3


def test_expansion_walks_through_empty_bins():
    # 100:40, 101:0, 102:0, 103:60; total 100, target 70. POC 103 at the top edge; down: 102 (0),
    # 101 (0), 100 (40) -> 100 >= 70. VAL 100, VAH 103, coverage 1.0
    row = profile_of({100: 40, 103: 60})
    assert keys(row) == (103.0, 100.0, 103.0)
    assert row["va_coverage"] == 1.0


def test_poc_tie_nearest_the_middle_then_lower_and_expansion_ties_go_up():
    # 100:5, 101:30, 102:5, 103:5, 104:30, 105:5; lowest 100, highest 105, middle 102.5.
    # 101 and 104 tie at 30, both 1.5 from the middle -> the lower, 101. Total 80, target 56.
    # From 101 (30): 102:5 vs 100:5 tie -> upper 102 (35); 103:5 vs 100:5 tie -> upper 103 (40);
    # 104:30 > 100:5 -> 104 (70) >= 56. VAL 101, VAH 104, coverage 70 / 80 = 0.875.
    row = profile_of({100: 5, 101: 30, 102: 5, 103: 5, 104: 30, 105: 5})
    assert keys(row) == (101.0, 101.0, 104.0)
    assert row["va_coverage"] == approx(0.875)
    # 100:30, 101:5, 102:5, 103:30, 104:5: middle 102; 100 is 2 away, 103 is 1 away -> POC 103
    # (the nearer one wins even though it is the higher price). Total 75, target 52.5:
    # 104:5 vs 102:5 tie -> 104 (35); then only 102:5 below -> 102 (40); 101:5 (45); 100:30 (75).
    row = profile_of({100: 30, 101: 5, 102: 5, 103: 30, 104: 5})
    assert keys(row) == (103.0, 100.0, 104.0)
    assert row["va_coverage"] == 1.0


def test_val_is_a_bin_edge_so_a_low_at_val_is_not_below_it():
    # tick 0.1, base bin 10 ticks (1.0 USD). Trades 100.0 x 3, 100.7 x 1, 101.2 x 2, 101.9 x 1 (lots):
    # bins 100.0: 4, 101.0: 3; total 7, target 4.9: POC 100.0 (4), then 101.0 -> 7. VAL = 100.0,
    # exactly the lowest key (1000 ticks x 0.1), and the bar's low 100.0 equals it (not below);
    # VAH = 102.0, the 101.0 bin's upper edge: the high 101.9 is inside value, not above VAH.
    trades = [
        (ns(0, 1), 100.0, 0.003, 1),
        (ns(0, 2), 100.7, 0.001, 1),
        (ns(0, 3), 101.2, 0.002, 1),
        (ns(0, 4), 101.9, 0.001, 1),
    ]
    (row,) = run(trades, [], base_bin_ticks=10, min_va_bins=1)
    assert keys(row) == (100.0, 100.0, 101.0)
    assert levels(row) == (100.5, 100.0, 102.0)
    assert row["low"] == row["val"] and not row["low"] < row["val"]
    assert row["high"] == 101.9 and not row["high"] > row["vah"]
    assert row["bin_width"] == 1.0


# -- trade classification ---------------------------------------------------------------------------


def test_stale_quote_is_used_and_reported():
    # quote bid 100.0 / ask 100.1 at 0 ms; a buyer prints 100.0 at 400 ms. The 400 ms old quote is
    # still used: 100.0 <= bid -> -1 (OF = -0.002), staleness 400. It disagrees with the buyer and the
    # quote is older than 250 ms -> disagree_stale.
    quotes = [(ns(0, 0), 100.0, 1.0, 100.1, 1.0)]
    trades = [(ns(0, 400), 100.0, 0.002, 1)]
    (row,) = run(trades, quotes)
    assert row["of_1m"] == approx(-0.002) and row["ambiguous_trade_frac_1m"] == 0.0
    assert row["quote_staleness_max_ms"] == 400.0
    assert (row["side_disagree"], row["disagree_stale"], row["disagree_quote"]) == (1, 1, 0)
    # "older than 400" is false at exactly 400 ms -> a fresh quote that said the other side
    (row,) = run(trades, quotes, max_quote_staleness_ms=400)
    assert (row["side_disagree"], row["disagree_stale"], row["disagree_quote"]) == (1, 0, 1)


def test_same_timestamp_trades_form_one_print():
    # quote bid 100.0 / ask 100.2 at 0 ms (staleness limit raised so nothing is stale).
    # 1000 ms: 100.2 x 0.002 buyer + 100.2 x 0.003 buyer -> one print, +1, both agree.
    # 2000 ms: 100.0 x 0.004 seller + 100.0 x 0.001 buyer -> one print at the bid, -1 for both:
    #          the seller agrees, the buyer disagrees and the print mixed sides -> disagree_same_ts.
    # 3000 ms: 100.1 x 0.001 + 100.3 x 0.001 (no taker flag): the print's VWAP is exactly 100.2 = ask
    #          (in floats it would be 100.19999999999999) -> +1, not ambiguous.
    # OF = +5 - 5 + 2 lots = 0.002; volume 0.012; nothing ambiguous.
    quotes = [(ns(0, 0), 100.0, 1.0, 100.2, 1.0)]
    trades = [
        (ns(0, 1000), 100.2, 0.002, 1),
        (ns(0, 1000, 500), 100.2, 0.003, 1),
        (ns(0, 2000), 100.0, 0.004, 2),
        (ns(0, 2000, 999_999), 100.0, 0.001, 1),
        (ns(0, 3000), 100.1, 0.001, 0),
        (ns(0, 3000), 100.3, 0.001, 0),
    ]
    (row,) = run(trades, quotes, max_quote_staleness_ms=10_000)
    assert row["of_1m"] == approx(0.002)
    assert row["volume"] == approx(0.012) and row["trade_count"] == 6
    assert row["ambiguous_trade_frac_1m"] == 0.0
    assert (row["side_agree"], row["side_disagree"], row["side_unknown"]) == (3, 1, 2)
    assert row["disagree_same_ts"] == 1
    # even with a stale quote, the mixed print's disagreement is "same_ts" (the first cause)
    (row,) = run(trades, quotes)
    assert (row["disagree_same_ts"], row["disagree_stale"]) == (1, 0)


def test_trade_at_the_same_millisecond_as_a_quote_uses_the_earlier_quote():
    # quote A (bid 100.0 / ask 100.1) at 100 ms, quote B (bid 100.1 / ask 100.2) at 500 ms; a buyer
    # prints 100.1 at 500 ms. Against A (the latest strictly earlier): 100.1 >= ask -> +1, 400 ms old.
    # (Against B it would have been -1.) B is the close snapshot.
    quotes = [(ns(0, 100), 100.0, 1.0, 100.1, 1.0), (ns(0, 500), 100.1, 2.0, 100.2, 1.0)]
    trades = [(ns(0, 500), 100.1, 0.003, 1)]
    (row,) = run(trades, quotes)
    assert row["of_1m"] == approx(0.003) and row["side_agree"] == 1
    assert row["quote_staleness_max_ms"] == 400.0
    assert (row["bid_px_close"], row["ask_px_close"]) == (100.1, 100.2)
    # a trade at the first quote's millisecond (different ns, same ms) has no earlier quote:
    # ambiguous; it is the first print, so sign 0 even with the fallback; no staleness
    quotes = [(ns(0, 100, 999_999), 100.0, 1.0, 100.1, 1.0)]
    trades = [(ns(0, 100, 0), 100.1, 0.003, 1)]
    (row,) = run(trades, quotes)
    assert row["of_1m"] == 0.0 and row["ambiguous_trade_frac_1m"] == 1.0
    assert math.isnan(row["quote_staleness_max_ms"])


def test_tick_rule_fallback_and_its_disagreements():
    # quote bid 100.0 / ask 100.2 at 0 ms (limit raised: nothing stale).
    # 100 ms 100.2 buyer: at ask, +1 (agree)
    # 200 ms 100.1 seller: inside -> 100.1 < 100.2 -> -1 (agree)
    # 300 ms 100.1 seller: inside, equal price -> previous final sign -1 (agree)
    # 400 ms 100.1 buyer : inside, equal price -> -1 (disagree: the fallback was wrong)
    # OF = 1 - 1 - 1 - 1 lots = -0.002; ambiguous 3 of 4 lots
    quotes = [(ns(0, 0), 100.0, 1.0, 100.2, 1.0)]
    trades = [
        (ns(0, 100), 100.2, 0.001, 1),
        (ns(0, 200), 100.1, 0.001, 2),
        (ns(0, 300), 100.1, 0.001, 2),
        (ns(0, 400), 100.1, 0.001, 1),
    ]
    (row,) = run(trades, quotes, max_quote_staleness_ms=10_000)
    assert row["of_1m"] == approx(-0.002) and row["ambiguous_trade_frac_1m"] == 0.75
    assert (row["side_agree"], row["side_disagree"], row["disagree_fallback"]) == (3, 1, 1)
    # without the fallback the three inside prints are 0: three disagreements "inside"; OF = +0.001
    (row,) = run(trades, quotes, max_quote_staleness_ms=10_000, use_tick_rule_fallback=False)
    assert row["of_1m"] == approx(0.001) and row["ambiguous_trade_frac_1m"] == 0.75
    assert (row["side_agree"], row["side_disagree"], row["disagree_inside"]) == (1, 3, 3)
    assert row["disagree_fallback"] == 0


def test_disagreement_cause_when_the_fallback_rule_gives_0():
    # fallback on, no quote strictly before the very first print (the quote is at the same ms):
    # ambiguous; the fallback's rule gives 0 for the very first print; the buyer disagrees. The
    # print was left unsigned, so the cause is "inside" (unsigned), not "fallback" (which is for a
    # +1/-1 the tick rule guessed wrong). A second buyer print at the same price continues the 0.
    trades = [(ns(0, 100), 100.1, 0.003, 1), (ns(0, 200), 100.1, 0.001, 1)]
    quotes = [(ns(0, 100, 999_999), 99.9, 1.0, 100.2, 1.0)]
    (row,) = run(trades, quotes)
    assert row["of_1m"] == 0.0 and row["ambiguous_trade_frac_1m"] == 1.0
    assert (row["side_disagree"], row["disagree_fallback"], row["disagree_inside"]) == (2, 0, 2)
    # with the fallback off both are "inside" as well
    (row,) = run(trades, quotes, use_tick_rule_fallback=False)
    assert (row["side_disagree"], row["disagree_fallback"], row["disagree_inside"]) == (2, 0, 2)


def test_fallback_carries_across_minutes():
    # minute 0: 100.2 at ask (+1). minute 1: 100.2 inside a new wider quote (bid 100.0 / ask 100.4):
    # equal to the previous print's price (in minute 0) -> previous final sign +1 -> OF +0.001.
    quotes = [(ns(0, 0), 100.0, 1.0, 100.2, 1.0), (ns(1, 0), 100.0, 1.0, 100.4, 1.0)]
    trades = [(ns(0, 100), 100.2, 0.001, 1), (ns(1, 100), 100.2, 0.001, 0)]
    rows = run(trades, quotes)
    assert rows[1]["of_1m"] == approx(0.001) and rows[1]["ambiguous_trade_frac_1m"] == 1.0
    assert rows[1]["side_unknown"] == 1


def test_milliseconds_are_floored_from_nanoseconds():
    # a trade at 59 999.999999 ms belongs to minute 0 (its ms is 59 999), not minute 1; a quote in
    # minute 1 makes minute 1 a row.
    trades = [(ns(0, 59_999, 999_999), 100.0, 0.001, 1)]
    quotes = [(ns(1, 0), 99.9, 1.0, 100.0, 1.0)]
    rows = run(trades, quotes)
    assert len(rows) == 2 and rows[0]["trade_count"] == 1 and rows[1]["trade_count"] == 0


# -- L1 snapshot, spread, volatility, bin width ----------------------------------------------------


def test_spread_average_over_lookback_with_missing_early_minutes():
    # L = 3. minute 0: a trade, no quote yet -> spread NaN. Quotes: minute 1 spread 0.2, minute 2
    # spread 0.1, minute 3 none (the minute-2 quote carries: 0.1), minute 4 spread 0.3.
    # avg: m0 NaN; m1 0.2; m2 (0.2 + 0.1) / 2 = 0.15; m3 (0.2 + 0.1 + 0.1) / 3 = 0.13333...;
    # m4 (0.1 + 0.1 + 0.3) / 3 = 0.16666...
    trades = [(ns(0, 5), 100.0, 0.001, 1)]
    quotes = [
        (ns(1, 10_000), 100.0, 1.0, 100.2, 1.0),
        (ns(2, 10_000), 100.0, 1.0, 100.1, 1.0),
        (ns(4, 10_000), 100.0, 1.0, 100.3, 1.0),
    ]
    rows = run(trades, quotes, spread_lookback_minutes=3)
    got = [r["spread_avg_60m"] for r in rows]
    assert math.isnan(got[0])
    assert got[1:] == [pytest.approx(x, rel=1e-9) for x in (0.2, 0.15, 0.4 / 3, 0.5 / 3)]
    assert rows[3]["mid_close"] == pytest.approx(100.05, rel=1e-15)
    assert rows[3]["spread_close"] == pytest.approx(0.1, rel=1e-9)


def test_sigma_with_missing_minutes_and_bin_width_clamps():
    # Quotes only in minute 0 (mid 100.05) and minute 3 (mid 100.15). Minutes 1, 2 repeat the mid:
    # returns r1 = r2 = 0, r3 = ln(100.15 / 100.05). Minute 0 has no return (no earlier mid).
    # W = 10: m0 NaN, m1 NaN (one return), m2 sd(0, 0) = 0, m3 sd(0, 0, r3) with mean r3/3:
    #   ((r3/3)^2 x 2 + (2 r3/3)^2) / 2 = r3^2 / 3  ->  sigma = |r3| / sqrt(3)
    quotes = [(ns(0, 1000), 100.0, 1.0, 100.1, 1.0), (ns(3, 1000), 100.1, 1.0, 100.2, 1.0)]
    r3 = math.log(100.15 / 100.05)
    rows = run([], quotes, rolling_window_minutes=10)
    assert [r["ts_min"] for r in rows] == [(M0 + i) * 60_000 for i in range(4)]
    sig = [r["sigma_240"] for r in rows]
    assert math.isnan(sig[0]) and math.isnan(sig[1]) and sig[2] == 0.0
    assert sig[3] == pytest.approx(abs(r3) / math.sqrt(3), rel=1e-9)
    # W = 2: minute 3 sees r2 = 0 and r3 -> |r3| / sqrt(2)
    rows2 = run([], quotes, rolling_window_minutes=2)
    assert rows2[3]["sigma_240"] == pytest.approx(abs(r3) / math.sqrt(2), rel=1e-9)
    # bin width, W = 10, tick 0.1: sigma NaN (m0, m1) -> the base bin; sigma 0 (m2) -> raw 0 ->
    # n = 0 -> clamped up to the base bin. m3: raw = 0.25 x 1001.5 x 5.768e-4 = 0.1444 -> n = 0 ->
    # the base bin again.
    assert [r["bin_width"] for r in rows] == [pytest.approx(0.1)] * 4
    rows = run([], quotes, rolling_window_minutes=10, base_bin_ticks=3)
    assert [r["bin_width"] for r in rows] == [pytest.approx(0.3)] * 4
    # alpha 1e6: raw = 1e6 x 1001.5 x 5.768e-4 = 577,700 ticks -> clamped down to
    # floor(200 / 3) x 3 = 198 ticks = 19.8 with a 3-tick base, 200 ticks = 20.0 with a 1-tick base
    rows = run([], quotes, rolling_window_minutes=10, base_bin_ticks=3, alpha_bin=1e6)
    assert rows[3]["bin_width"] == pytest.approx(19.8) and rows[2]["bin_width"] == pytest.approx(0.3)
    rows = run([], quotes, rolling_window_minutes=10, alpha_bin=1e6)
    assert rows[3]["bin_width"] == pytest.approx(20.0)
    # alpha 20: raw = 20 x 1001.5 x 5.7684e-4 = 11.554 ticks -> 12 ticks (B = 1); with B = 5:
    # raw / 5 = 2.31 -> floor(2.81) = 2 -> 10 ticks
    raw_ticks = 20 * 1001.5 * abs(r3) / math.sqrt(3)
    assert 11.5 < raw_ticks < 11.6
    rows = run([], quotes, rolling_window_minutes=10, alpha_bin=20.0)
    assert rows[3]["bin_width"] == pytest.approx(1.2)
    rows = run([], quotes, rolling_window_minutes=10, alpha_bin=20.0, base_bin_ticks=5)
    assert rows[3]["bin_width"] == pytest.approx(1.0)


REBUCKET_MIDS = [1000.0, 1000.3, 1000.0, 1000.4, 999.95, 1000.35, 999.75, 1000.55]


def rebucket_market() -> tuple[list, list]:
    """One quote per minute at :data:`REBUCKET_MIDS` (one half-spread either side of the mid) and one
    trade of 0.001 at 1000.3 (10003 ticks) per minute: the profile of minutes m-1..m is one bin, key
    floor(10003 / w) x w at the applied width w."""
    quotes = []
    for i, mid in enumerate(REBUCKET_MIDS):
        half = 0.1 if round(mid * 10) == mid * 10 else 0.05
        quotes.append((ns(i, 30_000), round(mid - half, 1), 1.0, round(mid + half, 1), 1.0))
    trades = [(ns(i, 1000), 1000.3, 0.001, 1) for i in range(len(REBUCKET_MIDS))]
    return trades, quotes


def test_rebucketing_triggers():
    # W = 2, alpha 1, tick 0.1, B = 1. One quote per minute with mids 1000.0, 1000.3, 1000.0,
    # 1000.4, 999.95, 1000.35, 999.75, 1000.55 (bid/ask one half-spread either side).
    # With two returns sigma_m = |r_m - r_(m-1)| / sqrt(2); raw = mid / 0.1 x sigma:
    #   m2: r1 = +2.9991e-4, r2 = -2.9996e-4 -> sigma 4.2420e-4, raw 4.242 -> 4
    #   m3: r3 = +3.9992e-4 -> sigma 4.9489e-4, raw 4.951 -> 5
    #   m4: r4 = -4.4992e-4 -> sigma 6.0093e-4, raw 6.009 -> 6
    #   m5: r5 = +3.9994e-4 -> sigma 6.0094e-4, raw 6.012 -> 6
    #   m6: r6 = -5.9997e-4 -> sigma 7.0704e-4, raw 7.069 -> 7
    #   m7: r7 = +7.9988e-4 -> sigma 9.8984e-4, raw 9.904 -> 10
    # computed widths (ticks): 1, 1, 4, 5, 6, 6, 7, 10.
    # applied: m0 takes 1; m1 1; m2 |4-1|/1 = 3 >= 0.25 -> 4; m3 |5-4|/4 = 0.25 >= 0.25 -> 5;
    # m4 |6-5|/5 = 0.2 -> stays 5; m5 is minute index M0 + 5, a multiple of 15 -> 6;
    # m6 |7-6|/6 = 0.167 -> stays 6; m7 |10-6|/6 = 0.667 -> 10.
    trades, quotes = rebucket_market()
    rows = run(trades, quotes, rolling_window_minutes=2, alpha_bin=1.0, min_va_bins=1)
    assert [r["mid_close"] for r in rows] == [pytest.approx(x, rel=1e-12) for x in REBUCKET_MIDS]
    assert [round(r["bin_width"] * 10) for r in rows] == [1, 1, 4, 5, 6, 6, 7, 10]
    assert [round(r["bin_width_applied"] * 10) for r in rows] == [1, 1, 4, 5, 5, 6, 6, 10]
    # POC keys floor(10003 / w) x w: w 1 -> 10003; 4 -> 2500 x 4 = 10000; 5 -> 2000 x 5 = 10000;
    # 6 -> 1667 x 6 = 10002; 10 -> 10000
    expected_poc = [1000.3, 1000.3, 1000.0, 1000.0, 1000.0, 1000.2, 1000.2, 1000.0]
    assert [r["poc_bin"] for r in rows] == [pytest.approx(x, rel=1e-12) for x in expected_poc]
    # the POC level is the middle of that bin at the applied width: + 0.05, 0.05, 0.2, 0.25, ...
    widths = [1, 1, 4, 5, 5, 6, 6, 10]
    assert [r["poc"] for r in rows] == [pytest.approx(x + w * 0.05, rel=1e-12) for x, w in zip(expected_poc, widths)]
    # an interval of 1000 minutes: no index in M0..M0+7 is a multiple of it, only the change rule acts
    assert all((M0 + i) % 1000 for i in range(8))
    rows = run(trades, quotes, rolling_window_minutes=2, alpha_bin=1.0, min_va_bins=1,
               rebucket_interval_minutes=1000)  # fmt: skip
    # m5 no longer forced: |6-5|/5 = 0.2 -> stays 5; m6 |7-5|/5 = 0.4 -> 7; m7 |10-7|/7 = 0.43 -> 10
    assert [round(r["bin_width_applied"] * 10) for r in rows] == [1, 1, 4, 5, 5, 5, 7, 10]
    # every minute a multiple of 1 -> the applied width is always the computed one
    rows = run(trades, quotes, rolling_window_minutes=2, alpha_bin=1.0, min_va_bins=1,
               rebucket_interval_minutes=1)  # fmt: skip
    assert [round(r["bin_width_applied"] * 10) for r in rows] == [1, 1, 4, 5, 6, 6, 7, 10]


# -- quote imbalance --------------------------------------------------------------------------------


def test_qimb_ema_by_hand():
    # tau = 60 s. A trade in minute 0 starts the rows; quotes begin in minute 1, so minute 0's
    # qimb and EMA are NaN.
    # Minute 1: Q1 at 0 s sizes 3/1 -> q = (3-1)/(3+1) = 0.5: ema = 0.5, t = 0.
    #           Q2 at 20 s sizes 1/3 -> q = -0.5: ema += (1 - e^(-20/60)) (0.5 - 0.5) = 0.5.
    #           Q3 at 40 s sizes 2/2 -> q = 0: ema += (1 - e^(-1/3)) (-0.5 - 0.5) = -0.5 + e^(-1/3)
    #           = 0.216531...
    #           close at 59.999 s: ema += (1 - e^(-19.999/60)) (0 - ema) = ema e^(-19.999/60)
    #           = (-0.5 + e^(-1/3)) e^(-0.333316...) = 0.155146...
    # Minute 2 (no quotes; a trade makes it a row): close 60 s later: ema e^(-60/60).
    trades = [(ns(0, 0), 100.0, 0.001, 1), (ns(2, 0), 100.0, 0.001, 1)]
    quotes = [
        (ns(1, 0), 100.0, 3.0, 100.1, 1.0),
        (ns(1, 20_000), 100.0, 1.0, 100.1, 3.0),
        (ns(1, 40_000), 100.0, 2.0, 100.1, 2.0),
    ]
    rows = run(trades, quotes)
    assert math.isnan(rows[0]["qimb_ema_60s"]) and math.isnan(rows[0]["qimb_close"])
    ema1 = (-0.5 + math.exp(-1 / 3)) * math.exp(-19.999 / 60)
    assert 0.1551 < ema1 < 0.1552
    assert rows[1]["qimb_ema_60s"] == pytest.approx(ema1, rel=1e-12)
    assert rows[1]["qimb_close"] == 0.0
    assert rows[2]["qimb_ema_60s"] == pytest.approx(ema1 * math.exp(-1.0), rel=1e-12)
    # tau = 30 s: the same steps with /30
    rows = run(trades, quotes, qimb_ema_span_seconds=30.0)
    ema1 = (-0.5 + math.exp(-2 / 3)) * math.exp(-19.999 / 30)
    assert rows[1]["qimb_ema_60s"] == pytest.approx(ema1, rel=1e-12)
    # qimb_close of minute 1 with the close snapshot's sizes 2/2 = 0; a 3/1 snapshot gives 0.5
    rows = run(trades, quotes[:1])
    assert rows[1]["qimb_close"] == 0.5 and rows[1]["qimb_ema_60s"] == 0.5


# -- BVC --------------------------------------------------------------------------------------------


def test_bvc_by_hand():
    # lookback 3. Last trade prices: m0 100.0, m1 100.2, m2 100.1 (100.3 then 100.1), m3 none
    # (carried 100.1), m4 100.4. d (ticks): m1 +2, m2 -1, m3 0, m4 +3.
    #   m0: no d -> NaN.   m1: only one d in m-2..m -> NaN.
    #   m2: d = [2, -1] -> s = 3 / sqrt(2); z = -1 / s = -sqrt(2)/3; 2 Phi(z) - 1 = erf(z / sqrt(2))
    #       = erf(-1/3); volume 0.005 -> bvc = 0.005 erf(-1/3) = -0.0018132...
    #   m3: volume 0 -> 0 x (...) = 0 (d = 0 and s > 0 are defined).
    #   m4: d = [-1, 0, 3]: mean 2/3, squared deviations 25/9 + 4/9 + 49/9 = 78/9, / 2 = 13/3 ->
    #       s = sqrt(13/3); z = 3 / s; bvc = 0.004 erf(3 / sqrt(26/3)) = 0.004 x 0.8503... = 0.0034
    trades = [
        (ns(0, 100), 100.0, 0.001, 1),
        (ns(1, 100), 100.2, 0.001, 1),
        (ns(2, 100), 100.3, 0.002, 1),
        (ns(2, 200), 100.1, 0.003, 2),
        (ns(4, 100), 100.4, 0.004, 1),
    ]
    rows = run(trades, [], use_bvc=True, lookback_bvc=3)
    bvc = [r["bvc_net"] for r in rows]
    assert math.isnan(bvc[0]) and math.isnan(bvc[1])
    assert bvc[2] == pytest.approx(0.005 * math.erf(-1 / 3), rel=1e-9)
    assert bvc[3] == 0.0
    assert bvc[4] == pytest.approx(0.004 * math.erf(3 / math.sqrt(26 / 3)), rel=1e-9)
    assert 0.0034 < bvc[4] < 0.00341
    # disabled -> NaN everywhere
    assert all(math.isnan(r["bvc_net"]) for r in run(trades, []))
    # constant price: every d is 0, s = 0 -> NaN
    flat = [(ns(i, 100), 100.0, 0.001, 1) for i in range(4)]
    assert all(math.isnan(r["bvc_net"]) for r in run(flat, [], use_bvc=True, lookback_bvc=3))


# -- bars -------------------------------------------------------------------------------------------


def test_bars_in_input_order_and_vwap():
    # three trades at one millisecond, then one later: open = the first in input order (100.0),
    # close = the last (100.1); vwap = (100.0 x 1 + 100.2 x 2 + 99.9 x 1 + 100.1 x 4) / 8
    # = 800.7 / 8 = 100.0875
    trades = [
        (ns(0, 7), 100.0, 0.001, 1),
        (ns(0, 7), 100.2, 0.002, 1),
        (ns(0, 7), 99.9, 0.001, 2),
        (ns(0, 9), 100.1, 0.004, 0),
    ]
    (row,) = run(trades, [])
    assert (row["open"], row["high"], row["low"]) == (100.0, 100.2, 99.9)
    assert row["close"] == 100.1
    assert row["vwap"] == pytest.approx(100.0875, rel=1e-12)
    assert row["volume"] == pytest.approx(0.008) and row["trade_count"] == 4
    assert row["side_unknown"] == 1


def test_no_events_no_rows():
    assert run([], []) == []


def test_va_fraction_is_compared_as_the_decimal_configured():
    # 100:55, 101:45, va_fraction 0.55: 55 >= 0.55 x 100 = 55 -> the POC bin alone (in binary
    # floating point 0.55 x 100 is 55.00000000000001, which would wrongly pull in 101)
    assert 0.55 * 100 > 55
    row = profile_of({100: 55, 101: 45}, va_fraction=0.55)
    assert keys(row) == (100.0, 100.0, 100.0)
    assert levels(row) == (100.5, 100.0, 101.0)
    assert row["va_coverage"] == approx(0.55)
