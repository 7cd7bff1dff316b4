"""auction-trader: Auction Market Theory made mechanical, as a NautilusTrader plugin for the Bybit
BTCUSDT perpetual. See README.md for the map of the package."""

__version__ = "0.1.0"
