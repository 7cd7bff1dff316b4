"""Market data for the plugin: importers, the Bybit archive downloader, the synthetic market and
the catalog inventory. Everything lands in a Nautilus ``ParquetDataCatalog``.

Command line: ``python -m auction_trader.data {import,download,synth,inspect} --help``.
"""
