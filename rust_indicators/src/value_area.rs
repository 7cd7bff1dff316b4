//! Value area of a volume profile: POC, VAL and VAH (specv2 §5.6, DESIGN.md "Value area").
//!
//! A *profile* is a volume histogram over equally spaced bins. A bin is identified by an integer
//! **key**: its lower edge in some integer unit (ticks, or multiples of a base bin), and adjacent
//! bins are `step` keys apart. The functions here work on keys only and never see prices.
//!
//! # Rules (these are exact)
//!
//! * The profile spans the contiguous key range from the lowest to the highest key with volume
//!   `> 0`. Zero-volume bins inside that range belong to it (the value area is strictly
//!   contiguous and may contain them); zero-volume bins outside it are ignored.
//! * An empty histogram, or one whose total volume is 0, has no value area (`Ok(None)`).
//! * **POC** = the bin with the largest volume. Ties go to the bin nearest the middle of the
//!   profile range, then (equidistant) to the lower key.
//! * **Expansion**: start with the POC, `cumulative = volume(POC)`. While the target is not
//!   reached, look at the next bin above (`vah + step`) and below (`val - step`) that are still
//!   inside the profile range and add the one with the larger volume; on a tie add the **upper**
//!   bin; when only one side is left, add that side (a POC at an edge expands only inward).
//! * **Stop** as soon as `cumulative >= va_fraction * total * (1 - COVERAGE_REL_TOL)`. The tiny
//!   relative tolerance ([`COVERAGE_REL_TOL`]) keeps float rounding in the running sum from
//!   adding one bin too many when the target is hit exactly (e.g. `0.6 + 0.3` is
//!   `0.8999999999999999` while `0.9 * 1.0` is `0.9`).
//! * `va_fraction` must lie in `(0, 1]`; `1.0` means the whole profile range (no tolerance is
//!   applied then, so even a negligible edge bin is included).
//!
//! Floating-point sums are deterministic: `total_volume` is summed in ascending key order over the
//! profile range, and `va_volume` in the order the bins were added (POC first).
//!
//! # Example (specv2 §20.3)
//!
//! ```
//! use rust_indicators::value_area::value_area;
//!
//! let keys = [49_800, 49_900, 50_000, 50_100, 50_200, 50_300];
//! let volumes = [100.0, 250.0, 400.0, 300.0, 150.0, 50.0];
//! let va = value_area(&keys, &volumes, 100, 0.70).unwrap().unwrap();
//! assert_eq!((va.poc, va.val, va.vah), (50_000, 49_900, 50_100));
//! assert_eq!((va.va_volume, va.total_volume), (950.0, 1250.0));
//! assert_eq!(va.coverage(), 0.76);
//! ```

use std::collections::HashSet;
use std::fmt;

/// Relative tolerance of the stopping test: expansion stops once
/// `cumulative >= va_fraction * total * (1 - COVERAGE_REL_TOL)`.
///
/// Only relevant when the running sum lands within float rounding of the target; it is far below
/// any volume difference that matters (one BTC-contract step in a 4 h profile is ~1e-7 relative).
pub const COVERAGE_REL_TOL: f64 = 1e-12;

/// Largest number of bins a profile range (lowest to highest key with volume) may span.
///
/// The computation allocates one `f64` per bin of the range, so keys that are far apart relative
/// to `step` (a unit mix-up, a bad print) are rejected instead of allocating gigabytes.
/// 2^24 bins is 16.7 M: e.g. 0.10-wide bins over a price range of 1.6 M.
pub const MAX_PROFILE_BINS: usize = 1 << 24;

/// The value area of a profile. All levels are bin keys (lower edges), as in specv2 §20.3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueArea {
    /// Point of control: key of the bin with the most volume.
    pub poc: i64,
    /// Value area low: lowest key included in the value area.
    pub val: i64,
    /// Value area high: highest key included in the value area.
    pub vah: i64,
    /// Volume inside the value area (`val ..= vah`).
    pub va_volume: f64,
    /// Volume of the whole profile.
    pub total_volume: f64,
    /// Number of bins with volume `> 0` in the whole profile (used for the `min_va_bins` check).
    pub bins_with_volume: usize,
}

impl ValueArea {
    /// Fraction of the profile's volume inside the value area, `va_volume / total_volume`.
    pub fn coverage(&self) -> f64 {
        self.va_volume / self.total_volume
    }
}

/// Why a value area could not be computed: the input broke the contract.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueAreaError {
    /// `step` must be `> 0`.
    InvalidStep(i64),
    /// `va_fraction` must lie in `(0, 1]`.
    InvalidFraction(f64),
    /// `keys` and `volumes` have different lengths.
    LengthMismatch {
        /// Number of keys.
        keys: usize,
        /// Number of volumes.
        volumes: usize,
    },
    /// A key is not a multiple of `step`.
    KeyNotMultipleOfStep {
        /// The offending key.
        key: i64,
        /// The bin step.
        step: i64,
    },
    /// The same key appears more than once.
    DuplicateKey(i64),
    /// A volume is negative, NaN or infinite.
    InvalidVolume {
        /// Key of the bin (for the dense variant: `lo_key + index * step`).
        key: i64,
        /// The offending volume.
        volume: f64,
    },
    /// The volumes are finite but their sum overflows to infinity.
    TotalNotFinite,
    /// Sparse variant: the profile range spans more than [`MAX_PROFILE_BINS`] bins.
    RangeTooLarge {
        /// Number of bins the range would span.
        bins: u128,
    },
    /// Dense variant: `lo_key + (len - 1) * step` does not fit in an `i64`.
    KeyOverflow,
}

impl fmt::Display for ValueAreaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidStep(step) => write!(f, "step must be > 0, got {step}"),
            Self::InvalidFraction(x) => write!(f, "va_fraction must be in (0, 1], got {x}"),
            Self::LengthMismatch { keys, volumes } => write!(
                f,
                "keys and volumes must have the same length, got {keys} keys and {volumes} volumes"
            ),
            Self::KeyNotMultipleOfStep { key, step } => {
                write!(f, "bin key {key} is not a multiple of step {step}")
            }
            Self::DuplicateKey(key) => write!(f, "duplicate bin key {key}"),
            Self::InvalidVolume { key, volume } => write!(
                f,
                "volume of bin {key} must be finite and >= 0, got {volume}"
            ),
            Self::TotalNotFinite => write!(f, "total volume overflows to infinity"),
            Self::RangeTooLarge { bins } => write!(
                f,
                "profile range spans {bins} bins, more than the limit of {MAX_PROFILE_BINS}"
            ),
            Self::KeyOverflow => write!(f, "bin keys overflow i64"),
        }
    }
}

impl std::error::Error for ValueAreaError {}

/// Value area of a sparse histogram given as parallel `keys` / `volumes`.
///
/// `keys` are bin keys: multiples of `step` (negative keys allowed), unique, in any order.
/// `volumes` are finite and `>= 0`. Bins not listed have zero volume.
///
/// Returns `Ok(None)` when the histogram is empty or its total volume is 0, and an error when
/// the input breaks the contract (see [`ValueAreaError`]). Runs in `O(keys.len() + range)` where
/// `range` is the number of bins between the lowest and highest key with volume.
pub fn value_area(
    keys: &[i64],
    volumes: &[f64],
    step: i64,
    va_fraction: f64,
) -> Result<Option<ValueArea>, ValueAreaError> {
    check_step(step)?;
    check_fraction(va_fraction)?;
    if keys.len() != volumes.len() {
        return Err(ValueAreaError::LengthMismatch {
            keys: keys.len(),
            volumes: volumes.len(),
        });
    }
    let mut range: Option<(i64, i64)> = None;
    for (&key, &volume) in keys.iter().zip(volumes) {
        if key.rem_euclid(step) != 0 {
            return Err(ValueAreaError::KeyNotMultipleOfStep { key, step });
        }
        check_volume(key, volume)?;
        if volume > 0.0 {
            range = Some(match range {
                None => (key, key),
                Some((lo, hi)) => (lo.min(key), hi.max(key)),
            });
        }
    }
    let Some((lo, hi)) = range else {
        check_unique(keys)?;
        return Ok(None);
    };
    let n = bin_count(lo, hi, step)?;

    // Scatter into a dense vector over [lo, hi]. UNSEEN marks empty slots (valid volumes are >= 0,
    // so a negative sentinel cannot collide) and catches duplicates inside the range; zero-volume
    // keys outside the range are checked with a set (they are rare).
    const UNSEEN: f64 = -1.0;
    let mut dense = vec![UNSEEN; n];
    let mut outside: HashSet<i64> = HashSet::new();
    for (&key, &volume) in keys.iter().zip(volumes) {
        if (lo..=hi).contains(&key) {
            // In range, so 0 <= (key - lo) / step < n <= MAX_PROFILE_BINS: no overflow in i128.
            let idx = ((i128::from(key) - i128::from(lo)) / i128::from(step)) as usize;
            if dense[idx] != UNSEEN {
                return Err(ValueAreaError::DuplicateKey(key));
            }
            dense[idx] = volume;
        } else if !outside.insert(key) {
            return Err(ValueAreaError::DuplicateKey(key));
        }
    }
    for v in dense.iter_mut().filter(|v| **v == UNSEEN) {
        *v = 0.0;
    }
    compute(lo, step, &dense, va_fraction).map(Some)
}

/// Value area of a dense histogram: `volumes[i]` is the volume of the bin with key
/// `lo_key + i * step`.
///
/// Leading and trailing zero-volume bins are allowed (the profile range is trimmed to the bins
/// with volume); `lo_key` need not be a multiple of `step`. This is the entry point for callers
/// that already keep a dense histogram (the rolling profile engine); [`value_area`] is built on
/// the same core. Returns `Ok(None)` when every volume is 0 or `volumes` is empty.
pub fn value_area_dense(
    lo_key: i64,
    step: i64,
    volumes: &[f64],
    va_fraction: f64,
) -> Result<Option<ValueArea>, ValueAreaError> {
    check_step(step)?;
    check_fraction(va_fraction)?;
    if let Some(last) = volumes.len().checked_sub(1) {
        let last_key = i64::try_from(last)
            .ok()
            .and_then(|i| i.checked_mul(step))
            .and_then(|off| lo_key.checked_add(off));
        if last_key.is_none() {
            return Err(ValueAreaError::KeyOverflow);
        }
    }
    // Cannot overflow: checked above for the largest index.
    let key_of = |i: usize| lo_key + i as i64 * step;
    for (i, &volume) in volumes.iter().enumerate() {
        check_volume(key_of(i), volume)?;
    }
    let Some(first) = volumes.iter().position(|&v| v > 0.0) else {
        return Ok(None);
    };
    // `first` exists, so a last bin with volume exists too.
    let last = volumes.iter().rposition(|&v| v > 0.0).unwrap_or(first);
    compute(key_of(first), step, &volumes[first..=last], va_fraction).map(Some)
}

fn check_step(step: i64) -> Result<(), ValueAreaError> {
    if step > 0 {
        Ok(())
    } else {
        Err(ValueAreaError::InvalidStep(step))
    }
}

fn check_fraction(va_fraction: f64) -> Result<(), ValueAreaError> {
    // The negated comparison also rejects NaN.
    if va_fraction > 0.0 && va_fraction <= 1.0 {
        Ok(())
    } else {
        Err(ValueAreaError::InvalidFraction(va_fraction))
    }
}

fn check_volume(key: i64, volume: f64) -> Result<(), ValueAreaError> {
    if volume.is_finite() && volume >= 0.0 {
        Ok(())
    } else {
        Err(ValueAreaError::InvalidVolume { key, volume })
    }
}

/// Only called when no key has volume: the dense scatter, which catches duplicates otherwise,
/// does not run then.
fn check_unique(keys: &[i64]) -> Result<(), ValueAreaError> {
    let mut seen = HashSet::with_capacity(keys.len());
    match keys.iter().find(|&&k| !seen.insert(k)) {
        Some(&key) => Err(ValueAreaError::DuplicateKey(key)),
        None => Ok(()),
    }
}

/// Number of bins in `lo ..= hi` (both multiples of `step`), bounded by [`MAX_PROFILE_BINS`].
fn bin_count(lo: i64, hi: i64, step: i64) -> Result<usize, ValueAreaError> {
    let bins = ((i128::from(hi) - i128::from(lo)) / i128::from(step) + 1) as u128;
    if bins > MAX_PROFILE_BINS as u128 {
        return Err(ValueAreaError::RangeTooLarge { bins });
    }
    Ok(bins as usize)
}

/// Core on a validated, trimmed profile: `profile` is non-empty, its first and last bins have
/// volume > 0, all volumes are finite and >= 0, and `profile[i]` is the bin with key
/// `lo + i * step`.
fn compute(
    lo: i64,
    step: i64,
    profile: &[f64],
    va_fraction: f64,
) -> Result<ValueArea, ValueAreaError> {
    debug_assert!(!profile.is_empty());
    let total: f64 = profile.iter().sum();
    if !total.is_finite() {
        return Err(ValueAreaError::TotalNotFinite);
    }
    let poc = poc_index(profile);
    let exp = expand(profile, poc, total, va_fraction);
    let key = |i: usize| lo + i as i64 * step;
    Ok(ValueArea {
        poc: key(poc),
        val: key(exp.lo),
        vah: key(exp.hi),
        va_volume: exp.cumulative,
        total_volume: total,
        bins_with_volume: profile.iter().filter(|&&v| v > 0.0).count(),
    })
}

/// Index of the POC: the largest volume; ties to the bin nearest the middle of the range, then
/// the lower index. Distances to the middle `(n - 1) / 2` are compared doubled, in integers.
fn poc_index(profile: &[f64]) -> usize {
    let n = profile.len();
    let dist = |i: usize| (2 * i).abs_diff(n - 1);
    let mut best = 0;
    for (i, &v) in profile.iter().enumerate().skip(1) {
        let b = profile[best];
        // Ascending scan: replacing only on strictly better keeps the lower index on full ties.
        if v > b || (v == b && dist(i) < dist(best)) {
            best = i;
        }
    }
    best
}

/// Result of the greedy expansion, with what the tests need to check minimality.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Expansion {
    /// Index of the lowest bin included.
    lo: usize,
    /// Index of the highest bin included.
    hi: usize,
    /// Volume of `lo ..= hi`, summed in the order the bins were added.
    cumulative: f64,
    /// The last bin added and the cumulative volume before it; `None` if the VA is the POC alone.
    last_step: Option<(usize, f64)>,
}

/// Whether the expansion may stop with `cumulative` (see the module docs for the tolerance).
fn target_reached(cumulative: f64, total: f64, va_fraction: f64) -> bool {
    // va_fraction == 1.0 means the whole range: the caller stops when no bin is left.
    va_fraction < 1.0 && cumulative >= va_fraction * total * (1.0 - COVERAGE_REL_TOL)
}

/// Greedy expansion from `poc` (see the module docs). `O(profile.len())`.
fn expand(profile: &[f64], poc: usize, total: f64, va_fraction: f64) -> Expansion {
    let (mut lo, mut hi) = (poc, poc);
    let mut cumulative = profile[poc];
    let mut last_step = None;
    while !target_reached(cumulative, total, va_fraction) {
        let up = profile.get(hi + 1).copied();
        let down = lo.checked_sub(1).map(|i| profile[i]);
        let take_up = match (up, down) {
            (Some(u), Some(d)) => u >= d,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let idx = if take_up {
            hi += 1;
            hi
        } else {
            lo -= 1;
            lo
        };
        last_step = Some((idx, cumulative));
        cumulative += profile[idx];
    }
    Expansion {
        lo,
        hi,
        cumulative,
        last_step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn va(keys: &[i64], volumes: &[f64], step: i64, frac: f64) -> Option<ValueArea> {
        value_area(keys, volumes, step, frac).expect("valid input")
    }

    /// (poc, val, vah) of a valid value area.
    fn levels(v: Option<ValueArea>) -> (i64, i64, i64) {
        let v = v.expect("a value area");
        (v.poc, v.val, v.vah)
    }

    // ---- worked example ---------------------------------------------------------------------

    #[test]
    fn spec_20_3_worked_example() {
        let keys = [49_800, 49_900, 50_000, 50_100, 50_200, 50_300];
        let vols = [100.0, 250.0, 400.0, 300.0, 150.0, 50.0];
        let v = va(&keys, &vols, 100, 0.70).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (50_000, 49_900, 50_100));
        assert_eq!(v.va_volume, 950.0);
        assert_eq!(v.total_volume, 1250.0);
        assert_eq!(v.coverage(), 0.76);
        assert_eq!(v.bins_with_volume, 6);
    }

    #[test]
    fn spec_20_3_dense_and_tick_keys_agree() {
        let vols = [100.0, 250.0, 400.0, 300.0, 150.0, 50.0];
        let dense = value_area_dense(49_800, 100, &vols, 0.70).unwrap().unwrap();
        assert_eq!((dense.poc, dense.val, dense.vah), (50_000, 49_900, 50_100));
        assert_eq!(dense.va_volume, 950.0);
        // The same profile keyed in 0.10 ticks (bins of 1000 ticks).
        let keys: Vec<i64> = (0..6).map(|i| 498_000 + i * 1000).collect();
        assert_eq!(
            levels(va(&keys, &vols, 1000, 0.70)),
            (500_000, 499_000, 501_000)
        );
    }

    // ---- no value area -----------------------------------------------------------------------

    #[test]
    fn empty_histogram_is_none() {
        assert_eq!(va(&[], &[], 100, 0.7), None);
        assert_eq!(value_area_dense(0, 100, &[], 0.7), Ok(None));
    }

    #[test]
    fn all_zero_volumes_is_none() {
        assert_eq!(va(&[100, 200, -300], &[0.0, 0.0, -0.0], 100, 0.7), None);
        assert_eq!(value_area_dense(0, 1, &[0.0; 5], 0.7), Ok(None));
    }

    // ---- shapes --------------------------------------------------------------------------------

    #[test]
    fn single_bin() {
        let v = va(&[4200], &[3.5], 10, 0.7).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (4200, 4200, 4200));
        assert_eq!(
            (v.va_volume, v.total_volume, v.bins_with_volume),
            (3.5, 3.5, 1)
        );
        assert_eq!(v.coverage(), 1.0);
        // Zero-volume neighbours do not widen it, whatever the fraction.
        let v = va(&[4190, 4200, 4210], &[0.0, 3.5, 0.0], 10, 1.0).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (4200, 4200, 4200));
    }

    #[test]
    fn poc_at_lower_edge_expands_only_upward() {
        // total 20, target 14: 10 + 4 = 14.
        let v = va(&[0, 1, 2, 3], &[10.0, 4.0, 3.0, 3.0], 1, 0.7).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (0, 0, 1));
        assert_eq!(v.va_volume, 14.0);
    }

    #[test]
    fn poc_at_upper_edge_expands_only_downward() {
        // total 20, target 14: 10 + 3 = 13 < 14, + 3 = 16.
        let v = va(&[0, 1, 2, 3], &[4.0, 3.0, 3.0, 10.0], 1, 0.7).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (3, 1, 3));
        assert_eq!(v.va_volume, 16.0);
    }

    #[test]
    fn zero_volume_gap_inside_va_is_included() {
        // Keys -20..=30 step 10; -10 and 20 are missing (zero volume). total 28, target 19.6.
        // POC 0 (9); up 10 (6) vs down -10 (0) -> 10: 15; up 20 (0) vs down -10 (0), tie -> 20:
        // 15; up 30 (5) vs down -10 (0) -> 30: 20 -> stop. The empty bin 20 is inside the VA.
        let v = va(&[-20, 0, 10, 30], &[8.0, 9.0, 6.0, 5.0], 10, 0.7).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (0, 0, 30));
        assert_eq!(
            (v.va_volume, v.total_volume, v.bins_with_volume),
            (20.0, 28.0, 4)
        );
        // total 20, target 15. POC 0 (10); up 10 (0) vs down -10 (3) -> -10: 13; only up is
        // left: 10 (0): 13; 20 (7): 20 -> stop. The VA bridges the empty bin 10.
        let v = va(&[-10, 0, 20], &[3.0, 10.0, 7.0], 10, 0.75).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (0, -10, 20));
        assert_eq!(v.va_volume, 20.0);
    }

    #[test]
    fn zero_volume_keys_outside_range_are_ignored() {
        let with = va(&[-500, 0, 10, 20, 900], &[0.0, 1.0, 5.0, 1.0, 0.0], 10, 1.0).unwrap();
        let without = va(&[0, 10, 20], &[1.0, 5.0, 1.0], 10, 1.0).unwrap();
        assert_eq!(with, without);
        assert_eq!((with.val, with.vah), (0, 20));
    }

    #[test]
    fn poc_tie_goes_to_bin_nearest_middle() {
        // Range 0..=4, middle 2: the maximum 5 at 1 and 2 -> 2.
        assert_eq!(
            va(&[0, 1, 2, 3, 4], &[1.0, 5.0, 5.0, 1.0, 1.0], 1, 0.1)
                .unwrap()
                .poc,
            2
        );
        // Maximum at 0 and 3 in range 0..=4: distances 2 and 1 -> 3.
        assert_eq!(
            va(&[0, 1, 2, 3, 4], &[5.0, 1.0, 1.0, 5.0, 1.0], 1, 0.1)
                .unwrap()
                .poc,
            3
        );
        // The middle is that of the bins with volume, not of zero-volume keys passed in.
        let v = va(
            &[0, 1, 2, 3, 4, 5, 6],
            &[0.0, 0.0, 5.0, 1.0, 5.0, 1.0, 5.0],
            1,
            0.1,
        )
        .unwrap();
        assert_eq!(v.poc, 4);
    }

    #[test]
    fn poc_tie_equidistant_goes_to_lower_key() {
        // Range 0..=3, middle 1.5: 1 and 2 equidistant -> 1.
        assert_eq!(
            va(&[0, 1, 2, 3], &[1.0, 5.0, 5.0, 1.0], 1, 0.1)
                .unwrap()
                .poc,
            1
        );
        // All equal, odd count: the middle bin; even count: the lower of the two middle bins.
        assert_eq!(va(&[0, 10, 20], &[2.0; 3], 10, 0.1).unwrap().poc, 10);
        assert_eq!(va(&[-20, -10, 0, 10], &[2.0; 4], 10, 0.1).unwrap().poc, -10);
        // Equidistant edges.
        assert_eq!(va(&[0, 1, 2], &[5.0, 1.0, 5.0], 1, 0.1).unwrap().poc, 0);
    }

    #[test]
    fn expansion_tie_takes_upper_bin() {
        // total 10, target 7: POC 4; 2 vs 2 -> upper: 6; then 1 (upper) vs 2 (lower) -> lower: 8.
        let v = va(&[0, 1, 2, 3, 4], &[1.0, 2.0, 4.0, 2.0, 1.0], 1, 0.7).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (2, 1, 3));
        // With a target reached after one step, only the upper bin is in.
        let v = va(&[0, 1, 2, 3, 4], &[1.0, 2.0, 4.0, 2.0, 1.0], 1, 0.6).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (2, 2, 3));
        assert_eq!(v.va_volume, 6.0);
        // Zero against zero also goes up. total 6, target 4.2: POC 2 (4); up 3 (0) vs down 1 (0)
        // -> 3: 4; up 4 (1) vs down 1 (0) -> 4: 5 -> stop.
        let v = va(&[0, 2, 4], &[1.0, 4.0, 1.0], 1, 0.7).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (2, 2, 4));
    }

    #[test]
    fn va_fraction_one_covers_whole_range() {
        let keys = [49_800, 49_900, 50_000, 50_100, 50_200, 50_300];
        let vols = [100.0, 250.0, 400.0, 300.0, 150.0, 50.0];
        let v = va(&keys, &vols, 100, 1.0).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (50_000, 49_800, 50_300));
        assert_eq!(v.va_volume, 1250.0);
        assert_eq!(v.coverage(), 1.0);
        // Even a negligible edge bin (below the tolerance) is included at 1.0.
        let v = va(&[0, 1, 2], &[1e-20, 1.0, 1e-20], 1, 1.0).unwrap();
        assert_eq!((v.val, v.vah), (0, 2));
        // ...but not at 0.999999.
        let v = va(&[0, 1, 2], &[1e-20, 1.0, 1e-20], 1, 0.999_999).unwrap();
        assert_eq!((v.val, v.vah), (1, 1));
    }

    #[test]
    fn exact_boundary_stops_there() {
        // total 100, target 70 exactly: POC 40 + upper 30 (tie with lower 30) = 70 -> stop.
        let v = va(&[10, 20, 30], &[30.0, 40.0, 30.0], 10, 0.7).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (20, 20, 30));
        assert_eq!(v.va_volume, 70.0);
        // POC alone exactly at the target.
        let v = va(&[10, 20, 30], &[30.0, 40.0, 30.0], 10, 0.4).unwrap();
        assert_eq!((v.val, v.vah), (20, 20));
        // One unit below the target continues.
        let v = va(&[10, 20, 30], &[30.0, 40.0, 30.0], 10, 0.71).unwrap();
        assert_eq!((v.val, v.vah), (10, 30));
    }

    #[test]
    fn exact_boundary_survives_float_rounding() {
        // 0.6 + 0.3 = 0.8999999999999999 < 0.9 * (0.1 + 0.6 + 0.3) = 0.9 in floats; the
        // tolerance stops there instead of adding the lower bin.
        let (a, p, b) = std::hint::black_box((0.1_f64, 0.6_f64, 0.3_f64));
        assert!(p + b < 0.9 * (a + p + b));
        let v = va(&[0, 1, 2], &[0.1, 0.6, 0.3], 1, 0.9).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (1, 1, 2));
        assert_eq!(v.va_volume, 0.6 + 0.3);
    }

    #[test]
    fn unsorted_keys_give_the_same_result() {
        let keys = [50_200, 49_800, 50_300, 50_000, 49_900, 50_100];
        let vols = [150.0, 100.0, 50.0, 400.0, 250.0, 300.0];
        let v = va(&keys, &vols, 100, 0.70).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (50_000, 49_900, 50_100));
        assert_eq!((v.va_volume, v.total_volume), (950.0, 1250.0));
    }

    #[test]
    fn negative_keys() {
        let v = va(&[-300, -200, -100, 0], &[1.0, 5.0, 2.0, 1.0], 100, 0.7).unwrap();
        // total 9, target 6.3: -200 (5) + -100 (2) = 7.
        assert_eq!((v.poc, v.val, v.vah), (-200, -200, -100));
    }

    #[test]
    fn extreme_keys_do_not_overflow() {
        let v = va(&[i64::MIN, i64::MIN + 1], &[1.0, 2.0], 1, 1.0).unwrap();
        assert_eq!(
            (v.poc, v.val, v.vah),
            (i64::MIN + 1, i64::MIN, i64::MIN + 1)
        );
        let v = va(&[i64::MAX - 1, i64::MAX], &[1.0, 2.0], 1, 1.0).unwrap();
        assert_eq!((v.poc, v.val, v.vah), (i64::MAX, i64::MAX - 1, i64::MAX));
        let v = value_area_dense(i64::MAX - 2, 1, &[0.0, 1.0, 0.0], 0.7)
            .unwrap()
            .unwrap();
        assert_eq!(v.poc, i64::MAX - 1);
    }

    #[test]
    fn bins_with_volume_counts_only_bins_with_volume() {
        let v = va(&[0, 3, 5, 9, 12], &[1.0, 0.0, 2.0, 3.0, 0.0], 1, 0.7).unwrap();
        assert_eq!(v.bins_with_volume, 3);
        assert_eq!(v.total_volume, 6.0);
    }

    #[test]
    fn dense_trims_leading_and_trailing_zeros() {
        let v = value_area_dense(-30, 10, &[0.0, 0.0, 1.0, 4.0, 0.0, 2.0, 0.0], 1.0)
            .unwrap()
            .unwrap();
        assert_eq!((v.poc, v.val, v.vah), (0, -10, 20));
        assert_eq!(v.bins_with_volume, 3);
        // lo_key need not be a multiple of step.
        let v = value_area_dense(7, 10, &[1.0, 4.0, 2.0], 0.5)
            .unwrap()
            .unwrap();
        assert_eq!((v.poc, v.val, v.vah), (17, 17, 17));
    }

    // ---- invalid input ---------------------------------------------------------------------

    #[test]
    fn invalid_input_errors() {
        use ValueAreaError as E;
        let ok_k = [0, 10];
        let ok_v = [1.0, 2.0];
        assert_eq!(value_area(&ok_k, &ok_v, 0, 0.7), Err(E::InvalidStep(0)));
        assert_eq!(value_area(&ok_k, &ok_v, -10, 0.7), Err(E::InvalidStep(-10)));
        for bad in [0.0, -0.1, 1.5, f64::INFINITY] {
            assert_eq!(
                value_area(&ok_k, &ok_v, 10, bad),
                Err(E::InvalidFraction(bad))
            );
        }
        assert!(
            matches!(value_area(&ok_k, &ok_v, 10, f64::NAN), Err(E::InvalidFraction(x)) if x.is_nan())
        );
        assert_eq!(
            value_area(&[0, 10, 20], &ok_v, 10, 0.7),
            Err(E::LengthMismatch {
                keys: 3,
                volumes: 2
            })
        );
        assert_eq!(
            value_area(&[0, 15], &ok_v, 10, 0.7),
            Err(E::KeyNotMultipleOfStep { key: 15, step: 10 })
        );
        assert_eq!(
            value_area(&[-5, 10], &ok_v, 10, 0.7),
            Err(E::KeyNotMultipleOfStep { key: -5, step: 10 })
        );
        assert_eq!(
            value_area(&[0, 10, 0], &[1.0, 2.0, 3.0], 10, 0.7),
            Err(E::DuplicateKey(0))
        );
        // Duplicates are errors even with zero volume, inside or outside the range, or when
        // nothing has volume.
        assert_eq!(
            value_area(&[0, 10, 20, 10], &[1.0, 0.0, 3.0, 0.0], 10, 0.7),
            Err(E::DuplicateKey(10))
        );
        assert_eq!(
            value_area(&[0, 90, 90], &[1.0, 0.0, 0.0], 10, 0.7),
            Err(E::DuplicateKey(90))
        );
        assert_eq!(
            value_area(&[0, 90, 90], &[0.0, 0.0, 0.0], 10, 0.7),
            Err(E::DuplicateKey(90))
        );
        assert_eq!(
            value_area(&ok_k, &[1.0, -2.0], 10, 0.7),
            Err(E::InvalidVolume {
                key: 10,
                volume: -2.0
            })
        );
        assert_eq!(
            value_area(&ok_k, &[f64::INFINITY, 1.0], 10, 0.7),
            Err(E::InvalidVolume {
                key: 0,
                volume: f64::INFINITY
            })
        );
        assert!(matches!(
            value_area(&ok_k, &[1.0, f64::NAN], 10, 0.7),
            Err(E::InvalidVolume { key: 10, volume }) if volume.is_nan()
        ));
        assert_eq!(
            value_area(&ok_k, &[f64::MAX, f64::MAX], 10, 0.7),
            Err(E::TotalNotFinite)
        );
        assert_eq!(
            value_area(&[0, 1 << 40], &ok_v, 1, 0.7),
            Err(E::RangeTooLarge {
                bins: (1 << 40) + 1
            })
        );
        assert_eq!(
            value_area(&[i64::MIN, i64::MAX - 1], &ok_v, 2, 0.7),
            Err(E::RangeTooLarge { bins: 1 << 63 })
        );
        // Zero-volume keys far away do not count towards the range.
        assert!(value_area(&[0, 1 << 40], &[1.0, 0.0], 1, 0.7)
            .unwrap()
            .is_some());
    }

    #[test]
    fn invalid_dense_input_errors() {
        use ValueAreaError as E;
        assert_eq!(value_area_dense(0, 0, &[1.0], 0.7), Err(E::InvalidStep(0)));
        assert_eq!(
            value_area_dense(0, 1, &[1.0], 1.01),
            Err(E::InvalidFraction(1.01))
        );
        assert_eq!(
            value_area_dense(100, 10, &[1.0, 0.0, -1.0], 0.7),
            Err(E::InvalidVolume {
                key: 120,
                volume: -1.0
            })
        );
        assert_eq!(
            value_area_dense(i64::MAX - 1, 1, &[0.0, 1.0, 0.0], 0.7),
            Err(E::KeyOverflow)
        );
        assert_eq!(
            value_area_dense(0, 1, &[f64::MAX, 0.0, f64::MAX], 0.7),
            Err(E::TotalNotFinite)
        );
    }

    #[test]
    fn error_messages_are_readable() {
        let msg = value_area(&[0, 15], &[1.0, 1.0], 10, 0.7)
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "bin key 15 is not a multiple of step 10");
        let msg = value_area(&[0], &[1.0], 10, 1.5).unwrap_err().to_string();
        assert_eq!(msg, "va_fraction must be in (0, 1], got 1.5");
        let msg = value_area(&[0], &[1.0, 2.0], 10, 0.7)
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "keys and volumes must have the same length, got 1 keys and 2 volumes"
        );
    }

    // ---- independent reference and properties ----------------------------------------------

    /// Straightforward reference written from the rules, independently of the code above:
    /// a BTreeMap over the keys, explicit key arithmetic, a two-cursor loop that tests the
    /// stopping condition after each addition. Returns (poc, val, vah, va_volume, total, count).
    fn reference(
        keys: &[i64],
        vols: &[f64],
        step: i64,
        frac: f64,
    ) -> Option<(i64, i64, i64, f64, f64, usize)> {
        let hist: BTreeMap<i64, f64> = keys.iter().copied().zip(vols.iter().copied()).collect();
        let with_volume: Vec<i64> = hist
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, _)| *k)
            .collect();
        let (&lo, &hi) = (with_volume.first()?, with_volume.last()?);
        let vol = |k: i64| hist.get(&k).copied().unwrap_or(0.0);
        let total = hist.range(lo..=hi).fold(0.0, |acc, (_, v)| acc + v);
        // POC: collect the keys holding the maximum, pick by |2k - (lo + hi)|, then lowest.
        let max = with_volume.iter().map(|&k| vol(k)).fold(f64::MIN, f64::max);
        let poc = with_volume
            .iter()
            .copied()
            .filter(|&k| vol(k) == max)
            .min_by_key(|&k| {
                (
                    (2 * i128::from(k) - i128::from(lo) - i128::from(hi)).abs(),
                    k,
                )
            })
            .unwrap();
        let target = frac * total * (1.0 - COVERAGE_REL_TOL);
        let (mut val, mut vah, mut cum) = (poc, poc, vol(poc));
        loop {
            let done = if frac == 1.0 {
                val == lo && vah == hi
            } else {
                cum >= target
            };
            if done {
                break;
            }
            let above = (vah < hi).then(|| vah + step);
            let below = (val > lo).then(|| val - step);
            let pick = match (above, below) {
                (Some(a), Some(b)) if vol(b) > vol(a) => b,
                (Some(a), _) => a,
                (None, Some(b)) => b,
                (None, None) => unreachable!("the whole range always reaches the target"),
            };
            if pick > vah {
                vah = pick;
            } else {
                val = pick;
            }
            cum += vol(pick);
        }
        Some((poc, val, vah, cum, total, with_volume.len()))
    }

    /// Random histograms: a step, an origin, and (offset, volume) pairs. Volumes are small integers
    /// (many ties and zero gaps), tenths (sums that hit the target up to float rounding) or
    /// arbitrary positive floats.
    fn histogram() -> impl Strategy<Value = (Vec<i64>, Vec<f64>, i64)> {
        let volume = prop_oneof![
            3 => (0u8..6).prop_map(f64::from),
            2 => (0u8..10).prop_map(|t| f64::from(t) / 10.0),
            2 => 0.0..1000.0f64,
            1 => Just(0.0),
        ];
        (
            1i64..=50,
            -2000i64..2000,
            proptest::collection::btree_map(0i64..60, volume, 0..40),
        )
            .prop_map(|(step, origin, bins)| {
                let keys = bins.keys().map(|o| (origin + o) * step).collect();
                let vols = bins.values().copied().collect();
                (keys, vols, step)
            })
    }

    fn fraction() -> impl Strategy<Value = f64> {
        prop_oneof![Just(0.7), Just(1.0), Just(0.5), 1e-6..=1.0f64]
    }

    /// The dense histogram over `lo..=hi` the core sees, for checking sums and minimality.
    fn dense_of(keys: &[i64], vols: &[f64], step: i64, lo: i64, hi: i64) -> Vec<f64> {
        let mut d = vec![0.0; ((hi - lo) / step + 1) as usize];
        for (&k, &v) in keys.iter().zip(vols) {
            if (lo..=hi).contains(&k) {
                d[((k - lo) / step) as usize] = v;
            }
        }
        d
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn matches_reference((keys, vols, step) in histogram(), frac in fraction()) {
            let got = value_area(&keys, &vols, step, frac).unwrap();
            let want = reference(&keys, &vols, step, frac);
            let got = got.map(|v| (v.poc, v.val, v.vah, v.va_volume, v.total_volume, v.bins_with_volume));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn invariants((keys, vols, step) in histogram(), frac in fraction()) {
            let Some(v) = value_area(&keys, &vols, step, frac).unwrap() else {
                prop_assert!(vols.iter().all(|&x| x == 0.0));
                return Ok(());
            };
            let lo = keys.iter().zip(&vols).filter(|(_, &x)| x > 0.0).map(|(&k, _)| k).min().unwrap();
            let hi = keys.iter().zip(&vols).filter(|(_, &x)| x > 0.0).map(|(&k, _)| k).max().unwrap();
            // Ordering, range, grid.
            prop_assert!(lo <= v.val && v.val <= v.poc && v.poc <= v.vah && v.vah <= hi);
            for k in [v.val, v.poc, v.vah] {
                prop_assert_eq!(k.rem_euclid(step), 0);
            }
            // POC holds the maximum volume.
            let dense = dense_of(&keys, &vols, step, lo, hi);
            let idx = |k: i64| ((k - lo) / step) as usize;
            let max = dense.iter().copied().fold(0.0, f64::max);
            prop_assert_eq!(dense[idx(v.poc)], max);
            // Volumes: the VA volume is the volume of val..=vah; coverage reaches the target.
            let in_va: f64 = dense[idx(v.val)..=idx(v.vah)].iter().sum();
            prop_assert!((in_va - v.va_volume).abs() <= 1e-9 * v.total_volume);
            prop_assert!(v.va_volume <= v.total_volume * (1.0 + 1e-12));
            prop_assert!(v.coverage() >= frac * (1.0 - 1e-9));
            if frac == 1.0 {
                prop_assert_eq!((v.val, v.vah), (lo, hi));
            }
            // Minimality: the last bin added was an edge of the VA, and before it the target was
            // not reached.
            let p = &dense[..];
            let poc = idx(v.poc);
            prop_assert_eq!(poc, poc_index(p));
            let exp = expand(p, poc, v.total_volume, frac);
            prop_assert_eq!((exp.lo, exp.hi, exp.cumulative), (idx(v.val), idx(v.vah), v.va_volume));
            match exp.last_step {
                None => prop_assert_eq!((v.val, v.vah), (v.poc, v.poc)),
                Some((last, before)) => {
                    prop_assert!(last == exp.lo || last == exp.hi);
                    prop_assert!(last != poc);
                    prop_assert_eq!(before + p[last], exp.cumulative);
                    prop_assert!(!target_reached(before, v.total_volume, frac));
                    if frac < 1.0 {
                        prop_assert!(before < frac * v.total_volume);
                    }
                }
            }
        }

        #[test]
        fn input_order_does_not_matter(
            (pairs, step) in histogram().prop_flat_map(|(k, v, s)| {
                (Just(k.into_iter().zip(v).collect::<Vec<_>>()).prop_shuffle(), Just(s))
            }),
            frac in fraction(),
        ) {
            let (keys, vols): (Vec<i64>, Vec<f64>) = pairs.iter().copied().unzip();
            let mut sorted = pairs.clone();
            sorted.sort_by_key(|p| p.0);
            let (sk, sv): (Vec<i64>, Vec<f64>) = sorted.into_iter().unzip();
            prop_assert_eq!(value_area(&keys, &vols, step, frac), value_area(&sk, &sv, step, frac));
        }

        #[test]
        fn dense_matches_sparse((keys, vols, step) in histogram(), frac in fraction(), pad in 0usize..3) {
            let sparse = value_area(&keys, &vols, step, frac).unwrap();
            let Some(&min) = keys.iter().min() else { return Ok(()); };
            let max = *keys.iter().max().unwrap();
            let lo = min - pad as i64 * step;
            let mut dense = dense_of(&keys, &vols, step, lo, max);
            dense.extend(std::iter::repeat_n(0.0, pad));
            prop_assert_eq!(value_area_dense(lo, step, &dense, frac).unwrap(), sparse);
        }
    }
}
