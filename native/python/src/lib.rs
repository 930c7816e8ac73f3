//! `redact_proxy._native`: the PyO3 shell around `redact-core`. Each submodule here wraps
//! one part of the core and registers its functions; none holds logic of its own.

use pyo3::prelude::*;

mod engine;
mod json;
mod mask;
mod sanitize;
mod shapes;
mod triage;

#[pymodule]
#[pyo3(name = "_native")]
fn redact_proxy_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    engine::register(m)?;
    json::register(m)?;
    mask::register(m)?;
    sanitize::register(m)?;
    shapes::register(m)?;
    triage::register(m)?;
    Ok(())
}
