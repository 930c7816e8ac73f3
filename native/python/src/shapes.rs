//! The audit's per-value shape checks of `redact_core::audit::shapes`, for
//! `tests/audit/test_native_shapes.py` (which holds them to `redact_proxy/audit/shapes.py`).
//! Each call is a few dozen nanoseconds of work, so none releases the GIL; a `str` that is
//! not valid UTF-8 (a lone surrogate) raises `UnicodeEncodeError` before any work.

use pyo3::prelude::*;

use redact_core::audit::shapes;

/// `shapes.shape_kinds(text)` as a bit set: uuid 1, digits 2, high_entropy 4.
#[pyfunction]
fn audit_shape_kinds(text: &str) -> u64 {
    shapes::shape_kinds(text)
}

/// `shapes.is_free_text(text)`.
#[pyfunction]
fn audit_is_free_text(text: &str) -> bool {
    shapes::is_free_text(text)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(audit_shape_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(audit_is_free_text, m)?)?;
    Ok(())
}
