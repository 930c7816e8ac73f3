//! The built-in detectors: name, RE2 pattern, verifier and the groups replaced, in the
//! precedence order of `redact_proxy/policy/detectors.py` (whose docstring says what each
//! one finds, misses and guards against; this table is its copy).
//!
//! Strategy: the patterns are the Python ones as compiled there (its f-strings expanded),
//! written verbatim and run through `dialect::translate` like a user regex;
//! `tests/scrub/test_native_mask.py` holds each one equal to the Python table's, so a
//! change there that is not made here fails the tests.

use super::verify::Verify;

pub struct Detector {
    pub name: &'static str,
    /// RE2 syntax, exactly as `detectors.DETECTORS[name].pattern`.
    pub pattern: &'static str,
    pub verify: Option<Verify>,
    /// When set, only these named groups are replaced (an auth scheme or a name stays).
    pub value_groups: &'static [&'static str],
    pub doc: &'static str,
}

/// Table order = precedence when two detectors match at the same position; the first 16
/// are the `secrets` group.
pub const DETECTORS: &[Detector] = &[
    Detector {
        name: "private_key",
        verify: None,
        value_groups: &[],
        doc: "PEM private-key blocks (-----BEGIN ... PRIVATE KEY----- through END)",
        pattern: r#"-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s\\:,.]|-[A-Za-z0-9])*(?:-----END[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----)?"#,
    },
    Detector {
        name: "aws_access_key_id",
        verify: None,
        value_groups: &[],
        doc: "AWS access key ids (AKIA/ASIA/ABIA/ACCA...)",
        pattern: r#"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"#,
    },
    Detector {
        name: "aws_secret_access_key",
        verify: Some(Verify::AwsSecret),
        value_groups: &["aws_secret_value"],
        doc: "AWS secret access keys after an aws_secret_access_key-style name, name kept",
        pattern: r#"(?i:aws[_.\-]?secret(?:[_.\-]?access)?[_.\-]?key|secret[_.\-]?access[_.\-]?key)[\\\"']{0,2}[ \t]{0,8}(?::=|=>|[:=])[ \t]{0,8}[\\\"']{0,2}(?P<aws_secret_value>[A-Za-z0-9/+]{40})"#,
    },
    Detector {
        name: "github_token",
        verify: None,
        value_groups: &[],
        doc: "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
        pattern: r#"\b(?:gh[pousr]_[A-Za-z0-9]{30}|github_pat_[A-Za-z0-9_]{40})[A-Za-z0-9_]*"#,
    },
    Detector {
        name: "gitlab_token",
        verify: None,
        value_groups: &[],
        doc: "GitLab tokens (glpat-, gldt-, glrt-, ... GR1348941)",
        pattern: r#"\b(?:gl(?:pat|dt|rt|ptt|cbt|ft|imt|agent|oas|soat|ffct)-|GR1348941)[A-Za-z0-9_\-]{20}[A-Za-z0-9_\-]*(?:\.[0-9a-z]{9})?"#,
    },
    Detector {
        name: "slack_token",
        verify: None,
        value_groups: &[],
        doc: "Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xapp-)",
        pattern: r#"\b(?:xox[abeoprs]-|xapp-[0-9]-)[A-Za-z0-9\-]{10}[A-Za-z0-9\-]*"#,
    },
    Detector {
        name: "slack_webhook",
        verify: None,
        value_groups: &["slack_webhook_path"],
        doc: "Slack webhook URLs (hooks.slack.com/services/...), host kept",
        pattern: r#"\bhooks\.slack\.com/(?:services|workflows|triggers)/(?P<slack_webhook_path>[A-Za-z0-9_\-]{8}[A-Za-z0-9+/_\-]*)"#,
    },
    Detector {
        name: "stripe_key",
        verify: None,
        value_groups: &[],
        doc: "Stripe keys (sk_live_, rk_live_, sk_test_, pk_live_, whsec_)",
        pattern: r#"\b(?:(?:sk|rk|pk)_(?:live|test|prod)_[A-Za-z0-9]{10}|whsec_[A-Za-z0-9]{24})[A-Za-z0-9]*"#,
    },
    Detector {
        name: "google_api_key",
        verify: None,
        value_groups: &[],
        doc: "Google API keys (AIza...)",
        pattern: r#"\bAIza[A-Za-z0-9_\-]{35}[A-Za-z0-9_\-]*"#,
    },
    Detector {
        name: "npm_token",
        verify: None,
        value_groups: &[],
        doc: "npm access tokens (npm_...)",
        pattern: r#"\bnpm_[A-Za-z0-9]{36}[A-Za-z0-9]*"#,
    },
    Detector {
        name: "pypi_token",
        verify: None,
        value_groups: &[],
        doc: "PyPI upload tokens (pypi-AgEIcHlwaS5vcmc...)",
        pattern: r#"\bpypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50}[A-Za-z0-9_\-]*"#,
    },
    Detector {
        name: "twilio_key",
        verify: None,
        value_groups: &[],
        doc: "Twilio account SIDs and API keys (AC/SK + 32 hex)",
        pattern: r#"\b(?:AC|SK)[0-9a-f]{32}\b"#,
    },
    Detector {
        name: "sendgrid_key",
        verify: None,
        value_groups: &[],
        doc: "SendGrid API keys (SG.xxx.yyy)",
        pattern: r#"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"#,
    },
    Detector {
        name: "anthropic_key",
        verify: None,
        value_groups: &[],
        doc: "Anthropic API keys (sk-ant-...)",
        pattern: r#"\bsk-ant-[A-Za-z0-9_\-]{20}[A-Za-z0-9_\-]*"#,
    },
    Detector {
        name: "openai_key",
        verify: Some(Verify::OpenAi),
        value_groups: &[],
        doc: "OpenAI API keys (sk-..., sk-proj-...)",
        pattern: r#"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20}[A-Za-z0-9_\-]*|[A-Za-z0-9]{32}[A-Za-z0-9]*)"#,
    },
    Detector {
        name: "password_assignment",
        verify: Some(Verify::Password),
        value_groups: &["pw_edq", "pw_dq", "pw_sq", "pw_bare"],
        doc: "values of password=/secret:/token=/api_key=-style assignments, name kept",
        pattern: r#"(?P<pw_name>(?i:pass(?:word|wd|wort|phrase)|pwd|secret(?:[_.\-]?access)?(?:[_.\-]?key)?|token|api[_.\-]?key|auth[_.\-]?key|private[_.\-]?key|authorization|credentials?))(?P<pw_sep>[\\\"']{0,2}[ \t]{0,8}(?::=|=>|[:=])[ \t]{0,8})(?:\\\"(?P<pw_edq>(?:[^\"\\\r\n]|\\\\)+)|\"(?P<pw_dq>(?:[^\"\\\r\n]|\\[^\r\n])+)|'(?P<pw_sq>(?:[^'\\\r\n]|\\[^\r\n])+)|(?:(?i:bearer|basic|token|digest)[ \t]{1,8})?(?P<pw_bare>[^\s\"'\\&;,<>(){}\[\]:=][^\s\"'\\&;,<>(){}\[\]]*))"#,
    },
    Detector {
        name: "jwt",
        verify: None,
        value_groups: &[],
        doc: "JSON Web Tokens (JWS/JWE) and other base64url JSON (eyJ...)",
        pattern: r#"\beyJ[A-Za-z0-9_\-]{10}[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*)*={0,2}"#,
    },
    Detector {
        name: "bearer_token",
        verify: None,
        value_groups: &["bearer_value", "scheme_value", "params_value"],
        doc: "credential after an HTTP auth scheme (Bearer/Basic/Token/...), scheme kept",
        pattern: r#"\b(?:(?i:bearer)\s{1,8}(?P<bearer_value>[A-Za-z0-9][A-Za-z0-9\-._~+/]*=*)|(?i:basic|token|negotiate|ntlm|apikey)\s{1,8}(?P<scheme_value>(?:[a-z]{1,200}[A-Z0-9\-._~+/=]|[A-Z0-9])[A-Za-z0-9\-._~+/]{6}[A-Za-z0-9\-._~+/]*=*)|(?i:digest|aws4-hmac-sha256)\s{1,8}(?P<params_value>[^\r\n]*[^\s]))"#,
    },
    Detector {
        name: "email",
        verify: None,
        value_groups: &[],
        doc: "e-mail addresses, also with a %40 or &#64; at sign",
        pattern: r#"[A-Za-z0-9._%+\-\x{80}-\x{10FFFF}]{1,64}(?:@|%40|&#0{0,3}64;|&#[xX]0{0,2}40;|&commat;)(?:[A-Za-z0-9\-\x{80}-\x{10FFFF}]{1,63}\.){1,8}[A-Za-z\x{80}-\x{10FFFF}]{2,63}"#,
    },
    Detector {
        name: "iban",
        verify: Some(Verify::Iban),
        value_groups: &[],
        doc: "IBANs, confirmed by the country's length and BBAN format and mod-97",
        pattern: r#"\b(?i:AD|AE|AL|AT|AZ|BA|BE|BG|BH|BI|BR|BY|CH|CR|CY|CZ|DE|DJ|DK|DO|EE|EG|ES|FI|FK|FO|FR|GB|GE|GI|GL|GR|GT|HN|HR|HU|IE|IL|IQ|IS|IT|JO|KW|KZ|LB|LC|LI|LT|LU|LV|LY|MC|MD|ME|MK|MN|MR|MT|MU|NI|NL|NO|OM|PK|PL|PS|PT|QA|RO|RS|RU|SA|SC|SD|SE|SI|SK|SM|SO|ST|SV|TL|TN|TR|UA|VA|VG|XK|YE)[0-9]{2}(?:[ \-]?[A-Za-z0-9]{4}){2,7}(?:[ \-]?[A-Za-z0-9]{1,3})?\b"#,
    },
    Detector {
        name: "credit_card",
        verify: Some(Verify::Card),
        value_groups: &["card_number"],
        doc: "payment card numbers (13-19 digits), confirmed by Luhn and the issuer table",
        pattern: r#"(?:\b|[A-Za-z_])(?P<card_number>[0-9]{4}[ .\-][0-9]{4}[ .\-][0-9]{4}[ .\-][0-9]{4}(?:[ .\-][0-9]{3})?|[0-9]{4}[ .\-][0-9]{6}[ .\-][0-9]{4,5}|[0-9]{4}[ .\-][0-9]{4}[ .\-][0-9]{4}[ .\-][0-9]{1,3}|[0-9]{13,19})"#,
    },
    Detector {
        name: "ipv6",
        verify: Some(Verify::Ipv6),
        value_groups: &[],
        doc: "IPv6 addresses, all text forms, optional zone id",
        pattern: r#"(?:\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){6}(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b|(?:\b[0-9A-Fa-f]{1,4}:|\B:)(?:[0-9A-Fa-f]{0,4}:){0,7}:[0-9A-Fa-f:.]{0,39})(?:%[0-9A-Za-z_.~\-]{1,32})?"#,
    },
    Detector {
        name: "ipv4",
        verify: Some(Verify::Ipv4),
        value_groups: &[],
        doc: "IPv4 addresses: dotted quads (also addr.port) and ip-10-1-2-3 host names",
        pattern: r#"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b|\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])-){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b"#,
    },
    Detector {
        name: "phone",
        verify: Some(Verify::Phone),
        value_groups: &[],
        doc: "phone numbers: +/00 international, North-American, 0-prefixed national",
        pattern: r#"(?:\B\+[1-9][0-9]{0,3}(?:[ .\-]?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,5}){1,6}\b|\b00[1-9][0-9]{0,2}(?:[ .\-](?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,8}){1,6}\b|(?:\b1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ .\-]?|\b[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4}\b|(?:\b0[1-9][0-9]{0,4}|\(0[1-9][0-9]{0,4}\))(?:[ \-][0-9]{2,8}){1,4}\b|\b0[1-9][0-9]{8,10}\b)"#,
    },
];

/// Group name -> its detectors (the first `SECRETS` entries of the table).
pub const SECRETS: usize = 16;
pub const GROUPS: &[(&str, &[Detector])] = &[("secrets", DETECTORS.split_at(SECRETS).0)];

/// The detectors that can match a value of decimal digits alone: the ones worth running
/// on the decimal text of an integer (`detectors.DIGIT_DETECTORS`).
pub const DIGIT_DETECTORS: &[&str] = &["credit_card", "phone"];
/// The fewest digits either matches (a phone has 7-15, a card 13-19): a shorter integer
/// needs no scan (`detectors.DIGIT_MIN_RUN`).
pub const DIGIT_MIN_RUN: usize = 7;
