//! Mask engine cost without Python: wall ns per 200-byte value (best of 5 runs) for the doctrine's detector set
//! on `benchmarks/engine.py`-style free text (words, an e-mail in ~3% and an address in
//! ~2% of the slots) and on the same words alone, through `mask` (the regexes' cache
//! pools) and `mask_with` (a per-thread `MaskCache`).
//!
//!     cargo run --release -p redact-core --example mask_bench [-- --each]
//!
//! `--each`: every detector alone on the clean values.

use std::time::Instant;

use redact_core::mask::{MaskSpec, Masker};

const WORDS: &[&str] = &["the", "room", "message", "sent", "at", "retry", "after", "user", "joined", "left", "call",
                         "connection", "dropped", "peer", "fallback", "activated", "for", "session", "timeout"];

fn text(state: &mut u64, size: usize, candidates: bool) -> String {
    let mut words: Vec<&str> = Vec::new();
    while words.iter().map(|w| w.len() + 1).sum::<usize>() < size {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let r = (*state % 1000) as f64 / 1000.0;
        words.push(if candidates && r < 0.03 {
            "ada@example.com"
        } else if candidates && r < 0.05 {
            "203.0.113.7"
        } else {
            WORDS[(*state >> 20) as usize % WORDS.len()]
        });
    }
    words.join(" ").chars().take(size).collect()
}

/// ns per call of `f` over `values`, the best of 5 runs of `rounds` (the machine may be
/// shared: the fastest run is the one least disturbed).
fn per_value(values: &[String], rounds: usize, mut f: impl FnMut(&str)) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..rounds {
                values.iter().for_each(|v| f(v));
            }
            start.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let detectors = ["email", "ipv4", "ipv6", "credit_card", "iban", "jwt", "bearer_token", "phone", "secrets"];
    let spec = MaskSpec {
        detectors: detectors.iter().map(|s| s.to_string()).collect(),
        regexes: vec![],
        replacement: "[REDACTED]".into(),
    };
    let masker = Masker::new(&spec, None).expect("the doctrine's detectors compile");
    let mut state = 7u64;
    if std::env::args().any(|a| a == "--each") {
        let values: Vec<String> = (0..200).map(|_| text(&mut state, 200, false)).collect();
        for det in redact_core::mask::DETECTORS {
            let spec = MaskSpec { detectors: vec![det.name.into()], regexes: vec![], replacement: "[R]".into() };
            let one = Masker::new(&spec, None).expect("a built-in compiles");
            let ns = per_value(&values, 100, |v| assert!(one.mask(v).is_none()));
            println!("{:<24} {ns:>6.0} ns per clean value", det.name);
        }
        return;
    }
    for (name, candidates) in [("free_text", true), ("clean", false)] {
        let values: Vec<String> = (0..200).map(|_| text(&mut state, 200, candidates)).collect();
        let mut cache = masker.cache();
        let pooled = per_value(&values, 400, |v| drop(masker.mask(v)));
        let cached = per_value(&values, 400, |v| drop(masker.mask_with(&mut cache, v)));
        println!("{name:<10} mask {pooled:>6.0} ns per value, mask_with {cached:>6.0} ns per value");
    }
}
