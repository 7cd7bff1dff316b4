"""The signal engine (specv2 §6): a state machine fed one completed minute at a time.

Every minute it updates the acceptance sequences (whatever the position), evaluates the three
setups in both directions, handles a pending breakout retest and a break-in awaiting its
``accept_inside_k`` closes, and decides: HOLD, ENTER_LONG, ENTER_SHORT or EXIT, with a reason
code. It proposes; the strategy executes and reports back (:meth:`SignalEngine.position_opened`,
:meth:`SignalEngine.position_closed`), because only fills say whether and when a position exists.
Each minute also yields a ``signals_1m`` record. ``docs/signals.md`` is the contract.

States: FLAT, LONG, SHORT, and PENDING_RETEST (flat, a breakout accepted, waiting for the
pullback). Precedence on one bar: break-in > failed breakout > breakout; both directions of the
winning setup at once is a conflict and no trade. An opposite signal while in a position flips
(close, then open: two trades) when ``enable_flip_on_signal``; flips are not held back by the
cooldown (the close is the signal's own doing) but are by the kill switch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from auction_trader.config import AuctionConfig
from auction_trader.core.acceptance import Sequence
from auction_trader.core.exits import TimeStop, closed_back_inside
from auction_trader.core.initiative import LONG, SHORT, entry_initiative
from auction_trader.core.minute import Minute
from auction_trader.core.risk import Cooldown
from auction_trader.core.setups import (
    BREAKIN,
    BREAKOUT,
    FAILBREAK,
    PRIORITY,
    Candidate,
    Levels,
    breakin_candidate,
    breakin_trigger,
    breakout_candidate,
    failbreak,
)

HOLD, ENTER_LONG, ENTER_SHORT, EXIT = "HOLD", "ENTER_LONG", "ENTER_SHORT", "EXIT"
FLAGS = (
    "signal_breakin_long",
    "signal_breakin_short",
    "signal_breakout_long",
    "signal_breakout_short",
    "signal_failbreak_long",
    "signal_failbreak_short",
)


def side(direction: int) -> str:
    return "LONG" if direction == LONG else "SHORT"


@dataclass
class Context:
    """What only the strategy knows, handed over at each minute close."""

    kill_switch: bool = False
    net_unrealized: float = 0.0  # open position's P&L at the price a market exit gets, net of round-trip fees
    entry_working: bool = False  # an entry order is still working


@dataclass(frozen=True)
class Decision:
    action: str  # HOLD, ENTER_LONG, ENTER_SHORT, EXIT
    reason: str
    candidate: Candidate | None = None  # the trade to open (ENTER_*)
    close_first: bool = False  # a flip: close the open position, then open
    exit_reason: str | None = None  # EXIT / flip: "time", "inside", "kill", "flip"


@dataclass
class _Position:
    candidate: Candidate
    direction: int
    setup: str
    entry: float
    stop: float
    locked: float | None
    opened_ts: int
    time_stop: TimeStop

    def to_state(self) -> dict:
        return {
            "candidate": asdict(self.candidate), "direction": self.direction, "setup": self.setup, "entry": self.entry,
            "stop": self.stop, "locked": self.locked, "opened_ts": self.opened_ts, "time_stop": self.time_stop.state(),
        }  # fmt: skip

    @classmethod
    def from_state(cls, s: dict) -> _Position:
        return cls(Candidate(**s["candidate"]), s["direction"], s["setup"], s["entry"], s["stop"], s["locked"], s["opened_ts"], TimeStop.from_state(s["time_stop"]))


@dataclass
class _Retest:
    direction: int
    locked: float
    extreme: float  # highest high (long) / lowest low (short) since the sequence began
    since_ts: int

    def to_state(self) -> dict:
        return asdict(self)


@dataclass
class _PendingBreakin:
    """A break-in triggered, waiting for ``accept_inside_k`` closes inside the edge it poked."""

    direction: int  # the trade's
    edge: float  # the edge poked, as it stood on the trigger bar
    extreme: float  # the poke's extreme, updated by later bars
    count: int  # closes inside so far, the trigger bar's included

    def state(self) -> dict:
        return {"direction": self.direction, "edge": self.edge, "extreme": self.extreme, "count": self.count}

    @classmethod
    def from_state(cls, s: dict) -> _PendingBreakin:
        return cls(s["direction"], s["edge"], s["extreme"], s["count"])


@dataclass
class SignalEngine:
    """See the module docstring. ``tick`` is the instrument's price increment."""

    config: AuctionConfig
    tick: float
    minutes: int = 0
    position: _Position | None = None
    retest: _Retest | None = None
    pending: dict[int, _PendingBreakin] = field(default_factory=dict)
    up: Sequence = field(init=False)
    down: Sequence = field(init=False)
    cooldown: Cooldown = field(init=False)
    levels: Levels = field(init=False)

    def __post_init__(self) -> None:
        k = self.config.acceptance.accept_outside_k
        self.up, self.down = Sequence(LONG, k), Sequence(SHORT, k)
        self.cooldown = Cooldown(self.config.risk.cooldown_minutes)
        self.levels = Levels(self.config, self.tick)

    @property
    def phase(self) -> str:
        """FLAT, LONG, SHORT or PENDING_RETEST (the ``state`` of the signal log)."""
        if self.position is not None:
            return side(self.position.direction)
        return "PENDING_RETEST" if self.retest is not None else "FLAT"

    # -- persistence -----------------------------------------------------------------------------

    def state(self) -> dict:
        """All decision state as JSON-safe primitives (no NaN): minutes seen (warm-up), the two
        acceptance sequences, the retest wait, the break-ins waiting for ``accept_inside_k``, the
        open position with its time stop, the cooldown."""
        return {
            "minutes": self.minutes,
            "up": self.up.to_state(),
            "down": self.down.to_state(),
            "retest": None if self.retest is None else self.retest.to_state(),
            "pending": [p.state() for _, p in sorted(self.pending.items())],
            "position": None if self.position is None else self.position.to_state(),
            "cooldown": self.cooldown.state(),
        }

    @classmethod
    def from_state(cls, config: AuctionConfig, tick: float, state: dict) -> SignalEngine:
        engine = cls(config, tick)
        engine.restore(state)
        return engine

    def restore(self, state: dict) -> None:
        """Replace this engine's decision state by ``state`` (from :meth:`state`)."""
        self.minutes = int(state["minutes"])
        self.up = Sequence.from_state(LONG, self.config.acceptance.accept_outside_k, state["up"])
        self.down = Sequence.from_state(SHORT, self.config.acceptance.accept_outside_k, state["down"])
        self.retest = None if state["retest"] is None else _Retest(**state["retest"])
        self.pending = {p["direction"]: _PendingBreakin.from_state(p) for p in state["pending"]}
        self.position = None if state["position"] is None else _Position.from_state(state["position"])
        self.cooldown = Cooldown.from_state(self.config.risk.cooldown_minutes, state["cooldown"])

    # -- reports from the strategy ---------------------------------------------------------------

    def position_opened(self, candidate: Candidate, entry_price: float, ts_ms: int) -> None:
        """The entry filled (at ``entry_price``): the time stop starts at the next minute close."""
        risk = self.config.risk
        self.position = _Position(
            candidate,
            candidate.direction,
            candidate.setup,
            entry_price,
            candidate.stop,
            candidate.locked,
            ts_ms,
            TimeStop(risk.max_hold_minutes, risk.extend_if_profitable),
        )

    def position_closed(self, ts_ms: int, candidate: Candidate | None = None) -> None:
        """Flat again (stop, target, time, flip, kill): the cooldown starts now.

        With ``candidate``, only that trade's position is closed: in a flip the old position's
        close may be reported after the new one opened, which must stay open."""
        if self.position is not None and (candidate is None or self.position.candidate is candidate):
            self.position = None
        if candidate is None or self.position is None:
            self.cooldown.position_closed(ts_ms)

    # -- the minute ------------------------------------------------------------------------------

    def on_minute(self, m: Minute, ctx: Context | None = None) -> tuple[Decision, dict]:
        """Decide at the close of ``m``; returns the decision and its ``signals_1m`` record."""
        ctx = ctx or Context()
        self.minutes += 1
        lv = self.levels
        fired_up = fired_down = False
        if m.has_trades:
            dist = lv.crossing_distance(m)
            vah = m.vah if m.va_valid else math.nan
            val = m.val if m.va_valid else math.nan
            fired_up = self.up.update(m.ts_min, m.close, m.high, m.low, vah, m.crossed(vah, dist) if m.va_valid else False)
            fired_down = self.down.update(m.ts_min, m.close, m.high, m.low, val, m.crossed(val, dist) if m.va_valid else False)
        else:
            self.up.ended = self.down.ended = None

        warmed = self.minutes >= self.config.startup.warmup_minutes
        live = warmed and m.va_valid and m.has_trades
        found: dict[str, dict[int, Candidate]] = {BREAKIN: {}, FAILBREAK: {}, BREAKOUT: {}}
        flags = dict.fromkeys(FLAGS, 0)
        note = ""
        if live:
            self._breakins(m, found)
            for d, run in ((SHORT, self.up.ended), (LONG, self.down.ended)):
                if run is not None and run.count >= self.config.acceptance.accept_outside_k:
                    c = failbreak(d, m, self.config, lv, run.locked, run.extreme)
                    if c is not None:
                        found[FAILBREAK][d] = c
            for d, fired, seq in ((LONG, fired_up, self.up), (SHORT, fired_down, self.down)):
                if fired and entry_initiative(d, m, self.config, "breakout"):
                    found[BREAKOUT][d] = breakout_candidate(d, m, self.config, lv, seq.locked)
            _flag(flags, found)  # a breakout that now waits for its retest still signalled
            note = self._retest(m, found)
            _flag(flags, found)
            if not note and self.pending:
                note = "BREAKIN_PENDING_" + side(LONG if LONG in self.pending else SHORT)

        decision = self._decide(m, ctx, found, flags, warmed, note)
        return decision, self._record(m, flags, decision)

    def _breakins(self, m: Minute, found: dict[str, dict[int, Candidate]]) -> None:
        """Break-ins (A): a trigger enters at once with ``accept_inside_k`` 1; otherwise it waits for
        that many closes inside the edge it poked, the trigger bar's included. A close not inside
        ends the wait. Mutates ``found``."""
        k_in = self.config.acceptance.accept_inside_k
        for d in list(self.pending):
            p = self.pending[d]
            if d * (m.close - p.edge) <= 0:  # closed back beyond the edge: the poke was accepted
                del self.pending[d]
                continue
            p.count += 1
            p.extreme = min(p.extreme, m.low) if d == LONG else max(p.extreme, m.high)
            if p.count >= k_in:
                del self.pending[d]
                found[BREAKIN][d] = breakin_candidate(d, m, self.levels, p.extreme)
        for d, run in ((LONG, self.down.ended), (SHORT, self.up.ended)):
            extreme = breakin_trigger(d, m, self.config, self.levels, run)
            if extreme is None or d in found[BREAKIN] or d in self.pending:
                continue
            if k_in <= 1:
                found[BREAKIN][d] = breakin_candidate(d, m, self.levels, extreme)
            else:
                self.pending[d] = _PendingBreakin(d, m.val if d == LONG else m.vah, extreme, 1)

    def _retest(self, m: Minute, found: dict[str, dict[int, Candidate]]) -> str:
        """Retest mode (§6.5): a fresh breakout waits for a pullback to the locked edge; a close back
        inside while waiting ends the wait, and with the failed-breakout conditions it is a failed
        breakout the other way (a case of C). Mutates ``found``."""
        if not self.config.modes.enable_retest_mode:
            return ""
        note = ""
        r = self.retest
        if r is not None:
            d = r.direction
            if closed_back_inside(d, m.close, r.locked):
                self.retest = None
                note = "RETEST_FAILED"
                # The poke is the whole breakout: its extreme since the sequence began sets the stop.
                run = self.up.ended if d == LONG else self.down.ended
                extreme = max(r.extreme, m.high) if d == LONG else min(r.extreme, m.low)
                if run is not None and run.locked == r.locked:
                    extreme = max(extreme, run.extreme) if d == LONG else min(extreme, run.extreme)
                c = failbreak(-d, m, self.config, self.levels, r.locked, extreme, via="retest_failed")
                if c is not None:
                    found[FAILBREAK][-d] = c  # replaces a plain failed breakout of that side
            elif d * (r.locked - (m.low if d == LONG else m.high)) >= -self.levels.pullback_distance(m):
                self.retest = None
                stop_from = m.low if d == LONG else m.high
                found[BREAKOUT][d] = breakout_candidate(d, m, self.config, self.levels, r.locked, stop_from, via="retest")
            else:
                r.extreme = max(r.extreme, m.high) if d == LONG else min(r.extreme, m.low)
                note = f"RETEST_PENDING_{side(d)}"
        for d, seq in ((LONG, self.up), (SHORT, self.down)):
            fresh = found[BREAKOUT].get(d)
            if fresh is not None and fresh.via == "":
                # Accepted now: wait for the retest instead of entering.
                del found[BREAKOUT][d]
                self.retest = _Retest(d, seq.locked, seq.extreme, m.ts_min)
                note = f"RETEST_PENDING_{side(d)}"
        return note

    def _decide(self, m: Minute, ctx: Context, found: dict[str, dict[int, Candidate]], flags: dict[str, int], warmed: bool, note: str) -> Decision:
        # The winning setup is the first one signalled; a breakout that only starts its retest wait
        # signals without proposing a trade, so it can win (and hold) or conflict with a retest entry.
        chosen, conflict = None, None
        for setup in PRIORITY:
            long, short = flags[f"signal_{setup}_long"], flags[f"signal_{setup}_short"]
            if long and short:
                conflict = f"CONFLICT_{setup.upper()}"
                break
            if long or short:
                chosen = found[setup].get(LONG if long else SHORT)
                break

        p = self.position
        if p is not None:
            due = p.time_stop.on_close(m.decision_ts, ctx.net_unrealized)
            if ctx.kill_switch:
                return Decision(EXIT, "EXIT_KILL_SWITCH", exit_reason="kill")
            if chosen is not None and chosen.direction == -p.direction and self.config.modes.enable_flip_on_signal and chosen.valid:
                return Decision(ENTER_LONG if chosen.direction == LONG else ENTER_SHORT, f"FLIP:{chosen.reason}", chosen, close_first=True, exit_reason="flip")
            if p.setup == BREAKOUT and p.locked is not None and m.has_trades and closed_back_inside(p.direction, m.close, p.locked):
                return Decision(EXIT, "EXIT_CLOSE_BACK_INSIDE", exit_reason="inside")
            if due:
                return Decision(EXIT, "EXIT_TIME_STOP", exit_reason="time")
            return Decision(HOLD, f"IN_POSITION:{chosen.reason}" if chosen is not None else "IN_POSITION")

        if not warmed:
            return Decision(HOLD, "WARMUP")
        if not m.va_valid:
            return Decision(HOLD, "VA_INVALID")
        if not m.has_trades:
            return Decision(HOLD, "NO_TRADES")
        if conflict is not None:
            return Decision(HOLD, conflict)
        if chosen is None:
            return Decision(HOLD, note or "NO_SIGNAL")
        if ctx.kill_switch:
            return Decision(HOLD, f"KILL_SWITCH:{chosen.reason}")
        if not self.cooldown.allows(m.decision_ts):
            return Decision(HOLD, f"COOLDOWN:{chosen.reason}")
        if ctx.entry_working:
            return Decision(HOLD, f"ENTRY_WORKING:{chosen.reason}")
        if not chosen.valid:
            return Decision(HOLD, chosen.reason)
        return Decision(ENTER_LONG if chosen.direction == LONG else ENTER_SHORT, chosen.reason, chosen)

    def _record(self, m: Minute, flags: dict[str, int], decision: Decision) -> dict:
        acceptance = {
            "up": self.up.state(),
            "down": self.down.state(),
            "retest": None if self.retest is None else {"direction": self.retest.direction, "locked": self.retest.locked, "extreme": self.retest.extreme},
            "breakin_pending": [p.state() for _, p in sorted(self.pending.items())],
            "state": self.phase,
        }
        snapshot = m.snapshot()
        c = decision.candidate
        if c is not None:
            snapshot.update(entry=c.entry, stop=c.stop, tp1=c.tp1, tp2=c.tp2, setup=c.setup)
        return {
            "ts_min": m.ts_min,
            **flags,
            "acceptance_state": _json(acceptance),
            "chosen_action": decision.action,
            "reason_code": decision.reason,
            "feature_snapshot": _json(snapshot),
        }


def amend(record: dict, action: str | None = None, reason: str | None = None, **snapshot) -> None:
    """Change a ``signals_1m`` record in place to what was actually done: its action, its reason,
    and fields of its feature snapshot (e.g. the quantity an entry was sized to)."""
    if action is not None:
        record["chosen_action"] = action
    if reason is not None:
        record["reason_code"] = reason
    if snapshot:
        record["feature_snapshot"] = _json({**json.loads(record["feature_snapshot"]), **snapshot})


def _flag(flags: dict[str, int], found: dict[str, dict[int, Candidate]]) -> None:
    for setup, by_dir in found.items():
        for d in by_dir:
            flags[f"signal_{setup}_{'long' if d == LONG else 'short'}"] = 1


def _json(value: dict) -> str:
    """Stable JSON with NaN as null (NaN is not JSON)."""

    def clean(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), sort_keys=True, separators=(",", ":"))
