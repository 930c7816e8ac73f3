"""Built-in detectors and the Masker (redact_proxy.policy.detectors)."""

from __future__ import annotations

import random
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathlib import Path

import yaml

from redact_proxy.policy.detectors import (
    DETECTOR_GROUPS,
    DETECTORS,
    DIGIT_DETECTORS,
    DIGIT_MIN_RUN,
    Detector,
    Masker,
    UnknownDetector,
    expand_detectors,
)

R = "[R]"
CORPUS = Path(__file__).resolve().parent.parent / "testdata" / "detectors"
POSITIVES = yaml.safe_load((CORPUS / "positives.yaml").read_text())
NEGATIVES = yaml.safe_load((CORPUS / "negatives.yaml").read_text())
SECRETS = DETECTOR_GROUPS["secrets"]


def mask(names, value, regexes=()):
    return Masker(names if isinstance(names, (list, tuple)) else [names], regexes, R).mask(value)


# ------------------------------------------------------------------ table and API

def test_table_lists_every_builtin_with_doc():
    assert set(DETECTORS) == {
        "email", "ipv4", "ipv6", "credit_card", "iban", "jwt", "bearer_token", "phone",
        "private_key", "aws_access_key_id", "aws_secret_access_key", "github_token",
        "gitlab_token", "slack_token", "slack_webhook", "stripe_key", "google_api_key",
        "npm_token", "pypi_token", "twilio_key", "sendgrid_key", "openai_key",
        "anthropic_key", "password_assignment",
    }
    for name, det in DETECTORS.items():
        assert isinstance(det, Detector) and det.name == name
        assert det.doc and "\n" not in det.doc
    assert DETECTORS["credit_card"].verify is not None
    assert DETECTORS["iban"].verify is not None
    with pytest.raises(TypeError):
        DETECTORS["x"] = DETECTORS["email"]  # type: ignore[index]


def test_unknown_detector_lists_valid_names():
    with pytest.raises(UnknownDetector) as info:
        Masker(["email", "passport", "ssn"], [], R)
    message = str(info.value)
    assert "'passport'" in message and "'ssn'" in message
    for name in [*DETECTORS, *DETECTOR_GROUPS]:
        assert name in message
    assert isinstance(info.value, ValueError)
    assert info.value.names == ("passport", "ssn")


def test_bad_user_regex_is_a_value_error_naming_its_index():
    with pytest.raises(ValueError, match=r"regexes\[1\]"):
        Masker([], ["acct-[0-9]+", "(?<=x)y"], R)
    with pytest.raises(ValueError, match=r"regexes\[0\]"):
        Masker([], ["a(b"], R)


def test_string_instead_of_list_is_rejected():
    with pytest.raises(TypeError):
        Masker("email", [], R)  # type: ignore[arg-type]


def test_none_when_nothing_changes():
    masker = Masker(list(DETECTORS), ["acct-[0-9]{6,}"], R)
    assert masker.mask("") is None
    assert masker.mask("GET /api/v1/items took 12 ms, version 1.2.3") is None
    assert Masker([], [], R).mask("anything a@b.co") is None


def test_none_when_replacement_equals_the_match():
    assert Masker([], ["abc"], "abc").mask("xx abc yy") is None


def test_callable_replacement_gets_the_matched_text():
    seen = []

    def replace(text):
        seen.append(text)
        return f"<{len(text)}>"

    out = Masker(["email", "ipv4"], [], replace).mask("from bob@example.com at 10.1.2.3")
    assert out == "from <15> at <8>"
    assert seen == ["bob@example.com", "10.1.2.3"]


def test_offsets_survive_multibyte_text():
    out = Masker(["email"], [], R).mask("Grüße 👋 an jürgen@example.de, tschüss")
    assert out == "Grüße 👋 an [R], tschüss"


def test_user_regex_takes_precedence_at_the_same_position():
    masker = Masker(["email"], [r"[a-z]+@example\.com/profile"], "<u>")
    assert masker.mask("see bob@example.com/profile") == "see <u>"
    assert masker.mask("see bob@example.org") == "see <u>"


def test_empty_matching_user_regex_does_not_stall_or_shadow():
    masker = Masker(["email"], ["x*"], R)
    assert masker.mask("mail a@b.io now") == "mail [R] now"
    assert masker.mask("xx y") == "[R] y"


def test_rejected_candidate_lets_later_alternative_match_same_start():
    # 4-4-4-3 digits in trunk-phone shape; no issuer starts with 03, so credit_card
    # rejects it and the phone alternative, shadowed at the same position, gets its turn.
    value = "call 0301 2345 6789 012 now"
    assert Masker(["credit_card"], [], R).mask(value) is None
    assert Masker(["credit_card", "phone"], [], R).mask(value) == "call [R] now"


def test_large_value_with_many_candidates():
    # Many Luhn-failing order ids around one real card: every candidate is verified and
    # rejected, the card is still found.
    ids = " ".join(f"order 4111111111{n:06d}" for n in range(20_000) if n % 10 != 1)
    value = ids + " card 4111 1111 1111 1111 end"
    out = Masker(["credit_card"], [], R).mask(value)
    assert out is not None and out.endswith(" card [R] end")
    assert out.count(R) == 1 + sum(
        1 for n in range(20_000) if n % 10 != 1 and _luhn_ok(f"4111111111{n:06d}")
    )


@pytest.mark.parametrize("unit,count", [
    ("-eyJ-4111111111111112", 80_000),   # rejected cards inside a long base64url run
    ("1.", 40_000),                       # rejected dotted quads inside e-mail-ish text
    ("1:", 40_000),                       # rejected IPv6 candidates
    ("a@1.", 40_000),                     # unfinished e-mail domains
    ("0301 ", 40_000),                    # phone-ish groups
])
def test_pathological_values_finish(unit, count):
    # A quadratic rescan would take minutes here (the suite's timeout fails it); the
    # linear pass takes about a second. The result must simply be a string or None.
    out = Masker(list(DETECTORS), [], R).mask(unit * count)
    assert out is None or isinstance(out, str)


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


# ------------------------------------------------------------------ email

@pytest.mark.parametrize("value,expected", [
    ("user john.doe+tag@example.co.uk logged in", "user [R] logged in"),
    ("<alice_b@mail.example.org>", "<[R]>"),
    ("mailto:x@y.io?subject=hi", "mailto:[R]?subject=hi"),
    ("UPPER@EXAMPLE.COM", "[R]"),
    ("a@b.c", None),  # one-letter TLD is not an address
    ("release@2x", None),
    ("no at sign here", None),
])
def test_email(value, expected):
    assert mask("email", value) == expected


# ------------------------------------------------------------------ ipv4

@pytest.mark.parametrize("value,expected", [
    ("client 192.168.1.20 connected", "client [R] connected"),
    ("10.0.0.1:8080", "[R]:8080"),
    ("net 10.0.0.0/8", "net [R]/8"),
    ("0.0.0.0 and 255.255.255.255", "[R] and [R]"),
    ("256.1.1.1", None),
    ("1.2.3", None),
    ("oid 1.3.6.1.4.1.311", None),
    ("v1.2.3.4.5", None),
    ("ip=10.0.0.1.", "ip=[R]."),
])
def test_ipv4(value, expected):
    assert mask("ipv4", value) == expected


# ------------------------------------------------------------------ ipv6

@pytest.mark.parametrize("value,expected", [
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[R]"),
    ("from 2001:db8::1 port 22", "from [R] port 22"),
    ("::1", "[R]"),
    ("fe80::1%eth0 up", "[R] up"),
    ("fe80::a00:27ff:fe4e:66a1%25en0", "[R]"),
    ("::ffff:192.0.2.128", "[R]"),
    ("64:ff9b::192.0.2.33", "[R]"),
    ("1:2:3:4:5:6:1.2.3.4", "[R]"),
    ("http://[2001:db8::7]:8080/p", "http://[[R]]:8080/p"),
    ("peer 2001:db8:85a3::8a2e:370:7334.", "peer [R]."),
    ("2001:db8::/32", "[R]/32"),
    ("fe80::", "[R]"),
    ("1::", "[R]"),
    # look-alikes
    ("12:30:45", None),
    ("00:1a:2b:3c:4d:5e", None),
    ("std::vector<int>", None),
    ("serde::de::Error", None),
    ("dead::beef", None),
    ("1:2:3:4:5:6:7:8:9", None),
    ("2001:db8:::1", None),
])
def test_ipv6(value, expected):
    assert mask("ipv6", value) == expected


# ------------------------------------------------------------------ credit cards

@pytest.mark.parametrize("value", [
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "5500-0000-0000-0004",
    "5500 0000 0000 0004",
    "3782 822463 10005",
    "378282246310005",
    "6011111111111117",
    "30569309025904",
    "4222222222222",
])
def test_credit_card_real_shapes(value):
    assert mask("credit_card", f"paid with {value}.") == "paid with [R]."


@pytest.mark.parametrize("value", [
    "order 4111111111111112",           # Luhn fails
    "order 4111 1111 1111 1112",
    "order id 1234567890123",           # 13 digits, Luhn fails
    "ts 1700000000123457",              # 16 digits, Luhn fails
    "big 12345678901234567890123",      # too long to be a card
    "short 411111111111",               # 12 digits
    "spaced 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
])
def test_credit_card_order_ids_stay(value):
    assert mask("credit_card", value) is None


def test_credit_card_trailing_group_is_shed():
    assert mask("credit_card", "4111 1111 1111 1111 5 items") == "[R] 5 items"


def test_credit_card_next_to_other_numbers():
    assert mask("credit_card", "ids 12 34 card 4111111111111111 qty 3") == "ids 12 34 card [R] qty 3"


# ------------------------------------------------------------------ IBAN

@pytest.mark.parametrize("value", [
    "GB82 WEST 1234 5698 7654 32",
    "GB82WEST12345698765432",
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NO9386011117947",
])
def test_iban_valid(value):
    assert mask("iban", f"pay to {value} today") == "pay to [R] today"


@pytest.mark.parametrize("value", [
    "GB82 WEST 1234 5698 7654 33",   # checksum off by one
    "DE89370400440532013001",
    "DE00370400440532013000",
    "XX12",
    "Gb82West12345698765432",        # mixed case is a word, not an IBAN
    "ABCD1234",
])
def test_iban_invalid_stays(value):
    assert mask("iban", f"pay to {value} today") is None


# ------------------------------------------------------------------ JWT

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def test_jwt():
    assert mask("jwt", f"token={JWT}&x=1") == "token=[R]&x=1"
    assert mask("jwt", f'{{"id_token": "{JWT}"}}') == '{"id_token": "[R]"}'
    assert mask("jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.") == "[R]"  # alg none
    jwe = "eyJhbGciOiJSU0EtT0FFUCJ9.OKOawDo13gRp2ojaHV7LFpZ.48V1_ALb6US04U3b.5eym8TW_c8SuK.XFBoMYUZodetZdvTiFvSkQ"
    assert mask("jwt", jwe) == "[R]"


def test_jwt_lookalikes_stay():
    assert mask("jwt", "eyJust.kidding") is None
    assert mask("jwt", "abc.def.ghi") is None
    assert mask("jwt", "keyJabcdefghijklmnop") is None  # not at a word start


def test_base64_json_blob_is_masked_too():
    assert mask("jwt", "session=eyJ1c2VyIjoiYm9iIn0=; Path=/") == "session=[R]; Path=/"


# ------------------------------------------------------------------ bearer tokens

@pytest.mark.parametrize("value,expected", [
    ("Bearer abc.def-123_xyz", "Bearer [R]"),
    ("Authorization: Bearer mF_9.B5f-4.1JqM", "Authorization: Bearer [R]"),
    ("bearer lowercaseonlytoken", "bearer [R]"),
    ("Basic dXNlcjpwYXNzd29yZA==", "Basic [R]"),
    ("token ghp_16C7e42F292c6912E7710c838347Ae178B4a", "token [R]"),
    ("Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "Token [R]"),
    ("Negotiate YIIJvwYGKwYBBQUCoIIJszCCCa", "Negotiate [R]"),
    ('Digest username="bob", realm="x", response="6629fae4"', "Digest [R]"),
    ("the token expired", None),
    ("basic validation failed", None),
    ("Bearer", None),
])
def test_bearer_token(value, expected):
    assert mask("bearer_token", value) == expected


def test_bearer_token_with_jwt_credential():
    assert mask(["jwt", "bearer_token"], f"Bearer {JWT}") == "Bearer [R]"


# ------------------------------------------------------------------ phone

@pytest.mark.parametrize("value", [
    "+14155552671",
    "+1 415 555 2671",
    "+1 (415) 555-2671",
    "+44 20 7946 0958",
    "+44 (0)20 7946 0958",
    "+33 6 12 34 56 78",
    "+49-30-1234567",
    "0049 30 1234567",
    "(415) 555-2671",
    "415-555-2671",
    "415.555.2671",
    "1-800-555-0199",
    "030 1234567",
    "0171-1234567",
    "(030) 1234567",
    "06 12 34 56 78",
])
def test_phone_found(value):
    assert mask("phone", f"call {value} now") == "call [R] now"


@pytest.mark.parametrize("value", [
    "took 1234567 ns",            # plain digits: id, duration
    "epoch 1700000000",
    "version 1.2.3",
    "build 10.0.19041.1234",
    "on 01-02-2024",
    "on 01 02 2024",
    "at 2024-01-17 12:30:45",
    "+100 points",                # too few digits
    "+1234567890123456789",       # too many digits
    "x=0012345678",               # 00 form needs separators
    "pages 12-34",
    "port 8080 9090",
])
def test_phone_not_found(value):
    assert mask("phone", value) is None


# ------------------------------------------------------------------ all together

def test_all_detectors_on_a_log_line():
    masker = Masker(list(DETECTORS), [r"acct-[0-9]{6,}"], R)
    line = (
        "user=jane@example.com ip=203.0.113.9 ip6=2001:db8::42 card=4111-1111-1111-1111 "
        "iban=DE89370400440532013000 phone=+1 415 555 2671 acct-1234567 "
        f"auth='Bearer {JWT}' order=4111111111111112 version=1.2.3 took=1234ms"
    )
    assert masker.mask(line) == (
        "user=[R] ip=[R] ip6=[R] card=[R] iban=[R] phone=[R] [R] "
        "auth='Bearer [R]' order=4111111111111112 version=1.2.3 took=1234ms"
    )


@settings(max_examples=300)
@given(st.text(), st.text())
def test_planted_card_never_survives(before, after):
    masker = Masker(list(DETECTORS), [], R)
    value = f"{before} 4111 1111 1111 1111 {after}"
    out = masker.mask(value)
    assert out is not None
    assert "4111 1111 1111 1111" not in out


@settings(max_examples=300)
@given(st.text())
def test_never_raises(value):
    out = Masker(list(DETECTORS), [r"x{3,}"], R).mask(value)
    assert out is None or (isinstance(out, str) and out != value)


# ------------------------------------------------------------------ corpus (tests/testdata/detectors)

def _cases(table):
    return [
        pytest.param(name, *case, id=f"{name}-{i}")
        for name, cases in table.items() for i, case in enumerate(cases)
    ]


def test_corpus_covers_every_detector():
    assert set(POSITIVES) == set(DETECTORS)
    assert set(NEGATIVES["per_detector"]) <= set(DETECTORS)
    for name in DETECTORS:  # every detector has a look-alike, its own or a common one
        assert NEGATIVES["per_detector"].get(name) or NEGATIVES["common"]


@pytest.mark.parametrize("name,value,expected", _cases(POSITIVES))
def test_corpus_positive(name, value, expected):
    assert mask(name, value) == expected


@pytest.mark.parametrize("name,value,expected", _cases(POSITIVES))
def test_corpus_positive_with_every_detector(name, value, expected):
    # Whatever other detectors also take, nothing of the planted secret is left: each
    # [R] of the expected output still covers (at least) what it covered alone.
    out = Masker(list(DETECTORS), [], R).mask(value)
    assert out is not None
    for part in _masked_parts(value, expected):
        assert part not in out


def _masked_parts(value: str, expected: str) -> list[str]:
    """The substrings of ``value`` that the [R]s of ``expected`` stand for."""
    pieces = expected.split(R)
    parts, pos = [], 0
    for before, after in zip(pieces, pieces[1:]):
        start = value.index(before, pos) + len(before)
        end = value.index(after, start + 1) if after else len(value)
        parts.append(value[start:end])
        pos = end
    return parts


@pytest.mark.parametrize("name,value", [
    pytest.param(name, value, id=f"{name}-{i}")
    for name, values in NEGATIVES["per_detector"].items() for i, value in enumerate(values)
])
def test_corpus_negative(name, value):
    assert mask(name, value) is None


@pytest.mark.parametrize("value", NEGATIVES["common"])
def test_common_values_survive_every_detector(value):
    for name in DETECTORS:
        assert mask(name, value) is None, name
    assert Masker(list(DETECTORS), [], R).mask(value) is None


# ------------------------------------------------------------------ groups and names

def test_secrets_group_is_every_secret_detector():
    assert set(SECRETS) <= set(DETECTORS)
    assert "password_assignment" in SECRETS and "private_key" in SECRETS
    assert not {"email", "ipv4", "credit_card", "jwt", "bearer_token"} & set(SECRETS)
    assert not set(DETECTOR_GROUPS) & set(DETECTORS)  # a name means one thing


def test_expand_detectors():
    assert expand_detectors(["email", "secrets", "github_token"]) == ("email", *SECRETS)
    assert expand_detectors([]) == ()
    with pytest.raises(UnknownDetector) as info:
        expand_detectors(["secrets", "nope", "email", "secret"])
    assert info.value.names == ("nope", "secret")
    with pytest.raises(TypeError):
        expand_detectors("secrets")  # type: ignore[arg-type]


def test_masker_accepts_group_names():
    value = "password=hunter2 key AKIAIOSFODNN7EXAMPLE mail a@example.com"
    assert Masker(["secrets"], [], R).mask(value) == "password=[R] key [R] mail a@example.com"
    assert Masker(["secrets", "email"], [], R).mask(value) == "password=[R] key [R] mail [R]"
    assert Masker(["email", "secrets"], [], R).mask(value) == "password=[R] key [R] mail [R]"


# ------------------------------------------------------------------ digit detectors

def test_digit_detectors_can_match_digit_strings():
    assert DIGIT_DETECTORS == {"credit_card", "phone"}
    assert DIGIT_DETECTORS <= set(DETECTORS)
    masker = Masker(DIGIT_DETECTORS, [], R)  # any iterable of names, a frozenset too
    assert masker.mask("4111111111111111") == R
    assert masker.mask("0612345678") == R
    assert masker.mask("1714564800123") is None
    assert masker.mask("42") is None
    assert Masker(sorted(DIGIT_DETECTORS), [], R).mask("5555555555554444") == R


_DIGIT_SAMPLES = [
    "0", "7", "42", "0612345678", "07700900123", "4111111111111111", "378282246310005",
    "1714564800", "1714564800123", "10001000100010001000", "192168001001", "255255255255",
    "123456789012345678901234567890", "0000000000000000", "8" * 40,
]


@pytest.mark.parametrize("name", sorted(set(DETECTORS) - DIGIT_DETECTORS))
def test_other_detectors_never_match_pure_digits(name):
    masker = Masker([name], [], R)
    for value in _DIGIT_SAMPLES:
        assert masker.mask(value) is None, value


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_non_digit_detectors_ignore_digit_strings(value):
    others = [name for name in DETECTORS if name not in DIGIT_DETECTORS]
    assert Masker(others, [], R).mask(value) is None


# ------------------------------------------------------------------ ids survive, secrets do not

_HEX = "0123456789abcdef"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _has_letter(text: str) -> bool:
    # A hex id made of decimal digits only is a number like any other: a 16-digit one
    # can be a card number (see the module docstring), so it is left out here.
    return any(c.isalpha() for c in text)


_ids = st.one_of(
    st.text(alphabet=_HEX, min_size=32, max_size=32),                      # trace id
    st.text(alphabet=_HEX, min_size=16, max_size=16),                      # span id
    st.text(alphabet=_HEX, min_size=40, max_size=40),                      # sha1
    st.text(alphabet=_HEX, min_size=64, max_size=64),                      # sha256
    st.uuids().map(str),
    st.binary(min_size=6, max_size=48).map(lambda b: __import__("base64").b64encode(b).decode()),
    st.text(alphabet=_B64, min_size=8, max_size=64),                       # base64 payload id
    st.sampled_from(["status", "checkout", "payment", "retry", "the", "ok", "timeout"]),
).filter(_has_letter)


@settings(max_examples=400, deadline=None)
@given(st.lists(_ids, min_size=1, max_size=4))
def test_ids_and_words_survive_every_detector(ids):
    value = " ".join(ids)
    assert Masker(list(DETECTORS), [], R).mask(value) is None


_PLANTED = [
    expected_value
    for name in DETECTORS
    for value, expected in POSITIVES[name]
    for expected_value in _masked_parts(value, expected)
    if len(expected_value) >= 6
]
_PLANTED_CASES = [(value, expected) for name in DETECTORS for value, expected in POSITIVES[name]]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_PLANTED_CASES), st.text(max_size=40), st.text(max_size=40))
def test_planted_secret_never_survives_and_masking_twice_reveals_nothing(case, before, after):
    value, expected = case
    parts = [p for p in _masked_parts(value, expected) if len(p) >= 6]
    masker = Masker(list(DETECTORS), [], "[REDACTED]")
    once = masker.mask(f"{before} {value} {after}")
    assert once is not None
    twice = masker.mask(once)
    for text in (once, twice or once):
        for part in parts:
            assert part not in text
    # Masking the masked text changes nothing a planted secret could come back from:
    # it can only replace more.
    assert twice is None or len(twice) <= len(once) + 64


def test_masking_twice_is_stable_on_the_corpus():
    masker = Masker(list(DETECTORS), [], "[REDACTED]")
    for value, _expected in _PLANTED_CASES:
        once = masker.mask(value)
        assert once is not None
        assert masker.mask(once) is None, value


@pytest.mark.parametrize("unit,count", [
    ("password=", 20_000),
    ("token: a ", 20_000),                       # refused prose values
    ("password = ? ", 20_000),                   # refused placeholders
    ("-----BEGIN RSA PRIVATE KEY-----", 5_000),  # unfinished blocks
    ("ghp_abc ", 20_000),                        # prefixes without a body
    ("sk-" + "a" * 40 + " ", 5_000),             # refused OpenAI look-alikes
    ("ip-1-1-1-1-", 20_000),                     # refused dashed quads
    ("1.1.1.1.11.", 20_000),                     # refused five-part numbers
    ("a4111111111111112 ", 20_000),              # glued card candidates failing Luhn
    ("gb82west ", 20_000),                       # lower-case IBAN fragments
    ("0612345678-", 20_000),                     # refused national numbers
    ("a%40", 40_000),                            # encoded at signs without a domain
])
def test_pathological_secret_values_finish(unit, count):
    out = Masker(list(DETECTORS), [], R).mask(unit * count)
    assert out is None or isinstance(out, str)


# ------------------------------------------------------------------ widened detectors, details

def test_card_needs_an_issuer_prefix():
    # Luhn-valid, 16 digits, but no issuer starts with 12 or 99.
    assert mask("credit_card", "id 1234567812345670") is None
    assert mask("credit_card", "id 9999999999999995") is None
    assert mask("credit_card", "id 4111111111111111") == "id [R]"


def test_card_issuer_lengths():
    assert mask("credit_card", "amex 378282246310005") == "amex [R]"      # 15 digits
    assert mask("credit_card", "amex16 3782822463100058") is None         # Amex has 15
    assert mask("credit_card", "visa13 4222222222222") == "visa13 [R]"


def test_card_glued_to_a_hex_id_is_an_id():
    assert mask("credit_card", "4111111111111111abcdef0123456789") is None
    assert mask("credit_card", "card4111111111111111x") == "card[R]x"
    assert mask("credit_card", "_4111111111111111_") == "_[R]_"


def test_iban_table_lengths_and_formats():
    assert mask("iban", "GB82WEST1234569876543") is None          # GB needs 22
    assert mask("iban", "GB82WEST12345698765432") == "[R]"
    assert mask("iban", "DE89-3704-0044-0532-0130-00") == "[R]"


def test_ipv4_five_part_numbers():
    assert mask("ipv4", "10.1.2.3.53 > 10.1.2.4.40000") == "[R].53 > [R].40000"
    assert mask("ipv4", "10.1.2.3.70000") is None                # not a port
    assert mask("ipv4", "10.1.2.3.5") is None                    # a version's fifth part


def test_password_assignment_keeps_the_name():
    assert mask("password_assignment", "user=bob password=hunter2 ok") == "user=bob password=[R] ok"
    assert mask("password_assignment", "auth_token=\"abc\\\"def\"") == "auth_token=\"[R]\""
    assert mask("password_assignment", "password = :pw") is None  # a SQL bind name
    assert mask("password_assignment", "password=@dm1n") == "password=[R]"


@pytest.mark.parametrize("digits", range(1, DIGIT_MIN_RUN))
def test_no_digit_detector_matches_fewer_digits_than_the_minimum(digits):
    # scrub.text.mask_int skips integers shorter than DIGIT_MIN_RUN on this promise.
    masker = Masker(DIGIT_DETECTORS, [], R)
    rng = random.Random(digits)
    for _ in range(300):
        text = str(rng.randrange(10 ** (digits - 1), 10 ** digits))
        assert masker.mask(text) is None and masker.mask("-" + text) is None
