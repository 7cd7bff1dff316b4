"""A Nautilus ``BacktestEngine`` for BTCUSDT on Bybit, set up the way this project backtests: the
builder (:func:`build_engine`, :func:`rearm_engine`, :func:`run_engine`). The order gate lives in
:mod:`.gate`, the end-of-run actor in :mod:`.end_of_run`, the streamed ticks in :mod:`.stream`.

:func:`build_engine` wires, around one strategy:

* venue ``BYBIT``: NETTING, MARGIN account in USDT with ``starting_balance``, default leverage
  ``max_leverage``; L1 book from quotes; ``trade_execution=True`` (a trade at a resting limit's
  price fills it, at the limit price, as maker); the instrument from
  :func:`auction_trader.instrument.btcusdt_perpetual` (taker/maker fees from the config);
* :class:`~auction_trader.backtest.fills.SlippageFillModel` (deterministic N-tick slippage on
  market-type fills) and :class:`~auction_trader.backtest.fills.BybitMarginModel` (margin =
  notional / leverage);
* :class:`~auction_trader.backtest.venue.VenueModule` (touch, funding, fill log, progress);
* :class:`OrderGate`, in front of Nautilus's ``RiskEngine`` (every trading command passes it):

  - it restores the quoted L1 book before the command reaches the venue (Nautilus's L1 book holds
    the last *trade* as bid and ask until the next quote; see :mod:`.venue`), so orders cannot be
    filled by trades that printed before they were placed;
  - it denies orders beyond the leverage limit: Nautilus 1.231 runs no risk check at all for
    margin accounts (its ``RiskEngine`` returns before any check when the account is a margin
    account) and its simulated venue checks no margin either, so an order of any size would fill.
    Bybit rejects an order whose initial margin exceeds the available balance; the gate denies such
    orders the same way (``OrderDenied``, reason ``INSUFFICIENT_MARGIN``);
* :class:`EndOfRun`: at the last tick, cancels the strategy's open orders and closes its position at
  market (exit slippage, taker fee, tag ``purpose=end_of_run``), so every P&L of the run is realized.

Data: the catalog's trades and quotes between ``start_ns`` and ``end_ns`` (both inclusive), merged
in time order with trades before quotes at equal timestamps (DESIGN.md: "at equal timestamps
trades apply before quotes"), deterministic whatever the read order.

Determinism: no component draws random numbers (the fill model's probabilities are 0 and 1); the
global ``random`` is reseeded before every run anyway, since Nautilus's ``FillModel`` uses it.

Reuse (grids): :func:`rearm_engine` makes a finished engine ready for the next run with a new
strategy and configuration, without reloading or re-sorting the ticks. ``BacktestEngine.reset()``
resets the exchange (our :class:`~auction_trader.backtest.venue.VenueModule` starts a new run), the
matching engine, the cache (instruments kept) and the trader; what it leaves behind is handled
here: the old strategy's message-bus subscriptions (``clear_strategies`` disposes it but leaves
them), the order gate's denials and the fill model's slippage. Parameters baked into the venue when
it is built (:data:`VENUE_SHAPE`: the instrument's fees, the account's balance and leverage, the
latency model) cannot change on a built engine; a run that needs others needs a new engine.
tests/test_grid.py proves a reused engine gives byte-identical metrics to a fresh one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, RiskEngineConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AccountType, BookType, OmsType
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.trading.strategy import Strategy

from auction_trader.backtest.end_of_run import EndOfRun
from auction_trader.backtest.fills import BybitMarginModel, SlippageFillModel
from auction_trader.backtest.gate import VENUE, OrderGate
from auction_trader.backtest.progress import Progress
from auction_trader.backtest.stream import scan_range, stream_ticks
from auction_trader.backtest.venue import MinuteMarks, VenueModule
from auction_trader.config import AuctionConfig
from auction_trader.data.errors import DataError
from auction_trader.instrument import btcusdt_perpetual

__all__ = [
    "VENUE", "VENUE_SHAPE", "BacktestContext", "EndOfRun", "OrderGate", "auto_progress_minutes", "build_engine",
    "load_data", "rearm_engine", "reseed", "run_engine", "venue_shape",
]

RANDOM_SEED = 0

#: Leaf parameters that :func:`build_engine` bakes into the venue (instrument fees, account balance
#: and leverage, latency model, end-of-run instant): runs share an engine only when they agree.
VENUE_SHAPE = ("taker_fee_bps", "maker_fee_bps", "starting_balance", "max_leverage", "fill_on_next_quote")


def venue_shape(config: AuctionConfig) -> tuple:
    """The values of :data:`VENUE_SHAPE` in ``config``."""
    flat = config.flat()
    return tuple(flat[name] for name in VENUE_SHAPE)


@dataclass
class BacktestContext:
    """Everything :func:`build_engine` set up that outputs and tests need after the run."""

    config: AuctionConfig
    catalog: Path
    instrument: object  # CryptoPerpetual
    strategy: Strategy
    venue: VenueModule
    fill_model: SlippageFillModel
    guard: OrderGate
    start_ns: int | None  # as requested (None: from the first tick)
    end_ns: int | None
    first_ts: int  # first and last tick actually replayed
    last_ts: int
    trades: int
    quotes: int
    end_of_run: EndOfRun | None = None
    marks: MinuteMarks | None = None
    streamed: bool = False  # ticks pulled from the catalog as the run goes (cannot be replayed again)
    extra: dict = field(default_factory=dict)

    @property
    def ticks(self) -> int:
        return self.trades + self.quotes

    @property
    def ledger(self):
        """The funding ledger (events with ts, side, qty, mark price, rate, amount)."""
        return self.venue.ledger


def reseed() -> None:
    """Nautilus's FillModel draws from the global ``random``; ours never does, but reseed anyway."""
    random.seed(RANDOM_SEED)


def load_data(catalog: str | Path, instrument_id: str, start_ns: int | None = None, end_ns: int | None = None) -> tuple[list, int, int]:
    """The catalog's trades and quotes in ``[start_ns, end_ns]`` as Nautilus objects, replay order.

    Returns ``(data, n_trades, n_quotes)``. Equal timestamps: trades first, each type in catalog
    order (a stable sort of trades followed by quotes).
    """
    root = Path(catalog)
    if not (root / "data").is_dir():
        raise DataError(f"{catalog}: not a catalog (no data/ directory)")
    cat = ParquetDataCatalog(str(root))
    kwargs = {"identifiers": [instrument_id]}
    if start_ns is not None:
        kwargs["start"] = int(start_ns)
    if end_ns is not None:
        kwargs["end"] = int(end_ns)
    trades = cat.query(TradeTick, **kwargs)
    quotes = cat.query(QuoteTick, **kwargs)
    # The catalog's bounds are inclusive; enforce them exactly whatever the reader does.
    if start_ns is not None or end_ns is not None:
        lo = -1 if start_ns is None else int(start_ns)
        hi = 2**63 if end_ns is None else int(end_ns)
        trades = [t for t in trades if lo <= t.ts_init <= hi]
        quotes = [q for q in quotes if lo <= q.ts_init <= hi]
    data = trades + quotes
    data.sort(key=_ts_init)  # stable: trades before quotes at equal ts
    return data, len(trades), len(quotes)


def _ts_init(d) -> int:
    return d.ts_init


def build_engine(
    config: AuctionConfig,
    catalog: str | Path,
    start_ns: int | None,
    end_ns: int | None,
    strategy: Strategy,
    log_level: str = "ERROR",
    *,
    progress: bool = False,
    progress_minutes: int | None = None,
    flatten_at_end: bool = True,
    margin_check: bool = True,
    data: tuple[list, int, int] | None = None,
    add_ticks: bool = True,
    starting_balance: Decimal | None = None,
) -> tuple[BacktestEngine, BacktestContext]:
    """A ready-to-run engine with ``strategy`` on the catalog's BTCUSDT ticks in the range.

    ``progress``: print a line to stderr every ``progress_minutes`` of simulated time (default:
    about twenty lines per run, on a round number of minutes).
    ``data``: ticks already loaded by :func:`load_data` - an engine that can be reset and run
    again (grids reuse them); None (default): the range is streamed from the catalog in blocks
    (:mod:`.stream`), in bounded memory, for one run.
    ``margin_check=False`` lets orders beyond the leverage limit through (Nautilus's own behaviour).
    ``add_ticks=False``: the ticks are not handed to the engine (the grid's fast path feeds each run
    through ``engine.add_data_iterator``; ``ctx`` still describes them).
    ``starting_balance``: the account's balance (USDT, exact) instead of the config's
    ``starting_balance`` (a restarted paper venue resumes from its stored balance).
    Raises :class:`~auction_trader.data.errors.DataError` when the range holds no ticks.
    """
    instrument = btcusdt_perpetual(config)
    iid = instrument.id
    next_tick = config.execution.fill_on_next_quote
    if data is None:
        span = scan_range(catalog, str(iid), start_ns, end_ns)
        n_trades, n_quotes, first_ts, last_ts = span.trades, span.quotes, span.first_ts, span.last_ts
        end_ts = span.before_last_ts if next_tick and span.before_last_ts is not None else last_ts
    else:
        ticks, n_trades, n_quotes = data
        first_ts, last_ts = (ticks[0].ts_init, ticks[-1].ts_init) if ticks else (-1, -1)
        end_ts = _end_of_run_ts(ticks, next_tick) if ticks else -1
    if n_trades + n_quotes == 0:
        where = "" if start_ns is None and end_ns is None else " in the requested range"
        raise DataError(f"{catalog}: no trades or quotes for {iid}{where}")
    if n_quotes == 0:
        raise DataError(f"{catalog}: no quotes for {iid}{' in the requested range' if start_ns or end_ns else ''}; the L1 book is built from quotes")

    reseed()
    engine = BacktestEngine(
        BacktestEngineConfig(
            logging=LoggingConfig(log_level=log_level),
            risk_engine=RiskEngineConfig(bypass=False),
        ),
    )
    execution = config.execution
    venue = VenueModule(
        iid,
        USDT,
        config.backtest.funding_rate_8h_bps,
        _progress(n_trades + n_quotes, first_ts, last_ts, progress, progress_minutes),
    )
    venue.engine = engine
    fill_model = SlippageFillModel(execution.slippage_ticks_entry, execution.slippage_ticks_exit, touch=venue.touch)
    engine.add_venue(
        venue=VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        starting_balances=[Money(Decimal(repr(config.backtest.starting_balance)) if starting_balance is None else Decimal(starting_balance), USDT)],
        base_currency=USDT,
        default_leverage=Decimal(repr(config.sizing.max_leverage)),
        margin_model=BybitMarginModel(),
        modules=[venue],
        fill_model=fill_model,
        # fill_on_next_quote (specv2 §2.4, §12.2): an order decided at a minute close reaches the
        # matching engine with the first tick after the decision, never at the decision instant.
        latency_model=LatencyModel(base_latency_nanos=1) if config.execution.fill_on_next_quote else None,
        book_type=BookType.L1_MBP,
        trade_execution=True,
        # Displayed size can be taken once: without this every event re-offers the same quote's
        # size, so a marketable limit refills itself as "maker" from liquidity it already took.
        liquidity_consumption=True,
        # A resting limit fills only after the size displayed ahead of it when it arrived traded.
        queue_position=True,
        # Market orders are acknowledged before they fill, as Bybit does. Without the ack a market
        # order that meets a price level the liquidity ledger above counts as used up - our
        # slippage level touch +/- n ticks is no level of the real L1 book, so a first order
        # "consumes" it - is neither filled nor rejected: Nautilus 1.231 slips only *open* orders
        # to the next tick on an exhausted L1 book, and an unacknowledged market order is not open.
        use_market_order_acks=True,
        bar_execution=False,
    )
    engine.add_instrument(instrument)
    if data is None:
        engine.add_data_iterator("ticks", stream_ticks(catalog, str(iid), start_ns, end_ns))
    elif add_ticks:
        engine.add_data(ticks, sort=False)
        engine.sort_data()  # stable: keeps the merged order
    engine.add_strategy(strategy)
    marks = MinuteMarks(venue, first_ts)
    engine.add_actor(marks)
    guard = OrderGate(engine, iid, Decimal(repr(config.sizing.max_leverage)), venue, check_margin=margin_check)
    end_of_run = None
    if flatten_at_end:
        end_of_run = EndOfRun(strategy, iid, end_ts)
        engine.add_actor(end_of_run)
    ctx = BacktestContext(
        config=config,
        catalog=Path(catalog),
        instrument=instrument,
        strategy=strategy,
        venue=venue,
        fill_model=fill_model,
        guard=guard,
        start_ns=start_ns,
        end_ns=end_ns,
        first_ts=first_ts,
        last_ts=last_ts,
        trades=n_trades,
        quotes=n_quotes,
        end_of_run=end_of_run,
        streamed=data is None,
        marks=marks,
    )
    return engine, ctx


def rearm_engine(
    engine: BacktestEngine,
    ctx: BacktestContext,
    config: AuctionConfig,
    strategy: Strategy,
    *,
    progress: bool = False,
    progress_minutes: int | None = None,
    margin_check: bool = True,
) -> BacktestContext:
    """Reset an engine built by :func:`build_engine` (and run since) for another run on the same
    ticks: ``strategy`` replaces the previous one and ``config``'s per-run parameters (slippage,
    funding rate, everything the strategy reads) apply. ``config`` must have the engine's
    :func:`venue_shape` (ValueError otherwise). Returns the new run's context.
    """
    if ctx.streamed:
        raise ValueError("a streamed engine has no ticks to replay again; build it with data=load_data(...) to reuse it")
    if venue_shape(config) != venue_shape(ctx.config):
        built = dict(zip(VENUE_SHAPE, venue_shape(ctx.config), strict=True))
        wanted = dict(zip(VENUE_SHAPE, venue_shape(config), strict=True))
        diff = ", ".join(f"{k} {built[k]!r} -> {wanted[k]!r}" for k in VENUE_SHAPE if built[k] != wanted[k])
        raise ValueError(f"this engine's venue was built for other parameters ({diff}); build a new engine")
    venue = ctx.venue
    venue.funding_rate_bps = config.backtest.funding_rate_8h_bps
    venue.progress = _progress(ctx.ticks, ctx.first_ts, ctx.last_ts, progress, progress_minutes)
    venue.rejoin()  # the exchange resets only the modules it holds
    engine.reset()  # the exchange resets the VenueModule, the trader its actors and strategies
    _remove_strategy(engine, ctx.strategy)
    ctx.fill_model.entry_ticks = config.execution.slippage_ticks_entry
    ctx.fill_model.exit_ticks = config.execution.slippage_ticks_exit
    ctx.guard.new_run(check_margin=margin_check)
    engine.add_strategy(strategy)
    if ctx.end_of_run is not None:
        ctx.end_of_run.strategy = strategy
    return replace(ctx, config=config, strategy=strategy, extra={})


def _remove_strategy(engine: BacktestEngine, strategy: Strategy) -> None:
    """``clear_strategies`` disposes the strategy but, in 1.231, leaves its message-bus
    subscriptions (ticks, order and position events): every later run would still call the
    disposed strategy on every tick and keep it, with all it recorded, alive."""
    engine.clear_strategies()
    msgbus = engine.kernel.msgbus
    for sub in msgbus.subscriptions():
        if getattr(sub.handler, "__self__", None) is strategy:
            msgbus.unsubscribe(topic=sub.topic, handler=sub.handler)


def _progress(ticks: int, first_ns: int, last_ns: int, enabled: bool, minutes: int | None) -> Progress:
    return Progress(ticks, minutes or auto_progress_minutes(first_ns, last_ns), enabled=enabled)


def auto_progress_minutes(first_ns: int, last_ns: int, lines: int = 20) -> int:
    """A round interval giving about ``lines`` progress lines over the span."""
    span = max(1, (last_ns - first_ns) // 60_000_000_000)
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 10080):
        if span / step <= lines:
            return step
    return 10080


def run_engine(engine: BacktestEngine, ctx: BacktestContext) -> None:
    """Run to the end of the data, reseeding first; settles the last funding instants and progress."""
    reseed()
    # Explicit bounds: a streamed engine holds no data list from which Nautilus could take them.
    engine.run(start=ctx.first_ts, end=ctx.last_ts)
    ctx.venue.finish(ctx.last_ts, ctx.marks)


def _end_of_run_ts(ticks: list, next_tick: bool) -> int:
    """When to flatten: the last tick's time, or - when orders reach the venue with the next tick
    (fill_on_next_quote) - the latest earlier time, so that a tick is left to fill on."""
    last = ticks[-1].ts_init
    if next_tick:
        for tick in reversed(ticks):
            if tick.ts_init < last:
                return tick.ts_init
    return last
