//! The rolling volume profile (specv2 §5.5): a base histogram over the last W minutes, kept by
//! adding each closed minute and subtracting the one that leaves the window, and aggregated to
//! the applied bin width on demand.
//!
//! Volumes are integer lots, so adding and subtracting minutes is exact: after any sequence of
//! minutes the histogram equals one built from scratch over the window (a property test checks
//! this), and an emptied bin is gone rather than left holding float dust.

use std::collections::{HashMap, VecDeque};

use crate::value_area::{value_area_dense, ValueArea, ValueAreaError};

/// The base histogram of the last `window` minutes.
#[derive(Debug, Clone)]
pub struct RollingProfile {
    window: i64,
    base_bin: i64,
    minutes: VecDeque<(i64, Vec<(i64, i64)>)>, // (minute, [(base key, lots)])
    base: HashMap<i64, i64>,                   // base key (ticks) -> lots, only bins with volume
    total_lots: i64,
}

impl RollingProfile {
    /// A profile over `window` minutes at a base bin of `base_bin` ticks.
    pub fn new(window: usize, base_bin: i64) -> Self {
        Self { window: window as i64, base_bin, minutes: VecDeque::new(), base: HashMap::new(), total_lots: 0 }
    }

    /// Adds minute `minute`'s trades (`(price ticks, lots)`) and drops minutes older than the window.
    pub fn push_minute(&mut self, minute: i64, trades: &[(i64, i64)]) {
        let mut keyed: Vec<(i64, i64)> = Vec::with_capacity(trades.len());
        for &(price, lots) in trades {
            let key = price.div_euclid(self.base_bin) * self.base_bin;
            match keyed.last_mut() {
                Some((k, l)) if *k == key => *l += lots, // input sorted by price: same base bin
                _ => keyed.push((key, lots)),
            }
        }
        for &(key, lots) in &keyed {
            *self.base.entry(key).or_insert(0) += lots;
            self.total_lots += lots;
        }
        self.minutes.push_back((minute, keyed));
        while let Some((m, _)) = self.minutes.front() {
            if *m > minute - self.window {
                break;
            }
            let (_, old) = self.minutes.pop_front().expect("front exists");
            for (key, lots) in old {
                let slot = self.base.get_mut(&key).expect("an added bin is present until removed");
                *slot -= lots;
                self.total_lots -= lots;
                if *slot == 0 {
                    self.base.remove(&key);
                }
            }
        }
    }

    /// Total volume in the window, lots.
    pub fn total_lots(&self) -> i64 {
        self.total_lots
    }

    /// The base histogram as sorted `(base key, lots)` pairs (for tests and inspection).
    pub fn base_bins(&self) -> Vec<(i64, i64)> {
        let mut bins: Vec<(i64, i64)> = self.base.iter().map(|(&k, &v)| (k, v)).collect();
        bins.sort_unstable();
        bins
    }

    /// The profile aggregated to `width` ticks (a multiple of the base bin): the lowest bin key
    /// and the dense volumes (lots) from it upwards, zero-volume bins included. `None` if empty.
    pub fn aggregate(&self, width: i64) -> Option<(i64, Vec<f64>)> {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for &key in self.base.keys() {
            let agg = key.div_euclid(width) * width;
            lo = lo.min(agg);
            hi = hi.max(agg);
        }
        if lo > hi {
            return None;
        }
        let mut dense = vec![0i64; ((hi - lo) / width + 1) as usize];
        for (&key, &lots) in &self.base {
            dense[((key.div_euclid(width) * width - lo) / width) as usize] += lots;
        }
        Some((lo, dense.into_iter().map(|v| v as f64).collect()))
    }

    /// Value area of the profile at `width` ticks (`Ok(None)` for an empty profile).
    pub fn value_area(&self, width: i64, va_fraction: f64) -> Result<Option<ValueArea>, ValueAreaError> {
        match self.aggregate(width) {
            None => Ok(None),
            Some((lo, dense)) => value_area_dense(lo, width, &dense, va_fraction),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn window_adds_and_removes_minutes() {
        let mut p = RollingProfile::new(2, 1);
        p.push_minute(10, &[(100, 5), (101, 1)]);
        p.push_minute(11, &[(101, 2)]);
        assert_eq!(p.base_bins(), vec![(100, 5), (101, 3)]);
        p.push_minute(12, &[]); // minute 10 leaves
        assert_eq!(p.base_bins(), vec![(101, 2)]);
        assert_eq!(p.total_lots(), 2);
        p.push_minute(20, &[(99, 1)]); // a gap: everything older than the window leaves
        assert_eq!(p.base_bins(), vec![(99, 1)]);
    }

    #[test]
    fn aggregation_floors_to_the_width() {
        let mut p = RollingProfile::new(5, 1);
        p.push_minute(0, &[(-3, 1), (0, 1), (4, 2), (5, 3), (9, 4), (10, 5)]);
        let (lo, dense) = p.aggregate(5).unwrap();
        assert_eq!(lo, -5);
        assert_eq!(dense, vec![1.0, 3.0, 7.0, 5.0]); // bins -5, 0, 5, 10
        assert!(RollingProfile::new(5, 1).aggregate(5).is_none());
    }

    #[test]
    fn base_bins_wider_than_a_tick() {
        let mut p = RollingProfile::new(5, 2);
        p.push_minute(0, &[(100, 1), (101, 1), (102, 1)]);
        assert_eq!(p.base_bins(), vec![(100, 2), (102, 1)]);
    }

    #[test]
    fn worked_example_20_3_through_the_profile() {
        // Bins of 100 ticks keyed by their lower edge, one price per bin.
        let mut p = RollingProfile::new(240, 1);
        p.push_minute(0, &[(49_800, 100), (49_900, 250), (50_000, 400), (50_100, 300), (50_200, 150), (50_300, 50)]);
        let va = p.value_area(100, 0.70).unwrap().unwrap();
        assert_eq!((va.poc, va.val, va.vah), (50_000, 49_900, 50_100));
        assert_eq!((va.va_volume, va.total_volume), (950.0, 1250.0));
    }

    proptest! {
        /// After any stream of minutes, the rolling histogram equals one built from scratch over
        /// the window, and so does its value area at any width.
        #[test]
        fn incremental_equals_from_scratch(
            minutes in prop::collection::vec(
                (0i64..4, prop::collection::vec((990i64..1010, 1i64..50), 0..12)), 1..60),
            window in 1usize..12,
            base in 1i64..4,
            width_mult in 1i64..6,
        ) {
            let mut p = RollingProfile::new(window, base);
            let mut m = 0i64;
            let mut history: Vec<(i64, Vec<(i64, i64)>)> = vec![];
            for (step, mut trades) in minutes {
                m += step.max(1);
                trades.sort_unstable();
                p.push_minute(m, &trades);
                history.push((m, trades));
                let mut scratch: std::collections::BTreeMap<i64, i64> = Default::default();
                for (hm, ts) in &history {
                    if *hm > m - window as i64 {
                        for &(price, lots) in ts {
                            *scratch.entry(price.div_euclid(base) * base).or_insert(0) += lots;
                        }
                    }
                }
                let expected: Vec<(i64, i64)> = scratch.into_iter().collect();
                prop_assert_eq!(p.base_bins(), expected.clone());
                let width = base * width_mult;
                let mut agg: std::collections::BTreeMap<i64, f64> = Default::default();
                for (k, l) in &expected {
                    *agg.entry(k.div_euclid(width) * width).or_insert(0.0) += *l as f64;
                }
                let keys: Vec<i64> = agg.keys().copied().collect();
                let vols: Vec<f64> = agg.values().copied().collect();
                let sparse = crate::value_area::value_area(&keys, &vols, width, 0.7).unwrap();
                prop_assert_eq!(p.value_area(width, 0.7).unwrap(), sparse);
            }
        }
    }
}
