//! One-minute bars from individual trades (specv2 §4.2): OHLC, volume, VWAP, trade count.
//!
//! Prices are ticks and sizes lots, so the VWAP numerator `Σ ticks × lots` is an exact integer.

/// The bar being built for the current minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinuteBar {
    /// First, highest, lowest and last trade price in ticks (`None` for a minute without trades).
    pub ohlc: Option<[i64; 4]>,
    /// Σ size in lots.
    pub volume_lots: i64,
    /// Σ price x size in tick-lots (exact).
    pub notional: i128,
    /// Number of trades.
    pub trade_count: u64,
}

impl MinuteBar {
    /// Adds one trade, in arrival order.
    #[inline]
    pub fn add(&mut self, price: i64, lots: i64) {
        match &mut self.ohlc {
            None => self.ohlc = Some([price, price, price, price]),
            Some(o) => {
                o[1] = o[1].max(price);
                o[2] = o[2].min(price);
                o[3] = price;
            }
        }
        self.volume_lots += lots;
        self.notional += price as i128 * lots as i128;
        self.trade_count += 1;
    }

    /// VWAP in ticks (`None` without volume).
    pub fn vwap_ticks(&self) -> Option<f64> {
        (self.volume_lots > 0).then(|| self.notional as f64 / self.volume_lots as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_tracks_ohlc_volume_and_vwap() {
        let mut bar = MinuteBar::default();
        assert_eq!(bar.vwap_ticks(), None);
        for (price, lots) in [(500_010, 100), (500_000, 200), (500_005, 150), (500_010, 250)] {
            bar.add(price, lots);
        }
        assert_eq!(bar.ohlc, Some([500_010, 500_010, 500_000, 500_010]));
        assert_eq!(bar.volume_lots, 700);
        assert_eq!(bar.trade_count, 4);
        // (500010*100 + 500000*200 + 500005*150 + 500010*250) / 700
        assert_eq!(bar.notional, 350_004_250);
        assert!((bar.vwap_ticks().unwrap() - 350_004_250.0 / 700.0).abs() < 1e-9);
    }
}
