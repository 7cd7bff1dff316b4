"""The one instrument this plugin trades, defined once: Bybit's BTCUSDT linear perpetual.

Specs are Bybit's (``GET /v5/market/instruments-info``, category linear): tick 0.10, qty step and
minimum 0.001 BTC, maximum limit order 100 BTC, minimum notional 5 USDT, prices 0.10-199999.80.
The id follows Nautilus's live Bybit adapter (``BTCUSDT-LINEAR.BYBIT``) so that catalogs written
here replay against the same instrument the live node trades; its margin rates mirror what that
adapter sets (0.1). Fees come from the configuration, not from here: the spec treats them as a
backtest assumption (taker 5 bps, maker -1 bps by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.identifiers import InstrumentId, Symbol
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Currency, Money, Price, Quantity

from auction_trader.config import AuctionConfig

BTCUSDT_ID = "BTCUSDT-LINEAR.BYBIT"


@dataclass(frozen=True)
class InstrumentSpec:
    """What the data layer needs to know about an instrument: identity and precision."""

    instrument_id: str
    raw_symbol: str
    price_precision: int
    size_precision: int

    @property
    def tick_size(self) -> float:
        return 10.0**-self.price_precision

    @property
    def price_scale(self) -> int:
        """Integer units per 1.0 of price (prices are stored as price x scale)."""
        return 10**self.price_precision

    @property
    def size_scale(self) -> int:
        return 10**self.size_precision


BTCUSDT = InstrumentSpec(BTCUSDT_ID, "BTCUSDT", price_precision=1, size_precision=3)


def raw_symbol(instrument_id: str) -> str:
    """'BTCUSDT-LINEAR.BYBIT' -> 'BTCUSDT': the symbol as exchanges write it in their files."""
    return instrument_id.split(".")[0].split("-")[0]


def bps_to_rate(bps: float) -> Decimal:
    """Fee in basis points -> Nautilus fee rate (fraction of notional), exactly."""
    return Decimal(repr(bps)) / Decimal(10_000)


def btcusdt_perpetual(config: AuctionConfig | None = None, ts_init: int = 0) -> CryptoPerpetual:
    """The Nautilus ``CryptoPerpetual`` for BTCUSDT, fees taken from ``config.execution``."""
    return perpetual_for(BTCUSDT, config, ts_init)


def perpetual_for(spec: InstrumentSpec, config: AuctionConfig | None = None, ts_init: int = 0) -> CryptoPerpetual:
    """A USDT-margined linear perpetual for ``spec``.

    For BTCUSDT the exchange's limits are set; any other id (e.g. importing an XRPUSDT archive
    with ``--instrument``) gets the precision read from its data and no order limits.
    """
    config = config or AuctionConfig()
    is_btc = spec == BTCUSDT
    instrument_id = InstrumentId.from_str(spec.instrument_id)
    base = BTC if is_btc else _base_currency(spec.raw_symbol)
    tick = Price(10.0**-spec.price_precision, spec.price_precision)
    step = Quantity(10.0**-spec.size_precision, spec.size_precision)
    return CryptoPerpetual(
        instrument_id=instrument_id,
        raw_symbol=Symbol(spec.raw_symbol),
        base_currency=base,
        quote_currency=USDT,
        settlement_currency=USDT,
        is_inverse=False,
        price_precision=spec.price_precision,
        size_precision=spec.size_precision,
        price_increment=tick,
        size_increment=step,
        ts_event=ts_init,
        ts_init=ts_init,
        lot_size=step,
        max_quantity=Quantity.from_str("100.000") if is_btc else None,
        min_quantity=Quantity.from_str("0.001") if is_btc else step,
        min_notional=Money(5, USDT) if is_btc else None,
        max_price=Price.from_str("199999.8") if is_btc else None,
        min_price=Price.from_str("0.1") if is_btc else None,
        margin_init=Decimal("0.1"),
        margin_maint=Decimal("0.1"),
        maker_fee=bps_to_rate(config.execution.maker_fee_bps),
        taker_fee=bps_to_rate(config.execution.taker_fee_bps),
    )


def _base_currency(raw_symbol: str) -> Currency:
    # Nautilus knows the common coins and registers an unknown code as a crypto currency.
    return Currency.from_str(raw_symbol.removesuffix("USDT") or raw_symbol)
