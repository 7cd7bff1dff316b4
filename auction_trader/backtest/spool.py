"""A run's per-minute files written while it runs: ``features_1m.parquet`` and ``signals_1m.parquet``.

A streamed backtest holds no range of ticks (:mod:`.stream`), but the strategy's per-minute records
would still pile up until the end - a dict per minute of signals, a row of features - so peak RSS
would grow with the range. :func:`~auction_trader.backtest.outputs.run_single` gives the strategy a
:class:`RunSpool` (the strategy's ``spool`` attribute); the strategy hands it finished records as it
goes (AuctionStrategy: a day of minutes at a time, signals once no open trade can amend them) and
forgets them, and the spool writes a Parquet row group every :data:`ROW_GROUP_ROWS` rows.

Same bytes as writing the whole table at once (``pyarrow.parquet.write_table``) for a run of up to
:data:`ROW_GROUP_ROWS` minutes: one row group, the same table, the same writer. A longer run's file
has a row group per :data:`ROW_GROUP_ROWS` rows (pyarrow cannot append to an open row group),
whichever way the ticks came - streamed and in-memory runs write the same bytes.

Files are written under a temporary name and renamed when complete; a failed run leaves none.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Rows per row group of the per-minute files: a day of minutes (what is held in memory at most).
ROW_GROUP_ROWS = 1440

__all__ = ["ROW_GROUP_ROWS", "ParquetSpool", "RunSpool", "rows_table"]


def rows_table(rows: list[dict], columns: list[str] | None = None) -> pa.Table:
    """A list of dicts as a table; columns in first-seen key order (or ``columns``), values typed
    by pyarrow from the whole list; dicts and lists as compact sorted JSON."""
    if columns is None:
        columns = []
        for row in rows:
            for key in row:
                if key not in columns:
                    columns.append(key)
    return pa.table({c: pa.array([_plain(r.get(c)) for r in rows]) for c in columns}) if columns else pa.table({})


def _plain(v):
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return v.item()
    return v


class ParquetSpool(ABC):
    """One Parquet file written a row group at a time: rows are buffered until
    ``row_group_rows`` of them are there, then written (the last group at :meth:`close`).
    A subclass says what a buffered part is (:meth:`_take`)."""

    def __init__(self, path: Path, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        if row_group_rows < 1:
            raise ValueError(f"row_group_rows must be >= 1, got {row_group_rows}")
        self.path = Path(path)
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.row_group_rows = row_group_rows
        self.rows = 0  # rows added so far
        self._writer: pq.ParquetWriter | None = None
        self._parts: list = []  # what the next row group is made of
        self._buffered = 0

    def _add(self, part, n: int) -> None:
        self._parts.append(part)
        self._buffered += n
        self.rows += n
        while self._buffered >= self.row_group_rows:
            self._write(self.row_group_rows)

    def _write(self, n: int) -> None:
        """Write the first ``n`` buffered rows as one row group."""
        table = self._take(n)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.partial, table.schema)
        elif not table.schema.equals(self._writer.schema):
            if table.schema.names != self._writer.schema.names:
                raise ValueError(f"{self.path.name}: the columns changed during the run: {self._writer.schema.names} then {table.schema.names}")
            try:
                table = table.cast(self._writer.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(f"{self.path.name}: a column changed type during the run ({exc})") from None
        self._writer.write_table(table)
        self._buffered -= n
        # pyarrow's default pool (mimalloc on Linux) keeps the pages of freed buffers: without this
        # a streamed run's RSS grew by ~7 MB per simulated day (one row group at a time, every
        # drain), none of it live. Giving them back keeps the run's RSS flat; the bytes written
        # are the same.
        pa.default_memory_pool().release_unused()

    @abstractmethod
    def _take(self, n: int) -> pa.Table:
        """The first ``n`` buffered rows as a table, removed from the buffer."""

    def close(self, empty: pa.Table | None = None) -> Path | None:
        """Write what is buffered and complete the file. With no row at all: ``empty`` is
        written if given (the file exists, with no rows), else no file; returns the path or None."""
        if self._buffered:
            self._write(self._buffered)
        if self._writer is None:
            if empty is None:
                return None
            pq.write_table(empty, self.partial)
        else:
            self._writer.close()
            self._writer = None
        self.partial.replace(self.path)
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file (a failed run)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.partial.unlink(missing_ok=True)


class _ColumnSpool(ParquetSpool):
    """Rows as dicts of equal-length numpy columns (the feature engine's ``drain``)."""

    def add(self, columns: dict[str, np.ndarray]) -> None:
        n = len(next(iter(columns.values()))) if columns else 0
        if n:
            self._add({k: np.asarray(v) for k, v in columns.items()}, n)

    def _take(self, n: int):
        names = list(self._parts[0])
        merged = {k: np.concatenate([p[k] for p in self._parts]) if len(self._parts) > 1 else self._parts[0][k] for k in names}
        head = {k: v[:n] for k, v in merged.items()}
        rest = {k: v[n:] for k, v in merged.items()}
        self._parts = [rest] if len(rest[names[0]]) else []
        return pa.table(head)


class _RowSpool(ParquetSpool):
    """Rows as dicts (the signal records): columns in first-seen key order over the run."""

    def __init__(self, path: Path, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        super().__init__(path, row_group_rows)
        self._columns: list[str] = []

    def add(self, rows: list[dict]) -> None:
        for row in rows:
            for key in row:
                if key not in self._columns:
                    self._columns.append(key)
        if rows:
            self._add(list(rows), len(rows))

    def _take(self, n: int):
        rows = [r for part in self._parts for r in part]
        head, rest = rows[:n], rows[n:]
        self._parts = [rest] if rest else []
        return rows_table(head, self._columns)


class RunSpool:
    """The per-minute files of one run directory, as the strategy hands its records over."""

    def __init__(self, out: Path, row_group_rows: int | None = None) -> None:
        row_group_rows = ROW_GROUP_ROWS if row_group_rows is None else row_group_rows
        self.features_file = _ColumnSpool(Path(out) / "features_1m.parquet", row_group_rows)
        self.signals_file = _RowSpool(Path(out) / "signals_1m.parquet", row_group_rows)

    def features(self, columns: dict[str, np.ndarray]) -> None:
        """Feature rows (``{column: array}``), in time order."""
        self.features_file.add(columns)

    def signals(self, records: list[dict]) -> None:
        """Finished ``signals_1m`` records (nothing will amend them), in time order."""
        self.signals_file.add(records)

    def abort(self) -> None:
        self.features_file.abort()
        self.signals_file.abort()
