"""The native per-value shape checks against the Python reference: the same answer on every str.

Strategy: every input goes through ``redact_proxy.audit.shapes`` (``shape_kinds``, its tuple
mapped to the native bit set, and ``is_free_text``) and through ``redact_proxy._native``
(``native/core/src/audit/shapes.rs``), and the answers must be equal. Inputs: hand-made
UUIDs, digit runs and tokens embedded in text; every length around the thresholds
(DIGIT_RUN, TOKEN_MIN, the UUID's 36, free text's 12); every code point but the surrogates
in templates that put it where each rule looks (a digit-run boundary, inside a token or a
UUID, a word of free text, a whole value); and hypothesis text over all of Unicode and over
alphabets biased to the characters the rules turn on. The port reads ``re``'s ``[^\\W\\d_]``
as "isalnum and not isdecimal", which is checked on every code point first.
"""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redact_proxy import _native
from redact_proxy.audit import shapes

BITS = {"uuid": 1, "digits": 2, "high_entropy": 4}
UUID = "123e4567-e89b-12d3-a456-426614174000"
TOKEN = "a1b2c3d4e5f6g7h8i9j0k1l2m3n4"  # 28 characters, a switch at every step
CODE_POINTS = [chr(cp) for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF]


def reference_bits(text: str) -> int:
    kinds = shapes.shape_kinds(text)
    assert len(set(kinds)) == len(kinds)
    return sum(BITS[k] for k in kinds)


def check(text: str) -> None:
    assert _native.audit_shape_kinds(text) == reference_bits(text), ("shape_kinds", text)
    assert _native.audit_is_free_text(text) == shapes.is_free_text(text), ("is_free_text", text)


# ------------------------------------------------------------------ the port's reading of re

def test_word_class_is_alnum_not_decimal():
    word = re.compile(r"[^\W\d_]")
    wrong = [c for c in CODE_POINTS if (word.match(c) is not None) != (c.isalnum() and not c.isdecimal())]
    assert wrong == []


def test_shape_classes_are_ascii():
    # The byte scan treats every non-ASCII character as outside all three regexes' classes.
    pattern = re.compile(r"[0-9a-fA-F]|[0-9A-Za-z]|[A-Za-z0-9_\-]")
    assert [c for c in CODE_POINTS if pattern.match(c) and not c.isascii()] == []


# ------------------------------------------------------------------ hand-made cases

EMBEDDED = [
    "", " ", "-", "12345678", "123456789", "1234567890123", "a123456789", "123456789a", "_123456789-",
    "é123456789é", "٣123456789٣", "tel: 123456789", "tel:+44 20 7946 0958", "x-12345678-123456789-y",
    UUID, UUID.upper(), f"id={UUID}", f"{UUID}ffff", f"ffff{UUID}", f"g{UUID}g", f"{UUID} 123456789",
    f"123456789 {UUID}", UUID[:-1], UUID.replace("-", "_"), UUID.replace("-", "", 1), UUID[:23] + " " + UUID[24:],
    "abcdefab-abcd-abcd-abcd-abcdefabcdef", "0000-0000-0000-0000-0000-0000-0000-0000-0000",
    f"{UUID[:8]}-{UUID}", f"{UUID[:13]}{UUID}", "00000000-0000-0000-0000-00000000000-0000-0000-0000-000000000000",
    TOKEN, TOKEN[:19], TOKEN[:20], f"/api/{TOKEN}/x", f"{TOKEN[:10]} {TOKEN[10:]}", f"{TOKEN}é{TOKEN}",
    "a_1_b_2_c_3_d_4_e_5_f", "ab12-cd34-ef56-gh78-ij90", "aaaaaaaaaaaaaaaa1a1a", "aaaaaaaaaaaaaaaaa1a1",
    "invoice2024", "invoice2024invoice2024", "sha256:" + "0123456789abcdef" * 4, "Bearer " + TOKEN,
    "the quick brown fox", "the quick brown", "ab cd ef gh", "ab cd ef ghi", "ab_cd_ef_gh_ij", "a b c d e f",
    "ab1 cd2 ef3 gh4", "ab1 cd2 ef3 g4h", "ab\tcd\tef\tgh\tij", "ab\u00a0cd\u00a0ef\u00a0gh ij kl",
    "żółw ćma ślimak éé", "éé éé éé éé", "éé éé éé ééé", "a² b² c² d² e", "a٣ b٣ c٣ d٣ e",
    "ⅫⅫ ⅫⅫ ⅫⅫ ⅫⅫⅫ", "日本語 日本語 日本語 日本語", "😀😀 😀😀 😀😀 😀😀😀", "GET /api/users/123456789",
    f"user 123456789 token {TOKEN} id {UUID}",
]


@pytest.mark.parametrize("text", EMBEDDED)
def test_embedded(text):
    check(text)


def _threshold_values(n: int) -> list[str]:
    token = (TOKEN * 3)[:n]
    return [
        "1" * n, "a" * n, "é" * n, "٣" * n, "a" * (n - 1) + "1", token, token.upper(), "-" + token, token + "_",
        f"x {'1' * n} x", f"x{'1' * n}", f"{'1' * n}-", (UUID * 2)[:n], f"{(UUID * 2)[:n]} {'9' * n}",
        ("ab " * n)[:n], ("é ab " * n)[:n], ("a1" * n)[:n], ("a1-" * n)[:n], ("1a_" * n)[:n],
    ]


@pytest.mark.parametrize("n", range(0, 45))
def test_lengths_around_thresholds(n):
    for text in _threshold_values(n):
        check(text)


@pytest.mark.parametrize("n", range(50, 80))
def test_around_64_bytes(n):
    # The port decides values up to 64 bytes on bit masks and longer ones by a scan: every
    # rule with its match ending at, or running past, byte 64.
    for body in ("1" * 9, "1" * 12, TOKEN, TOKEN[:20], UUID, "a" + "1" * 9, "1" * 9 + "a", "ab cd ef gh"):
        for pad in (" ", "x", "é", "-", "1"):
            if len(pad.encode()) * 2 <= n:
                lead = pad * ((n - len(body)) // len(pad.encode()))
                check(lead + body)
                check(body + lead)
                check(lead[: len(lead) // 2] + body + lead[: len(lead) // 2])


# ------------------------------------------------------------------ every code point

TEMPLATES = [
    lambda c: f"ab{c}cd ef gh ij",
    lambda c: f"{c}{c} ab cd efg",
    lambda c: f"a{c} bc de fgh",
    lambda c: c * 12,
    lambda c: f"12345678{c}9",
    lambda c: f"{c}123456789{c}",
    lambda c: f"{TOKEN[:10]}{c}{TOKEN[10:]}",
    lambda c: f"{UUID[:8]}{c}{UUID[9:]}",
]


@pytest.mark.parametrize("template", range(len(TEMPLATES)))
def test_every_code_point(template):
    make = TEMPLATES[template]
    texts = [make(c) for c in CODE_POINTS]
    native_kinds = [_native.audit_shape_kinds(t) for t in texts]
    native_free = [_native.audit_is_free_text(t) for t in texts]
    ref_kinds = [reference_bits(t) for t in texts]
    ref_free = [shapes.is_free_text(t) for t in texts]
    # Report the first differing code points, not a million-element diff.
    assert [t for t, a, b in zip(texts, native_kinds, ref_kinds) if a != b][:5] == []
    assert [t for t, a, b in zip(texts, native_free, ref_free) if a != b][:5] == []


# ------------------------------------------------------------------ generated text

_SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_CHAR = st.characters(blacklist_categories=("Cs",))
INTERESTING = list("0123456789abcdefABCDEFxyzXYZ-_ ./:=\t") + ["é", "٣", "²", "Ⅻ", "日", "\u00a0", "😀"]


@_SETTINGS
@given(st.text(ANY_CHAR, max_size=60))
def test_any_text(text):
    check(text)


@_SETTINGS
@given(st.text(st.sampled_from(INTERESTING), max_size=60))
def test_interesting_alphabet(text):
    check(text)


def _run(alphabet: str, lo: int, hi: int):
    return st.text(st.sampled_from(alphabet), min_size=lo, max_size=hi)


HEX = "0123456789abcdefABCDEF"
PIECES = st.one_of(
    st.just(UUID), st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()),
    _run(HEX + "-", 30, 40), _run("0123456789", 7, 11), _run("0123456789abcdefXYZ_-", 17, 23),
    _run("abcxyzé٣²Ⅻ", 1, 5), st.sampled_from(INTERESTING), st.text(ANY_CHAR, max_size=3),
)


@_SETTINGS
@given(st.lists(PIECES, max_size=8).map("".join))
def test_pieces(text):
    check(text)


@_SETTINGS
@given(st.lists(PIECES, min_size=3, max_size=12).map("".join))
def test_long_pieces(text):
    check(text)


@_SETTINGS
@given(st.lists(st.one_of(_run("abcéżÅ日²Ⅻ٣1_", 1, 6), st.sampled_from([" ", "  ", "\t", "-", "\u00a0"])),
                max_size=12).map("".join))
def test_free_text_like(text):
    check(text)
