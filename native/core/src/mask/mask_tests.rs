//! The masker on the behaviours its Python original documents.

use super::*;
use crate::hash::HashAlg;

fn masker(detectors: &[&str], regexes: &[&str], replacement: &str) -> Masker {
    let spec = MaskSpec {
        detectors: detectors.iter().map(|s| s.to_string()).collect(),
        regexes: regexes.iter().map(|s| s.to_string()).collect(),
        replacement: replacement.into(),
    };
    Masker::new(&spec, Some(Arc::new(Hasher::new(HashAlg::Sha256)))).unwrap()
}

#[test]
fn every_builtin_pattern_compiles() {
    for det in DETECTORS {
        dialect::translate(det.pattern).and_then(|t| dialect::build(&[t], true).map(|_| ())).unwrap();
        assert!(det.value_groups.len() <= MAX_SPANS);
    }
    assert!(GROUPS[0].1.iter().map(|d| d.name).eq(
        ["private_key", "aws_access_key_id", "aws_secret_access_key", "github_token", "gitlab_token", "slack_token",
         "slack_webhook", "stripe_key", "google_api_key", "npm_token", "pypi_token", "twilio_key", "sendgrid_key",
         "anthropic_key", "openai_key", "password_assignment"]
    ));
}

#[test]
fn masks_what_the_corpus_says() {
    let all = masker(&["secrets", "jwt", "bearer_token", "email", "iban", "credit_card", "ipv6", "ipv4", "phone"], &[], "[R]");
    for (text, want) in [
        ("user john.doe+tag@example.co.uk logged in", Some("user [R] logged in")),
        ("upstream 10.1.2.3:8080 refused", Some("upstream [R]:8080 refused")),
        ("IP 10.1.2.3.8080 > 10.9.8.7.443: Flags [S]", Some("IP [R].8080 > [R].443: Flags [S]")),
        ("paid with 4111 1111 1111 1111.", Some("paid with [R].")),
        ("from 2001:db8::1 port 22", Some("from [R] port 22")),
        ("Authorization: Bearer abc.def", Some("Authorization: Bearer [R]")),
        ("password=\"hunter2\" ok", Some("password=\"[R]\" ok")),
        ("password=?", None),
        ("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        ("version 1.2.3", None),
        ("", None),
    ] {
        assert_eq!(all.mask(text).as_deref(), want, "{text}");
        let mut cache = all.cache();
        assert_eq!(all.mask_with(&mut cache, text).as_deref(), want, "{text}");
    }
}

#[test]
fn user_regexes_come_first_and_hash_replacements_hash_the_match() {
    let m = masker(&["email"], &[r"ada@\w+"], "<{hash}>");
    let digest = Hasher::new(HashAlg::Sha256).hex(b"ada@example");
    assert_eq!(m.mask("to ada@example.com").unwrap(), format!("to <{digest}>.com"));
    // A replacement equal to the text is no change.
    assert_eq!(masker(&[], &["x"], "x").mask("axb"), None);
    // An empty user match is skipped, and counts as a refusal.
    assert_eq!(masker(&[], &["q*"], "[R]").mask("abqc").as_deref(), Some("ab[R]c"));
}

#[test]
fn refusals_past_the_budget_replace_the_whole_value() {
    let text = "1.1.1.1.".repeat(300);
    assert_eq!(masker(&["ipv4"], &[], "[R]").mask(&text).as_deref(), Some("[R]"));
}

#[test]
fn errors_name_the_problem_not_the_value() {
    let spec = |d: &[&str], r: &[&str], rep: &str| MaskSpec {
        detectors: d.iter().map(|s| s.to_string()).collect(),
        regexes: r.iter().map(|s| s.to_string()).collect(),
        replacement: rep.into(),
    };
    assert!(Masker::new(&spec(&["nope"], &[], "x"), None).err().unwrap().starts_with("unknown detector(s) 'nope'"));
    assert!(Masker::new(&spec(&[], &["("], "x"), None).err().unwrap().starts_with("regexes[0]: invalid regex"));
    assert!(Masker::new(&spec(&["credit_card"], &["(?P<card_number>1)"], "x"), None).is_ok());
    assert!(Masker::new(&spec(&[], &["a"], "{hash}"), None).is_err());
    assert_eq!(expand_detectors(&["email".into(), "secrets".into(), "email".into()]).unwrap().len(), 17);
}

#[test]
fn a_masker_is_shared_by_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Masker>();
}

#[test]
fn no_bytes_make_it_panic() {
    let all = masker(&["secrets", "jwt", "bearer_token", "email", "iban", "credit_card", "ipv6", "ipv4", "phone"],
                     &[r"\b\w+@", "q*"], "<{hash}>");
    // Pieces the verifiers look at, glued at random (xorshift: no dependency, fixed seed).
    let pieces: [&[u8]; 16] = [b"4111 1111 1111 1111", b"::", b"1.2.3.4", b"-", b".", b"password=", b"\xff", b"\xed\xa0\x80",
                               b"\xe2\x84\xaa", b"DE89", b"0612345678", b"ip-", b"sk-", b"\x00", b"e\xcc", b"%"];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        let mut data = Vec::new();
        for _ in 0..(state % 12) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(pieces[(state % 16) as usize]);
        }
        let _ = all.mask_utf8(&data);
        if let Ok(text) = std::str::from_utf8(&data) {
            let out = all.mask(text);
            assert_eq!(out.as_deref().map(str::as_bytes), all.mask_utf8(&data).as_deref());
        }
    }
}
