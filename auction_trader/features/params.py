"""The Rust feature engine's parameters from the plugin's configuration (no Nautilus, no catalog:
the indicator and the dry-run replay import this alone)."""

from __future__ import annotations

import rust_indicators
from auction_trader.config import AuctionConfig
from auction_trader.instrument import BTCUSDT, InstrumentSpec

FEATURE_COLUMNS: list[str] = list(rust_indicators.FEATURE_COLUMNS)


def engine_config(config: AuctionConfig, spec: InstrumentSpec = BTCUSDT) -> rust_indicators.EngineConfig:
    """The engine's parameters from the plugin's configuration and the instrument's grid."""
    va, init, qi = config.value_area, config.initiative, config.quote_imbalance
    return rust_indicators.EngineConfig(
        tick_size=spec.tick_size,
        size_step=10.0**-spec.size_precision,
        rolling_window_minutes=va.rolling_window_minutes,
        va_fraction=va.va_fraction,
        base_bin_ticks=va.base_bin_ticks,
        alpha_bin=va.alpha_bin,
        bin_width_max_ticks=va.bin_width_max_ticks,
        rebucket_interval_minutes=va.rebucket_interval_minutes,
        rebucket_change_pct=va.rebucket_change_pct,
        min_va_bins=va.min_va_bins,
        max_quote_staleness_ms=init.max_quote_staleness_ms,
        use_tick_rule_fallback=init.use_tick_rule_fallback,
        order_flow_source=init.order_flow_source,
        qimb_ema_span_seconds=qi.qimb_ema_span_seconds,
        spread_lookback_minutes=qi.spread_lookback_minutes,
        use_bvc=init.use_bvc,
        lookback_bvc=init.lookback_bvc,
    )
