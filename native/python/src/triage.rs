//! Triage: the wire walk of `redact_core::walk`, for `redact_proxy/triage.py`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use redact_core::walk;

/// The walk's table (see `walk::Schema::new`).
#[pyclass(frozen)]
pub struct Schema(walk::Schema);

#[pymethods]
impl Schema {
    /// `messages[i]` lists `(number, kind, target, wires, packed, oneof, flags)` for
    /// each field of message `i` (kinds PLAIN 0, MESSAGE 1, KEY 2, TEXT 3, SCALAR 4,
    /// INT 5, BOOL 6; flags ITEM 1, UTF8 2, REPEATED 4, NESTED 8, NUL_FREE 16); `target`
    /// is the message of a MESSAGE field and the text channel (below `channels`) of a
    /// TEXT, INT or BOOL field.
    /// Message 0 is where `scan` starts.
    #[new]
    fn new(messages: Vec<Vec<walk::Entry>>, channels: u32) -> PyResult<Self> {
        walk::Schema::new(messages, channels).map(Schema).map_err(PyValueError::new_err)
    }
}

type Found<'py> = (Vec<Bound<'py, PyBytes>>, Vec<Bound<'py, PyBytes>>, Vec<Bound<'py, PyBytes>>, u64, bool);

/// Walk one protobuf `body` as `schema`'s root message and return the distinct
/// attribute keys (any depth), the keys of attributes whose value is a number or
/// boolean, the text channels (each NUL, text, NUL, ..., text, NUL), the number of
/// items, and whether a NESTED field occurred. None: cannot vouch (see the crate
/// docs). The GIL is released during the walk.
#[pyfunction]
pub fn scan<'py>(py: Python<'py>, body: &[u8], schema: &Schema) -> Option<Found<'py>> {
    let found = py.detach(|| walk::scan(body, &schema.0))?;
    let bytes = |k: &[u8]| PyBytes::new(py, k);
    Some((
        found.keys.into_iter().map(bytes).collect(),
        found.scalar_keys.into_iter().map(bytes).collect(),
        found.texts.iter().map(|t| bytes(t)).collect(),
        found.items,
        found.nested,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Schema>()?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    Ok(())
}
