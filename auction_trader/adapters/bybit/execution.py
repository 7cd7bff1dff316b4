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

Rate limits: Bybit answers an order request over its limit with 10006 ("Too many visits") and does
not create the order. The stock client turns that into ``OrderRejected``, and the strategy would
give the entry (or a stop!) up. Here such a rejection is held back and the same order - same client
order id, so never a second order on the venue - is submitted again after 0.5, 1, 2 and 4 s; only
when that fails too does the rejection reach the strategy.

Lost fills: a fill whose private-socket frame is lost while the socket reconnects never reaches
Nautilus (its open-order check did not recover one in our tests: the node's reconciliation then
halted on a position mismatch). Every ``FILL_CHECK_S`` the client asks the venue for the
executions of each of our open orders older than ``FILL_CHECK_AGE_MS`` (REST, off the loop) and
books any execution Nautilus has not seen (its ``execId`` is the fill's trade id, so a frame that
does arrive later is the same fill, not a second one).
"""

from __future__ import annotations

import asyncio

from nautilus_trader.adapters.bybit.config import BybitExecClientConfig, _resolve_environment
from nautilus_trader.adapters.bybit.execution import BybitExecutionClient
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.execution.messages import ModifyOrder, SubmitOrder
from nautilus_trader.model.enums import LiquiditySide
from nautilus_trader.model.identifiers import ClientOrderId, TradeId
from nautilus_trader.model.objects import Money
from nautilus_trader.live.factories import LiveExecClientFactory

from auction_trader.adapters.bybit.factories import http_client_and_provider
from auction_trader.adapters.bybit.rest import DEFAULT_REST, BybitRest


RATE_LIMITED = ("10006", "Too many visits", "Rate Limit")
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
FILL_CHECK_S = 5.0
FILL_CHECK_AGE_MS = 3_000


class AuctionBybitExecutionClient(BybitExecutionClient):
    """See the module docstring."""

    def __init__(self, *args, config: BybitExecClientConfig, **kwargs) -> None:
        super().__init__(*args, config=config, **kwargs)
        env = _resolve_environment(config.environment).name.lower()
        self._amend_rest = BybitRest(config.base_url_http or DEFAULT_REST[env], config.api_key, config.api_secret)
        self._submits: dict[ClientOrderId, SubmitOrder] = {}
        self._retries: dict[ClientOrderId, int] = {}
        self.rate_limit_retries = 0
        self.recovered_fills = 0
        self._fill_check_task = None

    async def _connect(self) -> None:
        await super()._connect()
        self._fill_check_task = self.create_task(self._check_fills_forever())

    async def _disconnect(self) -> None:
        if self._fill_check_task is not None:
            self._fill_check_task.cancel()
            self._fill_check_task = None
        await super()._disconnect()

    # -- lost fills: the venue's executions of our open orders ------------------------------------

    async def _check_fills_forever(self) -> None:
        while True:
            await asyncio.sleep(FILL_CHECK_S)
            try:
                await self._check_fills()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a failed look-up is tried again at the next round
                self._log.warning(f"fill check: {type(e).__name__}: {e}")

    async def _check_fills(self) -> None:
        now_ms = self._clock.timestamp_ns() // 1_000_000
        loop = asyncio.get_running_loop()
        for order in self._cache.orders_open(venue=self.venue):
            if now_ms - order.ts_init // 1_000_000 < FILL_CHECK_AGE_MS or order.venue_order_id is None:
                continue
            symbol = order.instrument_id.symbol.value.split("-")[0]
            link_id = order.client_order_id.value
            rows = await loop.run_in_executor(None, lambda: self._amend_rest.executions(symbol, link_id))
            seen = {t.value for t in order.trade_ids}
            for row in sorted(rows, key=lambda r: int(r.get("execTime") or 0)):
                if row.get("execType", "Trade") != "Trade" or row["execId"] in seen or now_ms - int(row.get("execTime") or 0) < FILL_CHECK_AGE_MS:
                    continue
                order = self._cache.order(order.client_order_id)
                if order is None or order.is_closed:
                    break
                self._book_fill(order, row)

    def _book_fill(self, order, row: dict) -> None:
        instrument = self._cache.instrument(order.instrument_id)
        self.recovered_fills += 1
        self._log.warning(f"{order.client_order_id}: fill {row['execId']} ({row['execQty']} @ {row['execPrice']}) found on the venue, not received: booked")
        self.generate_order_filled(
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            venue_position_id=None,
            trade_id=TradeId(row["execId"]),
            order_side=order.side,
            order_type=order.order_type,
            last_qty=instrument.make_qty(float(row["execQty"])),
            last_px=instrument.make_price(float(row["execPrice"])),
            quote_currency=instrument.quote_currency,
            commission=Money(float(row.get("execFee") or 0), instrument.quote_currency),
            liquidity_side=LiquiditySide.MAKER if row.get("isMaker") else LiquiditySide.TAKER,
            ts_event=int(row.get("execTime") or 0) * 1_000_000,
        )

    # -- rate limits: resubmit instead of rejecting ------------------------------------------------

    async def _submit_order(self, command: SubmitOrder) -> None:
        self._submits[command.order.client_order_id] = command
        await super()._submit_order(command)

    def _retry_rate_limited(self, client_order_id: ClientOrderId, reason: str) -> bool:
        if not any(m in reason for m in RATE_LIMITED):
            return False
        command = self._submits.get(client_order_id)
        attempt = self._retries.get(client_order_id, 0)
        order = self._cache.order(client_order_id)
        if command is None or attempt >= len(RETRY_DELAYS_S) or order is None or order.is_closed:
            return False
        self._retries[client_order_id] = attempt + 1
        self.rate_limit_retries += 1
        delay = RETRY_DELAYS_S[attempt]
        self._log.warning(f"{client_order_id}: rate limited by Bybit (10006); submitting it again in {delay:g} s")
        self._loop.call_later(delay, lambda: self.create_task(self._submit_order(command)))
        return True

    def _handle_order_rejected_pyo3(self, msg) -> None:
        if self._retry_rate_limited(ClientOrderId(msg.client_order_id.value), str(msg.reason)):
            return
        super()._handle_order_rejected_pyo3(msg)

    def generate_order_rejected(self, strategy_id, instrument_id, client_order_id, reason, ts_event, due_post_only=False) -> None:
        if self._retry_rate_limited(client_order_id, str(reason)):
            return
        super().generate_order_rejected(strategy_id, instrument_id, client_order_id, reason, ts_event, due_post_only)

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
        client, provider = http_client_and_provider(config)
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
