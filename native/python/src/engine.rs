//! The engine (`redact_core::engine`) for `redact_proxy/engine.py`: built once per policy
//! from plain tuples, called once per body with the GIL released.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use redact_core::engine::spec::{build, DropSpec, MaskSpecTuple, MessageSpec, RewriterSpec, Spec, TextSpec};
use redact_core::engine::{self as core, Answer, Decision, Op, Outcome, Question};
use redact_core::hash::{HashAlg, Hasher};

type DecisionSpec = (u8, bool, u32, Vec<u32>, Option<String>, Vec<u32>, String);

#[pyclass(frozen)]
pub struct Engine(core::Engine);

fn bad(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn decision(d: DecisionSpec) -> PyResult<Decision> {
    let (op, collector, rule, masks, new_key, key_rules, replacement) = d;
    let op = match op {
        0 => Op::Keep,
        1 => Op::Remove,
        2 => Op::Hash { collector },
        3 => Op::Rewrite,
        4 => Op::Replace(replacement),
        _ => return Err(bad("bad op")),
    };
    Ok(Decision { op, rule, masks, new_key, key_rules })
}

fn question(q: &Bound<'_, PyTuple>) -> PyResult<Question> {
    let kind: u8 = q.get_item(0)?.extract()?;
    Ok(match kind {
        0 => Question::Key { decider: q.get_item(1)?.extract()?, parent: q.get_item(2)?.extract()?, key: q.get_item(3)?.extract()? },
        1 => Question::Text { ops: q.get_item(1)?.extract()?, text: q.get_item(2)?.extract()?, system: q.get_item(3)?.extract()? },
        2 => Question::Rewrite {
            rule: q.get_item(1)?.extract()?,
            masks: q.get_item(2)?.extract()?,
            system: q.get_item(3)?.extract()?,
            value: q.get_item(4)?.extract()?,
        },
        3 => Question::Json {
            decider: q.get_item(1)?.extract()?,
            path: q.get_item(2)?.extract()?,
            masks: q.get_item(3)?.extract()?,
            system: q.get_item(4)?.extract()?,
            text: q.get_item(5)?.extract()?,
        },
        4 => Question::Mask { rule: q.get_item(1)?.extract()?, digits: q.get_item(2)?.extract()?, text: q.get_item(3)?.extract()? },
        _ => return Err(bad("bad question kind")),
    })
}

fn ask_tuple<'py>(py: Python<'py>, q: Question) -> PyResult<Bound<'py, PyTuple>> {
    match q {
        Question::Key { decider, parent, key } => (0u8, decider, parent, key).into_pyobject(py),
        Question::Text { ops, text, system } => (1u8, ops, text, system).into_pyobject(py),
        Question::Rewrite { rule, masks, system, value } => {
            (2u8, rule, masks, system, PyBytes::new(py, &value)).into_pyobject(py)
        }
        Question::Json { decider, path, masks, system, text } => (3u8, decider, path, masks, system, text).into_pyobject(py),
        Question::Mask { rule, digits, text } => (4u8, rule, digits, text).into_pyobject(py),
    }
}

#[pymethods]
impl Engine {
    /// See `redact_proxy/engine.py` (`_build`), which makes every argument.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(py: Python<'_>, layout: [u32; 11], signals: Vec<(Vec<MessageSpec>, Vec<DropSpec>)>, descend: Vec<bool>, texts: Vec<TextSpec>,
           mask_digits: Vec<bool>, int_short: i64, hash: (String, Option<Vec<u8>>), n_rules: usize,
           masks: Vec<Option<MaskSpecTuple>>, rewriters: Vec<Option<RewriterSpec>>) -> PyResult<Self> {
        let hasher = match hash {
            (alg, Some(key)) if alg == "hmac-sha256" => Some(Hasher::new(HashAlg::HmacSha256(key))),
            (alg, _) if alg == "sha256" => Some(Hasher::new(HashAlg::Sha256)),
            _ => None,
        };
        let spec = Spec { layout, masks, rewriters, signals, descend, texts, mask_digits, int_short, n_rules };
        Ok(Engine(py.detach(|| build(spec, hasher)).map_err(bad)?))
    }

    /// Scrub `body` of signal `signal`: ("done", new body or None, items, redactions,
    /// dropped), ("ask", questions) or ("refused", reason). The GIL is released.
    fn scrub<'py>(&self, py: Python<'py>, signal: usize, body: &[u8]) -> PyResult<Bound<'py, PyTuple>> {
        let outcome = py.detach(|| self.0.scrub(signal, body));
        match outcome {
            Ok(Outcome::Done(r)) => {
                let body = r.body.map(|b| PyBytes::new(py, &b));
                ("done", body, r.items_in, r.redactions, r.dropped).into_pyobject(py)
            }
            Ok(Outcome::Ask(questions)) => {
                let qs = questions.into_iter().map(|q| ask_tuple(py, q)).collect::<PyResult<Vec<_>>>()?;
                ("ask", qs).into_pyobject(py)
            }
            Err(core::Refused(why)) => ("refused", why).into_pyobject(py),
        }
    }

    /// Learn key decisions: (decider, parent or None, key, decision) each.
    fn learn_keys(&self, keys: Vec<(usize, Option<String>, String, DecisionSpec)>) -> PyResult<()> {
        for (decider, parent, key, d) in keys {
            self.0.learn_key(decider, parent.as_deref(), &key, decision(d)?);
        }
        Ok(())
    }

    /// Learn the answers to one call's other questions: (question, out or None, counts).
    fn learn_answers(&self, answers: Vec<(Bound<'_, PyTuple>, Option<Vec<u8>>, Vec<(u32, u32)>)>) -> PyResult<()> {
        let mut learnt = Vec::with_capacity(answers.len());
        for (q, out, counts) in answers {
            learnt.push((question(&q)?, Answer { out, counts }));
        }
        self.0.learn_answers(learnt);
        Ok(())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()
}
