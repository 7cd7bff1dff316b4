//! Rolling volatility and the volatility-scaled bin width (specv2 §5.2, §5.4).

use std::collections::VecDeque;

use crate::config::EngineConfig;

/// One-minute log returns of the close mid over the last W minutes, and their sample deviation.
#[derive(Debug, Clone)]
pub struct Volatility {
    window: i64,
    returns: VecDeque<(i64, f64)>, // (minute the return ends in, ln return)
    prev_mid: Option<f64>,
}

impl Volatility {
    /// A window of `window` minutes.
    pub fn new(window: usize) -> Self {
        Self { window: window as i64, returns: VecDeque::new(), prev_mid: None }
    }

    /// Records minute `minute`'s close mid and returns `sigma` (sample sd, n - 1) of the returns
    /// of minutes `minute - W + 1 ..= minute`; `None` with fewer than two.
    ///
    /// A minute without a new quote carries the previous mid, so its return is exactly zero. The
    /// deviation is recomputed from the window (two passes over at most W values) rather than from
    /// running sums: a flat market then gives exactly 0, not float dust.
    pub fn on_minute(&mut self, minute: i64, mid: Option<f64>) -> Option<f64> {
        if let (Some(prev), Some(now)) = (self.prev_mid, mid) {
            self.returns.push_back((minute, (now / prev).ln()));
        }
        if mid.is_some() {
            self.prev_mid = mid;
        }
        while let Some(&(m, _)) = self.returns.front() {
            if m > minute - self.window {
                break;
            }
            self.returns.pop_front();
        }
        let n = self.returns.len();
        if n < 2 {
            return None;
        }
        let mean = self.returns.iter().map(|(_, r)| r).sum::<f64>() / n as f64;
        let ss = self.returns.iter().map(|(_, r)| (r - mean) * (r - mean)).sum::<f64>();
        Some((ss / (n - 1) as f64).sqrt())
    }
}

/// The computed bin width in ticks: `alpha × mid × sigma` rounded to whole base bins (halves up),
/// clamped to `[base bin, max width]`; the base bin while sigma is undefined.
pub fn computed_width_ticks(cfg: &EngineConfig, mid_ticks: Option<f64>, sigma: Option<f64>) -> i64 {
    let base = cfg.base_bin_ticks;
    match (mid_ticks, sigma) {
        (Some(mid), Some(s)) => {
            let raw = cfg.alpha_bin * mid * s;
            let bins = (raw / base as f64 + 0.5).floor();
            let width = if bins.is_finite() { (bins as i64).saturating_mul(base) } else { i64::MAX };
            width.clamp(base, cfg.max_width_ticks())
        }
        _ => base,
    }
}

/// The width the profile is aggregated at: it follows the computed width only on a large enough
/// move or on the rebucketing schedule, so bins do not flicker minute to minute.
#[derive(Debug, Clone)]
pub struct AppliedWidth {
    change_pct: f64,
    interval: i64,
    applied: Option<i64>,
}

impl AppliedWidth {
    /// Rebucket on a relative change of `change_pct` or every `interval` minutes.
    pub fn new(change_pct: f64, interval: i64) -> Self {
        Self { change_pct, interval, applied: None }
    }

    /// The applied width for minute `minute` given its computed width.
    pub fn update(&mut self, minute: i64, computed: i64) -> i64 {
        let applied = match self.applied {
            None => computed,
            Some(a) => {
                let moved = (computed - a).abs() as f64 / a as f64 >= self.change_pct;
                if moved || minute.rem_euclid(self.interval) == 0 {
                    computed
                } else {
                    a
                }
            }
        };
        self.applied = Some(applied);
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_by_hand_with_a_missing_minute() {
        let mut v = Volatility::new(240);
        assert_eq!(v.on_minute(0, None), None, "no quote yet");
        assert_eq!(v.on_minute(1, Some(100.0)), None, "no return yet");
        assert_eq!(v.on_minute(2, Some(101.0)), None, "one return");
        // Minute 3 has no new quote: the mid repeats, a zero return.
        let s = v.on_minute(3, Some(101.0)).unwrap();
        let r = (101.0f64 / 100.0).ln();
        let mean = r / 2.0;
        let expected = (((r - mean).powi(2) + mean.powi(2)) / 1.0).sqrt();
        assert!((s - expected).abs() < 1e-15);
    }

    #[test]
    fn sigma_window_slides_and_flat_is_exactly_zero() {
        let mut v = Volatility::new(3);
        for (m, mid) in [(0, 100.0), (1, 200.0), (2, 200.0), (3, 200.0), (4, 200.0)] {
            v.on_minute(m, Some(mid));
        }
        // Returns of minutes 2, 3, 4 are all zero; the jump at minute 1 left the window.
        assert_eq!(v.on_minute(5, Some(200.0)), Some(0.0));
    }

    #[test]
    fn width_rounds_halves_up_and_clamps() {
        let cfg = EngineConfig::default(); // alpha 0.25, base 1, max 200
        assert_eq!(computed_width_ticks(&cfg, Some(600_000.0), None), 1, "sigma undefined: base bin");
        // 0.25 * 600000 * 1e-4 = 15 ticks
        assert_eq!(computed_width_ticks(&cfg, Some(600_000.0), Some(1e-4)), 15);
        // 0.25 * 600000 * 0.0001 * 1.1 = 16.5 -> 17 (halves up)
        assert_eq!(computed_width_ticks(&cfg, Some(660_000.0), Some(1e-4)), 17);
        assert_eq!(computed_width_ticks(&cfg, Some(600_000.0), Some(0.0)), 1, "lower clamp");
        assert_eq!(computed_width_ticks(&cfg, Some(600_000.0), Some(0.01)), 200, "upper clamp");
        let wide = EngineConfig { base_bin_ticks: 4, ..Default::default() };
        // 15 ticks / 4 = 3.75 -> 4 base bins = 16 ticks
        assert_eq!(computed_width_ticks(&wide, Some(600_000.0), Some(1e-4)), 16);
    }

    #[test]
    fn rebucketing_on_change_or_schedule() {
        let mut a = AppliedWidth::new(0.25, 15);
        assert_eq!(a.update(1, 10), 10, "first computed width");
        assert_eq!(a.update(2, 12), 10, "20% move: kept");
        assert_eq!(a.update(3, 13), 13, "30% move: switched");
        assert_eq!(a.update(14, 14), 13, "small move, off schedule");
        assert_eq!(a.update(15, 14), 14, "m % 15 == 0: switched");
        assert_eq!(a.update(16, 11), 14, "21% down: kept");
        assert_eq!(a.update(17, 10), 10, "29% down: switched");
    }
}
