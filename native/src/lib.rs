//! Wire-level triage of OTLP protobuf bodies: one pass over the bytes that checks the
//! body is exactly what the decoder accepts and what an encoder would write, counts the
//! items, and collects every attribute key, the keys whose value is a number or boolean,
//! whether any kvlist holds keys under a key, and every string, bytes and integer a
//! mask rule, a whole-field rule or a drop condition reads -- in one text channel per
//! target -- without decoding the batch.
//!
//! Why: redact-proxy's scrubber walks the decoded batch in Python, about 1 µs per
//! attribute, and decoding, dropping unknown fields and re-encoding cost more than the
//! hop it replaces. Most batches hold nothing the policy touches; proving that from what
//! this walk collects costs well under a microsecond per span, and such a batch is then
//! forwarded as the bytes it came in (see `redact_proxy/triage.py`, which owns the
//! policy side of the decision).
//!
//! The walk (`walk.rs`, plain Rust) is driven by a `Schema` built in Python from the
//! protobuf descriptors in use, so this crate knows no OTLP field number. Anything it
//! does not accept exactly -- a field number the schema lacks, a wire type its field does
//! not take, invalid UTF-8 in a string, a malformed or non-minimal (overlong) varint
//! anywhere (tag, length, value, packed element), a packed run that is not whole, a
//! length past the end, a singular field twice in one message (the decoder keeps the
//! last, or merges two messages, while the bytes still carry the first), two members of
//! one oneof, nesting deeper than `MAX_DEPTH`, a NUL inside a text marked NUL_FREE (its
//! channel could not be split back into its texts) -- makes `scan` return None: "cannot
//! vouch for this batch", and the caller decodes and scrubs it in full. It never guesses.
//!
//! Tests: `cargo test --no-default-features` (the walk, without Python; the default
//! `python` feature builds this PyO3 shell, which `tests/scrub/test_triage.py` covers).

pub mod walk;

#[cfg(feature = "python")]
mod python {
    use pyo3::exceptions::PyValueError;
    use pyo3::prelude::*;
    use pyo3::types::PyBytes;

    use crate::walk;

    /// The walk's table (see `walk::Schema::new`).
    #[pyclass(frozen)]
    struct Schema(walk::Schema);

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
    fn scan<'py>(py: Python<'py>, body: &[u8], schema: &Schema) -> Option<Found<'py>> {
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

    #[pymodule]
    #[pyo3(name = "_native")]
    fn redact_proxy_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_class::<Schema>()?;
        m.add_function(wrap_pyfunction!(scan, m)?)?;
        Ok(())
    }
}
