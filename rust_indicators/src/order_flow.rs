//! Inferred order flow (specv2 §5.7): prints, the quote rule, the tick-rule fallback, and the
//! per-minute flow, ambiguity and agreement figures.
//!
//! Trades sharing a millisecond are one **print** (a taker order split across makers). A print's
//! price is its VWAP, kept as the exact rational `Σ ticks×lots / Σ lots`, so `price >= ask` is an
//! integer comparison and never depends on float rounding.
//!
//! [`OrderFlowSource`] picks what the minute's flow is built from: the inference (the spec's
//! method) or the exchange's recorded taker side (Bybit `S`, Binance `m`). Both flows are always
//! computed, so a run on either source shows how far the other would have differed.

use std::cmp::Ordering;

use crate::quotes::Quote;

/// Nautilus's aggressor codes: the exchange's taker side, when the data has it.
pub const NO_AGGRESSOR: u8 = 0;
/// The buyer was the taker.
pub const BUYER: u8 = 1;
/// The seller was the taker.
pub const SELLER: u8 = 2;

/// Where the minute's order flow comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderFlowSource {
    /// The quote rule against the latest quote strictly before each print, the tick rule when
    /// ambiguous (specv2 §5.7).
    #[default]
    Inferred,
    /// The exchange's taker side of each trade; a trade without one takes its print's inferred
    /// sign and counts as ambiguous when the quote rule could not sign that print.
    Exchange,
}

impl OrderFlowSource {
    /// From its configuration name (`inferred` / `exchange`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "inferred" => Some(Self::Inferred),
            "exchange" => Some(Self::Exchange),
            _ => None,
        }
    }
}

/// The trades of one millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct Print {
    /// Millisecond shared by its trades.
    pub ts_ms: i64,
    /// Σ size, lots.
    pub lots: i64,
    /// Σ ticks × lots (exact VWAP numerator).
    pub notional: i128,
    /// Trades the exchange marks buyer-initiated.
    pub buyers: u64,
    /// Trades the exchange marks seller-initiated.
    pub sellers: u64,
    /// Trades without a taker side in the data.
    pub unknown: u64,
    /// Lots the exchange marks buyer-initiated.
    pub buy_lots: i64,
    /// Lots the exchange marks seller-initiated.
    pub sell_lots: i64,
}

impl Print {
    /// An empty print at `ts_ms`.
    pub fn new(ts_ms: i64) -> Self {
        Self { ts_ms, lots: 0, notional: 0, buyers: 0, sellers: 0, unknown: 0, buy_lots: 0, sell_lots: 0 }
    }

    /// Adds one trade.
    #[inline]
    pub fn add(&mut self, price: i64, lots: i64, side: u8) {
        self.lots += lots;
        self.notional += price as i128 * lots as i128;
        match side {
            BUYER => {
                self.buyers += 1;
                self.buy_lots += lots;
            }
            SELLER => {
                self.sellers += 1;
                self.sell_lots += lots;
            }
            _ => self.unknown += 1,
        }
    }

    /// VWAP compared with a price in ticks, exactly.
    pub fn cmp_tick(&self, tick: i64) -> Ordering {
        self.notional.cmp(&(tick as i128 * self.lots as i128))
    }

    /// VWAP compared with another VWAP `num / den`, exactly.
    fn cmp_vwap(&self, num: i128, den: i64) -> Ordering {
        (self.notional * den as i128).cmp(&(num * self.lots as i128))
    }
}

/// Why an inferred sign disagreed with the exchange's taker side (first that applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The print merged buyer- and seller-initiated trades: one sign cannot fit both.
    SameTimestamp = 0,
    /// The quote used was older than the staleness threshold.
    StaleQuote = 1,
    /// The quote rule was ambiguous and the tick rule guessed wrong.
    TickRuleFallback = 2,
    /// The quote rule was ambiguous and no sign was given (inside the spread).
    InsideSpread = 3,
    /// A fresh quote pointed the other way (quote/trade feed latency).
    QuoteRule = 4,
}

/// Number of [`Cause`]s.
pub const CAUSES: usize = 5;

/// The outcome for one print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// Sign from the quote rule alone: +1 at/above the ask, -1 at/below the bid, 0 ambiguous.
    pub quote_sign: i8,
    /// Final sign after the fallback (equals `quote_sign` unless that was 0).
    pub sign: i8,
    /// `print ms - quote ms` of the quote used, if there was one.
    pub staleness_ms: Option<i64>,
}

/// Classifies prints in time order; remembers the previous print for the tick rule.
#[derive(Debug, Clone)]
pub struct Classifier {
    use_fallback: bool,
    previous: Option<(i128, i64, i8)>, // (notional, lots, final sign) of the previous print
}

impl Classifier {
    /// A classifier; `use_fallback` turns on the zero-tick-continuation tick rule.
    pub fn new(use_fallback: bool) -> Self {
        Self { use_fallback, previous: None }
    }

    /// Signs `print` against `quote`, the latest quote strictly before it.
    pub fn classify(&mut self, print: &Print, quote: Option<&Quote>) -> Classified {
        let quote_sign = match quote {
            Some(q) if print.cmp_tick(q.ask) != Ordering::Less => 1,
            Some(q) if print.cmp_tick(q.bid) != Ordering::Greater => -1,
            _ => 0,
        };
        let sign = if quote_sign != 0 || !self.use_fallback {
            quote_sign
        } else {
            match self.previous {
                None => 0,
                Some((num, den, prev_sign)) => match print.cmp_vwap(num, den) {
                    Ordering::Greater => 1,
                    Ordering::Less => -1,
                    Ordering::Equal => prev_sign,
                },
            }
        };
        self.previous = Some((print.notional, print.lots, sign));
        Classified { quote_sign, sign, staleness_ms: quote.map(|q| print.ts_ms - q.ts_ms) }
    }
}

/// Order-flow figures of one minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowMinute {
    /// The configured source's flow, lots: `of_1m`.
    pub of_lots: i64,
    /// The configured source's ambiguous volume, lots.
    pub ambiguous_lots: i64,
    /// Σ inferred sign × print size, lots.
    pub of_inferred_lots: i64,
    /// Σ buyer lots − seller lots as the exchange recorded them.
    pub of_exchange_lots: i64,
    /// Trades whose print's sign equals the exchange's taker side.
    pub agree: u64,
    /// Trades whose print's sign differs from the exchange's taker side.
    pub disagree: u64,
    /// Trades without a taker side in the data.
    pub unknown: u64,
    /// Disagreements by [`Cause`].
    pub causes: [u64; CAUSES],
    /// Largest staleness of a quote used this minute, ms.
    pub max_staleness_ms: Option<i64>,
}

impl FlowMinute {
    /// Books a classified print.
    pub fn add(&mut self, print: &Print, c: &Classified, max_staleness_ms: i64, source: OrderFlowSource) {
        let inferred = c.sign as i64 * print.lots;
        let exchange = print.buy_lots - print.sell_lots;
        self.of_inferred_lots += inferred;
        self.of_exchange_lots += exchange;
        match source {
            OrderFlowSource::Inferred => {
                self.of_lots += inferred;
                if c.quote_sign == 0 {
                    self.ambiguous_lots += print.lots;
                }
            }
            OrderFlowSource::Exchange => {
                let unknown_lots = print.lots - print.buy_lots - print.sell_lots;
                self.of_lots += exchange + c.sign as i64 * unknown_lots;
                if c.quote_sign == 0 {
                    self.ambiguous_lots += unknown_lots;
                }
            }
        }
        if let Some(s) = c.staleness_ms {
            self.max_staleness_ms = Some(self.max_staleness_ms.map_or(s, |m| m.max(s)));
        }
        let (agree, disagree) = match c.sign {
            1 => (print.buyers, print.sellers),
            -1 => (print.sellers, print.buyers),
            _ => (0, print.buyers + print.sellers),
        };
        self.agree += agree;
        self.disagree += disagree;
        self.unknown += print.unknown;
        if disagree > 0 {
            let cause = if print.buyers > 0 && print.sellers > 0 {
                Cause::SameTimestamp
            } else if c.staleness_ms.is_some_and(|s| s > max_staleness_ms) {
                Cause::StaleQuote
            } else if c.quote_sign == 0 && c.sign != 0 {
                Cause::TickRuleFallback
            } else if c.quote_sign == 0 {
                Cause::InsideSpread
            } else {
                Cause::QuoteRule
            };
            self.causes[cause as usize] += disagree;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(ts_ms: i64, bid: i64, ask: i64) -> Quote {
        Quote { ts_ms, bid, ask, bid_lots: 10, ask_lots: 10 }
    }

    fn print(ts_ms: i64, trades: &[(i64, i64, u8)]) -> Print {
        let mut p = Print::new(ts_ms);
        for &(price, lots, side) in trades {
            p.add(price, lots, side);
        }
        p
    }

    /// specv2 §20.4 with prices in half-units (tick 0.5): bid 50000 = 100000, ask 50001 = 100002.
    #[test]
    fn worked_example_20_4() {
        let q = quote(0, 100_000, 100_002);
        let trades = [(100_002, 100), (100_000, 200), (100_001, 150), (100_002, 250)];
        for (fallback, of, ambiguous) in [(true, 300, 150), (false, 150, 150)] {
            let mut classifier = Classifier::new(fallback);
            let mut flow = FlowMinute::default();
            for (i, &(price, lots)) in trades.iter().enumerate() {
                let p = print(1000 * (i as i64 + 1), &[(price, lots, NO_AGGRESSOR)]);
                let c = classifier.classify(&p, Some(&q));
                flow.add(&p, &c, 250, OrderFlowSource::Inferred);
            }
            assert_eq!(flow.of_lots, of, "OF_1m = 0.3 with the fallback, 0.15 without");
            assert_eq!(flow.ambiguous_lots, ambiguous, "ambiguous 0.15 of 0.7");
        }
    }

    #[test]
    fn quote_rule_boundaries_are_inclusive() {
        let q = quote(0, 100, 101);
        let mut c = Classifier::new(false);
        assert_eq!(c.classify(&print(1, &[(101, 1, 0)]), Some(&q)).sign, 1);
        assert_eq!(c.classify(&print(2, &[(102, 1, 0)]), Some(&q)).sign, 1);
        assert_eq!(c.classify(&print(3, &[(100, 1, 0)]), Some(&q)).sign, -1);
        // VWAP 100.5 exactly between: ambiguous, never rounded onto a side.
        assert_eq!(c.classify(&print(4, &[(100, 1, 0), (101, 1, 0)]), Some(&q)).sign, 0);
        // VWAP a hair under the ask (1 lot at 100, 10^9 at 101) is still inside.
        assert_eq!(c.classify(&print(5, &[(100, 1, 0), (101, 1_000_000_000, 0)]), Some(&q)).sign, 0);
        assert_eq!(c.classify(&print(6, &[(101, 5, 0)]), None).sign, 0, "no quote: ambiguous");
    }

    #[test]
    fn tick_rule_zero_tick_continuation() {
        let q = quote(0, 100, 104); // wide: everything inside is ambiguous
        let mut c = Classifier::new(true);
        assert_eq!(c.classify(&print(1, &[(102, 1, 0)]), Some(&q)).sign, 0, "very first print");
        assert_eq!(c.classify(&print(2, &[(103, 1, 0)]), Some(&q)).sign, 1, "uptick");
        assert_eq!(c.classify(&print(3, &[(103, 1, 0)]), Some(&q)).sign, 1, "zero tick keeps +1");
        assert_eq!(c.classify(&print(4, &[(101, 1, 0)]), Some(&q)).sign, -1, "downtick");
        // A quote-rule sign also becomes the previous sign for the next zero tick.
        assert_eq!(c.classify(&print(5, &[(104, 1, 0)]), Some(&q)).sign, 1);
        assert_eq!(c.classify(&print(6, &[(104, 1, 0)]), Some(&quote(5, 103, 105))).sign, 1);
    }

    #[test]
    fn agreement_and_causes() {
        let fresh = quote(990, 100, 101);
        let mut c = Classifier::new(true);
        let mut flow = FlowMinute::default();
        // Mixed-side print at the ask: +1 agrees with 2 buyers, disagrees with 1 seller (same ts).
        let p = print(1000, &[(101, 1, BUYER), (101, 1, SELLER), (101, 1, BUYER)]);
        flow.add(&p, &c.classify(&p, Some(&fresh)), 250, OrderFlowSource::Inferred);
        // Seller-marked print at the ask against a fresh quote: latency.
        let p = print(1001, &[(101, 2, SELLER)]);
        flow.add(&p, &c.classify(&p, Some(&fresh)), 250, OrderFlowSource::Inferred);
        // The same against a 300 ms old quote: stale.
        let p = print(1290, &[(101, 2, SELLER)]);
        flow.add(&p, &c.classify(&p, Some(&fresh)), 250, OrderFlowSource::Inferred);
        // Inside the spread, tick rule says up (+1), exchange says seller: fallback.
        let wide = quote(1295, 98, 104);
        let p = print(1300, &[(102, 1, SELLER), (102, 1, NO_AGGRESSOR)]);
        flow.add(&p, &c.classify(&p, Some(&wide)), 250, OrderFlowSource::Inferred);
        assert_eq!((flow.agree, flow.disagree, flow.unknown), (2, 4, 1));
        // same timestamp, stale, fallback, inside, quote rule
        assert_eq!(flow.causes, [1, 1, 1, 0, 1]);
        assert_eq!(flow.max_staleness_ms, Some(300));
        assert_eq!(flow.ambiguous_lots, 2);
    }

    #[test]
    fn exchange_source_reads_the_taker_side_and_falls_back_per_trade() {
        // A print at the bid that the exchange says buyers lifted (latency), and an inside print
        // whose trades carry no side.
        let q = quote(0, 100, 104);
        let mut c = Classifier::new(false);
        let (mut inferred, mut exchange) = (FlowMinute::default(), FlowMinute::default());
        let at_bid = print(10, &[(100, 3, BUYER), (100, 1, SELLER)]);
        let inside = print(20, &[(102, 5, NO_AGGRESSOR)]);
        for p in [&at_bid, &inside] {
            let k = c.classify(p, Some(&q));
            inferred.add(p, &k, 250, OrderFlowSource::Inferred);
            exchange.add(p, &k, 250, OrderFlowSource::Exchange);
        }
        // Inferred: the bid print is -4, the inside one unsigned (no fallback) and ambiguous.
        assert_eq!((inferred.of_lots, inferred.ambiguous_lots), (-4, 5));
        // Exchange: +3 - 1 from the recorded sides; the unsided inside print signs 0 and stays
        // ambiguous (its own sides are unknown).
        assert_eq!((exchange.of_lots, exchange.ambiguous_lots), (2, 5));
        for f in [&inferred, &exchange] {
            assert_eq!((f.of_inferred_lots, f.of_exchange_lots), (-4, 2), "both flows always reported");
        }
        // Where every trade has a side the exchange source has no ambiguity at all.
        let mut all_sided = FlowMinute::default();
        let p = print(30, &[(102, 2, SELLER)]);
        all_sided.add(&p, &c.classify(&p, Some(&q)), 250, OrderFlowSource::Exchange);
        assert_eq!((all_sided.of_lots, all_sided.ambiguous_lots), (-2, 0));
    }
}
