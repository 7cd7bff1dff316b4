"""The dashboard's own settings: the colour thresholds of the quality and risk tiles.

Red comes from the run's configuration, where the system itself acts: ambiguity above
``ambiguous_trade_frac_max`` makes initiative need both order flow and qimb (and raises the "high
ambiguous fraction" alert); heat at ``max_daily_loss`` means one stop-out would trip the daily kill
switch. Amber, the early warning below that, is set here (``--set ambiguous_amber=0.2``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auction_trader.config import ConfigError


class DashboardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ambiguous_amber: float = Field(0.25, ge=0.0, le=1.0, description="ambiguous_trade_frac_1m from which the tile turns amber")
    heat_amber: float = Field(0.03, ge=0.0, description="heat (open risk / capital) from which the tile turns amber")

    @classmethod
    def from_overrides(cls, overrides: Iterable[str]) -> DashboardSettings:
        raw: dict[str, Any] = {}
        for item in overrides:
            name, sep, text = item.partition("=")
            if not sep or name.strip() not in cls.model_fields:
                raise ConfigError(f"--set {item!r}: expected one of {', '.join(f'{k}=VALUE' for k in cls.model_fields)}")
            raw[name.strip()] = yaml.safe_load(text)
        try:
            return cls(**raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(f"--set {first['loc'][0]}: {first['msg']}") from None

    def thresholds(self, run_config: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        """{tile: {amber, red}}; amber never above red."""
        amb_red = float(run_config.get("ambiguous_trade_frac_max", 0.35))
        heat_red = float(run_config.get("max_daily_loss", 0.05))
        return {
            "ambiguous": {"amber": min(self.ambiguous_amber, amb_red), "red": amb_red},
            "heat": {"amber": min(self.heat_amber, heat_red), "red": heat_red},
        }


def level(value: float | None, amber: float, red: float) -> str:
    """green / amber (from ``amber``) / red (above ``red``, where the system acts: the strategy's
    rules are strict inequalities); ``none`` without a value."""
    if value is None or value != value:
        return "none"
    return "red" if value > red else "amber" if value >= amber else "green"
