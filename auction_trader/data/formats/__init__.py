"""Source formats the importer understands, one module each, all returning :class:`Parsed`.

A format reads one file into float rows (:class:`~auction_trader.data.parse.TradeRows` /
:class:`~auction_trader.data.parse.QuoteRows`), reporting each malformed row to a
:class:`~auction_trader.data.errors.Rejects` (which raises at once in strict mode). Exact units,
time order and the catalog are the importer's job (:mod:`auction_trader.data.importing`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from auction_trader.data.errors import Rejects
from auction_trader.data.parse import QuoteRows, TradeRows
from auction_trader.instrument import InstrumentSpec, raw_symbol


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
class Parsed:
    """One file's rows, before they are made exact and ordered."""

    trades: TradeRows | None = None
    quotes: QuoteRows | None = None
    rows_read: int = 0
    notes: list[str] = field(default_factory=list)
    # The file's own ordering key per row when it is not ts_event (e.g. Tardis's local_timestamp).
    trade_order: list[int] | None = None
    quote_order: list[int] | None = None
    allow_descending: bool = False  # some dumps are written newest first

    def order_key(self, kind: str) -> np.ndarray | None:
        key = self.trade_order if kind == "trades" else self.quote_order
        return np.array(key, np.int64) if key is not None else None


Reader = Callable[[Path, Rejects, ImportOptions], Parsed]


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
