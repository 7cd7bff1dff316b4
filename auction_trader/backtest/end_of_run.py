"""The end-of-run actor: at the last tick the run is flattened, so every P&L of it is realized."""

from __future__ import annotations

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class EndOfRun(Actor):
    """At the last tick: cancel the strategy's orders and close its position at market."""

    TAGS = ["purpose=end_of_run"]

    def __init__(self, strategy: Strategy, instrument_id: InstrumentId, last_ts: int) -> None:
        super().__init__(ActorConfig(component_id="EndOfRun"))
        self.strategy = strategy  # replaced by rearm_engine when the engine is reused
        self._instrument_id = instrument_id
        self._last_ts = int(last_ts)
        self.fired = False

    def on_start(self) -> None:
        self.clock.set_time_alert_ns("end_of_run", self._last_ts, self._on_end)

    def on_reset(self) -> None:
        self.fired = False

    def _on_end(self, _event) -> None:
        self.fired = True
        self.strategy.cancel_all_orders(self._instrument_id)
        self.strategy.close_all_positions(self._instrument_id, tags=list(self.TAGS))
