//! OTLP-JSON: `redact_core::json`'s transcoding both ways, for `redact_proxy/otlpjson.py`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use redact_core::json;

/// The transcoder's table (see `json::JsonSchema::new`).
#[pyclass(frozen)]
pub struct JsonSchema(json::JsonSchema);

#[pymethods]
impl JsonSchema {
    /// `messages[i]` is `(short name, fields)`, each field
    /// `(number, name, json_name, type, flags, target, id_length, oneof)`: `type` the
    /// descriptor's TYPE_* number, flags REPEATED 1, PRESENCE 2, PACKED 4, `target` the
    /// message (TYPE_MESSAGE) or enum (TYPE_ENUM) index. `enums[i]` lists `(name,
    /// number)`. `foreign` lists `(root message, member name, label)`: a root member that
    /// marks a body as another signal's export request. Raises ValueError on a bad table.
    #[new]
    fn new(
        messages: Vec<json::MessageEntry>,
        enums: Vec<Vec<(String, i32)>>,
        foreign: Vec<(u32, String, String)>,
    ) -> PyResult<Self> {
        json::JsonSchema::new(messages, enums, foreign).map(JsonSchema).map_err(PyValueError::new_err)
    }
}

/// An OTLP-JSON body as the protobuf of message `root`. ValueError (naming the problem,
/// never content) when the Python codec would refuse it. The GIL is released.
#[pyfunction]
pub fn json_to_pb<'py>(py: Python<'py>, body: &[u8], schema: &JsonSchema, root: usize) -> PyResult<Bound<'py, PyBytes>> {
    let out = py.detach(|| json::json_to_pb(body, &schema.0, root)).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &out))
}

/// Protobuf message `root` as OTLP-JSON (what the Python codec writes). ValueError when
/// upb would refuse the bytes. The GIL is released.
#[pyfunction]
pub fn pb_to_json<'py>(py: Python<'py>, body: &[u8], schema: &JsonSchema, root: usize) -> PyResult<Bound<'py, PyBytes>> {
    let out = py.detach(|| json::pb_to_json(body, &schema.0, root)).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<JsonSchema>()?;
    m.add_function(wrap_pyfunction!(json_to_pb, m)?)?;
    m.add_function(wrap_pyfunction!(pb_to_json, m)?)?;
    Ok(())
}
