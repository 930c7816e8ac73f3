"""The native masker (``redact_core::mask`` through ``redact_proxy._native.Masker``)
against the reference it ports, ``redact_proxy.policy.detectors.Masker``.

The property: for every text, the two return the same thing (the same string, or both
None) -- for every detector alone, the ``secrets`` group, all detectors at once, user
regexes before detectors, and a keyed ``{hash}`` replacement. Texts are generated from
what sits on the detectors' edges: the positive and negative corpora, trace and span ids,
UUIDs, e-mails, IPv4 and IPv6 in all their forms (valid and not), Luhn-valid cards with
and without an issuer, IBANs with a correct and a broken checksum, the prefixed secret
formats, password assignments and auth headers, Unicode (including the characters RE2
and the ``regex`` crate could classify differently: U+212A, U+017F, NBSP, ``\\v``), NUL,
and long runs that make every position a refused candidate (the budget path), glued
together with the separators the verifiers look at. Random user regexes built from the
constructs the dialect rewrites (``\\d \\s \\w \\b \\B``, classes, case folding) check the
dialect itself. The whole corpora files go through every configuration too, and the
unit tests below pin the error cases and the hash.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redact_proxy import _native
from redact_proxy.policy import detectors

TESTS = Path(__file__).resolve().parents[1]
CORPUS = TESTS / "testdata" / "detectors"
POSITIVES = yaml.safe_load((CORPUS / "positives.yaml").read_text())
NEGATIVES = yaml.safe_load((CORPUS / "negatives.yaml").read_text())
KEY = b"0123456789abcdef-test-key"
PROFILE = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _corpus() -> list[str]:
    texts = [pair[0] for pairs in POSITIVES.values() for pair in pairs]
    for value in NEGATIVES.values():
        for group in value.values() if isinstance(value, dict) else [value]:
            texts += group
    # Every string literal of the detector unit tests: their edge cases, as more corpus.
    source = ast.parse((TESTS / "policy" / "test_detectors.py").read_text())
    texts += [n.value for n in ast.walk(source) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return sorted(set(texts))


CORPUS_TEXTS = _corpus()
USER_REGEXES = [r"ada@\w+", r"\bid=\d+", r"(?i)secret[^ ]*", r"q*", r"[\s\S]é", r"\d{3}-\d{4}", r"(?P<u>user)=\S+"]


def _hmac(data: bytes) -> str:
    return hmac.new(KEY, data, hashlib.sha256).hexdigest()


def _pair(names, regexes=(), replacement="[R]"):
    """(reference, native) maskers for one configuration, as compile.py builds them."""
    if "{hash}" in replacement:
        reference = detectors.Masker(names, regexes, lambda t: replacement.replace("{hash}", _hmac(t.encode())))
    else:
        reference = detectors.Masker(names, regexes, replacement)
    return reference, _native.Masker(list(names), list(regexes), replacement, KEY, "hmac-sha256")


CONFIGS = {
    **{name: _pair([name]) for name in detectors.DETECTORS},
    "secrets": _pair(["secrets"]),
    "all": _pair(list(detectors.DETECTORS)),
    "user+email+phone": _pair(["email", "phone"], USER_REGEXES),
    "all+user+hash": _pair(list(detectors.DETECTORS), USER_REGEXES, "<{hash}>"),
    "digits+hash": _pair(sorted(detectors.DIGIT_DETECTORS), (), "#{hash}#{hash}"),
}


def _assert_same(text: str, configs=CONFIGS) -> None:
    for name, (reference, native) in configs.items():
        want = reference.mask(text)
        got = native.mask(text)
        assert got == want, f"{name}: {text!r}: reference {want!r}, native {got!r}"


# --------------------------------------------------------------------------- generators

_HEX = "0123456789abcdef"
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TRICKY = "\u212a\u017f\u00a0\x0b\u00e9\u0663\u2028\U0001f600\x00"
_SEPARATORS = [" ", "", "\n", "-", ".", ":", "=", "/", "\t", "\x00", "\x0b", ", ", '"', "é", "\u212a", "%", "@", "_"]


def _luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        total += (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
    return str((10 - total % 10) % 10)


@st.composite
def cards(draw) -> str:
    prefix = draw(st.sampled_from(["4", "51", "2221", "34", "37", "6011", "65", "36", "3528", "62", "6759", "5019",
                                   "2200", "60", "506099", "9792", "1", "7", "8"]))
    length = draw(st.integers(13, 19))
    body = prefix + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=max(0, length - len(prefix) - 1),
                                          max_size=max(0, length - len(prefix) - 1))))
    number = body + _luhn_digit(body) if draw(st.booleans()) else body + draw(st.sampled_from("0123456789"))
    sep = draw(st.sampled_from(["", " ", "-", ".", "  "]))
    if sep and draw(st.booleans()):
        groups = [number[i:i + 4] for i in range(0, len(number), 4)]
        number = sep.join(groups)
    return number


def _mod97(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text)) % 97


@st.composite
def ibans(draw) -> str:
    entry = draw(st.sampled_from(detectors._IBAN_BBAN_TEXT.split()))
    country, structure = entry.split(":")
    bban = ""
    for count, kind in re.findall(r"([0-9]+)([nac])", structure):
        chars = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}[kind]
        bban += "".join(draw(st.lists(st.sampled_from(chars), min_size=int(count), max_size=int(count))))
    check = 98 - _mod97(bban + country + "00")
    if draw(st.integers(0, 3)) == 0:
        check = (check + draw(st.integers(1, 50))) % 100
    iban = f"{country}{check:02d}{bban}"
    if draw(st.booleans()):
        iban = draw(st.sampled_from([" ", "-"])).join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if draw(st.integers(0, 4)) == 0 else iban


@st.composite
def ipv4s(draw) -> str:
    octets = draw(st.lists(st.integers(0, 300), min_size=3, max_size=5))
    sep = draw(st.sampled_from([".", ".", "-"]))
    text = sep.join(map(str, octets))
    return draw(st.sampled_from(["", "ip-", "ec2-", "x", "1."])) + text + draw(
        st.sampled_from(["", ":8080", ".443", ".99999", ".example.com", ".1", "-1"]))


@st.composite
def ipv6s(draw) -> str:
    groups = draw(st.lists(st.text(_HEX + "ABCDEF", min_size=0, max_size=5), min_size=1, max_size=9))
    text = ":".join(groups)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + "::" + text[at:]
    if draw(st.integers(0, 3)) == 0:
        text += ":" + ".".join(str(draw(st.integers(0, 300))) for _ in range(draw(st.integers(3, 4))))
    return text + draw(st.sampled_from(["", "", "%eth0", "%", ".", ":", "g", "]:443"]))


@st.composite
def secrets(draw) -> str:
    prefix = draw(st.sampled_from([
        "ghp_", "github_pat_", "glpat-", "GR1348941", "xoxb-", "xapp-1-", "hooks.slack.com/services/", "sk_live_",
        "pk_test_", "whsec_", "AIza", "npm_", "pypi-AgEIcHlwaS5vcmc", "AC", "SK", "SG.", "sk-proj-", "sk-ant-",
        "sk-", "AKIA", "A3TX", "eyJ", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
        "aws_secret_access_key=", "SecretAccessKey: \"", "Bearer ", "basic ", "Token ", "Digest ", "NTLM ",
    ]))
    body = draw(st.text(st.sampled_from(_B64URL + "._~+/="), max_size=70))
    if prefix in ("AC", "SK") and draw(st.booleans()):
        body = draw(st.text(st.sampled_from(_HEX), min_size=32, max_size=33))
    if prefix.startswith("sk-") and draw(st.booleans()):
        body = draw(st.text(st.sampled_from(_ALNUM), min_size=30, max_size=40))
    if prefix == "SG." and draw(st.booleans()):
        body = draw(st.text(st.sampled_from(_B64URL), min_size=22, max_size=22)) + "." + draw(
            st.text(st.sampled_from(_B64URL), min_size=43, max_size=43))
    return prefix + body


@st.composite
def assignments(draw) -> str:
    name = draw(st.sampled_from(["password", "db_password", "clientSecret", "token", "api_key", "PWD", "pwd",
                                 "x-api-key", "Authorization", "credentials", "passphrase", "secret_name",
                                 "max_tokens", "private.key", "AWS_SECRET_KEY"]))
    sep = draw(st.sampled_from(["=", ": ", " = ", ":=", "=>", '":"', '\\":\\"', "='", '"=', ":", "  :  "]))
    value = draw(st.sampled_from(["hunter2", "?", "$1", ":name", "@p1", "%s", "${VAR}", "{{ .x }}", "***", "null",
                                  "FaLſe", "expired", "Expired.", "/home/app", "~/x", "Bearer abc", "\\\"", "x y",
                                  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "'q'", '"a\\"b"']))
    return name + sep + value


def _run(draw_text) -> st.SearchStrategy[str]:
    return st.builds(lambda unit, n: unit * n, draw_text, st.integers(1, 400))


FRAGMENTS = st.one_of(
    st.sampled_from(CORPUS_TEXTS),
    st.text(st.sampled_from(_HEX), min_size=8, max_size=40),
    st.uuids().map(str),
    st.emails(),
    st.builds(lambda a, b, c: f"{a}{b}{c}", st.text(_ALNUM + "._%+-é", min_size=1, max_size=10),
              st.sampled_from(["@", "%40", "&#64;", "&#x40;", "&commat;", "&#0064;"]),
              st.sampled_from(["example.com", "a.b.c", "x.y", "mail.example.org", "ex.ample.é"])),
    ipv4s(), ipv6s(), cards(), ibans(), secrets(), assignments(),
    st.text(st.sampled_from("0123456789 .-+()"), max_size=30),
    st.text(st.sampled_from("0123456789abcdefABCDEF:.-_ @%&#;=\"'\\/+xX" + _TRICKY), max_size=40),
    st.text(max_size=20),
    _run(st.sampled_from(["1", "1.", "4111 ", "a", "::", "0-", "x1", "é", "1:", "DE89 ", "+1 ", "eyJ", "\x00"])),
)
TEXTS = st.lists(st.tuples(FRAGMENTS, st.sampled_from(_SEPARATORS)), max_size=6).map(
    lambda parts: "".join(f + s for f, s in parts))


# --------------------------------------------------------------------------- the property

@PROFILE
@given(TEXTS)
def test_native_masker_equals_the_reference(text):
    _assert_same(text)


def test_whole_corpora_files_agree():
    for text in CORPUS_TEXTS:
        _assert_same(text)
    # The files as one value each: many detections and refusals in one scan.
    for path in (CORPUS / "positives.yaml", CORPUS / "negatives.yaml"):
        _assert_same(path.read_text())


def test_the_property_sees_detections_and_refusals():
    """The generated texts reach both outcomes, so agreement is not agreement on None."""
    reference, _ = CONFIGS["all"]
    outcomes = {reference.mask(t) is None for t in CORPUS_TEXTS}
    assert outcomes == {True, False}


# The dialect: random user regexes from the constructs the translation rewrites.
_ATOMS = [r"\d", r"\w", r"\s", r"\D", r"\W", r"\S", r"[^\s]", r"[\d.]", r"[^\W_]", r"[\S]", "a", "é", ".", r"(?i:k)",
          r"(?i)s", "[a-z]", r"\.", "-", r"\pL", r"[[:alpha:]]", "1", "x", r"\x{212A}", r"[\W]", r"[^\w]", r"[\w-]",
          r"(?i:[^\W])", r"(?i:[\W\d])", r"(?-i:[\W])", "K", "s"]
_QUANTIFIERS = ["", "", "*", "+", "?", "{1,3}", "*?", "{2}"]


@st.composite
def user_regexes(draw) -> str:
    branches = []
    for _ in range(draw(st.integers(1, 2))):
        pieces = []
        for _ in range(draw(st.integers(1, 4))):
            edge = draw(st.sampled_from(["", "", r"\b", r"\B", "^", "$", "(?i)", "(?-i)"]))
            pieces.append(edge + draw(st.sampled_from(_ATOMS)) + draw(st.sampled_from(_QUANTIFIERS)))
        branches.append("".join(pieces))
    return "|".join(branches)


_DIALECT_TEXT = st.text(st.sampled_from("ab xk1_.-é\u212a\u017f\u00a0\x0b\t\n\x0c\r٣KSs"), max_size=30)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(user_regexes(), st.lists(_DIALECT_TEXT, min_size=1, max_size=4))
def test_user_regex_dialect_matches_re2(pattern, texts):
    assert _native.check_regex(pattern) is None, pattern
    configs = {pattern: _pair([], [pattern])}
    for text in texts:
        _assert_same(text, configs)


_SYNTAX = [*r"ab\dwsWSDbB()[]^$.*+?{}|,0123-:iP<>=!&~#xuk", "(?i)", "(?-i)", "(?P<n>", "(?:", "[[:", ":]]", "\\p{",
           "\\x{", "é", "\u212a", "(?s)", "(?m)", "(?U)", r"\pL", r"\PL", r"\z", r"\A", r"\Q", r"\E", r"\C", r"\v",
           r"\0", "{2,}", "{,2}", "{1,2}", r"\.", "[^", r"\n", "alpha", "word", "(?<m>", r"\<", r"\>", r"\-", r"\_",
           r"\pN", r"\x41", "(?i:"]


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(_SYNTAX), max_size=14).map("".join), st.lists(_DIALECT_TEXT, min_size=1, max_size=3))
def test_what_the_dialect_accepts_re2_accepts_and_means_alike(pattern, texts):
    """Random pattern text: whatever ``check_regex`` accepts, RE2 compiles, and the two
    mask alike (RE2 syntax the dialect refuses -- ``\\C``, ``\\Q``, octal -- is refused
    outright, never given another meaning)."""
    if _native.check_regex(pattern) is not None:
        return
    configs = {pattern: _pair([], [pattern])}  # the reference compiles it with RE2 or raises
    for text in texts:
        _assert_same(text, configs)


# --------------------------------------------------------------------------- units

def test_builtin_patterns_are_the_reference_table():
    patterns, digits, min_run = _native.mask_detectors()
    assert patterns == [(name, det.pattern) for name, det in detectors.DETECTORS.items()]
    assert frozenset(digits) == detectors.DIGIT_DETECTORS
    assert min_run == detectors.DIGIT_MIN_RUN
    assert patterns[:16] == [(n, detectors.DETECTORS[n].pattern) for n in detectors.DETECTOR_GROUPS["secrets"]]


@pytest.mark.parametrize("detector_names, regexes", [
    (["nope"], []),
    (["email", "secrets", "bogus"], []),
    ([], ["("]),
    ([], ["a{1001}"]),
    ([], ["a**"]),
])
def test_both_refuse_the_same_rules(detector_names, regexes):
    with pytest.raises(ValueError):
        detectors.Masker(detector_names, regexes, "[R]")
    with pytest.raises(ValueError) as err:
        _native.Masker(detector_names, regexes, "[R]", None, "sha256")
    if "nope" in detector_names or "bogus" in detector_names:
        with pytest.raises(detectors.UnknownDetector) as ref:
            detectors.Masker(detector_names, regexes, "[R]")
        assert str(err.value) == str(ref.value)


def test_a_group_name_in_two_patterns_is_no_conflict():
    configs = {"dup": _pair(["credit_card"], ["(?P<card_number>1)", "(?P<card_number>x)+"])}
    for text in ("1 4111 1111 1111 1111 xx", "card4111111111111111x"):
        _assert_same(text, configs)


@pytest.mark.parametrize("pattern", [r"(?x)a b", r"[a&&b]", r"[[a]]", r"\b{start}", r"(a{100}){100}", r"\Qa\E"])
def test_check_regex_refuses_what_the_dialect_cannot_mean_as_re2(pattern):
    assert _native.check_regex(pattern)


def test_hash_hex_is_compiles_hasher():
    assert _native.hash_hex(KEY, "hmac-sha256", b"ada") == _hmac(b"ada")
    assert _native.hash_hex(None, "sha256", b"ada") == hashlib.sha256(b"ada").hexdigest()
    with pytest.raises(ValueError):
        _native.hash_hex(None, "hmac-sha256", b"ada")
    with pytest.raises(ValueError):
        _native.hash_hex(KEY, "md5", b"ada")


def test_hash_replacement_needs_a_key():
    with pytest.raises(ValueError):
        _native.Masker(["email"], [], "<{hash}>", None, "hmac-sha256")
    native = _native.Masker(["email"], [], "<{hash}>", None, "sha256")
    assert native.mask("to ada@example.com") == f"to <{hashlib.sha256(b'ada@example.com').hexdigest()}>"


def test_a_lone_surrogate_is_refused_without_its_text():
    native = CONFIGS["all"][1]
    with pytest.raises(ValueError) as err:
        native.mask("secret \ud800 value")
    assert "secret" not in str(err.value)


def test_threads_share_one_native_masker():
    """The GIL is released while masking; one masker serves several threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    reference, native = CONFIGS["all+user+hash"]
    texts = CORPUS_TEXTS * 4
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(native.mask, texts))
    assert got == [reference.mask(t) for t in texts]
