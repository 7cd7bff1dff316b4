"""Read catalog files back with Nautilus's own ``ParquetDataCatalog``, in a child process.

Nautilus's Rust reader does not raise on data it cannot represent - an out-of-range fixed-point
value, a non-ASCII trade id - it aborts the process. So ``inspect`` runs this module as a child,
file by file, and a file that kills it is named as unreadable instead of taking ``inspect`` down.

Protocol (stdout, one line each): ``check <file>`` before a file, ``ok <rows>`` after it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nautilus_trader.model.data import QuoteTick, TradeTick

CLASSES = {"trade_tick": TradeTick, "quote_tick": QuoteTick}


def main(argv: list[str]) -> int:
    from nautilus_trader.core.nautilus_pyo3 import drop_cvec_pycapsule
    from nautilus_trader.model.data import capsule_to_list
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    root, files = argv[0], argv[1:]
    catalog = ParquetDataCatalog(root)
    for file in files:
        print(f"check {file}", flush=True)
        kind = Path(file).parent.parent.name
        if kind in CLASSES:
            rows = 0
            session = catalog.backend_session(CLASSES[kind], files=[file])
            for chunk in session.to_query_result():
                rows += len(capsule_to_list(chunk))
                drop_cvec_pycapsule(chunk)
        else:
            rows = len(catalog.instruments())
        print(f"ok {rows}", flush=True)
    return 0


def read_back(root: Path, files: list[Path]) -> dict[Path, int | str]:
    """Rows Nautilus reads from each file, or why it could not (its last words, when it died)."""
    out: dict[Path, int | str] = {}
    pending = list(files)
    while pending:
        proc = subprocess.run(
            [sys.executable, "-m", "auction_trader.data.nautilus_read", str(root), *map(str, pending)],
            capture_output=True,
            text=True,
            check=False,
        )
        current = None
        for line in proc.stdout.splitlines():
            if line.startswith("check "):
                current = Path(line[6:])
            elif line.startswith("ok ") and current is not None:
                out[current] = int(line[3:])
                current = None
        if current is None and proc.returncode == 0:
            break
        if current is None:  # died before naming a file: blame the first unread one
            current = next(p for p in pending if p not in out)
        words = [w for w in proc.stderr.splitlines() if w.strip() and not w.startswith(("  ", "stack backtrace", "note:"))]
        out[current] = (words[-1] if words else f"exit status {proc.returncode}")[:300]
        pending = [p for p in pending if p not in out]
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
