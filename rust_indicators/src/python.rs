//! The Python module `rust_indicators` (cargo feature `python`, built by maturin).
//!
//! Thin on purpose: convert arguments, release the GIL around the computation, map
//! [`ValueAreaError`] to `ValueError`. The semantics live in the pure-Rust modules.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::value_area::{self as va, ValueAreaError};

/// `(poc, val, vah, va_volume, total_volume)` as returned to Python.
type ValueAreaTuple = (i64, i64, i64, f64, f64);

fn to_py_err(err: ValueAreaError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// Value area (POC, VAL, VAH) of a volume histogram (specv2 §5.6).
///
/// keys: integer bin keys (lower edges in ticks or base bins), multiples of `step`, unique, any
/// order. volumes: finite floats >= 0, one per key. step: distance between adjacent bin keys
/// (> 0). va_fraction: share of the volume the value area must hold, in (0, 1].
///
/// The profile spans the lowest to the highest key with volume (zero-volume bins inside it
/// included). POC = the largest bin (ties: nearest the middle of the range, then the lower key).
/// The value area grows from the POC one adjacent bin at a time, the larger neighbour first (ties:
/// the upper one), until it holds >= va_fraction of the total (relative tolerance 1e-12).
///
/// Returns (poc, val, vah, va_volume, total_volume), or None when the total volume is 0.
/// Raises ValueError on invalid input.
#[pyfunction]
#[pyo3(name = "value_area", signature = (keys, volumes, step, va_fraction))]
fn py_value_area(
    py: Python<'_>,
    keys: Vec<i64>,
    volumes: Vec<f64>,
    step: i64,
    va_fraction: f64,
) -> PyResult<Option<ValueAreaTuple>> {
    let result = py.detach(|| va::value_area(&keys, &volumes, step, va_fraction));
    Ok(result
        .map_err(to_py_err)?
        .map(|v| (v.poc, v.val, v.vah, v.va_volume, v.total_volume)))
}

/// Numeric core of auction-trader's feature engine (Rust, via PyO3).
#[pymodule]
fn rust_indicators(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(py_value_area, m)?)?;
    Ok(())
}
