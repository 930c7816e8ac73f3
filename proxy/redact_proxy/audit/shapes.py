"""What a surviving value looks like, without keeping it: detector kinds, identifier
shapes, free text; and a fixed-size sketch of how many distinct values a field has.

Strategy: the detectors are the policy's own (``policy.detectors``), run as one
``Masker`` per set of detectors *the policy did not already apply* to the field: a value
the policy masked with a detector cannot hold a match of it any more, so only the
others are worth a pass (with the doctrine, which masks every field with every detector,
no detector pass runs at all). Only a value with a hit is looked at again, detector by
detector, to name the kinds. Identifier shapes are three plain regexes and a count of
distinct characters; free text is a word count. Every answer is a tuple of kind names:
callers count them, they never store the text.

``Sketch`` is a k-minimum-values sketch (Bar-Yossef et al.): the K smallest 64-bit hashes
seen. Exact below K distinct values, about 1/sqrt(K) relative error above, and K
integers whatever the traffic. Hashes are Python's ``hash`` of the string: randomised per
process (nothing to reverse from a dump of the sketch), stable within it, and computed in C.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left

from redact_proxy.policy.detectors import DETECTORS, Masker, expand_detectors

# Kinds, a closed set: detector names, then the shapes this module adds. They are the
# `kind` label of redact_proxy_audit_findings_total and the names --fail-on takes.
DETECTOR_KINDS: tuple[str, ...] = tuple(DETECTORS)
SHAPE_KINDS = ("uuid", "digits", "high_entropy")
FIELD_KINDS = ("high_cardinality", "free_text")
KINDS: tuple[str, ...] = DETECTOR_KINDS + SHAPE_KINDS + FIELD_KINDS
IDENTIFIER_KINDS = SHAPE_KINDS + ("high_cardinality",)
# Names --fail-on also takes, each standing for several kinds.
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "secrets": expand_detectors(["secrets"]),
    "ip": ("ipv4", "ipv6"),
    "card": ("credit_card",),
    "detectors": DETECTOR_KINDS,
    "identifiers": IDENTIFIER_KINDS,
    "any": KINDS,
}

ALL_DETECTORS = frozenset(DETECTORS)
DIGIT_RUN = 9  # digits in a row: account, customer and phone numbers; not ports, years or counts
TOKEN_MIN = 20  # characters of a token before its entropy is looked at
# A token is high-entropy when it switches between letters and digits at least this often:
# random ids, keys and digests (24 random base-36 characters switch ~9 times, a hex digest
# of 32 ~14), not words, not a name with a number (`invoice2024`). Counted on the token
# with its letters and digits mapped to one character each (bytes.translate, in C): a
# Shannon-entropy count per value cost more than the rest of the audit together.
TOKEN_SWITCHES = 4
FREE_TEXT_WORDS = 4  # words of letters in a value before it counts as free text

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DIGITS = re.compile(rf"(?<![0-9A-Za-z])[0-9]{{{DIGIT_RUN},}}(?![0-9A-Za-z])")
_TOKEN = re.compile(rf"[A-Za-z0-9_\-]{{{TOKEN_MIN},}}")  # base64url, hex, alphanumeric ids (not paths)
_WORD = re.compile(r"[^\W\d_]{2,}")
_CLASSES = bytes.maketrans(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", b"0" * 10 + b"a" * 52)


def _high_entropy_token(token: str) -> bool:
    classes = token.encode().translate(_CLASSES)  # ASCII: the token's characters are [A-Za-z0-9_-]
    return classes.count(b"a0") + classes.count(b"0a") >= TOKEN_SWITCHES


def shape_kinds(text: str) -> tuple[str, ...]:
    """The identifier shapes in ``text``: uuid, digits, high_entropy (each once)."""
    n = len(text)
    if n < DIGIT_RUN or text.isalpha():  # no digit: none of the shapes
        return ()
    if text.isascii() and text.isalnum():
        # One word of ASCII letters and digits (the usual id), decided without a regex: a
        # digit run inside it touches a letter, so only an all-digit value is `digits`.
        if text.isdigit():
            return ("digits",)
        return ("high_entropy",) if n >= TOKEN_MIN and _high_entropy_token(text) else ()
    if n >= 36 and "-" in text and _UUID.search(text):
        return ("uuid",)  # its groups are digit runs and tokens too: the uuid says it
    digits = _DIGITS.search(text) is not None
    entropy = False
    if n >= TOKEN_MIN:
        m = _TOKEN.search(text)
        if m is not None:
            if m.end() - m.start() == n:  # the whole value is one token (the usual id)
                entropy = _high_entropy_token(text)
            else:
                entropy = any(_high_entropy_token(t.group()) for t in _TOKEN.finditer(text, m.start()))
    if digits:
        return ("digits", "high_entropy") if entropy else ("digits",)
    return ("high_entropy",) if entropy else ()


def is_free_text(text: str) -> bool:
    """Prose: several words of letters separated by white space (a message, a note, a
    name and address), not a route, an enum or a dotted name."""
    if len(text) < 12 or text.count(" ") < FREE_TEXT_WORDS - 1:
        return False
    return len(_WORD.findall(text)) >= FREE_TEXT_WORDS


class Detectors:
    """The detectors not already applied to a field, as one Masker per such set."""

    __slots__ = ("_combined", "_single")

    def __init__(self) -> None:
        self._combined: dict[frozenset, Masker | None] = {}
        self._single = {name: Masker([name]) for name in DETECTORS}

    def kinds(self, text: str, remaining: frozenset) -> tuple[str, ...]:
        """Detector kinds with a match in ``text`` among ``remaining``."""
        masker = self._combined.get(remaining)
        if masker is None:
            if remaining in self._combined or not remaining:
                return ()
            masker = self._combined[remaining] = Masker(sorted(remaining))
        if masker.mask(text) is None:
            return ()
        # A hit: name it (rare on what a policy let through, so one pass per detector is fine).
        return tuple(name for name in DETECTORS if name in remaining and self._single[name].mask(text) is not None)


def applied_detectors(policy, masks) -> frozenset:
    """The detectors the policy's mask rules ``masks`` (compile.Mask) run on a field."""
    names: set[str] = set()
    for m in masks:
        names.update(expand_detectors(policy.rules[m.rule].detectors))
    return frozenset(names)


SKETCH_K = 64
MASK64 = (1 << 64) - 1


class Sketch:
    """Distinct values, estimated from the SKETCH_K smallest hashes (see the module
    docstring). ``add`` costs one hash and, once full, one comparison for most values."""

    __slots__ = ("mins", "top")

    def __init__(self) -> None:
        self.mins = array("Q")  # sorted ascending, at most SKETCH_K
        self.top = MASK64  # the largest kept hash once full: anything larger is ignored

    def add(self, text) -> None:
        h = hash(text) & MASK64
        if h < self.top:
            self.add_hash(h)

    def add_hash(self, h: int) -> None:
        """``h`` below ``top`` (callers on the hot path test that inline)."""
        mins = self.mins
        i = bisect_left(mins, h)
        if i < len(mins) and mins[i] == h:
            return
        mins.insert(i, h)
        if len(mins) > SKETCH_K:
            mins.pop()
        if len(mins) == SKETCH_K:
            self.top = mins[-1]

    def estimate(self) -> int:
        return estimate(len(self.mins), self.mins[-1] if self.mins else 0)


def estimate(n: int, largest: int) -> int:
    """Distinct values from a sketch of ``n`` hashes whose largest is ``largest``."""
    if n < SKETCH_K:
        return n
    return int((SKETCH_K - 1) * (MASK64 + 1) / (largest + 1))
