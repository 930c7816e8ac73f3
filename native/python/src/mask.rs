//! Mask: the `mask` action's masker and the keyed hash of `redact_core`, for the Python
//! side and for `tests/scrub/test_native_mask.py` (which holds them to
//! `redact_proxy/policy/detectors.py`).

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use redact_core::hash::{HashAlg, Hasher};
use redact_core::mask;

/// `hash_alg` is the policy's `hash.algorithm` (`hmac-sha256` needs `key`, `sha256` takes
/// none); a missing key gives no hasher, which only a `{hash}` replacement needs.
fn hasher(key: Option<Vec<u8>>, alg: &str) -> PyResult<Option<Hasher>> {
    match (alg, key) {
        ("sha256", None) => Ok(Some(Hasher::new(HashAlg::Sha256))),
        ("hmac-sha256", Some(key)) => Ok(Some(Hasher::new(HashAlg::HmacSha256(key)))),
        ("hmac-sha256", None) => Ok(None),
        ("sha256", Some(_)) => Err(PyValueError::new_err("hash algorithm sha256 takes no key")),
        _ => Err(PyValueError::new_err("unknown hash algorithm; expected hmac-sha256 or sha256")),
    }
}

/// `Masker(detectors, regexes, replacement, hash_key=None, hash_alg="hmac-sha256")`:
/// `detectors.Masker` natively. ValueError for an unknown detector, a refused regex or a
/// `{hash}` replacement without a key.
#[pyclass(frozen, name = "Masker")]
pub struct PyMasker(mask::Masker);

#[pymethods]
impl PyMasker {
    #[new]
    #[pyo3(signature = (detectors, regexes, replacement, hash_key=None, hash_alg="hmac-sha256"))]
    fn new(detectors: Vec<String>, regexes: Vec<String>, replacement: String, hash_key: Option<Vec<u8>>,
           hash_alg: &str) -> PyResult<Self> {
        let hasher = hasher(hash_key, hash_alg)?.map(Arc::new);
        let spec = mask::MaskSpec { detectors, regexes, replacement };
        mask::Masker::new(&spec, hasher).map(PyMasker).map_err(PyValueError::new_err)
    }

    /// The value with every detection replaced, or None if nothing was replaced. A str
    /// holding a lone surrogate (not UTF-8) is a ValueError: values from the wire are
    /// always UTF-8. The GIL is released while masking.
    fn mask(&self, py: Python<'_>, text: &Bound<'_, PyString>) -> PyResult<Option<String>> {
        let text = text.to_str().map_err(|_| PyValueError::new_err("the value is not valid UTF-8"))?;
        Ok(py.detach(|| self.0.mask(text)))
    }
}

/// The hex digest of `data` (`compile._hasher`); ValueError for HMAC without a key.
#[pyfunction]
#[pyo3(signature = (key, alg, data))]
fn hash_hex(py: Python<'_>, key: Option<Vec<u8>>, alg: &str, data: &[u8]) -> PyResult<String> {
    let hasher = hasher(key, alg)?.ok_or_else(|| PyValueError::new_err("hmac-sha256 needs a key"))?;
    Ok(py.detach(|| hasher.hex(data)))
}

/// Why `pattern` is not a regex of the engine's dialect (RE2 syntax), or None.
#[pyfunction]
fn check_regex(pattern: &str) -> Option<String> {
    mask::check_regex(pattern).err()
}

/// `(name, pattern)` of every built-in detector in precedence order, the digit detectors
/// and the fewest digits they match: for the test that holds them equal to the Python table.
#[pyfunction]
fn mask_detectors() -> (Vec<(&'static str, &'static str)>, Vec<&'static str>, usize) {
    (mask::DETECTORS.iter().map(|d| (d.name, d.pattern)).collect(), mask::DIGIT_DETECTORS.to_vec(), mask::DIGIT_MIN_RUN)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMasker>()?;
    m.add_function(wrap_pyfunction!(hash_hex, m)?)?;
    m.add_function(wrap_pyfunction!(check_regex, m)?)?;
    m.add_function(wrap_pyfunction!(mask_detectors, m)?)?;
    Ok(())
}
