"""``python -m auction_trader.data``: import, download, synth and inspect market data catalogs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from auction_trader.config import ConfigError, add_config_arguments, config_from_args
from auction_trader.data.errors import DataError
from auction_trader.data.formats import FORMAT_NAMES
from auction_trader.data.timestamps import UNITS


def _columns(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        ours, sep, theirs = part.partition("=")
        if not sep or not ours or not theirs:
            raise argparse.ArgumentTypeError(f"expected field=column pairs, got {part!r}")
        out[ours.strip()] = theirs.strip()
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m auction_trader.data",
        description="Market data into Nautilus Parquet catalogs: import files, download Bybit's public "
        "archives, generate the synthetic market, inspect a catalog.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    imp = sub.add_parser(
        "import",
        help="import trade/quote files into a catalog",
        description="Import files into a catalog. Strict by default: the first malformed row stops the "
        "import with an error naming file, line and field, and the catalog is left as it was. "
        "Re-importing the same file adds nothing.",
    )
    imp.add_argument("format", choices=FORMAT_NAMES, help="source format")
    imp.add_argument("files", nargs="+", type=Path, help="files to import")
    imp.add_argument("--catalog", required=True, type=Path, help="catalog directory (created if missing)")
    imp.add_argument("--instrument", help="instrument id to file the data under (default: the config's, BTCUSDT-LINEAR.BYBIT)")
    imp.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (listed in <catalog>.rejects.csv) and import the rest")
    imp.add_argument("--kind", choices=("trades", "quotes"), help="csv: what the file holds (default: from its columns)")
    imp.add_argument("--columns", type=_columns, default={}, metavar="FIELD=COLUMN,...", help="csv: column mapping, fields ts,price,size,side,id,bid,bid_size,ask,ask_size")
    imp.add_argument("--ts-unit", choices=UNITS, default="auto", help="csv: timestamp unit (default: detected, with a warning when ambiguous)")
    _writer_arguments(imp)
    add_config_arguments(imp)

    dl = sub.add_parser(
        "download",
        help="download Bybit's public daily archives and import them",
        description="Fetch Bybit's public daily trade dumps and ob500 order-book archives for BTCUSDT into a "
        "cache (resuming interrupted downloads, verifying each archive), then import them.",
    )
    dl.add_argument("--from", dest="date_from", required=True, help="first UTC day, YYYY-MM-DD")
    dl.add_argument("--to", dest="date_to", required=True, help="last UTC day, YYYY-MM-DD (inclusive)")
    dl.add_argument("--catalog", required=True, type=Path)
    dl.add_argument("--base-url", help="serve both archives from this base URL instead of Bybit's hosts (mirrors, tests)")
    dl.add_argument("--cache", type=Path, help="download cache (default: $AUCTION_TRADER_CACHE or ~/.cache/auction-trader)")
    dl.add_argument("--skip-bad-rows", action="store_true", help="as for import")
    _writer_arguments(dl)
    add_config_arguments(dl)

    syn = sub.add_parser(
        "synth",
        help="generate the deterministic synthetic market",
        description="Generate a seeded synthetic BTCUSDT perpetual market (trades with aggressor side, L1 quotes "
        "with sizes) into a catalog labelled synthetic. Same seed, same bytes.",
    )
    syn.add_argument("--catalog", required=True, type=Path)
    syn.add_argument("--hours", required=True, type=float)
    syn.add_argument("--seed", required=True, type=int)
    syn.add_argument("--start", default="2024-01-01T00:00:00Z", help="first timestamp, ISO 8601 UTC (default 2024-01-01T00:00:00Z)")
    syn.add_argument("--overwrite", action="store_true", help="replace an existing synthetic catalog made with other settings")
    add_config_arguments(syn)

    ins = sub.add_parser(
        "inspect",
        help="print a catalog's inventory and verify it",
        description="Per data type: counts, first/last timestamps, gaps longer than a minute, trade/quote overlap, "
        "synthetic label. Then verifies the catalog: every file read back by Nautilus's ParquetDataCatalog, "
        "intervals disjoint, time in order within each file, no duplicated ticks, values within range. "
        "Exits with status 1, naming file and row, when anything is wrong.",
    )
    ins.add_argument("--catalog", required=True, type=Path)
    ins.add_argument("--quick", action="store_true", help="skip reading every file back with Nautilus (the slowest check)")
    return parser


def _writer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--earliest", type=_day, metavar="DATE", help="refuse timestamps before this UTC date/time (default 2009-01-03, the Bitcoin genesis block)")
    parser.add_argument("--latest", type=_day, metavar="DATE", help="refuse timestamps after this UTC date/time (default: a day from now)")
    parser.add_argument("--wait", type=float, default=600.0, metavar="SECONDS", help="how long to wait for another writer of the catalog to finish (default 600; 0: fail at once)")


def _day(text: str) -> int:
    from auction_trader.data.errors import BadRow
    from auction_trader.data.timestamps import to_ns

    try:
        return to_ns(text, "iso", "date")
    except BadRow:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Exit status 0, or 1 with a message naming the file (and line and field) - never a traceback
    for a problem of the input, the catalog or the file system."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (DataError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the catalog is as it was before this command (anything half-done is cleaned up by the next one)", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "inspect":
        from auction_trader.data.inventory import format_inventory, inventory

        inv = inventory(args.catalog, nautilus=not args.quick)
        print(format_inventory(inv))
        return 1 if inv["problems"] else 0
    config = config_from_args(args)
    if args.command == "import":
        from auction_trader.data.importing import import_files

        report = import_files(
            args.format,
            args.files,
            args.catalog,
            instrument_id=args.instrument,
            skip_bad_rows=args.skip_bad_rows,
            config=config,
            kind=args.kind,
            columns=args.columns,
            ts_unit=args.ts_unit,
            warn=lambda message: print(f"warning: {message}", file=sys.stderr),
            earliest=args.earliest,
            latest=args.latest,
            wait=args.wait,
        )
        print(report.summary())
        return 0
    if args.command == "download":
        from auction_trader.data.download import download

        return download(
            args.date_from,
            args.date_to,
            args.catalog,
            base_url=args.base_url,
            cache_dir=args.cache,
            skip_bad_rows=args.skip_bad_rows,
            config=config,
            earliest=args.earliest,
            latest=args.latest,
            wait=args.wait,
        )
    if args.command == "synth":
        from auction_trader.data.synth import synth_command

        return synth_command(args.catalog, hours=args.hours, seed=args.seed, start=args.start, overwrite=args.overwrite, config=config)
    raise AssertionError(args.command)
