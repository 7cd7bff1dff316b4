"""Nautilus's Bybit execution client, with stop triggers that can move.

Nautilus 1.231's ``BybitExecutionClient._modify_order`` sends quantity and price only: a
``modify_order(order, trigger_price=...)`` reaches Bybit without ``triggerPrice``, so a stop moved
to the entry price after TP1 stays where it was (found against the stand-in: the amend arrived
with the new quantity and the old trigger). Here a modification that carries a trigger price is
sent with it, by REST (``/v5/order/amend`` through pybit, off the event loop) in every
environment: Nautilus's HTTP client has no trigger argument, and its trade-socket batch amend with
``trigger_price`` set was not applied in our tests (MAINNET orders still go over the trade socket;
only trigger moves take REST). The venue's order stream confirms the change as for any amend; a
refusal becomes an ``OrderModifyRejected`` with Bybit's message.
"""

from __future__ import annotations

import asyncio

from nautilus_trader.adapters.bybit.config import BybitExecClientConfig, _resolve_environment
from nautilus_trader.adapters.bybit.constants import BYBIT_ALL_PRODUCTS
from nautilus_trader.adapters.bybit.execution import BybitExecutionClient
from nautilus_trader.adapters.bybit.factories import get_cached_bybit_http_client, get_cached_bybit_instrument_provider
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.execution.messages import ModifyOrder
from nautilus_trader.live.factories import LiveExecClientFactory

from auction_trader.adapters.bybit.rest import DEFAULT_REST, BybitRest


class AuctionBybitExecutionClient(BybitExecutionClient):
    """See the module docstring."""

    def __init__(self, *args, config: BybitExecClientConfig, **kwargs) -> None:
        super().__init__(*args, config=config, **kwargs)
        env = _resolve_environment(config.environment).name.lower()
        self._amend_rest = BybitRest(config.base_url_http or DEFAULT_REST[env], config.api_key, config.api_secret)

    async def _modify_order(self, command: ModifyOrder) -> None:
        if command.trigger_price is None:
            await super()._modify_order(command)
            return
        order = self._cache.order(command.client_order_id)
        if order is None or order.is_closed:
            await super()._modify_order(command)  # logs and refuses as the stock client does
            return
        symbol = command.instrument_id.symbol.value.split("-")[0]
        link_id = command.client_order_id.value
        qty = str(command.quantity) if command.quantity else None
        trigger = str(command.trigger_price)
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: self._amend_rest.amend(symbol, link_id, qty=qty, trigger_price=trigger))
        except Exception as e:
            self._log.error(f"Failed to modify order {command.client_order_id}: {e}")
            self.generate_order_modify_rejected(
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                reason=str(e),
                ts_event=self._clock.timestamp_ns(),
            )


class AuctionBybitLiveExecClientFactory(LiveExecClientFactory):
    """The stock factory's wiring, creating :class:`AuctionBybitExecutionClient`."""

    @staticmethod
    def create(loop, name, config: BybitExecClientConfig, msgbus, cache, clock):  # type: ignore[override]
        product_types = config.product_types or BYBIT_ALL_PRODUCTS
        client = get_cached_bybit_http_client(
            environment=_resolve_environment(config.environment),
            api_key=config.api_key,
            api_secret=config.api_secret,
            base_url=config.base_url_http,
            timeout_secs=None,
            max_retries=config.max_retries,
            retry_delay_ms=config.retry_delay_initial_ms,
            retry_delay_max_ms=config.retry_delay_max_ms,
            recv_window_ms=config.recv_window_ms,
            proxy_url=config.proxy_url,
        )
        provider = get_cached_bybit_instrument_provider(client=client, product_types=tuple(product_types), config=config.instrument_provider)
        return AuctionBybitExecutionClient(
            loop=loop,
            client=client,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
            name=name,
        )
