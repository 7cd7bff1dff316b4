"""How fast the trading view of a 10-hour run opens, cold and warm, in headless Chromium.

    .venv/bin/python benchmarks/dashboard_bench.py [--runs runs] [--run sample] [--cold 3] [--warm 5]

Needs the demo's run (``bash setup.sh demo`` writes ``runs/sample``: 10 hours of the synthetic
sample market) and Debian's chromium + chromium-driver.

* **cold**: a fresh dashboard process (``python -m auction_trader.dashboard``), the page opened in a
  fresh browser as soon as the server answers. Nothing is cached anywhere but on disk.
* **warm**: the same page opened again in the same browser against the same server (a new
  navigation from ``about:blank``, as a trader opening it again would): the assets are at
  content-hashed ``immutable`` URLs, so nothing but the page and its JSON is asked for, and
  Chromium reuses the scripts' compiled code from its code cache.
* **reload**: then the page reloaded (F5) as many times: the browser asks again for what it
  must revalidate.

Time-to-drawn is the page's own ``window.AT_LOAD_MS``: ``performance.now()`` (ms since navigation
start) when the price chart with its volume profile, the order-flow, footprint and equity charts and
the tiles are all drawn; "first view" is ``window.AT_FIRST_MS``, when the candles with their VA
lines and profile histogram, the footprint and the tiles (what the eye lands on) are drawn: the
issue's "opens in under 2 s" is the cold first view. The baseline, measured in the same run and
browser, is a static page that loads the same chart library (lightweight-charts.js) from disk and
draws one candlestick chart of as many minutes: what any such page costs before it has read a byte
of data. The ratio is time-to-drawn / baseline. (Until the trading view moved off plotly.js, 4.7 MB
of script to parse, the cold open took 3.8-5.3 s, 2.9-4.7 s of it parsing plotly.js.)

It also prints what the first requests cost on a fresh server (each API call the page makes, timed
from Python, with its JSON size), which is where the cold time goes when it goes anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASELINE = """<!doctype html><html><head><meta charset="utf-8"><script src="{lib}"></script></head><body>
<div id="c" style="height:520px"></div><script>
const n = {n}, bars = []; let p = 42000;
for (let i = 0; i < n; i++) {{ const o = p; p += Math.sin(i) * 5; bars.push({{ time: 1704067200 + i * 60, open: o, high: Math.max(o, p) + 3, low: Math.min(o, p) - 3, close: p }}); }}
const chart = LightweightCharts.createChart(document.getElementById("c"), {{ autoSize: true }});
const s = chart.addCandlestickSeries(); s.setData(bars);
requestAnimationFrame(() => requestAnimationFrame(() => {{ window.AT_BASE_N = s.data().length; window.AT_LOAD_MS = performance.now(); window.AT_READY = true; }}));
</script></body></html>"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "auction_trader.dashboard", "--runs", str(runs), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the dashboard exited: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("the dashboard did not start within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def browser():
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,2000",
                "--allow-file-access-from-files"):  # fmt: skip
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(60)
    return driver


FIRST: list[float] = []  # AT_FIRST_MS of the trading view's loads, in order
LIB: list[tuple[int, int]] = []  # lightweight-charts.js of each trading-view load: (bytes over the wire, bytes decoded)
SCRIPTS: list[int] = []  # bytes of script decoded by each trading-view load (all .js resources)


def drawn_ms(driver, url: str | None, timeout: float = 60.0) -> float:
    """Open ``url`` (None: reload the page, as F5 does) and wait until it is drawn."""
    if url is None:
        driver.execute_script("window.AT_READY = false")
        driver.refresh()
    else:
        driver.get(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.execute_script("return [window.AT_READY === true, window.AT_LOAD_MS || null, (window.AT_ERRORS || []).join('; ')]")
        if state[2]:
            raise SystemExit(f"{url}: {state[2]}")
        if state[0]:
            drawn = driver.execute_script(
                "const d = window.AT_DRAWN; if (window.AT_BASE_N) return window.AT_BASE_N;"
                " return d && d.price && d.profile && d.footprint ? Math.min(d.price.candles, d.profile.bars, d.footprint.cells) : 0"
            )  # fmt: skip
            if drawn < 1:
                raise SystemExit(f"{url}: ready but the candles, the profile or the footprint are not drawn")
            first = driver.execute_script("return window.AT_FIRST_MS || null")
            if first is not None:
                FIRST.append(float(first))
                sizes = driver.execute_script("const e = performance.getEntriesByType('resource').find(e => e.name.endsWith('/lightweight-charts.js')); return e ? [e.transferSize, e.decodedBodySize] : null")
                LIB.append(tuple(sizes) if sizes else (-1, -1))
                SCRIPTS.append(int(driver.execute_script("return performance.getEntriesByType('resource').filter(e => /\\.js$/.test(e.name)).reduce((a, e) => a + e.decodedBodySize, 0)")))
                if driver.execute_script("return typeof window.Plotly !== 'undefined'"):
                    raise SystemExit(f"{url}: the trading view loaded plotly.js")
            return float(state[1])
        time.sleep(0.01)
    raise SystemExit(f"{url}: not drawn within {timeout:.0f} s")


def first_requests(base: str, key: str) -> list[tuple[str, float, int]]:
    """The page's requests in its order, on a fresh server: (what, seconds, bytes of JSON)."""

    def get(path: str) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=60) as r:
            body = r.read()
        return time.perf_counter() - t0, body

    out = []
    for what in ("run", "minutes", "markers"):
        dt, body = get(f"/api/{what}/{key}")
        out.append((what, dt, len(body)))
        if what == "minutes":
            minutes = json.loads(body)
        if what == "markers":
            marks = json.loads(body)
    ts = minutes["ts_min"]
    idx = len(ts) - 1
    if marks["fills"]:
        first = marks["fills"][0]["ts_ms"]
        idx = min(len(ts) - 1, max(i for i, t in enumerate(ts) if t <= first) + 20)
    t = ts[idx]
    for what, q in (("state", f"?ts={t}"), ("profile", f"?ts={t}"), ("footprint", f"?start={max(ts[0], t - 14 * 60000)}&end={t}&side=inferred&rows=24")):
        dt, body = get(f"/api/{what}/{key}{q}")
        out.append((what, dt, len(body)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="runs folder (default runs/)")
    parser.add_argument("--run", default="sample", help="the run's key under --runs (default sample, the demo's)")
    parser.add_argument("--cold", type=int, default=3, help="cold opens, each on a fresh server and browser (default 3)")
    parser.add_argument("--warm", type=int, default=5, help="warm opens, then as many reloads (default 5)")
    args = parser.parse_args()
    runs = Path(args.runs)
    if not (runs / args.run / "metrics.json").exists():
        print(f"error: no run {runs / args.run} (bash setup.sh demo writes runs/sample)", file=sys.stderr)
        return 1
    from auction_trader.dashboard.app import lightweight_charts_js  # noqa: PLC0415

    minutes = json.loads((runs / args.run / "metrics.json").read_text()).get("run", {})
    import pyarrow.parquet as pq  # noqa: PLC0415

    n_minutes = pq.ParquetFile(runs / args.run / "features_1m.parquet").metadata.num_rows
    print(f"run {args.run}: {n_minutes} minutes ({n_minutes / 60:.1f} h), catalog {minutes.get('catalog')}", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="dash-bench-"))
    try:
        baseline_page = tmp / "baseline.html"
        baseline_page.write_text(BASELINE.format(lib=lightweight_charts_js().as_uri(), n=n_minutes))

        # Where a fresh server's time goes, request by request (no browser).
        port = free_port()
        proc = start_server(runs, port)
        try:
            breakdown = first_requests(f"http://127.0.0.1:{port}", args.run)
            again = first_requests(f"http://127.0.0.1:{port}", args.run)
        finally:
            stop_server(proc)

        cold, baseline_cold, cold_first = [], [], []
        for k in range(args.cold):
            driver = browser()
            try:
                baseline_cold.append(drawn_ms(driver, baseline_page.as_uri()))
            finally:
                driver.quit()
            port = free_port()
            proc = start_server(runs, port)
            driver = browser()
            try:
                cold.append(drawn_ms(driver, f"http://127.0.0.1:{port}/run/{args.run}"))
                cold_first.append(FIRST[-1])
                cold_lib = LIB[-1]
                if k == args.cold - 1:
                    warm = []
                    for _ in range(args.warm):
                        driver.get("about:blank")
                        warm.append(drawn_ms(driver, f"http://127.0.0.1:{port}/run/{args.run}"))
                    warm_lib, warm_first = LIB[-args.warm :], FIRST[-args.warm :]
                    reload = [drawn_ms(driver, None) for _ in range(args.warm)]
                    reload_lib, reload_first = LIB[-args.warm :], FIRST[-args.warm :]
                    baseline_warm = []
                    for _ in range(args.warm):
                        driver.get("about:blank")
                        baseline_warm.append(drawn_ms(driver, baseline_page.as_uri()))
            finally:
                driver.quit()
                stop_server(proc)
            print(f"  cold open {k + 1}/{args.cold}: {cold[-1]:.0f} ms (baseline {baseline_cold[-1]:.0f} ms)", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nFirst requests on a fresh server (run {args.run}), then the same again:")
    print(f"{'request':<11}{'fresh ms':>10}{'again ms':>10}{'JSON KB':>10}")
    for (what, dt, size), (_, dt2, _) in zip(breakdown, again, strict=True):
        print(f"{what:<11}{dt * 1000:>10.0f}{dt2 * 1000:>10.0f}{size / 1024:>10.1f}")
    print(f"{'sum':<11}{sum(b[1] for b in breakdown) * 1000:>10.0f}{sum(b[1] for b in again) * 1000:>10.0f}{sum(b[2] for b in breakdown) / 1024:>10.1f}")

    med = statistics.median
    rows = [
        ("cold (fresh server + browser)", cold, baseline_cold),
        ("  first view (drawn, tiles)", cold_first, baseline_cold),
        ("warm (opened again)", warm, baseline_warm),
        ("  first view (drawn, tiles)", warm_first, baseline_warm),
        ("reload (F5)", reload, baseline_warm),
        ("  first view (drawn, tiles)", reload_first, baseline_warm),
    ]
    print(f"\nTrading view of a {n_minutes / 60:.1f}-hour run, time to drawn (ms since navigation start):")
    print(f"{'':<31}{'median':>8}{'min':>8}{'max':>8}{'baseline':>10}{'ratio':>7}{'target':>8}")
    for label, xs, base in rows:
        print(f"{label:<31}{med(xs):>8.0f}{min(xs):>8.0f}{max(xs):>8.0f}{med(base):>10.0f}{med(xs) / med(base):>7.2f}{'< 2000':>8}")
    print(f"warm opens one by one (ms): {', '.join(f'{x:.0f}' for x in warm)}")
    kb = lambda n: f"{n / 1024:.0f} KB"  # noqa: E731
    print(f"lightweight-charts.js over the wire: cold {kb(cold_lib[0])} (of {kb(cold_lib[1])}); opened again {', '.join(kb(t) for t, _ in warm_lib)}; reloaded {', '.join(kb(t) for t, _ in reload_lib)} (0: from the browser's cache)")
    print(f"script decoded per trading-view load: {kb(statistics.median(SCRIPTS))} (no plotly.js)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared machine: the ratios are the comparable figures)")
    print("baseline: a static page loading the same lightweight-charts.js from disk and drawing one candlestick chart of as many minutes")
    verdict = "met" if med(cold_first) < 2000 else "NOT met"
    print(f"target (the trading view of a 10-hour run opens in under 2 s, cold first view): median {med(cold_first):.0f} ms, max {max(cold_first):.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
