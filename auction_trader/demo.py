"""The README's first command: build the embedded default data and run the main job on it.

For now the main job is the data itself: ``catalogs/sample`` is generated from the synthetic
market (10 hours, seed 42 - enough for a 4-hour warm-up and six hours of setups) and its
inventory printed. Generation is skipped when the catalog is already up to date.
"""

from __future__ import annotations

import argparse
import sys

from auction_trader.config import REPO_ROOT, ConfigError, add_config_arguments, config_from_args
from auction_trader.data.errors import DataError

SAMPLE_CATALOG = REPO_ROOT / "catalogs" / "sample"
SAMPLE_HOURS = 10.0
SAMPLE_SEED = 42
SAMPLE_START = "2024-01-01T00:00:00Z"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash setup.sh demo", description=__doc__)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        from auction_trader.data.synth import synth_command

        print(f"[demo] synthetic sample market -> {SAMPLE_CATALOG.relative_to(REPO_ROOT)}")
        return synth_command(SAMPLE_CATALOG, hours=SAMPLE_HOURS, seed=SAMPLE_SEED, start=SAMPLE_START, overwrite=True, config=config)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
