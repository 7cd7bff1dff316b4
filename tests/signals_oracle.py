"""An independent, deliberately plain reading of the signal rules (``docs/signals.md``), flat path only.

Written from ``docs/signals.md`` (the contract), DESIGN.md ("Signals") and specv2 §6 alone, without
looking at ``auction_trader/core``. It is what ``auction_trader.replay.replay_signals`` should do when
no position is ever open: no exits, cooldowns, flips or kill switch.

Inputs: the minute rows of ``auction_trader.features.compute`` (dicts), every minute's trade prices
(``{minute index: [price, ...]}``, minute index = ``ts_ns // 60 s``, see :func:`trades_by_minute`)
and the config. Output: one record per row with the keys of ``replay_signals``;
``acceptance_state`` and ``feature_snapshot`` are dicts (the engine logs them as JSON), and keys
starting with ``_`` are the oracle's own notes (which path a minute took) for the tests.

Arithmetic: every price (bar, levels, trades) becomes an integer number of ticks first, so that
``close > VAH`` or ``|p - L| <= d`` compare what the market printed exactly; only the crossing and
pullback distances, derived from the float spread average, are real numbers of ticks and are
compared with a 1e-9-tick tolerance (a 1-tick spread average *is* one tick, whatever float noise
the mean carries).

Where the rules could be read two ways (the reason of a minute inside a retest wait, how a wait
ends, a level halfway between two ticks, a bar that both fails a retest and is a plain failed
breakout, the reason of an entry without a valid target), ``docs/signals.md`` settles it and this
oracle follows the text; the comments below quote it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UP, DOWN = 1, -1
SIDE = {UP: "LONG", DOWN: "SHORT"}
EPS_TICKS = 1e-9

FLAG_KEYS = (
    "signal_breakin_long", "signal_breakin_short",
    "signal_breakout_long", "signal_breakout_short",
    "signal_failbreak_long", "signal_failbreak_short",
)  # fmt: skip
PRIORITY = ("breakin", "failbreak", "breakout")  # docs/signals.md "Priority"

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
class Setup:
    kind: str  # breakin / failbreak / breakout
    direction: int
    reason: str  # BREAKIN_LONG, FAILBREAK_SHORT:RETEST_FAILED, BREAKOUT_LONG:RETEST, RETEST_PENDING_LONG ...
    entry: int | None = None  # ticks; None for a breakout that waits for its retest
    stop: int | None = None
    targets: tuple = ()  # (tp1, tp2) in ticks
    exact: tuple = ()  # (tp1, tp2) before rounding, in ticks


def initiative(p: dict, kind: str, row: dict, qimb: float, direction: int) -> bool:
    """docs/signals.md "Initiative": ``kind`` is entry / breakout / fail."""
    of, of_norm = _num(row["of_1m"]), _num(row["of_norm_1m"])
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
    if _num(row["ambiguous_trade_frac_1m"]) > p["ambiguous_trade_frac_max"]:
        return of_ok and qimb_ok
    return of_ok or qimb_ok


def oracle_signals(features_rows, trades_by_minute: dict, config, tick_size: float = 0.1) -> list[dict]:
    """One record per row of ``features_rows`` (the engine decides all but the last minute)."""
    p = config.flat()
    tick = float(tick_size)
    k_accept = int(p["accept_outside_k"])
    buffer = int(p["stop_buffer_ticks"])
    retest_mode = bool(p["enable_retest_mode"])
    use_ema = p["qimb_source"] == "ema"
    tp_mults = (float(p["breakout_tp1_va_mult"]), float(p["breakout_tp2_va_mult"]))

    def to_ticks(price) -> int:
        return round(float(price) / tick)

    def round_level(x: float) -> int:
        return math.floor(x + 0.5)  # "a level halfway between two ticks rounds half up"

    def breakout_targets(locked: int, direction: int, vah: int, val: int) -> tuple[tuple, tuple]:
        exact = tuple(locked + direction * m * (vah - val) for m in tp_mults)
        return tuple(round_level(x) for x in exact), exact

    seqs = {UP: Sequence(), DOWN: Sequence()}
    wait: Wait | None = None
    out = []

    for i, row in enumerate(features_rows):
        ts_min = int(row["ts_min"])
        warm = i + 1 >= int(p["warmup_minutes"])  # minutes closed, this one included
        has_trades = _defined(row["close"])
        va_ok = bool(row["va_valid"]) and all(_defined(row[c]) for c in ("poc", "vah", "val"))
        setups_allowed = warm and va_ok and has_trades
        qimb = _num(row["qimb_ema_60s"] if use_ema else row["qimb_close"])
        setups: list[Setup] = []  # every setup seen on the minute (the flags), before priority
        notes = {"_fired": [], "_wait_started": False, "_wait_ended": None, "_failed_stop_from_bar": False,
                 "_failed_stop_beyond_wait_extreme": False}  # fmt: skip

        if has_trades:
            h, lo, c = (to_ticks(row[x]) for x in ("high", "low", "close"))
            vah, val, poc = (to_ticks(row[x]) if va_ok else None for x in ("vah", "val", "poc"))
            prices = [to_ticks(x) for x in trades_by_minute.get(ts_min // 60_000, ())]
            spread = _num(row["spread_avg_60m"])

            def distance(mult: float) -> float:  # in ticks; one tick while the spread is undefined
                return 1.0 if math.isnan(spread) else max(mult * spread / tick, 1.0)

            d_cross = distance(float(p["crossing_spread_mult"]))
            d_pull = distance(float(p["pullback_spread_mult"]))

            def crosses(level: int) -> bool:
                return any(abs(x - level) <= d_cross + EPS_TICKS for x in prices)

            # -- 1. acceptance, both directions, every minute with trades ---------------------------
            for d, edge in ((UP, vah), (DOWN, val)):
                s = seqs[d]
                bar_extreme = h if d == UP else lo
                if s.active:
                    if d * (c - s.locked) > 0:  # a close beyond the locked level counts
                        s.count += 1
                        s.extreme = max(s.extreme, h) if d == UP else min(s.extreme, lo)
                    else:  # any other close ends it
                        seqs[d] = s = Sequence()
                if not s.active and edge is not None and d * (c - edge) > 0 and crosses(edge):
                    s.active, s.count, s.locked = True, 1, edge
                    s.extreme, s.started_ts = bar_extreme, ts_min
                if s.active and not s.fired and s.count >= k_accept:
                    s.fired = True
                    notes["_fired"].append(d)

            # -- 2. the retest wait of a breakout fired on an earlier minute -----------------------
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
                    if initiative(p, "fail", row, qimb, -d):
                        notes["_failed_stop_from_bar"] = wait.seen != seen_before  # this bar went further
                        # a minute on which the wait stood still (no setups) went further
                        notes["_failed_stop_beyond_wait_extreme"] = seen_before != wait.extreme
                        setups.append(Setup(
                            "failbreak", -d, f"FAILBREAK_{SIDE[-d]}:RETEST_FAILED",
                            entry=c, stop=wait.seen + d * buffer, targets=(poc, val if d == UP else vah),
                        ))  # fmt: skip
                    wait = None
                elif (lo <= wait.locked + d_pull + EPS_TICKS) if d == UP else (h >= wait.locked - d_pull - EPS_TICKS):
                    notes["_wait_ended"] = "retest"
                    targets, exact = breakout_targets(wait.locked, d, vah, val)
                    stop = lo - buffer if d == UP else h + buffer
                    setups.append(Setup("breakout", d, f"BREAKOUT_{SIDE[d]}:RETEST", c, stop, targets, exact))
                    wait = None
                else:
                    wait.extreme = max(wait.extreme, h) if d == UP else min(wait.extreme, lo)

            # -- 3. this minute's setups --------------------------------------------------------------
            if setups_allowed:
                if lo < val and c > val and crosses(val):
                    if initiative(p, "entry", row, qimb, UP):
                        setups.append(Setup("breakin", UP, "BREAKIN_LONG", c, lo - buffer, (poc, vah)))
                    if initiative(p, "fail", row, qimb, UP):
                        setups.append(Setup("failbreak", UP, "FAILBREAK_LONG", c, lo - buffer, (poc, vah)))
                if h > vah and c < vah and crosses(vah):
                    if initiative(p, "entry", row, qimb, DOWN):
                        setups.append(Setup("breakin", DOWN, "BREAKIN_SHORT", c, h + buffer, (poc, val)))
                    if initiative(p, "fail", row, qimb, DOWN):
                        setups.append(Setup("failbreak", DOWN, "FAILBREAK_SHORT", c, h + buffer, (poc, val)))
                for d in notes["_fired"]:
                    if not initiative(p, "breakout", row, qimb, d):
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
                        setups.append(Setup("breakout", d, f"BREAKOUT_{SIDE[d]}", c, s.locked - d * buffer, targets, exact))

        flags = dict.fromkeys(FLAG_KEYS, 0)
        for s in setups:
            flags[f"signal_{s.kind}_{SIDE[s.direction].lower()}"] = 1

        # -- 4. priority, conflicts and the flat decision ----------------------------------------------
        action, reason, chosen = "HOLD", None, None
        if not warm:
            reason = "WARMUP"
        elif not va_ok:
            reason = "VA_INVALID"
        elif not has_trades:
            reason = "NO_TRADES"
        else:
            for kind in PRIORITY:
                of_kind = [s for s in setups if s.kind == kind]
                if not of_kind:
                    continue
                if {s.direction for s in of_kind} == {UP, DOWN}:
                    reason = f"CONFLICT_{kind.upper()}"
                elif len(of_kind) > 1:  # a failed retest and a plain failed breakout: the retest's
                    chosen = next(s for s in of_kind if s.reason.endswith(":RETEST_FAILED"))
                else:
                    chosen = of_kind[0]
                break
            if chosen is None and reason is None:
                if wait is not None:  # every minute of the wait says so
                    reason = f"RETEST_PENDING_{SIDE[wait.direction]}"
                elif notes["_wait_ended"] == "inside":
                    reason = "RETEST_FAILED"
                else:
                    reason = "NO_SIGNAL"
            elif chosen is not None and chosen.entry is None:
                reason = chosen.reason  # RETEST_PENDING_<side>: the breakout waits
            elif chosen is not None:
                d = chosen.direction
                base = chosen.reason  # the whole setup reason, ":NO_VALID_TARGET" after it
                # A target not beyond the entry in the trade's direction is dropped.
                chosen.targets = tuple(t if d * (t - chosen.entry) > 0 else None for t in chosen.targets)
                if d * (chosen.entry - chosen.stop) <= 0:
                    reason = f"{base}:STOP_NOT_BEYOND_ENTRY"
                elif all(t is None for t in chosen.targets):
                    reason = f"{base}:NO_VALID_TARGET"
                else:
                    action, reason = f"ENTER_{SIDE[d]}", chosen.reason  # the wait goes on

        # -- 5. the record --------------------------------------------------------------------------
        snapshot = {}
        if action != "HOLD":  # entries log their levels
            tp1, tp2 = chosen.targets
            snapshot = {
                "setup": chosen.kind,
                "entry": chosen.entry * tick,
                "stop": chosen.stop * tick,
                "tp1": None if tp1 is None else tp1 * tick,
                "tp2": None if tp2 is None else tp2 * tick,
            }
        state = {
            "up": seqs[UP].as_dict(tick),
            "down": seqs[DOWN].as_dict(tick),
            "retest": None
            if wait is None
            else {"direction": wait.direction, "locked": wait.locked * tick, "extreme": wait.extreme * tick},
            "state": "PENDING_RETEST" if wait is not None else "FLAT",
        }
        out.append({
            "ts_min": ts_min,
            **flags,
            "acceptance_state": state,
            "chosen_action": action,
            "reason_code": reason,
            "feature_snapshot": snapshot,
            "_exact_targets": chosen.exact if action != "HOLD" and chosen.exact else None,
            "_setups": [s.reason for s in setups],
            **notes,
        })  # fmt: skip
    return out


def trades_by_minute(trade_ts_ns, trade_price) -> dict:
    """``{minute index: [prices]}`` from the raw trade columns (minute = floor(ts_ns / 60 s))."""
    out: dict[int, list] = {}
    for ts, price in zip(list(trade_ts_ns), list(trade_price)):
        out.setdefault(int(ts) // 60_000_000_000, []).append(float(price))
    return out
