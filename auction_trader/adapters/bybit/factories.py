"""What the data and the execution client factories share: Nautilus's HTTP client and instrument
provider, built from either client's config as the stock 1.231 factories build them.

The REST calls go to ``config.base_url_http`` when it is set (``run_live.py --rest-url``, e.g. the
stand-in on 127.0.0.1), to the environment's Bybit host otherwise. Nautilus caches both by their
arguments, so the data and the execution client of one node share one HTTP client and one provider.
"""

from __future__ import annotations

from nautilus_trader.adapters.bybit.config import BybitDataClientConfig, BybitExecClientConfig, _resolve_environment
from nautilus_trader.adapters.bybit.constants import BYBIT_ALL_PRODUCTS
from nautilus_trader.adapters.bybit.factories import get_cached_bybit_http_client, get_cached_bybit_instrument_provider
from nautilus_trader.adapters.bybit.providers import BybitInstrumentProvider
from nautilus_trader.core import nautilus_pyo3


def http_client_and_provider(config: BybitDataClientConfig | BybitExecClientConfig) -> tuple[nautilus_pyo3.BybitHttpClient, BybitInstrumentProvider]:
    """The (cached) HTTP client for ``config``'s environment, keys and REST URL, and the instrument
    provider over it for ``config.product_types`` (all products when none are given)."""
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
    product_types = config.product_types or BYBIT_ALL_PRODUCTS
    provider = get_cached_bybit_instrument_provider(client=client, product_types=tuple(product_types), config=config.instrument_provider)
    return client, provider
