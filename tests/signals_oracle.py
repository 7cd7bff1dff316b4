"""An independent, deliberately plain reading of the signal rules (``docs/signals.md``), every path.

Written from ``docs/signals.md`` (the contract), DESIGN.md ("Signals", "Sizing and exits") and
specv2 §6-9 alone, without looking at ``auction_trader/core``.

Two uses:

* **flat path** (``execution=None``): what ``auction_trader.replay.replay_signals`` does when no
  position is ever open - no exits, cooldowns, flips or kill switch;
* **every path** (``execution=Execution(...)``): what AuctionStrategy's ``signals_1m`` must say in a
  backtest, positions included. The venue's answers are inputs, as they are to the strategy: the
  fills (``fills.parquet``: time, side, price, quantity, commission, the quote met, the order's
  tags), the funding charges and the entry orders the venue turned down (``alerts.json``). From them
  and the minute features this oracle rebuilds the position, the account balance, the kill switch,
  the cooldown and the time stop, and decides every minute per the docs - flips, exits, holds. It
  also sizes each entry (``qty``, ``margin`` in the record) and checks each protective fill against
  the level the docs put it at (:func:`check_exits`): the stop at the plan's level and at the entry
  price after TP1, the targets, their quantities.

Inputs: the minute rows of ``auction_trader.features.compute`` (dicts), every minute's trade prices
(``{minute index: [price, ...]}``, minute index = ``ts_ns // 60 s``, see :func:`trades_by_minute`)
and the config. Output: one record per row with the keys of ``signals_1m``; ``acceptance_state``
and ``feature_snapshot`` are dicts (the engine logs them as JSON), and keys starting with ``_`` are
the oracle's own notes (which path a minute took) for the tests.

Arithmetic: every price (bar, levels, trades) becomes an integer number of ticks first - the POC,
the middle of its bin, a whole number of half ticks - so that ``close > VAH`` or ``|p - L| <= d``
compare what the market printed exactly; only the crossing and pullback distances, derived from
the float spread average, are real numbers of ticks and are compared with a 1e-9-tick tolerance.
Money (balance, fees, P&L) is plain float arithmetic on the fills, as an account would add it up.

Where the rules could be read two ways (the reason of a minute inside a retest wait, how a wait
ends, a level halfway between two ticks, a bar that both fails a retest and is a plain failed
breakout, the reason of an entry without a valid target), ``docs/signals.md`` settles it and this
oracle follows the text; the comments below quote it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

UP, DOWN = 1, -1
SIDE = {UP: "LONG", DOWN: "SHORT"}
EPS_TICKS = 1e-9
MIN_MS = 60_000
DAY_MS = 86_400_000

FLAG_KEYS = (
    "signal_breakin_long", "signal_breakin_short",
    "signal_breakout_long", "signal_breakout_short",
    "signal_failbreak_long", "signal_failbreak_short",
)  # fmt: skip
PRIORITY = ("breakin", "failbreak", "breakout")  # docs/signals.md "Priority"
EXIT_PURPOSES = ("stop", "tp1", "tp2", "time", "inside", "kill", "flip", "end_of_run")


def _num(v) -> float:
    """A feature value as a float, None -> NaN."""
    return math.nan if v is None else float(v)


def _defined(v) -> bool:
    return v is not None and not math.isnan(float(v))


@dataclass
class Sequence:
    """One direction's acceptance sequence (docs/signals.md "Acceptance")."""

    active: bool = False
    count: int = 0
    locked: int | None = None  # ticks
    fired: bool = False
    extreme: int | None = None  # ticks: highest high (up) / lowest low (down) since it started
    started_ts: int | None = None

    def as_dict(self, tick: float) -> dict:
        return {
            "active": self.active,
            "count": self.count,
            "locked": None if self.locked is None else self.locked * tick,
            "fired": self.fired,
            "extreme": None if self.extreme is None else self.extreme * tick,
            "started_ts": self.started_ts,
        }


@dataclass
class Wait:
    """A fired breakout waiting for its retest."""

    direction: int
    locked: int  # ticks
    extreme: int  # ticks, updated when the wait goes on ("otherwise the extreme is updated")
    seen: int  # ticks: the most extreme price since the sequence started, every minute with trades


@dataclass
class Pending:
    """A break-in triggered, waiting for its ``accept_inside_k`` closes inside (docs: "pending break-in")."""

    direction: int
    edge: int  # ticks
    extreme: int  # ticks
    count: int


@dataclass
class Setup:
    kind: str  # breakin / failbreak / breakout
    direction: int
    reason: str  # BREAKIN_LONG, FAILBREAK_SHORT:RETEST_FAILED, BREAKOUT_LONG:RETEST, RETEST_PENDING_LONG ...
    entry: int | None = None  # ticks; None for a breakout that waits for its retest
    stop: int | None = None
    targets: tuple = ()  # (tp1, tp2) in ticks
    exact: tuple = ()  # (tp1, tp2) before rounding, in ticks
    locked: int | None = None  # breakouts: the locked level a close must stay beyond


# -- what the venue answered (the strategy's inputs) ---------------------------------------------------


@dataclass
class Execution:
    """The venue's side of a backtest, as the strategy saw it.

    ``fills``: dicts of ``fills.parquet`` (ts_event ns, side, price, qty, commission, liquidity,
    bid/ask at the fill, purpose / setup / signal_ts_min tags, order type). ``funding``: (ts ms,
    amount paid) charges. ``rejected``: (ts ms, client order id) of orders the venue or the margin
    gate turned down. ``starting_balance``, the fee rates and the qty step come from the config.
    """

    fills: list[dict]
    funding: list[tuple[int, float]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    boundary_ticks: set = field(default_factory=set)  # ns of ticks stamped exactly on a minute boundary

    def __post_init__(self) -> None:
        self.fills = sorted(self.fills, key=lambda f: f["ts_event"])  # stable: venue order at equal times
        current = None
        for n, f in enumerate(self.fills):
            if f["purpose"] == "entry":
                current = f["signal_ts_min"]
            elif f["signal_ts_min"] is None:  # the backtest's end-of-run close: the open trade's
                self.fills[n] = {**f, "signal_ts_min": current}
        self.fill_ms = [f["ts_event"] / 1e6 for f in self.fills]
        filled_ids = {f["client_order_id"] for f in self.fills}
        self.rejected = sorted((ts, cid) for ts, cid in self.rejected if cid not in filled_ids)


class Book:
    """Position and balance rebuilt from the fills, trade by trade (one position at a time: a
    trade is the fills tagged with one ``signal_ts_min``)."""

    def __init__(self, ex: Execution, start_balance: float, step: float) -> None:
        self.ex, self.start, self.step = ex, start_balance, step

    def upto(self, t_ms: float) -> list[dict]:
        """Fills known at ``t_ms``: before it, and at it when a tick at that instant matched them."""
        n = bisect.bisect_right(self.ex.fill_ms, t_ms)
        if t_ms % MIN_MS == 0 and round(t_ms * 1_000_000) not in self.ex.boundary_ticks:
            n = bisect.bisect_left(self.ex.fill_ms, t_ms)
        return self.ex.fills[:n]

    def balance(self, t_ms: float) -> float:
        """Starting balance + realized P&L (netting, average entry price) - commissions - funding."""
        bal = self.start
        qty = avg = 0.0  # signed position, its average entry price
        for f in self.upto(t_ms):
            q = f["qty"] if f["side"] == "BUY" else -f["qty"]
            bal -= f["commission"]
            if qty == 0 or (qty > 0) == (q > 0):
                avg = (avg * abs(qty) + f["price"] * abs(q)) / (abs(qty) + abs(q))
                qty += q
            else:
                closed = min(abs(q), abs(qty))
                bal += closed * (f["price"] - avg) * (1 if qty > 0 else -1)
                rest = abs(q) - closed
                qty += q
                if abs(qty) < 1e-12:
                    qty = avg = 0.0
                if rest > 1e-12:  # turned through zero: the rest opens at this price
                    avg = f["price"]
        bal -= sum(a for ts, a in self.ex.funding if ts <= t_ms)
        return bal

    def trade_at(self, t_ms: float) -> dict | None:
        """The latest trade whose first entry fill is at or before ``t_ms``, with its state then."""
        fills = self.upto(t_ms)
        entries = [f for f in fills if f["purpose"] == "entry"]
        if not entries:
            return None
        sig = entries[-1]["signal_ts_min"]
        mine = [f for f in fills if f["signal_ts_min"] == sig]
        ent = [f for f in mine if f["purpose"] == "entry"]
        ext = [f for f in mine if f["purpose"] in EXIT_PURPOSES]
        entered = sum(f["qty"] for f in ent)
        exited = sum(f["qty"] for f in ext)
        later = [f for f in self.ex.fills[len(fills) :] if f["signal_ts_min"] == sig and f["purpose"] == "entry"]
        return {
            "signal_ts_min": sig,
            "direction": UP if ent[0]["side"] == "BUY" else DOWN,
            "setup": ent[0]["setup"],
            "first_fill_ms": ent[0]["ts_event"] / 1e6,
            "entry_price": sum(f["price"] * f["qty"] for f in ent) / entered,
            "entry_fees": sum(f["commission"] for f in ent),
            "entered": entered,
            "open": entered - exited,
            # flat once nothing is open and the entry has nothing more coming (docs: a trade ends
            # when its position is closed; an entry still working keeps it)
            "closed_ms": (ext[-1]["ts_event"] / 1e6) if entered - exited < self.step / 2 and not later and ext else None,
        }

    def rejected_between(self, a_ms: float, b_ms: float) -> bool:
        return any(a_ms <= ts <= b_ms for ts, _ in self.ex.rejected)


def initiative(p: dict, kind: str, of: float, of_norm: float, amb: float, qimb: float, direction: int) -> bool:
    """docs/signals.md "Initiative": ``kind`` is entry / breakout / fail."""
    of_min, of_min_norm, q_min = p[f"of_{kind}_min"], p[f"of_{kind}_min_norm"], p[f"qimb_{kind}_min"]
    if kind == "fail":  # written for the short side, inclusive; the long side mirrors them
        if direction == DOWN:
            of_ok = of <= of_min or of_norm <= of_min_norm
            qimb_ok = qimb <= q_min
        else:
            of_ok = of >= -of_min or of_norm >= -of_min_norm
            qimb_ok = qimb >= -q_min
    elif direction == UP:
        of_ok = of > of_min or of_norm > of_min_norm
        qimb_ok = qimb > q_min
    else:
        of_ok = of < -of_min or of_norm < -of_min_norm
        qimb_ok = qimb < -q_min
    # Every comparison with a NaN is False: a NaN never confirms.
    if not p["use_qimb"]:
        return of_ok
    if amb > p["ambiguous_trade_frac_max"]:
        return of_ok and qimb_ok
    return of_ok or qimb_ok


def size(margin: float, risk: float, entry: float, stop: float, step: float, leverage: float) -> int:
    """docs/signals.md "Sizing": steps of ``step``, rounded down, capped at the leverage limit."""
    dist = abs(entry - stop)
    if margin <= 0 or dist <= 0:
        return 0
    steps = math.floor(margin * risk / dist / step + 1e-9)
    cap = math.floor(margin * leverage / entry / step + 1e-9)
    return min(steps, cap)


def oracle_signals(features_rows, trades_by_minute: dict, config, tick_size: float = 0.1, execution: Execution | None = None) -> list[dict]:
    """One record per row of ``features_rows`` (the engine decides all but the last minute)."""
    p = config.flat()
    tick = float(tick_size)
    step = 0.001
    k_accept = int(p["accept_outside_k"])
    k_inside = int(p["accept_inside_k"])
    buffer = int(p["stop_buffer_ticks"])
    retest_mode = bool(p["enable_retest_mode"])
    use_ema = p["qimb_source"] == "ema"
    tp_mults = (float(p["breakout_tp1_va_mult"]), float(p["breakout_tp2_va_mult"]))
    book = Book(execution, float(p["starting_balance"]), step) if execution is not None else None
    taker = float(p["taker_fee_bps"]) / 1e4

    def to_ticks(price) -> int:
        return round(float(price) / tick)

    def round_level(x: float) -> int:
        return math.floor(x + 0.5)  # "a level halfway between two ticks rounds half up"

    def breakout_targets(locked: int, direction: int, vah: int, val: int) -> tuple[tuple, tuple]:
        exact = tuple(locked + direction * m * (vah - val) for m in tp_mults)
        return tuple(round_level(x) for x in exact), exact

    seqs = {UP: Sequence(), DOWN: Sequence()}
    wait: Wait | None = None
    pending: dict[int, Pending] = {}
    out = []
    decided: dict[int, dict] = {}  # ts_min -> the oracle's entry decision there (setup, locked, qty)
    guard = {"day": None, "start_balance": 0.0, "start_equity": 0.0, "active": False}
    cooldown_from: float | None = None  # ms: when the latest position went flat
    last_closed: int | None = None  # signal_ts_min of the trade whose close started it

    for i, row in enumerate(features_rows):
        ts_min = int(row["ts_min"])
        decision_ms = ts_min + MIN_MS
        warm = i + 1 >= int(p["warmup_minutes"])  # minutes closed, this one included
        has_trades = _defined(row["close"])
        va_ok = bool(row["va_valid"]) and all(_defined(row[c]) for c in ("poc", "vah", "val"))
        setups_allowed = warm and va_ok and has_trades
        qimb = _num(row["qimb_ema_60s"] if use_ema else row["qimb_close"])
        if p["use_bvc"]:  # "the BVC proxy stands in for it": OF = bvc_net, OF_norm = bvc_net / volume, no ambiguity
            of = _num(row["bvc_net"])
            of_norm = of / row["volume"] if row["volume"] else math.nan
            amb = 0.0
        else:
            of, of_norm, amb = _num(row["of_1m"]), _num(row["of_norm_1m"]), _num(row["ambiguous_trade_frac_1m"])

        def init(kind: str, direction: int) -> bool:
            return initiative(p, kind, of, of_norm, amb, qimb, direction)  # noqa: B023

        setups: list[Setup] = []  # every setup seen on the minute (the flags), before priority
        notes = {"_fired": [], "_wait_started": False, "_wait_ended": None, "_failed_stop_from_bar": False,
                 "_ended": {}, "_pending_started": [], "_in_position": None, "_trailing": False}  # fmt: skip

        if has_trades:
            h, lo, c = (to_ticks(row[x]) for x in ("high", "low", "close"))
            vah, val = (to_ticks(row[x]) if va_ok else None for x in ("vah", "val"))
            poc2 = round(2 * float(row["poc"]) / tick) if va_ok else None  # the POC in half ticks
            poc = (poc2 + 1) // 2 if va_ok else None  # as a target: on the grid, halves up
            prices = [to_ticks(x) for x in trades_by_minute.get(ts_min // 60_000, ())]
            spread = _num(row["spread_avg_60m"])

            def distance(mult: float) -> float:  # in ticks; one tick while the spread is undefined
                return 1.0 if math.isnan(spread) else max(mult * spread / tick, 1.0)  # noqa: B023

            d_cross = distance(float(p["crossing_spread_mult"]))
            d_pull = distance(float(p["pullback_spread_mult"]))

            def crosses(level: int) -> bool:
                return any(abs(x - level) <= d_cross + EPS_TICKS for x in prices)  # noqa: B023

            # -- 1. acceptance, both directions, every minute with trades ---------------------------
            ended: dict[int, tuple] = {}  # direction of the run -> (count, locked, extreme incl. this bar)
            for d, edge in ((UP, vah), (DOWN, val)):
                s = seqs[d]
                if s.active:
                    if d * (c - s.locked) > 0:  # a close beyond the locked level counts
                        s.count += 1
                        s.extreme = max(s.extreme, h) if d == UP else min(s.extreme, lo)
                    else:  # any other close ends it: this bar's ended run
                        ended[d] = (s.count, s.locked, max(s.extreme, h) if d == UP else min(s.extreme, lo))
                        seqs[d] = s = Sequence()
                if not s.active and edge is not None and d * (c - edge) > 0 and crosses(edge):
                    s.active, s.count, s.locked = True, 1, edge
                    s.extreme, s.started_ts = (h if d == UP else lo), ts_min
                if s.active and not s.fired and s.count >= k_accept:
                    s.fired = True
                    notes["_fired"].append(d)
            notes["_ended"] = {d: e[0] for d, e in ended.items()}

            if setups_allowed:
                # -- 2. break-ins (A): pokes; a pending one counts its closes inside -------------------
                confirmed: dict[int, Setup] = {}

                def breakin_setup(d: int, extreme: int) -> Setup:
                    targets = (poc, vah if d == UP else val)  # noqa: B023
                    return Setup("breakin", d, f"BREAKIN_{SIDE[d]}", c, extreme - d * buffer, targets)  # noqa: B023

                for d in sorted(pending):
                    pb = pending[d]
                    if d * (c - pb.edge) > 0:  # "a close > edge counts (the extreme follows the lows)"
                        pb.count += 1
                        pb.extreme = min(pb.extreme, lo) if d == UP else max(pb.extreme, h)
                        if pb.count >= k_inside:
                            confirmed[d] = breakin_setup(d, pb.extreme)
                            del pending[d]
                    else:  # "any other close ends it"
                        del pending[d]
                for d in (UP, DOWN):
                    run = ended.get(-d)  # a long's poke is a down run below VAL
                    if run is not None and run[0] >= k_accept:
                        continue  # "a bar whose ended run had reached accept_outside_k is never a break-in"
                    edge = val if d == UP else vah
                    extreme = lo if d == UP else h
                    if run is not None:
                        extreme = min(extreme, run[2]) if d == UP else max(extreme, run[2])
                    trigger = d * (edge - extreme) > 0 and d * (c - edge) > 0 and crosses(edge) and init("entry", d)
                    if not trigger or d in confirmed or d in pending:
                        continue  # "while one is pending, a new trigger of the same side starts nothing"
                    if k_inside <= 1:
                        confirmed[d] = breakin_setup(d, extreme)
                    else:
                        pending[d] = Pending(d, edge, extreme, 1)
                        notes["_pending_started"].append(d)
                setups += [confirmed[d] for d in sorted(confirmed, reverse=True)]

                # -- 3. failed breakouts (C): a run of k or more closes ended on this bar --------------
                for d_run, (count, locked, extreme) in ended.items():
                    d = -d_run  # the trade goes against the failed acceptance
                    if count >= k_accept and d_run * ((h if d_run == UP else lo) - locked) > 0 and crosses(locked) and init("fail", d):
                        setups.append(Setup("failbreak", d, f"FAILBREAK_{SIDE[d]}", c, extreme - d * buffer, (poc, val if d_run == UP else vah)))

            # -- 4. the retest wait of a breakout fired on an earlier minute -----------------------
            seen_before = None
            if wait is not None:
                d = wait.direction
                seen_before = wait.seen
                wait.seen = max(wait.seen, h) if d == UP else min(wait.seen, lo)
            # READING (not switchable): the retest paragraph sits under "Setups (only when warmed up,
            # the value area is valid and the minute has trades)", so the wait moves on those minutes.
            if wait is not None and setups_allowed:
                d = wait.direction
                if d * (c - wait.locked) <= 0:  # back at or inside the locked level: the wait ends
                    notes["_wait_ended"] = "inside"
                    # C's trigger against the locked level: high > L, crossing L, fail initiative
                    poked = d * ((h if d == UP else lo) - wait.locked) > 0
                    if poked and crosses(wait.locked) and init("fail", -d):
                        notes["_failed_stop_from_bar"] = wait.seen != seen_before  # this bar went further
                        extreme = max(wait.extreme, h) if d == UP else min(wait.extreme, lo)
                        run = ended.get(d)
                        if run is not None and run[1] == wait.locked:  # "the ended run's when locked at the same level"
                            extreme = max(extreme, run[2]) if d == UP else min(extreme, run[2])
                        # "it replaces a plain failed breakout of the same side on that bar"
                        setups = [s for s in setups if not (s.kind == "failbreak" and s.direction == -d)]
                        setups.append(Setup(
                            "failbreak", -d, f"FAILBREAK_{SIDE[-d]}:RETEST_FAILED",
                            entry=c, stop=extreme + d * buffer, targets=(poc, val if d == UP else vah),
                        ))  # fmt: skip
                    wait = None
                elif (lo <= wait.locked + d_pull + EPS_TICKS) if d == UP else (h >= wait.locked - d_pull - EPS_TICKS):
                    notes["_wait_ended"] = "retest"
                    targets, exact = breakout_targets(wait.locked, d, vah, val)
                    stop = lo - buffer if d == UP else h + buffer
                    setups.append(Setup("breakout", d, f"BREAKOUT_{SIDE[d]}:RETEST", c, stop, targets, exact, wait.locked))
                    wait = None
                else:
                    wait.extreme = max(wait.extreme, h) if d == UP else min(wait.extreme, lo)

            # -- 5. breakouts fired on this minute -------------------------------------------------
            if setups_allowed:
                for d in notes["_fired"]:
                    if not init("breakout", d):
                        continue
                    if retest_mode and any(x.reason == f"BREAKOUT_{SIDE[d]}:RETEST" for x in setups):
                        continue  # "a breakout of the side whose retest enters on that bar does not wait again"
                    s = seqs[d]
                    if retest_mode:  # does not enter: waits (whatever wins this minute's priority)
                        setups.append(Setup("breakout", d, f"RETEST_PENDING_{SIDE[d]}"))
                        wait = Wait(d, s.locked, s.extreme, s.extreme)
                        notes["_wait_started"] = True
                    else:
                        targets, exact = breakout_targets(s.locked, d, vah, val)
                        setups.append(Setup("breakout", d, f"BREAKOUT_{SIDE[d]}", c, s.locked - d * buffer, targets, exact, s.locked))

        flags = dict.fromkeys(FLAG_KEYS, 0)
        for s in setups:
            flags[f"signal_{s.kind}_{SIDE[s.direction].lower()}"] = 1

        # -- 6. priority and conflicts ----------------------------------------------------------------
        chosen, conflict = None, None
        if has_trades:
            for kind in PRIORITY:
                of_kind = [s for s in setups if s.kind == kind]
                if not of_kind:
                    continue
                if {s.direction for s in of_kind} == {UP, DOWN}:
                    conflict = f"CONFLICT_{kind.upper()}"
                else:
                    chosen = of_kind[0]
                break
        valid_reason = None  # the chosen setup's full reason, with :NO_VALID_TARGET etc.
        if chosen is not None and chosen.entry is not None:
            d = chosen.direction
            chosen.targets = tuple(t if t is not None and d * (t - chosen.entry) > 0 else None for t in chosen.targets)
            if d * (chosen.entry - chosen.stop) <= 0:
                valid_reason = f"{chosen.reason}:STOP_NOT_BEYOND_ENTRY"
            elif all(t is None for t in chosen.targets):
                valid_reason = f"{chosen.reason}:NO_VALID_TARGET"

        # -- 7. the account, the kill switch, the position (every path only) -------------------------
        pos = None
        kill = False
        if book is not None:
            pos = book.trade_at(decision_ms)
            if pos is not None and pos["closed_ms"] is not None and pos["closed_ms"] <= decision_ms:
                if last_closed != pos["signal_ts_min"]:
                    cooldown_from, last_closed = pos["closed_ms"], pos["signal_ts_min"]
                pos = None
            balance = book.balance(decision_ms)
            mid = _num(row["mid_close"])
            unrealized = 0.0
            if pos is not None and not math.isnan(mid):
                unrealized = (mid - pos["entry_price"]) * pos["open"] * pos["direction"]
            day = decision_ms // DAY_MS
            if day != guard["day"]:  # "the balance at the first decision of the UTC day"
                guard.update(day=day, start_balance=balance, start_equity=balance + unrealized, active=False)
            if not guard["active"] and balance - guard["start_balance"] < -float(p["max_daily_loss"]) * guard["start_equity"]:
                guard["active"] = True
            kill = guard["active"]
            notes["_in_position"] = None if pos is None else SIDE[pos["direction"]]

        # -- 8. the decision -----------------------------------------------------------------------------
        action, reason, entering = "HOLD", None, None
        if pos is not None:
            mine = decided.get(pos["signal_ts_min"], {})
            d = pos["direction"]
            flip_ok = chosen is not None and chosen.entry is not None and valid_reason is None and chosen.direction == -d
            if kill:
                action, reason = "EXIT", "EXIT_KILL_SWITCH"
            elif flip_ok and p["enable_flip_on_signal"]:
                action, reason, entering = f"ENTER_{SIDE[chosen.direction]}", f"FLIP:{chosen.reason}", chosen
            elif pos["setup"] == "breakout" and has_trades and mine.get("locked") is not None and d * (c - mine["locked"]) <= 0:
                action, reason = "EXIT", "EXIT_CLOSE_BACK_INSIDE"
            elif time_stop_due(pos, decision_ms, row, p, tick, taker, notes):
                action, reason = "EXIT", "EXIT_TIME_STOP"
            else:
                seen = None if chosen is None or chosen.entry is None else (valid_reason or chosen.reason)
                reason = f"IN_POSITION:{seen}" if seen else "IN_POSITION"
        elif not warm:
            reason = "WARMUP"
        elif not va_ok:
            reason = "VA_INVALID"
        elif not has_trades:
            reason = "NO_TRADES"
        elif conflict is not None:
            reason = conflict
        elif chosen is None:
            if wait is not None:  # every minute of the wait says so
                reason = f"RETEST_PENDING_{SIDE[wait.direction]}"
            elif notes["_wait_ended"] == "inside":
                reason = "RETEST_FAILED"
            elif pending:
                reason = f"BREAKIN_PENDING_{SIDE[UP if UP in pending else DOWN]}"
            else:
                reason = "NO_SIGNAL"
        elif chosen.entry is None:
            reason = chosen.reason  # RETEST_PENDING_<side>: the breakout waits
        elif kill:
            reason = f"KILL_SWITCH:{valid_reason or chosen.reason}"
        elif cooldown_from is not None and decision_ms < math.floor(cooldown_from) + int(p["cooldown_minutes"]) * MIN_MS:
            reason = f"COOLDOWN:{valid_reason or chosen.reason}"
        elif book is not None and entry_working(book, decided, decision_ms, p):
            reason = f"ENTRY_WORKING:{valid_reason or chosen.reason}"
        elif valid_reason is not None:
            reason = valid_reason
        else:
            action, reason, entering = f"ENTER_{SIDE[chosen.direction]}", chosen.reason, chosen

        # -- 9. the record, and what the strategy did with an entry ---------------------------------------
        snapshot = {}
        if entering is not None:  # entries log their levels
            tp1, tp2 = entering.targets
            snapshot = {
                "setup": entering.kind,
                "entry": entering.entry * tick,
                "stop": entering.stop * tick,
                "tp1": None if tp1 is None else tp1 * tick,
                "tp2": None if tp2 is None else tp2 * tick,
            }
            decided[ts_min] = {"setup": entering.kind, "locked": entering.locked, "decision_ms": decision_ms,
                               "direction": entering.direction, "flip": pos is not None, "snapshot": snapshot}  # fmt: skip
            if book is not None:
                # "sized on the free balance when the entry is sized (for a flip: once the old position is flat)"
                sized_ms = decision_ms
                if pos is not None:
                    sized_ms = flip_close_ms(book, pos["signal_ts_min"], decision_ms)
                margin = book.balance(sized_ms) if sized_ms is not None else math.nan
                steps = size(margin, float(p["risk_pct"]), entering.entry * tick, entering.stop * tick, step, float(p["max_leverage"]))
                snapshot.update(qty=steps * step, margin=margin)
                decided[ts_min]["steps"] = steps
                if steps < 1:
                    action = "EXIT" if pos is not None else "HOLD"
                    reason = f"{reason}:SIZE_BELOW_ONE_QTY_STEP"
        state_name = SIDE[pos["direction"]] if pos is not None else ("PENDING_RETEST" if wait is not None else "FLAT")
        state = {
            "up": seqs[UP].as_dict(tick),
            "down": seqs[DOWN].as_dict(tick),
            "retest": None
            if wait is None
            else {"direction": wait.direction, "locked": wait.locked * tick, "extreme": wait.extreme * tick},
            "breakin_pending": [{"direction": pb.direction, "edge": pb.edge * tick, "extreme": pb.extreme * tick, "count": pb.count}
                                for _, pb in sorted(pending.items())],  # fmt: skip
            "state": state_name,
        }
        out.append({
            "ts_min": ts_min,
            **flags,
            "acceptance_state": state,
            "chosen_action": action,
            "reason_code": reason,
            "feature_snapshot": snapshot,
            "_exact_targets": entering.exact if entering is not None and entering.exact else None,
            "_setups": [s.reason for s in setups],
            "_kill": kill,
            **notes,
        })  # fmt: skip
    if book is not None:
        # "an entry order the venue rejects with nothing filled gains :ENTRY_REJECTED" (and the
        # action says nothing was opened: HOLD, or EXIT for a flip, whose close did go out)
        decisions = sorted(t for t, dcs in decided.items() if dcs.get("steps", 0) >= 1)
        for n, t in enumerate(decisions):
            dcs = decided[t]
            until = decided[decisions[n + 1]]["decision_ms"] if n + 1 < len(decisions) else math.inf
            filled = any(f["signal_ts_min"] == t and f["purpose"] == "entry" for f in book.ex.fills)
            if not filled and book.rejected_between(dcs["decision_ms"], until):
                rec = next(r for r in out if r["ts_min"] == t)
                rec["chosen_action"] = "EXIT" if dcs["flip"] else "HOLD"
                rec["reason_code"] += ":ENTRY_REJECTED"
                rec["feature_snapshot"]["qty"] = 0.0
    return out


def time_stop_due(pos: dict, decision_ms: int, row: dict, p: dict, tick: float, taker: float, notes: dict) -> bool:
    """docs/signals.md "Decision" 4: the clock starts at the first minute close after the entry's
    first fill (a fill at a boundary is before that boundary's decision); due from
    ``max_hold_minutes`` later, unless extended while a market exit would leave it ahead."""
    start = math.ceil(pos["first_fill_ms"] / MIN_MS) * MIN_MS
    if (decision_ms - start) // MIN_MS < int(p["max_hold_minutes"]):
        return False
    if not p["extend_if_profitable"]:
        return True
    d = pos["direction"]
    quote = _num(row["bid_px_close"] if d == UP else row["ask_px_close"])
    if math.isnan(quote):
        return True  # nothing to judge a profit on: "0" is not ahead
    exit_price = quote - d * int(p["slippage_ticks_exit"]) * tick
    qty = pos["open"]
    net = d * (exit_price - pos["entry_price"]) * qty - pos["entry_fees"] * qty / pos["entered"] - qty * exit_price * taker
    notes["_trailing"] = net > 0  # held past max_hold_minutes because a market exit would be ahead
    return not net > 0


def flip_close_ms(book: Book, old_signal: int, decision_ms: int) -> float | None:
    """When the old position of a flip decided at ``decision_ms`` went flat: its last exit fill
    after the decision."""
    closes = [f["ts_event"] / 1e6 for f in book.ex.fills if f["signal_ts_min"] == old_signal and f["purpose"] in EXIT_PURPOSES
              and f["ts_event"] / 1e6 > decision_ms]  # fmt: skip
    return max(closes) if closes else None


def entry_working(book: Book, decided: dict, decision_ms: int, p: dict) -> bool:
    """docs/signals.md: "an entry order still working, or a flip's entry still waiting for its
    close" - the latest entry decided before now that neither filled nor was turned down yet."""
    earlier = [t for t, dcs in decided.items() if dcs["decision_ms"] < decision_ms and dcs.get("steps", 1) >= 1]
    if not earlier:
        return False
    latest = decided[max(earlier)]
    sig = max(earlier)
    filled = any(f["signal_ts_min"] == sig and f["purpose"] == "entry" and f["ts_event"] / 1e6 <= decision_ms for f in book.ex.fills)
    if filled:
        return False
    return not book.rejected_between(latest["decision_ms"], decision_ms)


def check_exits(execution: Execution, records: list[dict], config, tick_size: float = 0.1, trades: dict | None = None) -> list[str]:
    """The protective fills against docs/signals.md "Sizing and exits" / "Orders": for each trade
    the stop fills where the bid (long) / ask (short) reached the plan's stop - or a trade printed
    at or through it at that instant ("or a trade prints at or through it") - or, after a TP1 fill
    with ``move_stop_to_breakeven_after_tp1``, the entry price on the tick grid; TP1 / TP2 where the
    touch or a print reached the target (market-if-touched), or at the target itself as limits
    (``use_market_for_exit: false``); TP1's quantity is ``tp1_pct`` of the entered quantity, halves
    up, at least one step; the entered quantity never exceeds the one sized. ``trades``: ``{ts_ns:
    [prices]}`` of the catalog. Returns the problems."""
    p = config.flat()
    tick, step = float(tick_size), 0.001
    plans = {r["ts_min"]: r["feature_snapshot"] for r in records if r["chosen_action"].startswith("ENTER")}
    problems = []
    by_trade: dict[int, list[dict]] = {}
    for f in execution.fills:
        by_trade.setdefault(f["signal_ts_min"], []).append(f)
    def printed_through(ts: int, level: float, direction: int) -> bool:
        # direction +1: a price at or above the level (a long's target); -1: at or below
        return any(direction * (x - level) >= -1e-9 for x in (trades or {}).get(ts, ()))

    for sig, fills in sorted(by_trade.items()):
        plan = plans.get(sig)
        if plan is None:
            problems.append(f"trade {sig}: fills without an entry decision")
            continue
        entries = [f for f in fills if f["purpose"] == "entry"]
        d = UP if entries and entries[0]["side"] == "BUY" else DOWN
        entered = sum(f["qty"] for f in entries)
        if round(entered / step) > round(plan.get("qty", math.inf) / step):
            problems.append(f"trade {sig}: entered {entered} > sized {plan.get('qty')}")
        avg = sum(f["price"] * f["qty"] for f in entries) / entered if entered else math.nan
        tp1_at = None
        for f in fills:
            purpose, touch = f["purpose"], (f["bid_at_fill"] if d == UP else f["ask_at_fill"])
            if purpose == "tp1" and tp1_at is None:
                tp1_at = f["ts_event"]
            if purpose == "stop":
                breakeven = tp1_at is not None and tp1_at < f["ts_event"] and p["move_stop_to_breakeven_after_tp1"]
                level = round(avg / tick) * tick if breakeven else plan["stop"]
                if d * (touch - level) > 1e-9 and not printed_through(f["ts_event"], level, -d):
                    problems.append(f"trade {sig}: stop filled at touch {touch} not through its level {level} (breakeven={breakeven})")
            elif purpose in ("tp1", "tp2") and plan.get(purpose) is not None:
                level = plan[purpose]
                if p["use_market_for_exit"]:
                    if d * (touch - level) < -1e-9 and not printed_through(f["ts_event"], level, d):
                        problems.append(f"trade {sig}: {purpose} filled at touch {touch} before its target {level}")
                elif abs(f["price"] - level) > 1e-9 and d * (f["price"] - level) < 0:
                    problems.append(f"trade {sig}: {purpose} limit filled at {f['price']}, worse than its target {level}")
            elif purpose in ("tp1", "tp2"):
                problems.append(f"trade {sig}: {purpose} fill without a valid {purpose} target")
        tp1 = [f for f in fills if f["purpose"] == "tp1"]
        if tp1 and plan.get("tp2") is not None and entries and max(f["ts_event"] for f in entries) < tp1[0]["ts_event"]:
            n = round(entered / step)
            want = min(max(1, math.floor(n * float(p["tp1_pct"]) + 0.5)), n) if n > 1 else 0
            got = round(sum(f["qty"] for f in tp1) / step)
            if got != want:
                problems.append(f"trade {sig}: TP1 took {got} steps of {n}, the docs say {want}")
    return problems


def trades_by_time(trade_ts_ns, trade_price) -> dict:
    """``{ts_ns: [prices]}`` from the raw trade columns."""
    out: dict[int, list] = {}
    for ts, price in zip(list(trade_ts_ns), list(trade_price)):
        out.setdefault(int(ts), []).append(float(price))
    return out


def trades_by_minute(trade_ts_ns, trade_price) -> dict:
    """``{minute index: [prices]}`` from the raw trade columns (minute = floor(ts_ns / 60 s))."""
    out: dict[int, list] = {}
    for ts, price in zip(list(trade_ts_ns), list(trade_price)):
        out.setdefault(int(ts) // 60_000_000_000, []).append(float(price))
    return out
