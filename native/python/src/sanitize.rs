//! The statement and URL sanitizers of `redact_core::sanitize`, for Python callers and
//! the differential test (`tests/policy/test_native_sanitize.py`). Each call releases the
//! GIL; a `str` that is not valid UTF-8 (a lone surrogate) raises `UnicodeEncodeError`
//! before any work.

use pyo3::prelude::*;

use redact_core::sanitize;

/// `redact_proxy.policy.statements.sanitize(text, system)`.
#[pyfunction]
#[pyo3(signature = (text, system=None))]
fn sanitize_statement(py: Python<'_>, text: &str, system: Option<&str>) -> String {
    py.detach(|| sanitize::sanitize_statement(text, system))
}

/// `redact_proxy.policy.sql.sanitize_sql(statement, dialect)`.
#[pyfunction]
#[pyo3(signature = (statement, dialect=None))]
fn sanitize_sql(py: Python<'_>, statement: &str, dialect: Option<&str>) -> String {
    py.detach(|| sanitize::sanitize_sql(statement, dialect))
}

/// `redact_proxy.policy.statements.sanitize_span_name(name, system)`.
#[pyfunction]
#[pyo3(signature = (name, system=None))]
fn sql_span_name(py: Python<'_>, name: &str, system: Option<&str>) -> String {
    py.detach(|| sanitize::sql_span_name(name, system))
}

/// `redact_proxy.policy.url.sanitize_url(value, path_ids)`.
#[pyfunction]
#[pyo3(signature = (value, path_ids=false))]
fn sanitize_url(py: Python<'_>, value: &str, path_ids: bool) -> String {
    py.detach(|| sanitize::sanitize_url(value, path_ids))
}

/// `redact_proxy.policy.url.sanitize_span_name(name, path_ids)`.
#[pyfunction]
fn url_span_name(py: Python<'_>, name: &str, path_ids: bool) -> String {
    py.detach(|| sanitize::url_span_name(name, path_ids))
}

/// `redact_proxy.policy.url.sanitize_query(value)`.
#[pyfunction]
fn sanitize_query(py: Python<'_>, value: &str) -> String {
    py.detach(|| sanitize::sanitize_query(value))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sanitize_statement, m)?)?;
    m.add_function(wrap_pyfunction!(sanitize_sql, m)?)?;
    m.add_function(wrap_pyfunction!(sql_span_name, m)?)?;
    m.add_function(wrap_pyfunction!(sanitize_url, m)?)?;
    m.add_function(wrap_pyfunction!(url_span_name, m)?)?;
    m.add_function(wrap_pyfunction!(sanitize_query, m)?)?;
    m.add("SANITIZE_UNICODE_VERSION", sanitize::UNICODE_VERSION)?;
    Ok(())
}
