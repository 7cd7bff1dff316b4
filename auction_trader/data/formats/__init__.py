"""Source formats the importer understands, one module each, all read the same way: streamed.

A format reads one file line by line into float rows
(:class:`~auction_trader.data.parse.TradeRows` / :class:`~auction_trader.data.parse.QuoteRows`)
and yields them in chunks of about :data:`CHUNK_ROWS` rows, so a file of any length is read in
bounded memory. It reports each row it cannot parse to a
:class:`~auction_trader.data.errors.Rejects` (which raises at once in strict mode). Exact units,
ranges, identifiers, plausible times, time order, duplicates and the catalog are the importer's
job (:mod:`auction_trader.data.validate`, :mod:`auction_trader.data.importing`), the same for
every format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from auction_trader.data.errors import Rejects
from auction_trader.data.parse import QuoteRows, TradeRows
from auction_trader.instrument import InstrumentSpec, raw_symbol

CHUNK_ROWS = 100_000


@dataclass
class ImportOptions:
    """What a format needs to know beyond the file: whose data it should be, and CSV mapping."""

    instrument_id: str
    kind: str | None = None  # csv: "trades" or "quotes"
    columns: dict[str, str] = field(default_factory=dict)  # csv: our field -> file column
    ts_unit: str = "auto"  # csv: auto, s, ms, us, ns, iso
    warn: Callable[[str], None] = print
    # Precision when already known (BTCUSDT, or an instrument the catalog holds); None: from the data.
    spec: InstrumentSpec | None = None

    @property
    def raw_symbol(self) -> str:
        return raw_symbol(self.instrument_id)


@dataclass
class FileInfo:
    """What a reader learned about one file as a whole (filled in while it is read)."""

    rows_read: int = 0
    notes: list[str] = field(default_factory=list)
    allow_descending: bool = False  # some dumps are written newest first


@dataclass
class Chunk:
    """Consecutive rows of one file, in file order."""

    trades: TradeRows | None = None
    quotes: QuoteRows | None = None


class ChunkBuffer:
    """Collects a reader's rows and hands them out every :data:`CHUNK_ROWS` rows."""

    def __init__(self, trades: TradeRows | None = None, quotes: QuoteRows | None = None) -> None:
        self.trades, self.quotes = trades, quotes

    def full(self) -> bool:
        """Checked by readers every :meth:`every` rows; a chunk may run over by that much."""
        return len(self.trades or ()) + len(self.quotes or ()) >= CHUNK_ROWS

    @staticmethod
    def every() -> int:
        return min(1024, CHUNK_ROWS)

    def take(self) -> Chunk:
        chunk = Chunk(self.trades, self.quotes)
        self.trades = self.trades.empty_like() if self.trades is not None else None
        self.quotes = self.quotes.empty_like() if self.quotes is not None else None
        return chunk


Reader = Callable[[Path, Rejects, ImportOptions, FileInfo], Iterator[Chunk]]


def readers() -> dict[str, Reader]:
    from auction_trader.data.formats import binance_feed, bybit_ob500, bybit_trades, generic_csv, tardis

    return {
        "bybit-trades": bybit_trades.read,
        "bybit-ob500": bybit_ob500.read,
        "binance-feed": binance_feed.read,
        "tardis-trades": tardis.read_trades,
        "tardis-quotes": tardis.read_quotes,
        "csv": generic_csv.read,
    }


FORMAT_NAMES = ("bybit-trades", "bybit-ob500", "binance-feed", "tardis-trades", "tardis-quotes", "csv")
