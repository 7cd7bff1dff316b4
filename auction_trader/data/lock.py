"""One writer per catalog at a time: an exclusive lock on ``<catalog>/.lock``.

Two imports of overlapping ranges into one catalog used to both succeed and leave every tick of
the overlap twice. Every writer (import, download, synth) now holds this lock from the moment it
reads what the catalog holds until its commit is done; a second writer waits for it (saying whom
it waits for) and fails with a clear message once ``wait`` seconds have passed. Readers (Nautilus,
the backtest, ``features``) need no lock: a commit swaps the data in atomically.

The lock is ``flock`` on a file inside the catalog: it dies with its process, so a crashed
import never leaves a catalog locked. The file is removed on release (while still locked; a
waiter that then gets the lock notices the file is gone and takes a fresh one), so a catalog at
rest holds no lock file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from auction_trader.data.errors import DataError

LOCK_NAME = ".lock"
POLL_S = 0.05


class CatalogLock:
    """``with CatalogLock(root, wait=600):`` - exclusive access to the catalog at ``root``."""

    def __init__(self, root: Path, wait: float = 600.0, log: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.wait = wait
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.fd: int | None = None
        self.created_root = False

    def __enter__(self) -> CatalogLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        import fcntl

        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"{self.root} is a file, not a catalog directory")
        try:
            if not self.root.exists():
                self.root.mkdir(parents=True)
                self.created_root = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise DataError(f"cannot create the catalog directory {self.root}: {exc.strerror}") from None
        deadline = time.monotonic() + self.wait
        told = False
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the catalog directory was removed by the writer before us
                self.root.mkdir(parents=True, exist_ok=True)
                continue
            except OSError as exc:
                raise DataError(f"cannot write to the catalog {self.root}: {exc.strerror} (a writer needs write access to lock it)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise DataError(
                        f"{self.root} is locked by another writer ({holder}); gave up after waiting {self.wait:g} s. "
                        "Wait for it to finish (or pass a longer --wait), then run this again.",
                    ) from None
                if not told:
                    self.log(f"{self.root}: waiting for another writer to finish ({holder})")
                    told = True
                time.sleep(POLL_S)
                continue
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file as it let go: take a fresh one
                os.close(fd)
                continue
            self.fd = fd
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv)[:300], "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
            return

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']}, since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"
