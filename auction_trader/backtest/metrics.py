"""The numbers of a run, computed from the venue's fills, the funding ledger and the account.

Money is exact: fill prices (0.1), quantities (0.001), commissions and funding (rounded by the venue
to USDT's 8 decimals) are all finite decimals, so the P&L identity is checked in ``Decimal``:

    net_pnl = gross_pnl − fees_paid − funding_paid = ending_balance − starting_balance

``gross_pnl`` is computed here from the fills alone — Σ over round trips of (exit − entry)·qty·side,
i.e. sell notional − buy notional of each trip — and compared with the account's balance change
(Nautilus's own bookkeeping). The only legitimate difference is Nautilus rounding each closing
fill's realized P&L to 8 decimals when a position was built at several prices; it is reported as
``pnl_rounding_residual`` and must stay below a cent, else :class:`PnlIdentityError`.

Round trips: a position opened from flat and closed back to flat; a fill that flips the position
closes one trip and opens the next (its commission is split pro rata by quantity).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from auction_trader.core.position import NetPosition

MINUTES_PER_YEAR = 365 * 24 * 60  # crypto trades around the clock
CENT = Decimal("0.01")


class PnlIdentityError(AssertionError):
    """gross − fees − funding does not equal the account's balance change: a bookkeeping bug."""


@dataclass
class Fill:
    """One venue fill, in venue order, as the outputs see it."""

    ts: int
    side: int  # +1 buy, -1 sell
    qty: Decimal
    price: Decimal
    commission: Decimal  # positive = paid
    liquidity: str  # MAKER / TAKER
    order_type: str
    reduce_only: bool
    client_order_id: str
    trade_id: str
    bid: float  # the quote the venue matched against
    ask: float
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def setup(self) -> str | None:
        return self.tags.get("setup")

    @property
    def purpose(self) -> str | None:
        return self.tags.get("purpose")


def parse_tags(tags) -> dict[str, str]:
    """``["setup=breakin", "purpose=entry"]`` -> ``{"setup": "breakin", "purpose": "entry"}``."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key, sep, value = str(tag).partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


@dataclass
class Trip:
    """A round trip: flat -> position -> flat."""

    side: int  # +1 long, -1 short
    open_ts: int
    close_ts: int | None = None
    qty: Decimal = Decimal(0)  # total quantity opened
    entry_notional: Decimal = Decimal(0)
    exit_qty: Decimal = Decimal(0)
    exit_notional: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)
    setup: str | None = None
    exit_reason: str | None = None
    fills: int = 0

    @property
    def closed(self) -> bool:
        return self.close_ts is not None

    @property
    def entry_price(self) -> Decimal:
        return self.entry_notional / self.qty if self.qty else Decimal(0)

    @property
    def exit_price(self) -> Decimal | None:
        return self.exit_notional / self.exit_qty if self.exit_qty else None

    @property
    def gross(self) -> Decimal:
        """Realized: exact for a closed trip; average-cost for the closed part of an open one."""
        if not self.exit_qty:
            return Decimal(0)
        if self.closed:
            return self.side * (self.exit_notional - self.entry_notional)
        return self.side * (self.exit_notional - self.entry_price * self.exit_qty)

    @property
    def net(self) -> Decimal:
        return self.gross - self.fees - self.funding


def round_trips(fills: list[Fill], funding_events=()) -> list[Trip]:
    """Split the fills into round trips (flips make two) and attach funding charged in each."""
    trips: list[Trip] = []
    position = NetPosition()
    trip: Trip | None = None
    for f in fills:
        commission_left = f.commission
        remaining = f.qty
        for part in position.apply(f.side, f.qty):
            if part.starts:
                trip = Trip(side=f.side, open_ts=f.ts, setup=f.setup)
                trips.append(trip)
            assert trip is not None
            share = commission_left if part.qty == remaining else f.commission * part.qty / f.qty
            commission_left -= share
            remaining -= part.qty
            trip.fees += share
            trip.fills += 1
            if part.opening:
                trip.qty += part.qty
                trip.entry_notional += part.qty * f.price
                if trip.setup is None:
                    trip.setup = f.setup
            else:
                trip.exit_qty += part.qty
                trip.exit_notional += part.qty * f.price
                trip.exit_reason = f.purpose
            if part.ends:
                trip.close_ts = f.ts
    for event in funding_events:
        for t in trips:
            if t.open_ts < event.ts and (t.close_ts is None or event.ts <= t.close_ts):
                t.funding += event.amount
                break
    return trips


def funding_for_span(events, open_ns: int, close_ns: int | None) -> Decimal:
    """Funding charged while a position opened at ``open_ns`` (closed at ``close_ns``) was held."""
    return sum((e.amount for e in events if open_ns < e.ts and (close_ns is None or e.ts <= close_ns)), Decimal(0))


# -- equity -----------------------------------------------------------------------------------------


def minute_equity(
    minute_quotes: list[tuple[int, float, float]],
    fills: list[Fill],
    balance_events: list[tuple[int, float]],
    starting_balance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Equity at each minute boundary E: balance after events before E + open position at mid(E).

    ``balance_events``: (ts, wallet balance) after each account change (fills, funding), in order.
    Unrealized P&L uses the average entry price of the position held before E.
    """
    ts = np.array([m[0] for m in minute_quotes], dtype=np.int64)
    mid = np.array([(m[1] + m[2]) / 2 for m in minute_quotes], dtype=np.float64)
    if len(ts) == 0:
        return ts, np.zeros(0)
    # Position and average entry price after each fill (average cost, as the venue books it).
    pos_after, avg_after, fill_ts = [], [], []
    pos, avg = 0.0, 0.0
    for f in fills:
        q = float(f.qty) * f.side
        p = float(f.price)
        if pos == 0 or (pos > 0) == (q > 0):
            new = pos + q
            avg = (avg * abs(pos) + p * abs(q)) / abs(new)
            pos = new
        else:
            new = pos + q
            if abs(q) > abs(pos) + 1e-12:  # flip: the remainder opens at this price
                avg = p
            elif abs(new) < 1e-12:
                avg = 0.0
            pos = 0.0 if abs(new) < 1e-12 else new
        fill_ts.append(f.ts)
        pos_after.append(pos)
        avg_after.append(avg)
    fill_ts_a = np.array(fill_ts, dtype=np.int64)
    i = np.searchsorted(fill_ts_a, ts, side="left") - 1  # last fill strictly before E
    pos_at = np.where(i >= 0, np.array(pos_after + [0.0])[i], 0.0)
    avg_at = np.where(i >= 0, np.array(avg_after + [0.0])[i], 0.0)
    bal_ts = np.array([b[0] for b in balance_events], dtype=np.int64)
    bal_v = np.array([b[1] for b in balance_events], dtype=np.float64)
    j = np.searchsorted(bal_ts, ts, side="left") - 1
    balance = np.where(j >= 0, bal_v[np.maximum(j, 0)] if len(bal_v) else starting_balance, starting_balance)
    equity = balance + pos_at * (mid - avg_at)
    return ts, equity


def drawdown(equity: np.ndarray) -> tuple[float, float]:
    """Max peak-to-trough drop: (USDT, fraction of the peak)."""
    if len(equity) == 0:
        return 0.0, 0.0
    peak = np.maximum.accumulate(equity)
    dd = peak - equity
    k = int(np.argmax(dd))
    return float(dd[k]), float(dd[k] / peak[k]) if peak[k] > 0 else 0.0


def sharpe(equity: np.ndarray) -> float | None:
    """Annualised Sharpe of per-minute equity returns: mean / sd (n−1) × sqrt(525 600), rate 0.

    Minutes are UTC minute boundaries from the first to the last tick, equity marked at the mid of
    the latest quote; None when fewer than two returns or no variation.
    """
    if len(equity) < 3:
        return None
    r = equity[1:] / equity[:-1] - 1.0
    sd = float(np.std(r, ddof=1))
    if not math.isfinite(sd) or sd == 0.0:
        return None
    return float(np.mean(r)) / sd * math.sqrt(MINUTES_PER_YEAR)


# -- summary ------------------------------------------------------------------------------------------


def _q(values: np.ndarray, p: float) -> float | None:
    return float(np.percentile(values, p)) if len(values) else None


def _r(x, nd: int = 6):
    """Rounded for stable, readable JSON (None for missing / non-finite)."""
    if x is None:
        return None
    x = float(x)
    return round(x, nd) if math.isfinite(x) else None


def _money(x: Decimal) -> float:
    """An exact decimal money amount as a JSON number (8 decimals at most: repr round-trips)."""
    return float(x.quantize(Decimal("1e-8")))


def compute_metrics(
    *,
    fills: list[Fill],
    funding_events,
    starting_balance: Decimal,
    ending_balance: Decimal,
    minute_ts: np.ndarray,
    equity: np.ndarray,
    tick_size: float,
    features: dict[str, np.ndarray] | None = None,
    ambiguous_frac_max: float | None = None,
    extra: dict | None = None,
) -> tuple[dict, list[Trip]]:
    """metrics.json's content (without run identification) and the round trips."""
    trips = round_trips(fills, funding_events)
    gross = sum((t.gross for t in trips), Decimal(0))
    fees = sum((f.commission for f in fills), Decimal(0))
    funding = sum((e.amount for e in funding_events), Decimal(0))
    net = ending_balance - starting_balance
    residual = net - (gross - fees - funding)
    if abs(residual) >= CENT / 2:
        raise PnlIdentityError(
            f"P&L identity broken by {residual} USDT: gross {gross} - fees {fees} - funding {funding} "
            f"!= ending {ending_balance} - starting {starting_balance}",
        )
    closed = [t for t in trips if t.closed]
    nets = np.array([float(t.net) for t in closed])
    wins, losses = nets[nets > 0], nets[nets <= 0]
    dd_abs, dd_pct = drawdown(equity)

    taker = [f for f in fills if f.liquidity == "TAKER" and math.isfinite(f.bid) and math.isfinite(f.ask)]
    slip = sum(
        (abs(f.price - Decimal(repr(f.ask if f.side > 0 else f.bid))) * f.qty for f in taker),
        Decimal(0),
    )
    spreads = np.array([f.ask - f.bid for f in taker])
    half_spread_cost = sum((Decimal(repr(round(f.ask - f.bid, 10))) / 2 * f.qty for f in taker), Decimal(0))

    orders_by_purpose: dict[str, set] = {}
    for f in fills:
        orders_by_purpose.setdefault(f.purpose or "untagged", set()).add(f.client_order_id)

    metrics: dict = {
        "starting_balance": _money(starting_balance),
        "ending_balance": _money(ending_balance),
        "gross_pnl": _money(gross),
        "fees_paid": _money(fees),
        "funding_paid": _money(funding),
        "net_pnl": _money(net),
        "pnl_rounding_residual": _money(residual),
        "return_pct": _r(float(net / starting_balance) * 100, 6),
        "trades": len(closed),
        "open_trades_at_end": len(trips) - len(closed),
        "pnl_per_trade": _r(nets.mean(), 8) if len(nets) else None,
        "gross_pnl_per_trade": _r(float(sum((t.gross for t in closed), Decimal(0))) / len(closed), 8) if closed else None,
        "win_rate": _r(len(wins) / len(nets), 6) if len(nets) else None,
        "avg_win": _r(wins.mean(), 8) if len(wins) else None,
        "avg_loss": _r(losses.mean(), 8) if len(losses) else None,
        "best_trade": _r(nets.max(), 8) if len(nets) else None,
        "worst_trade": _r(nets.min(), 8) if len(nets) else None,
        "profit_factor": _r(wins.sum() / -losses.sum(), 6) if len(losses) and losses.sum() < 0 else None,
        "max_drawdown": _r(dd_abs, 8),
        "max_drawdown_pct": _r(dd_pct * 100, 6),
        "sharpe_annualised_1m": _r(sharpe(equity), 6),
        "equity_minutes": len(equity),
        "fills": len(fills),
        "maker_fills": sum(1 for f in fills if f.liquidity == "MAKER"),
        "taker_fills": sum(1 for f in fills if f.liquidity == "TAKER"),
        "volume_traded": _r(float(sum((f.qty for f in fills), Decimal(0))), 6),
        "notional_traded": _money(sum((f.qty * f.price for f in fills), Decimal(0))),
        "slippage_cost": _money(slip),
        "slippage_ticks_mean": _r(
            float(sum((abs(f.price - Decimal(repr(f.ask if f.side > 0 else f.bid))) for f in taker), Decimal(0))) / len(taker) / tick_size, 6,
        )
        if taker
        else None,
        "spread_at_taker_fills": {
            "count": len(spreads),
            "mean": _r(spreads.mean(), 6) if len(spreads) else None,
            "p50": _r(_q(spreads, 50), 6),
            "p90": _r(_q(spreads, 90), 6),
            "p99": _r(_q(spreads, 99), 6),
            "max": _r(spreads.max(), 6) if len(spreads) else None,
            "half_spread_cost": _money(half_spread_cost),
        },
        "trades_by_setup": dict(sorted(Counter(t.setup or "untagged" for t in closed).items())),
        "exits_by_reason": dict(sorted(Counter(t.exit_reason or "untagged" for t in closed).items())),
        "orders_filled_by_purpose": {k: len(v) for k, v in sorted(orders_by_purpose.items())},
        "funding_events": len(funding_events),
        "funding_events_paid": sum(1 for e in funding_events if e.amount > 0),
        "funding_events_received": sum(1 for e in funding_events if e.amount < 0),
    }
    if features:
        metrics.update(_feature_stats(features, ambiguous_frac_max))
    if extra:
        metrics.update(extra)
    return metrics, trips


def _feature_stats(features: dict[str, np.ndarray], ambiguous_frac_max: float | None) -> dict:
    out: dict = {}
    amb = features.get("ambiguous_trade_frac_1m")
    if amb is not None:
        a = np.asarray(amb, dtype=np.float64)
        a = a[np.isfinite(a)]
        out["ambiguous_trade_frac"] = {
            "minutes": len(a),
            "mean": _r(a.mean()) if len(a) else None,
            "p50": _r(_q(a, 50)),
            "p90": _r(_q(a, 90)),
            "max": _r(a.max()) if len(a) else None,
            "minutes_above_max": int((a > ambiguous_frac_max).sum()) if ambiguous_frac_max is not None else None,
        }
    agree, disagree = features.get("side_agree"), features.get("side_disagree")
    if agree is not None and disagree is not None:
        n_agree, n_dis = int(np.sum(agree)), int(np.sum(disagree))
        out["inferred_side_agreement"] = {
            "trades_with_exchange_side": n_agree + n_dis,
            "agree": n_agree,
            "disagree": n_dis,
            "agreement": _r(n_agree / (n_agree + n_dis)) if n_agree + n_dis else None,
        }
    inferred, exchange, volume = (features.get(c) for c in ("of_1m_inferred", "of_1m_exchange", "volume"))
    if inferred is not None and exchange is not None and volume is not None and agree is not None:
        # How far the inferred order flow is from the exchange's recorded taker side, whichever of
        # the two order_flow_source chose for the signals (minutes whose trades carry a side).
        sided = (np.asarray(agree) + np.asarray(disagree)) > 0
        i, e, v = (np.asarray(x, dtype=np.float64)[sided] for x in (inferred, exchange, volume))
        out["order_flow_inferred_vs_exchange"] = {
            "minutes": int(sided.sum()),
            "mean_abs_of_norm_difference": _r(float(np.mean(np.abs(i - e) / v))) if len(v) else None,
            "minutes_sign_differs": int(np.sum(np.sign(i) != np.sign(e))),
        }
    return out
