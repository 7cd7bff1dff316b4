"""Per-minute features from a catalog: the Rust engine replayed over stored trades and quotes.

The same engine runs inside the strategy (through :class:`~auction_trader.indicators.AuctionFeatures`)
and here, over a whole catalog, so a features file is exactly what the strategy saw. Column
definitions: ``docs/features.md``. One module each:

* :mod:`.params` - :func:`engine_config`, the engine's parameters from the configuration
  (what the indicator and ``replay.py`` import; no catalog, no Nautilus);
* :mod:`.catalog` - :class:`Ticks`, :func:`load_ticks` (a range at once), :func:`iter_ticks` (in
  chunks, any range in bounded memory);
* :mod:`.rows` - :func:`compute`, :func:`compute_streamed`, :func:`write_features`;
* :mod:`.summarize` - :func:`summary`, :func:`flow_comparison`.

The names are importable from here too, loaded on first use (so importing
``auction_trader.features.params`` does not load the catalog layer).
"""

from __future__ import annotations

import importlib

_WHERE = {
    "FEATURE_COLUMNS": "params",
    "engine_config": "params",
    "Ticks": "catalog",
    "load_ticks": "catalog",
    "iter_ticks": "catalog",
    "compute": "rows",
    "compute_streamed": "rows",
    "write_features": "rows",
    "summary": "summarize",
    "flow_comparison": "summarize",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'auction_trader.features' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"auction_trader.features.{module}"), name)
    globals()[name] = value
    return value
