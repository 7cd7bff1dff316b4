//! L1 quotes: which quote a trade is aligned with, the close snapshot, the rolling spread and the
//! quote-imbalance EMA (specv2 §4.3-4.4, §5.3, §5.8).

use std::collections::VecDeque;

/// One L1 snapshot in integer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Exchange time, ms.
    pub ts_ms: i64,
    /// Best bid, ticks.
    pub bid: i64,
    /// Best ask, ticks.
    pub ask: i64,
    /// Size at the best bid, lots.
    pub bid_lots: i64,
    /// Size at the best ask, lots.
    pub ask_lots: i64,
}

impl Quote {
    /// `(bid_size - ask_size) / (bid_size + ask_size)`; 0 when both sides are empty.
    pub fn imbalance(&self) -> f64 {
        let total = self.bid_lots + self.ask_lots;
        if total == 0 {
            0.0
        } else {
            (self.bid_lots - self.ask_lots) as f64 / total as f64
        }
    }

    /// `ask - bid` in ticks.
    pub fn spread_ticks(&self) -> i64 {
        self.ask - self.bid
    }
}

/// The latest quote, and the latest one stamped strictly earlier than it.
///
/// A trade is classified against the latest quote *strictly before* its millisecond (a quote of
/// the same millisecond usually shows the book after the trade). Keeping the last quote of the
/// previous millisecond makes that independent of the order in which equal-time events arrive.
#[derive(Debug, Clone, Default)]
pub struct QuoteBook {
    current: Option<Quote>,
    before: Option<Quote>,
}

impl QuoteBook {
    /// Applies a quote (timestamps must not go backwards).
    #[inline]
    pub fn on_quote(&mut self, quote: Quote) {
        if let Some(cur) = self.current {
            if cur.ts_ms < quote.ts_ms {
                self.before = Some(cur);
            }
        }
        self.current = Some(quote);
    }

    /// The latest quote (the close snapshot when asked at a minute's close).
    pub fn latest(&self) -> Option<&Quote> {
        self.current.as_ref()
    }

    /// The latest quote stamped strictly before `ts_ms` (`ts_ms` >= the latest quote's time).
    #[inline]
    pub fn strictly_before(&self, ts_ms: i64) -> Option<&Quote> {
        match &self.current {
            Some(q) if q.ts_ms < ts_ms => Some(q),
            Some(_) => self.before.as_ref(),
            None => None,
        }
    }
}

/// Continuous-time EMA of the quote imbalance with time constant τ.
///
/// Between updates the imbalance that stood is constant, so over an elapsed `Δt` the EMA moves a
/// fraction `1 - exp(-Δt/τ)` of the way to it. Updated at each quote and at each minute close.
#[derive(Debug, Clone)]
pub struct ImbalanceEma {
    tau_ms: f64,
    state: Option<(f64, i64, f64)>, // (ema, last update ms, standing imbalance)
}

impl ImbalanceEma {
    /// An EMA with time constant `span_seconds`.
    pub fn new(span_seconds: f64) -> Self {
        Self { tau_ms: span_seconds * 1000.0, state: None }
    }

    /// A new quote at `ts_ms` with imbalance `q`; the first quote starts the EMA at `q`.
    #[inline]
    pub fn on_quote(&mut self, ts_ms: i64, q: f64) {
        match &mut self.state {
            None => self.state = Some((q, ts_ms, q)),
            Some((ema, t, standing)) => {
                *ema += (1.0 - (-((ts_ms - *t) as f64) / self.tau_ms).exp()) * (*standing - *ema);
                *t = ts_ms;
                *standing = q;
            }
        }
    }

    /// Brings the EMA forward to `now_ms` (a minute's close) and returns it.
    pub fn advance(&mut self, now_ms: i64) -> Option<f64> {
        let (ema, t, standing) = self.state.as_mut()?;
        if now_ms > *t {
            *ema += (1.0 - (-((now_ms - *t) as f64) / self.tau_ms).exp()) * (*standing - *ema);
            *t = now_ms;
        }
        Some(*ema)
    }
}

/// Plain mean of the close spread over the last `lookback` minutes that have one.
#[derive(Debug, Clone)]
pub struct SpreadWindow {
    lookback: i64,
    spreads: VecDeque<(i64, i64)>, // (minute, spread ticks)
    sum: i64,
}

impl SpreadWindow {
    /// A window of `lookback` minutes.
    pub fn new(lookback: usize) -> Self {
        Self { lookback: lookback as i64, spreads: VecDeque::new(), sum: 0 }
    }

    /// Records minute `m`'s close spread (if any) and returns the mean in ticks.
    pub fn on_minute(&mut self, minute: i64, spread_ticks: Option<i64>) -> Option<f64> {
        if let Some(s) = spread_ticks {
            self.spreads.push_back((minute, s));
            self.sum += s;
        }
        while let Some(&(m, s)) = self.spreads.front() {
            if m > minute - self.lookback {
                break;
            }
            self.sum -= s;
            self.spreads.pop_front();
        }
        (!self.spreads.is_empty()).then(|| self.sum as f64 / self.spreads.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(ts_ms: i64, bid: i64, ask: i64) -> Quote {
        Quote { ts_ms, bid, ask, bid_lots: 3, ask_lots: 1 }
    }

    #[test]
    fn trade_sees_the_quote_strictly_before_it_whatever_the_arrival_order() {
        let mut book = QuoteBook::default();
        assert!(book.strictly_before(10).is_none());
        book.on_quote(q(5, 100, 101));
        book.on_quote(q(10, 101, 102)); // same millisecond as the trade at 10
        assert_eq!(book.strictly_before(10).unwrap().bid, 100);
        book.on_quote(q(10, 102, 103)); // another one at 10: still the quote of ms 5
        assert_eq!(book.strictly_before(10).unwrap().bid, 100);
        assert_eq!(book.latest().unwrap().bid, 102);
        assert_eq!(book.strictly_before(11).unwrap().bid, 102);
    }

    #[test]
    fn first_quote_alone_is_not_before_its_own_millisecond() {
        let mut book = QuoteBook::default();
        book.on_quote(q(7, 100, 101));
        assert!(book.strictly_before(7).is_none());
        assert_eq!(book.strictly_before(8).unwrap().ts_ms, 7);
    }

    #[test]
    fn imbalance_and_spread() {
        assert_eq!(q(0, 100, 102).imbalance(), 0.5);
        assert_eq!(q(0, 100, 102).spread_ticks(), 2);
        let empty = Quote { ts_ms: 0, bid: 1, ask: 2, bid_lots: 0, ask_lots: 0 };
        assert_eq!(empty.imbalance(), 0.0);
    }

    #[test]
    fn ema_by_hand() {
        // tau = 60 s. q0 = 0.5 at t=0; q1 = -0.5 at t=30 s; close at t=60 s.
        let mut ema = ImbalanceEma::new(60.0);
        assert_eq!(ema.advance(0), None);
        ema.on_quote(0, 0.5);
        ema.on_quote(30_000, -0.5); // 0.5 stood for 30 s: ema stays 0.5
        let a = (-0.5f64).exp();
        let expected = 0.5 + (1.0 - a) * (-0.5 - 0.5);
        assert!((ema.advance(60_000).unwrap() - expected).abs() < 1e-15);
        assert!((ema.advance(60_000).unwrap() - expected).abs() < 1e-15, "no time, no change");
    }

    #[test]
    fn spread_mean_ignores_minutes_without_a_spread_and_slides() {
        let mut w = SpreadWindow::new(3);
        assert_eq!(w.on_minute(10, None), None);
        assert_eq!(w.on_minute(11, Some(1)), Some(1.0));
        assert_eq!(w.on_minute(12, Some(3)), Some(2.0));
        assert_eq!(w.on_minute(13, Some(5)), Some(3.0));
        assert_eq!(w.on_minute(14, Some(1)), Some(3.0)); // minute 11 left
        assert_eq!(w.on_minute(20, None), None); // everything aged out
    }
}
