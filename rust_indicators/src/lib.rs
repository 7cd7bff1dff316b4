//! `rust_indicators`: auction-trader's feature engine (specv2 §4-5, DESIGN.md "Feature
//! definitions, precisely", restated with every open point settled in the repository's
//! `docs/features.md`).
//!
//! Trades and L1 quotes go in, one row of features per UTC minute comes out. One module per
//! concept, all plain Rust on integer milliseconds, ticks and lots:
//!
//! * [`config`]: parameters and unit conversions;
//! * [`bars`]: one-minute OHLC, volume, VWAP;
//! * [`quotes`]: trade/quote alignment, close snapshot, rolling spread, quote-imbalance EMA;
//! * [`order_flow`]: prints, quote rule, tick-rule fallback, agreement with the taker side;
//! * [`volatility`]: sigma of one-minute returns, the volatility-scaled bin width, rebucketing;
//! * [`profile`]: the rolling volume histogram;
//! * [`value_area`]: POC / VAL / VAH;
//! * [`bvc`]: the BVC proxy (manual fallback);
//! * [`engine`]: the streaming engine and the batch entry point.
//!
//! `python` (cargo feature `python`, built by maturin) is a thin PyO3 module over [`engine`].
//! Everything is deterministic: the same inputs give bit-identical rows.

#![warn(missing_docs)]

pub mod bars;
pub mod bvc;
pub mod config;
pub mod engine;
pub mod order_flow;
pub mod profile;
pub mod quotes;
pub mod value_area;
pub mod volatility;

#[cfg(feature = "python")]
mod python;
