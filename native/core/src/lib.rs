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
//! Tests: `cargo test -p redact-core` (without Python); the PyO3 shell in `native/python` is
//! covered by `tests/scrub/test_triage.py`.
//!
//! Modules: `engine` (the per-request scrub of a protobuf body, `redact_proxy/engine.py`
//! builds it); `walk` (the triage walk above); `mask` (the `mask` action's detectors and
//! user regexes, a port of `redact_proxy/policy/detectors.py`); `json` (OTLP-JSON <->
//! protobuf, exactly as the Python codec reads and writes it, driven by a descriptor table
//! from `redact_proxy/otlpjson.py`); `hash` (the keyed hash of `hash` rules and `{hash}`
//! replacements); `sanitize` (the statement and URL sanitizers, ported from
//! `redact_proxy/policy/`); `audit` (the shadow audit's walk and tallies of a scrubbed body,
//! driven by `redact_proxy/audit/native.py`, and its per-value shape checks, a port of
//! `redact_proxy/audit/shapes.py`). All plain Rust.

pub mod audit;
pub mod engine;
pub mod hash;
pub mod json;
pub mod mask;
pub mod sanitize;
pub mod walk;

pub use json::{json_to_pb, pb_to_json, JsonError, JsonSchema};
