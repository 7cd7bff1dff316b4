"""Bybit's public daily archives (trade dumps and ob500 order books) into the cache, then the catalog.

A BTCUSDT day is tens of MB per file, fetched from hosts that drop connections now and then, so
every step assumes it can be interrupted:

* Files land in a cache (``$AUCTION_TRADER_CACHE`` or ``~/.cache/auction-trader``, then
  ``<source>/<symbol>/<file name>``), first as ``<file>.part``. A restart - after a dropped
  connection, or after the whole process was killed - asks only for the missing bytes
  (``Range``), guarded by the validators the server sent (``If-Range``) so a file that changed
  upstream is fetched whole rather than spliced.
* Nothing reaches the importer unverified: the size must match what the server announced, a gzip
  stream must decode to its end-of-stream marker with a correct CRC, a zip must pass its CRC test
  and hold exactly one member. A corrupt archive is moved aside and fetched once more from
  scratch; a second failure fails that day, naming the URL and the file.
* A verified file gets a sidecar (``<file>.json``: size, sha256, the server's validators), so a
  second run neither touches the network nor verifies the archive again; only the importer reads
  it, to find that everything is already in the catalog.
* A day goes into the catalog only when both of its archives are good, so the catalog never holds
  trades without the quotes they are classified against. The importer is idempotent, so
  re-running adds nothing.

Transport is the standard library's ``urllib.request``: no credentials exist here and no
dependency is worth adding for plain HTTPS GETs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from http.client import HTTPException, HTTPResponse
from pathlib import Path

from tqdm import tqdm

from auction_trader.config import AuctionConfig
from auction_trader.data.errors import DataError
from auction_trader.data.importing import ImportReport, TypeReport, import_files
from auction_trader.data.parse import iso

TRADES_HOST = "https://public.bybit.com"
ORDERBOOK_HOST = "https://quote-saver.bycsi.com"
MAX_DAYS = 366
CHUNK = 1 << 16
CACHE_ENV = "AUCTION_TRADER_CACHE"

Log = Callable[[str], None]


# -- what to fetch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One of Bybit's two daily archives: where it is published and how it is imported."""

    name: str  # shown in reports
    source: str  # cache folder, also the importer's format name
    url_path: str  # below the host, with {symbol} and {day}

    def file_name(self, symbol: str, day: date) -> str:
        return self.url_path.format(symbol=symbol, day=day.isoformat()).rsplit("/", 1)[1]


TRADES = Kind("trades", "bybit-trades", "trading/{symbol}/{symbol}{day}.csv.gz")
OB500 = Kind("ob500", "bybit-ob500", "orderbook/linear/{symbol}/{day}_{symbol}_ob500.data.zip")
KINDS = (TRADES, OB500)
_DEFAULT_HOSTS = {TRADES.name: TRADES_HOST, OB500.name: ORDERBOOK_HOST}


@dataclass(frozen=True)
class Archive:
    """One day's file of one kind: its URL and its place in the cache."""

    day: date
    kind: Kind
    url: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.day} {self.kind.name}"


def archive_url(kind: Kind, symbol: str, day: date, base_url: str | None = None) -> str:
    """Bybit's published URL, or the same path below a mirror's base URL."""
    base = base_url.rstrip("/") if base_url else _DEFAULT_HOSTS[kind.name]
    return f"{base}/{kind.url_path.format(symbol=symbol, day=day.isoformat())}"


def archives_for(day: date, symbol: str, cache: Path, base_url: str | None = None) -> list[Archive]:
    return [
        Archive(day, kind, archive_url(kind, symbol, day, base_url), cache / kind.source / symbol / kind.file_name(symbol, day))
        for kind in KINDS
    ]


def resolve_cache_dir(cache_dir: Path | None) -> Path:
    """An explicit directory wins, then ``$AUCTION_TRADER_CACHE``, then the per-user cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "auction-trader"


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str, flag: str) -> date:
    """Only the unambiguous YYYY-MM-DD form: the archives are named by it."""
    text = str(text).strip()
    if not _DAY.fullmatch(text):
        raise DataError(f"{flag} {text!r}: expected a UTC day as YYYY-MM-DD, e.g. 2024-01-31")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise DataError(f"{flag} {text!r}: not a calendar day ({exc})") from None


def day_range(date_from: str, date_to: str, today: date | None = None) -> list[date]:
    """Every UTC day from ``date_from`` to ``date_to`` inclusive, refusing what cannot exist."""
    first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if first > last:
        raise DataError(f"--from {first} is after --to {last}; give the first day first")
    today = today or datetime.now(UTC).date()
    if last > today:
        raise DataError(f"--to {last} is in the future (today is {today} UTC); Bybit publishes a day's archives after it ends")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise DataError(f"{first} -> {last} is {count} days; at most {MAX_DAYS} per call (split the range)")
    return [first + timedelta(days=i) for i in range(count)]


def _check_base_url(base_url: str | None) -> str | None:
    if base_url is None:
        return None
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DataError(f"--base-url {base_url!r}: expected an http(s) URL such as https://mirror.example.com")
    return base_url.rstrip("/")


# -- HTTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpSettings:
    """Network patience. Defaults suit a flaky link to a CDN; tests shrink the delays."""

    timeout: float = 30.0  # seconds per connect/read
    retries: int = 5  # consecutive failed attempts (without new bytes) before giving up
    backoff: float = 1.0  # first retry delay, doubled each time...
    max_backoff: float = 30.0  # ...up to this
    log_interval: float = 10.0  # seconds between plain progress lines when stderr is not a terminal


def user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("auction-trader")
    except PackageNotFoundError:
        ours = "dev"
    return f"auction-trader/{ours} (Python-urllib/{sys.version_info.major}.{sys.version_info.minor})"


class _Missing(Exception):
    """The server has no such file (404/410): no archive for that day."""


class _Failed(Exception):
    """Giving up on this file; the text says why."""


class _Retry(Exception):
    """A transient problem; the next attempt resumes from the bytes already saved."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class _Corrupt(Exception):
    """The bytes on disk are not a complete, intact archive."""


@dataclass
class _Validators:
    """What the server said about the file, kept beside the ``.part`` so a later run can resume."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None  # full file size, when the server announced it

    def if_range(self) -> str | None:
        """A strong ETag, else Last-Modified (If-Range does not accept weak ETags)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (FileNotFoundError, ValueError, OSError):
        return None
    return value if isinstance(value, dict) else None


def _write_json(path: Path, value: dict) -> None:
    """Atomically, so a kill never leaves half a record that looks valid."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _load_validators(part: Path, url: str) -> _Validators:
    """Validators from a previous run, trusted only for the same URL and only with its part file."""
    saved = _read_json(_sidecar(part)) if part.exists() else None
    if not saved or saved.get("url") != url:
        return _Validators(url)
    return _Validators(url, saved.get("etag"), saved.get("last_modified"), saved.get("total"))


def _forget_part(part: Path) -> None:
    part.unlink(missing_ok=True)
    _sidecar(part).unlink(missing_ok=True)


def _request(url: str, offset: int, validators: _Validators) -> urllib.request.Request:
    headers = {"User-Agent": user_agent(), "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validators.if_range():
            headers["If-Range"] = validators.if_range()
    return urllib.request.Request(url, headers=headers)


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _transfer(archive: Archive, part: Path, http: HttpSettings, log: Log) -> _Validators:
    """Bring ``part`` to the whole file, retrying with backoff; each attempt resumes where the last stopped."""
    validators = _load_validators(part, archive.url)
    stalled = 0
    while True:
        before = _size(part)
        try:
            return _attempt(archive, part, validators, http, log)
        except _Retry as exc:
            stalled = 1 if _size(part) > before else stalled + 1
            if stalled > http.retries:
                raise _Failed(f"{archive.url}: giving up after {stalled} attempt(s) without progress: {exc}") from None
            delay = exc.delay if exc.delay is not None else min(http.backoff * 2 ** (stalled - 1), http.max_backoff)
            log(f"{archive.label}: {exc}; retrying in {delay:.1f}s from byte {_size(part):,}")
            time.sleep(delay)


def _attempt(archive: Archive, part: Path, validators: _Validators, http: HttpSettings, log: Log) -> _Validators:
    offset = _size(part)
    try:
        response = urllib.request.urlopen(_request(archive.url, offset, validators), timeout=http.timeout)
    except urllib.error.HTTPError as exc:
        with exc:
            return _http_error(exc, archive, part, offset, validators, http)
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise _Retry(f"cannot reach {archive.url} ({reason})") from None
    with response:
        append, total = _start_body(response, archive, part, offset, validators, log)
        _receive(response, archive, part, append, offset if append else 0, total, http)
    return validators


def _http_error(
    exc: urllib.error.HTTPError, archive: Archive, part: Path, offset: int, validators: _Validators, http: HttpSettings,
) -> _Validators:
    """404 ends the file; 416 may mean the part is already whole; 429/5xx are worth another try."""
    code = exc.code
    if code in (404, 410):
        raise _Missing(f"no archive at {archive.url} (HTTP {code})")
    if code == 416:
        match = _UNSATISFIED_RANGE.fullmatch((exc.headers.get("Content-Range") or "").strip())
        total = int(match.group(1)) if match else validators.total
        if offset and total in (offset, None):
            validators.total = total
            return validators  # the part may already be the whole file: verification decides
        _forget_part(part)
        raise _Retry(f"the server cannot serve bytes {offset:,}- (HTTP 416, file size {total}); restarting from zero")
    if code == 429 or code >= 500:
        after = _int_header(exc.headers.get("Retry-After"))
        delay = min(float(after), http.max_backoff) if after is not None else None
        raise _Retry(f"HTTP {code} {exc.reason}", delay)
    hint = " (some hosts answer 403 for files that do not exist)" if code == 403 else ""
    raise _Failed(f"{archive.url}: HTTP {code} {exc.reason}{hint}")


def _start_body(
    response: HTTPResponse, archive: Archive, part: Path, offset: int, validators: _Validators, log: Log,
) -> tuple[bool, int | None]:
    """Decide between appending (206 for our range) and starting over (200); save the validators."""
    etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
    length = _int_header(response.headers.get("Content-Length"))
    if response.status == 206:
        span = _content_range(response.headers.get("Content-Range"))
        changed = bool(validators.etag and etag and etag != validators.etag)
        if span is None or span[0] != offset or changed:
            _forget_part(part)
            why = "the file changed upstream" if changed else f"unexpected Content-Range {response.headers.get('Content-Range')!r}"
            raise _Retry(f"partial response not usable ({why}); restarting from zero")
        append, total = True, span[2] if span[2] is not None else (offset + length if length is not None else None)
    elif response.status == 200:
        if offset:
            log(f"{archive.label}: the server sent the whole file (range ignored or file changed); restarting from zero")
        append, total = False, length
    else:
        raise _Failed(f"{archive.url}: unexpected HTTP {response.status} {response.reason}")
    validators.etag, validators.last_modified, validators.total = etag, modified, total
    _write_json(_sidecar(part), asdict(validators))
    return append, total


def _receive(
    response: HTTPResponse, archive: Archive, part: Path, append: bool, offset: int, total: int | None, http: HttpSettings,
) -> None:
    """Stream the body into the part file; every byte received stays there even if the link drops."""
    expected = _int_header(response.headers.get("Content-Length"))
    received = 0
    with part.open("ab" if append else "wb") as out, _Progress(archive.label, total, offset, http.log_interval) as progress:
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, HTTPException) as exc:
                raise _Retry(f"connection lost after {offset + received:,} bytes ({exc})") from None
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:  # disk full, permissions: retrying cannot help
                raise _Failed(f"cannot write {part}: {exc}") from None
            received += len(chunk)
            progress.update(len(chunk))
    if expected is not None and received < expected:
        raise _Retry(f"connection closed after {offset + received:,} of {offset + expected:,} bytes")


# -- progress -----------------------------------------------------------------------------------


def _log(message: str) -> None:
    tqdm.write(f"download: {message}", file=sys.stderr)


class _Progress:
    """A tqdm bar on a terminal; elsewhere (CI, files) a plain line every ``interval`` seconds."""

    def __init__(self, label: str, total: int | None, initial: int, interval: float) -> None:
        self.label, self.total, self.done, self.interval = label, total, initial, interval
        self.start_bytes = initial
        self.tty = sys.stderr.isatty()
        self.started = self.last = time.monotonic()
        self.bar = tqdm(
            total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
            file=sys.stderr, disable=not self.tty, leave=True, dynamic_ncols=True,
        )
        if not self.tty:
            where = f" from byte {initial:,}" if initial else ""
            _log(f"{label}: receiving {_mib(total) if total is not None else 'unknown size'}{where}")

    def __enter__(self) -> _Progress:
        return self

    def update(self, n: int) -> None:
        self.done += n
        self.bar.update(n)
        now = time.monotonic()
        if not self.tty and now - self.last >= self.interval:
            self.last = now
            _log(f"{self.label}: {self._status(now)}")

    def _status(self, now: float) -> str:
        rate = (self.done - self.start_bytes) / max(now - self.started, 1e-9)
        if self.total:
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            return f"{_mib(self.done)} of {_mib(self.total)} ({100 * self.done / self.total:.0f}%), {_mib(rate)}/s, ETA {eta:.0f}s"
        return f"{_mib(self.done)}, {_mib(rate)}/s"

    def __exit__(self, *exc_info) -> None:
        self.bar.close()
        if not self.tty and exc_info[0] is None:
            elapsed = time.monotonic() - self.started
            _log(f"{self.label}: received {_mib(self.done - self.start_bytes)} in {elapsed:.1f}s")


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


# -- verification ---------------------------------------------------------------------------------


def verify_archive(path: Path, expected_size: int | None = None) -> None:
    """Raise :class:`DataError` unless ``path`` is a whole, intact archive (see :func:`_verify`)."""
    try:
        _verify(Path(path), expected_size)
    except _Corrupt as exc:
        raise DataError(f"{path}: {exc}") from None


def _verify(path: Path, expected_size: int | None) -> None:
    """Catch truncation and bit rot here, where a re-download can still fix them."""
    size = _size(path)
    if expected_size is not None and size != expected_size:
        raise _Corrupt(f"{size:,} bytes, but the server announced {expected_size:,}")
    if size == 0:
        raise _Corrupt("empty file")
    name = path.name.lower().removesuffix(".part")
    if name.endswith(".gz"):
        _check_gzip(path)
    elif name.endswith(".zip"):
        _check_zip(path)


def _check_gzip(path: Path) -> None:
    """Decode every member to its end-of-stream marker; zlib checks each CRC32 and length.

    Output is decoded in bounded pieces and thrown away: only the stream's integrity matters here.
    """
    decomp, fed, members = zlib.decompressobj(16 + zlib.MAX_WBITS), False, 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            data = chunk
            while data:
                try:
                    decomp.decompress(data, 1 << 24)
                except zlib.error as exc:
                    raise _Corrupt(f"corrupt gzip data after {members} complete member(s) ({exc})") from None
                fed = True
                if decomp.eof:  # whatever follows must be another whole member
                    members += 1
                    data, decomp, fed = decomp.unused_data, zlib.decompressobj(16 + zlib.MAX_WBITS), False
                else:
                    data = decomp.unconsumed_tail
    if fed or members == 0:
        raise _Corrupt("truncated gzip stream (it ends before the end-of-stream marker)")


def _check_zip(path: Path) -> None:
    """The archive's CRCs must hold, and Bybit's day archive holds exactly one file."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) != 1:
                raise _Corrupt(f"expected exactly one file in the zip archive, found {len(members)}")
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, OSError) as exc:
        raise _Corrupt(f"not a readable zip archive ({exc})") from None
    if bad is not None:
        raise _Corrupt(f"zip member {bad} fails its CRC check")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- the cache ----------------------------------------------------------------------------------


def _record(path: Path, validators: _Validators | None) -> None:
    """The sidecar that lets the next run trust this file without reading it."""
    stat = path.stat()
    _write_json(
        _sidecar(path),
        {
            "file": path.name,
            "url": validators.url if validators else None,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": _sha256(path),
            "etag": validators.etag if validators else None,
            "last_modified": validators.last_modified if validators else None,
            "content_length": validators.total if validators else None,
            "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )


def _cached(path: Path, log: Log) -> bool:
    """True for a file verified before and unchanged since (or placed here by hand and intact)."""
    if not path.is_file():
        return False
    record = _read_json(_sidecar(path))
    stat = path.stat()
    if record and record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        return True
    if record and record.get("size") == stat.st_size and record.get("sha256") == _sha256(path):
        record["mtime_ns"] = stat.st_mtime_ns  # touched (copied, restored) but the same bytes
        _write_json(_sidecar(path), record)
        return True
    if record:
        log(f"{path}: changed since it was verified; downloading it again")
        path.unlink()
        _sidecar(path).unlink(missing_ok=True)
        return False
    try:
        _verify(path, None)
    except _Corrupt as exc:
        log(f"{path}: unverified and unusable ({exc}); downloading it again")
        path.unlink()
        return False
    _record(path, None)
    return True


def _move_aside(part: Path, path: Path) -> Path:
    """Keep the bad copy for inspection without letting it be mistaken for the archive."""
    aside = path.with_name(path.name + ".corrupt")
    os.replace(part, aside)
    _sidecar(part).unlink(missing_ok=True)
    return aside


# -- one file, one day ----------------------------------------------------------------------------


@dataclass
class FileResult:
    """One archive's fate: fetched or not, and what importing it did."""

    archive: Archive
    status: str  # downloaded | cached | missing | failed
    size: int = 0
    message: str = ""
    report: ImportReport | None = None
    import_note: str = ""  # why it was not imported, or the import's error
    import_failed: bool = False

    @property
    def available(self) -> bool:
        return self.status in ("downloaded", "cached")

    @property
    def ok(self) -> bool:
        return self.available and self.report is not None and not self.import_failed


def fetch(archive: Archive, http: HttpSettings | None = None, log: Log = _log) -> FileResult:
    """The archive in the cache, verified: from the cache if it is there, else from the server."""
    http = http or HttpSettings()
    archive.path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(archive.path, log):
        if _cached(archive.path, log):
            return FileResult(archive, "cached", _size(archive.path))
        return _download(archive, http, log)


def _download(archive: Archive, http: HttpSettings, log: Log) -> FileResult:
    path, part = archive.path, _part(archive.path)
    for attempt in (1, 2):
        try:
            validators = _transfer(archive, part, http, log)
            _verify(part, validators.total)
        except _Missing as exc:
            _forget_part(part)
            return FileResult(archive, "missing", message=str(exc))
        except _Failed as exc:
            kept = f" ({_size(part):,} bytes kept in {part} for the next run to resume)" if _size(part) else ""
            return FileResult(archive, "failed", _size(part), message=f"{exc}{kept}")
        except _Corrupt as exc:
            aside = _move_aside(part, path)
            if attempt == 1:
                log(f"{archive.label}: {archive.url} -> {path.name} is corrupt ({exc}); moved to {aside.name}, downloading again from scratch")
                continue
            message = f"{archive.url} -> {path}: corrupt again after a fresh download ({exc}); the bad copy is at {aside}"
            return FileResult(archive, "failed", message=message)
        os.replace(part, path)
        _sidecar(part).unlink(missing_ok=True)
        _record(path, validators)
        path.with_name(path.name + ".corrupt").unlink(missing_ok=True)
        return FileResult(archive, "downloaded", _size(path))
    raise AssertionError("unreachable")


@contextmanager
def _exclusive(path: Path, log: Log) -> Iterator[None]:
    """One process per cached file: two runs appending to one ``.part`` would only make garbage."""
    try:
        import fcntl
    except ImportError:  # not POSIX: verification still catches what a collision would break
        yield
        return
    with path.with_name(path.name + ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"{path.name}: another process is downloading it; waiting")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def import_day(results: list[FileResult], catalog: Path, skip_bad_rows: bool, config: AuctionConfig, log: Log, **limits) -> None:
    """Import a day only when all its archives are good: trades without quotes would mislead."""
    if not all(r.available for r in results):
        for r in results:
            if r.available:
                r.import_note = "not imported: the day's other archive is missing or failed"
        return
    for n, r in enumerate(results):
        try:
            r.report = import_files(
                r.archive.kind.source, [r.archive.path], catalog, skip_bad_rows=skip_bad_rows, config=config,
                warn=lambda message, label=r.archive.label: log(f"{label}: {message}"), **limits,
            )
        except DataError as exc:
            r.import_failed, r.import_note = True, f"import failed: {exc}"
            log(f"{r.archive.label}: import failed: {exc}")
            for later in results[n + 1 :]:  # do not add the rest of a day that is already broken
                later.import_note = f"not imported: the day's {r.archive.kind.name} import failed"
            if n:
                r.import_note += f" ({', '.join(x.archive.kind.name for x in results[:n])} of this day already imported)"
            return


def download(
    date_from: str,
    date_to: str,
    catalog: Path,
    base_url: str | None = None,
    cache_dir: Path | None = None,
    skip_bad_rows: bool = False,
    config: AuctionConfig | None = None,
    *,
    http: HttpSettings | None = None,
    earliest: int | None = None,
    latest: int | None = None,
    wait: float = 600.0,
) -> int:
    """Fetch, verify and import every day from ``date_from`` to ``date_to``; 0 only if all landed.

    Problems with one day (no archive, a broken transfer, a corrupt file, rows the importer
    refuses) are reported and the other days go ahead, so one bad day never costs a long run.
    The summary table goes to stdout, progress and diagnostics to stderr.
    """
    config = config or AuctionConfig()
    today = datetime.now(UTC).date()
    days = day_range(date_from, date_to, today)
    base = _check_base_url(base_url)
    catalog = Path(catalog)
    from auction_trader.data.catalog import is_synthetic

    if is_synthetic(catalog):
        raise DataError(f"{catalog} holds a synthetic market; download real data into a separate catalog")
    cache = resolve_cache_dir(cache_dir)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the download cache {cache}: {exc} (choose another with --cache)") from None
    symbol = config.market.instrument
    _log(f"{symbol} {days[0]} -> {days[-1]} ({len(days)} day(s)); cache {cache}; catalog {catalog}")
    results: list[FileResult] = []
    for day in days:
        day_results = [fetch(archive, http, _log) for archive in archives_for(day, symbol, cache, base)]
        for r in day_results:
            if r.status == "missing" and day >= today - timedelta(days=1):
                r.message += "; Bybit publishes a day's archives some hours after the day ends"
            if not r.available:
                _log(f"{r.archive.label}: {r.status}: {r.message}")
        import_day(day_results, catalog, skip_bad_rows, config, _log, earliest=earliest, latest=latest, wait=wait)
        results += day_results
    print(format_summary(results, symbol))
    return 0 if all(r.ok for r in results) else 1


# -- the summary ----------------------------------------------------------------------------------


def _type_report(r: FileResult) -> TypeReport | None:
    if r.report is None:
        return None
    return r.report.trades if r.archive.kind is TRADES else r.report.quotes


def _span(t: TypeReport | None, day: date) -> str:
    if t is None or t.first is None:
        return "-"

    def show(ns: int) -> str:
        text = iso(ns)[:23]
        return text[11:] if text[:10] == day.isoformat() else text

    return f"{show(t.first)} -> {show(t.last)}"


def _row(r: FileResult) -> list[str]:
    t = _type_report(r)
    size = _mib(r.size) if r.size else "-"
    if t is None or r.report is None:
        return [str(r.archive.day), r.archive.kind.name, r.status, size, "-", "-", "-", "-", "-"]
    return [
        str(r.archive.day), r.archive.kind.name, r.status, size,
        f"{r.report.rows_read:,}", f"{t.written:,}", f"{t.duplicates:,}", f"{r.report.rejected:,}",
        _span(t, r.archive.day),
    ]


HEADER = ["day", "kind", "status", "size", "rows read", "written", "in catalog", "rejected", "span (UTC)"]


def format_summary(results: list[FileResult], symbol: str = "BTCUSDT") -> str:
    """One table, per day and archive: what was fetched and what the import did with it."""
    rows = [HEADER] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    numeric = {3, 4, 5, 6, 7}
    lines = [f"download summary ({symbol}):"]
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    problems = [r for r in results if not r.ok]
    if problems:
        lines.append("problems:")
        for r in problems:
            lines.append(f"  {r.archive.label} ({r.archive.path.name}): {r.message or r.import_note}")
    rejects = {str(r.report.rejects_file) for r in results if r.report and r.report.rejects_file}
    for path in sorted(rejects):
        lines.append(f"rejected rows are listed in {path}")
    days = sorted({r.archive.day for r in results})
    good = [d for d in days if all(r.ok for r in results if r.archive.day == d)]
    counts = {s: sum(r.status == s for r in results) for s in ("downloaded", "cached", "missing", "failed")}
    lines.append(
        f"{len(good)} of {len(days)} day(s) imported; files: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + (f"; {sum(r.import_failed for r in results)} import(s) failed" if any(r.import_failed for r in results) else ""),
    )
    return "\n".join(lines)
