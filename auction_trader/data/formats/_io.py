"""Reading source files line by line without losing good lines to a bad ending.

Downloads get cut off. ``gzip.open`` raises on a truncated stream and drops whatever it had
decoded in its last buffer; reading the stream with ``zlib`` ourselves keeps every complete line
before the damage and reports exactly where it starts.

Text is decoded strictly: a line that is not valid UTF-8 is reported as such (with the byte and
its position) instead of being "repaired" into U+FFFD characters that would end up inside a trade
id, where Nautilus's reader aborts on them. A UTF-8 byte-order mark before the header is dropped.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from auction_trader.data.errors import DataError

CHUNK = 1 << 16  # small input pieces: a corrupt stream loses at most this much decoded text


class Truncated(Exception):
    """The file ends (or breaks) in the middle: ``line`` is the first line that could not be read."""

    def __init__(self, line: int, reason: str, partial: str = "") -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason
        self.partial = partial


Line = tuple[int, str, str | None]  # (line number, text, why the bytes are not text - or None)


def read_lines(path: Path) -> Iterator[Line]:
    """(line number, text without newline, None) for .gz, .zip (first member) and plain files.

    A line whose bytes are not UTF-8 comes as (number, text with the bad bytes escaped, reason):
    the reader rejects it like any malformed row. Raises :class:`Truncated` after the last good
    line when the compressed stream is cut short or corrupt, and :class:`DataError` when the file
    cannot be opened as what its name says.
    """
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None
    if name.endswith(".gz"):
        yield from _split(_gunzip(path), path)
    elif name.endswith(".zip"):
        yield from _split(_unzip(path), path)
    else:
        yield from _split(_plain(path), path)


def _plain(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def read_header(path: Path, lines: Iterator[Line], required: tuple[str, ...] = ()) -> list[str]:
    """The header row's column names; the file's first line. Names the file when it is missing
    the header or any of ``required``."""
    try:
        _, text, bad = next(lines)
    except StopIteration:
        raise DataError(f"{path}: empty file (a header row is required)") from None
    except Truncated as exc:
        raise DataError(f"{path}:1: {exc.reason}") from None
    if bad:
        raise DataError(f"{path}:1: header: {bad}")
    header = [name.strip() for name in next(csv.reader([text]))] if text else []
    missing = [c for c in required if c not in header]
    if missing:
        shown = ", ".join(map(repr, header))[:300]
        raise DataError(f"{path}:1: missing column(s) {', '.join(missing)} (the header has {len(header)} column(s): {shown})")
    return header


class _Broken(Exception):
    """Raised by a chunk reader when the compressed stream is damaged."""


def _gunzip(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        if f.read(2) != b"\x1f\x8b":
            raise DataError(f"{path}: not a gzip file (does not start with the gzip magic bytes)")
        f.seek(0)
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        fed = False
        while chunk := f.read(CHUNK):
            data = chunk
            while data:
                try:
                    out = decomp.decompress(data)
                except zlib.error as exc:
                    raise _Broken(f"corrupt gzip stream ({exc})") from None
                fed = True
                if out:
                    yield out
                if not decomp.eof:
                    break
                # End of one gzip member; a multi-member file continues with the next.
                data = decomp.unused_data
                decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
                fed = False
                if data and not data.startswith(b"\x1f\x8b"):
                    return  # trailing bytes after the last member are ignored, as gzip(1) does
        if fed and not decomp.eof:
            raise _Broken("truncated gzip stream (the file ends before the end-of-stream marker)")


def _unzip(path: Path) -> Iterator[bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a readable zip archive ({exc}); the download may be truncated") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise DataError(f"{path}: the zip archive is empty")
        try:
            with archive.open(members[0]) as f:
                while chunk := f.read(CHUNK):
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise _Broken(f"corrupt zip member {members[0].filename} ({exc})") from None


def _decode(raw: bytes, first: bool) -> tuple[str, str | None]:
    if first and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # the UTF-8 byte-order mark some tools write before the header
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.end]
        return raw.decode("utf-8", "backslashreplace"), f"not valid UTF-8 text (byte 0x{bad[0]:02x} at column {exc.start + 1})"


def _split(chunks: Iterator[bytes], path: Path) -> Iterator[Line]:
    line_no = 0
    rest = b""
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            break
        except _Broken as exc:
            raise Truncated(line_no + 1, str(exc), rest.decode("utf-8", "backslashreplace")) from None
        rest += chunk
        parts = rest.split(b"\n")
        rest = parts.pop()
        for raw in parts:
            line_no += 1
            yield (line_no, *_decode(raw.rstrip(b"\r"), line_no == 1))
    if rest:
        line_no += 1
        yield (line_no, *_decode(rest.rstrip(b"\r"), line_no == 1))
