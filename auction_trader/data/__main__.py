import sys

from auction_trader.data.cli import main

sys.exit(main())
