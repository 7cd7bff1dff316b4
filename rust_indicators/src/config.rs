//! Engine parameters (the feature subset of specv2 §17.3) and unit conversions.
//!
//! The engine works on integers: prices in ticks, sizes in lots (one qty step), time in
//! milliseconds. This module owns the conversions so that every other module sees only integers.

use std::fmt;

use crate::order_flow::OrderFlowSource;

/// Everything the feature engine needs to know, with the spec's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Price increment (0.10 for BTCUSDT).
    pub tick_size: f64,
    /// Quantity step (0.001 BTC): sizes are counted in these lots.
    pub size_step: f64,
    /// Profile and volatility window W in minutes (240).
    pub rolling_window_minutes: usize,
    /// Share of the profile's volume the value area holds (0.70).
    pub va_fraction: f64,
    /// Base histogram bin B in ticks (1).
    pub base_bin_ticks: i64,
    /// Bin width = alpha_bin x mid x sigma (0.25).
    pub alpha_bin: f64,
    /// Upper clamp of the bin width in ticks (200).
    pub bin_width_max_ticks: i64,
    /// The applied width follows the computed one every this many minutes (15).
    pub rebucket_interval_minutes: i64,
    /// ... or when it moved by at least this fraction (0.25).
    pub rebucket_change_pct: f64,
    /// A value area needs this many bins with volume to be valid (20).
    pub min_va_bins: usize,
    /// Quotes older than this (ms) are still used, but disagreements are attributed to staleness.
    pub max_quote_staleness_ms: i64,
    /// Sign ambiguous prints with the zero-tick-continuation tick rule (true).
    pub use_tick_rule_fallback: bool,
    /// Where `of_1m`, `of_norm_1m` and the ambiguous fraction come from (inferred).
    pub order_flow_source: OrderFlowSource,
    /// Time constant of the continuous-time qimb EMA in seconds (60).
    pub qimb_ema_span_seconds: f64,
    /// Minutes in the rolling mean of the close spread (60).
    pub spread_lookback_minutes: usize,
    /// Compute the BVC proxy (manual fallback only; false).
    pub use_bvc: bool,
    /// Minutes of close-to-close changes behind the BVC's standard deviation (60).
    pub lookback_bvc: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick_size: 0.1,
            size_step: 0.001,
            rolling_window_minutes: 240,
            va_fraction: 0.70,
            base_bin_ticks: 1,
            alpha_bin: 0.25,
            bin_width_max_ticks: 200,
            rebucket_interval_minutes: 15,
            rebucket_change_pct: 0.25,
            min_va_bins: 20,
            max_quote_staleness_ms: 250,
            use_tick_rule_fallback: true,
            order_flow_source: OrderFlowSource::Inferred,
            qimb_ema_span_seconds: 60.0,
            spread_lookback_minutes: 60,
            use_bvc: false,
            lookback_bvc: 60,
        }
    }
}

/// A parameter outside its domain.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl EngineConfig {
    /// Checks every parameter's domain (the Python layer validates too; this guards the core).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if !(self.tick_size.is_finite() && self.tick_size > 0.0) {
            return fail(format!("tick_size must be > 0, got {}", self.tick_size));
        }
        if !(self.size_step.is_finite() && self.size_step > 0.0) {
            return fail(format!("size_step must be > 0, got {}", self.size_step));
        }
        if self.rolling_window_minutes < 1 {
            return fail("rolling_window_minutes must be >= 1".into());
        }
        if !(self.va_fraction > 0.0 && self.va_fraction <= 1.0) {
            return fail(format!("va_fraction must be in (0, 1], got {}", self.va_fraction));
        }
        if self.base_bin_ticks < 1 {
            return fail(format!("base_bin_ticks must be >= 1, got {}", self.base_bin_ticks));
        }
        if !(self.alpha_bin.is_finite() && self.alpha_bin > 0.0) {
            return fail(format!("alpha_bin must be > 0, got {}", self.alpha_bin));
        }
        if self.bin_width_max_ticks < self.base_bin_ticks {
            return fail(format!(
                "bin_width_max_ticks ({}) must be >= base_bin_ticks ({})",
                self.bin_width_max_ticks, self.base_bin_ticks
            ));
        }
        if self.rebucket_interval_minutes < 1 {
            return fail("rebucket_interval_minutes must be >= 1".into());
        }
        if !(self.rebucket_change_pct.is_finite() && self.rebucket_change_pct > 0.0) {
            return fail("rebucket_change_pct must be > 0".into());
        }
        if self.min_va_bins < 1 {
            return fail("min_va_bins must be >= 1".into());
        }
        if self.max_quote_staleness_ms < 0 {
            return fail("max_quote_staleness_ms must be >= 0".into());
        }
        if !(self.qimb_ema_span_seconds.is_finite() && self.qimb_ema_span_seconds > 0.0) {
            return fail("qimb_ema_span_seconds must be > 0".into());
        }
        if self.spread_lookback_minutes < 1 {
            return fail("spread_lookback_minutes must be >= 1".into());
        }
        if self.lookback_bvc < 2 {
            return fail("lookback_bvc must be >= 2".into());
        }
        Ok(())
    }

    /// Upper clamp of the bin width, rounded down to a whole number of base bins.
    pub fn max_width_ticks(&self) -> i64 {
        (self.bin_width_max_ticks / self.base_bin_ticks) * self.base_bin_ticks
    }
}

/// Exact-as-possible conversion between a float grid (prices, sizes) and integer units.
///
/// For grids that are a power-of-ten fraction (0.1, 0.001) a unit count is turned back into a
/// float by dividing by the integer inverse (639601 / 10 is the double nearest 63960.1, the same
/// double that parsing "63960.1" gives); other grids multiply.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    step: f64,
    inverse: Option<f64>,
}

impl Grid {
    /// A grid of `step`.
    pub fn new(step: f64) -> Self {
        let inv = (1.0 / step).round();
        let inverse = ((inv * step - 1.0).abs() < 1e-12 && inv >= 1.0).then_some(inv);
        Self { step, inverse }
    }

    /// Nearest unit count of `value`.
    #[inline]
    pub fn units(&self, value: f64) -> i64 {
        match self.inverse {
            Some(inv) => (value * inv).round() as i64,
            None => (value / self.step).round() as i64,
        }
    }

    /// `units` back to a float.
    #[inline]
    pub fn value(&self, units: f64) -> f64 {
        match self.inverse {
            Some(inv) => units / inv,
            None => units * self.step,
        }
    }
}

/// Milliseconds in a minute.
pub const MS_PER_MINUTE: i64 = 60_000;

/// Nanoseconds to milliseconds, flooring (all engine logic runs on milliseconds).
#[inline]
pub fn ns_to_ms(ts_ns: i64) -> i64 {
    ts_ns.div_euclid(1_000_000)
}

/// The minute index `m = floor(ts_ms / 60000)`.
#[inline]
pub fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(MS_PER_MINUTE)
}

/// The minute's close time, `ts_min + 59999` ms (specv2 §4.3).
#[inline]
pub fn close_time_ms(minute: i64) -> i64 {
    minute * MS_PER_MINUTE + MS_PER_MINUTE - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_round_trips_decimal_prices_exactly() {
        let g = Grid::new(0.1);
        assert_eq!(g.units(63960.1), 639_601);
        assert_eq!(g.value(639_601.0), 63960.1);
        assert_eq!(g.units(0.30000000000000004), 3);
        let lots = Grid::new(0.001);
        assert_eq!(lots.units(0.31), 310);
        assert_eq!(lots.value(310.0), 0.31);
        let half = Grid::new(0.5);
        assert_eq!(half.units(50000.5), 100_001);
        assert_eq!(half.value(100_001.0), 50000.5);
        let odd = Grid::new(0.25);
        assert_eq!(odd.value(5.0), 1.25);
    }

    #[test]
    fn time_floors_to_milliseconds_and_minutes() {
        assert_eq!(ns_to_ms(1_721_347_202_812_999_999), 1_721_347_202_812);
        assert_eq!(minute_of(1_721_347_202_812), 28_689_120);
        assert_eq!(close_time_ms(28_689_120), 28_689_120 * 60_000 + 59_999);
        assert_eq!(minute_of(-1), -1);
    }

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(EngineConfig::default().validate().is_ok());
        let bad = EngineConfig { va_fraction: 1.5, ..Default::default() };
        assert!(bad.validate().unwrap_err().0.contains("va_fraction"));
        let bad = EngineConfig { bin_width_max_ticks: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().0.contains("bin_width_max_ticks"));
        let odd = EngineConfig { base_bin_ticks: 3, bin_width_max_ticks: 200, ..Default::default() };
        assert_eq!(odd.max_width_ticks(), 198);
    }
}
