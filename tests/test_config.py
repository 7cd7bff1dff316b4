"""Configuration: the spec's defaults, every validation error, overrides, secrets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from auction_trader.config import (
    DEFAULT_CONFIG_PATH,
    LEAF_TO_GROUP,
    AuctionConfig,
    ConfigError,
    Secrets,
    load_config,
)

# specv2 §17.3, typed from the spec by hand (the spec's flat keys), plus DESIGN.md's decisions.
SPEC_DEFAULTS = {
    "instrument": "BTCUSDT",
    "exchange": "bybit",
    "timeframe": "1m",
    "rolling_window_minutes": 240,
    "va_fraction": 0.70,
    "base_bin_ticks": 1,
    "alpha_bin": 0.25,
    "bin_width_max_ticks": 200,
    "rebucket_interval_minutes": 15,
    "rebucket_change_pct": 0.25,
    "min_va_bins": 20,
    "max_quote_staleness_ms": 250,
    "ambiguous_trade_frac_max": 0.35,
    "use_tick_rule_fallback": True,
    "use_qimb": True,
    "qimb_entry_min": 0.10,
    "qimb_breakout_min": 0.10,
    "qimb_fail_min": -0.10,
    "qimb_ema_span_seconds": 60,
    "spread_lookback_minutes": 60,
    "of_entry_min": 0,
    "of_entry_min_norm": 0.1,
    "of_breakout_min": 0,
    "of_breakout_min_norm": 0.1,
    "of_fail_min": 0,
    "of_fail_min_norm": -0.1,
    "accept_outside_k": 3,
    "risk_pct": 0.02,
    "max_leverage": 10,
    "margin_mode": "cross",
    "tp1_pct": 0.30,
    "tp2_pct": 0.70,
    "move_stop_to_breakeven_after_tp1": True,
    "max_hold_minutes": 60,
    "extend_if_profitable": True,
    "cooldown_minutes": 3,
    "stop_buffer_ticks": 2,
    "fill_on_next_quote": True,
    "slippage_ticks_entry": 1,
    "slippage_ticks_exit": 1,
    "taker_fee_bps": 5,
    "maker_fee_bps": -1,
    "limit_order_timeout_minutes": 1,
    "use_limit_for_entry": True,
    "use_market_for_exit": True,
    "funding_rate_8h_bps": 1,
    "backtest_workers": "auto",
    "enable_retest_mode": True,
    "enable_flip_on_signal": True,
    "state_snapshot_interval_minutes": 5,
    "log_features_every_minute": True,
    "require_manual_activation": True,
    "warmup_minutes": 240,
}
# Filled gaps: specv2 §6.2 (accept_inside_k), §5.9 (BVC manual), DESIGN.md (targets, kill switch,
# qimb source, crossing/pullback distance, starting balance).
DESIGN_DEFAULTS = {
    "accept_inside_k": 1,
    "order_flow_source": "inferred",
    "use_bvc": False,
    "lookback_bvc": 60,
    "qimb_source": "close",
    "crossing_spread_mult": 1.0,
    "pullback_spread_mult": 1.0,
    "breakout_tp1_va_mult": 0.5,
    "breakout_tp2_va_mult": 1.0,
    "max_daily_loss": 0.05,
    "starting_balance": 10_000.0,
    # the live node's (README "Live"): staleness watchdog and the minute's grace for late ticks
    "data_stale_seconds": 10.0,
    "minute_grace_ms": 500,
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    return str(info.value)


def test_defaults_equal_the_spec_table():
    flat = AuctionConfig().flat()
    assert {k: flat[k] for k in SPEC_DEFAULTS} == SPEC_DEFAULTS
    assert {k: flat[k] for k in DESIGN_DEFAULTS} == DESIGN_DEFAULTS
    # Nothing configurable escapes the two tables above.
    assert set(flat) == set(SPEC_DEFAULTS) | set(DESIGN_DEFAULTS)


def test_default_yaml_carries_the_defaults():
    assert load_config(DEFAULT_CONFIG_PATH) == AuctionConfig()
    assert load_config(None) == AuctionConfig()


def test_instrument_id_is_the_live_adapters_symbology():
    assert AuctionConfig().instrument_id == "BTCUSDT-LINEAR.BYBIT"


def test_leaf_names_are_unique_and_cover_every_field():
    groups = AuctionConfig.model_fields
    n_fields = sum(len(groups[g].annotation.model_fields) for g in groups)
    assert len(LEAF_TO_GROUP) == n_fields
    assert LEAF_TO_GROUP["va_fraction"] == "value_area"
    assert LEAF_TO_GROUP["max_daily_loss"] == "risk"


def test_set_accepts_leaf_and_dotted_names():
    config = load_config(DEFAULT_CONFIG_PATH, ["va_fraction=0.6", "sizing.risk_pct=0.01", "use_qimb=false", "backtest_workers=3"])
    assert config.value_area.va_fraction == 0.6
    assert config.sizing.risk_pct == 0.01
    assert config.quote_imbalance.use_qimb is False
    assert config.backtest.workers == 3
    # Untouched values keep their defaults.
    assert config.value_area.alpha_bin == 0.25


def test_with_overrides_validates_the_whole():
    config = AuctionConfig().with_overrides(["accept_outside_k=5"])
    assert config.acceptance.accept_outside_k == 5
    with pytest.raises(ConfigError, match="accept_outside_k"):
        AuctionConfig().with_overrides(["accept_outside_k=0"])


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("va_fraction=0", "value_area.va_fraction: Input should be greater than 0"),
        ("va_fraction=1.5", "value_area.va_fraction: Input should be less than or equal to 1"),
        ("risk_pct=-0.02", "sizing.risk_pct: Input should be greater than 0"),
        ("accept_outside_k=0", "acceptance.accept_outside_k: Input should be greater than or equal to 1"),
        ("accept_outside_k=2.5", "acceptance.accept_outside_k: Input should be a valid integer"),
        ("alpha_bin=abc", "value_area.alpha_bin: Input should be a valid number"),
        ("use_qimb=maybe", "quote_imbalance.use_qimb: Input should be a valid boolean"),
        ("qimb_source=mid", "quote_imbalance.qimb_source: Input should be 'close' or 'ema'"),
        ("backtest_workers=0", "backtest_workers must be 'auto' or >= 1"),
        ("backtest_workers=many", "Input should be 'auto' or a valid integer"),
        ("max_leverage=0", "sizing.max_leverage: Input should be greater than or equal to 1"),
        ("max_daily_loss=0", "risk.max_daily_loss: Input should be greater than 0"),
        ("tp1_pct=0.5", "tp1_pct + tp2_pct must be 1"),
        ("bin_width_max_ticks=0", "bin_width_max_ticks"),
        ("margin_mode=isolated", "sizing.margin_mode: Input should be 'cross'"),
    ],
)
def test_bad_override_values_name_the_argument_and_key(override, fragment):
    message = error_of(DEFAULT_CONFIG_PATH, [override])
    assert f"--set {override}" in message
    assert fragment in message


def test_unknown_override_suggests_the_right_name():
    assert "unknown parameter 'va_fractoin'; did you mean va_fraction?" in error_of(None, ["va_fractoin=0.5"])
    assert "expected name=value" in error_of(None, ["va_fraction"])


def test_file_errors_name_file_line_and_key(tmp_path):
    path = write(
        tmp_path,
        """\
        value_area:
          va_fraction: 1.2
          alpha_bin: "0.25"
        sizing:
          risk_pct: -0.5
        acceptance:
          accept_outside_k: 0
        """,
    )
    message = error_of(path)
    assert f"{path}:2: value_area.va_fraction: Input should be less than or equal to 1 (got 1.2)" in message
    assert f"{path}:3: value_area.alpha_bin: Input should be a valid number (got '0.25')" in message
    assert f"{path}:5: sizing.risk_pct: Input should be greater than 0 (got -0.5)" in message
    assert f"{path}:7: acceptance.accept_outside_k: Input should be greater than or equal to 1 (got 0)" in message


def test_unknown_keys_are_errors_with_hints(tmp_path):
    path = write(
        tmp_path,
        """\
        va_fraction: 0.6
        value_area:
          va_fractoin: 0.6
        risk:
          bybit_api_key: abc
        """,
    )
    message = error_of(path)
    assert f"{path}:1: va_fraction: unknown key; did you mean value_area.va_fraction?" in message
    assert f"{path}:3: value_area.va_fractoin: unknown key; did you mean va_fraction?" in message
    assert f"{path}:5: risk.bybit_api_key: unknown key (secrets come only from the environment" in message


def test_duplicate_key_and_bad_yaml(tmp_path):
    path = write(tmp_path, "value_area:\n  va_fraction: 0.6\n  va_fraction: 0.7\n")
    assert f"{path}:3: value_area.va_fraction: duplicate key (first at line 2)" in error_of(path)
    path = write(tmp_path, "value_area:\n  va_fraction: [0.6\n")
    assert f"{path}:3: invalid YAML" in error_of(path)
    path = write(tmp_path, "- a\n- b\n")
    assert "the top level must be a mapping" in error_of(path)
    assert "cannot read config" in error_of(tmp_path / "missing.yaml")


def test_cross_field_rule_cites_file_and_override(tmp_path):
    path = write(tmp_path, "exits:\n  tp1_pct: 0.3\n  tp2_pct: 0.7\n")
    message = error_of(path, ["tp1_pct=0.4"])
    assert f"{path}:1 with --set tp1_pct=0.4: exits: tp1_pct + tp2_pct must be 1 (got 0.4 + 0.7)" in message


def test_partial_file_keeps_other_defaults(tmp_path):
    path = write(tmp_path, "value_area:\n  alpha_bin: 0.5\n")
    config = load_config(path)
    assert config.value_area.alpha_bin == 0.5
    assert config.value_area.va_fraction == 0.70


def test_secrets_come_from_the_environment_and_stay_hidden():
    secrets = Secrets.from_env({"BYBIT_API_KEY": "key-123", "BYBIT_API_SECRET": "s3cr3t", "DATABASE_DIR": "/data"})
    assert secrets.bybit_api_key.get_secret_value() == "key-123"
    assert secrets.bybit_api_secret.get_secret_value() == "s3cr3t"
    assert secrets.alert_webhook_url is None
    assert str(secrets.database_dir) == "/data"
    shown = repr(secrets) + str(secrets) + secrets.model_dump_json()
    assert "key-123" not in shown and "s3cr3t" not in shown
    assert Secrets.from_env({}).bybit_api_key is None
