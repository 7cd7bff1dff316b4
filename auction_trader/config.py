"""Every tunable of specv2 §17.3 plus the gaps DESIGN.md fills, as validated pydantic models.

The YAML is grouped the way the spec's default file is commented (value area, initiative, quote
imbalance, ...), but every leaf keeps the spec's own name and leaf names are unique, so a user can
say ``--set va_fraction=0.6`` or ``--set value_area.va_fraction=0.6`` and a grid can sweep
``alpha_bin`` without knowing the grouping.

Errors are for humans reading a terminal: each names the file (or the ``--set`` argument), the line
when it came from YAML, the dotted key, what was wrong and what was given. Secrets never live in
these models: they come from the environment only (:class:`Secrets`).
"""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "configs" / "default.yaml"

SECRET_ENV_VARS = ("BYBIT_API_KEY", "BYBIT_API_SECRET", "ALERT_WEBHOOK_URL")


class ConfigError(ValueError):
    """A configuration problem, already phrased for the user (file, line, key, what and why)."""


class _Group(BaseModel):
    # strict: a YAML "0.7" string or 3.5 for an int is a mistake worth reporting, not coercing.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MarketConfig(_Group):
    instrument: Literal["BTCUSDT"] = "BTCUSDT"
    exchange: Literal["bybit"] = "bybit"
    timeframe: Literal["1m"] = "1m"


class ValueAreaConfig(_Group):
    rolling_window_minutes: int = Field(240, ge=1)
    va_fraction: float = Field(0.70, gt=0.0, le=1.0)
    base_bin_ticks: int = Field(1, ge=1)
    alpha_bin: float = Field(0.25, gt=0.0)
    bin_width_max_ticks: int = Field(200, ge=1)
    rebucket_interval_minutes: int = Field(15, ge=1)
    rebucket_change_pct: float = Field(0.25, gt=0.0)
    min_va_bins: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _max_width_holds_a_base_bin(self) -> ValueAreaConfig:
        if self.bin_width_max_ticks < self.base_bin_ticks:
            raise ValueError(
                f"bin_width_max_ticks ({self.bin_width_max_ticks}) must be >= base_bin_ticks "
                f"({self.base_bin_ticks})",
            )
        return self


class InitiativeConfig(_Group):
    max_quote_staleness_ms: int = Field(250, ge=0)
    ambiguous_trade_frac_max: float = Field(0.35, ge=0.0, le=1.0)
    use_tick_rule_fallback: bool = True
    # OF_1m, OF_norm_1m and the ambiguous fraction from the inference (the spec's method) or from
    # the exchange's recorded taker side (Bybit S, Binance m); both flows are always reported.
    order_flow_source: Literal["inferred", "exchange"] = "inferred"
    # BVC (specv2 §5.9) is a manual fallback only: when set, bvc_net stands in for OF_1m (and
    # bvc_net / volume for OF_norm_1m) in the initiative test; never engaged otherwise.
    use_bvc: bool = False
    lookback_bvc: int = Field(60, ge=2)


class QuoteImbalanceConfig(_Group):
    use_qimb: bool = True
    # DESIGN.md: signals read qimb_close unless configured to use the EMA.
    qimb_source: Literal["close", "ema"] = "close"
    qimb_entry_min: float = Field(0.10, ge=-1.0, le=1.0)
    qimb_breakout_min: float = Field(0.10, ge=-1.0, le=1.0)
    qimb_fail_min: float = Field(-0.10, ge=-1.0, le=1.0)
    qimb_ema_span_seconds: float = Field(60.0, gt=0.0)
    spread_lookback_minutes: int = Field(60, ge=1)


class OrderFlowConfig(_Group):
    """Either/or thresholds: absolute OF_1m (BTC) or normalised OF_norm_1m."""

    of_entry_min: float = 0.0
    of_entry_min_norm: float = Field(0.1, ge=-1.0, le=1.0)
    of_breakout_min: float = 0.0
    of_breakout_min_norm: float = Field(0.1, ge=-1.0, le=1.0)
    of_fail_min: float = 0.0
    of_fail_min_norm: float = Field(-0.1, ge=-1.0, le=1.0)


class AcceptanceConfig(_Group):
    accept_outside_k: int = Field(3, ge=1)
    accept_inside_k: int = Field(1, ge=1)
    # specv2 §6.3 / §6.5: a crossing or a pullback counts within N x the rolling average spread.
    crossing_spread_mult: float = Field(1.0, gt=0.0)
    pullback_spread_mult: float = Field(1.0, gt=0.0)


class SizingConfig(_Group):
    risk_pct: float = Field(0.02, gt=0.0, le=1.0)
    # Bybit's leverage runs from 1x (a venue built with less is refused by Nautilus too).
    max_leverage: float = Field(10.0, ge=1.0, le=100.0)
    margin_mode: Literal["cross"] = "cross"


class ExitsConfig(_Group):
    tp1_pct: float = Field(0.30, ge=0.0, le=1.0)
    tp2_pct: float = Field(0.70, ge=0.0, le=1.0)
    move_stop_to_breakeven_after_tp1: bool = True
    # The seeds give no breakout targets; DESIGN.md: locked VAH + m x (VAH - VAL).
    breakout_tp1_va_mult: float = Field(0.5, gt=0.0)
    breakout_tp2_va_mult: float = Field(1.0, gt=0.0)

    @model_validator(mode="after")
    def _split_is_whole(self) -> ExitsConfig:
        if abs(self.tp1_pct + self.tp2_pct - 1.0) > 1e-9:
            raise ValueError(
                f"tp1_pct + tp2_pct must be 1 (got {self.tp1_pct} + {self.tp2_pct})",
            )
        if self.breakout_tp2_va_mult < self.breakout_tp1_va_mult:
            raise ValueError("breakout_tp2_va_mult must be >= breakout_tp1_va_mult")
        return self


class RiskConfig(_Group):
    max_hold_minutes: int = Field(60, ge=1)
    extend_if_profitable: bool = True
    cooldown_minutes: int = Field(3, ge=0)
    stop_buffer_ticks: int = Field(2, ge=0)
    # Fraction of the UTC day's starting equity (DESIGN.md default 5%), net of fees and funding.
    max_daily_loss: float = Field(0.05, gt=0.0, le=1.0)


class ExecutionConfig(_Group):
    fill_on_next_quote: bool = True
    slippage_ticks_entry: int = Field(1, ge=0)
    slippage_ticks_exit: int = Field(1, ge=0)
    taker_fee_bps: float = Field(5.0, ge=-100.0, le=100.0)
    maker_fee_bps: float = Field(-1.0, ge=-100.0, le=100.0)
    limit_order_timeout_minutes: int = Field(1, ge=1)
    use_limit_for_entry: bool = True
    use_market_for_exit: bool = True


class BacktestConfig(_Group):
    funding_rate_8h_bps: float = Field(1.0, ge=-1000.0, le=1000.0)
    backtest_workers: Literal["auto"] | int = "auto"
    starting_balance: float = Field(10_000.0, gt=0.0)

    @model_validator(mode="after")
    def _workers_positive(self) -> BacktestConfig:
        if isinstance(self.backtest_workers, int) and self.backtest_workers < 1:
            raise ValueError(f"backtest_workers must be 'auto' or >= 1 (got {self.backtest_workers})")
        return self

    @property
    def workers(self) -> int:
        """Resolved worker count: 'auto' is half the cores (specv2 §12.5), at least one."""
        if self.backtest_workers == "auto":
            return max(1, (os.cpu_count() or 2) // 2)
        return int(self.backtest_workers)


class ModesConfig(_Group):
    enable_retest_mode: bool = True
    enable_flip_on_signal: bool = True


class MonitoringConfig(_Group):
    state_snapshot_interval_minutes: int = Field(5, ge=1)
    log_features_every_minute: bool = True
    # Live node: no trade or quote for this long -> "data_feed_stale" alert and a gap in the recording.
    data_stale_seconds: float = Field(10.0, gt=0.0)
    # Live node: a minute closes this long after its boundary (ticks arrive 10-200 ms late).
    minute_grace_ms: int = Field(500, ge=0, le=30_000)


class StartupConfig(_Group):
    require_manual_activation: bool = True
    warmup_minutes: int = Field(240, ge=0)


class AuctionConfig(_Group):
    """The whole configuration. Defaults are specv2 §17.3 and DESIGN.md, value for value."""

    market: MarketConfig = MarketConfig()
    value_area: ValueAreaConfig = ValueAreaConfig()
    initiative: InitiativeConfig = InitiativeConfig()
    quote_imbalance: QuoteImbalanceConfig = QuoteImbalanceConfig()
    order_flow: OrderFlowConfig = OrderFlowConfig()
    acceptance: AcceptanceConfig = AcceptanceConfig()
    sizing: SizingConfig = SizingConfig()
    exits: ExitsConfig = ExitsConfig()
    risk: RiskConfig = RiskConfig()
    execution: ExecutionConfig = ExecutionConfig()
    backtest: BacktestConfig = BacktestConfig()
    modes: ModesConfig = ModesConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    startup: StartupConfig = StartupConfig()

    @property
    def instrument_id(self) -> str:
        """Nautilus id in the live Bybit adapter's symbology (linear products get '-LINEAR')."""
        return f"{self.market.instrument}-LINEAR.{self.market.exchange.upper()}"

    def flat(self) -> dict[str, Any]:
        """Leaf name -> value (leaf names are unique), as grids and reports want them."""
        return {leaf: getattr(getattr(self, group), leaf) for leaf, group in LEAF_TO_GROUP.items()}

    def with_overrides(self, overrides: Iterable[str]) -> AuctionConfig:
        """A copy with ``name=value`` overrides applied and validated as a whole."""
        raw = self.model_dump()
        apply_overrides(raw, overrides)
        return _validate(raw, source=None, lines={})


def _leaf_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for group, field in AuctionConfig.model_fields.items():
        for leaf in field.annotation.model_fields:  # type: ignore[union-attr]
            assert leaf not in index, f"leaf name {leaf!r} is not unique"
            index[leaf] = group
    return index


LEAF_TO_GROUP: dict[str, str] = _leaf_index()
DOTTED_KEYS: list[str] = [f"{g}.{leaf}" for leaf, g in LEAF_TO_GROUP.items()]


class Secrets(BaseModel):
    """Credentials and endpoints read from the environment only — never from YAML, never logged."""

    model_config = ConfigDict(frozen=True)

    bybit_api_key: SecretStr | None = None
    bybit_api_secret: SecretStr | None = None
    alert_webhook_url: SecretStr | None = None
    database_dir: Path | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Secrets:
        env = os.environ if environ is None else environ

        def secret(name: str) -> SecretStr | None:
            value = env.get(name, "").strip()
            return SecretStr(value) if value else None

        db_dir = env.get("DATABASE_DIR", "").strip()
        return cls(
            bybit_api_key=secret("BYBIT_API_KEY"),
            bybit_api_secret=secret("BYBIT_API_SECRET"),
            alert_webhook_url=secret("ALERT_WEBHOOK_URL"),
            database_dir=Path(db_dir) if db_dir else None,
        )


# -- loading ---------------------------------------------------------------------------------------


def resolve_key(name: str) -> str:
    """Map a leaf (``va_fraction``) or dotted (``value_area.va_fraction``) name to its dotted key."""
    if name in LEAF_TO_GROUP:
        return f"{LEAF_TO_GROUP[name]}.{name}"
    if name in DOTTED_KEYS:
        return name
    raise ConfigError(f"unknown parameter {name!r}{_suggest(name)}")


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> None:
    """Apply ``name=value`` strings to a raw (unvalidated) nested dict; values are YAML scalars."""
    for item in overrides:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item!r}: expected name=value")
        try:
            dotted = resolve_key(name.strip())
        except ConfigError as exc:
            raise ConfigError(f"--set {item}: {exc}") from None
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item}: value is not valid YAML ({exc})") from None
        group, leaf = dotted.split(".")
        section = raw.setdefault(group, {})
        if not isinstance(section, dict):
            raise ConfigError(f"--set {item}: {group!r} is not a mapping in the loaded config")
        section[leaf] = value
        _OVERRIDE_SOURCES[dotted] = item


# Which --set argument last touched a dotted key, so validation errors can cite it.
_OVERRIDE_SOURCES: dict[str, str] = {}


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> AuctionConfig:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    _OVERRIDE_SOURCES.clear()
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    source = None
    if path is not None:
        source = str(path)
        raw, lines = _read_yaml(Path(path))
    apply_overrides(raw, overrides)
    return _validate(raw, source=source, lines=lines)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    data, lines = read_yaml(path, "config", "the top level must be a mapping of groups (value_area: ...)")
    return data, {".".join(k): line for k, line in lines.items() if all(isinstance(p, str) for p in k)}


def read_yaml(path: Path, what: str, top_level: str) -> tuple[dict[str, Any], dict[tuple, int]]:
    """A YAML mapping and the line of every mapping key and list item by key path (``("grid",
    "risk_pct", 1)``), so that an error can name ``file:line``. Duplicate keys are errors: YAML
    would silently keep the last. ``top_level`` is the error for a document that is no mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        return {}, {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}: {top_level}")
    lines: dict[tuple, int] = {}
    _index_lines(root, (), lines, path)
    return yaml.safe_load(text), lines


def _index_lines(node: yaml.Node, prefix: tuple, lines: dict[tuple, int], path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, key_node.value)
            if key in lines:
                dotted = ".".join(map(str, key))
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: {dotted}: duplicate key (first at line {lines[key]})")
            lines[key] = key_node.start_mark.line + 1
            _index_lines(value_node, key, lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*prefix, i)] = item.start_mark.line + 1
            _index_lines(item, (*prefix, i), lines, path)


def _validate(raw: Any, source: str | None, lines: dict[str, int]) -> AuctionConfig:
    try:
        return AuctionConfig.model_validate(raw)
    except ValidationError as exc:
        merged: dict[tuple, dict[str, Any]] = {}
        for err in exc.errors():
            # A union (e.g. 'auto' | int) reports one error per branch under extra loc parts;
            # fold them into one message per key.
            loc = tuple(err["loc"])
            key = loc[:2] if len(loc) > 2 and loc[0] in AuctionConfig.model_fields else loc
            if key in merged:
                merged[key]["msg"] += " or " + err["msg"].removeprefix("Input should be ")
            else:
                merged[key] = {**err, "loc": key}
        messages = [_describe(err, source, lines) for err in merged.values()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(messages)) from None


def _describe(err: dict[str, Any], source: str | None, lines: dict[str, int]) -> str:
    loc = [str(p) for p in err["loc"]]
    dotted = ".".join(loc)
    touched = [arg for key, arg in _OVERRIDE_SOURCES.items() if key == dotted or key.startswith(dotted + ".")]
    if touched and (len(loc) != 1 or source is None):
        where = ", ".join(f"--set {arg}" for arg in touched)
    elif touched:  # a cross-field rule of a group that both the file and --set contributed to
        where = f"{source}:{lines.get(dotted, '?')} with " + ", ".join(f"--set {arg}" for arg in touched)
    elif source is not None:
        line = lines.get(dotted) or (lines.get(loc[0]) if loc else None)
        where = f"{source}:{line}" if line else source
    else:
        where = "configuration"
    kind = err["type"]
    if kind == "extra_forbidden":
        hint = _suggest(loc[-1] if loc else dotted)
        if any(word in dotted.lower() for word in ("secret", "api_key", "webhook", "password")):
            hint = " (secrets come only from the environment: " + ", ".join(SECRET_ENV_VARS) + ")"
        return f"{where}: {dotted}: unknown key{hint}"
    what = err["msg"]
    if kind.startswith("value_error"):
        what = what.removeprefix("Value error, ")
    shown = err.get("input")
    given = "" if isinstance(shown, dict) else f" (got {shown!r})"
    return f"{where}: {dotted or '<top level>'}: {what}{given}"


def _suggest(name: str) -> str:
    candidates = list(LEAF_TO_GROUP) + DOTTED_KEYS + list(AuctionConfig.model_fields)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if name in LEAF_TO_GROUP:
        return f"; did you mean {LEAF_TO_GROUP[name]}.{name}?"
    return f"; did you mean {close[0]}?" if close else ""


# -- command line ----------------------------------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """The ``--config`` / ``--set`` pair every command shares."""
    if not positional:
        parser.add_argument(
            "--config",
            default=str(DEFAULT_CONFIG_PATH),
            help="YAML configuration (default: configs/default.yaml)",
        )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override any parameter, e.g. --set va_fraction=0.6 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> AuctionConfig:
    return load_config(args.config, args.overrides)
