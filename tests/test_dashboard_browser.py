"""The dashboard's pages in a real headless Chromium (Debian's chromium + chromium-driver, driven by
selenium; nothing is downloaded at run time), against the test run and grid served by uvicorn on a
free 127.0.0.1 port. Each view must load without console errors; screenshots go to
``tests/artifacts/`` for a person to look at. Page load times are printed; the cold open's is
bounded generously (the target is measured by benchmarks/dashboard_bench.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from auction_trader.dashboard.app import create_app
from tests.dashboard_fixture import copy_run, dash  # noqa: F401 (fixture)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 30


def _browser_missing() -> str | None:
    missing = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    if not missing:
        return None
    return f"{', '.join(missing)} not found: install Debian's chromium and chromium-driver (bash setup.sh does, as root: apt-get install chromium chromium-driver)"


@pytest.fixture(scope="module")
def server(dash, tmp_path_factory):  # noqa: F811
    import uvicorn  # noqa: PLC0415

    root = tmp_path_factory.mktemp("browser") / "runs"
    shutil.copytree(dash.root, root, ignore=shutil.ignore_patterns("grid-old"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", root
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,2000", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(WAIT_S)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def wait(driver, script: str, what: str, seconds: float = WAIT_S):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def open_page(driver, url: str) -> float:
    driver.get(url)
    wait(driver, "return window.AT_READY === true || (window.AT_ERRORS || []).length > 0", f"{url} to load")
    errors = driver.execute_script("return window.AT_ERRORS || []")
    assert errors == [], errors
    return driver.execute_script("return window.AT_LOAD_MS || performance.now()")


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_index_links_every_run_and_grid(server, browser):
    base, _ = server
    open_page(browser, base + "/")
    links = browser.execute_script("return [...document.querySelectorAll('main a')].map(a => a.getAttribute('href'))")
    assert "/run/run-a" in links and "/grid/grid-a" in links
    assert console_errors(browser) == []
    browser.save_screenshot(str(ARTIFACTS / "index.png"))


#: The trading view's profile histogram is on its canvas (``window.AT_DRAWN`` counts what each
#: drawing put on screen; the probes below read the pixels back).
PROFILE_DRAWN = "const p = (window.AT_DRAWN || {}).profile; return !!p && p.bars > 0"
FOOTPRINT_DRAWN = "const f = (window.AT_DRAWN || {}).footprint; return !!f && f.cells > 0"

#: What the price chart shows, read back from its pixels (Lightweight Charts' own screenshot of the
#: chart, and the profile's canvas): at 25 of the visible minutes, is the VAH / VAL / POC line's
#: colour within 2 px (3 across: the POC is dotted) of where its value puts it; how many pixels of
#: the profile canvas are value-area blue and POC orange; how far the profile's value area is from where the chart's price
#: scale puts it now (the histogram shares the candles' price axis).
PRICE_PROBE = """
const c = window.AT_CHARTS.price, shot = c.chart.takeScreenshot(), g = shot.getContext('2d');
const left = c.chart.priceScale('left').width(), ts = c.chart.timeScale(), vis = ts.getVisibleRange();
const px = g.getImageData(0, 0, shot.width, shot.height).data, W = shot.width;
// A 1-px line between two pixel rows is blended with the background: its hue, not its exact colour.
const blue = (i) => px[i + 2] > 110 && px[i + 2] - px[i] > 50 && px[i + 2] > px[i + 1];
const orange = (i) => Math.abs(px[i] - 240) + Math.abs(px[i + 1] - 136) + Math.abs(px[i + 2] - 62) < 60;
const near = (x, y, like) => { for (let dy = -2; dy <= 2; dy++) for (let dx = -3; dx <= 3; dx++) { const X = Math.round(x) + dx, Y = Math.round(y) + dy; if (X >= 0 && Y >= 0 && X < W && like((Y * W + X) * 4)) return true; } return false; };
const lines = {};
for (const [name, rgb] of [['VAH', blue], ['VAL', blue], ['POC', orange]]) {
  const all = c.lines[name].data().filter((p) => p.value !== undefined && p.time > vis.from && p.time < vis.to), step = Math.max(1, Math.floor(all.length / 25));
  const pts = all.filter((_, i) => i % step === Math.floor(step / 2));
  lines[name] = [pts.filter((p) => near(left + ts.timeToCoordinate(p.time), c.lines[name].priceToCoordinate(p.value), rgb)).length, pts.length];
}
const cv = document.getElementById('profile'), d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
let va = 0, poc = 0;
for (let i = 0; i < d.length; i += 4) { if (d[i + 3] > 150 && Math.abs(d[i] - 88) < 8 && Math.abs(d[i + 1] - 166) < 8 && d[i + 2] > 240) va++; if (d[i + 3] > 200 && d[i] > 230 && Math.abs(d[i + 1] - 136) < 8 && d[i + 2] < 70) poc++; }
const pr = window.AT_DRAWN.profile, offset = Math.max(Math.abs(pr.va_px[0] - c.candles.priceToCoordinate(pr.va[1])), Math.abs(pr.va_px[1] - c.candles.priceToCoordinate(pr.va[0])));
return { candles: c.candles.data().length, visible: [vis.from, vis.to], lines, va_px: va, poc_px: poc, profile_offset_px: offset };
"""

#: Where (in px from the price chart's top left) a fill of the visible range sits, or null.
FILL_TARGET = """
const c = window.AT_CHARTS.price, el = document.getElementById('price-chart'), ts = c.chart.timeScale();
const left = c.chart.priceScale('left').width(), H = el.clientHeight - ts.height();
for (const f of window.AT_DRAWN.price.fills) {
  const x = ts.timeToCoordinate(f.ts_min / 1000); if (x === null || left + x < left + 10 || left + x > el.clientWidth - 10) continue;
  const y = c.candles.priceToCoordinate(f.price);
  return { x: left + x, y: Math.max(20, Math.min(H - 20, y === null ? H / 2 : y)), w: el.clientWidth, h: el.clientHeight, reason: f.reason };
}
return null;
"""


def price_probe(driver) -> dict:
    """The price chart's pixels read back (:data:`PRICE_PROBE`), asserted drawn: candles, each VA
    line where its values put it, the profile's value-area and POC bars."""
    probe = driver.execute_script(PRICE_PROBE)
    assert probe["candles"] > 0, probe
    for name, (hits, tried) in probe["lines"].items():
        assert tried > 0 and hits >= 0.8 * tried, (name, probe)
    assert probe["va_px"] > 200 and probe["poc_px"] > 10, probe
    assert probe["profile_offset_px"] < 1.5, f"the profile's value area is not where the price scale puts it: {probe}"
    return probe


def hover_a_fill(driver) -> str:
    """Moves the mouse onto a fill of the price chart (scrolling to the first round trip when none
    is in view) and returns the tooltip's text."""
    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    target = driver.execute_script(FILL_TARGET)
    if target is None:
        driver.find_element(By.CSS_SELECTOR, "#trades tr[data-ts]").click()
        target = wait(driver, FILL_TARGET, "a fill in view")
    chart = driver.find_element(By.ID, "price-chart")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    ActionChains(driver).move_to_element_with_offset(chart, int(target["x"] - target["w"] / 2), int(target["y"] - target["h"] / 2)).perform()
    text = wait(driver, "const t = document.getElementById('tip'); return t.style.display === 'block' && t.textContent.includes('reason:') ? t.textContent : null", "the fill's tooltip", seconds=5)
    assert target["reason"] in text, (target, text)
    return text


def test_trading_view_draws_profile_va_lines_footprint_and_fill_reasons(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    base, _ = server
    ms = open_page(browser, base + "/run/run-a")
    print(f"\ntrading view of run-a ready {ms:.0f} ms after navigation start")
    wait(browser, PROFILE_DRAWN, "the profile histogram")
    probe = price_probe(browser)
    m = browser.execute_script("return fetch('/api/minutes/run-a').then(r => r.json()).then(m => m.ts_min.length)")
    assert probe["candles"] == m
    # The page loads no plotly.js: the trading view is Lightweight Charts and canvases.
    assert browser.execute_script("return typeof window.Plotly") == "undefined"
    assert browser.execute_script("return performance.getEntriesByType('resource').filter(e => e.name.includes('plotly')).length") == 0
    # The tiles are coloured by their thresholds.
    assert browser.execute_script("return document.getElementById('t-amb').className").split()[-1] in ("green", "amber", "red")
    wait(browser, FOOTPRINT_DRAWN, "the footprint")
    # Hover a fill: the tooltip carries its reason code.
    hover_a_fill(browser)
    browser.save_screenshot(str(ARTIFACTS / "run.png"))
    # A footprint cell's tooltip: sell × buy of that minute and price.
    fp = browser.find_element(By.ID, "fp-canvas")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", fp)
    ActionChains(browser).move_to_element(fp).perform()
    wait(browser, "return document.getElementById('tip').textContent.includes('delta')", "the footprint's tooltip", seconds=5)
    # The slider moves the profile to another minute; the exchange-side footprint draws too.
    before = browser.execute_script("return [document.getElementById('slider').value, window.AT_DRAWN.profile.ts_min]")
    browser.find_element(By.ID, "prev").click()
    wait(browser, f"return document.getElementById('slider').value != {before[0]}", "the slider to move")
    wait(browser, f"return window.AT_DRAWN.profile && window.AT_DRAWN.profile.ts_min === {before[1]} - 60000", "the profile of the minute before")
    browser.find_element(By.ID, "fp-exchange").click()
    wait(browser, "return document.getElementById('fp-note').textContent.includes('exchange taker side')", "the exchange-side footprint")
    assert browser.execute_script("return window.AT_DRAWN.footprint.side") == "exchange"
    # The toggles hide and show the profile and the VA lines.
    browser.find_element(By.ID, "tg-profile").click()
    wait(browser, "return window.AT_DRAWN.profile === null", "the profile hidden")
    browser.find_element(By.ID, "tg-profile").click()
    wait(browser, PROFILE_DRAWN, "the profile shown again")
    browser.find_element(By.ID, "tg-lines").click()
    assert browser.execute_script("return Object.values(window.AT_CHARTS.price.lines).map(l => l.options().visible)") == [False] * 3
    browser.find_element(By.ID, "tg-lines").click()
    assert browser.execute_script("return Object.values(window.AT_CHARTS.price.lines).map(l => l.options().visible)") == [True] * 3
    browser.find_element(By.ID, "tg-marks").click()
    assert browser.execute_script("return window.AT_CHARTS.price.candles.markers().length") == 0
    browser.find_element(By.ID, "tg-marks").click()
    assert browser.execute_script("return window.AT_CHARTS.price.candles.markers().length") > 0
    assert console_errors(browser) == []
    browser.execute_script("document.getElementById('footprint').scrollIntoView()")
    browser.save_screenshot(str(ARTIFACTS / "run-footprint.png"))


def test_trading_view_opens_cold_within_a_bound(server):
    """A fresh Chromium (new profile, empty cache) opening the trading view: the time to its first
    complete drawing (candles, VA lines, profile, footprint, tiles: ``AT_FIRST_MS``) is bounded
    generously for a loaded 2-core machine (the target, < 2 s on the demo's 10-hour run, is what
    benchmarks/dashboard_bench.py measures and prints). With plotly.js (4.7 MB) this took 3.8-5.3 s."""
    reason = _browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    base, _ = server
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,2000"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.set_page_load_timeout(WAIT_S)
        open_page(driver, base + "/run/run-a")
        first = driver.execute_script("return window.AT_FIRST_MS")
        assert driver.execute_script(PROFILE_DRAWN) and driver.execute_script(FOOTPRINT_DRAWN)
        print(f"\ncold open of run-a: first complete drawing {first:.0f} ms after navigation start")
        assert first < 4000, f"the trading view took {first:.0f} ms to draw in a fresh browser"
    finally:
        driver.quit()


def test_grid_view_sorts_filters_compares_and_draws_the_heatmap(server, browser):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    base, _ = server
    ms = open_page(browser, base + "/grid/grid-a")
    print(f"\ngrid view ready {ms:.0f} ms after navigation start")
    rows = "return [...document.querySelectorAll('#grid-table tbody tr')]"
    assert browser.execute_script(rows + ".length") == 4
    col = browser.execute_script("return [...document.querySelectorAll('#grid-table thead tr:first-child th')].findIndex(th => th.dataset.col === 'm:net_pnl')")
    values = f"return [...document.querySelectorAll('#grid-table tbody tr')].map(tr => parseFloat(tr.children[{col}].textContent.replace(/,/g, '')))"
    browser.find_element(By.CSS_SELECTOR, "th[data-col='m:net_pnl']").click()
    asc = browser.execute_script(values)
    assert asc == sorted(asc)
    browser.find_element(By.CSS_SELECTOR, "th[data-col='m:net_pnl']").click()
    assert browser.execute_script(values) == sorted(asc, reverse=True)
    box = browser.find_element(By.CSS_SELECTOR, "tr.filters input[data-col='p:alpha_bin']")
    box.send_keys("0.2")
    box.send_keys("\t")
    wait(browser, rows + ".length === 2", "the filter")
    browser.find_element(By.ID, "clear").click()
    for k in range(2):  # each tick redraws the table: find the boxes again
        browser.find_elements(By.CSS_SELECTOR, "input.tick")[k].click()
    browser.find_element(By.ID, "compare").click()
    wait(browser, "return document.querySelectorAll('#cmp-table tbody tr').length > 10", "the comparison")
    assert browser.execute_script("const d = document.getElementById('heatmap').data; return d && d[0].type === 'heatmap' && d[0].z.length === 2")
    assert browser.execute_script("return document.querySelectorAll('#heatmap .hm, #heatmap image, #heatmap .heatmaplayer').length") > 0
    assert console_errors(browser) == []
    browser.save_screenshot(str(ARTIFACTS / "grid.png"))


def test_a_new_minute_appears_without_reload(server, browser):
    base, root = server
    run = copy_run(root / "run-a", root / "growing")
    table = pq.read_table(run / "features_1m.parquet")
    pq.write_table(table.slice(0, table.num_rows - 3), run / "features_1m.parquet")
    open_page(browser, base + "/run/growing")
    browser.execute_script("window.NOT_RELOADED = 1; document.getElementById('follow').checked = true")
    before = browser.execute_script("return document.getElementById('slider').max")
    pq.write_table(table, run / "features_1m.parquet")
    wait(browser, "return (window.AT_PUSHED || 0) >= 1", "the pushed minutes")
    assert browser.execute_script("return window.NOT_RELOADED") == 1
    after = browser.execute_script("return document.getElementById('slider').max")
    assert int(after) == int(before) + 3
    wait(browser, f"return document.getElementById('slider').value == {after}", "the view to follow the new minute")
    assert console_errors(browser) == []


def test_live_node_view_refuses_activation_before_warm_up_and_shows_a_new_minute_without_reload(dash, browser, tmp_path):  # noqa: F811
    """A fake node (tests/live_fixture.py) behind ``serve_in_thread``, as ``run_live.py --dashboard``
    runs it. The minute's latency is printed (close -> on the page), and bounded generously: a
    loaded 2-core machine, not the 1 s target, which benchmarks/dashboard_bench.py measures."""
    import json  # noqa: PLC0415

    from selenium.webdriver.common.by import By  # noqa: PLC0415

    from auction_trader.config import AuctionConfig  # noqa: PLC0415
    from auction_trader.dashboard.app import serve_in_thread  # noqa: PLC0415
    from tests.dashboard_fixture import SHORT  # noqa: PLC0415
    from tests.live_fixture import FakeNode  # noqa: PLC0415

    starting = json.loads((dash.run / "metrics.json").read_text())["starting_balance"]
    node = FakeNode(dash.run, dash.catalog, tmp_path / "live", 20, 30, starting)
    handle = serve_in_thread(node.data_dir, "127.0.0.1", 0, config=AuctionConfig().with_overrides([f"{k}={v}" for k, v in SHORT.items()]))
    try:
        open_page(browser, handle.url)
        wait(browser, PROFILE_DRAWN, "the live profile")
        price_probe(browser)
        assert browser.execute_script("return document.getElementById('mode').textContent") == "paper"
        assert "warm-up 20/30 min" in browser.find_element(By.ID, "status").text
        assert browser.execute_script("return document.getElementById('follow').checked") is True
        browser.find_element(By.ID, "ctl-activate").click()
        answer = wait(browser, "const t = window.AT_CONTROL_ANSWER; return t && !t.includes('asking') ? t : null", "the node's answer")
        assert answer == "activate refused: warm-up incomplete: 20 of 30 minutes", answer
        assert browser.find_element(By.ID, "control-answer").text == answer
        browser.save_screenshot(str(ARTIFACTS / "live-refused.png"))

        browser.execute_script("window.NOT_RELOADED = 1")
        pushed = browser.execute_script("return window.AT_PUSHED || 0")
        closed_ms = node.close_minute()
        head = node.head
        wait(browser, f"return window.AT_PUSH && window.AT_PUSH.head === {head}", "the new minute on the page", seconds=15)
        push = browser.execute_script("return window.AT_PUSH")
        received, drawn = push["received"] - closed_ms, push["drawn"] - closed_ms
        print(f"\nlive minute: in the store -> on the page {received} ms (message received), {drawn} ms (drawn)")
        assert browser.execute_script("return window.NOT_RELOADED") == 1 and browser.execute_script("return window.AT_PUSHED") == pushed + 1
        assert browser.execute_script("return document.getElementById('slider').value == document.getElementById('slider').max")
        assert browser.execute_script("return window.AT_DRAWN.price.last") == head
        assert browser.execute_script("const d = window.AT_CHARTS.price.candles.data(); return d[d.length - 1].time * 1000") == head
        assert "warm-up 21/30 min" in browser.find_element(By.ID, "status").text
        assert drawn < 5000, f"a closed minute took {drawn} ms to reach the page"
        # The refusal is a 409 answer, which Chromium logs; nothing else may be.
        assert [e for e in console_errors(browser) if not ("/api/control/live?command=activate" in e and "409" in e)] == []
        browser.save_screenshot(str(ARTIFACTS / "live.png"))
    finally:
        handle.stop()
        node.stop()


def test_live_view_opened_before_the_first_minute_draws_it_when_it_closes(dash, browser, tmp_path):  # noqa: F811
    import json  # noqa: PLC0415

    from auction_trader.config import AuctionConfig  # noqa: PLC0415
    from auction_trader.dashboard.app import serve_in_thread  # noqa: PLC0415
    from tests.dashboard_fixture import SHORT  # noqa: PLC0415
    from tests.live_fixture import FakeNode  # noqa: PLC0415

    starting = json.loads((dash.run / "metrics.json").read_text())["starting_balance"]
    node = FakeNode(dash.run, dash.catalog, tmp_path / "live", 0, 30, starting)
    handle = serve_in_thread(node.data_dir, "127.0.0.1", 0, config=AuctionConfig().with_overrides([f"{k}={v}" for k, v in SHORT.items()]))
    try:
        open_page(browser, handle.url)
        assert browser.execute_script("return document.getElementById('tlabel').textContent") == "waiting for the first closed minute"
        for _ in range(3):
            node.close_minute()
        wait(browser, f"return window.AT_PUSH && window.AT_PUSH.head === {node.head}", "the first minutes", seconds=15)
        assert browser.execute_script("return window.AT_CHARTS.price.candles.data().length") == 3
        assert console_errors(browser) == []
    finally:
        handle.stop()
        node.stop()
