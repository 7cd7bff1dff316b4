"""The dashboard's API, endpoint by endpoint, against a small run and grid built for the tests.

The numbers are held to what the run itself stored: the profile's POC / VAL / VAH bins to
``features_1m`` at every minute, each footprint minute's delta to ``of_1m``, the rebuilt balance
and drawdown to ``metrics.json``, the grid's neighbour spread to the CLI's ranking.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest

from auction_trader.dashboard.__main__ import main as dashboard_main
from auction_trader.dashboard.app import create_app
from auction_trader.dashboard.grids import infer_axes
from auction_trader.dashboard.settings import DashboardSettings, level
from auction_trader.dashboard.ticks import CatalogTicks, signed_trades
from auction_trader.grid.analysis import heatmap_matrix, rank
from tests.dashboard_fixture import copy_run, dash  # noqa: F401 (fixture)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx
    from fastapi.testclient import TestClient

MIN = 60_000


@pytest.fixture(scope="module")
def client(dash):  # noqa: F811
    with TestClient(create_app(dash.root)) as c:
        yield c


@pytest.fixture(scope="module")
def features(dash):  # noqa: F811
    return pq.read_table(dash.run / "features_1m.parquet").to_pydict()


def test_library_lists_the_run_and_the_grid_by_directory_name(client):
    lib = client.get("/api/library").json()
    assert [r["key"] for r in lib["runs"]] == ["run-a"]
    assert [g["key"] for g in lib["grids"]] == ["grid-a"]
    assert lib["grids"][0]["combinations"] == 4 and lib["grids"][0]["counts"] == {"ok": 4}
    assert "run-a" in client.get("/run/run-a").text or client.get("/run/run-a").status_code == 200
    assert client.get("/grid/grid-a").status_code == 200
    assert client.get("/run/nope").status_code == 404


def test_run_detail_thresholds_come_from_the_run_and_the_settings(client, dash):  # noqa: F811
    info = client.get("/api/run/run-a").json()
    metrics = json.loads((dash.run / "metrics.json").read_text())
    assert info["kind"] == "backtest" and info["run"]["run_id"] == metrics["run"]["run_id"]
    assert info["thresholds"] == {"ambiguous": {"amber": 0.25, "red": 0.35}, "heat": {"amber": 0.03, "red": 0.5}}
    assert info["catalog_available"] is True
    assert ["Net P&L", f"{metrics['net_pnl']:,.2f}"] in info["summary"]
    assert info["status"]["controls"]["activate"]["allowed"] is False


def test_minutes_rebuild_the_account_that_the_run_reported(client, dash, features):  # noqa: F811
    m = client.get("/api/minutes/run-a").json()
    metrics = json.loads((dash.run / "metrics.json").read_text())
    assert m["ts_min"] == features["ts_min"]
    assert m["balance"][-1] == pytest.approx(metrics["ending_balance"], abs=1e-6)
    eq = np.array(m["equity"])
    assert np.max(np.maximum.accumulate(eq) - eq) == pytest.approx(metrics["max_drawdown"], abs=1e-6)
    assert metrics["trades"] > 0 and any(p != 0 for p in m["position"])
    part = client.get(f"/api/minutes/run-a?start={features['ts_min'][10]}&end={features['ts_min'][19]}").json()
    assert part["ts_min"] == features["ts_min"][10:20] and part["of_1m"] == pytest.approx(features["of_1m"][10:20])


def test_profile_equals_the_feature_engine_at_every_minute(client, features):
    keys = [("poc_bin", "val_bin", "vah_bin")] if "poc_bin" in features else [("poc", "val", "vah")]
    checked = 0
    for i, ts in enumerate(features["ts_min"]):
        p = client.get(f"/api/profile/run-a?ts={ts}").json()
        if features["total_volume_4h"][i] == 0:
            assert p["poc_bin"] is None
            continue
        for got, col in zip((p["poc_bin"], p["val_bin"], p["vah_bin"]), keys[0], strict=True):
            assert got == pytest.approx(features[col][i], abs=1e-9), (ts, col)
        assert sum(p["volume"]) == pytest.approx(features["total_volume_4h"][i], abs=1e-9)
        assert p["va_volume"] / p["total_volume"] == pytest.approx(features["va_coverage"][i], rel=1e-9)
        assert p["width"] == pytest.approx(features["bin_width_applied"][i])
        # The value area as a price range: the VAL bin's lower edge to the VAH bin's upper edge.
        assert p["va_low"] == p["val_bin"] and p["va_high"] == pytest.approx(p["vah_bin"] + p["width"])
        checked += 1
    assert checked > 100


def test_footprint_delta_is_of_1m_and_sides_add_up_to_volume(client, features):
    ts = features["ts_min"]
    for a in range(0, len(ts), 40):
        b = min(a + 39, len(ts) - 1)
        fp = client.get(f"/api/footprint/run-a?start={ts[a]}&end={ts[b]}").json()
        assert fp["delta"] == pytest.approx(features["of_1m"][a : b + 1], abs=1e-9)
        ex = client.get(f"/api/footprint/run-a?start={ts[a]}&end={ts[b]}&side=exchange&bin_ticks=10").json()
        assert ex["exchange_side_available"] is True and ex["width"] == pytest.approx(1.0)
        total = np.array(ex["buy"]).sum(axis=0) + np.array(ex["sell"]).sum(axis=0) + np.array(ex["unsigned"]).sum(axis=0)
        assert total == pytest.approx(features["volume"][a : b + 1], abs=1e-9)
    fewer = client.get(f"/api/footprint/run-a?start={ts[60]}&end={ts[74]}&rows=10").json()
    assert len(fewer["bins"]) <= 10
    assert client.get(f"/api/footprint/run-a?start={ts[5]}&end={ts[6]}&side=maker").status_code == 400
    assert client.get(f"/api/footprint/run-a?start={ts[6]}&end={ts[5]}").status_code == 400
    assert client.get(f"/api/footprint/run-a?start={ts[0] + 7}&end={ts[5] + 7}").status_code == 404


def test_a_window_classified_from_the_middle_equals_the_run_from_its_start(dash, features):  # noqa: F811
    ticks = CatalogTicks(dash.catalog, "BTCUSDT-LINEAR.BYBIT")
    run_lo = ticks.first_ts()
    whole = signed_trades(ticks, run_lo, 2**62, True, run_lo)
    for i in (31, 77, 120):
        lo, hi = features["ts_min"][i] * 1_000_000, (features["ts_min"][i + 5] + MIN) * 1_000_000 - 1
        part = signed_trades(ticks, lo, hi, True, run_lo)
        a, b = np.searchsorted(whole.trades.ts, lo, "left"), np.searchsorted(whole.trades.ts, hi, "right")
        assert np.array_equal(part.sign, whole.sign[a:b]) and np.array_equal(part.ambiguous, whole.ambiguous[a:b])
        # The ambiguous fraction of each minute is the run's.
        ms = part.trades.ts // 60_000_000_000 * 60_000
        for k in range(i, i + 6):
            sel = ms == features["ts_min"][k]
            frac = part.trades.lots[sel & part.ambiguous].sum() / part.trades.lots[sel].sum()
            assert frac == pytest.approx(features["ambiguous_trade_frac_1m"][k], abs=1e-12)


def test_markers_carry_reason_codes(client, dash):  # noqa: F811
    mk = client.get("/api/markers/run-a").json()
    fills = pq.read_table(dash.run / "fills.parquet").to_pydict()
    signals = pq.read_table(dash.run / "signals_1m.parquet").to_pydict()
    reason = dict(zip(signals["ts_min"], signals["reason_code"], strict=True))
    assert len(mk["fills"]) == len(fills["ts_event"]) > 0
    for f in mk["fills"]:
        if f["purpose"] == "entry":
            assert f["reason"] == reason[f["signal_ts_min"]]
        else:
            assert f["reason"]
    assert {s["action"] for s in mk["signals"]} >= {"ENTER_LONG"} or {s["action"] for s in mk["signals"]} >= {"ENTER_SHORT"}
    assert len(mk["trades"]) == json.loads((dash.run / "metrics.json").read_text())["trades"]


def test_state_at_a_minute_in_a_position(client, features):
    m = client.get("/api/minutes/run-a").json()
    k = next(i for i, p in enumerate(m["position"]) if p != 0)
    s = client.get(f"/api/state/run-a?ts={m['ts_min'][k]}").json()
    p = s["position"]
    assert p["side"] == ("LONG" if m["position"][k] > 0 else "SHORT") and p["qty"] == pytest.approx(abs(m["position"][k]))
    # Heat by hand: open qty x |entry - stop| / the balance it was sized on.
    assert s["heat"] == pytest.approx(p["qty"] * abs(p["entry"] - p["stop"]) / s["balance"])
    assert s["unrealized"] == pytest.approx(m["position"][k] * (features["mid_close"][k] - p["entry"]))
    assert s["heat_level"] == level(s["heat"], 0.03, 0.5) and s["ambiguous_level"] in ("green", "amber", "red")
    assert client.get("/api/state/run-a?ts=5").status_code == 404


def test_alerts_and_control_refusals(client, dash):  # noqa: F811
    stored = json.loads((dash.run / "alerts.json").read_text())
    got = client.get("/api/alerts/run-a").json()
    assert [a["alert"] for a in got] == [a["alert"] for a in stored]
    for cmd in ("activate", "deactivate", "resolve"):
        r = client.post(f"/api/control/run-a?command={cmd}")
        assert r.status_code == 409 and r.json()["accepted"] is False and "finished backtest" in r.json()["reason"]
    assert client.post("/api/control/run-a?command=explode").status_code == 400


def test_grid_table_matches_the_cli_ranking(client, dash):  # noqa: F811
    t = client.get("/api/grid/grid-a?metric=net_pnl").json()
    assert t["axes_from"] == "grid.json" and t["can_rerun"] is True
    sizes = [len(a) for a in dash.grid_spec.axes]
    expected = {r.row.run_id: r for r in rank(dash.grid_result.rows, sizes, "net_pnl", 4)}
    assert len(t["rows"]) == 4
    for row in t["rows"]:
        e = expected[row["run_id"]]
        assert row["metrics"]["net_pnl"] == pytest.approx(e.value)
        assert row["nbr"] == {"count": e.neighbours, "min": e.lo, "median": e.median, "max": e.hi}
    assert sorted(r["rank"] for r in t["rows"]) == [1, 2, 3, 4]
    assert client.get("/api/grid/grid-a?metric=nope").status_code == 404


def test_grid_without_manifest_infers_the_same_axes_and_refuses_reruns(client, dash, tmp_path):  # noqa: F811
    old = dash.root / "grid-old"
    if not old.exists():
        shutil.copytree(dash.grid, old, ignore=shutil.ignore_patterns("grid.json", "runs"))
    t = client.get("/api/grid/grid-old").json()
    assert t["can_rerun"] is False and "grid.json" in t["rerun_blocker"]
    assert [a["keys"] for a in t["axes"]] == [["alpha_bin"], ["slippage_ticks_entry", "slippage_ticks_exit"]]
    ref = {r["run_id"]: r["nbr"] for r in client.get("/api/grid/grid-a").json()["rows"]}
    assert {r["run_id"]: r["nbr"] for r in t["rows"]} == ref
    r = client.post(f"/api/rerun/grid-old?run_id={t['rows'][0]['run_id']}")
    assert r.status_code == 409 and "grid.json" in r.json()["reason"]
    shutil.rmtree(old)


def test_infer_axes_groups_zip_parameters():
    params = [{"a": a, "b": b, "c": b * 10, "d": 1} for a in (0.3, 0.1, 0.2) for b in (1, 2)]
    axes = infer_axes(params)
    assert [(x.keys, x.values) for x in axes] == [(("a",), ((0.1,), (0.2,), (0.3,))), (("b", "c"), ((1, 10), (2, 20)))]


def test_heatmap_is_the_cli_matrix(client, dash):  # noqa: F811
    h = client.get("/api/heatmap/grid-a?x=alpha_bin&y=slippage_ticks_entry&metric=net_pnl").json()
    sizes = [len(a) for a in dash.grid_spec.axes]
    assert h["z"] == heatmap_matrix(dash.grid_result.rows, 0, 1, sizes, "net_pnl")
    assert h["x_labels"] == ["0.2", "0.4"] and h["y_labels"] == ["0, 0", "2, 2"] and h["aggregated"] == "one combination per cell"
    assert client.get("/api/heatmap/grid-a?x=alpha_bin&y=alpha_bin").status_code == 400
    assert client.get("/api/heatmap/grid-a?x=alpha_bin&y=risk_pct").status_code == 404


def test_compare_and_rerun_a_combination_alone(client, dash):  # noqa: F811
    rows = client.get("/api/grid/grid-a").json()["rows"]
    a, b = rows[0]["run_id"], rows[1]["run_id"]
    c = client.get(f"/api/compare/grid-a?a={a}&b={b}").json()
    assert c["a"]["metrics"]["net_pnl"] == rows[0]["metrics"]["net_pnl"] and "equity" not in c["a"]
    job = client.post(f"/api/rerun/grid-a?run_id={a}").json()
    deadline = time.monotonic() + 180
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = client.get(f"/api/job/{job['id']}").json()
    assert job["state"] == "done", job["output"]
    assert job["run"] == f"grid-a/runs/{a}"
    metrics = json.loads((dash.grid / "runs" / a / "metrics.json").read_text())
    assert metrics["run"]["run_id"] == a and metrics["net_pnl"] == pytest.approx(rows[0]["metrics"]["net_pnl"])
    c = client.get(f"/api/compare/grid-a?a={a}&b={b}").json()
    assert c["a"]["run"] == f"grid-a/runs/{a}" and len(c["a"]["equity"]["equity"]) > 0
    assert client.get("/api/grid/grid-a").json()["rows"][0]["run"] == f"grid-a/runs/{a}"
    again = client.post(f"/api/rerun/grid-a?run_id={a}").json()
    assert again == {"state": "done", "run": f"grid-a/runs/{a}", "run_id": a}
    assert client.post("/api/rerun/grid-a?run_id=ffffffffffff").status_code == 404


def test_websocket_pushes_minutes_as_the_store_grows(dash, tmp_path):  # noqa: F811
    root = tmp_path / "runs"
    run = copy_run(dash.run, root / "growing")
    table = pq.read_table(run / "features_1m.parquet")
    pq.write_table(table.slice(0, 50), run / "features_1m.parquet")
    with TestClient(create_app(root)) as c, c.websocket_connect("/ws/run/growing") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["head"] == table.column("ts_min")[49].as_py()
        time.sleep(0.05)
        pq.write_table(table.slice(0, 53), run / "features_1m.parquet")
        msg = ws.receive_json()
        assert msg["type"] == "minutes" and msg["minutes"]["ts_min"] == table.column("ts_min").to_pylist()[50:53]
        assert msg["head"] == table.column("ts_min")[52].as_py()


def test_token_guards_everything_but_the_login(dash):  # noqa: F811
    token = "s3cret-token-0123456789"
    with TestClient(create_app(dash.root, token=token)) as c:
        assert c.get("/api/library").status_code == 401
        assert c.get("/run/run-a", follow_redirects=False).status_code == 303
        assert c.get("/api/library", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.post("/login", content="token=wrong", headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 401
        r = c.post("/login", content=f"token={token}", headers={"content-type": "application/x-www-form-urlencoded"}, follow_redirects=False)
        assert r.status_code == 303 and r.cookies.get("auction_trader_token") == token
        assert c.get("/api/library").status_code == 200  # the cookie now
    with TestClient(create_app(dash.root)) as c:
        assert c.get("/api/library").status_code == 200  # loopback: no token


def test_cli_refuses_a_network_address_without_flag_and_token(monkeypatch, capsys, dash):  # noqa: F811
    monkeypatch.delenv("AUCTION_TRADER_DASHBOARD_TOKEN", raising=False)
    assert dashboard_main(["--runs", str(dash.root), "--host", "0.0.0.0"]) == 1
    assert "--allow-remote" in capsys.readouterr().err
    assert dashboard_main(["--runs", str(dash.root), "--host", "0.0.0.0", "--allow-remote"]) == 1
    assert "AUCTION_TRADER_DASHBOARD_TOKEN" in capsys.readouterr().err
    assert dashboard_main(["--runs", str(dash.root / "nope")]) == 1
    assert dashboard_main(["--runs", str(dash.root), "--set", "heat_amber=-1"]) == 1


def test_settings_levels_and_overrides():
    s = DashboardSettings.from_overrides(["ambiguous_amber=0.2"])
    assert s.thresholds({"ambiguous_trade_frac_max": 0.1, "max_daily_loss": 0.05}) == {"ambiguous": {"amber": 0.1, "red": 0.1}, "heat": {"amber": 0.03, "red": 0.05}}
    assert [level(v, 0.25, 0.35) for v in (0.0, 0.25, 0.35, 0.3501, None, float("nan"))] == ["green", "amber", "amber", "red", "none", "none"]
    with pytest.raises(Exception, match="heat_amber"):
        DashboardSettings.from_overrides(["heat_amber=x"])
    with pytest.raises(Exception, match="expected one of"):
        DashboardSettings.from_overrides(["colour=red"])


def test_assets_at_content_hashed_urls_cached_immutable_and_gzipped(client):
    import hashlib  # noqa: PLC0415
    import re  # noqa: PLC0415

    from auction_trader.dashboard.app import STATIC, lightweight_charts_js, plotly_js  # noqa: PLC0415

    libs = {"plotly.min.js": plotly_js(), "lightweight-charts.js": lightweight_charts_js()}
    # The trading view's chart library is Lightweight Charts (160 KB); plotly.js only on the grid view.
    expected = {"/run/run-a": ["app.css", "common.js", "lightweight-charts.js", "run.js"], "/grid/grid-a": ["app.css", "common.js", "grid.js", "plotly.min.js"]}
    for path, names in expected.items():
        page = client.get(path)
        assert page.headers["cache-control"] == "no-cache"
        urls = re.findall(r'(?:src|href)="(/assets/[0-9a-f]{16}/[\w.-]+)"', page.text)
        assert sorted(u.rsplit("/", 1)[1] for u in urls) == names
        assert "/static" not in page.text
        for url in urls:
            name = url.rsplit("/", 1)[1]
            raw = (libs[name] if name in libs else STATIC / name).read_bytes()
            assert url.split("/")[2] == hashlib.sha256(raw).hexdigest()[:16], "the URL names the content"
            r = client.get(url, headers={"Accept-Encoding": "gzip"})
            assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert r.headers["content-encoding"] == "gzip" and r.content == raw  # the client decodes it
            assert int(r.headers["content-length"]) < len(raw) * (0.35 if name in libs else 0.9)
            plain = client.get(url, headers={"Accept-Encoding": "identity"})
            assert plain.status_code == 200 and "content-encoding" not in plain.headers and plain.content == raw
    assert b"TradingView Lightweight Charts" in lightweight_charts_js().read_bytes()[:200]
    stale = client.get(urls[0].replace(urls[0].split("/")[2], "0" * 16))
    assert stale.status_code == 404 and "reload" in stale.json()["detail"]
    assert client.get("/assets/" + urls[0].split("/")[2] + "/../app.py").status_code == 404
