"""One grid combination, run where the executor put it: a local worker process, a Dask worker, or
the grid's own process when it has one worker.

A process keeps, in module state, the ticks of the data it was last asked for (loaded once with
:func:`~auction_trader.backtest.engine.load_data`) and one ``BacktestEngine`` built on them, which
every following combination reuses through :func:`~auction_trader.backtest.engine.rearm_engine`
(reset, new strategy, reseeded). A combination whose venue shape (fees, starting balance,
leverage, fill_on_next_quote) differs from the engine's gets a new engine; so does the combination
after a failure, since a run that raised may leave the engine anywhere. Nothing else carries
from one combination to the next, which is why the metrics do not depend on the worker, on what
ran before, or on the order in which runs finish (tests/test_grid.py checks both).

By default an AuctionStrategy combination takes the fast path (:mod:`auction_trader.grid.fast`):
its engine is built without ticks and each run is fed only the ticks that matter while the
strategy is flat, its features caught up from the process's :class:`~.fast.TickTape`; outputs are
byte-identical to the full replay (tests/test_grid_fast.py). ``Task.exact`` (``--exact-replay``)
replays every tick. A process keeps one engine of one kind; switching kinds builds a new one.

Everything crossing a process boundary is plain and picklable: the :class:`Task` (catalog path,
range, fingerprint, configuration, optional strategy factory) and the :class:`Outcome` (the
metrics as a canonical JSON string, so its bytes are the stored bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from auction_trader.backtest.engine import build_engine, load_data, rearm_engine, run_engine, venue_shape
from auction_trader.grid.fast import TickTape, arm_fast, run_fast
from auction_trader.backtest.outputs import auction_strategy_factory, canonical_json, catalog_fingerprint, measure, strategy_name_of
from auction_trader.config import AuctionConfig
from auction_trader.data.errors import DataError

#: metrics.json sections a grid row leaves out: identification (the row's other columns hold
#: it), the full configuration (params_json) and the funding event list (its totals stay).
DROPPED_SECTIONS = ("run", "config", "funding")


@dataclass(frozen=True)
class DataSpec:
    """The data every combination of a grid replays, as a worker finds it."""

    catalog: str  # absolute path, the same on every worker (shared or copied storage)
    instrument_id: str
    start: int | None
    end: int | None
    fingerprint: str  # hash of the catalog's file names and sizes

    @classmethod
    def of(cls, catalog: str | Path, instrument_id: str, start: int | None, end: int | None) -> DataSpec:
        root = Path(catalog).resolve()
        return cls(str(root), instrument_id, start, end, fingerprint_hash(catalog_fingerprint(root)))


def fingerprint_hash(fingerprint: list) -> str:
    return hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    index: int  # the combination's number in the grid
    run_id: str
    config: AuctionConfig
    data: DataSpec
    # config -> Strategy; None: AuctionStrategy. Must be picklable (a module-level function) for
    # worker processes; tests use it to make a combination fail on purpose.
    strategy_factory: Callable[[AuctionConfig], object] | None = None
    # True: every tick through Nautilus (--exact-replay); False: the fast path (grid/fast.py) for
    # AuctionStrategy - byte-identical outputs, Nautilus only while the strategy is in the market.
    exact: bool = False


@dataclass(frozen=True)
class Outcome:
    index: int
    run_id: str
    ok: bool
    metrics_json: str  # the metrics, or {"status": "failed", "error": ..., "traceback": ...}
    seconds: float  # the whole combination in the worker
    engine_seconds: float  # of which inside BacktestEngine.run() (NaN when it did not get there)
    worker: str  # host:pid


class _Slot:
    """The data and the engine a process keeps between combinations."""

    def __init__(self, spec: DataSpec) -> None:
        self.spec = spec
        here = fingerprint_hash(catalog_fingerprint(Path(spec.catalog)))
        if here != spec.fingerprint:
            raise DataError(
                f"{spec.catalog} on {socket.gethostname()} is not the catalog the grid was planned on (its files differ); "
                "every worker must read the same catalog at the same path",
            )
        self.data = load_data(spec.catalog, spec.instrument_id, spec.start, spec.end)
        self._tape: TickTape | None = None
        self.engine = None
        self.ctx = None
        self.fed = False  # the engine was built for the fast path (no ticks added; fed per run)

    @property
    def tape(self) -> TickTape:
        """The ticks as columns for the fast path, built on first use and shared by every run."""
        if self._tape is None:
            self._tape = TickTape.of(self.data[0])
        return self._tape

    def arm(self, config: AuctionConfig, strategy, fed: bool = False) -> None:
        if self.engine is not None and self.fed == fed and venue_shape(config) == venue_shape(self.ctx.config):
            self.ctx = rearm_engine(self.engine, self.ctx, config, strategy)
            return
        self.discard_engine()
        self.engine, self.ctx = build_engine(config, self.spec.catalog, self.spec.start, self.spec.end, strategy, data=self.data, add_ticks=not fed)
        self.fed = fed

    def discard_engine(self) -> None:
        engine, self.engine, self.ctx = self.engine, None, None
        if engine is not None:
            with contextlib.suppress(Exception):  # a broken engine is dropped either way
                engine.dispose()


_SLOT: _Slot | None = None
# Dask runs tasks on a thread pool: one engine per process, so one combination at a time.
_LOCK = threading.Lock()


def run_task(task: Task) -> Outcome:
    """Run one combination; never raises (a failure is an Outcome with the error)."""
    with _LOCK:
        began = time.perf_counter()
        engine_seconds = float("nan")
        try:
            factory = task.strategy_factory or auction_strategy_factory()
            slot = _slot(task.data)
            strategy = factory(task.config)
            fast = not task.exact and fast_path_applies(strategy)
            slot.arm(task.config, strategy, fed=fast)
            if fast:
                arm_fast(slot.engine, slot.ctx, strategy, slot.tape)
            t = time.perf_counter()
            (run_fast if fast else run_engine)(slot.engine, slot.ctx)
            engine_seconds = time.perf_counter() - t
            doc = measure(slot.engine, slot.ctx, task.run_id, strategy_name_of(strategy)).doc
            ok, text = True, canonical_json({k: v for k, v in doc.items() if k not in DROPPED_SECTIONS})
        except Exception as exc:  # noqa: BLE001 - recorded, and the grid goes on
            if _SLOT is not None:
                _SLOT.discard_engine()
            ok, text = False, canonical_json(failure(exc))
        return Outcome(task.index, task.run_id, ok, text, time.perf_counter() - began, engine_seconds, f"{socket.gethostname()}:{os.getpid()}")


def fast_path_applies(strategy) -> bool:
    """The fast path knows what AuctionStrategy reads from ticks (its indicator, caught up from the
    tape, and the cache's latest quote and trade); any other strategy, even a subclass, replays
    every tick."""
    try:
        from auction_trader.strategies import AuctionStrategy  # noqa: PLC0415
    except ImportError:
        return False
    return type(strategy) is AuctionStrategy


def failure(exc: BaseException, *, frames: int = 8) -> dict:
    """What a failed combination stores: the error and the innermost frames of its traceback."""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": "".join(tb[-frames:])}


def release() -> None:
    """Drop the process's engine and ticks (the grid's own process, once its grid is done)."""
    global _SLOT
    with _LOCK:
        if _SLOT is not None:
            _SLOT.discard_engine()
        _SLOT = None


def _slot(spec: DataSpec) -> _Slot:
    global _SLOT
    if _SLOT is None or _SLOT.spec != spec:
        if _SLOT is not None:
            _SLOT.discard_engine()
        _SLOT = None  # free the old ticks before loading the new ones
        _SLOT = _Slot(spec)
    return _SLOT
