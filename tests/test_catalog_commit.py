"""Catalog commits (issue 9, classes 6 and 7, and ``inspect``): a crash at any step leaves the old or
the new catalog and the next writer finishes cleanly; one writer at a time; ``inspect`` finds a
catalog made inconsistent by hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from auction_trader.config import AuctionConfig
from auction_trader.data import transaction
from auction_trader.data.cli import main as data_cli
from auction_trader.data.importing import import_files
from auction_trader.data.lock import CatalogLock
from auction_trader.data.synth import synth_command
from tests.conftest import REPO_ROOT, tree_digest
from tests.test_import_errors import binance_quote, binance_trade, write_gz

DAY_MS = 86_400_000


class Crash(BaseException):
    """The process dying at a step: nothing after it runs (no clean-up, no rollback)."""


def visible(root: Path) -> dict[str, str]:
    """What a reader of the catalog sees: everything but a writer's lock and transaction space."""
    return {k: v for k, v in tree_digest(root).items() if not k.startswith((".txn", ".lock"))}


def feed(path: Path, items: list[str]) -> Path:
    return write_gz(path, items)


def trade(i: int, t: int, **over) -> str:
    return binance_trade(i, T=t, **over)


def quote(i: int, t: int, **over) -> str:
    return binance_quote(i, T=t, **over)


T = 1721347202812  # ms


@pytest.fixture
def scene(tmp_path):
    """A catalog holding a first capture, and a second capture that continues it: it completes the
    burst the first ends in (so an existing file is rewritten), adds rows the same day and the next
    day (new files), trades and quotes."""
    burst = [trade(100 + i, T + 50) for i in range(5)]
    first = feed(tmp_path / "first.gz", [x for i in range(20) for x in (trade(i, T + i), quote(i, T + i))] + burst[:3])
    second = feed(
        tmp_path / "second.gz",
        burst[2:] + [x for i in range(20, 30) for x in (trade(i, T + 60 + i), quote(i, T + 60 + i))] + [trade(300, T + DAY_MS), quote(300, T + DAY_MS)],
    )
    base = tmp_path / "base"
    import_files("binance-feed", [first], base)
    expected = tmp_path / "expected"
    shutil.copytree(base, expected)
    import_files("binance-feed", [second], expected)
    return base, second, visible(base), visible(expected)


def crash_at(monkeypatch, target: int) -> list[str]:
    seen: list[str] = []

    def hook(name: str) -> None:
        seen.append(name)
        if len(seen) == target:
            raise Crash(name)

    monkeypatch.setattr(transaction, "_crash_hook", hook)
    return seen


def test_a_crash_at_every_step_of_a_commit_leaves_the_old_or_the_new_catalog(scene, tmp_path, monkeypatch):
    base, second, old, new = scene
    steps = crash_at(monkeypatch, -1)
    work = tmp_path / "clean"
    shutil.copytree(base, work)
    import_files("binance-feed", [second], work)
    names = list(steps)
    assert visible(work) == new and len(names) >= 15
    assert any(n.startswith("link") for n in names) and any(n.startswith("write") for n in names)
    assert {"sync", "journal", "journal rename", "swap", "cleanup"} <= set(names)
    outcomes = []
    for k in range(1, len(names) + 1):
        work = tmp_path / f"crash{k}"
        shutil.copytree(base, work)
        crash_at(monkeypatch, k)
        with pytest.raises(Crash):
            import_files("binance-feed", [second], work)
        seen = visible(work)
        assert seen in (old, new), f"a crash at step {k} ({names[k - 1]}) left neither catalog"
        outcomes.append("new" if seen == new else "old")
        # A reader right now gets whole ticks of one version.
        nautilus = ParquetDataCatalog(str(work))
        assert len(nautilus.trade_ticks()) == (23 if seen == old else 36)
        monkeypatch.setattr(transaction, "_crash_hook", None)
        import_files("binance-feed", [second], work)
        assert visible(work) == new and not (work / ".txn").exists()
        shutil.rmtree(work)
    # Before the swap the old catalog stands, after it the new one: the swap is the one step between.
    swap = names.index("swap")
    assert outcomes == ["old"] * (swap + 1) + ["new"] * (len(names) - swap - 1)


def test_a_crash_while_finishing_a_crashed_commit_is_finished_too(scene, monkeypatch):
    base, second, old, new = scene
    crash_at(monkeypatch, -1)
    names = []
    monkeypatch.setattr(transaction, "_crash_hook", names.append)
    shutil.copytree(base, base.with_name("probe"))
    import_files("binance-feed", [second], base.with_name("probe"))
    swap = names.index("swap")
    crash_at(monkeypatch, swap + 1)  # dies at the swap, after the journal
    with pytest.raises(Crash):
        import_files("binance-feed", [second], base)
    assert visible(base) == old and (base / ".txn").exists()
    crash_at(monkeypatch, 2)  # the next writer dies too, while finishing it
    with pytest.raises(Crash):
        import_files("binance-feed", [second], base)
    monkeypatch.setattr(transaction, "_crash_hook", None)
    assert data_cli(["inspect", "--catalog", str(base), "--quick"]) == 0  # inspect finishes it
    assert visible(base) == new and not (base / ".txn").exists()


CHILD = """
import os, sys
from auction_trader.data import transaction
from auction_trader.data.cli import main
target = sys.argv[1]
def hook(name):
    if name == target:
        os._exit(9)
transaction._crash_hook = hook
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("target", ["journal rename", "swap", "cleanup"])
def test_a_killed_process_leaves_the_old_or_the_new_catalog(scene, target):
    base, second, old, new = scene
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, target, "import", "binance-feed", str(second), "--catalog", str(base)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
    )
    assert proc.returncode == 9, proc.stderr
    assert visible(base) == (old if target in ("journal rename", "swap") else new)
    assert data_cli(["import", "binance-feed", str(second), "--catalog", str(base)]) == 0
    assert visible(base) == new and not (base / ".txn").exists() and not (base / ".lock").exists()


def test_a_crash_while_replacing_a_synthetic_market_leaves_one_market(tmp_path, monkeypatch):
    catalog = tmp_path / "synth"
    config = AuctionConfig()
    fresh = tmp_path / "fresh"
    synth_command(fresh, 0.2, 2, "2024-01-01T00:00:00Z", False, config)
    synth_command(catalog, 0.2, 1, "2024-01-01T00:00:00Z", False, config)
    old, new = visible(catalog), visible(fresh)
    names: list[str] = []
    monkeypatch.setattr(transaction, "_crash_hook", names.append)
    probe = tmp_path / "probe"
    shutil.copytree(catalog, probe)
    synth_command(probe, 0.2, 2, "2024-01-01T00:00:00Z", True, config)
    assert visible(probe) == new
    for k in range(1, len(names) + 1):
        work = tmp_path / f"c{k}"
        shutil.copytree(catalog, work)
        crash_at(monkeypatch, k)
        with pytest.raises(Crash):
            synth_command(work, 0.2, 2, "2024-01-01T00:00:00Z", True, config)
        data = lambda d: {p: h for p, h in d.items() if p.startswith("data/")}  # noqa: E731
        assert data(visible(work)) in (data(old), data(new)), names[k - 1]
        monkeypatch.setattr(transaction, "_crash_hook", None)
        synth_command(work, 0.2, 2, "2024-01-01T00:00:00Z", True, config)
        assert visible(work) == new, names[k - 1]


# -- one writer at a time --------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "auction_trader.data", *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_writer_waits_for_the_first_or_fails_saying_whom_it_waits_for(scene):
    base, second, _, new = scene
    with CatalogLock(base, wait=0):
        proc = _cli("import", "binance-feed", str(second), "--catalog", str(base), "--wait", "0")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1 and f"is locked by another writer (pid {os.getpid()}" in err and "Traceback" not in err
        waiting = _cli("import", "binance-feed", str(second), "--catalog", str(base), "--wait", "60")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _stderr_has(waiting, "waiting for another writer"):
            assert waiting.poll() is None
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert visible(base) == new


def _stderr_has(proc: subprocess.Popen, text: str) -> bool:
    """Read the child's stderr as far as it has written (a line at a time)."""
    import select

    ready, _, _ = select.select([proc.stderr], [], [], 0.2)
    if ready:
        line = proc.stderr.readline()
        proc.seen = getattr(proc, "seen", "") + line
    return text in getattr(proc, "seen", "")


def test_two_overlapping_imports_started_together_hold_each_tick_once(tmp_path):
    a = feed(tmp_path / "a.gz", [trade(i, T + i) for i in range(0, 600)])
    b = feed(tmp_path / "b.gz", [trade(i, T + i) for i in range(300, 900)])
    catalog = tmp_path / "cat"
    procs = [_cli("import", "binance-feed", str(src), "--catalog", str(catalog)) for src in (a, b)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    ids = [t.trade_id.value for t in ParquetDataCatalog(str(catalog)).trade_ticks()]
    assert len(ids) == 900 and len(set(ids)) == 900
    assert data_cli(["inspect", "--catalog", str(catalog), "--quick"]) == 0


# -- inspect ---------------------------------------------------------------------------------------


@pytest.fixture
def clean(tmp_path) -> Path:
    catalog = tmp_path / "cat"
    import_files("binance-feed", [feed(tmp_path / "f.gz", [x for i in range(40) for x in (trade(i, T + i * 10), quote(i, T + i * 10))])], catalog)
    return catalog


def _trade_file(catalog: Path) -> Path:
    return next((catalog / "data" / "trade_tick").rglob("*.parquet"))


def test_inspect_verifies_a_clean_catalog_with_nautilus(clean, capsys):
    assert data_cli(["inspect", "--catalog", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "verified: 3 file(s), 80 ticks: read back by Nautilus's ParquetDataCatalog" in out and "PROBLEMS" not in out


def _inspect_problems(catalog: Path, capsys, *extra: str) -> str:
    assert data_cli(["inspect", "--catalog", str(catalog), *extra]) == 1
    out = capsys.readouterr().out
    assert "PROBLEMS" in out
    return out


def test_inspect_flags_overlapping_files(clean, capsys):
    path = _trade_file(clean)
    start, end = path.stem.split("_")
    copy = path.with_name(f"{start[:-10]}{int(start[-10:-1]) + 1:09d}Z_{end}.parquet")
    shutil.copy(path, copy)
    out = _inspect_problems(clean, capsys, "--quick")
    assert f"{path.name} and data/trade_tick/BTCUSDT-LINEAR.BYBIT/{copy.name}: intervals overlap" in out
    assert f"{copy.name} (row 1): holds a row at" in out  # its first row lies before its name's start


def test_inspect_flags_duplicated_and_unordered_ticks(clean, capsys):
    path = _trade_file(clean)
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table.slice(0, 5), table.slice(4, 1), table.slice(5)]), path)
    out = _inspect_problems(clean, capsys, "--quick")
    assert f"{path.name} (row 6): duplicated trade id at" in out
    pq.write_table(pa.concat_tables([table.slice(3, 1), table.slice(0, 3), table.slice(4)]), path)
    out = _inspect_problems(clean, capsys, "--quick")
    assert f"{path.name} (row 2): time goes backwards" in out


def test_inspect_flags_what_nautilus_cannot_read_without_dying(clean, capsys):
    path = _trade_file(clean)
    table = pq.read_table(path)
    raw = bytearray(table.column("price").combine_chunks().buffers()[1].to_pybytes())
    raw[16 * 7 : 16 * 8] = (2**126).to_bytes(16, "little")  # far beyond Nautilus's fixed-point range
    price = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), table.num_rows, [None, pa.py_buffer(bytes(raw))])
    ids = table.column("trade_id").to_pylist()
    ids[3] = "id-é"
    table = table.set_column(table.schema.get_field_index("price"), table.schema.field("price"), price)
    table = table.set_column(table.schema.get_field_index("trade_id"), table.schema.field("trade_id"), pa.array(ids, pa.string()))
    pq.write_table(table, path)
    out = _inspect_problems(clean, capsys)
    assert f"{path.name} (row 8): price: a value Nautilus cannot hold at precision 1" in out
    assert f"{path.name} (row 4): trade_id: 'id-é' contains the non-ASCII character 'é'" in out
    assert f"{path.name}: Nautilus's ParquetDataCatalog cannot read it" in out


def test_inspect_flags_files_named_out_of_convention_and_ticks_outside_the_window(clean, capsys):
    path = _trade_file(clean)
    path.rename(path.with_name("trades.parquet"))
    quotes = next((clean / "data" / "quote_tick").rglob("*.parquet"))
    table = pq.read_table(quotes)
    ts = table.column("ts_init").to_numpy().copy()
    ts[-1] = 4_200_000_000 * 10**9  # 2103
    table = table.set_column(table.schema.get_field_index("ts_init"), "ts_init", pa.array(ts, pa.uint64()))
    pq.write_table(table, quotes)
    out = _inspect_problems(clean, capsys, "--quick")
    assert "trades.parquet: not named <start>_<end>.parquet" in out
    assert f"{quotes.name} (row 40): holds a row at 2103-" in out and "a time outside the plausible window" in out


def test_inspect_finishes_an_interrupted_commit_and_says_so(scene, monkeypatch, capsys):
    base, second, _, new = scene
    names: list[str] = []
    monkeypatch.setattr(transaction, "_crash_hook", names.append)
    probe = base.with_name("probe")
    shutil.copytree(base, probe)
    import_files("binance-feed", [second], probe)
    crash_at(monkeypatch, names.index("marker") + 1 if "marker" in names else names.index("cleanup") + 1)
    with pytest.raises(Crash):
        import_files("binance-feed", [second], base)
    monkeypatch.setattr(transaction, "_crash_hook", None)
    assert data_cli(["inspect", "--catalog", str(base), "--quick"]) == 0
    assert "note: completed a commit" in capsys.readouterr().out
    assert visible(base) == new and not (base / ".txn").exists()


def test_a_symlinked_data_directory_is_refused_before_anything_changes(clean, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(clean / "data" / "quote_tick", elsewhere)
    (clean / "data" / "quote_tick").symlink_to(elsewhere)
    before = tree_digest(clean)
    with pytest.raises(Exception, match="is a symbolic link to another directory"):
        import_files("binance-feed", [feed(tmp_path / "g.gz", [trade(999, T + 9999)])], clean)
    assert tree_digest(clean) == before


def test_a_commit_reports_what_it_rewrote(scene):
    base, second, _, _ = scene
    report = import_files("binance-feed", [second], base)
    assert (report.trades.written, report.trades.duplicates) == (13, 1)
    assert len(report.trades.files) == 3  # the same day, the next day, and the first file completed
    meta = json.loads(json.dumps([str(f) for f in report.trades.files]))
    assert all(f.startswith("data/trade_tick/") for f in meta)
    assert np.all(np.diff([t.ts_event for t in ParquetDataCatalog(str(base)).trade_ticks()]) >= 0)
