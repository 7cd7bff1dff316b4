"""Grid search: the grid file (product, zip, errors), engine reuse against fresh engines, identical
metrics with 1 and 2 workers and on Dask, failure capture, resume, the CLI's table, CSV and
heatmap, and the neighbour numbers on a hand-built result set.

Runs use a 2-hour synthetic catalog with 30-minute windows (about 1.5 s per backtest).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from auction_trader.backtest.engine import build_engine, load_data, rearm_engine, run_engine
from auction_trader.backtest.outputs import auction_strategy_factory, fills_table, measure, run_single
from auction_trader.config import AuctionConfig, ConfigError
from auction_trader.data.synth import generate, write_synthetic
from auction_trader.grid.analysis import Row, export_csv, heatmap_matrix, neighbour_coords, rank, table
from auction_trader.grid.runner import run_grid
from auction_trader.grid.spec import load_grid
from auction_trader.grid.worker import DataSpec, Task, run_task
from auction_trader.strategies import AuctionStrategy, AuctionStrategyConfig
from tests.conftest import REPO_ROOT

T0 = int(np.datetime64("2024-01-01T07:00", "ns").astype(np.int64))  # 07:00-09:00, crosses 08:00
SHORT = {"rolling_window_minutes": 30, "warmup_minutes": 30, "spread_lookback_minutes": 30, "min_va_bins": 10}
GRID = """\
set:
  rolling_window_minutes: 30
  warmup_minutes: 30
  spread_lookback_minutes: 30
  min_va_bins: 10
grid:
  alpha_bin: [0.2, 0.4]
zip:
  - slippage_ticks_entry: [0, 2]
    slippage_ticks_exit: [0, 2]
"""


def short_config(*overrides: str) -> AuctionConfig:
    return AuctionConfig().with_overrides([f"{k}={v}" for k, v in SHORT.items()] + list(overrides))


def stored(db: Path) -> dict[str, tuple[str, str]]:
    """run_id -> (status, metrics_json) of every row."""
    with sqlite3.connect(db) as con:
        return {r[0]: (r[1], r[2]) for r in con.execute("SELECT run_id, status, metrics_json FROM grid_search_results")}


def write(tmp_path: Path, text: str, name: str = "grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def cat(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "cat"
    write_synthetic(path, generate(2.0, 7, T0), AuctionConfig())
    return path


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return load_grid(write(tmp_path_factory.mktemp("gridfile"), GRID))


@pytest.fixture(scope="module")
def local1(spec, cat, tmp_path_factory):
    return run_grid(spec, cat, out_dir=tmp_path_factory.mktemp("one"), workers=1, quiet=True)


@pytest.fixture(scope="module")
def local2(spec, cat, tmp_path_factory):
    return run_grid(spec, cat, out_dir=tmp_path_factory.mktemp("two"), workers=2, quiet=True)


# -- the grid file ------------------------------------------------------------------------------------


def test_product_and_zip_expand_in_file_order(tmp_path):
    (tmp_path / "base.yaml").write_text("risk:\n  cooldown_minutes: 7\n")
    path = write(
        tmp_path,
        """\
        base: base.yaml
        set:
          value_area.va_fraction: 0.6
        catalog: data/cat
        start: 2024-01-01T04:00
        grid:
          alpha_bin: [0.2, 0.3, 0.4]
          risk.max_hold_minutes: [30, 60]
        zip:
          - slippage_ticks_entry: [0, 1]
            slippage_ticks_exit: [1, 2]
        """,
    )
    spec = load_grid(path, ["stop_buffer_ticks=4"])
    assert [a.keys for a in spec.axes] == [("alpha_bin",), ("max_hold_minutes",), ("slippage_ticks_entry", "slippage_ticks_exit")]
    assert len(spec.combinations) == 3 * 2 * 2
    assert [c.coords for c in spec.combinations[:4]] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]
    last = spec.combinations[-1]
    assert last.index == 11 and last.coords == (2, 1, 1)
    assert last.params == {"alpha_bin": 0.4, "max_hold_minutes": 60, "slippage_ticks_entry": 1, "slippage_ticks_exit": 2}
    c = last.config
    assert (c.value_area.alpha_bin, c.risk.max_hold_minutes, c.execution.slippage_ticks_entry, c.execution.slippage_ticks_exit) == (0.4, 60, 1, 2)
    # base, set: and --set apply to every combination
    assert {(x.config.risk.cooldown_minutes, x.config.value_area.va_fraction, x.config.risk.stop_buffer_ticks) for x in spec.combinations} == {(7, 0.6, 4)}
    assert spec.catalog == tmp_path / "data" / "cat" and spec.start.startswith("2024-01-01T04:00")
    # zip pairs step together: never entry 0 with exit 2
    assert {(x.params["slippage_ticks_entry"], x.params["slippage_ticks_exit"]) for x in spec.combinations} == {(0, 1), (1, 2)}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("grid:\n  alpah_bin: [0.2]\n", 2, ["grid.alpah_bin", "unknown parameter"]),
        ("grid:\n  alpha_bin: []\n", 2, ["grid.alpha_bin", "empty list"]),
        ("grid:\n  alpha_bin: 0.2\n", 2, ["grid.alpha_bin", "expected a list"]),
        ("grid:\n  alpha_bin: [0.2, 0.2]\n", 2, ["grid.alpha_bin[1]", "repeats"]),
        ("grid:\n  alpha_bin:\n    - 0.2\n    - -0.1\n", 4, ["alpha_bin", "greater than 0", "-0.1", "nothing was run"]),
        ("grid:\n  tp1_pct: [0.3, 0.5]\n", 2, ["exits", "tp1_pct + tp2_pct must be 1", "tp1_pct=0.5"]),
        ("zip:\n  - slippage_ticks_entry: [0, 1]\n    slippage_ticks_exit: [0]\n", 2, ["zip[0]", "equal lengths"]),
        ("grid:\n  alpha_bin: [0.2]\nzip:\n  - value_area.alpha_bin: [0.3]\n", 4, ["zip[0].value_area.alpha_bin", "swept twice"]),
        ("set:\n  alpha_bin: 0.3\ngrid:\n  alpha_bin: [0.2]\n", 2, ["set.alpha_bin", "twice"]),
        ("grids:\n  alpha_bin: [0.2]\n", 1, ["grids", "unknown key", "did you mean grid"]),
        ("grid:\n  alpha_bin: [0.2]\n  alpha_bin: [0.3]\n", 3, ["duplicate key"]),
        ("set:\n  risk_pct: 3\ngrid:\n  alpha_bin: [0.2]\n", 2, ["risk_pct", "less than or equal to 1"]),
        ("base: missing.yaml\ngrid:\n  alpha_bin: [0.2]\n", 1, ["base", "no such file"]),
    ],
)
def test_grid_file_errors_name_the_file_line_and_key(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_grid(path)
    message = str(err.value)
    assert f"{path}:{line}" in message, message
    for word in words:
        assert word in message, message


def test_a_grid_needs_an_axis_and_set_cannot_fix_a_swept_parameter(tmp_path):
    with pytest.raises(ConfigError, match="at least one parameter list"):
        load_grid(write(tmp_path, "grid: {}\n"))
    with pytest.raises(ConfigError, match=r"--set alpha_bin=0.3: alpha_bin is swept"):
        load_grid(write(tmp_path, "grid:\n  alpha_bin: [0.2]\n"), ["alpha_bin=0.3"])


# -- engine reuse ----------------------------------------------------------------------------------------


def test_a_reused_engine_gives_the_metrics_and_fills_of_a_fresh_one(cat):
    a = short_config("alpha_bin=0.2")
    b = short_config("alpha_bin=0.4", "accept_outside_k=2", "slippage_ticks_entry=2", "slippage_ticks_exit=0", "funding_rate_8h_bps=5")
    data = load_data(cat, a.instrument_id)
    make = auction_strategy_factory()

    def result(engine, ctx):
        run_engine(engine, ctx)
        m = measure(engine, ctx, "x", "s")
        return json.dumps(m.doc, sort_keys=True, default=str), fills_table(m.fills).to_pylist()

    fresh = {}
    for name, cfg in (("a", a), ("b", b)):
        engine, ctx = build_engine(cfg, cat, None, None, make(cfg), data=data)
        fresh[name] = result(engine, ctx)
        engine.dispose()
    assert fresh["a"] != fresh["b"]
    assert fresh["a"][1] and fresh["b"][1], "both combinations trade"

    engine, ctx = build_engine(b, cat, None, None, make(b), data=data)
    assert result(engine, ctx) == fresh["b"]
    subscriptions = len(engine.kernel.msgbus.subscriptions())
    for name, cfg in (("a", a), ("b", b), ("a", a)):  # after a different combination, and again
        old = ctx.strategy
        ctx = rearm_engine(engine, ctx, cfg, make(cfg))
        assert result(engine, ctx) == fresh[name], name
        assert len(engine.kernel.msgbus.subscriptions()) == subscriptions
        assert all(getattr(s.handler, "__self__", None) is not old for s in engine.kernel.msgbus.subscriptions())
    with pytest.raises(ValueError, match="starting_balance"):
        rearm_engine(engine, ctx, short_config("starting_balance=5000"), make(a))
    engine.dispose()


# -- determinism across workers and executors --------------------------------------------------------------


def test_one_and_two_workers_store_identical_metrics(local1, local2, spec):
    one, two = stored(local1.db), stored(local2.db)
    assert len(one) == len(two) == len(spec.combinations) == 4
    assert {s for s, _ in one.values()} == {"ok"}
    assert one == two  # byte for byte
    assert len({o.worker for o in local2.outcomes}) == 2, "both workers ran combinations"
    assert len({m for _, m in one.values()}) == 4, "the combinations differ"
    assert local1.grid_id == local2.grid_id and local1.ran == 4 and local1.skipped == 0


def test_a_combination_stores_the_metrics_of_the_same_single_run(local1, spec, cat, tmp_path):
    combo = spec.combinations[3]
    single = run_single(combo.config, cat, None, None, tmp_path / "single", report=False)
    row = stored(local1.db)[single.run_id]  # the grid names it with the single run's id
    expected = {k: v for k, v in json.loads((tmp_path / "single" / "metrics.json").read_text()).items() if k not in ("run", "config", "funding")}
    assert json.loads(row[1]) == expected


def test_dask_executor_on_a_local_cluster_matches_the_local_executor(local1, spec, cat, tmp_path):
    from dask.distributed import LocalCluster  # noqa: PLC0415

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        result = run_grid(spec, cat, out_dir=tmp_path / "dask", workers=2, executor="dask", scheduler=cluster.scheduler_address, quiet=True)
    assert stored(result.db) == stored(local1.db)
    assert result.ran == 4 and result.failed == 0


# -- failures and resume -------------------------------------------------------------------------------------


class Exploding(AuctionStrategy):
    """Raises in the middle of a run, leaving the engine wherever it was."""

    def _on_minute(self, row, now_ns):
        if row.ts_min >= (T0 // 1_000_000) + 50 * 60_000:
            raise ZeroDivisionError("deliberate failure at 07:50")
        return super()._on_minute(row, now_ns)


def explode_on_alpha_04_without_slippage(config: AuctionConfig):
    """Test-only strategy factory: one combination fails mid-run, the others are AuctionStrategy."""
    cls = Exploding if (config.value_area.alpha_bin, config.execution.slippage_ticks_entry) == (0.4, 0) else AuctionStrategy
    return cls(AuctionStrategyConfig(instrument_id=config.instrument_id, auction=config.model_dump()))


def test_a_failure_is_stored_with_its_error_and_the_grid_goes_on_then_resume_runs_only_it(spec, cat, local1, tmp_path):
    out = tmp_path / "fail"
    first = run_grid(spec, cat, out_dir=out, workers=1, quiet=True, strategy_factory=explode_on_alpha_04_without_slippage)
    assert (first.ran, first.failed) == (4, 1)
    rows = stored(first.db)
    assert len(rows) == 4
    failed = [(rid, json.loads(m)) for rid, (s, m) in rows.items() if s == "failed"]
    assert len(failed) == 1
    rid, doc = failed[0]
    assert doc["status"] == "failed" and doc["error"] == "ZeroDivisionError: deliberate failure at 07:50"
    assert "_on_minute" in doc["traceback"]
    reference = stored(local1.db)
    # The combination after the failure ran on a new engine and is unaffected; so are the others.
    assert {k: v for k, v in rows.items() if k != rid} == {k: v for k, v in reference.items() if k != rid}
    assert next(r for r in first.rows if r.status == "failed").params == {"alpha_bin": 0.4, "slippage_ticks_entry": 0, "slippage_ticks_exit": 0}

    again = run_grid(spec, cat, out_dir=out, workers=1, quiet=True, resume=True)
    assert (again.ran, again.failed, again.skipped) == (1, 0, 3)
    assert [o.run_id for o in again.outcomes] == [rid]
    assert stored(again.db) == reference  # one row per combination, the failed one replaced
    assert run_grid(spec, cat, out_dir=out, workers=1, quiet=True, resume=True).ran == 0


def test_a_worker_refuses_a_catalog_other_than_the_planned_one(cat):
    config = short_config()
    spec = DataSpec.of(cat, config.instrument_id, None, None)
    bogus = DataSpec(spec.catalog, spec.instrument_id, None, None, "0" * 16)
    outcome = run_task(Task(0, "r", config, bogus))
    assert not outcome.ok and "not the catalog the grid was planned on" in json.loads(outcome.metrics_json)["error"]


# -- the command line -------------------------------------------------------------------------------------


def _main(argv, capsys):
    sys.path.insert(0, str(REPO_ROOT))
    import run_backtest  # noqa: PLC0415

    code = run_backtest.main(argv)
    return code, capsys.readouterr()


def test_cli_resumes_prints_the_table_and_writes_csv_and_heatmap(spec, cat, local1, tmp_path, capsys):
    csv_path = tmp_path / "all.csv"
    argv = [str(spec.path), "--catalog", str(cat), "--out", str(local1.out_dir), "--resume", "--quiet", "--top", "3"]
    code, out = _main([*argv, "--export-csv", str(csv_path), "--heatmap", "alpha_bin,slippage_ticks_entry"], capsys)
    assert code == 0, out.err
    assert "ran 0 (0 failed), 4 already stored" in out.out
    assert "top 3 of 4 by net_pnl" in out.out and "nbr median" in out.out
    assert "run_backtest.py" in out.out and "--set alpha_bin=" in out.out  # the best, alone
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    db = stored(local1.db)
    for r in rows:
        metrics = json.loads(db[r["run_id"]][1])
        assert r["status"] == "ok" and float(r["net_pnl"]) == metrics["net_pnl"]
        assert float(r["spread_at_taker_fills.mean"]) == metrics["spread_at_taker_fills"]["mean"]
        assert r["alpha_bin"] in ("0.2", "0.4") and r["slippage_ticks_exit"] in ("0", "2")
    html = (local1.out_dir / "heatmap_alpha_bin_slippage_ticks_entry.html").read_text()
    assert "net_pnl by alpha_bin and slippage_ticks_entry+slippage_ticks_exit" in html

    code, out = _main([*argv, "--by", "max_drawdown"], capsys)
    assert code == 0 and "by max_drawdown (lower is better)" in out.out
    code, out = _main([*argv, "--heatmap", "alpha_bin,risk_pct"], capsys)
    assert code == 1 and "'risk_pct' is not swept" in out.err


def test_cli_exit_codes_for_failed_combinations_and_bad_grids(tmp_path, cat, capsys):
    bad = write(tmp_path, "grid:\n  alpha_bin: [0.2, -1]\n", "bad.yaml")
    code, out = _main([str(bad), "--catalog", str(cat)], capsys)
    assert code == 1 and f"{bad}:2" in out.err and "alpha_bin" in out.err
    code, out = _main([str(REPO_ROOT / "configs" / "default.yaml"), "--resume"], capsys)
    assert code == 1 and "grid options" in out.err


def test_the_shipped_grid_is_valid():
    spec = load_grid(REPO_ROOT / "configs" / "grid.yaml")
    keys = spec.keys
    assert {"risk_pct", "slippage_ticks_entry", "slippage_ticks_exit"} <= set(keys)
    assert 16 <= len(spec.combinations) <= 24
    assert spec.catalog.resolve() == (REPO_ROOT / "catalogs" / "sample").resolve()


# -- the robustness view ----------------------------------------------------------------------------------


def hand_built() -> list[Row]:
    """Axes a (3 steps) x b (2 steps); net_pnl by (a, b), one failure at (2, 1)."""
    values = {(0, 0): 1.0, (1, 0): 10.0, (2, 0): 2.0, (0, 1): 3.0, (1, 1): 4.0}
    drawdown = {(0, 0): 5.0, (1, 0): 1.0, (2, 0): 9.0, (0, 1): 2.0, (1, 1): 7.0}
    rows = [Row(c, {"a": c[0], "b": c[1]}, f"r{c}", "ok", {"net_pnl": v, "max_drawdown": drawdown[c], "trades": 1}) for c, v in values.items()]
    rows.append(Row((2, 1), {"a": 2, "b": 1}, "r(2, 1)", "failed", {"status": "failed", "error": "boom"}))
    return rows


def test_neighbours_are_one_step_along_exactly_one_axis():
    assert sorted(neighbour_coords((1, 0), (3, 2))) == [(0, 0), (1, 1), (2, 0)]
    assert sorted(neighbour_coords((0, 0, 0), (2, 2, 2))) == [(0, 0, 1), (0, 1, 0), (1, 0, 0)]
    assert len(neighbour_coords((1, 1, 1), (3, 3, 3))) == 6
    assert neighbour_coords((0,), (1,)) == []


def test_top_n_with_the_spread_over_neighbours_on_a_hand_built_result_set():
    ranked = rank(hand_built(), (3, 2), "net_pnl", 3)
    got = [(r.row.coords, r.value, r.neighbours, r.lo, r.median, r.hi) for r in ranked]
    assert got == [
        ((1, 0), 10.0, 3, 1.0, 2.0, 4.0),  # a spike: its neighbours are 1, 2 and 4
        ((1, 1), 4.0, 2, 3.0, 6.5, 10.0),  # (2, 1) failed: two neighbours with a value
        ((0, 1), 3.0, 2, 1.0, 2.5, 4.0),
    ]
    lowest = rank(hand_built(), (3, 2), "max_drawdown", 2)
    assert [(r.row.coords, r.value, r.median) for r in lowest] == [((1, 0), 1.0, 7.0), ((0, 1), 2.0, 6.0)]
    text = table(ranked, ["a", "b"], "net_pnl")
    assert text.splitlines()[0].split() == ["#", "a", "b", "net_pnl", "trades", "nbrs", "nbr", "min", "nbr", "median", "nbr", "max"]
    assert text.splitlines()[1].split() == ["1", "1", "0", "10.00", "1", "3", "1.00", "2.00", "4.00"]


def test_heatmap_means_over_the_other_axes_and_csv_keeps_failures(tmp_path):
    rows = [Row((x, y, z), {}, f"r{x}{y}{z}", "ok", {"m": float(x * 100 + y * 10 + z)}) for x in range(2) for y in range(3) for z in range(2)]
    rows[0] = Row((0, 0, 0), {}, "r000", "failed", {"error": "boom"})
    matrix = heatmap_matrix(rows, 0, 1, (2, 3, 2), "m")  # [y][x], mean over z
    assert matrix == [[1.0, 100.5], [10.5, 110.5], [20.5, 120.5]]
    path = export_csv(tmp_path / "x.csv", hand_built(), ["a", "b"])
    with path.open() as f:
        lines = list(csv.DictReader(f))
    assert [r["status"] for r in lines].count("failed") == 1
    failed = next(r for r in lines if r["status"] == "failed")
    assert failed["error"] == "boom" and failed["net_pnl"] == "" and failed["a"] == "2"
