"""Bad input, reported the way a trader fixing a file needs it: file, line, field, what was wrong.

Imports are strict by default: the first malformed row raises :class:`DataError` and nothing is
written. With ``--skip-bad-rows`` each bad row becomes a :class:`Reject`, the good rows land, and
the rejects are appended to a CSV beside the catalog (``<catalog>.rejects.csv``).
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
    """The rejected rows of one source file. In strict mode the first one ends the import."""

    def __init__(self, file: str | Path, strict: bool) -> None:
        self.file = str(file)
        self.strict = strict
        self.items: list[Reject] = []

    def add(self, line: int, field: str, reason: str, raw: str = "") -> None:
        reject = Reject(self.file, line, field, reason, raw[:500])
        if self.strict:
            raise DataError.from_reject(reject)
        self.items.append(reject)

    def __len__(self) -> int:
        return len(self.items)


def rejects_path(catalog: Path) -> Path:
    """Where rejected rows go: a CSV beside the catalog directory."""
    catalog = Path(catalog).resolve()
    return catalog.with_name(catalog.name + ".rejects.csv")


def append_rejects(catalog: Path, rejects: list[Reject]) -> Path | None:
    if not rejects:
        return None
    path = rejects_path(catalog)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["file", "line", "field", "reason", "raw"])
        writer.writerows(astuple(r) for r in sorted(rejects, key=lambda r: (r.file, r.line)))
    return path
