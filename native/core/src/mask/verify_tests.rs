//! Each verifier on the cases its Python original decides (the differential test in
//! `tests/scrub/test_native_mask.py` covers them on generated text).

use super::*;

fn run(verify: Verify, text: &str, start: usize, end: usize) -> Option<usize> {
    verify.run(text.as_bytes(), start, end, None)
}

fn whole(verify: Verify, text: &str) -> Option<usize> {
    run(verify, text, 0, text.len())
}

#[test]
fn luhn_and_issuers() {
    assert!(luhn(b"4111111111111111"));
    assert!(!luhn(b"4111111111111112"));
    assert!(luhn(b"378282246310005"));
    assert!(issuer_ok(b"4111111111111111"));
    assert!(issuer_ok(b"378282246310005")); // amex, 15
    assert!(!issuer_ok(b"3782822463100050")); // amex is 15 digits only
    assert!(issuer_ok(b"5061501111111111")); // verve 506099..506198
    assert!(!issuer_ok(b"5066991111111111"));
    assert!(!issuer_ok(b"1234567812345670")); // no issuer starts with 1
}

#[test]
fn card_candidates() {
    assert_eq!(whole(Verify::Card, "4111 1111 1111 1111"), Some(19));
    assert_eq!(whole(Verify::Card, "4111 1111 1111 1112"), None);
    // A grouped run that fails is shortened to a group boundary.
    assert_eq!(whole(Verify::Card, "4111 1111 1111 1111 123"), Some(19));
    // The letter the pattern took as its left boundary is stepped over.
    assert_eq!(run(Verify::Card, "card4111111111111111x", 3, 20), Some(20));
    // Inside a 16+ character hex word: an id, not a card.
    assert_eq!(run(Verify::Card, "ab4111111111111111", 2, 18), None);
    // Glued to a longer digit run after the cut.
    assert_eq!(run(Verify::Card, "4111 1111 1111 11119", 0, 19), None);
}

#[test]
fn iban_table_and_checksum() {
    let table = bban_table();
    assert_eq!(table.len(), IBAN_BBAN_TEXT.split_whitespace().count());
    let de = table.iter().find(|b| &b.country == b"DE").unwrap();
    assert_eq!(de.length, 22);
    assert!(mod97_ok(b"DE89370400440532013000"));
    assert!(!mod97_ok(b"DE89370400440532013001"));
    assert!(iban_ok(b"DE89 3704 0044 0532 0130 00"));
    assert!(iban_ok(b"de89370400440532013000"));
    assert!(!iban_ok(b"De89370400440532013000")); // mixed case
    assert!(iban_ok(b"GB82WEST12345698765432"));
    assert!(!iban_ok(b"GB8212345612345698765432")); // GB's bank code is letters
    assert!(!iban_ok(b"ZZ89370400440532013000")); // unknown country
    assert_eq!(whole(Verify::Iban, "DE89 3704 0044 0532 0130 00"), Some(27));
    // A trailing group that belongs to something else is dropped.
    assert_eq!(whole(Verify::Iban, "DE89 3704 0044 0532 0130 00 1234"), Some(27));
}

#[test]
fn phones() {
    assert_eq!(whole(Verify::Phone, "0612345678"), Some(10));
    assert_eq!(run(Verify::Phone, "x-0612345678", 2, 12), None); // dashed id
    assert_eq!(run(Verify::Phone, "v1.0612345678", 3, 13), None);
    assert_eq!(whole(Verify::Phone, "+49 30 1234567"), Some(14));
    assert_eq!(whole(Verify::Phone, "12-05-2024"), None); // a date shape, too few digits anyway
    assert_eq!(whole(Verify::Phone, "01 02 2024"), None);
    assert_eq!(run(Verify::Phone, "0cea3fad-0427-8320-c732", 9, 18), None); // UUID groups
    assert!(date_shape(b"1.2.2024") && !date_shape(b"1.2.3.2024") && !date_shape(b"123.2.2024"));
}

#[test]
fn ipv4_context() {
    assert_eq!(whole(Verify::Ipv4, "10.1.2.3"), Some(8));
    assert_eq!(run(Verify::Ipv4, "1.10.1.2.3", 2, 10), None); // part of a longer dotted number
    assert_eq!(run(Verify::Ipv4, "10.1.2.3.8080 >", 0, 8), Some(8)); // tcpdump addr.port
    assert_eq!(run(Verify::Ipv4, "10.1.2.3.99999", 0, 8), None);
    assert_eq!(run(Verify::Ipv4, "10.1.2.3.80.1", 0, 8), None);
    assert_eq!(run(Verify::Ipv4, "ip-10-1-2-3", 3, 11), Some(11));
    assert_eq!(run(Verify::Ipv4, "xip-10-1-2-3", 4, 12), None);
    assert_eq!(run(Verify::Ipv4, "ec2-54-1-2-3", 4, 12), Some(12));
    assert_eq!(run(Verify::Ipv4, "10-1-2-3.example", 0, 8), Some(8));
    assert_eq!(run(Verify::Ipv4, "06-12-34-56-78", 3, 14), None);
    assert_eq!(whole(Verify::Ipv4, "10-1-2-3"), None);
}

#[test]
fn ipv6_parses_like_python_ipaddress() {
    for good in ["2001:db8::1", "::1", "1::", "::", "fe80::1%eth0", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8",
                 "1:2:3:4:5:6:1.2.3.4", "1::8", "1:2:3:4::5:6:7", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8"] {
        assert!(ipv6_address_ok(good.as_bytes()), "{good}");
    }
    for bad in ["1:2", ":1::2", "1::2:", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::1",
                "::1.2.3.04", "::1.2.3", "fe80::1%", "fe80::1%a%b", "1:2:3:4::5:6:7:8", "::g", "::1/64"] {
        assert!(!ipv6_address_ok(bad.as_bytes()), "{bad}");
    }
    assert_eq!(whole(Verify::Ipv6, "2001:db8::1"), Some(11));
    assert_eq!(whole(Verify::Ipv6, "fe80::1."), Some(7)); // sentence punctuation dropped
    assert_eq!(run(Verify::Ipv6, "de::Error", 0, 4), None); // glued to a word
    assert_eq!(whole(Verify::Ipv6, "dead::beef"), None); // no digit
}

#[test]
fn secrets() {
    let key = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    assert_eq!(whole(Verify::AwsSecret, key), Some(key.len()));
    assert_eq!(run(Verify::AwsSecret, &format!("{key}x"), 0, key.len()), None);
    assert!(whole(Verify::OpenAi, "sk-proj-abc").is_some());
    assert!(whole(Verify::OpenAi, "sk-Ab1cdefghijklmnopqrstuvwxyz0123456").is_some());
    assert!(whole(Verify::OpenAi, "sk-abcdefghijklmnopqrstuvwxyz0123456").is_none());
    assert!(whole(Verify::OpenAi, "sk-").is_none());
}

#[test]
fn password_helpers() {
    assert!(placeholder(b"?") && placeholder(b"$1") && placeholder(b"${VAR}") && placeholder(b"***"));
    assert!(placeholder(b"NULL") && placeholder("fal\u{17f}e".as_bytes())); // RE2 folds ſ to s
    assert!(!placeholder(b"hunter2") && !placeholder(b"$1234") && !placeholder(b"nullx"));
    assert!(bind_name(b":pw") && bind_name(b"@p1") && !bind_name(b"@1") && !bind_name(b":"));
    assert!(prose_word(b"expired") && prose_word(b"Expired.") && !prose_word(b"exPired") && !prose_word(b"."));
}

#[test]
fn no_input_makes_a_verifier_panic() {
    let texts = ["", "-", "1", "é", "::", "0-", "-0", ".1", "sk-", "\u{0}", "1.2.3.4.", "ip-1-2-3-4"];
    for verify in [Verify::Card, Verify::Iban, Verify::Phone, Verify::Ipv4, Verify::Ipv6, Verify::AwsSecret, Verify::OpenAi] {
        for text in texts {
            for start in 0..=text.len() {
                for end in start..=text.len() + 1 {
                    let _ = verify.run(text.as_bytes(), start, end, None);
                }
            }
        }
    }
    assert_eq!(Verify::Password.run(b"password=x", 0, 10, None), None);
}
