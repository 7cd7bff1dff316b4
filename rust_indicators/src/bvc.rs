//! Bulk Volume Classification proxy (specv2 §5.9): a manual fallback, never engaged by itself.
//!
//! `bvc_net = volume × (2 Φ(Δclose / sd(Δclose)) - 1) = volume × erf(Δ / (sd √2))`.

use std::collections::VecDeque;

/// Close-to-close changes over a lookback and the BVC signed volume.
#[derive(Debug, Clone)]
pub struct Bvc {
    lookback: i64,
    last_close: Option<i64>,
    deltas: VecDeque<(i64, f64)>, // (minute, close change in ticks)
}

impl Bvc {
    /// A proxy with `lookback` minutes of changes.
    pub fn new(lookback: usize) -> Self {
        Self { lookback: lookback as i64, last_close: None, deltas: VecDeque::new() }
    }

    /// Minute `minute` closed at `close` ticks (its last trade; `None` without trades) with
    /// `volume` (any unit); returns the BVC signed volume in that unit, when defined.
    pub fn on_minute(&mut self, minute: i64, close: Option<i64>, volume: f64) -> Option<f64> {
        let carried = close.or(self.last_close);
        let delta = match (self.last_close, carried) {
            (Some(prev), Some(now)) => Some((now - prev) as f64),
            _ => None,
        };
        self.last_close = carried;
        if let Some(d) = delta {
            self.deltas.push_back((minute, d));
        }
        while let Some(&(m, _)) = self.deltas.front() {
            if m > minute - self.lookback {
                break;
            }
            self.deltas.pop_front();
        }
        let d = delta?;
        let n = self.deltas.len();
        if n < 2 {
            return None;
        }
        let mean = self.deltas.iter().map(|(_, x)| x).sum::<f64>() / n as f64;
        let sd = (self.deltas.iter().map(|(_, x)| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64).sqrt();
        (sd > 0.0).then(|| volume * libm::erf(d / (sd * std::f64::consts::SQRT_2)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bvc_by_hand() {
        let mut b = Bvc::new(60);
        assert_eq!(b.on_minute(0, Some(100), 1.0), None, "no previous close");
        assert_eq!(b.on_minute(1, Some(102), 1.0), None, "one change: no deviation");
        // Changes +2, -1: mean 0.5, sd = sqrt(((1.5)^2 + (1.5)^2) / 1) = 2.1213...
        let got = b.on_minute(2, Some(101), 10.0).unwrap();
        let sd = (4.5f64).sqrt();
        let phi = 0.5 * (1.0 + libm::erf(-1.0 / sd / std::f64::consts::SQRT_2));
        assert!((got - 10.0 * (2.0 * phi - 1.0)).abs() < 1e-12);
        assert!(got < 0.0, "a down close leans the volume to sellers");
        // A minute without trades carries the close: a zero change, BVC 0 x volume.
        assert_eq!(b.on_minute(3, None, 0.0), Some(0.0));
    }
}
