//! `rust_indicators`: the numeric core of auction-trader's feature engine.
//!
//! The crate is plain Rust with an optional Python face:
//!
//! * [`value_area`]: POC / VAL / VAH of a volume profile (specv2 §5.6, the "Value area" rules of
//!   DESIGN.md), on sparse (`key -> volume`) or dense histograms with integer bin keys.
//! * `python` (cargo feature `python`, built by maturin): a thin PyO3 module, importable as
//!   `rust_indicators`, that converts arguments and errors and calls the functions above.
//!
//! Everything numeric is deterministic: the same inputs give bit-identical outputs, and the order
//! of floating-point sums is part of each function's contract.

#![warn(missing_docs)]

pub mod value_area;

#[cfg(feature = "python")]
mod python;
