//! `redact_proxy._native`: the PyO3 shell around `redact-core`. Each submodule here wraps
//! one part of the core and registers its functions; none holds logic of its own.

use pyo3::prelude::*;

mod audit;
mod engine;
mod json;
mod mask;
mod sanitize;
mod triage;

#[pymodule]
#[pyo3(name = "_native")]
fn redact_proxy_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    audit::register(m)?;
    engine::register(m)?;
    json::register(m)?;
    mask::register(m)?;
    sanitize::register(m)?;
    triage::register(m)?;
    Ok(())
}
