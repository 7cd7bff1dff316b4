"""The live node: a Nautilus ``TradingNode`` on Bybit v5 around the backtest's ``AuctionStrategy``.

One strategy class, one decision path; only the node around it changes (DESIGN.md "Live path"):

=========  ==========================================  ===========================================
mode       execution                                    where the strategy runs
=========  ==========================================  ===========================================
dry-run    none: entries gated off (decisions logged)   the paper engine (a paper account for sizing)
paper      the backtest's venue (:mod:`.paper`)         the paper engine
shadow     paper + the same decisions sized on the      the paper engine; the real account is read
           real account (read-only REST), compared      by REST, never traded
live       Nautilus's ``BybitExecutionClient``          the ``TradingNode`` itself
=========  ==========================================  ===========================================

Market data always comes through the ``TradingNode``'s Bybit data client
(:mod:`auction_trader.adapters.bybit.data`: ``orderbook.1`` quotes, ``publicTrade`` trades). The
:class:`LiveFeed` actor takes every tick, records it (:mod:`.recorder`), and hands it to the
:class:`~.sequencer.MinuteSequencer`, which releases ticks in exchange-time order once they are
``minute_grace_ms`` old. Released ticks drive the strategy: the paper engine (dry-run, paper,
shadow) or, in live mode, the strategy's features, with ``close_minute`` called at each boundary
the watermark passes (boundary + grace).

At start the node replays the recording's last ``rolling_window_minutes`` (or ``--warmup-catalog``)
into the same path, with entries gated off, and reports the minutes covered and the gaps; it
trades only once the last ``warmup_minutes`` are all covered (and, with
``require_manual_activation``, once activated).

Restart (issue 11): the store's checkpoint holds every piece of decision state. Live, the strategy
resumes it once Nautilus's reconciliation has adopted the venue's orders, books the fills of its own
orders it had not seen (made while the node was down), and the plan is compared with the venue
(:mod:`.reconcile`: resume, re-protect or halt). Paper and shadow, whose venue died with the
process, rebuild it from the checkpoint's ``paper`` part: the stored balance, the open position at
its average price, the plan's working orders placed again at the same levels.

Services the other live modules plug into (LIVE_CONTRACT.md): ``store`` (``LiveStore``),
``alerts`` (``AlertSink``) and ``gate`` (:class:`Gate`, ``may_enter()``); the strategy sees them
through :class:`NodeHooks` (``hooks=``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, InstrumentProviderConfig, LiveExecEngineConfig, LoggingConfig, TradingNodeConfig
from nautilus_trader.core.nautilus_pyo3 import BybitEnvironment, BybitMarginMode, BybitPositionMode, BybitProductType
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import FIXED_PRECISION, Price, Quantity

from auction_trader.adapters.bybit.data import AuctionBybitDataClientConfig, AuctionBybitLiveDataClientFactory
from auction_trader.adapters.bybit.rest import DEFAULT_REST, BybitRest
from auction_trader.backtest.funding import next_funding_after
from auction_trader.config import AuctionConfig
from auction_trader.instrument import BTCUSDT as SPEC
from auction_trader.core.risk import DAY_MS
from auction_trader.live.control import ControlState, normal_mode
from auction_trader.live.reconcile import PlannedOrder
from auction_trader.live.store import TERMINAL_ORDER_STATUSES
from auction_trader.live.recorder import TickRecorder, read_gaps
from auction_trader.live.sequencer import MINUTE_NS, MinuteSequencer
from auction_trader.live.warmup import Coverage, load_warmup

log = logging.getLogger(__name__)

MODES = ("dry-run", "paper", "shadow", "live")
ENVIRONMENTS = {"mainnet": BybitEnvironment.MAINNET, "demo": BybitEnvironment.DEMO, "testnet": BybitEnvironment.TESTNET}
KEY_SUFFIX = {"mainnet": "", "demo": "_DEMO", "testnet": "_TESTNET"}
OPEN_CHECK_S = 5.0  # live: open orders checked against the venue (REST) this often
PUMP_MS = 100  # how often released ticks are handed on (and the watchdog looks)
RECONCILE_S = 30.0  # live: venue position and orders (REST) against the plan this often
FUNDING_WAIT_NS = 20_000_000_000  # how long paper waits past a settlement for the published rate
PROGRESS_WAIT_NS = 5_000_000_000  # a minute's progress line waits this long for its decision


class StartError(RuntimeError):
    """The node cannot start (a clear reason for the operator; never a secret)."""


@dataclass(frozen=True)
class Endpoints:
    """Where Bybit is. ``None``: Nautilus's default for the environment."""

    environment: str = "mainnet"
    rest_url: str | None = None
    public_ws_url: str | None = None
    private_ws_url: str | None = None
    trade_ws_url: str | None = None

    @property
    def rest(self) -> str:
        return self.rest_url or DEFAULT_REST[self.environment]


def api_keys(environment: str, environ: dict | None = None) -> tuple[str, str] | None:
    """``(key, secret)`` for the environment: ``BYBIT_API_KEY_DEMO`` / ``_TESTNET`` first, then
    ``BYBIT_API_KEY`` / ``BYBIT_API_SECRET``; None when either is missing."""
    env = os.environ if environ is None else environ
    for suffix in dict.fromkeys((KEY_SUFFIX[environment], "")):
        key, secret = env.get(f"BYBIT_API_KEY{suffix}", "").strip(), env.get(f"BYBIT_API_SECRET{suffix}", "").strip()
        if key and secret:
            return key, secret
    return None


def venue_leverage(max_leverage: float, taker_fee: float) -> int:
    """The leverage the live node sets on Bybit for the symbol.

    Sizing caps a position at ``max_leverage`` x equity (DESIGN.md "Sizing and exits"; the
    backtest's order gate lets exactly that through). Bybit asks of a new order its initial margin
    at the symbol's leverage *plus* the fees to open and to close it, so at a leverage of exactly
    ``max_leverage`` an entry sized at the cap - the usual case at the defaults - is refused with
    110007 "ab not enough for new order" (measured on the stand-in: 2.0 BTC at 50,000 on 10,000
    USDT). The venue leverage is therefore the smallest whole number strictly above
    ``max_leverage / (1 - 2 x max_leverage x taker_fee)`` (11 at the defaults), at most Bybit's
    100. In cross margin (the node's mode) the leverage sets only the initial margin, not where
    the account is liquidated, so the exposure stays the one sizing chose. Above ~90x the cap
    cannot be reached on Bybit at all: such entries are refused by the venue, and say so."""
    headroom = 1.0 - 2.0 * max_leverage * taker_fee
    need = max_leverage / headroom if headroom > 0 else math.inf
    return int(min(100, math.floor(need) + 1))


#: May the strategy open a position now? Active, not halted, warmed up, a trading mode; persisted in
#: the checkpoint (a halt survives restarts until ``resolve``). See :mod:`auction_trader.live.control`.
Gate = ControlState


@dataclass
class NodeHooks:
    """What ``AuctionStrategy(hooks=...)`` calls: the gate and the store."""

    node: LiveNode
    sequenced: bool = False
    last_signal: dict | None = None
    recent: dict = field(default_factory=dict)  # ts_min (ms) -> signals_1m row, the latest few
    signals: int = 0

    def may_enter(self) -> bool:
        # Never while the node replays recorded minutes into the strategy (warm-up, or the catch-up
        # after a restored checkpoint): those decisions are history, not orders to send now.
        return not self.node.replaying and self.node.gate.may_enter()

    def record(self, table: str, row: dict) -> None:
        if self.node.muted:
            return  # history a previous run recorded already, fed again to rebuild state
        if table == "features_1m" and row["ts_min"] * 1_000_000 + MINUTE_NS > self.node.sequencer.watermark + 1:
            # Not closed (its end not behind the watermark): the strategy's on_stop closes the
            # unfinished minute, as a backtest does at the end of its data; a node does not store it.
            return
        if table == "signals_1m":
            # A decision: the state changed (paper decides at its first tick after the boundary,
            # after the node's minute-close checkpoint): checkpointed at the end of this pump.
            self.node._checkpoint_due = True
            last = self.last_signal["ts_min"] if self.last_signal is not None else None
            if last is None or row["ts_min"] > last:
                self.signals += 1  # a record amended after its minute (a flip's entry) is stored again, not counted again
            if last is None or row["ts_min"] >= last:
                self.last_signal = row
            self.recent[row["ts_min"]] = row
            if len(self.recent) > 16:
                self.recent.pop(min(self.recent))
        self.node.record(table, row)


@dataclass
class NodeOptions:
    mode: str
    data_dir: Path
    endpoints: Endpoints = field(default_factory=Endpoints)
    warmup_catalog: Path | None = None
    api_key: str | None = None  # live and shadow only
    api_secret: str | None = None
    log_level: str = "WARNING"
    dashboard: DashboardOptions | None = None  # run_live.py --dashboard


@dataclass(frozen=True)
class DashboardOptions:
    """``run_live.py --dashboard``: the web dashboard on this node's data dir, served from a thread of
    the node's process, started after the store is open and stopped at shutdown. A non-loopback
    host needs ``token`` (from ``AUCTION_TRADER_DASHBOARD_TOKEN``; never printed)."""

    host: str = "127.0.0.1"
    port: int = 8050
    token: str | None = field(default=None, repr=False)


class LiveFeed(Actor):
    """Every tick of the data client: recorded, sequenced, and (every PUMP_MS) handed on."""

    def __init__(self, node: LiveNode) -> None:
        super().__init__(ActorConfig(component_id="LiveFeed"))
        self.node = node

    def on_start(self) -> None:
        iid = self.node.instrument_id
        self.subscribe_quote_ticks(iid)
        self.subscribe_trade_ticks(iid)
        self.clock.set_timer_ns("pump", PUMP_MS * 1_000_000, 0, 0, self._pump)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.node.on_tick(_restamp_quote(tick), False)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.node.on_tick(_restamp_trade(tick), True)

    def _pump(self, _event) -> None:
        try:
            self.node.pump(time.time_ns())
        except Exception as exc:  # a bug in one pump must not silently stop the node's timer
            log.exception("pump failed")
            self.node.fatal(exc)


def _at(raw: int, precision: int) -> int:
    """A fixed-point raw value rounded to ``precision`` decimals (Bybit prints BTCUSDT prices with
    two decimals on a 0.1 tick; our catalogs and the backtest instrument use one)."""
    unit = 10 ** (FIXED_PRECISION - precision)
    return (raw + unit // 2) // unit * unit


def _restamp_quote(q: QuoteTick) -> QuoteTick:
    """The quote as our catalogs hold it: ``ts_init = ts_event`` (exchange time, the order the
    paper engine replays) and the instrument spec's precisions (the backtest instrument's)."""
    bid, ask, bs, az = q.bid_price, q.ask_price, q.bid_size, q.ask_size
    pp, sp = SPEC.price_precision, SPEC.size_precision
    return QuoteTick.from_raw(q.instrument_id, _at(bid.raw, pp), _at(ask.raw, pp), pp, pp, _at(bs.raw, sp), _at(az.raw, sp), sp, sp, q.ts_event, q.ts_event)


def _restamp_trade(t: TradeTick) -> TradeTick:
    pp, sp = SPEC.price_precision, SPEC.size_precision
    price = Price.from_raw(_at(t.price.raw, pp), pp)
    size = Quantity.from_raw(_at(t.size.raw, sp), sp)
    return TradeTick(t.instrument_id, price, size, t.aggressor_side, t.trade_id, t.ts_event, t.ts_event)


class LiveNode:
    """Builds and runs the node; see the module docstring. ``strategy_factory(config, hooks)``
    replaces ``AuctionStrategy`` (tests drive entries with a scripted strategy)."""

    def __init__(self, config: AuctionConfig, options: NodeOptions, strategy_factory=None, out=None) -> None:
        if options.mode not in MODES:
            raise StartError(f"mode must be one of {', '.join(MODES)} (got {options.mode!r})")
        self.config = config
        self.options = options
        self.mode = options.mode
        self.out = out or sys.stdout
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.data_dir = Path(options.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.gate = ControlState.initial(self.mode, require_manual_activation=config.startup.require_manual_activation, warmup_needed=config.startup.warmup_minutes)
        self.control = None  # Controller (rules, halts, alerts) once the store is open
        self.poller = None
        from auction_trader.live.reconcile import RunningReconciler  # noqa: PLC0415

        self.reconciler = RunningReconciler(interval_s=RECONCILE_S, confirmations=2, max_age_s=max(10.0, RECONCILE_S))
        self._recon_future = None
        self._recon_started = False  # the first comparison (after Nautilus's own reconciliation) needs no confirmation
        self._recon_asked_ms = 0  # when the venue state being read was asked for
        self._recon_first_ms: int | None = None  # when the first comparison was first due
        self._plan_changed_ms = 0
        self._our_orders: set[str] = set()
        self._fill_ids: set[str] = set()
        self._claimed: dict = {}  # client order id -> PlannedOrder
        self.hooks = NodeHooks(self, sequenced=self.mode == "live")
        self.strategy_factory = strategy_factory or _auction_strategy
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="live-rest")
        monitoring = config.monitoring
        self.stale_ns = int(monitoring.data_stale_seconds * 1e9)
        self.sequencer = MinuteSequencer(grace_ns=monitoring.minute_grace_ms * 1_000_000)
        self.warmup_needed = config.startup.warmup_minutes
        self.coverage = Coverage(self.warmup_needed)
        self.ticks = 0
        self.stale = False
        self.stale_alerts = 0
        self._last_tick_wall: int | None = None
        self._last_tick_ts: int | None = None
        self._stale_since_ts: int | None = None
        self._minute_reported: int | None = None
        self._progress_due: list[int] = []
        self._warmup_pending: list | None = None
        self._live_minute: int | None = None
        self._fatal: BaseException | None = None
        self._funding_next: int | None = None
        self._funding_future = None
        self._funding_rate_bps: float | None = None
        self._funding_recorded = 0  # paper funding ledger events already stored
        self._shadow_future = None
        self._shadow_last: str | None = None
        self._shadow_real = None
        self.divergences = 0
        self.fills = 0
        self.paper = None
        self.strategy = None
        self.node: TradingNode | None = None
        self.rest = BybitRest(options.endpoints.rest, options.api_key, options.api_secret, config.market.instrument)
        self.store = None
        self.alerts = None
        self.recorder = None
        self.replaying = False
        self.muted = False  # the strategy's records are dropped (a paper restart re-feeding the checkpoint's history)
        self._saved_strategy: dict | None = None  # the checkpointed strategy state a live restart resumes
        self._feed_start: int | None = None  # exchange time of the first tick fed to the strategy (this lineage)
        self.restored = False
        self._paper_saved: dict | None = None  # the stored paper account a restart resumes (None once resumed)
        self._checkpoint_due = False
        self.dashboard = None  # a ServerHandle with --dashboard

    # -- services --------------------------------------------------------------------------------

    def _open_services(self) -> None:
        from auction_trader.live.alerts import AlertSink  # noqa: PLC0415 (l-ops modules)
        from auction_trader.live.store import LiveStore  # noqa: PLC0415

        from auction_trader.live.control import ControlPoller, Controller, start_mode_refusal  # noqa: PLC0415

        self.store = LiveStore(self.data_dir / "execution.db")
        self.alerts = AlertSink(self.store, self.mode)
        checkpoint = self.store.checkpoint() or {}
        saved = checkpoint.get("node")
        resumable = checkpoint.get("strategy") and (checkpoint.get("feed") or {}).get("start_ns") is not None
        if resumable and self.mode == "live":
            self._saved_strategy = checkpoint["strategy"]
            self._feed_start = int(checkpoint["feed"]["start_ns"])
        elif resumable and self.mode in ("paper", "shadow") and checkpoint.get("paper") and normal_mode(str((saved or {}).get("mode"))) == normal_mode(self.mode):
            # Paper (and shadow) resume their own venue: the stored balance and position, the plan.
            self._saved_strategy = checkpoint["strategy"]
            self._feed_start = int(checkpoint["feed"]["start_ns"])
            self._paper_saved = checkpoint["paper"]
        last = self.store.node_status() or {}
        flat = str((last.get("position") or {}).get("side", "FLAT")).upper() == "FLAT"
        refusal = start_mode_refusal(saved, self.mode, flat)
        if refusal is not None:
            raise StartError(refusal)
        startup = self.config.startup
        self.gate = ControlState.initial(self.mode, require_manual_activation=startup.require_manual_activation, warmup_needed=self.warmup_needed, saved=saved)
        self.control = Controller(self.gate, self.alerts, on_change=self._control_changed, describe=self._describe)
        self.poller = ControlPoller(self.store, self._handle_control)
        # Orders we placed (any run) and those we last knew open: the plan's claims at the venue.
        self._our_orders = {r["client_order_id"] for r in self.store.rows("orders")}
        self._fill_ids = {r["trade_id"] for r in self.store.rows("fills")}  # venue fills stored (any run)
        self._claimed = {
            r["client_order_id"]: PlannedOrder(r["client_order_id"], r["purpose"] or "", r["side"], r["order_type"], float(r["qty"]), r["price"], r["trigger_price"])
            for r in self.store._reader.open_orders()
        }
        if self.gate.halted:
            self._say(f"HALTED (from the last run): {self.gate.halt_reason}; no new entries until `run_live.py resolve`")
        elif saved and self.gate.active:
            self._say("active (from the last run): entries resume once warmed up")
        self.recorder = TickRecorder(self.data_dir / "catalog", str(self.instrument_id))

    def record(self, table: str, row: dict) -> None:
        """A row for the store, from the strategy (through the hooks) or the node."""
        if self.store is None:
            return
        if table == "alerts":
            self.alerts.emit_strategy(row)
        elif table == "fills":
            self.store.record("fills", {**row, "mode": self.mode})
        else:
            self.store.record(table, row)

    def fatal(self, exc: BaseException) -> None:
        self._fatal = exc
        if self.node is not None:
            self.node.stop()

    # -- start ------------------------------------------------------------------------------------

    def run(self) -> int:
        """Warm up, run until SIGINT/SIGTERM, stop cleanly. Returns the exit status."""
        self._open_services()
        try:
            self._say(f"auction-trader live node: mode {self.mode}, {self.options.endpoints.environment}, data dir {self.data_dir}")
            self._start_dashboard()
            self._fetch_funding_now()
            self._build_node()
            if self.mode != "live":
                self.strategy = self.strategy_factory(self.config, self.hooks)
                from auction_trader.live.paper import PaperVenue  # noqa: PLC0415

                self.paper = PaperVenue(self.config, self.strategy, self.data_dir / "catalog", resume=self._paper_saved, on_order_event=self._on_paper_order_event)
                if self._funding_rate_bps is not None:
                    self.paper.set_funding_rate(self._funding_rate_bps)
            self._warm_up()
            if self.mode == "shadow":
                self._shadow_future = self._pool.submit(self.rest.account)
            self._write_status()
            self.node.run()
        finally:
            self._shutdown()
        if self._fatal is not None:
            self._say(f"stopped on an error: {type(self._fatal).__name__}: {self._fatal}")
            return 1
        return 0

    def _build_node(self) -> None:
        ep = self.options.endpoints
        env = ENVIRONMENTS[ep.environment]
        provider = InstrumentProviderConfig(load_ids=frozenset({str(self.instrument_id)}))
        data = AuctionBybitDataClientConfig(
            api_key=self.options.api_key,
            api_secret=self.options.api_secret,
            product_types=(BybitProductType.LINEAR,),
            environment=env,
            base_url_http=ep.rest_url,
            base_url_ws_public=ep.public_ws_url,
            instrument_provider=provider,
            update_instruments_interval_mins=None,
            instrument_status_poll_secs=None,
        )
        exec_clients = {}
        if self.mode == "live":
            from nautilus_trader.adapters.bybit.config import BybitExecClientConfig  # noqa: PLC0415

            symbol = self.instrument_id.symbol.value
            exec_clients["BYBIT"] = BybitExecClientConfig(
                api_key=self.options.api_key,
                api_secret=self.options.api_secret,
                product_types=(BybitProductType.LINEAR,),
                environment=env,
                base_url_http=ep.rest_url,
                base_url_ws_private=ep.private_ws_url,
                base_url_ws_trade=ep.trade_ws_url,
                instrument_provider=provider,
                futures_leverages={symbol: venue_leverage(self.config.sizing.max_leverage, self.config.execution.taker_fee_bps / 10_000)},
                position_mode={symbol: BybitPositionMode.MERGED_SINGLE},
                margin_mode=BybitMarginMode.REGULAR_MARGIN,
            )
        node = TradingNode(
            TradingNodeConfig(
                trader_id="AUCTION-001",
                logging=LoggingConfig(log_level=self.options.log_level, log_colors=False),
                data_clients={"BYBIT": data},
                exec_clients=exec_clients,
                # A fill whose private-socket frame was lost in a reconnect must still reach the
                # strategy: open orders are checked against the venue by REST every few seconds.
                exec_engine=LiveExecEngineConfig(open_check_interval_secs=OPEN_CHECK_S) if self.mode == "live" else LiveExecEngineConfig(),
                timeout_connection=30.0,
                timeout_disconnection=5.0,
                timeout_post_stop=1.0,
            ),
        )
        node.add_data_client_factory("BYBIT", AuctionBybitLiveDataClientFactory)
        if self.mode == "live":
            from auction_trader.adapters.bybit.execution import AuctionBybitLiveExecClientFactory  # noqa: PLC0415

            node.add_exec_client_factory("BYBIT", AuctionBybitLiveExecClientFactory)
            self.strategy = self.strategy_factory(self.config, self.hooks)
            node.trader.add_strategy(self.strategy)
            self._watch_orders(node.kernel.msgbus)
        node.trader.add_actor(LiveFeed(self))
        node.build()
        self.node = node

    # -- warm-up ------------------------------------------------------------------------------------

    def _warm_up(self) -> None:
        window = max(self.config.value_area.rolling_window_minutes, self.warmup_needed)
        catalogs = ([self.options.warmup_catalog] if self.options.warmup_catalog else []) + [self.data_dir / "catalog"]
        now = time.time_ns()
        wu = load_warmup(catalogs, str(self.instrument_id), window, now, start_ns=self._feed_start if self._saved_strategy else None)
        if self._saved_strategy:
            self._say(f"restart: resuming the checkpoint of {_hm(self._saved_strategy['features']['closed_through_ns'] or now)} UTC; features rebuilt from the recording since {_hm(self._feed_start)} UTC")
        for t in wu.ticks:
            self.coverage.add(t.ts_init)
        covered = self.coverage.covered(now)
        gaps = self.coverage.gaps(max(wu.start_ns, now // MINUTE_NS * MINUTE_NS - self.warmup_needed * MINUTE_NS), now)
        recorded = [g for g in read_gaps(self.data_dir / "catalog") if g["end_ns"] > wu.start_ns]
        src = ", ".join(wu.sources) or "no recording"
        self._say(f"warm-up: {len(wu.ticks)} ticks ({wu.trades} trades, {wu.quotes} quotes) from {src}; {covered}/{self.warmup_needed} minutes covered")
        for a, b in gaps[:10]:
            self._say(f"warm-up gap: {_hm(a)} - {_hm(b)} UTC ({(b - a) // MINUTE_NS} min)")
        if len(gaps) > 10:
            self._say(f"warm-up: {len(gaps) - 10} more gaps")
        for g in recorded[-5:]:
            self._say(f"recorded gap: {_hm(g['start_ns'])} - {_hm(g['end_ns'])} UTC ({g['reason']})")
        if wu.ticks:
            self.sequencer.watermark = wu.ticks[-1].ts_init  # live ticks continue after the recording
            if self.paper is not None and self._saved_strategy is not None:
                self._resume_paper(wu.ticks)
            elif self.paper is not None:
                self._deliver(wu.ticks, warmup=True)
            else:  # live: the strategy exists once the node runs and its account is known
                self._warmup_pending = wu.ticks
        self.warmup_ticks = len(wu.ticks)
        self._update_warm(now)

    def _update_warm(self, now_ns: int) -> None:
        was = self.gate.warmed_up
        self.gate.warmup_minutes = self.coverage.covered(now_ns)
        if self.gate.warmed_up and not was:
            self._say(f"warm-up complete: the last {self.warmup_needed} minutes are covered" + ("" if self.gate.active else "; waiting for `run_live.py activate`"))

    # -- the tick path ---------------------------------------------------------------------------

    def on_tick(self, tick, is_trade: bool) -> None:
        ts = tick.ts_init
        self.ticks += 1
        self._last_tick_wall = time.time_ns()
        if self.stale:
            self._end_stale(ts)
        self._last_tick_ts = ts
        self.recorder.add(tick)
        self.coverage.add(ts)
        self.sequencer.push(ts, is_trade, tick)

    def pump(self, now_ns: int) -> None:
        """Every PUMP_MS: release ticks, close minutes, watch the feed, answer control."""
        if self._fatal is not None:
            return
        if self._warmup_pending is not None:
            if not self._live_ready():
                return
            ticks, self._warmup_pending = self._warmup_pending, None
            if self._saved_strategy is not None:
                ticks = self._restore(ticks)
            self._deliver(ticks, warmup=True)
            self._say(f"warm-up replayed into the strategy: {len(ticks)} ticks")
            self._checkpoint_due = True
        limit = self._funding_limit(now_ns)
        self._update_warm(now_ns - self.sequencer.grace_ns)  # before the minute it completes is decided
        released = self.sequencer.release(now_ns, limit)
        if released:
            self._deliver(released, warmup=False)
        self._close_live_minutes()
        self._flush_progress()
        self._watch(now_ns)
        minute = self.sequencer.closed_minute()
        if self._minute_reported is None:
            self._minute_reported = (now_ns - self.sequencer.grace_ns) // MINUTE_NS * MINUTE_NS - MINUTE_NS
        if minute > self._minute_reported:
            self._minute_reported = minute
            self._on_minute_closed(minute, now_ns)
        self._poll_control()
        self._reconcile(now_ns)
        if self._checkpoint_due:
            self._write_checkpoint()

    def _live_ready(self) -> bool:
        """Live mode: the strategy started and the venue account is in the cache."""
        st = self.strategy
        return st is not None and getattr(st, "features", None) is not None and self.node.kernel.cache.account_for_venue(self.instrument_id.venue) is not None

    def _restore(self, ticks: list, head: list | None = None) -> list:
        """Restart: the strategy continues from the checkpoint - its feature engine rebuilt from the
        recorded ticks it had been fed (``head``; default, live: those before the checkpoint's last
        minute close), its signal engine, kill switch and trade plan from the saved state. Live, the
        plan then books the fills of its orders it had not seen (:meth:`_book_fills_while_down`);
        paper, its account and orders come back on the rebuilt venue (:meth:`_resume_paper_venue`).
        Returns the ticks after ``head``, to be replayed as warm-up (entries gated off). A
        checkpoint that cannot be restored halts the node: trading on a plan that does not know its
        own trade is a guess."""
        saved, self._saved_strategy = self._saved_strategy, None
        through = saved["features"]["closed_through_ns"]
        if head is None:  # live: the strategy had been fed the ticks before its last minute close
            head = [t for t in ticks if through is None or t.ts_init < through]
        tail = ticks[len(head):]
        self.replaying = True
        try:
            self.strategy.restore(saved, ticks=head)
        except Exception as exc:
            self._say(f"restart: checkpoint NOT restored ({type(exc).__name__}: {exc})")
            self.control.halt(f"checkpoint not restored: {exc}", {"error": type(exc).__name__})
            self._write_checkpoint()
            return tail
        finally:
            self.replaying = False
        if self.paper is not None and not self._resume_paper_venue():
            return tail
        self.restored = True
        if self.paper is None:
            if all("booked" in t for t in saved["lifecycle"]["trades"]):  # older checkpoints do not say what they booked
                self._book_fills_while_down()
            self._claim_plan_orders()
        if through is not None:
            self._live_minute = through  # minutes from here on are closed by the catch-up and the live feed
        t = self.strategy.trade
        desc = "flat"
        if t is not None:
            step = float(self.strategy.instrument.size_increment)
            side = "LONG" if t.candidate.direction > 0 else "SHORT"
            tps = ", ".join(f"{p} {cid}" for p, cid in t.tp_ids.items() if cid)
            desc = f"{side} {t.open_steps * step:g} @ {t.entry_price:.1f}, stop {t.stop_price} ({t.stop_id}), {tps or 'no targets'}"
        g = self.strategy.guard
        self._say(f"restart: checkpoint restored ({len(head)} ticks re-fed): {desc}; kill switch {'TRIPPED' if g.active else 'armed'} (day start balance {g.day_start_balance:.2f})")
        return tail

    def _resume_paper(self, ticks: list) -> None:
        """Paper restart: the venue is rebuilt with the stored balance and fed the recorded ticks
        the checkpointed strategy had seen (entries gated off), the strategy continues from the
        checkpoint (:meth:`_restore`), the stored position is opened again and the plan places its
        protection again; then the rest of the recording is replayed (entries gated off)."""
        # The ticks the checkpointed venue had processed (their fills are in the stored account)
        # rebuild the strategy's features and the venue's book; the rest are new to the venue.
        last = self._paper_saved.get("last_ts")
        through = self._saved_strategy["features"]["closed_through_ns"]
        head = [t for t in ticks if t.ts_init <= last] if last is not None else [t for t in ticks if through is None or t.ts_init < through]
        self.muted = True
        try:
            self._deliver(head, warmup=True)
        finally:
            self.muted = False
        if not self.paper.started:
            self._saved_strategy = None
            self._say("restart: checkpoint NOT restored (no quote recorded before it: the paper venue cannot be rebuilt)")
            self.control.halt("checkpoint not restored: no quote recorded before it", {"error": "NoQuote"})
            self._write_checkpoint()
            self._deliver(ticks[len(head):], warmup=True)
            return
        tail = self._restore(ticks, head)
        self._deliver(tail, warmup=True)
        self._checkpoint_due = True  # the resumed plan (its new order ids) checkpointed at the first pump

    def _resume_paper_venue(self) -> bool:
        """The stored paper position, opened again on the rebuilt venue (same side, quantity and
        average price; the balance it was built with is the stored one), then the plan's working
        orders placed again - the rebuilt venue holds none of them: the stop and targets at the
        levels the plan keeps, once. A stored position the plan does not explain halts (the plan is
        the authority; trading on beside an unexplained position would be a guess)."""
        saved, t = self._paper_saved, self.strategy.trade
        position = saved.get("position")
        step = float(self.strategy.instrument.size_increment)
        plan = None if t is None or not t.is_open else ("LONG" if t.candidate.direction > 0 else "SHORT", round(t.open_steps * step, 9))
        stored = None if position is None else (position["side"], round(float(position["qty"]), 9))
        try:
            if saved.get("order_count") is not None:
                self.paper.continue_order_ids(saved["order_count"])
            if plan != stored:
                raise ValueError(f"the stored paper position ({_pos_text(stored)}) is not the plan's ({_pos_text(plan)})")
            if position is not None:
                self.paper.restore_position(position)
        except Exception as exc:
            self._say(f"restart: paper position NOT restored ({type(exc).__name__}: {exc})")
            self.control.halt(f"paper position not restored: {exc}", {"error": type(exc).__name__, "stored": position})
            self._write_checkpoint()
            return False
        self._paper_saved = None
        lifecycle = self.strategy.lifecycle
        lost = sorted({*lifecycle.owner, *lifecycle.waiting})
        now_ms = time.time_ns() // 1_000_000
        working = []
        for cid in lost:  # gone with the venue that held them (the store knows those that had finished)
            row = self.store._reader.order(cid)
            if row is None or str(row["status"] or "").upper() not in TERMINAL_ORDER_STATUSES:
                working.append(cid)
                self.store.record("orders", {"client_order_id": cid, "status": "MISSING", "ts_ms_updated": now_ms})
        lifecycle.orders_lost(lost)
        t = self.strategy.trade
        placed = [] if t is None else [f"{p} {cid}" for p, cid in (("stop", t.stop_id), *t.tp_ids.items()) if cid is not None]
        self._say(f"restart: paper account resumed: balance {saved['balance']} USDT, {_pos_text(stored)}"
                  + (f" @ {position['avg_px']}" if position else "")
                  + f"; {len(working)} working order(s) of the plan lost with the old venue, placed again as {len(placed)}" + (f": {', '.join(placed)}" if placed else ""))
        return True

    def _book_fills_while_down(self) -> None:
        """Live restart: fills of the plan's own orders that the checkpoint does not hold - made at
        the venue while the node was down (a stop or a target triggered), or after its last
        checkpoint - are in Nautilus's cache once its reconciliation has adopted the venue's orders.
        They are booked on the restored trade now, in venue order, as if they had just arrived:
        TP1 resizes the stop and moves it to the entry price, the last exit closes the trade (its
        positions row, the cooldown, the siblings cancelled). Fills of orders the plan does not own
        are not the plan's: the reconciliation that follows finds the position they made."""
        from nautilus_trader.model.identifiers import ClientOrderId  # noqa: PLC0415

        lifecycle, cache = self.strategy.lifecycle, self.node.kernel.cache
        step = float(self.strategy.instrument.size_increment)
        pending = []
        for cid in list(lifecycle.owner):
            order = cache.order(ClientOrderId(cid))
            if order is None:
                continue
            fills = [e for e in order.events if type(e).__name__ == "OrderFilled"]
            missing = lifecycle.unbooked(cid, sum(round(float(f.last_qty) / step) for f in fills))
            for f in reversed(fills):  # the latest fills are the ones the plan has not seen
                if missing <= 0:
                    break
                steps = round(float(f.last_qty) / step)
                part = min(steps, missing)
                missing -= part
                pending.append((f.ts_event, cid, order, f, part / steps))
        for ts, cid, order, f, share in sorted(pending, key=lambda p: p[0]):
            qty = float(f.last_qty) * share
            self._say(f"restart: fill made while the node was down booked on the plan: {lifecycle.purpose_of(cid)} {cid} {f.order_side.name} {qty:g} @ {f.last_px}")
            lifecycle.on_fill(cid, lifecycle.purpose_of(cid), bool(order.is_reduce_only), float(f.last_px), qty, float(f.commission) * share, ts)
            self._plan_changed_ms = time.time_ns() // 1_000_000

    def _claim_plan_orders(self) -> None:
        """The restored plan claims its protection again: Nautilus's start-up reconciliation has
        already reported an order that vanished from the venue while the node was down (cancelled
        by hand, say) - dropping it from the claims would leave the position silently unprotected.
        Claimed again, the first comparison finds it missing: REPROTECT."""
        t = self.strategy.trade
        if t is None or not t.is_open:
            return
        for cid in (t.stop_id, *t.tp_ids.values()):
            if cid is None or cid in self._claimed:
                continue
            r = self.store._reader.order(cid)
            if r is not None:
                self._claimed[cid] = PlannedOrder(cid, r["purpose"] or "", r["side"], r["order_type"], float(r["qty"]), r["price"], r["trigger_price"])

    def _deliver(self, ticks: list, warmup: bool) -> None:
        if ticks and self._feed_start is None:
            self._feed_start = ticks[0].ts_init
        self.replaying = warmup
        try:
            self._deliver_ticks(ticks)
        finally:
            self.replaying = False

    def _deliver_ticks(self, ticks: list) -> None:
        if self.paper is not None:
            for row in self.paper.feed(ticks):
                self.fills += 1
                self.record("fills", row)
                self._checkpoint_due = True  # the paper account changed: checkpointed at the end of this pump
            self._record_paper_funding()
            return
        # live: the strategy's features, minutes closed at each boundary the ticks cross
        f = self.strategy.features
        for t in ticks:
            ts = t.ts_init
            self._close_live_through(ts)
            if type(t) is TradeTick:
                f.handle_trade_tick(t)
            else:
                f.handle_quote_tick(t)

    def _record_paper_funding(self) -> None:
        """Settlements the paper venue booked (its funding ledger, at the fetched rate) as
        ``funding`` rows, the backtest's columns; each also said on the progress output."""
        ctx = self.paper.ctx
        events = ctx.venue.ledger.events if ctx is not None else []
        for e in events[self._funding_recorded :]:
            row = e.as_row()
            self.store.insert_funding([row])
            self._say(f"funding: {_hm(row['ts'])} UTC {row['side']} {row['qty']:g} @ {row['mark_price']:.1f}, {row['rate_bps']:+.4f} bps: {'paid' if row['amount'] >= 0 else 'received'} {abs(row['amount']):.8f} USDT")
        self._funding_recorded = len(events)

    def _close_live_through(self, ts: int) -> None:
        if self._live_minute is None:
            self._live_minute = ts // MINUTE_NS * MINUTE_NS + MINUTE_NS
        while ts >= self._live_minute:
            self.strategy.close_minute(self._live_minute)
            self._live_minute += MINUTE_NS

    def _close_live_minutes(self) -> None:
        """Live mode: minutes the watermark has passed close now (boundary + grace), tick or not."""
        if self.paper is None and self.strategy is not None and self.strategy.features is not None:
            self._close_live_through(self.sequencer.watermark)

    # -- per minute -----------------------------------------------------------------------------

    def _on_minute_closed(self, minute: int, now_ns: int) -> None:
        self.recorder.flush(now_ns)
        self.coverage.prune(now_ns)
        self._update_warm(now_ns)
        # The paper engine decides a minute at its first tick after the boundary: the line waits
        # for that decision (or PROGRESS_WAIT_NS more of watermark, for a minute without one).
        self._progress_due.append(minute)
        self._flush_progress()
        self._write_checkpoint()
        self._write_status()

    def _flush_progress(self) -> None:
        sig = self.hooks.last_signal
        decided = sig["ts_min"] * 1_000_000 if sig else -1
        while self._progress_due:
            minute = self._progress_due[0]
            if decided < minute and self.sequencer.watermark < minute + MINUTE_NS + PROGRESS_WAIT_NS:
                return
            self._progress_due.pop(0)
            if self.mode == "shadow":
                self._shadow_compare(minute)
            self._progress(minute)

    def _progress(self, minute: int) -> None:
        sig = self.hooks.recent.get(minute // 1_000_000) or {}
        snap = json.loads(sig.get("feature_snapshot") or "{}") if sig else {}
        covered = self.coverage.covered(minute + MINUTE_NS)
        warm = "warm" if self.gate.warmed_up else f"warm-up {covered}/{self.warmup_needed}"
        pos = self._position()
        pos_txt = "flat" if pos["side"] == "FLAT" else f"{pos['side']} {pos['qty']:g}@{pos['entry']:.1f}"
        pnl = f"uPnL {pos['unrealized']:+.2f} bal {pos['balance']:.2f}" if pos["balance"] is not None else ""
        state = "active" if self.gate.active else "inactive"
        if self.gate.halted:
            state = f"HALTED ({self.gate.halt_reason})"
        decision = sig.get("chosen_action", "-")  # "-": no decision for this minute (no tick after it)
        self._say(
            f"{_hm(minute)} {self.mode} {state} {warm} | POC {_f(snap.get('poc'))} VAL {_f(snap.get('val'))} VAH {_f(snap.get('vah'))}"
            f" OF {_f(snap.get('of_1m'), '+.2f')} qimb {_f(snap.get('qimb'), '+.3f')} amb {_f(snap.get('ambiguous_frac'), '.3f')}"
            f" | {decision} {sig.get('reason_code', '')} | {pos_txt} {pnl} | ticks {self.ticks} late {self.sequencer.late} fills {self.fills}",
        )

    def _position(self) -> dict:
        """Side, qty, entry, unrealized, balance of the strategy's account (paper or live)."""
        out = {"side": "FLAT", "qty": 0.0, "entry": None, "unrealized": 0.0, "realized": 0.0, "balance": None}
        if self.paper is not None:
            cache = self.paper.engine.cache if self.paper.engine is not None else None
        else:
            cache = self.node.kernel.cache if self.node is not None else None
        if cache is None:
            return out
        account = cache.account_for_venue(self.instrument_id.venue)
        if account is not None:
            bal = account.balance_total(USDT)
            out["balance"] = float(bal.as_double()) if bal is not None else None
        positions = cache.positions_open(instrument_id=self.instrument_id)
        if positions:
            p = positions[0]
            out.update(side=p.side.name, qty=float(p.quantity), entry=float(p.avg_px_open), realized=float(p.realized_pnl.as_double()) if p.realized_pnl else 0.0)
            quote = cache.quote_tick(self.instrument_id)
            if quote is not None:
                mid = (quote.bid_price.as_double() + quote.ask_price.as_double()) / 2
                sign = 1 if p.side.name == "LONG" else -1
                out["unrealized"] = (mid - out["entry"]) * out["qty"] * sign
        return out

    def _day_pnl(self, pos: dict) -> float | None:
        """The UTC day's P&L: realised since the day began (the balance's change since the day's
        first decision: trades, fees, funding - the kill switch's measure) plus the change of the
        unrealised P&L since then, i.e. equity now less the day's starting equity. None before the
        strategy has decided a minute of the current UTC day (just after midnight, or no account)."""
        guard = getattr(self.strategy, "guard", None)
        if guard is None or guard.day is None or pos["balance"] is None:
            return None
        if guard.day != self.sequencer.watermark // 1_000_000 // DAY_MS:  # the node's clock: exchange time fed
            return None
        return pos["balance"] + pos["unrealized"] - guard.day_start_equity

    def _write_status(self) -> None:
        pos = self._position()
        self.store.record(
            "node_status",
            {
                "ts_ms": time.time_ns() // 1_000_000,
                "mode": self.mode,
                "active": int(self.gate.active),
                "halted": int(self.gate.halted),
                "halt_reason": self.gate.halt_reason,
                "warmup_minutes": self.coverage.covered(time.time_ns()),
                "warmup_needed": self.warmup_needed,
                "position": pos,
                "balance": pos["balance"],
                "day_pnl": self._day_pnl(pos),
                "kill_switch_limit": self.config.risk.max_daily_loss,
                "pid": os.getpid(),
            },
        )

    # -- feed health ----------------------------------------------------------------------------

    def _watch(self, now_ns: int) -> None:
        if self.stale:
            return
        since = self._last_tick_wall if self._last_tick_wall is not None else self._started_wall
        if now_ns - since > self.stale_ns:
            self.stale = True
            self.stale_alerts += 1
            self._stale_since_ts = self._last_tick_ts if self._last_tick_ts is not None else since
            seconds = (now_ns - since) / 1e9
            self.alerts.emit("data_feed_stale", f"no trade or quote for {seconds:.1f} s", {"last_tick_ts_ns": self._last_tick_ts, "stale_seconds": self.config.monitoring.data_stale_seconds}, now_ns // 1_000_000)
            self._say(f"DATA FEED STALE: no tick for {seconds:.1f} s")

    def _end_stale(self, ts: int) -> None:
        self.stale = False
        start = self._stale_since_ts or ts
        self.recorder.mark_gap(start, ts, "data_feed_stale")
        self._say(f"data feed back after a gap of {(ts - start) / 1e9:.1f} s (marked in the recording)")

    @property
    def _started_wall(self) -> int:
        if not hasattr(self, "_t0"):
            self._t0 = time.time_ns()
        return self._t0

    # -- funding (paper venues) ------------------------------------------------------------------

    def _fetch_funding_now(self) -> None:
        if self.mode == "live":
            return
        try:
            ts_ms, rate = self.rest.last_funding()
            self._funding_rate_bps = rate
            self._say(f"funding: latest settled rate {rate:+.4f} bps ({_hm(ts_ms * 1_000_000)} UTC)")
        except Exception as exc:
            self._say(f"funding: rate not fetched ({type(exc).__name__}); using funding_rate_8h_bps {self.config.backtest.funding_rate_8h_bps}")

    def _funding_limit(self, now_ns: int) -> int | None:
        """Paper venues settle funding at the rate Bybit publishes for the settlement: ticks past a
        settlement instant wait (up to FUNDING_WAIT_NS) until that rate is fetched, off the loop."""
        if self.paper is None or self.mode == "dry-run":
            return None
        if self._funding_next is None:
            self._funding_next = next_funding_after(max(self.sequencer.watermark, now_ns - self.sequencer.grace_ns))
        instant = self._funding_next
        if now_ns - self.sequencer.grace_ns < instant:
            return None
        fut = self._funding_future
        if fut is None:
            self._funding_future = self._pool.submit(self.rest.last_funding)
            return instant - 1
        if fut.done():
            self._funding_future = None
            try:
                ts_ms, rate = fut.result()
                if ts_ms * 1_000_000 >= instant:
                    self._apply_funding(rate, instant)
                    return None
            except Exception as exc:
                log.warning("funding fetch failed: %s", type(exc).__name__)
        if now_ns - instant > FUNDING_WAIT_NS:
            self._say(f"funding: no rate published for {_hm(instant)} after {FUNDING_WAIT_NS // 1_000_000_000} s; settling at {self._funding_rate_bps} bps")
            self._funding_next = next_funding_after(instant)
            return None
        return instant - 1

    def _apply_funding(self, rate: float, instant: int) -> None:
        self._funding_rate_bps = rate
        self.paper.set_funding_rate(rate)
        self._funding_next = next_funding_after(instant)
        self._say(f"funding: settlement {_hm(instant)} UTC at {rate:+.4f} bps")

    # -- shadow ---------------------------------------------------------------------------------

    def _shadow_compare(self, minute: int) -> None:
        """The minute's paper decision and position against the real account, as last read by REST
        (read off the loop: at start and after every minute close)."""
        from auction_trader.live.shadow import compare  # noqa: PLC0415

        fut = self._shadow_future
        if fut is not None and fut.done():
            self._shadow_future = None
            try:
                self._shadow_real = fut.result()
            except Exception as exc:
                self._say(f"shadow: real account not read ({type(exc).__name__}: {exc})")
        real = self._shadow_real
        if real is not None:
            step = float(self.paper.ctx.instrument.size_increment) if self.paper.ctx is not None else 10.0**-SPEC.size_precision
            sig = self.hooks.recent.get(minute // 1_000_000)
            diff = compare(sig, self._position(), real, self.config, step)
            key = json.dumps(diff, sort_keys=True) if diff else None
            if diff and key != self._shadow_last:
                self.divergences += 1
                self.alerts.emit("shadow_divergence", "paper and the real account differ", diff)
                self._say(f"SHADOW DIVERGENCE: {key}")
            self._shadow_last = key
        if self._shadow_future is None:
            self._shadow_future = self._pool.submit(self.rest.account)

    # -- orders (live) ----------------------------------------------------------------------------

    def _watch_orders(self, msgbus) -> None:
        msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)

    def _on_order_event(self, event) -> None:
        order = self.node.kernel.cache.order(event.client_order_id) if self.node is not None else None
        if order is None:
            return
        cid = order.client_order_id.value
        self._plan_changed_ms = time.time_ns() // 1_000_000
        # Ours: placed by our strategy in this run (they carry its tags - the strategy also claims
        # the venue's other orders for the instrument, so its id alone proves nothing), or in the
        # store from any run (Bybit drops tags: orders adopted after a restart have none).
        ours = (self.strategy is not None and order.strategy_id == self.strategy.id and bool(order.tags)) or cid in self._our_orders
        if not ours:
            # Neither placed by our strategy nor in our store: an order Nautilus adopted from the
            # venue (placed by hand, or by another program). Not ours to store; a fill of one after
            # the start (Nautilus's own start-up reconciliation replays the past) is a manual trade.
            if type(event).__name__ == "OrderFilled" and self._recon_started and not self.gate.halted:
                from auction_trader.live.reconcile import act  # noqa: PLC0415

                act(self.reconciler.on_fill(cid, self._our_orders), self.control, self.alerts, self._plan_changed_ms)
            return
        self._our_orders.add(cid)
        self._checkpoint_due = True  # the plan changed: checkpointed at the end of this pump, between events
        tags = _tags(order)
        price = float(order.price) if order.has_price else None
        trigger = float(order.trigger_price) if order.has_trigger_price else None
        claimed = self._claimed.get(cid)
        if order.status.name.upper() in TERMINAL_ORDER_STATUSES:
            self._claimed.pop(cid, None)
        else:
            known = claimed
            purpose = tags.get("purpose") or (known.purpose if known else "")
            self._claimed[cid] = PlannedOrder(cid, purpose, order.side.name, order.order_type.name, float(order.leaves_qty), price, trigger)
        self.store.record("orders", _order_row(order, event, tags))
        if type(event).__name__ == "OrderFilled" and event.trade_id.value not in self._fill_ids:
            # Nautilus's reconciliation at start replays the venue's fills of orders we placed in an
            # earlier run: stored once, by trade id. A tagless order (adopted after a restart) takes
            # its purpose from the plan's claim, else from the store.
            self._fill_ids.add(event.trade_id.value)
            if not tags:
                known = claimed.purpose if claimed is not None else (self.store._reader.order(cid) or {}).get("purpose")
                tags = {"purpose": known} if known else {}
            self._record_live_fill(event, order, tags)

    def _on_paper_order_event(self, event) -> None:
        """Paper: every order event of the paper venue updates the store's ``orders`` row, as live
        does (tags survive in paper: trade and purpose come with the order). The fill that opens a
        stored position again after a restart is no order of the plan: not stored."""
        order = self.paper.engine.cache.order(event.client_order_id) if self.paper is not None and self.paper.engine is not None else None
        if order is None or self.store is None:
            return
        tags = _tags(order)
        if tags.get("purpose") == "restored_position":
            return
        self.store.record("orders", _order_row(order, event, tags))

    def _record_live_fill(self, event, order, tags: dict) -> None:
        """A venue fill of ours as a ``fills`` row (the backtest's columns), as paper mode stores
        them: the quote beside it is the latest the node had; a tagless order (adopted after a
        restart) takes its purpose from the plan's claim."""
        from auction_trader.backtest.metrics import Fill  # noqa: PLC0415
        from auction_trader.backtest.outputs import fills_table  # noqa: PLC0415

        quote = self.node.kernel.cache.quote_tick(self.instrument_id)
        fill = Fill(
            ts=int(event.ts_event),
            side=1 if event.order_side.name == "BUY" else -1,
            qty=event.last_qty.as_decimal(),
            price=event.last_px.as_decimal(),
            commission=event.commission.as_decimal(),
            liquidity="MAKER" if event.liquidity_side.name == "MAKER" else "TAKER",
            order_type=order.order_type.name,
            reduce_only=bool(order.is_reduce_only),
            client_order_id=event.client_order_id.value,
            trade_id=event.trade_id.value,
            bid=float(quote.bid_price) if quote is not None else math.nan,
            ask=float(quote.ask_price) if quote is not None else math.nan,
            tags=tags,
        )
        self.fills += 1
        self.record("fills", fills_table([fill]).to_pylist()[0])

    # -- reconciliation (live) -----------------------------------------------------------------------

    def _reconcile(self, now_ns: int) -> None:
        """Live: every RECONCILE_S, the venue's position and open orders (REST, off the loop) against
        the plan (:mod:`auction_trader.live.reconcile`); a confirmed mismatch alerts and halts. Not
        while halted: one alert per mismatch, and nothing to protect (no entries)."""
        if self.mode != "live" or self.strategy is None or self.control is None or self.node is None:
            return
        if self.node.kernel.cache.account_for_venue(self.instrument_id.venue) is None:
            return  # the execution client has not reported the account yet
        now_ms = now_ns // 1_000_000
        fut = self._recon_future
        in_flight = bool(self.node.kernel.cache.orders_inflight(instrument_id=self.instrument_id))
        if not self._recon_started and self._recon_first_ms is None:
            self._recon_first_ms = now_ms
        # The first comparison, too, waits for nothing in flight (a restart that has just booked fills
        # made while it was down may be amending its stop) - for RECONCILE_S at most.
        wait_first = not self._recon_started and in_flight and now_ms - self._recon_first_ms < RECONCILE_S * 1000
        if fut is None:
            if not self.gate.halted and self.reconciler.due(now_ms) and not wait_first:
                self._recon_asked_ms = now_ms
                self._recon_future = self._pool.submit(self.rest.venue_state)
            return
        if not fut.done():
            return
        self._recon_future = None
        try:
            positions, orders, ts_ms = fut.result()
        except Exception as exc:
            self.reconciler.last_check_ms = now_ms  # try again in RECONCILE_S
            log.warning("reconciliation: venue not read (%s)", type(exc).__name__)
            return
        if self.gate.halted:
            return
        from auction_trader.live.reconcile import act, reconcile, snapshot_from_bybit  # noqa: PLC0415

        snapshot = snapshot_from_bybit(positions, orders, self.config.market.instrument, ts_ms)
        plan = self._plan()
        if not self._recon_started:
            if wait_first or (self._plan_changed_ms >= self._recon_asked_ms and now_ms - self._recon_first_ms < RECONCILE_S * 1000):
                return  # the plan changed while the venue was read: read it again
            self._recon_started = True
            self.reconciler.last_check_ms = now_ms
            verdict = reconcile(plan, snapshot, step=self.reconciler.step, tick=self.reconciler.tick)
            self._say(f"reconciliation at start: {verdict.action}: {verdict.reason}")
        else:
            verdict = self.reconciler.check(plan, snapshot, now_ms, in_flight=bool(self.node.kernel.cache.orders_inflight(instrument_id=self.instrument_id)))
        place = act(verdict, self.control, self.alerts, now_ms)
        if place:
            self._reprotect(place)

    def _reprotect(self, missing) -> None:
        """The position matches but protection the plan claims is not on the venue: the claims are
        dropped (stored as MISSING) and the lifecycle places what its plan wants again - the same
        stop and target levels, sized on the open quantity (the alert went out in ``act``)."""
        ids = [o.client_order_id for o in missing]
        self._say(f"RECONCILIATION: protection missing on the venue: {', '.join(f'{o.purpose} {o.client_order_id}' for o in missing)}; placing it again")
        now_ms = time.time_ns() // 1_000_000
        for cid in ids:
            self._claimed.pop(cid, None)
            self.store.record("orders", {"client_order_id": cid, "status": "MISSING", "ts_ms_updated": now_ms})
        lifecycle = getattr(self.strategy, "lifecycle", None)
        t = getattr(self.strategy, "trade", None)
        if lifecycle is None or t is None or not t.is_open:
            self._say("RECONCILIATION: no open trade in the plan to protect")
            return
        for cid in ids:  # the venue does not hold them: the plan must not wait for them
            t.forget_order(cid)
            lifecycle.owner.pop(cid, None)
            lifecycle.waiting.pop(cid, None)
        lifecycle.sync_protection(t)
        self._plan_changed_ms = now_ms
        self._write_checkpoint()

    def _plan(self):
        """What we hold: the strategy's open trade, and the orders we placed and last knew open (our
        store's record, kept current by the order events; Nautilus's cache is not the plan - after a
        restart it has adopted the venue's orders as external ones)."""
        from auction_trader.live.reconcile import Plan  # noqa: PLC0415

        orders = tuple(self._claimed.values())
        t = getattr(self.strategy, "trade", None)
        if t is None or getattr(t, "opened_ns", None) is None or getattr(t, "closed_ns", None) is not None or not t.open_steps:
            return Plan(None, 0.0, orders=orders, updated_ms=self._plan_changed_ms)
        step = float(self.strategy.instrument.size_increment)
        return Plan("LONG" if t.candidate.direction > 0 else "SHORT", t.open_steps * step, orders=orders, updated_ms=self._plan_changed_ms)

    # -- control ----------------------------------------------------------------------------------

    def _poll_control(self) -> None:
        """Answer the control rows written by ``run_live.py activate|deactivate|resolve|status``
        (or the dashboard), on this loop, by :class:`auction_trader.live.control.Controller`'s rules."""
        now = time.time_ns()
        if now - getattr(self, "_control_polled", 0) < 500_000_000:
            return
        self._control_polled = now
        if self.poller.poll_once():
            self._write_status()

    def _handle_control(self, command: str, args: dict):
        """One command, with the facts the rules need brought up to date first."""
        self.gate.warmup_minutes = self.coverage.covered(time.time_ns())
        try:
            flat = self._position()["side"] == "FLAT"
        except Exception:  # no account yet: not known to be flat
            flat = False
        self.control.set_flat(flat)
        return self.control.handle(command, args)

    def _control_changed(self, state) -> None:
        """Activation, deactivation, halt or resolve: checkpoint and status at once."""
        self._say(f"control: mode {state.mode}, {'active' if state.active else 'observation'}" + (f", HALTED ({state.halt_reason})" if state.halted else ""))
        self._write_checkpoint()
        self._write_status()

    def _write_checkpoint(self) -> None:
        """The node's decision state (and the strategy's, when it can give one): every minute and
        on every change."""
        self._checkpoint_due = False
        state: dict = {"node": self.gate.state(), "feed": {"start_ns": self._feed_start}}
        if self.paper is not None:
            # Until a restart has resumed the stored paper account, that account stays the stored one.
            paper = self._paper_saved if self._paper_saved is not None else self.paper.state()
            if paper is not None:
                state["paper"] = paper
        checkpoint = getattr(self.strategy, "checkpoint", None)
        if callable(checkpoint):
            try:
                state["strategy"] = checkpoint()
            except Exception:
                log.exception("strategy checkpoint failed; the node state is stored alone")
        self.store.write_checkpoint(state)

    def _describe(self) -> dict:
        pos = self._position()
        day = self._day_pnl(pos)
        return {"position": "flat" if pos["side"] == "FLAT" else f"{pos['side']} {pos['qty']:g} @ {pos['entry']:.1f}, uPnL {pos['unrealized']:+.2f}",
                "balance": pos["balance"], "day P&L": "-" if day is None else f"{day:+.2f}", "ticks": self.ticks, "late ticks": self.sequencer.late, "fills": self.fills, "pid": os.getpid()}

    # -- dashboard (run_live.py --dashboard) -------------------------------------------------------

    def _start_dashboard(self) -> None:
        opts = self.options.dashboard
        if opts is None:
            return
        from auction_trader.dashboard.app import serve_in_thread  # noqa: PLC0415

        try:
            self.dashboard = serve_in_thread(self.data_dir, opts.host, opts.port, config=self.config, token=opts.token)
        except (RuntimeError, ValueError, OSError) as exc:
            raise StartError(f"dashboard: {exc}") from None
        self._say(f"dashboard: {self.dashboard.url}" + ("  (token required: AUCTION_TRADER_DASHBOARD_TOKEN)" if opts.token else ""))

    def _stop_dashboard(self) -> None:
        if self.dashboard is not None:
            try:
                self.dashboard.stop()
            except Exception:
                log.exception("dashboard stop")
            self.dashboard = None

    # -- stop ---------------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        try:
            self._stop_dashboard()
            if self.store is not None:
                self._write_checkpoint()  # before dispose: the strategy's view of its orders is the cache's
            if self.node is not None:
                try:
                    self.node.dispose()
                except Exception:
                    log.exception("dispose")
            if self.poller is not None:
                self.poller.stop()
            if self.store is not None:
                self._write_status()
            if self.paper is not None:
                self._say(f"paper: {self.paper.ticks_fed} ticks fed, last at {self.paper.last_ts}")
                self.paper.finish()
            if self.recorder is not None:
                self.recorder.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
        finally:
            if self.alerts is not None:
                self.alerts.close()
            if self.store is not None:
                self.store.close()
        self._say(
            f"stopped: {self.ticks} ticks recorded, {self.sequencer.late} late (at most {self.sequencer.late_max_ms:.0f} ms behind), "
            f"{self.fills} fills, {self.hooks.signals} minutes decided, {self.stale_alerts} stale alerts, {self.divergences} divergences",
        )

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _order_row(order, event, tags: dict) -> dict:
    """An ``orders`` row for the order as ``event`` left it."""
    row = {
        "client_order_id": order.client_order_id.value,
        "side": order.side.name,
        "order_type": order.order_type.name,
        "qty": float(order.quantity),
        "price": float(order.price) if order.has_price else None,
        "trigger_price": float(order.trigger_price) if order.has_trigger_price else None,
        "status": order.status.name,
        "venue_order_id": order.venue_order_id.value if order.venue_order_id is not None else None,
        "ts_ms_updated": event.ts_event // 1_000_000,
    }
    if tags:  # Bybit drops tags: an order of ours adopted after a restart keeps its stored trade and purpose
        row.update(trade_id=tags.get("signal_ts_min"), purpose=tags.get("purpose"))
    return row


def _auction_strategy(config: AuctionConfig, hooks: NodeHooks):
    from auction_trader.strategies.auction_strategy import AuctionStrategy, AuctionStrategyConfig  # noqa: PLC0415

    return AuctionStrategy(AuctionStrategyConfig(instrument_id=config.instrument_id, auction=config.model_dump()), hooks=hooks)


def _tags(order) -> dict:
    return dict(t.split("=", 1) for t in (order.tags or []) if "=" in t)


def _pos_text(pos: tuple[str, float] | None) -> str:
    return "flat" if pos is None else f"{pos[0]} {pos[1]:g}"


def _hm(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts_ns / 1e9))


def _f(v, fmt: str = ".1f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, fmt)


__all__ = ["LiveNode", "NodeOptions", "DashboardOptions", "Endpoints", "Gate", "NodeHooks", "StartError", "api_keys", "MODES"]
