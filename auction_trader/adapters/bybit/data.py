"""Nautilus's Bybit data client with a public-WS URL of its own and quotes from ``orderbook.1``.

Two things the stock 1.231 client does that this plugin cannot live with (DESIGN.md "Live path"):

* it builds its public sockets from ``base_url_http`` (``BybitWebSocketClient.new_public(url=...)``
  receives the HTTP base URL), so market data cannot be pointed at a test server or a mirror:
  :class:`AuctionBybitDataClientConfig` adds ``base_url_ws_public``, used only when given;
* ``subscribe_quote_ticks`` on a linear contract opens the ``tickers`` channel, whose QuoteTicks
  land on the same quote topic as the book's and double the stream. Here a quote subscription opens
  ``orderbook.1`` instead (what the stock client does for spot): one QuoteTick per book frame.
  Nothing here ever opens ``tickers``; the funding rate comes by REST
  (:mod:`auction_trader.adapters.bybit.rest`).
"""

from __future__ import annotations

import asyncio

from nautilus_trader.adapters.bybit.config import BybitDataClientConfig, _resolve_environment
from nautilus_trader.adapters.bybit.data import BybitDataClient
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.data.messages import SubscribeQuoteTicks, UnsubscribeQuoteTicks
from nautilus_trader.live.factories import LiveDataClientFactory

from auction_trader.adapters.bybit.factories import http_client_and_provider

QUOTE_BOOK_DEPTH = 1


class AuctionBybitDataClientConfig(BybitDataClientConfig, frozen=True):
    """``BybitDataClientConfig`` plus ``base_url_ws_public`` (e.g. ``ws://127.0.0.1:8765/v5/public/linear``)."""

    base_url_ws_public: str | None = None


class AuctionBybitDataClient(BybitDataClient):
    """See the module docstring."""

    def __init__(self, *args, config: AuctionBybitDataClientConfig, **kwargs) -> None:
        super().__init__(*args, config=config, **kwargs)
        if config.base_url_ws_public:
            environment = _resolve_environment(config.environment)
            for product_type in list(self._ws_clients):
                ws_client = nautilus_pyo3.BybitWebSocketClient.new_public(
                    product_type=product_type,
                    environment=environment,
                    url=config.base_url_ws_public,
                    proxy_url=config.proxy_url,
                )
                ws_client.set_bars_timestamp_on_close(self._bars_timestamp_on_close)
                self._ws_clients[product_type] = ws_client

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        iid = nautilus_pyo3.InstrumentId.from_str(command.instrument_id.value)
        self._quote_depths[iid] = QUOTE_BOOK_DEPTH
        await self._get_ws_client_for_instrument(iid).subscribe_orderbook(iid, QUOTE_BOOK_DEPTH)

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        iid = nautilus_pyo3.InstrumentId.from_str(command.instrument_id.value)
        depth = self._quote_depths.pop(iid, QUOTE_BOOK_DEPTH)
        await self._get_ws_client_for_instrument(iid).unsubscribe_orderbook(iid, depth)


class AuctionBybitLiveDataClientFactory(LiveDataClientFactory):
    """The stock factory's wiring, creating :class:`AuctionBybitDataClient`."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: AuctionBybitDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> AuctionBybitDataClient:
        client, provider = http_client_and_provider(config)
        return AuctionBybitDataClient(
            loop=loop,
            client=client,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
            name=name,
        )
