//! The shadow audit's native half (`redact_core::audit`) for `redact_proxy/audit/native.py`:
//! built once per ledger, each call made with the GIL released and the state locked.

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use redact_core::audit::{self as core, shapes, EntrySpec, Outcome, Plan, ProgramOp, Question, Tallied};

#[pyclass(frozen)]
pub struct Audit(Mutex<core::Audit>);

fn bad(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

type PlanSpec = (u32, u8, bool, bool, bool, Option<u32>, u64); // (field, level, skip, shapes, prose, detectors, key kinds)
type OpSpec = (u8, u32, Vec<u8>, u64, u64); // (kind, plan, data, chars, kinds): 0 text, 1 digits, 2 other, 3 key

fn program(ops: Vec<OpSpec>) -> PyResult<Vec<ProgramOp>> {
    ops.into_iter()
        .map(|(kind, plan, data, chars, kinds)| {
            Ok(match kind {
                0 => ProgramOp::Text { plan, data, chars, kinds },
                1 => ProgramOp::Digits { plan, data, kinds },
                2 => ProgramOp::Other { plan },
                3 => ProgramOp::Key { plan, data },
                _ => return Err(bad("bad program op")),
            })
        })
        .collect()
}

fn done<'py>(py: Python<'py>, t: Tallied) -> PyResult<Bound<'py, PyTuple>> {
    let samples: Vec<(u32, Bound<'py, PyBytes>)> = t.samples.iter().map(|(f, d)| (*f, PyBytes::new(py, d))).collect();
    ("done", t.found, samples).into_pyobject(py)
}

impl Audit {
    fn with<T>(&self, f: impl FnOnce(&mut core::Audit) -> T) -> T {
        let mut guard = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

#[pymethods]
impl Audit {
    /// See `redact_proxy/audit/native.py`, which makes every argument.
    #[new]
    fn new(layout: [u32; 11], tables: Vec<Vec<Vec<EntrySpec>>>, n_spaces: usize, detectors: Vec<String>) -> PyResult<Self> {
        Ok(Audit(Mutex::new(core::Audit::new(layout, tables, n_spaces, detectors).map_err(bad)?)))
    }

    /// Count one scrubbed body: ("done", found, samples), ("ask", questions) or
    /// ("refused", reason). `found`: (level, kinds, n) each; `samples`: (field, value bytes).
    fn observe<'py>(&self, py: Python<'py>, signal: usize, body: &[u8]) -> PyResult<Bound<'py, PyTuple>> {
        let outcome = py.detach(|| self.with(|a| a.observe(signal, body)));
        match outcome {
            Outcome::Done(t) => done(py, t),
            Outcome::Ask(questions) => {
                let qs = questions
                    .into_iter()
                    .map(|q| match q {
                        Question::Key { space, parent, path, key } => (0u8, space, parent, path, key).into_pyobject(py),
                        Question::Json { plan, space, path, text } => (1u8, space, Some(plan), path, text).into_pyobject(py),
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                ("ask", qs).into_pyobject(py)
            }
            Outcome::Refused(why) => ("refused", why).into_pyobject(py),
        }
    }

    /// Run a recorded program: (kind, plan, data, chars, kinds) each.
    fn run<'py>(&self, py: Python<'py>, ops: Vec<OpSpec>) -> PyResult<Bound<'py, PyTuple>> {
        let ops = program(ops)?;
        let t = py.detach(|| self.with(|a| a.run(ops))).map_err(bad)?;
        done(py, t)
    }

    fn add_field(&self, shapes: bool, pooled: bool) -> u32 {
        self.with(|a| a.add_field(shapes, pooled))
    }

    fn set_field_shapes(&self, field: u32, shapes: bool) -> PyResult<()> {
        self.with(|a| a.set_field_shapes(field, shapes)).map_err(bad)
    }

    fn add_detectors(&self, names: Vec<String>) -> PyResult<u32> {
        self.with(|a| a.add_detectors(&names)).map_err(bad)
    }

    fn add_plan(&self, plan: PlanSpec) -> PyResult<u32> {
        let (field, level, skip, shapes, prose, detectors, key_kinds) = plan;
        self.with(|a| a.add_plan(Plan { field, level, skip, shapes, prose, detectors, key_kinds })).map_err(bad)
    }

    fn plan_count(&self) -> usize {
        self.with(|a| a.plan_count())
    }

    fn set_texts(&self, signal: usize, plans: Vec<u32>) -> PyResult<()> {
        self.with(|a| a.set_texts(signal, plans)).map_err(bad)
    }

    /// Learn key plans: (space, parent plan or None, path, key, plan) each.
    fn learn_keys(&self, keys: Vec<(u32, Option<u32>, String, String, u32)>) -> PyResult<()> {
        self.with(|a| {
            for (space, parent, path, key, plan) in keys {
                a.learn_key(space, parent, &path, &key, plan)?;
            }
            Ok::<(), String>(())
        })
        .map_err(bad)
    }

    fn learn_program(&self, plan: u32, text: &str, ops: Vec<OpSpec>) -> PyResult<()> {
        let ops = program(ops)?;
        self.with(|a| a.learn_program(plan, text, ops)).map_err(bad)
    }

    fn reset_plans(&self) {
        self.with(|a| a.reset_plans())
    }

    /// Every field's tallies: (values, chars, longest, sketch size, its largest hash,
    /// flagged, [(kinds, n)]).
    fn fields(&self) -> Vec<(u64, u64, u64, usize, u64, bool, Vec<(u64, u64)>)> {
        self.with(|a| {
            a.fields()
                .iter()
                .map(|f| {
                    let m = &f.sketch.mins;
                    (f.values, f.chars, f.longest, m.len(), m.last().copied().unwrap_or(0), f.flagged, f.kinds.clone())
                })
                .collect()
        })
    }

    /// Bytes the native tallies, plans and memos hold, about.
    fn approx_bytes(&self) -> usize {
        self.with(|a| a.approx_bytes())
    }

    /// The sketch hash of `data` (the reference ledger is given it in the differential test).
    fn hash64(&self, data: &[u8]) -> u64 {
        self.with(|a| a.hash64(data))
    }

    #[getter]
    fn sketch_k(&self) -> usize {
        core::SKETCH_K
    }
}

/// `shapes.shape_kinds(text)` as a bit set: uuid 1, digits 2, high_entropy 4 (for
/// `tests/audit/test_native_shapes.py`; a few dozen nanoseconds, so the GIL is kept).
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
    m.add_class::<Audit>()?;
    m.add_function(wrap_pyfunction!(audit_shape_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(audit_is_free_text, m)?)?;
    Ok(())
}
