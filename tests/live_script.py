"""A scripted signal source for live-node tests: the real AuctionStrategy and SignalEngine, with one
entry forced at a chosen minute (its own setups held back), priced off that minute's close quote.

The same class runs in the node (through ``tests/live_driver.py``) and in the backtest over the
node's recording, so the paper/backtest parity test compares like with like: the decision is a
function of the ticks only.
"""

from __future__ import annotations

import json
import os

from auction_trader.config import AuctionConfig
from auction_trader.core.setups import Candidate
from auction_trader.core.signals import ENTER_LONG, ENTER_SHORT, EXIT, HOLD, Decision, SignalEngine
from auction_trader.strategies.auction_strategy import AuctionStrategy, AuctionStrategyConfig

SCRIPT_ENV = "AUCTION_TEST_SCRIPT"


class OneEntryEngine(SignalEngine):
    """``script``: {"enter_ts_min": ms, "direction": 1 | -1, "stop_ticks": n, "tp1_ticks": n, "tp2_ticks": n,
    "at": "touch" | "passive"}; levels are ticks from the entry price."""

    script: dict

    def on_minute(self, m, ctx=None):
        decision, record = super().on_minute(m, ctx)
        s = self.script
        forced = None
        if decision.action in (ENTER_LONG, ENTER_SHORT):
            forced = Decision(HOLD, "NOT_SCRIPTED")
        if m.ts_min == s["enter_ts_min"]:
            d = int(s.get("direction", 1))
            # "touch": a long enters at the ask (marketable); "passive": at the bid (a resting limit)
            passive = s.get("at", "touch") == "passive"
            entry = (m.bid if passive else m.ask) if d == 1 else (m.ask if passive else m.bid)
            tick = self.tick
            c = Candidate("breakin", d, entry, entry - d * s["stop_ticks"] * tick, entry + d * s["tp1_ticks"] * tick, entry + d * s["tp2_ticks"] * tick)
            forced = Decision(ENTER_LONG if d == 1 else ENTER_SHORT, "SCRIPTED", c)
        if forced is not None:
            decision = forced
            record = {**record, "chosen_action": forced.action, "reason_code": forced.reason}
        return decision, record


class StepsEngine(SignalEngine):
    """``script``: {"steps": [{"ts_min": ms, "action": "long" | "short" | "exit", "stop_ticks": n,
    "tp1_ticks": n, "tp2_ticks": n, "at": "touch" | "passive"}, ...]}: at each step's minute the
    decision is forced - an entry (a flip, closing first, when a position is open) or an exit -
    and every other entry or exit the engine would take is held back, so the test decides alone
    what the position does."""

    script: dict

    def _steps(self) -> list[dict]:
        """The steps: ``script["steps"]`` itself, or (``"steps": "path"``) that JSON file as it
        stands when a minute closes - a test writes it once the node is warm (none yet: no step)."""
        steps = self.script["steps"]
        if not isinstance(steps, str):
            return steps
        try:
            with open(steps) as f:
                return json.load(f)
        except FileNotFoundError:
            return []

    def on_minute(self, m, ctx=None):
        decision, record = super().on_minute(m, ctx)
        forced = None
        if decision.action != HOLD:
            forced = Decision(HOLD, "NOT_SCRIPTED")
        for s in self._steps():
            if m.ts_min != s["ts_min"]:
                continue
            if s["action"] == "exit":
                forced = Decision(EXIT, "SCRIPTED", exit_reason="time") if self.position is not None else forced
                continue
            d = 1 if s["action"] == "long" else -1
            passive = s.get("at", "touch") == "passive"
            entry = (m.bid if passive else m.ask) if d == 1 else (m.ask if passive else m.bid)
            tick = self.tick
            c = Candidate("breakin", d, entry, entry - d * s["stop_ticks"] * tick, entry + d * s["tp1_ticks"] * tick, entry + d * s["tp2_ticks"] * tick)
            flip = self.position is not None
            forced = Decision(ENTER_LONG if d == 1 else ENTER_SHORT, "SCRIPTED", c, close_first=flip, exit_reason="flip" if flip else None)
        if forced is not None:
            decision = forced
            record = {**record, "chosen_action": forced.action, "reason_code": forced.reason}
        return decision, record


class ScriptedAuction(AuctionStrategy):
    def __init__(self, config: AuctionConfig, script: dict, hooks=None) -> None:
        super().__init__(AuctionStrategyConfig(instrument_id=config.instrument_id, auction=config.model_dump()), hooks=hooks)
        self._script = script

    def on_start(self) -> None:
        super().on_start()
        engine = (StepsEngine if "steps" in self._script else OneEntryEngine)(self.params, self.tick)
        engine.script = self._script
        self.engine = engine


def factory_from_env():
    """A ``strategy_factory(config, hooks)`` for the node, from ``AUCTION_TEST_SCRIPT`` (JSON)."""
    script = json.loads(os.environ[SCRIPT_ENV])
    return lambda config, hooks: ScriptedAuction(config, script, hooks)
