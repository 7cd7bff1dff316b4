"""One backtest run and its run directory.

:func:`run_single` replays a catalog range through :func:`~auction_trader.backtest.engine.build_engine`
with one strategy and writes, into ``out_dir`` (default ``runs/<run_id>/``):

==================== ===========================================================================
``metrics.json``     the run's identification, parameters and metrics (:mod:`.metrics`)
``fills.parquet``    one row per venue fill (:data:`FILL_COLUMNS`), with the quote it filled against
``trades.parquet``   one row per round trip (:data:`TRADE_COLUMNS`)
``features_1m.parquet`` / ``signals_1m.parquet``  the strategy's per-minute features and signals
``alerts.json``      the strategy's alerts
``execution.db``     SQLite (:class:`~auction_trader.store.ExecutionStore`): positions (funding_paid
                     filled from the ledger), state snapshots, the funding ledger
``report.html``      Nautilus's tearsheet plus a price chart (:mod:`.report`)
==================== ===========================================================================

The strategy's outputs are read by duck typing: ``features_columns()``, ``signal_records()``,
``position_records()``, ``state_snapshots()``, ``alerts()``; a file is written only when the
strategy has the method. A strategy with a ``spool`` attribute (AuctionStrategy) is given a
:class:`~auction_trader.backtest.spool.RunSpool` and hands it its finished features and signals as
the run goes, so that they are on disk rather than in memory (:mod:`.spool`); what it still holds
at the end comes from the methods above. Same config, catalog and range: byte-identical files (the run id is a hash
of them; nothing wall-clock is written).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderType
from nautilus_trader.model.events import AccountState

from auction_trader.backtest.engine import VENUE, BacktestContext, build_engine, run_engine
from auction_trader.backtest.metrics import Fill, PnlIdentityError, Trip, compute_metrics, funding_for_span, minute_equity, parse_tags
from auction_trader.backtest.spool import RunSpool, rows_table
from auction_trader.config import AuctionConfig
from auction_trader.data.catalog import file_intervals, is_synthetic
from auction_trader.data.parse import iso
from auction_trader.store import ExecutionStore

FILL_COLUMNS = [
    "ts_event", "side", "order_type", "price", "qty", "liquidity", "commission", "bid_at_fill", "ask_at_fill",
    "setup", "purpose", "signal_ts_min", "client_order_id", "trade_id", "reduce_only",
]
TRADE_COLUMNS = [
    "trade", "side", "ts_open", "ts_close", "qty", "entry_price", "exit_price", "gross_pnl", "fees", "funding",
    "net_pnl", "setup", "exit_reason", "fills",
]
OUTPUT_FILES = [
    "metrics.json", "fills.parquet", "trades.parquet", "features_1m.parquet", "signals_1m.parquet",
    "alerts.json", "execution.db", "report.html",
]

__all__ = ["FILL_COLUMNS", "TRADE_COLUMNS", "RunResult", "StrategyUnavailable", "PnlIdentityError", "run_single", "run_id_for"]


class StrategyUnavailable(RuntimeError):
    """``auction_trader.strategies.AuctionStrategy`` cannot be imported (yet)."""


@dataclass
class RunResult:
    run_id: str
    out_dir: Path
    metrics: dict
    files: dict[str, Path]
    fills: list[Fill] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)
    funding: list = field(default_factory=list)  # FundingEvent
    margin_denials: list[tuple[str, str]] = field(default_factory=list)
    strategy: object = None  # the strategy instance, after the run


# -- strategy ------------------------------------------------------------------------------------


def auction_strategy_factory() -> Callable[[AuctionConfig], object]:
    """The project's strategy, or :class:`StrategyUnavailable` saying why it cannot be used."""
    try:
        from auction_trader.strategies import AuctionStrategy, AuctionStrategyConfig  # noqa: PLC0415
    except ImportError as exc:
        raise StrategyUnavailable(
            f"the auction strategy is not available yet (auction_trader.strategies.AuctionStrategy: {exc})",
        ) from None

    def make(config: AuctionConfig):
        return AuctionStrategy(AuctionStrategyConfig(instrument_id=config.instrument_id, auction=config.model_dump()))

    return make


# -- identity ------------------------------------------------------------------------------------


def strategy_name_of(strategy) -> str:
    return f"{type(strategy).__module__}.{type(strategy).__qualname__}"


def catalog_fingerprint(catalog: Path) -> list:
    """What identifies a catalog's content cheaply: its data files' names (time bounds) and sizes."""
    root = Path(catalog)
    out = []
    data = root / "data"
    if data.is_dir():
        for type_dir in sorted(p for p in data.iterdir() if p.is_dir()):
            for inst_dir in sorted(p for p in type_dir.iterdir() if p.is_dir()):
                for _, _, path in file_intervals(inst_dir):
                    out.append([f"{type_dir.name}/{inst_dir.name}/{path.name}", path.stat().st_size])
    return out


def run_id_for(
    config: AuctionConfig, catalog: Path, start_ns: int | None, end_ns: int | None, strategy_name: str, fingerprint: list | None = None,
) -> str:
    """A short hash of everything that determines the run's outputs (grids name their
    combinations with it too, passing the catalog's ``fingerprint`` computed once)."""
    blob = json.dumps(
        {
            "config": config.model_dump(mode="json"),
            "catalog": catalog_fingerprint(catalog) if fingerprint is None else fingerprint,
            "start": start_ns,
            "end": end_ns,
            "strategy": strategy_name,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# -- the run -------------------------------------------------------------------------------------


def run_single(
    config: AuctionConfig,
    catalog: str | Path,
    start: int | None,
    end: int | None,
    out_dir: str | Path | None = None,
    strategy_factory: Callable[[AuctionConfig], object] | None = None,
    *,
    progress: bool = False,
    progress_minutes: int | None = None,
    log_level: str = "ERROR",
    report: bool = True,
    flatten_at_end: bool = True,
    margin_check: bool = True,
    data=None,
) -> RunResult:
    """Run one backtest (``start``/``end`` in ns, inclusive, None = the catalog's ends).

    ``strategy_factory(config) -> Strategy``; default: AuctionStrategy (raises
    :class:`StrategyUnavailable` when it cannot be imported). ``report=False`` skips report.html
    (grids). ``data``: ticks from :func:`~auction_trader.backtest.engine.load_data`, reused.
    """
    catalog = Path(catalog)
    factory = strategy_factory or auction_strategy_factory()
    strategy = factory(config)
    strategy_name = strategy_name_of(strategy)
    run_id = run_id_for(config, catalog, start, end, strategy_name)
    out = Path(out_dir) if out_dir is not None else Path("runs") / run_id

    engine, ctx = build_engine(
        config, catalog, start, end, strategy, log_level, progress=progress, progress_minutes=progress_minutes, flatten_at_end=flatten_at_end, margin_check=margin_check, data=data,
    )
    _clear_outputs(out)
    spool = None
    if hasattr(strategy, "spool"):
        spool = strategy.spool = RunSpool(out)
    try:
        run_engine(engine, ctx)
        files: dict[str, Path] = {}
        features = signals = None
        if spool is not None:
            files, features, signals = _close_spool(spool, strategy, report)
        run = measure(engine, ctx, run_id, strategy_name, features=features)
        return _write_run(out, run, engine, ctx, report, files=files, signals=signals)
    except BaseException:
        if spool is not None:
            spool.abort()
        raise
    finally:
        engine.dispose()


def _clear_outputs(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)


#: The features_1m columns the metrics read (:func:`~auction_trader.backtest.metrics.compute_metrics`).
METRIC_FEATURES = ["ambiguous_trade_frac_1m", "side_agree", "side_disagree", "of_1m_inferred", "of_1m_exchange", "volume"]


def _close_spool(spool: RunSpool, strategy, report: bool) -> tuple[dict[str, Path], dict | None, list[dict] | None]:
    """Hand the spool what the strategy still holds and complete its files. Returns the files and,
    read back from them, the features the metrics need (every column for the report) and - for
    the report only - the signal records."""
    files: dict[str, Path] = {}
    rest = _call(strategy, "features_columns")
    if rest:
        spool.features(rest)
    path = spool.features_file.close()
    features = None
    if path is not None:
        files["features_1m.parquet"] = path
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=None if report else [c for c in METRIC_FEATURES if c in names])
        features = {name: table.column(name).to_numpy() for name in table.column_names}
    signals = None
    records = _call(strategy, "signal_records")
    if records is not None:
        spool.signals(records)
        files["signals_1m.parquet"] = spool.signals_file.close(empty=pa.table({}))
        if report:
            signals = pq.read_table(files["signals_1m.parquet"]).to_pylist()
    return files, features, signals


@dataclass
class Measured:
    """A finished run's numbers and records, before anything is written (grids stop here)."""

    run_id: str
    doc: dict  # metrics.json's content
    fills: list[Fill]
    trips: list[Trip]
    features: dict[str, np.ndarray] | None
    minute_ts: np.ndarray
    equity: np.ndarray


def measure(engine, ctx: BacktestContext, run_id: str, strategy_name: str, features: dict[str, np.ndarray] | None = None) -> Measured:
    """The metrics of the run ``engine`` just finished (raises PnlIdentityError when the money
    does not add up). ``features``: the features_1m columns (default: the strategy's
    ``features_columns()``)."""
    config, strategy = ctx.config, ctx.strategy
    fills = collect_fills(engine, ctx)
    account = engine.cache.account_for_venue(VENUE)
    starting = Decimal(repr(config.backtest.starting_balance))
    ending = account.balance_total(USDT).as_decimal()
    balances = balance_events(account)
    minute_ts, equity = minute_equity(ctx.venue.minute_quotes, fills, balances, float(starting))
    if features is None:
        features = _call(strategy, "features_columns")
    features = {k: np.asarray(v) for k, v in features.items()} if features else None
    extra = {
        "margin_denials": len(ctx.guard.denied),
        "max_leverage_used": _max_leverage(fills, balances, float(starting)),
        "ticks": ctx.ticks,
    }
    metrics, trips = compute_metrics(
        fills=fills,
        funding_events=ctx.ledger.events,
        starting_balance=starting,
        ending_balance=ending,
        minute_ts=minute_ts,
        equity=equity,
        tick_size=float(ctx.instrument.price_increment),
        features=features,
        ambiguous_frac_max=config.initiative.ambiguous_trade_frac_max,
        extra=extra,
    )
    doc = {"run": _run_info(run_id, strategy_name, ctx), **metrics, "funding": [e.as_row() for e in ctx.ledger.events], "config": config.flat()}
    alerts = _call(strategy, "alerts")
    if alerts is not None:
        doc["alerts"] = len(alerts)
    return Measured(run_id, doc, fills, trips, features, minute_ts, equity)


def _write_run(
    out: Path, run: Measured, engine, ctx: BacktestContext, report: bool, files: dict[str, Path] | None = None, signals: list[dict] | None = None,
) -> RunResult:
    """The run directory's files; ``files``: those already written (the spool's), ``signals``
    their records when the spool wrote signals_1m."""
    strategy, doc, fills = ctx.strategy, run.doc, run.fills
    files = dict(files or {})
    files["fills.parquet"] = _write_table(out / "fills.parquet", fills_table(fills))
    files["trades.parquet"] = _write_table(out / "trades.parquet", trades_table(run.trips))
    if run.features is not None and "features_1m.parquet" not in files:
        files["features_1m.parquet"] = _write_table(out / "features_1m.parquet", pa.table(run.features))
    if "signals_1m.parquet" not in files:
        signals = _call(strategy, "signal_records")
        if signals is not None:
            files["signals_1m.parquet"] = _write_table(out / "signals_1m.parquet", rows_table(signals))
    alerts = _call(strategy, "alerts")
    if alerts is not None:
        files["alerts.json"] = _write_json(out / "alerts.json", alerts)
    positions = _call(strategy, "position_records")
    snapshots = _call(strategy, "state_snapshots")
    files["execution.db"] = write_execution_db(out / "execution.db", positions, snapshots, ctx.ledger.events)
    files["metrics.json"] = _write_json(out / "metrics.json", doc)
    if report:
        from auction_trader.backtest.report import write_report  # noqa: PLC0415 (plotly is heavy)

        files["report.html"] = write_report(
            out / "report.html",
            engine=engine,
            run_id=run.run_id,
            metrics=doc,
            fills=fills,
            minute_ts=run.minute_ts,
            equity=run.equity,
            minute_quotes=ctx.venue.minute_quotes,
            features=run.features,
            signals=signals,
        )
    return RunResult(
        run_id=run.run_id,
        out_dir=out,
        metrics=doc,
        files=files,
        fills=fills,
        trips=run.trips,
        funding=list(ctx.ledger.events),
        margin_denials=list(ctx.guard.denied),
        strategy=strategy,
    )


# -- collection ----------------------------------------------------------------------------------


def collect_fills(engine, ctx: BacktestContext) -> list[Fill]:
    """Every venue fill in venue order, with its order's type, tags and reduce-only flag."""
    out = []
    cache = engine.cache
    for rec in ctx.venue.fills:
        f = rec.fill
        order = cache.order(f.client_order_id)
        commission = f.commission.as_decimal()
        out.append(
            Fill(
                ts=int(f.ts_event),
                side=1 if f.order_side == OrderSide.BUY else -1,
                qty=f.last_qty.as_decimal(),
                price=f.last_px.as_decimal(),
                commission=commission,
                liquidity="MAKER" if f.liquidity_side == LiquiditySide.MAKER else "TAKER",
                order_type=OrderType(f.order_type).name,
                reduce_only=bool(order.is_reduce_only) if order is not None else False,
                client_order_id=f.client_order_id.value,
                trade_id=f.trade_id.value,
                bid=rec.bid,
                ask=rec.ask,
                tags=parse_tags(order.tags if order is not None else None),
            ),
        )
    return out


def balance_events(account) -> list[tuple[int, float]]:
    """(ts_event, wallet balance) after each account state change, in order."""
    out = []
    for event in account.events:
        if isinstance(event, AccountState):
            for b in event.balances:
                if b.currency == USDT:
                    out.append((int(event.ts_event), float(b.total.as_decimal())))
    return out


def _max_leverage(fills: list[Fill], balances: list[tuple[int, float]], starting: float) -> float | None:
    """Largest position notional / wallet balance right after a fill (at the fill price)."""
    if not fills:
        return None
    bal_ts = np.array([b[0] for b in balances], dtype=np.int64)
    best, pos = 0.0, Decimal(0)
    for f in fills:
        pos += f.side * f.qty
        j = int(np.searchsorted(bal_ts, f.ts, side="right")) - 1
        balance = balances[j][1] if j >= 0 else starting
        if balance > 0:
            best = max(best, float(abs(pos) * f.price) / balance)
    return round(best, 6)


def _call(strategy, name: str):
    method = getattr(strategy, name, None)
    return method() if callable(method) else None


def _run_info(run_id: str, strategy_name: str, ctx: BacktestContext) -> dict:
    synthetic = is_synthetic(ctx.catalog)
    return {
        "run_id": run_id,
        "strategy": strategy_name,
        "instrument": str(ctx.instrument.id),
        "catalog": str(ctx.catalog),
        "synthetic_data": synthetic is not None,
        "start": iso(ctx.start_ns) if ctx.start_ns is not None else None,
        "end": iso(ctx.end_ns) if ctx.end_ns is not None else None,
        "first_tick": iso(ctx.first_ts),
        "last_tick": iso(ctx.last_ts),
        "trade_ticks": ctx.trades,
        "quote_ticks": ctx.quotes,
        "end_of_run_flatten": bool(ctx.end_of_run and ctx.end_of_run.fired),
    }


# -- tables --------------------------------------------------------------------------------------


def fills_table(fills: list[Fill]) -> pa.Table:
    def signal_ts(f: Fill):
        raw = f.tags.get("signal_ts_min")
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None

    return pa.table(
        {
            "ts_event": pa.array([f.ts for f in fills], pa.int64()),
            "side": pa.array(["BUY" if f.side > 0 else "SELL" for f in fills], pa.string()),
            "order_type": pa.array([f.order_type for f in fills], pa.string()),
            "price": pa.array([float(f.price) for f in fills], pa.float64()),
            "qty": pa.array([float(f.qty) for f in fills], pa.float64()),
            "liquidity": pa.array([f.liquidity for f in fills], pa.string()),
            "commission": pa.array([float(f.commission) for f in fills], pa.float64()),
            "bid_at_fill": pa.array([f.bid for f in fills], pa.float64()),
            "ask_at_fill": pa.array([f.ask for f in fills], pa.float64()),
            "setup": pa.array([f.setup for f in fills], pa.string()),
            "purpose": pa.array([f.purpose for f in fills], pa.string()),
            "signal_ts_min": pa.array([signal_ts(f) for f in fills], pa.int64()),
            "client_order_id": pa.array([f.client_order_id for f in fills], pa.string()),
            "trade_id": pa.array([f.trade_id for f in fills], pa.string()),
            "reduce_only": pa.array([f.reduce_only for f in fills], pa.bool_()),
        },
    )


def trades_table(trips: list[Trip]) -> pa.Table:
    def f(x):
        return None if x is None else float(x)

    return pa.table(
        {
            "trade": pa.array(list(range(1, len(trips) + 1)), pa.int64()),
            "side": pa.array(["LONG" if t.side > 0 else "SHORT" for t in trips], pa.string()),
            "ts_open": pa.array([t.open_ts for t in trips], pa.int64()),
            "ts_close": pa.array([t.close_ts for t in trips], pa.int64()),
            "qty": pa.array([float(t.qty) for t in trips], pa.float64()),
            "entry_price": pa.array([float(t.entry_price) for t in trips], pa.float64()),
            "exit_price": pa.array([f(t.exit_price) for t in trips], pa.float64()),
            "gross_pnl": pa.array([float(t.gross) for t in trips], pa.float64()),
            "fees": pa.array([float(t.fees) for t in trips], pa.float64()),
            "funding": pa.array([float(t.funding) for t in trips], pa.float64()),
            "net_pnl": pa.array([float(t.net) for t in trips], pa.float64()),
            "setup": pa.array([t.setup for t in trips], pa.string()),
            "exit_reason": pa.array([t.exit_reason for t in trips], pa.string()),
            "fills": pa.array([t.fills for t in trips], pa.int64()),
        },
    )


def _write_table(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def _json_default(v):
    if isinstance(v, Decimal):
        return float(v)
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _finite(obj):
    """NaN / inf -> None, recursively (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def canonical_json(obj) -> str:
    """Compact JSON with sorted keys, NaN as null: the same object always gives the same bytes
    (grid results are compared byte for byte)."""
    return json.dumps(_finite(obj), sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=False)


def _write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False) + "\n")
    return path


def write_execution_db(path: Path, positions: list[dict] | None, snapshots: list[dict] | None, funding_events) -> Path:
    """execution.db from scratch: positions with funding_paid from the ledger, snapshots, funding."""
    path.unlink(missing_ok=True)
    with ExecutionStore(path) as store:
        if positions:
            rows = []
            for row in positions:
                row = dict(row)
                open_ms, close_ms = row.get("ts_ms_open"), row.get("ts_ms_close")
                if open_ms is not None:
                    paid = funding_for_span(funding_events, int(open_ms) * 1_000_000, None if close_ms is None else int(close_ms) * 1_000_000)
                    row["funding_paid"] = float(paid)
                rows.append(row)
            store.insert_positions(rows)
        if snapshots:
            store.insert_state_snapshots(snapshots)
        store.insert_funding(funding_events)
    return path
