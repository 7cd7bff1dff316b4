"""``run_live.py --paper --dashboard`` end to end: a real paper node on the in-repo Bybit stand-in
(tests/bybit_standin), its dashboard served from the node's own process, driven in headless
Chromium (selenium, as tests/test_dashboard_browser.py). The node warms up from a pre-seeded
recording of a few minutes, short of ``warmup_minutes``, so activation is refused; the test waits for
the first minute the node closes live and sees it drawn without a reload; then it stops the node
(SIGINT) and checks the dashboard went with it and that no unfinished minute was stored.

Also: the node's hook stores a ``features_1m`` row only once its minute is behind the sequencer's
watermark (the strategy's ``on_stop`` closes the unfinished minute, as a backtest does at the end of
its data), and ``--dashboard-host`` off loopback needs the token.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from auction_trader.features import load_ticks
from auction_trader.instrument import BTCUSDT
from auction_trader.live.node import DashboardOptions, NodeHooks
from auction_trader.live.sequencer import MINUTE_NS
from tests.live_harness import NodeProcess, endpoint_args, preseed, rows, set_args, standin  # noqa: F401 (fixture)
from tests.test_dashboard_browser import PROFILE_DRAWN, ARTIFACTS, browser, console_errors, open_page, price_probe, wait  # noqa: F401 (fixture)

standin_mod = pytest.importorskip("tests.bybit_standin", reason="the Bybit stand-in (tests/bybit_standin) is not in this tree")

WARMUP = 30  # minutes; the recording holds 4, so activation is refused
SETTINGS = ["warmup_minutes=30", "rolling_window_minutes=4", "spread_lookback_minutes=4", "min_va_bins=1", "minute_grace_ms=2000"]
PROFILE = PROFILE_DRAWN


def test_paper_node_dashboard_draws_refuses_activation_and_pushes_a_live_minute(standin, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    data = tmp_path / "live"
    preseed(data, 4)
    started_min_ms = time.time_ns() // MINUTE_NS * MINUTE_NS // 1_000_000  # this minute holds live ticks
    node = NodeProcess(["--paper", "--data-dir", str(data), *endpoint_args(standin), *set_args(SETTINGS), "--dashboard", "--dashboard-port", "0"])
    url = None
    try:
        m = node.wait_for(r"^dashboard: (http://127\.0\.0\.1:\d+/run/live)$", 30)
        assert m, node.output[-3000:]
        url = m.group(1)
        warm = node.wait_for(r"warm-up: \d+ ticks .*; (\d+)/30 minutes covered", 30)
        assert warm and 3 <= int(warm.group(1)) < WARMUP, node.output[-3000:]

        open_page(browser, url)
        wait(browser, PROFILE, "the live profile histogram")
        price_probe(browser)  # candles, the VAH / VAL / POC lines and the profile's bars, read back from the pixels
        assert browser.execute_script("return document.getElementById('mode').textContent") == "paper"
        assert f"/{WARMUP} min" in browser.find_element(By.ID, "status").text

        browser.find_element(By.ID, "ctl-activate").click()
        answer = wait(browser, "const t = window.AT_CONTROL_ANSWER; return t && !t.includes('asking') ? t : null", "the node's answer")
        assert re.fullmatch(rf"activate refused: warm-up incomplete: \d+ of {WARMUP} minutes", answer), answer
        assert node.wait_for(r"^control: ", 0.5) is None, "a refused activation changes nothing"
        wait(browser, "return document.getElementById('alerts').textContent.includes('refused')", "the refusal in the alert feed")
        assert "[object Object]" not in browser.find_element(By.ID, "alerts").text, "alert details are written out"
        assert browser.execute_script("const e = document.getElementById('summary'); return e.scrollWidth <= e.clientWidth"), "the run panel fits"
        browser.save_screenshot(str(ARTIFACTS / "node-refused.png"))

        # The first minute holding live ticks closes at its boundary + 2 s of grace: pushed, drawn.
        browser.execute_script("window.NOT_RELOADED = 1")
        head = wait(browser, f"return window.AT_PUSH && window.AT_PUSH.head >= {started_min_ms} ? window.AT_PUSH.head : null", "a live minute on the page", seconds=70)
        assert browser.execute_script("return window.NOT_RELOADED") == 1
        assert browser.execute_script("return window.AT_DRAWN.price.last") == head
        wait(browser, PROFILE, "the profile after the push")
        assert [e for e in console_errors(browser) if not ("/api/control/live?command=activate" in e and "409" in e)] == []
        browser.save_screenshot(str(ARTIFACTS / "node-live.png"))
    finally:
        rc = node.stop()
    assert rc == 0, node.output[-3000:]
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, timeout=2)  # the dashboard stopped with the node

    # Every stored minute is whole: its trade count is the recording's, the last one too.
    features = rows(data, "features_1m")
    assert features and max(f["ts_min"] for f in features) >= started_min_ms
    recorded: dict[int, int] = {}
    for ts in load_ticks(data / "catalog", BTCUSDT.instrument_id).trade_ts.tolist():
        recorded[ts // MINUTE_NS * 60_000] = recorded.get(ts // MINUTE_NS * 60_000, 0) + 1
    assert re.search(r"stopped: \d+ ticks recorded, 0 late", node.output), node.output[-2000:]
    assert {f["ts_min"]: f["trade_count"] for f in features} == {k: recorded.get(k, 0) for k in (f["ts_min"] for f in features)}


def test_features_row_stored_only_once_its_minute_is_behind_the_watermark():
    stored: list[tuple[str, int]] = []
    minute = 1_700_000_040 * 1_000_000_000 // MINUTE_NS * MINUTE_NS
    node = SimpleNamespace(muted=False, sequencer=SimpleNamespace(watermark=minute + MINUTE_NS - 2), record=lambda t, r: stored.append((t, r["ts_min"])))
    hooks = NodeHooks(node)
    ms = minute // 1_000_000
    hooks.record("features_1m", {"ts_min": ms})  # a tick at the minute's last ns may still come
    assert stored == []
    node.sequencer.watermark += 1  # every tick before the boundary is released: the minute is closed
    hooks.record("features_1m", {"ts_min": ms})
    hooks.record("features_1m", {"ts_min": ms - 60_000})
    assert stored == [("features_1m", ms), ("features_1m", ms - 60_000)]


def test_dashboard_off_loopback_needs_the_token(monkeypatch, capsys):
    import run_live  # noqa: PLC0415

    monkeypatch.delenv("AUCTION_TRADER_DASHBOARD_TOKEN", raising=False)
    assert run_live.main(["--paper", "--dashboard", "--dashboard-host", "0.0.0.0"]) == 1
    assert "set AUCTION_TRADER_DASHBOARD_TOKEN (16+ characters)" in capsys.readouterr().err
    monkeypatch.setenv("AUCTION_TRADER_DASHBOARD_TOKEN", "x" * 16)
    opts = run_live.dashboard_options(run_live.build_parser().parse_args(["--paper", "--dashboard", "--dashboard-host", "0.0.0.0", "--dashboard-port", "9"]))
    assert (opts.host, opts.port, opts.token) == ("0.0.0.0", 9, "x" * 16)
    assert "x" * 16 not in repr(opts)
    assert run_live.dashboard_options(run_live.build_parser().parse_args(["--paper", "--dashboard"])) == DashboardOptions("127.0.0.1", 8050, "x" * 16)
    assert run_live.main(["--paper", "--dashboard-port", "9000"]) == 1
    assert "--dashboard-host / --dashboard-port need --dashboard" in capsys.readouterr().err
