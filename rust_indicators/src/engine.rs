//! The feature engine: trades and quotes in, one [`FeatureRow`] per UTC minute out.
//!
//! Events are fed in time order (`on_trade`, `on_quote`); a minute is closed when an event of a
//! later minute arrives, when the clock says so (`close_through`, e.g. a timer at the minute
//! boundary) or at the end of the data (`finish`). Minutes without events in between are closed
//! too: every minute from the first event's to the last one's gets a row.
//!
//! Cost: O(1) amortised per trade and per quote (a few integer updates and one hash-map entry);
//! once per minute the profile is aggregated and its value area computed, O(bins). Memory is
//! bounded by the window. All logic runs on integer milliseconds, ticks and lots
//! (`docs/features.md` in the repository is the full contract).

use std::collections::HashMap;

use crate::bars::MinuteBar;
use crate::bvc::Bvc;
use crate::config::{close_time_ms, minute_of, ns_to_ms, ConfigError, EngineConfig, Grid, MS_PER_MINUTE};
use crate::order_flow::{Cause, Classifier, FlowMinute, Print};
use crate::profile::RollingProfile;
use crate::quotes::{ImbalanceEma, Quote, QuoteBook, SpreadWindow};
use crate::volatility::{computed_width_ticks, AppliedWidth, Volatility};

/// Defines [`FeatureRow`], [`FEATURE_COLUMNS`] and [`columns`] from one list, so a column is
/// named once: its field, its place in the output and its column vector cannot drift apart.
macro_rules! feature_row {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        /// One closed minute. Prices and sizes in the instrument's units; NaN where undefined.
        /// Each field is the column of the same name in `docs/features.md`.
        #[derive(Debug, Clone, PartialEq)]
        #[cfg_attr(feature = "python", pyo3::pyclass(get_all, frozen, module = "rust_indicators"))]
        #[allow(missing_docs)] // each field is the column of the same name in docs/features.md
        pub struct FeatureRow {
            $($(#[$doc])* pub $name: $ty,)*
        }

        /// Column names of a [`FeatureRow`], in order: specv2 §3.3 `bars_1m` + `features_1m`,
        /// then the engine's additions.
        pub const FEATURE_COLUMNS: &[&str] = &[$(stringify!($name)),*];

        /// Rows as named columns, in [`FEATURE_COLUMNS`] order (the batch outputs).
        pub fn columns(rows: &[FeatureRow]) -> Vec<(&'static str, Column)> {
            vec![$((stringify!($name), <$ty as ColumnType>::column(rows.iter().map(|r| r.$name).collect()))),*]
        }
    };
}

/// One output column: the values of one field over a run of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Integer column (times, counts, bin keys in ticks are not used: keys are prices).
    I64(Vec<i64>),
    /// Float column (prices, sizes, ratios; NaN where undefined).
    F64(Vec<f64>),
    /// Boolean column.
    Bool(Vec<bool>),
}

/// The field types a [`FeatureRow`] may hold, and how a column of them is built.
pub trait ColumnType: Sized {
    /// The column of these values.
    fn column(values: Vec<Self>) -> Column;
}

impl ColumnType for i64 {
    fn column(values: Vec<Self>) -> Column {
        Column::I64(values)
    }
}

impl ColumnType for f64 {
    fn column(values: Vec<Self>) -> Column {
        Column::F64(values)
    }
}

impl ColumnType for bool {
    fn column(values: Vec<Self>) -> Column {
        Column::Bool(values)
    }
}

feature_row! {
    ts_min: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    vwap: f64,
    trade_count: i64,
    bid_px_close: f64,
    ask_px_close: f64,
    bid_sz_close: f64,
    ask_sz_close: f64,
    spread_close: f64,
    spread_avg_60m: f64,
    mid_close: f64,
    sigma_240: f64,
    bin_width: f64,
    /// Centre of the POC bin (`poc_bin` + half the applied width).
    poc: f64,
    /// Upper edge of the highest value-area bin (`vah_bin` + the applied width).
    vah: f64,
    /// Lower edge of the lowest value-area bin (`val_bin`).
    val: f64,
    va_coverage: f64,
    va_bin_count: i64,
    of_1m: f64,
    of_norm_1m: f64,
    qimb_close: f64,
    qimb_ema_60s: f64,
    ambiguous_trade_frac_1m: f64,
    total_volume_4h: f64,
    va_valid: bool,
    bin_width_applied: f64,
    /// Key (lower edge) of the POC bin.
    poc_bin: f64,
    /// Key (lower edge) of the lowest value-area bin.
    val_bin: f64,
    /// Key (lower edge) of the highest value-area bin.
    vah_bin: f64,
    /// Order flow inferred from trades against quotes, whatever `order_flow_source` says.
    of_1m_inferred: f64,
    /// Order flow from the exchange's recorded taker side (trades without one count 0).
    of_1m_exchange: f64,
    side_agree: i64,
    side_disagree: i64,
    side_unknown: i64,
    disagree_same_ts: i64,
    disagree_stale: i64,
    disagree_fallback: i64,
    disagree_inside: i64,
    disagree_quote: i64,
    quote_staleness_max_ms: f64,
    bvc_net: f64,
}

/// Streaming feature engine; see the module docs.
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    cfg: EngineConfig,
    prices: Grid,
    sizes: Grid,
    minute: Option<i64>,
    last_ms: Option<i64>,
    late_events: u64,
    // the open minute
    bar: MinuteBar,
    traded: HashMap<i64, i64>, // price ticks -> lots
    print: Option<Print>,
    flow: FlowMinute,
    // state across minutes
    book: QuoteBook,
    ema: ImbalanceEma,
    spreads: SpreadWindow,
    classifier: Classifier,
    volatility: Volatility,
    width: AppliedWidth,
    profile: RollingProfile,
    bvc: Bvc,
    // output
    rows: Vec<FeatureRow>,
    last_row: Option<FeatureRow>,
    last_traded: Vec<i64>, // sorted distinct price ticks of the last closed minute
    minutes_closed: u64,
}

impl FeatureEngine {
    /// A fresh engine.
    pub fn new(cfg: EngineConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            prices: Grid::new(cfg.tick_size),
            sizes: Grid::new(cfg.size_step),
            minute: None,
            last_ms: None,
            late_events: 0,
            bar: MinuteBar::default(),
            traded: HashMap::new(),
            print: None,
            flow: FlowMinute::default(),
            book: QuoteBook::default(),
            ema: ImbalanceEma::new(cfg.qimb_ema_span_seconds),
            spreads: SpreadWindow::new(cfg.spread_lookback_minutes),
            classifier: Classifier::new(cfg.use_tick_rule_fallback),
            volatility: Volatility::new(cfg.rolling_window_minutes),
            width: AppliedWidth::new(cfg.rebucket_change_pct, cfg.rebucket_interval_minutes),
            profile: RollingProfile::new(cfg.rolling_window_minutes, cfg.base_bin_ticks),
            bvc: Bvc::new(cfg.lookback_bvc),
            rows: Vec::new(),
            last_row: None,
            last_traded: Vec::new(),
            minutes_closed: 0,
            cfg,
        })
    }

    /// Two time-ordered streams merged (trades first at equal milliseconds) and fed in; no
    /// minute is closed beyond what the events close. Feeding consecutive chunks cut at the same
    /// millisecond in both streams is the same as feeding the whole (the streamed feature pass).
    /// Array lengths are the caller's to check.
    #[allow(clippy::too_many_arguments)]
    pub fn on_arrays(
        &mut self,
        trade_ts: &[i64],
        trade_price: &[f64],
        trade_size: &[f64],
        trade_side: &[u8],
        quote_ts: &[i64],
        bid: &[f64],
        bid_size: &[f64],
        ask: &[f64],
        ask_size: &[f64],
    ) {
        let (n, k) = (trade_ts.len(), quote_ts.len());
        let (mut i, mut j) = (0, 0);
        while i < n || j < k {
            let trade_next = j == k || (i < n && ns_to_ms(trade_ts[i]) <= ns_to_ms(quote_ts[j]));
            if trade_next {
                self.on_trade(trade_ts[i], trade_price[i], trade_size[i], trade_side[i]);
                i += 1;
            } else {
                self.on_quote(quote_ts[j], bid[j], bid_size[j], ask[j], ask_size[j]);
                j += 1;
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// A trade: exchange time (ns), price, size, taker side (0 none, 1 buyer, 2 seller).
    #[inline]
    pub fn on_trade(&mut self, ts_ns: i64, price: f64, size: f64, side: u8) {
        let ts = self.admit(ts_ns);
        let ticks = self.prices.units(price);
        let lots = self.sizes.units(size);
        self.bar.add(ticks, lots);
        *self.traded.entry(ticks).or_insert(0) += lots;
        self.print.get_or_insert_with(|| Print::new(ts)).add(ticks, lots, side);
    }

    /// An L1 snapshot: exchange time (ns), best bid and size, best ask and size.
    #[inline]
    pub fn on_quote(&mut self, ts_ns: i64, bid: f64, bid_size: f64, ask: f64, ask_size: f64) {
        let ts = self.admit(ts_ns);
        let quote = Quote {
            ts_ms: ts,
            bid: self.prices.units(bid),
            ask: self.prices.units(ask),
            bid_lots: self.sizes.units(bid_size),
            ask_lots: self.sizes.units(ask_size),
        };
        self.book.on_quote(quote);
        self.ema.on_quote(ts, quote.imbalance());
    }

    /// The clock reached `ts_ns` (no event earlier than it will come): closes every minute that
    /// ended before it. A timer at each minute boundary calls this to get the minute's row at once.
    pub fn close_through(&mut self, ts_ns: i64) {
        let now = ns_to_ms(ts_ns);
        if self.last_ms.is_none_or(|last| now > last) {
            self.advance(now);
            self.last_ms = Some(now);
        }
    }

    /// End of data: closes the open minute.
    pub fn finish(&mut self) {
        self.finish_print();
        if let Some(m) = self.minute.take() {
            self.close_minute(m);
        }
    }

    /// Rows closed since the last call, oldest first.
    pub fn drain_rows(&mut self) -> Vec<FeatureRow> {
        std::mem::take(&mut self.rows)
    }

    /// The last closed minute's row.
    pub fn last_row(&self) -> Option<&FeatureRow> {
        self.last_row.as_ref()
    }

    /// Minutes closed so far.
    pub fn minutes_closed(&self) -> u64 {
        self.minutes_closed
    }

    /// Events that arrived with a timestamp earlier than one already seen; they are applied at
    /// the latest time seen (live feeds can interleave two streams slightly out of order).
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Distance from `level` (price) to the nearest trade price of the last closed minute, in
    /// price units; `None` if that minute had no trades. The boundary-crossing check of specv2
    /// §6.3 asks whether this is within one average spread.
    pub fn nearest_trade_distance(&self, level: f64) -> Option<f64> {
        let level_ticks = level / self.prices.value(1.0);
        let i = self.last_traded.partition_point(|&t| (t as f64) < level_ticks);
        let below = i.checked_sub(1).map(|j| level_ticks - self.last_traded[j] as f64);
        let above = self.last_traded.get(i).map(|&t| t as f64 - level_ticks);
        let nearest = match (below, above) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(self.prices.value(nearest))
    }

    // -- time -----------------------------------------------------------------------------------

    /// Event time in ms, never earlier than the last one; closes what the new time leaves behind.
    #[inline]
    fn admit(&mut self, ts_ns: i64) -> i64 {
        let mut ts = ns_to_ms(ts_ns);
        if let Some(last) = self.last_ms {
            if ts < last {
                ts = last;
                self.late_events += 1;
            }
        }
        self.advance(ts);
        self.last_ms = Some(ts);
        ts
    }

    #[inline]
    fn advance(&mut self, ts: i64) {
        if self.print.as_ref().is_some_and(|p| p.ts_ms < ts) {
            self.finish_print();
        }
        let m = minute_of(ts);
        match self.minute {
            None => self.minute = Some(m),
            Some(open) if m > open => {
                for k in open..m {
                    self.close_minute(k);
                }
                self.minute = Some(m);
            }
            Some(_) => {}
        }
    }

    /// Classifies the pending print against the latest quote strictly before it.
    fn finish_print(&mut self) {
        if let Some(print) = self.print.take() {
            let quote = self.book.strictly_before(print.ts_ms);
            let c = self.classifier.classify(&print, quote);
            self.flow.add(&print, &c, self.cfg.max_quote_staleness_ms, self.cfg.order_flow_source);
        }
    }

    // -- the minute's row -----------------------------------------------------------------------

    fn close_minute(&mut self, minute: i64) {
        let cfg = &self.cfg;
        let p = |ticks: f64| self.prices.value(ticks);
        let s = |lots: f64| self.sizes.value(lots);
        let nan = f64::NAN;

        let snap = self.book.latest().copied();
        let ema = self.ema.advance(close_time_ms(minute));
        let spread_avg = self.spreads.on_minute(minute, snap.map(|q| q.spread_ticks()));
        let mid_ticks = snap.map(|q| (q.bid + q.ask) as f64 / 2.0);
        let sigma = self.volatility.on_minute(minute, mid_ticks);
        let computed = computed_width_ticks(cfg, mid_ticks, sigma);
        let applied = self.width.update(minute, computed);

        let mut traded: Vec<(i64, i64)> = self.traded.drain().collect();
        traded.sort_unstable();
        self.profile.push_minute(minute, &traded);
        let va = self
            .profile
            .value_area(applied, cfg.va_fraction)
            .expect("the profile is a valid histogram by construction");
        let va_bins = va.map_or(0, |v| v.bins_with_volume);

        let bar = std::mem::take(&mut self.bar);
        let flow = std::mem::take(&mut self.flow);
        let volume = bar.volume_lots as f64;
        let ratio = |x: i64| if bar.volume_lots > 0 { x as f64 / volume } else { nan };
        let bvc = if cfg.use_bvc { self.bvc.on_minute(minute, bar.ohlc.map(|o| o[3]), s(volume)) } else { None };
        let ohlc = bar.ohlc.map(|o| o.map(|t| p(t as f64)));

        let row = FeatureRow {
            ts_min: minute * MS_PER_MINUTE,
            open: ohlc.map_or(nan, |o| o[0]),
            high: ohlc.map_or(nan, |o| o[1]),
            low: ohlc.map_or(nan, |o| o[2]),
            close: ohlc.map_or(nan, |o| o[3]),
            volume: s(volume),
            vwap: bar.vwap_ticks().map_or(nan, p),
            trade_count: bar.trade_count as i64,
            bid_px_close: snap.map_or(nan, |q| p(q.bid as f64)),
            ask_px_close: snap.map_or(nan, |q| p(q.ask as f64)),
            bid_sz_close: snap.map_or(nan, |q| s(q.bid_lots as f64)),
            ask_sz_close: snap.map_or(nan, |q| s(q.ask_lots as f64)),
            spread_close: snap.map_or(nan, |q| p(q.spread_ticks() as f64)),
            spread_avg_60m: spread_avg.map_or(nan, p),
            mid_close: mid_ticks.map_or(nan, p),
            sigma_240: sigma.unwrap_or(nan),
            bin_width: p(computed as f64),
            poc: va.map_or(nan, |v| p((2 * v.poc + applied) as f64 / 2.0)),
            vah: va.map_or(nan, |v| p((v.vah + applied) as f64)),
            val: va.map_or(nan, |v| p(v.val as f64)),
            va_coverage: va.map_or(nan, |v| v.coverage()),
            va_bin_count: va_bins as i64,
            of_1m: s(flow.of_lots as f64),
            of_norm_1m: ratio(flow.of_lots),
            qimb_close: snap.map_or(nan, |q| q.imbalance()),
            qimb_ema_60s: ema.unwrap_or(nan),
            ambiguous_trade_frac_1m: ratio(flow.ambiguous_lots),
            total_volume_4h: s(self.profile.total_lots() as f64),
            va_valid: va_bins >= cfg.min_va_bins,
            bin_width_applied: p(applied as f64),
            poc_bin: va.map_or(nan, |v| p(v.poc as f64)),
            val_bin: va.map_or(nan, |v| p(v.val as f64)),
            vah_bin: va.map_or(nan, |v| p(v.vah as f64)),
            of_1m_inferred: s(flow.of_inferred_lots as f64),
            of_1m_exchange: s(flow.of_exchange_lots as f64),
            side_agree: flow.agree as i64,
            side_disagree: flow.disagree as i64,
            side_unknown: flow.unknown as i64,
            disagree_same_ts: flow.causes[Cause::SameTimestamp as usize] as i64,
            disagree_stale: flow.causes[Cause::StaleQuote as usize] as i64,
            disagree_fallback: flow.causes[Cause::TickRuleFallback as usize] as i64,
            disagree_inside: flow.causes[Cause::InsideSpread as usize] as i64,
            disagree_quote: flow.causes[Cause::QuoteRule as usize] as i64,
            quote_staleness_max_ms: flow.max_staleness_ms.map_or(nan, |x| x as f64),
            bvc_net: bvc.unwrap_or(nan),
        };
        self.last_traded = traded.into_iter().map(|(t, _)| t).collect();
        self.minutes_closed += 1;
        self.last_row = Some(row.clone());
        self.rows.push(row);
    }
}

/// Runs the engine over two time-ordered streams (trades first at equal milliseconds) and
/// returns every minute's row: the batch entry point for offline work.
#[allow(clippy::too_many_arguments)]
pub fn compute_features(
    cfg: EngineConfig,
    trade_ts: &[i64],
    trade_price: &[f64],
    trade_size: &[f64],
    trade_side: &[u8],
    quote_ts: &[i64],
    bid: &[f64],
    bid_size: &[f64],
    ask: &[f64],
    ask_size: &[f64],
) -> Result<Vec<FeatureRow>, ConfigError> {
    let n = trade_ts.len();
    if trade_price.len() != n || trade_size.len() != n || trade_side.len() != n {
        return Err(ConfigError("trade arrays must have the same length".into()));
    }
    let k = quote_ts.len();
    if bid.len() != k || bid_size.len() != k || ask.len() != k || ask_size.len() != k {
        return Err(ConfigError("quote arrays must have the same length".into()));
    }
    let mut engine = FeatureEngine::new(cfg)?;
    engine.on_arrays(trade_ts, trade_price, trade_size, trade_side, quote_ts, bid, bid_size, ask, ask_size);
    engine.finish();
    Ok(engine.drain_rows())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN_NS: i64 = 60_000_000_000;
    const MS: i64 = 1_000_000;

    fn engine() -> FeatureEngine {
        FeatureEngine::new(EngineConfig { min_va_bins: 2, ..Default::default() }).unwrap()
    }

    #[test]
    fn worked_example_20_4_in_one_minute() {
        // Tick 0.5 so that 50000.5 is on the grid; sizes in 0.01 lots.
        let cfg = EngineConfig { tick_size: 0.5, size_step: 0.01, ..Default::default() };
        let mut e = FeatureEngine::new(cfg).unwrap();
        let t0 = 1_000 * MIN_NS;
        e.on_quote(t0, 50_000.0, 1.0, 50_001.0, 1.0);
        for (sec, price, size) in [(1, 50_001.0, 0.1), (2, 50_000.0, 0.2), (3, 50_000.5, 0.15), (4, 50_001.0, 0.25)] {
            e.on_trade(t0 + sec * 1_000 * MS, price, size, 0);
        }
        e.finish();
        let row = e.last_row().unwrap();
        assert!((row.of_1m - 0.3).abs() < 1e-12);
        assert!((row.of_norm_1m - 0.3 / 0.7).abs() < 1e-12);
        assert!((row.ambiguous_trade_frac_1m - 0.15 / 0.7).abs() < 1e-12);
        assert!((row.volume - 0.7).abs() < 1e-12);
        assert_eq!(row.trade_count, 4);
    }

    #[test]
    fn rows_for_every_minute_including_gaps() {
        let mut e = engine();
        e.on_quote(10 * MIN_NS, 100.0, 1.0, 100.1, 2.0);
        e.on_trade(10 * MIN_NS + 5 * MS, 100.1, 0.5, 1);
        e.on_trade(13 * MIN_NS, 100.0, 0.5, 2);
        e.finish();
        let rows = e.drain_rows();
        assert_eq!(rows.iter().map(|r| r.ts_min / 60_000).collect::<Vec<_>>(), vec![10, 11, 12, 13]);
        assert!(rows[1].open.is_nan() && rows[1].volume == 0.0 && rows[1].trade_count == 0);
        assert_eq!(rows[1].bid_px_close, 100.0, "the close snapshot is the last quote, however old");
        assert_eq!(rows[2].total_volume_4h, 0.5);
        assert_eq!(rows[3].total_volume_4h, 1.0);
        assert!(rows[1].of_norm_1m.is_nan() && rows[1].of_1m == 0.0);
    }

    #[test]
    fn same_millisecond_quote_does_not_classify_the_trade() {
        for quote_first in [true, false] {
            let mut e = engine();
            let t = 5 * MIN_NS;
            e.on_quote(t, 100.0, 1.0, 100.2, 1.0);
            // At t+1 ms the book moves up to 100.2/100.3 and a trade prints at 100.2.
            if quote_first {
                e.on_quote(t + MS, 100.2, 1.0, 100.3, 1.0);
                e.on_trade(t + MS, 100.2, 1.0, 1);
            } else {
                e.on_trade(t + MS, 100.2, 1.0, 1);
                e.on_quote(t + MS, 100.2, 1.0, 100.3, 1.0);
            }
            e.finish();
            // Against the earlier quote (ask 100.2) the trade is a buy.
            let row = e.last_row().unwrap();
            assert_eq!(row.of_1m, 1.0, "quote_first={quote_first}");
            assert_eq!(row.side_agree, 1);
            assert_eq!(row.bid_px_close, 100.2);
        }
    }

    #[test]
    fn split_trades_are_one_print_and_stale_quotes_are_used_and_reported() {
        let mut e = engine();
        let t = 7 * MIN_NS;
        e.on_quote(t, 100.0, 1.0, 100.1, 1.0);
        // 400 ms later two fills of one buy order at the ask, and a seller-marked fill in the same ms.
        for (price, size, side) in [(100.1, 0.2, 1), (100.1, 0.3, 1), (100.1, 0.1, 2)] {
            e.on_trade(t + 400 * MS, price, size, side);
        }
        e.finish();
        let row = e.last_row().unwrap();
        assert!((row.of_1m - 0.6).abs() < 1e-12, "one print, one sign");
        assert_eq!((row.side_agree, row.side_disagree, row.disagree_same_ts), (2, 1, 1));
        assert_eq!(row.quote_staleness_max_ms, 400.0);
    }

    #[test]
    fn late_events_are_applied_at_the_latest_time() {
        let mut e = engine();
        e.on_trade(3 * MIN_NS + 10 * MS, 100.0, 1.0, 1);
        e.on_trade(3 * MIN_NS + 5 * MS, 100.1, 1.0, 1); // 5 ms late: joins the print at 10 ms
        e.finish();
        assert_eq!(e.late_events(), 1);
        assert_eq!(e.last_row().unwrap().trade_count, 2);
    }

    #[test]
    fn close_through_emits_the_minute_at_the_boundary() {
        let mut e = engine();
        e.on_quote(MIN_NS, 100.0, 1.0, 100.1, 1.0);
        e.on_trade(MIN_NS + 59_999 * MS, 100.1, 1.0, 1);
        e.close_through(2 * MIN_NS - 1); // still inside minute 1
        assert_eq!(e.minutes_closed(), 0);
        e.close_through(2 * MIN_NS);
        assert_eq!(e.minutes_closed(), 1);
        assert_eq!(e.last_row().unwrap().of_1m, 1.0);
        assert_eq!(e.nearest_trade_distance(100.0), Some(0.1));
        assert!((e.nearest_trade_distance(100.35).unwrap() - 0.25).abs() < 1e-9);
        e.on_trade(3 * MIN_NS, 100.0, 1.0, 2); // minute 2 was empty
        e.finish();
        assert_eq!(e.drain_rows().len(), 3);
        assert_eq!(e.nearest_trade_distance(100.0), Some(0.0));
    }

    #[test]
    fn batch_equals_streaming_whatever_the_equal_time_order() {
        let trades = [(MIN_NS + 5 * MS, 100.1, 0.3, 1u8), (MIN_NS + 5 * MS, 100.0, 0.1, 2), (2 * MIN_NS + 7 * MS, 100.2, 0.2, 1)];
        let quotes = [(MIN_NS, 100.0, 1.0, 100.1, 2.0), (MIN_NS + 5 * MS, 100.1, 1.0, 100.2, 1.0), (2 * MIN_NS, 100.1, 3.0, 100.2, 1.0)];
        let cols = |v: &[(i64, f64, f64, u8)]| -> (Vec<i64>, Vec<f64>, Vec<f64>, Vec<u8>) {
            (v.iter().map(|t| t.0).collect(), v.iter().map(|t| t.1).collect(), v.iter().map(|t| t.2).collect(), v.iter().map(|t| t.3).collect())
        };
        let (tt, tp, ts, tsd) = cols(&trades);
        let batch = compute_features(
            EngineConfig::default(),
            &tt,
            &tp,
            &ts,
            &tsd,
            &quotes.iter().map(|q| q.0).collect::<Vec<_>>(),
            &quotes.iter().map(|q| q.1).collect::<Vec<_>>(),
            &quotes.iter().map(|q| q.2).collect::<Vec<_>>(),
            &quotes.iter().map(|q| q.3).collect::<Vec<_>>(),
            &quotes.iter().map(|q| q.4).collect::<Vec<_>>(),
        )
        .unwrap();
        // Streaming with every quote ahead of the equal-time trades.
        let mut e = FeatureEngine::new(EngineConfig::default()).unwrap();
        e.on_quote(quotes[0].0, quotes[0].1, quotes[0].2, quotes[0].3, quotes[0].4);
        e.on_quote(quotes[1].0, quotes[1].1, quotes[1].2, quotes[1].3, quotes[1].4);
        e.on_trade(trades[0].0, trades[0].1, trades[0].2, trades[0].3);
        e.on_trade(trades[1].0, trades[1].1, trades[1].2, trades[1].3);
        e.on_quote(quotes[2].0, quotes[2].1, quotes[2].2, quotes[2].3, quotes[2].4);
        e.on_trade(trades[2].0, trades[2].1, trades[2].2, trades[2].3);
        e.finish();
        let streamed = e.drain_rows();
        assert_eq!(batch.len(), 2);
        for (a, b) in batch.iter().zip(&streamed) {
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        // The print at +5 ms (VWAP 100.075) is inside the quote before it (100.0/100.1): ambiguous.
        assert!((batch[0].ambiguous_trade_frac_1m - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_trade_on_a_bin_edge_belongs_to_the_bin_above() {
        // Width 5 ticks (0.5): 100.0 and 100.4 share bin 100.0; 100.5 opens bin 100.5.
        let cfg = EngineConfig { base_bin_ticks: 5, min_va_bins: 1, ..Default::default() };
        let mut e = FeatureEngine::new(cfg).unwrap();
        e.on_quote(0, 100.0, 1.0, 100.1, 1.0);
        for (ms, price, size) in [(1, 100.0, 1.0), (2, 100.4, 1.0), (3, 100.5, 3.0)] {
            e.on_trade(ms * MS, price, size, 1);
        }
        e.finish();
        let row = e.last_row().unwrap();
        assert_eq!((row.poc_bin, row.val_bin, row.vah_bin, row.va_bin_count), (100.5, 100.0, 100.5, 2));
        // Levels are the value area's price range: VAL the lowest bin's lower edge, VAH the
        // highest bin's upper edge, POC the centre of its bin.
        assert_eq!((row.val, row.poc, row.vah), (100.0, 100.75, 101.0));
        assert_eq!(row.bin_width, 0.5);
    }

    #[test]
    fn value_area_validity_follows_min_bins() {
        let cfg = EngineConfig { min_va_bins: 3, ..Default::default() };
        let mut e = FeatureEngine::new(cfg).unwrap();
        e.on_quote(0, 100.0, 1.0, 100.1, 1.0);
        e.on_trade(MS, 100.0, 1.0, 2);
        e.on_trade(2 * MS, 100.1, 2.0, 1);
        e.finish();
        let row = e.last_row().unwrap();
        assert_eq!((row.va_bin_count, row.va_valid), (2, false));
        assert_eq!((row.poc_bin, row.val_bin, row.vah_bin), (100.1, 100.0, 100.1));
        assert_eq!((row.val, row.vah), (100.0, 100.2));
        assert!((row.poc - 100.15).abs() < 1e-9, "centre of the one-tick bin 100.1");
        let empty = FeatureEngine::new(EngineConfig::default()).unwrap();
        assert!(empty.last_row().is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Event {
            Trade(i64, i64, i64, u8),        // ms, price ticks, lots, side
            Quote(i64, i64, i64, i64, i64), // ms, bid ticks, spread, bid lots, ask lots
        }

        fn events() -> impl Strategy<Value = Vec<Event>> {
            let event = prop_oneof![
                (0i64..400, 995i64..1006, 1i64..30, 0u8..3).prop_map(|(d, p, l, s)| Event::Trade(d, p, l, s)),
                (0i64..400, 995i64..1005, 1i64..3, 1i64..20, 1i64..20).prop_map(|(d, b, w, x, y)| Event::Quote(d, b, w, x, y)),
            ];
            // Deltas in units of 0.5 s, so minutes fill, gap and share milliseconds.
            prop::collection::vec(event, 1..300).prop_map(|v| {
                let mut t = 0i64;
                v.into_iter()
                    .map(|e| match e {
                        Event::Trade(d, p, l, s) => {
                            t += if d < 200 { 0 } else { d * 500 };
                            Event::Trade(t, p, l, s)
                        }
                        Event::Quote(d, b, w, x, y) => {
                            t += if d < 150 { 0 } else { d * 500 };
                            Event::Quote(t, b, w, x, y)
                        }
                    })
                    .collect()
            })
        }

        fn feed(e: &mut FeatureEngine, ev: &Event) {
            match *ev {
                Event::Trade(ms, p, l, s) => e.on_trade(ms * MS, p as f64 / 10.0, l as f64 / 1000.0, s),
                Event::Quote(ms, b, w, x, y) => e.on_quote(ms * MS, b as f64 / 10.0, x as f64 / 1000.0, (b + w) as f64 / 10.0, y as f64 / 1000.0),
            }
        }

        proptest! {
            /// Streaming with the clock ticking at random moments and equal-millisecond events in
            /// any order gives the batch engine's rows, bit for bit.
            #[test]
            fn streaming_equals_batch(evs in events(), window in 1usize..8, fallback: bool, reverse_ties: bool, clock in prop::collection::vec(0usize..300, 0..20)) {
                let cfg = EngineConfig { rolling_window_minutes: window, min_va_bins: 2, spread_lookback_minutes: 3, use_tick_rule_fallback: fallback, use_bvc: true, ..Default::default() };
                let (mut trades, mut quotes) = (vec![], vec![]);
                for ev in &evs {
                    match *ev {
                        Event::Trade(ms, p, l, s) => trades.push((ms * MS, p as f64 / 10.0, l as f64 / 1000.0, s)),
                        Event::Quote(ms, b, w, x, y) => quotes.push((ms * MS, b as f64 / 10.0, x as f64 / 1000.0, (b + w) as f64 / 10.0, y as f64 / 1000.0)),
                    }
                }
                let batch = compute_features(
                    cfg.clone(),
                    &trades.iter().map(|t| t.0).collect::<Vec<_>>(),
                    &trades.iter().map(|t| t.1).collect::<Vec<_>>(),
                    &trades.iter().map(|t| t.2).collect::<Vec<_>>(),
                    &trades.iter().map(|t| t.3).collect::<Vec<_>>(),
                    &quotes.iter().map(|q| q.0).collect::<Vec<_>>(),
                    &quotes.iter().map(|q| q.1).collect::<Vec<_>>(),
                    &quotes.iter().map(|q| q.2).collect::<Vec<_>>(),
                    &quotes.iter().map(|q| q.3).collect::<Vec<_>>(),
                    &quotes.iter().map(|q| q.4).collect::<Vec<_>>(),
                ).unwrap();
                // Reorder equal-millisecond groups: quotes before trades (or as generated).
                let mut ordered = evs.clone();
                if reverse_ties {
                    ordered.sort_by_key(|ev| match *ev { Event::Quote(ms, ..) => (ms, 0), Event::Trade(ms, ..) => (ms, 1) });
                }
                let mut e = FeatureEngine::new(cfg).unwrap();
                for (i, ev) in ordered.iter().enumerate() {
                    if clock.contains(&i) {
                        let ms = match *ev { Event::Trade(ms, ..) | Event::Quote(ms, ..) => ms };
                        e.close_through(ms * MS); // the clock never runs ahead of the next event
                    }
                    feed(&mut e, ev);
                }
                e.finish();
                let streamed = e.drain_rows();
                prop_assert_eq!(format!("{batch:?}"), format!("{streamed:?}"));
            }

            /// On every minute with a value area: VAL <= POC <= VAH, the levels are the keys'
            /// edges (VAL = val_bin, VAH = vah_bin + width, POC = poc_bin + width / 2), and
            /// VAH - VAL is a whole number of applied widths: the bins from val_bin to vah_bin.
            #[test]
            fn levels_are_the_value_area_edges(evs in events(), window in 1usize..8, base in 1i64..4, alpha in 0.1f64..40.0) {
                let cfg = EngineConfig { rolling_window_minutes: window, min_va_bins: 1, base_bin_ticks: base, alpha_bin: alpha, rebucket_interval_minutes: 1, ..Default::default() };
                let mut e = FeatureEngine::new(cfg).unwrap();
                for ev in &evs {
                    feed(&mut e, ev);
                }
                e.finish();
                for row in e.drain_rows() {
                    if row.poc.is_nan() {
                        prop_assert!(row.val.is_nan() && row.vah.is_nan() && row.poc_bin.is_nan() && !row.va_valid);
                        continue;
                    }
                    let (w, t) = ((row.bin_width_applied * 10.0).round() as i64, |x: f64| (x * 10.0).round() as i64);
                    prop_assert!(row.val <= row.poc && row.poc <= row.vah, "{row:?}");
                    prop_assert_eq!(t(row.val), t(row.val_bin));
                    prop_assert_eq!(t(row.vah), t(row.vah_bin) + w);
                    prop_assert_eq!((row.poc * 20.0).round() as i64, 2 * t(row.poc_bin) + w);
                    let va_bins = (t(row.vah_bin) - t(row.val_bin)) / w + 1;
                    prop_assert_eq!(t(row.vah) - t(row.val), va_bins * w);
                    prop_assert!(t(row.val_bin) <= t(row.poc_bin) && t(row.poc_bin) <= t(row.vah_bin));
                }
            }
        }
    }
}
