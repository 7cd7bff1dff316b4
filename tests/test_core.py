"""The framework-free core: setups, acceptance, retest, priority, state machine, sizing, exits, guards."""

from __future__ import annotations

import json
import math

import pytest

from auction_trader.config import AuctionConfig
from auction_trader.core.acceptance import Sequence
from auction_trader.core.exits import TimeStop, closed_back_inside, market_exit_price, net_exit_pnl
from auction_trader.core.initiative import LONG, SHORT, entry_initiative, fail_initiative
from auction_trader.core.minute import Minute, trades_at
from auction_trader.core.risk import Cooldown, DailyLossGuard
from auction_trader.core.signals import ENTER_LONG, ENTER_SHORT, EXIT, FLAGS, HOLD, Context, SignalEngine
from auction_trader.core.sizing import heat, position_size, remainder_within_cap, tp_split

NAN = math.nan
BASE = dict(warmup_minutes=0, cooldown_minutes=3)


def cfg(**over) -> AuctionConfig:
    return AuctionConfig().with_overrides([f"{k}={v}" for k, v in {**BASE, **over}.items()])


def bar(t: int = 0, o=100.0, h=101.0, l=99.0, c=100.0, poc=100.0, vah=102.0, val=98.0, valid=True, of=0.0, ofn=0.0,
        qimb=0.0, amb=0.0, spread=0.1, trades=None) -> Minute:  # fmt: skip
    prices = trades if trades is not None else [p for p in (o, h, l, c) if not math.isnan(p)]
    return Minute(t * 60_000, o, h, l, c, poc, vah, val, valid, of, ofn, qimb, amb, spread, trades_at(prices))


# -- specv2 §20.5 -----------------------------------------------------------------------------------


def test_worked_example_20_5_break_in_long():
    # Tick $1 as in the spec's arithmetic: stop = 49,820 - 2 ticks = 49,818.
    engine = SignalEngine(cfg(), tick=1.0)
    m = bar(o=49850, h=49920, l=49820, c=49950, poc=50000, vah=50100, val=49900, of=0.5, ofn=0.2, qimb=0.15, amb=0.20,
            spread=1.0, trades=[49820, 49900, 49950])  # fmt: skip
    decision, record = engine.on_minute(m)
    assert decision.action == ENTER_LONG and decision.reason == "BREAKIN_LONG"
    c = decision.candidate
    assert (c.entry, c.stop, c.tp1, c.tp2) == (49950, 49818, 50000, 50100)
    assert record["signal_breakin_long"] == 1 and record["chosen_action"] == "ENTER_LONG"
    snapshot = json.loads(record["feature_snapshot"])
    assert snapshot["val"] == 49900 and snapshot["stop"] == 49818


# -- each failing condition of the break-in -------------------------------------------------------------

# A bar that trades down through VAL 98.0 to 97.8 and closes back at 98.4 (its trades include 98.0).
GOOD_BREAKIN = dict(o=98.5, h=98.6, l=97.8, c=98.4, poc=100.0, vah=102.0, val=98.0, of=1.0, ofn=0.2, qimb=0.2, spread=0.1,
                    trades=[98.5, 98.0, 97.8, 98.4, 98.6])  # fmt: skip
SHORT_BREAKIN = dict(o=101.5, h=102.4, l=101.4, c=101.6, poc=100.0, vah=102.0, val=98.0, of=-1.0, ofn=-0.2, qimb=-0.2,
                     trades=[101.5, 102.0, 102.4, 101.4, 101.6])  # fmt: skip


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (dict(l=98.0, trades=[98.5, 98.0, 98.4]), "low == VAL exactly is not an excursion (strict <)"),
        (dict(c=98.0), "close == VAL is not back inside (strict >)"),
        (dict(trades=[97.8, 98.4, 98.6]), "no trade within a spread of VAL: a gap, not a crossing"),
        (dict(of=-1.0, ofn=-0.2, qimb=-0.2), "no initiative"),
        (dict(valid=False), "no valid value area"),
    ],
)
def test_break_in_needs_every_condition(change, why):
    decision, record = SignalEngine(cfg(), 0.1).on_minute(bar(**{**GOOD_BREAKIN, **change}))
    assert decision.action == HOLD, why
    assert record["signal_breakin_long"] == 0, why


def test_break_in_passes_with_its_conditions_and_short_mirrors():
    decision, _ = SignalEngine(cfg(), 0.1).on_minute(bar(**GOOD_BREAKIN))
    assert decision.action == ENTER_LONG
    decision, record = SignalEngine(cfg(), 0.1).on_minute(bar(**SHORT_BREAKIN))
    assert decision.action == ENTER_SHORT and decision.reason == "BREAKIN_SHORT"
    c = decision.candidate
    assert (c.stop, c.tp1, c.tp2) == (102.6, 100.0, 98.0)
    assert record["signal_breakin_short"] == 1


def test_initiative_either_or_and_both_when_ambiguous():
    config = cfg()
    only_qimb = bar(of=-0.5, ofn=-0.05, qimb=0.2)
    assert entry_initiative(LONG, only_qimb, config, "entry"), "qimb alone is enough normally"
    assert not entry_initiative(LONG, bar(of=-0.5, ofn=-0.05, qimb=0.2, amb=0.5), config, "entry"), "both needed when ambiguous > 0.35"
    assert entry_initiative(LONG, bar(of=0.5, ofn=0.2, qimb=0.2, amb=0.5), config, "entry")
    assert not entry_initiative(LONG, only_qimb, cfg(use_qimb="false"), "entry"), "use_qimb off: OF alone decides"
    assert entry_initiative(LONG, bar(of=0.0, ofn=0.11), config, "entry"), "normalised OF alone passes"
    assert not entry_initiative(LONG, bar(of=0.0, ofn=0.1, qimb=0.1), config, "entry"), "thresholds are strict"
    # failed breakout thresholds are stated for the short side and are inclusive
    assert fail_initiative(SHORT, bar(of=0.0, ofn=0.0, qimb=0.0), config), "OF <= 0"
    assert not fail_initiative(SHORT, bar(of=0.01, ofn=-0.05, qimb=0.0), config)
    assert fail_initiative(LONG, bar(of=-0.1, ofn=0.1, qimb=0.0), config), "mirror: OF_norm >= 0.1"
    assert not fail_initiative(LONG, bar(of=-0.1, ofn=0.05, qimb=NAN), config), "NaN never confirms"


# -- acceptance -----------------------------------------------------------------------------------------


def test_acceptance_counts_resets_and_keeps_the_locked_level():
    seq = Sequence(LONG, k=3)
    assert not seq.update(0, close=102.5, high=102.6, low=101.9, edge=102.0, crossed=True)
    assert (seq.active, seq.locked, seq.count) == (True, 102.0, 1)
    # VAH moves up to 103 but the locked level stays 102: 102.5 still counts.
    assert not seq.update(1, close=102.5, high=102.7, low=102.1, edge=103.0, crossed=False)
    assert seq.count == 2 and seq.locked == 102.0
    assert seq.update(2, close=102.8, high=103.0, low=102.4, edge=103.0, crossed=False), "fires at k"
    assert not seq.update(3, close=102.9, high=103.1, low=102.5, edge=103.0, crossed=False), "once per sequence"
    assert seq.count == 4 and seq.extreme == 103.1
    # One close back at the locked level resets to 0 (hard reset; a wick alone would not).
    seq.update(4, close=102.0, high=102.9, low=101.5, edge=103.0, crossed=True)
    assert (seq.active, seq.count) == (False, 0)


def test_acceptance_needs_a_crossing_on_its_first_bar_only():
    seq = Sequence(SHORT, k=2)
    assert not seq.update(0, close=97.0, high=97.5, low=96.8, edge=98.0, crossed=False), "a gap below VAL starts nothing"
    assert not seq.active
    seq.update(1, close=97.0, high=98.1, low=96.8, edge=98.0, crossed=True)
    assert seq.active and seq.count == 1
    assert seq.update(2, close=96.0, high=96.5, low=95.5, edge=97.0, crossed=False), "later bars need no crossing"


def test_breakout_fires_at_k_with_initiative_and_waits_for_the_retest():
    engine = SignalEngine(cfg(accept_outside_k=2), 0.1)
    up = dict(poc=100.0, vah=102.0, val=98.0, of=1.0, ofn=0.3, qimb=0.3)
    d, r = engine.on_minute(bar(0, o=101.8, h=102.4, l=101.9, c=102.3, **up))
    assert d.action == HOLD and r["signal_breakout_long"] == 0 and engine.up.count == 1
    d, r = engine.on_minute(bar(1, o=102.3, h=102.9, l=102.3, c=102.8, **up))
    assert r["signal_breakout_long"] == 1, "k = 2 closes above the locked VAH with initiative"
    assert d.action == HOLD and d.reason == "RETEST_PENDING_LONG" and engine.phase == "PENDING_RETEST"
    # No pullback yet: keep waiting.
    d, _ = engine.on_minute(bar(2, o=102.8, h=103.5, l=102.7, c=103.4, **up))
    assert d.action == HOLD and engine.phase == "PENDING_RETEST"
    # Pullback: low within one average spread (0.1) of the locked 102.0, close above it.
    d, r = engine.on_minute(bar(3, o=103.0, h=103.1, l=102.1, c=102.6, **up))
    assert d.action == ENTER_LONG and d.reason == "BREAKOUT_LONG:RETEST" and r["signal_breakout_long"] == 1
    c = d.candidate
    assert c.stop == pytest.approx(101.9), "retest stop: pullback low - 2 ticks"
    assert (c.tp1, c.tp2, c.locked) == (104.0, 106.0, 102.0), "locked VAH + 0.5 / 1.0 x (VAH - VAL)"


def test_breakout_without_retest_mode_enters_at_once():
    engine = SignalEngine(cfg(accept_outside_k=1, enable_retest_mode="false"), 0.1)
    d, _ = engine.on_minute(bar(0, o=97.9, h=98.05, l=97.2, c=97.3, poc=100.0, vah=102.0, val=98.0, of=-1.0, ofn=-0.3, qimb=-0.3))
    assert d.action == ENTER_SHORT and d.reason == "BREAKOUT_SHORT"
    assert (d.candidate.stop, d.candidate.tp1, d.candidate.tp2) == (98.2, 96.0, 94.0)


def test_failed_retest_becomes_a_failed_breakout_short():
    engine = SignalEngine(cfg(accept_outside_k=1), 0.1)
    up = dict(poc=100.0, vah=102.0, val=98.0)
    engine.on_minute(bar(0, o=101.9, h=102.6, l=101.9, c=102.5, of=1.0, ofn=0.3, qimb=0.3, **up))
    assert engine.phase == "PENDING_RETEST"
    engine.on_minute(bar(1, o=102.5, h=103.2, l=102.4, c=103.0, of=1.0, ofn=0.3, qimb=0.3, **up))
    # Back inside with selling initiative, trading through the locked 102.0: the retest failed ->
    # failed breakout short (a case of C).
    back = dict(o=103.0, h=103.0, l=101.0, c=101.5, of=-1.0, ofn=-0.3, qimb=-0.3, **up)
    d, r = engine.on_minute(bar(2, trades=[103.0, 102.0, 101.0, 101.5], **back))
    assert r["signal_failbreak_short"] == 1
    assert d.action == ENTER_SHORT and d.reason == "FAILBREAK_SHORT:RETEST_FAILED"
    assert d.candidate.stop == pytest.approx(103.4), "beyond the poke's extreme (103.2) + 2 ticks"
    assert engine.phase == "FLAT"
    # The same bar without a trade near 102.0 (a gap back inside) is no failed breakout: the wait ends.
    engine = SignalEngine(cfg(accept_outside_k=1), 0.1)
    engine.on_minute(bar(0, o=101.9, h=102.6, l=101.9, c=102.5, of=1.0, ofn=0.3, qimb=0.3, **up))
    engine.on_minute(bar(1, o=102.5, h=103.2, l=102.4, c=103.0, of=1.0, ofn=0.3, qimb=0.3, **up))
    d, r = engine.on_minute(bar(2, trades=[103.0, 101.0, 101.5], **back))
    assert r["signal_failbreak_short"] == 0 and (d.action, d.reason) == (HOLD, "RETEST_FAILED") and engine.phase == "FLAT"


def test_a_fresh_breakout_on_a_retest_bar_waits_and_conflicts_with_the_retest_entry():
    engine = SignalEngine(cfg(accept_outside_k=1), 0.1)
    engine.on_minute(bar(0, o=101.9, h=102.6, l=101.9, c=102.5, poc=100.0, vah=102.0, val=98.0, of=1.0, ofn=0.3, qimb=0.3))
    assert engine.retest.locked == 102.0
    # The value area jumps above: the bar pulls back to 102.1 (the long retest) and closes below the
    # new VAL 103.0 after crossing it with selling initiative (a fresh breakout short, k = 1).
    d, r = engine.on_minute(bar(1, o=103.2, h=103.3, l=102.1, c=102.5, poc=104.0, vah=105.0, val=103.0, of=-1.0, ofn=-0.3, qimb=-0.3,
                               trades=[103.2, 103.0, 102.1, 102.5]))
    assert (r["signal_breakout_long"], r["signal_breakout_short"]) == (1, 1)
    assert d.action == HOLD and d.reason == "CONFLICT_BREAKOUT"
    assert engine.phase == "PENDING_RETEST" and (engine.retest.direction, engine.retest.locked) == (SHORT, 103.0)


def test_a_poke_is_a_break_in_and_a_failed_acceptance_is_a_failed_breakout():
    """DESIGN.md: A and C describe different excursions. A bar poking below VAL and closing back is
    a break-in only, whatever the failed-breakout initiative says; after k closes below VAL the
    first close back inside is a failed breakout only, whatever the break-in initiative says."""
    d, r = SignalEngine(cfg(), 0.1).on_minute(bar(**GOOD_BREAKIN))
    assert (r["signal_breakin_long"], r["signal_failbreak_long"]) == (1, 0) and d.reason == "BREAKIN_LONG"
    # The same poke without break-in initiative (flat flow, the inclusive fail rule would pass): nothing.
    d, r = SignalEngine(cfg(), 0.1).on_minute(bar(**{**GOOD_BREAKIN, "of": 0.0, "ofn": 0.1, "qimb": 0.0}))
    assert (r["signal_breakin_long"], r["signal_failbreak_long"]) == (0, 0) and d.reason == "NO_SIGNAL"
    # k = 2 closes below VAL 98.0 (the sequence locks 98.0, extreme 97.4), then a close back above
    # with strong buying: the poke had been accepted -> failed breakout long, no break-in.
    engine = SignalEngine(cfg(accept_outside_k=2, enable_retest_mode="false"), 0.1)
    down = dict(poc=100.0, vah=102.0, val=98.0, of=-1.0, ofn=-0.3, qimb=-0.3)
    engine.on_minute(bar(0, o=98.2, h=98.3, l=97.6, c=97.7, trades=[98.2, 98.0, 97.6, 97.7], **down))
    d, r = engine.on_minute(bar(1, o=97.7, h=97.8, l=97.4, c=97.5, **down))
    assert r["signal_breakout_short"] == 1 and d.action == ENTER_SHORT
    d, r = engine.on_minute(bar(2, o=97.5, h=98.6, l=97.5, c=98.4, trades=[97.5, 98.0, 98.6, 98.4], poc=100.0, vah=102.0, val=98.0,
                               of=1.0, ofn=0.3, qimb=0.3))  # fmt: skip
    assert (r["signal_breakin_long"], r["signal_failbreak_long"]) == (0, 1)
    assert d.action == ENTER_LONG and d.reason == "FAILBREAK_LONG"
    assert d.candidate.stop == pytest.approx(97.2), "beyond the run's lowest low 97.4 - 2 ticks"
    # Only one close below VAL before the close back inside: a poke of a run of 1 < k -> break-in,
    # its stop beyond the run's extreme (97.6, lower than this bar's own low 97.9).
    engine = SignalEngine(cfg(accept_outside_k=2), 0.1)
    engine.on_minute(bar(0, o=98.2, h=98.3, l=97.6, c=97.7, trades=[98.2, 98.0, 97.6, 97.7], **down))
    d, r = engine.on_minute(bar(1, o=97.9, h=98.6, l=97.9, c=98.4, trades=[97.9, 98.0, 98.6, 98.4], poc=100.0, vah=102.0, val=98.0,
                               of=1.0, ofn=0.3, qimb=0.3))  # fmt: skip
    assert (r["signal_breakin_long"], r["signal_failbreak_long"]) == (1, 0) and d.reason == "BREAKIN_LONG"
    assert d.candidate.stop == pytest.approx(97.4)


def test_failed_breakout_fires_in_position_and_flips_a_breakout():
    """C is tracked whatever the position: a breakout long whose acceptance fails, with sellers in
    control, flips to a failed breakout short (a flip comes before the close-back-inside exit)."""
    engine = SignalEngine(cfg(accept_outside_k=1, enable_retest_mode="false"), 0.1)
    up = dict(poc=100.0, vah=102.0, val=98.0)
    d, _ = engine.on_minute(bar(0, o=101.9, h=102.6, l=101.9, c=102.5, of=1.0, ofn=0.3, qimb=0.3, **up))
    engine.position_opened(d.candidate, 102.5, 30_000)
    d, r = engine.on_minute(bar(1, o=102.5, h=102.7, l=101.5, c=101.8, trades=[102.5, 102.0, 101.5, 101.8], of=-1.0, ofn=-0.3, qimb=-0.3, **up))
    assert r["signal_failbreak_short"] == 1
    assert (d.action, d.reason, d.close_first) == (ENTER_SHORT, "FLIP:FAILBREAK_SHORT", True)
    assert d.candidate.stop == pytest.approx(102.9), "beyond the run's high 102.7"


def test_accept_inside_k_waits_for_closes_inside():
    """accept_inside_k = 3: the trigger bar and two more closes above VAL confirm the break-in on
    the third; a close back below VAL in between ends the wait."""
    engine = SignalEngine(cfg(accept_inside_k=3), 0.1)
    d, r = engine.on_minute(bar(0, **GOOD_BREAKIN))
    assert r["signal_breakin_long"] == 0 and d.reason == "BREAKIN_PENDING_LONG"
    assert json.loads(r["acceptance_state"])["breakin_pending"] == [{"direction": 1, "edge": 98.0, "extreme": 97.8, "count": 1}]
    d, r = engine.on_minute(bar(1, o=98.4, h=98.8, l=97.7, c=98.6, trades=[98.4, 97.7, 98.8, 98.6]))
    assert r["signal_breakin_long"] == 0 and d.reason == "BREAKIN_PENDING_LONG"
    d, r = engine.on_minute(bar(2, o=98.6, h=99.0, l=98.5, c=98.9, trades=[98.6, 99.0, 98.5, 98.9]))
    assert r["signal_breakin_long"] == 1 and (d.action, d.reason) == (ENTER_LONG, "BREAKIN_LONG")
    c = d.candidate
    assert (c.entry, c.stop, c.tp1, c.tp2) == (98.9, pytest.approx(97.5), 100.0, 102.0), "stop beyond the lowest low since the poke (97.7)"
    interrupted = SignalEngine(cfg(accept_inside_k=2), 0.1)
    interrupted.on_minute(bar(0, **GOOD_BREAKIN))
    d, r = interrupted.on_minute(bar(1, o=98.4, h=98.4, l=97.5, c=97.9, trades=[98.4, 97.5, 97.9]))
    assert r["signal_breakin_long"] == 0 and d.reason == "NO_SIGNAL" and not interrupted.pending


def test_both_directions_of_one_setup_is_a_conflict():
    engine = SignalEngine(cfg(use_qimb="false", accept_outside_k=1, enable_retest_mode="false"), 0.1)
    # Accepted above VAH and below VAL at once (a first bar above 102 fires a one-close up run;
    # then the VA widens so that the next bar is a one-close down run), then a bar closing back
    # inside both with flat flow: the inclusive failed-breakout rules pass both ways.
    up = dict(poc=100.0, vah=102.0, val=98.0, of=0.0, ofn=0.0, qimb=0.0)
    engine.on_minute(bar(0, o=101.9, h=102.5, l=101.9, c=102.4, trades=[101.9, 102.0, 102.5, 102.4], **up))
    engine.up.update(1, close=102.4, high=102.5, low=102.3, edge=102.0, crossed=True)  # still above (count 2)
    engine.down.active, engine.down.locked, engine.down.count, engine.down.extreme = True, 98.0, 1, 97.5
    wide = dict(o=100.0, h=102.5, l=97.5, c=100.0, poc=100.0, vah=102.0, val=98.0, of=0.0, ofn=0.0, qimb=0.0)
    d, r = engine.on_minute(bar(2, **wide, trades=[97.5, 98.0, 100.0, 102.0, 102.5]))
    assert (r["signal_failbreak_long"], r["signal_failbreak_short"]) == (1, 1)
    assert d.action == HOLD and d.reason == "CONFLICT_FAILBREAK"


# -- state machine ----------------------------------------------------------------------------------------


def test_warm_up_blocks_signals_until_enough_minutes():
    engine = SignalEngine(cfg(warmup_minutes=3), 0.1)
    for t in range(2):
        d, r = engine.on_minute(bar(t, **GOOD_BREAKIN))
        assert d.reason == "WARMUP" and r["signal_breakin_long"] == 0
    d, _ = engine.on_minute(bar(2, **GOOD_BREAKIN))
    assert d.action == ENTER_LONG


def test_cooldown_after_a_position_closes_either_side():
    engine = SignalEngine(cfg(cooldown_minutes=3), 0.1)
    d, _ = engine.on_minute(bar(0, **GOOD_BREAKIN))
    engine.position_opened(d.candidate, 98.4, 60_000)
    engine.position_closed(ts_ms=90_000)  # closed at 00:01:30 -> no entry before 00:04:30
    d, _ = engine.on_minute(bar(2, **GOOD_BREAKIN))  # decided at 00:03:00
    assert d.reason == "COOLDOWN:BREAKIN_LONG"
    d, _ = engine.on_minute(bar(3, **GOOD_BREAKIN))  # 00:04:00
    assert d.action == HOLD
    d, _ = engine.on_minute(bar(4, **GOOD_BREAKIN))  # 00:05:00
    assert d.action == ENTER_LONG


def test_kill_switch_blocks_entries_and_exits_a_position():
    engine = SignalEngine(cfg(), 0.1)
    d, _ = engine.on_minute(bar(0, **GOOD_BREAKIN), Context(kill_switch=True))
    assert d.action == HOLD and d.reason == "KILL_SWITCH:BREAKIN_LONG"
    d, _ = engine.on_minute(bar(1, **GOOD_BREAKIN))
    engine.position_opened(d.candidate, 98.4, 120_000)
    d, _ = engine.on_minute(bar(2), Context(kill_switch=True))
    assert (d.action, d.exit_reason) == (EXIT, "kill")


def test_flip_on_an_opposite_signal_closes_then_opens():
    engine = SignalEngine(cfg(), 0.1)
    d, _ = engine.on_minute(bar(0, **GOOD_BREAKIN))
    engine.position_opened(d.candidate, 98.4, 60_000)
    assert engine.phase == "LONG"
    d, r = engine.on_minute(bar(1, **SHORT_BREAKIN))
    assert d.action == ENTER_SHORT and d.close_first and d.reason == "FLIP:BREAKIN_SHORT"
    no_flip = SignalEngine(cfg(enable_flip_on_signal="false"), 0.1)
    d, _ = no_flip.on_minute(bar(0, **GOOD_BREAKIN))
    no_flip.position_opened(d.candidate, 98.4, 60_000)
    d, _ = no_flip.on_minute(bar(1, **SHORT_BREAKIN))
    assert d.action == HOLD and d.reason == "IN_POSITION:BREAKIN_SHORT"


def test_breakout_position_exits_on_a_close_back_inside():
    engine = SignalEngine(cfg(accept_outside_k=1, enable_retest_mode="false"), 0.1)
    d, _ = engine.on_minute(bar(0, o=101.9, h=102.6, l=101.9, c=102.5, poc=100.0, vah=102.0, val=98.0, of=1.0, ofn=0.3, qimb=0.3))
    engine.position_opened(d.candidate, 102.5, 30_000)
    d, _ = engine.on_minute(bar(1, o=102.5, h=102.7, l=102.1, c=102.2))
    assert d.action == HOLD
    # Back at the locked level with buyers still in control (no failed-breakout initiative short).
    d, _ = engine.on_minute(bar(2, o=102.2, h=102.3, l=101.8, c=102.0, of=1.0, ofn=0.3, qimb=0.3))
    assert (d.action, d.reason) == (EXIT, "EXIT_CLOSE_BACK_INSIDE")


def test_no_valid_target_means_no_trade_with_a_reason():
    # Break-in long closing above VAH: TP1 (POC) and TP2 (VAH) both below the entry.
    m = bar(o=98.5, h=102.6, l=97.8, c=102.5, poc=100.0, vah=102.0, val=98.0, of=1.0, ofn=0.2, qimb=0.2, trades=[98.0, 102.5])
    d, r = SignalEngine(cfg(), 0.1).on_minute(m)
    assert r["signal_breakin_long"] == 1
    assert d.action == HOLD and d.reason == "BREAKIN_LONG:NO_VALID_TARGET"


def test_signal_record_has_the_spec_columns():
    _, r = SignalEngine(cfg(), 0.1).on_minute(bar(**GOOD_BREAKIN))
    assert list(r) == ["ts_min", *FLAGS, "acceptance_state", "chosen_action", "reason_code", "feature_snapshot"]
    state = json.loads(r["acceptance_state"])
    assert set(state) == {"up", "down", "retest", "breakin_pending", "state"}


def test_targets_at_a_poc_between_two_ticks_round_half_up():
    # A POC in the middle of an odd-width bin (100.05) is TP1 at 100.1; a short's at 100.1 too.
    d, _ = SignalEngine(cfg(), 0.1).on_minute(bar(**{**GOOD_BREAKIN, "poc": 100.05}))
    assert d.candidate.tp1 == 100.1
    d, _ = SignalEngine(cfg(), 0.1).on_minute(bar(**{**SHORT_BREAKIN, "poc": 100.05}))
    assert d.candidate.tp1 == 100.1


def test_bvc_stands_in_for_the_order_flow_when_configured():
    from auction_trader.core.minute import minute_from_row

    class Row:
        ts_min, open, high, low, close, poc, vah, val, va_valid = 0, 98.5, 98.6, 97.8, 98.4, 100.0, 102.0, 98.0, True
        of_1m, of_norm_1m, ambiguous_trade_frac_1m, bvc_net, volume = -2.0, -0.5, 0.9, 1.5, 3.0
        qimb_close, qimb_ema_60s, spread_avg_60m, bid_px_close, ask_px_close = 0.0, 0.0, 0.1, 98.4, 98.5

    inferred = minute_from_row(Row, cfg(), trades_at([98.0, 97.8, 98.4]))
    assert (inferred.of_1m, inferred.of_norm_1m, inferred.ambiguous_frac) == (-2.0, -0.5, 0.9)
    bvc = minute_from_row(Row, cfg(use_bvc="true"), trades_at([98.0, 97.8, 98.4]))
    assert (bvc.of_1m, bvc.of_norm_1m, bvc.ambiguous_frac) == (1.5, 0.5, 0.0)
    assert (bvc.bid, bvc.ask) == (98.4, 98.5)
    # sellers by inference, buyers by BVC: only the BVC reading sees a break-in long
    assert SignalEngine(cfg(), 0.1).on_minute(inferred)[0].action == HOLD
    assert SignalEngine(cfg(use_bvc="true"), 0.1).on_minute(bvc)[0].action == ENTER_LONG


# -- time stop, sizing, guards -------------------------------------------------------------------------------


def test_time_stop_starts_at_the_first_close_and_trails_while_profitable():
    ts = TimeStop(max_hold_minutes=60, extend_if_profitable=True)
    assert not ts.on_close(60_000, -5.0), "first close after the fill starts the clock"
    assert not ts.on_close(60_000 + 59 * 60_000, -5.0)
    assert not ts.on_close(60_000 + 60 * 60_000, 3.0), "profitable net of fees: keep"
    assert not ts.on_close(60_000 + 61 * 60_000, 0.5)
    assert ts.on_close(60_000 + 62 * 60_000, -0.1), "no longer profitable: exit"
    hard = TimeStop(max_hold_minutes=2, extend_if_profitable=False)
    hard.on_close(0, 0.0)
    assert not hard.on_close(60_000, 100.0) and hard.on_close(120_000, 100.0)
    assert closed_back_inside(LONG, 102.0, 102.0) and not closed_back_inside(SHORT, 97.9, 98.0)


def test_profitable_net_of_fees_is_judged_at_the_market_exit_price():
    # Long 0.4 BTC entered at 50,000 as maker (-1 bp: -2.0 USDT paid, a rebate). The close's mid is
    # 50,010 but a market exit sells at the bid 50,009.9 minus 1 tick = 50,009.8:
    # 0.4 x 9.8 = 3.92 gross, + 2.0 rebate back out (-(-2.0)), - 0.4 x 50,009.8 x 5 bp = 10.00196.
    px = market_exit_price(LONG, 50_009.9, 50_010.1, 1, 0.1)
    assert px == pytest.approx(50_009.8)
    assert market_exit_price(SHORT, 50_009.9, 50_010.1, 2, 0.1) == pytest.approx(50_010.3)
    net = net_exit_pnl(LONG, 0.4, 50_000.0, px, -2.0, 0.0005)
    assert net == pytest.approx(3.92 + 2.0 - 10.00196)
    # At the mid (the old reading) a 30-tick move looks profitable; at the exit price it is not
    # enough for a taker entry: 0.4 x 2.9 - 10 - 10.0006 < 0.
    assert net_exit_pnl(LONG, 0.4, 50_000.0, market_exit_price(LONG, 50_002.9, 50_003.1, 0, 0.1), 10.0, 0.0005) < 0
    assert net_exit_pnl(LONG, 0.4, 50_000.0, math.nan, 0.0, 0.0005) == 0.0


def test_sizing_worked_example_20_1():
    size = position_size(10_000, 0.02, 50_000, 49_500, 0.001, 10)
    assert size.steps == 400 and size.qty == pytest.approx(0.4)
    assert size.notional == pytest.approx(20_000) and size.leverage == pytest.approx(2.0)
    assert not size.leverage_capped and size.reason == "ok"


def test_sizing_caps_leverage_and_refuses_below_one_step():
    size = position_size(10_000, 0.02, 50_000, 49_990, 0.001, 10)  # 20 BTC uncapped
    assert size.leverage_capped and size.reason == "leverage cap hit"
    assert size.steps == 2_000 and size.notional == pytest.approx(100_000)
    tiny = position_size(10, 0.001, 50_000, 49_000, 0.001, 10)  # 0.00001 BTC
    assert tiny.steps == 0 and tiny.reason == "below one qty step"
    assert position_size(10_000, 0.02, 50_000, 50_000, 0.001, 10).reason == "no stop distance"


def test_partial_exit_split_20_2_and_one_step_positions():
    assert tp_split(400, 0.30) == (120, 280), "0.4 BTC -> 0.12 at TP1, 0.28 at TP2"
    assert tp_split(1, 0.30) == (0, 1), "one contract: all at TP2"
    assert tp_split(2, 0.30) == (1, 1), "at least one at TP1 when more than one"
    assert tp_split(5, 0.30) == (2, 3), "1.5 rounds half up"
    assert tp_split(10, 0.0) == (0, 10)


def test_the_rest_of_a_capped_entry_is_trimmed_to_the_cap():
    # 9,900 equity at 10x = 99,000 of room; 1.0 BTC held at 50,000 leaves 49,000: 0.979 at 50,010
    # (49,000 / 50,010 = 0.97980...), although 0.980 were still to buy.
    assert remainder_within_cap(980, 9_900, 1.0, 50_000, 50_010, 0.001, 10) == 979
    assert remainder_within_cap(500, 9_900, 1.0, 50_000, 50_010, 0.001, 10) == 500, "fits: unchanged"
    assert remainder_within_cap(500, 4_000, 1.0, 50_000, 50_010, 0.001, 10) == 0, "no room left"


def test_heat_is_risk_to_the_current_stop_over_equity():
    # specv2 §20.1's trade: 0.4 BTC, 500 to the stop, 10,000 equity -> 2% = risk_pct.
    assert heat([(0.4, 50_000, 49_500)], 10_000) == pytest.approx(0.02)
    # Leverage-capped (2 BTC at 50,000 = 10x, stop 10 away): 20 / 10,000 = 0.2%, not the 1219%
    # that dividing by the (nearly nothing) free margin gave.
    assert heat([(2.0, 50_000, 49_990)], 10_000) == pytest.approx(0.002)
    assert heat([(0.28, 50_000, 50_000)], 10_000) == 0.0, "stop at breakeven after TP1: no risk"
    assert heat([], 10_000) == 0.0 and heat([(0.4, 50_000, 49_500)], 0.0) == math.inf


def test_cooldown_guard():
    cd = Cooldown(3)
    assert cd.allows(0)
    cd.position_closed(1_000)
    assert not cd.allows(180_999) and cd.allows(181_000)


def test_kill_switch_across_a_utc_midnight_with_funding():
    guard = DailyLossGuard(max_daily_loss=0.05)
    day = 86_400_000
    t0 = 19_723 * day  # 2024-01-01 00:00 UTC
    assert not guard.on_minute(t0 + 60_000, 10_000, 10_000)
    assert not guard.on_minute(t0 + 8 * 3_600_000, 9_600, 9_600), "-400 incl. fees: under 5%"
    # Funding at 08:00 takes 120 more: -520 < -500 -> kill until midnight.
    assert guard.on_minute(t0 + 8 * 3_600_000 + 60_000, 9_480, 9_480)
    assert guard.on_minute(t0 + day - 60_000, 9_480, 9_480)
    # The first decision of the next UTC day frees entries; the new day's start is 9,480.
    assert not guard.on_minute(t0 + day, 9_480, 9_480)
    assert guard.day_start_balance == 9_480 and guard.day_pnl_floor == pytest.approx(-474.0)
    assert guard.on_minute(t0 + day + 60_000, 9_000, 9_000), "-480 < -474"


# -- failed breakout and breakout: each failing condition ------------------------------------------------

# A poke above VAH 102.0 to 102.4, trading through 102.0, closing back inside at 101.7, flat flow.
# After two closes above VAH 102.0 (k = 2, locked 102.0, highest high 102.5): a bar reaching
# 102.4, trading through 102.0, closing back inside at 101.7, flat flow.
GOOD_FAILBREAK = dict(o=102.3, h=102.4, l=101.6, c=101.7, poc=100.0, vah=102.0, val=98.0, of=0.0, ofn=-0.05, qimb=0.0,
                      trades=[102.3, 102.0, 102.4, 101.6, 101.7])  # fmt: skip


def _accepted_above() -> SignalEngine:
    engine = SignalEngine(cfg(accept_outside_k=2, enable_retest_mode="false", use_qimb="false"), 0.1)
    flat = dict(poc=100.0, vah=102.0, val=98.0, of=0.0, ofn=0.0, qimb=0.0)
    engine.on_minute(bar(0, o=101.9, h=102.3, l=101.9, c=102.2, trades=[101.9, 102.0, 102.3, 102.2], **flat))
    engine.on_minute(bar(1, o=102.2, h=102.5, l=102.1, c=102.3, **flat))
    assert engine.up.count == 2 and engine.up.fired
    return engine


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (dict(h=102.0, o=102.0, trades=[102.0, 101.6, 101.7]), "high == the locked level is no poke beyond it (strict >)"),
        (dict(c=102.1, trades=[102.3, 102.0, 102.4, 101.6, 102.1]), "a close still above 102.0 does not end the acceptance"),
        (dict(trades=[102.3, 102.4, 101.6, 101.7]), "no trade within a spread of 102.0: no crossing"),
        (dict(of=0.5, ofn=0.05, qimb=0.05), "buyers still in control: no failed-breakout initiative"),
    ],
)
def test_failed_breakout_needs_every_condition(change, why):
    _, record = _accepted_above().on_minute(bar(2, **{**GOOD_FAILBREAK, **change}))
    assert record["signal_failbreak_short"] == 0, why
    d, record = _accepted_above().on_minute(bar(2, **GOOD_FAILBREAK))
    assert record["signal_failbreak_short"] == 1 and d.reason == "FAILBREAK_SHORT"
    assert (d.candidate.stop, d.candidate.tp1, d.candidate.tp2) == (102.7, 100.0, 98.0), "beyond the run's 102.5"
    # Without the acceptance before it the same bar is only a poke: a break-in candidate, never C.
    _, record = SignalEngine(cfg(), 0.1).on_minute(bar(**GOOD_FAILBREAK))
    assert record["signal_failbreak_short"] == 0


def test_breakout_needs_k_closes_initiative_on_the_kth_and_no_reset():
    up = dict(poc=100.0, vah=102.0, val=98.0)
    strong = dict(of=1.0, ofn=0.3, qimb=0.3)
    # k = 3: two closes outside are not enough.
    engine = SignalEngine(cfg(accept_outside_k=3, enable_retest_mode="false"), 0.1)
    engine.on_minute(bar(0, o=101.9, h=102.5, l=101.9, c=102.4, **up, **strong))
    _, r = engine.on_minute(bar(1, o=102.4, h=102.8, l=102.3, c=102.7, **up, **strong))
    assert r["signal_breakout_long"] == 0 and engine.up.count == 2
    # A close back inside resets: the third close outside starts again at 1.
    engine.on_minute(bar(2, o=102.7, h=102.7, l=101.5, c=101.8, **up, **strong))
    _, r = engine.on_minute(bar(3, o=101.8, h=102.6, l=101.9, c=102.5, **up, **strong))
    assert r["signal_breakout_long"] == 0 and engine.up.count == 1
    # Without initiative on the k-th close there is no breakout, and the sequence does not fire later.
    weak = SignalEngine(cfg(accept_outside_k=2, enable_retest_mode="false"), 0.1)
    weak.on_minute(bar(0, o=101.9, h=102.5, l=101.9, c=102.4, **up, **strong))
    _, r = weak.on_minute(bar(1, o=102.4, h=102.8, l=102.3, c=102.7, **up, of=-1.0, ofn=-0.3, qimb=-0.3))
    assert r["signal_breakout_long"] == 0
    d, r = weak.on_minute(bar(2, o=102.7, h=103.0, l=102.6, c=102.9, **up, **strong))
    assert r["signal_breakout_long"] == 0 and d.action == HOLD, "fires once per sequence, at k"
