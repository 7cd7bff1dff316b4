//! The Python module `rust_indicators` (cargo feature `python`, built by maturin).
//!
//! Thin on purpose: convert arguments, release the GIL around batch work, map errors to
//! `ValueError`. The semantics live in the pure-Rust modules. Per-event calls take primitives
//! (ns, floats, an int side): the caller reads each Nautilus tick field once.

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::intern;
use pyo3::types::{PyDict, PyList, PyType};

use crate::config::EngineConfig;
use crate::engine::{self, Column, FeatureEngine, FeatureRow, FEATURE_COLUMNS};
use crate::order_flow::OrderFlowSource;
use crate::value_area::{self as va, ValueAreaError};

/// `(poc, val, vah, va_volume, total_volume)` as returned to Python.
type ValueAreaTuple = (i64, i64, i64, f64, f64);

fn value_error(err: impl std::fmt::Display) -> PyErr {
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
fn py_value_area(py: Python<'_>, keys: Vec<i64>, volumes: Vec<f64>, step: i64, va_fraction: f64) -> PyResult<Option<ValueAreaTuple>> {
    let result = py.detach(|| va::value_area(&keys, &volumes, step, va_fraction));
    Ok(result
        .map_err(|e: ValueAreaError| value_error(e))?
        .map(|v| (v.poc, v.val, v.vah, v.va_volume, v.total_volume)))
}

/// Feature engine parameters (specv2 §17.3 defaults); all keyword arguments.
#[pyclass(name = "EngineConfig", module = "rust_indicators", frozen)]
#[derive(Clone)]
struct PyEngineConfig(EngineConfig);

#[pymethods]
impl PyEngineConfig {
    #[new]
    #[pyo3(signature = (*, tick_size=0.1, size_step=0.001, rolling_window_minutes=240, va_fraction=0.7,
        base_bin_ticks=1, alpha_bin=0.25, bin_width_max_ticks=200, rebucket_interval_minutes=15,
        rebucket_change_pct=0.25, min_va_bins=20, max_quote_staleness_ms=250, use_tick_rule_fallback=true,
        order_flow_source="inferred", qimb_ema_span_seconds=60.0, spread_lookback_minutes=60, use_bvc=false,
        lookback_bvc=60))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        tick_size: f64,
        size_step: f64,
        rolling_window_minutes: usize,
        va_fraction: f64,
        base_bin_ticks: i64,
        alpha_bin: f64,
        bin_width_max_ticks: i64,
        rebucket_interval_minutes: i64,
        rebucket_change_pct: f64,
        min_va_bins: usize,
        max_quote_staleness_ms: i64,
        use_tick_rule_fallback: bool,
        order_flow_source: &str,
        qimb_ema_span_seconds: f64,
        spread_lookback_minutes: usize,
        use_bvc: bool,
        lookback_bvc: usize,
    ) -> PyResult<Self> {
        let order_flow_source = OrderFlowSource::parse(order_flow_source)
            .ok_or_else(|| value_error(format!("order_flow_source must be 'inferred' or 'exchange', got {order_flow_source:?}")))?;
        let cfg = EngineConfig {
            tick_size,
            size_step,
            rolling_window_minutes,
            va_fraction,
            base_bin_ticks,
            alpha_bin,
            bin_width_max_ticks,
            rebucket_interval_minutes,
            rebucket_change_pct,
            min_va_bins,
            max_quote_staleness_ms,
            use_tick_rule_fallback,
            order_flow_source,
            qimb_ema_span_seconds,
            spread_lookback_minutes,
            use_bvc,
            lookback_bvc,
        };
        cfg.validate().map_err(value_error)?;
        Ok(Self(cfg))
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.0)
    }

    #[getter]
    fn tick_size(&self) -> f64 {
        self.0.tick_size
    }

    #[getter]
    fn rolling_window_minutes(&self) -> usize {
        self.0.rolling_window_minutes
    }
}

/// Streaming feature engine: feed trades and quotes in time order, read one row per minute.
///
/// on_trade / on_quote / close_through return the number of minutes they closed, so a caller
/// knows when `last_row` has changed without asking.
#[pyclass(name = "FeatureEngine", module = "rust_indicators")]
struct PyFeatureEngine(FeatureEngine);

#[pymethods]
impl PyFeatureEngine {
    #[new]
    fn new(config: &PyEngineConfig) -> PyResult<Self> {
        FeatureEngine::new(config.0.clone()).map(Self).map_err(value_error)
    }

    /// A trade: exchange time (ns), price, size, taker side (0 none, 1 buyer, 2 seller).
    fn on_trade(&mut self, ts_ns: i64, price: f64, size: f64, side: u8) -> u64 {
        let before = self.0.minutes_closed();
        self.0.on_trade(ts_ns, price, size, side);
        self.0.minutes_closed() - before
    }

    /// An L1 snapshot: exchange time (ns), bid, bid size, ask, ask size.
    fn on_quote(&mut self, ts_ns: i64, bid: f64, bid_size: f64, ask: f64, ask_size: f64) -> u64 {
        let before = self.0.minutes_closed();
        self.0.on_quote(ts_ns, bid, bid_size, ask, ask_size);
        self.0.minutes_closed() - before
    }

    /// Nautilus ticks in arrival order - ``TradeTick`` (those of type ``trade_type``) and
    /// ``QuoteTick`` objects - each exactly as on_trade / on_quote with its fields, in one call:
    /// a strategy's tick handler only appends to a list (no Python frame per tick) and the
    /// indicator hands the list over before anyone reads a row.
    fn on_ticks(&mut self, ticks: &Bound<'_, PyList>, trade_type: &Bound<'_, PyType>) -> PyResult<u64> {
        let py = ticks.py();
        let before = self.0.minutes_closed();
        let ts_event = intern!(py, "ts_event");
        for tick in ticks.iter() {
            let ts: i64 = tick.getattr(ts_event)?.extract()?;
            // A Price / Quantity converts through its __float__ (the value as_double returns),
            // without looking a method up.
            let value = |name: &Bound<'_, pyo3::types::PyString>| -> PyResult<f64> { tick.getattr(name)?.extract() };
            if tick.get_type().is(trade_type) {
                let side: u8 = tick.getattr(intern!(py, "aggressor_side"))?.extract()?;
                self.0.on_trade(ts, value(intern!(py, "price"))?, value(intern!(py, "size"))?, side);
            } else {
                let (bid, bid_size) = (value(intern!(py, "bid_price"))?, value(intern!(py, "bid_size"))?);
                let (ask, ask_size) = (value(intern!(py, "ask_price"))?, value(intern!(py, "ask_size"))?);
                self.0.on_quote(ts, bid, bid_size, ask, ask_size);
            }
        }
        Ok(self.0.minutes_closed() - before)
    }

    /// Columns of trades and quotes (each in time order), merged with trades first at equal
    /// milliseconds, as compute_features does, without closing the last minute: a catalog fed
    /// chunk by chunk, each chunk cut at the same millisecond in both streams, gives the rows of
    /// one compute_features call over the whole (then call finish).
    #[allow(clippy::too_many_arguments)]
    fn on_arrays<'py>(
        &mut self,
        py: Python<'py>,
        trade_ts: PyReadonlyArray1<'py, i64>,
        trade_price: PyReadonlyArray1<'py, f64>,
        trade_size: PyReadonlyArray1<'py, f64>,
        trade_side: PyReadonlyArray1<'py, u8>,
        quote_ts: PyReadonlyArray1<'py, i64>,
        bid: PyReadonlyArray1<'py, f64>,
        bid_size: PyReadonlyArray1<'py, f64>,
        ask: PyReadonlyArray1<'py, f64>,
        ask_size: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<u64> {
        let (t, p, s, d) = (trade_ts.as_slice()?, trade_price.as_slice()?, trade_size.as_slice()?, trade_side.as_slice()?);
        let (q, b, bs, a, as_) = (quote_ts.as_slice()?, bid.as_slice()?, bid_size.as_slice()?, ask.as_slice()?, ask_size.as_slice()?);
        if p.len() != t.len() || s.len() != t.len() || d.len() != t.len() {
            return Err(value_error("trade arrays must have the same length"));
        }
        if b.len() != q.len() || bs.len() != q.len() || a.len() != q.len() || as_.len() != q.len() {
            return Err(value_error("quote arrays must have the same length"));
        }
        let before = self.0.minutes_closed();
        let engine = &mut self.0;
        py.detach(|| engine.on_arrays(t, p, s, d, q, b, bs, a, as_));
        Ok(self.0.minutes_closed() - before)
    }

    /// The clock reached ts_ns: close every minute that ended before it.
    fn close_through(&mut self, ts_ns: i64) -> u64 {
        let before = self.0.minutes_closed();
        self.0.close_through(ts_ns);
        self.0.minutes_closed() - before
    }

    /// End of data: close the open minute.
    fn finish(&mut self) -> u64 {
        let before = self.0.minutes_closed();
        self.0.finish();
        self.0.minutes_closed() - before
    }

    /// The last closed minute's row (a FeatureRow with one attribute per column), or None.
    fn last_row(&self) -> Option<FeatureRow> {
        self.0.last_row().cloned()
    }

    /// Rows closed since the last call, as {column: numpy array}.
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let rows = self.0.drain_rows();
        columns(py, &rows)
    }

    /// Distance (price units) from `level` to the nearest trade of the last closed minute.
    fn nearest_trade_distance(&self, level: f64) -> Option<f64> {
        self.0.nearest_trade_distance(level)
    }

    #[getter]
    fn minutes_closed(&self) -> u64 {
        self.0.minutes_closed()
    }

    #[getter]
    fn late_events(&self) -> u64 {
        self.0.late_events()
    }
}

#[pymethods]
impl FeatureRow {
    /// The row as {column: value}.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = columns(py, std::slice::from_ref(self))?;
        let out = PyDict::new(py);
        for &name in FEATURE_COLUMNS {
            out.set_item(name, d.get_item(name)?.expect("column present").get_item(0)?)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("FeatureRow(ts_min={}, close={}, poc={}, val={}, vah={}, of_1m={})", self.ts_min, self.close, self.poc, self.val, self.vah, self.of_1m)
    }
}

/// Rows -> {column: numpy array} in FEATURE_COLUMNS order.
fn columns<'py>(py: Python<'py>, rows: &[FeatureRow]) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, column) in engine::columns(rows) {
        match column {
            Column::I64(v) => out.set_item(name, v.into_pyarray(py))?,
            Column::F64(v) => out.set_item(name, v.into_pyarray(py))?,
            Column::Bool(v) => out.set_item(name, v.into_pyarray(py))?,
        }
    }
    Ok(out)
}

/// Features of whole streams at once (offline work): every minute's row as {column: array}.
///
/// Trades: ts (int64 ns), price, size (float64), side (uint8: 0 none, 1 buyer, 2 seller).
/// Quotes: ts (int64 ns), bid, bid_size, ask, ask_size (float64). Each stream in time order.
#[pyfunction]
#[pyo3(signature = (config, trade_ts, trade_price, trade_size, trade_side, quote_ts, bid, bid_size, ask, ask_size))]
#[allow(clippy::too_many_arguments)]
fn compute_features<'py>(
    py: Python<'py>,
    config: &PyEngineConfig,
    trade_ts: PyReadonlyArray1<'py, i64>,
    trade_price: PyReadonlyArray1<'py, f64>,
    trade_size: PyReadonlyArray1<'py, f64>,
    trade_side: PyReadonlyArray1<'py, u8>,
    quote_ts: PyReadonlyArray1<'py, i64>,
    bid: PyReadonlyArray1<'py, f64>,
    bid_size: PyReadonlyArray1<'py, f64>,
    ask: PyReadonlyArray1<'py, f64>,
    ask_size: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let slices = (
        trade_ts.as_slice()?,
        trade_price.as_slice()?,
        trade_size.as_slice()?,
        trade_side.as_slice()?,
        quote_ts.as_slice()?,
        bid.as_slice()?,
        bid_size.as_slice()?,
        ask.as_slice()?,
        ask_size.as_slice()?,
    );
    let cfg = config.0.clone();
    let rows = py
        .detach(|| engine::compute_features(cfg, slices.0, slices.1, slices.2, slices.3, slices.4, slices.5, slices.6, slices.7, slices.8))
        .map_err(value_error)?;
    columns(py, &rows)
}

/// Numeric core of auction-trader's feature engine (Rust, via PyO3).
#[pymodule]
fn rust_indicators(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FEATURE_COLUMNS", FEATURE_COLUMNS.to_vec())?;
    m.add_class::<PyEngineConfig>()?;
    m.add_class::<PyFeatureEngine>()?;
    m.add_class::<FeatureRow>()?;
    m.add_function(wrap_pyfunction!(py_value_area, m)?)?;
    m.add_function(wrap_pyfunction!(compute_features, m)?)?;
    Ok(())
}
