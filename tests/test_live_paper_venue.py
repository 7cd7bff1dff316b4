"""The paper venue is the backtest: the same ticks fed in live-sized batches give the same fills.

No sockets here: the ticks of a hand-made catalog go into :class:`PaperVenue` in batches cut at
arbitrary instants (as the live sequencer releases them), and the fills must equal, row for row,
those of one backtest run over the same catalog (specv2 §11.2). The strategy is the real
AuctionStrategy with scripted entries (tests/test_strategy.py), so the whole order lifecycle runs:
a limit entry, its timeout and market remainder, stop and targets, TP1 moving the stop.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from auction_trader.backtest.engine import load_data
from auction_trader.backtest.outputs import run_single
from auction_trader.live.paper import PaperVenue
from auction_trader.live.sequencer import MinuteSequencer
from tests.test_strategy import SEC, T0, Scripted, at, book, cfg, enter, market


def _fills_by_batches(catalog, config, script, cut_ns: int) -> tuple[list[dict], PaperVenue]:
    ticks, _, _ = load_data(catalog, config.instrument_id)
    paper = PaperVenue(config, Scripted(config, script), catalog)
    fills: list[dict] = []
    i = 0
    edge = ticks[0].ts_init + cut_ns
    while i < len(ticks):
        j = i
        while j < len(ticks) and ticks[j].ts_init < edge:
            j += 1
        fills += paper.feed(ticks[i:j])
        i = j
        edge += cut_ns
    return fills, paper


def _scenario(tmp_path):
    # Limit entry at the 00:01 close partly filled by a 1.2 print (1.0 queued ahead of us), the
    # rest at market after the timeout; the bid then rises through TP1 and falls back to the entry.
    quotes, trades = book([(0, 150, 100.0), (150, 200, 100.6), (200, 260, 100.4), (260, 420, 100.1)], step=5)
    trades.append((T0 + 77 * SEC, 100.0, 1.2, 2))
    catalog = market(tmp_path / "cat", quotes, trades)
    script = {at(0): enter(1, 100.0, 99.0, 100.6, 101.5)}
    return catalog, cfg(), script


def test_paper_fills_equal_the_backtest_fills_whatever_the_batches(tmp_path):
    catalog, config, script = _scenario(tmp_path)
    result = run_single(config, catalog, None, None, tmp_path / "bt", lambda c: Scripted(c, script), report=False, flatten_at_end=False)
    expected = pq.read_table(result.out_dir / "fills.parquet").to_pylist()
    purposes = [f["purpose"] for f in expected]
    assert purposes[:2] == ["entry", "entry"] and "tp1" in purposes and "stop" in purposes, purposes
    for cut in (137 * SEC // 1000, 3 * SEC, 61 * SEC):  # 137 ms, 3 s, a minute and a second
        fills, paper = _fills_by_batches(catalog, config, script, cut)
        assert fills == expected, f"batches of {cut / 1e9} s"
        balance = float(paper.account().balance_total().as_double())
        assert balance - config.backtest.starting_balance == pytest.approx(result.metrics["net_pnl"], abs=1e-6)
        paper.finish()


def test_sequencer_releases_in_exchange_time_and_counts_late_ticks():
    s = MinuteSequencer(grace_ns=500_000_000)
    base = 1_000 * 60 * SEC
    assert s.push(base + 2 * SEC, False, "q2")
    assert s.push(base + 1 * SEC, False, "q1")  # arrived out of order: released in order
    assert s.push(base + 2 * SEC, True, "t2")  # trade before the quote at equal times
    assert s.release(base + 2 * SEC) == ["q1"]  # cut at now - 0.5 s
    assert s.release(base + 2 * SEC + 500_000_000) == ["t2", "q2"]
    assert s.watermark == base + 2 * SEC
    assert not s.push(base + 2 * SEC - 1, True, "late")  # behind the watermark: counted, not moved
    assert (s.late, s.pending) == (1, 0)
    assert s.late_max_ms == 1e-6
    assert s.closed_minute() == base - 60 * SEC  # base + 2 s's minute is still open
    s.release(base + 61 * SEC)  # watermark 60.5 s into the minute: the minute starting at base closed
    assert s.closed_minute() == base
