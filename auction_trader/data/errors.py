"""Bad input, reported the way a trader fixing a file needs it: file, line, field, what was wrong.

Imports are strict by default: the first malformed row raises :class:`DataError` and nothing is
written. With ``--skip-bad-rows`` each bad row becomes a :class:`Reject`, the good rows land, and
the rejects are added to a CSV beside the catalog (``<catalog>.rejects.csv``) - once: importing
the same file again does not list its bad rows again.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass
from pathlib import Path

SKIP_HINT = " (use --skip-bad-rows to skip such rows and import the rest)"


@dataclass(frozen=True)
class Reject:
    file: str
    line: int
    field: str
    reason: str
    raw: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


class DataError(Exception):
    """An input problem that stops an import; its text names file, line and field."""

    def __init__(self, message: str, reject: Reject | None = None) -> None:
        super().__init__(message)
        self.reject = reject

    @classmethod
    def from_reject(cls, reject: Reject, hint: str = SKIP_HINT) -> DataError:
        return cls(f"{reject}{hint}", reject)


class BadRow(Exception):
    """Raised by a row parser; the caller knows the file and line and turns it into a Reject."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Rejects:
    """The rejected rows of one source file. In strict mode the first one ends the import.

    The first :data:`KEEP` are kept for the report; all of them go to ``spool`` (a CSV) when one
    is given, so a file of millions of bad rows costs no memory.
    """

    KEEP = 1_000

    def __init__(self, file: str | Path, strict: bool, spool: Path | None = None) -> None:
        self.file = str(file)
        self.strict = strict
        self.items: list[Reject] = []
        self.count = 0
        self.spool = spool
        self._out = None

    def add(self, line: int, field: str, reason: str, raw: str = "") -> None:
        reject = Reject(self.file, line, field, reason, raw[:500])
        if self.strict:
            raise DataError.from_reject(reject)
        self.count += 1
        if len(self.items) < self.KEEP:
            self.items.append(reject)
        if self.spool is not None:
            if self._out is None:
                self._file = self.spool.open("w", newline="")
                self._out = csv.writer(self._file)
            self._out.writerow(astuple(reject))

    def close(self) -> None:
        if self._out is not None:
            self._file.close()
            self._out = None

    def all(self) -> list[Reject]:
        """Every reject, in line order (read back from the spool when there is one)."""
        self.close()
        if self.spool is None or not self.spool.exists():
            return sorted(self.items, key=lambda r: r.line)
        with self.spool.open(newline="") as f:
            rows = [Reject(a, int(b), c, d, e) for a, b, c, d, e in csv.reader(f)]
        return sorted(rows, key=lambda r: r.line)

    def __len__(self) -> int:
        return self.count


def rejects_path(catalog: Path) -> Path:
    """Where rejected rows go: a CSV beside the catalog directory."""
    catalog = Path(catalog).resolve()
    return catalog.with_name(catalog.name + ".rejects.csv")


HEADER = ["file", "line", "field", "reason", "raw"]


def append_rejects(catalog: Path, rejects: list[Reject]) -> Path | None:
    """Add rejects to the catalog's CSV, leaving out those it already lists (same file, line,
    field and reason): re-importing a file does not list its bad rows twice."""
    if not rejects:
        return None
    path = rejects_path(catalog)
    seen: set[tuple[str, str, str, str]] = set()
    if path.exists():
        with path.open(newline="") as f:
            seen = {(r[0], r[1], r[2], r[3]) for r in csv.reader(f) if len(r) >= 4}
    fresh = [r for r in sorted(rejects, key=lambda r: (r.file, r.line)) if (r.file, str(r.line), r.field, r.reason) not in seen]
    if not fresh and path.exists():
        return path
    try:
        with path.open("a", newline="") as f:
            writer = csv.writer(f)
            if not seen:
                writer.writerow(HEADER)
            writer.writerows(astuple(r) for r in fresh)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the rejected rows ({exc.strerror})") from None
    return path


def check_output_file(path: Path, flag: str = "--out") -> None:
    """Refuse an output file that cannot be written, before any work is done: a directory, a path
    under a file, a directory without write access."""
    import os

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{flag} {path}: is a directory; give the path of the file to write")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{flag} {path}: {parent} is a file, so no directory can be made there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{flag} {path}: cannot write in {parent} (permission denied)")
    if path.exists() and not os.access(path, os.W_OK):
        raise DataError(f"{flag} {path}: the file exists and cannot be overwritten (permission denied)")
