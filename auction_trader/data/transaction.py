"""All-or-nothing, crash-safe catalog commits: build the next ``data/`` beside it, swap it in at once.

A catalog is ``<root>/data/...`` (Nautilus's layout) plus, for the synthetic market,
``<root>/SYNTHETIC.json``. A writer never touches ``data/`` file by file. It builds the next
version in ``<root>/.txn/<id>/next/``: every file that stays is hard-linked there (no copy, no
extra space), new and rewritten files are written there. The commit then

1. syncs the new tree to disk,
2. writes ``<root>/.txn/<id>/journal.json`` (atomically: temp file, sync, rename) - the commit
   point: from here on the commit completes, even after a crash,
3. swaps ``<root>/data`` and the new tree in one ``renameat2(RENAME_EXCHANGE)`` call, so a reader
   sees the old catalog or the new one, never a mix (where the kernel lacks it: two renames, with
   a moment in which ``data/`` is absent, never a mix either),
4. puts the new ``SYNTHETIC.json`` in place, if any,
5. deletes the transaction directory (the old tree; files still in use stay readable by whoever
   has them open).

Every writer first runs :func:`recover` under the catalog lock: a transaction without a journal
is the leftover of a writer that died before its commit point and is deleted; one with a journal
is completed. Either way the catalog ends up as it was before that writer, or as that writer
would have left it. Tests inject a crash before every one of these filesystem steps
(:data:`_crash_hook`).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from auction_trader.data.errors import DataError

TXN_DIR = ".txn"
MARKER = "SYNTHETIC.json"
JOURNAL = "journal.json"

# Tests set this to a function called with the name of every filesystem step of a write, before
# it is taken; raising from it emulates the process dying at that point.
_crash_hook: Callable[[str], None] | None = None


def step(name: str) -> None:
    if _crash_hook is not None:
        _crash_hook(name)


class Transaction:
    """The next version of the catalog at ``root``; the caller holds the catalog lock."""

    def __init__(self, root: Path, keep_existing: bool = True) -> None:
        self.root = Path(root)
        self.dir = self.root / TXN_DIR / uuid.uuid4().hex[:12]
        self.next = self.dir / "next"
        self.scratch = self.dir / "scratch"  # staging space for the writer, never committed
        self.journaled = False  # past the commit point: the commit completes, now or on recovery
        step("begin")
        self.scratch.mkdir(parents=True)
        (self.next / "data").mkdir(parents=True)
        if keep_existing:
            self._link_existing()

    # -- building the next tree ---------------------------------------------------------------

    def _link_existing(self) -> None:
        data = self.root / "data"
        if not data.is_dir():
            return
        for directory, subdirs, files in os.walk(data):
            here = Path(directory)
            rel = here.relative_to(self.root)
            for name in subdirs:
                if (here / name).is_symlink():
                    raise DataError(
                        f"{here / name} is a symbolic link to another directory; a catalog's data must "
                        "live in one directory tree for its commits to be atomic (move it back, then retry)",
                    )
            (self.next / rel).mkdir(parents=True, exist_ok=True)
            for name in sorted(files):
                step(f"link {rel / name}")
                _link_or_copy(here / name, self.next / rel / name)

    def path(self, rel: str | Path) -> Path:
        """Where a file of the catalog (``data/...``, relative to the root) is built."""
        return self.next / rel

    def remove(self, rel: str | Path) -> None:
        """Leave a file of the current catalog out of the next version."""
        step(f"remove {rel}")
        (self.next / rel).unlink(missing_ok=True)

    def set_marker(self, marker: dict) -> None:
        step("marker staged")
        (self.next / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")

    # -- commit -------------------------------------------------------------------------------

    def commit(self) -> None:
        """Steps 1-5 of the module doc."""
        shutil.rmtree(self.scratch, ignore_errors=True)
        step("sync")
        _sync_tree(self.next)
        data = self.next / "data"
        journal = {"next_inode": os.stat(data).st_ino, "marker": (self.next / MARKER).exists()}
        step("journal")
        tmp = self.dir / (JOURNAL + ".tmp")
        with open(tmp, "w") as f:
            json.dump(journal, f)
            f.flush()
            os.fsync(f.fileno())
        step("journal rename")
        os.replace(tmp, self.dir / JOURNAL)
        self.journaled = True
        _fsync_dir(self.dir)
        try:
            _complete(self.root, self.dir, journal)
        except OSError as exc:
            raise DataError(
                f"{self.root}: the commit is decided but could not be finished ({exc}); the next write to "
                "the catalog, or `inspect`, completes it",
            ) from None

    def abort(self) -> None:
        """Discard everything staged - never a transaction past its commit point."""
        if self.journaled:
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        _remove_empty(self.root / TXN_DIR)


def _complete(root: Path, txn: Path, journal: dict) -> None:
    """Steps 3-5, idempotent: safe to run again after a crash in any of them."""
    data, new = root / "data", txn / "next" / "data"
    swapped = data.exists() and os.stat(data).st_ino == journal["next_inode"]
    if not swapped:
        if data.exists():
            step("swap")
            if not _exchange(new, data):
                step("swap: move the old tree aside")
                os.replace(data, txn / "old-data")
                step("swap: move the new tree in")
                os.replace(new, data)
        else:
            step("swap")
            os.replace(new, data)
        _fsync_dir(root)
    staged_marker = txn / "next" / MARKER
    if journal["marker"] and staged_marker.exists():
        step("marker")
        os.replace(staged_marker, root / MARKER)
        _fsync_dir(root)
    step("cleanup")
    _discard(txn)
    _remove_empty(root / TXN_DIR)


def _discard(txn: Path) -> None:
    """Delete a finished transaction (the old tree). The commit is done whatever happens here: a
    file that cannot be removed (a read-only or immutable leftover) is reported, and the next
    writer tries again."""
    try:
        shutil.rmtree(txn)
    except OSError as exc:
        print(f"warning: the commit is complete, but its leftovers could not be removed ({exc}); "
              "the next write to the catalog tries again", file=sys.stderr)


def recover(root: Path) -> list[str]:
    """Finish or undo whatever an interrupted writer left in ``root``; what was done, as text."""
    done = []
    base = Path(root) / TXN_DIR
    if not base.is_dir():
        return done
    for txn in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            journal = json.loads((txn / JOURNAL).read_text())
        except (OSError, ValueError):
            journal = None
        if journal is None:
            step("recover: roll back")
            _discard(txn)
            done.append(f"removed the leftovers of a write to {root} that was interrupted before its commit")
        else:
            _complete(Path(root), txn, journal)
            done.append(f"completed a commit to {root} that was interrupted half-way")
    _remove_empty(base)
    return done


# -- filesystem helpers -----------------------------------------------------------------------------


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EOPNOTSUPP):
            raise
        shutil.copy2(src, dst)


_RENAME_EXCHANGE = 2
_renameat2 = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system cannot."""
    global _renameat2
    if _renameat2 is None:
        try:
            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
        except (AttributeError, OSError):
            _renameat2 = False
    if _renameat2 is False:
        return False
    at_fdcwd = -100
    if _renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sync_tree(top: Path) -> None:
    """fsync every file written (not linked) into ``top`` and every directory of it."""
    for directory, _, files in os.walk(top):
        for name in files:
            path = Path(directory) / name
            if os.stat(path).st_nlink == 1:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(directory))


def _remove_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
