"""Built-in value detectors for the ``mask`` action, and the ``Masker`` that applies them.

Strategy: every detector is an RE2 pattern (linear time, no ReDoS), optionally
followed by a Python *verifier* that confirms a candidate (Luhn for cards, ISO 7064
mod-97 for IBANs, digit count for phones, address syntax for IPs). A ``Masker`` is
built once per rule: user regexes and the chosen detectors become ONE RE2 alternation
with one capturing group per alternative, so masking a value is a single left-to-right
scan. Verifiers run only on the candidates of detectors that have one. A candidate
that fails verification is left as it is; the scan then retries the *later*
alternatives anchored at the same position (RE2 alternation is leftmost-first, so
those are exactly the matches the failed alternative shadowed) and otherwise resumes
one character further on.

Cost: each RE2 search is linear, but a search must run until every candidate that
started earlier has failed, so a rescan after a rejection costs as much as the
longest-lived failing candidate. Every built-in pattern therefore either has a
bounded length (verified ones, e-mail: <= 64 + 8 x 64 + 63 bytes) or is certain to
match within a few bytes of its start and only then extends greedily (jwt,
bearer_token), which keeps a whole pass linear in the value's length with the
built-ins. User regexes are taken as written; one whose non-matching prefixes can
run unboundedly (``[a-z]+@corp``) can make adversarial values cost more.

``Masker.mask(value)`` returns the rewritten string, or ``None`` when nothing was
replaced so callers can skip re-encoding. Nothing here does I/O, and no exception
message ever contains the value being masked.

Precision, per detector (what each one will miss or over-mask):

- ``email``: local part <= 64 characters, 2-9 domain labels, TLD of >= 2 letters;
  any non-ASCII character counts as a letter (IDN, SMTPUTF8). Misses obfuscated
  (``a at b dot c``) and percent-encoded (``a%40b.c``) addresses and domains with
  more than nine labels.
- ``ipv4``: dotted quad, octets 0-255. A dotted quad that is part of a longer dotted
  number (``1.2.3.4.5``, SNMP OIDs) is left alone; a four-part version string
  ``1.2.3.4`` standing alone is masked (false positive).
- ``ipv6``: all RFC 4291 text forms (full, ``::``-compressed, IPv4-embedded such as
  ``::ffff:1.2.3.4``, optional ``%zone``), confirmed by ``ipaddress``. Requires at least
  one decimal digit, so all-letter look-alikes (``dead::beef``, ``de::Error`` in Rust
  paths) are left alone - and so are the rare all-letter real addresses.
- ``credit_card``: 13-19 digits, either one unbroken run or groups of 3-6 digits
  separated by single spaces or dashes, confirmed by Luhn. If a grouped run fails,
  shorter runs ending at a group boundary are tried (``4111 1111 1111 1111 5`` masks
  the first 16 digits). Card numbers glued to other digits are missed; a random
  13-19-digit number passes Luhn one time in ten (false positive).
- ``iban``: upper-case country code, two check digits, 11-30 alphanumerics, optional
  single spaces every four characters, confirmed by mod-97. Lower-case IBANs are missed;
  no per-country length table, so about 1 in 97 IBAN-shaped strings passes wrongly.
- ``jwt``: ``eyJ`` (base64 of ``{"``) followed by at least ten base64url characters,
  extended over further base64url segments and dots: JWS (3 segments), JWE (5) and
  also bare base64url-encoded JSON objects (session blobs - masked on purpose).
  Other token formats (opaque random tokens) are not recognised.
- ``bearer_token``: the credential after an HTTP auth scheme (``Bearer``, ``Basic``,
  ``Token``, ``Negotiate``, ``NTLM``, ``ApiKey``, case-insensitive) is masked, the
  scheme is kept. After ``Bearer`` any token68 string is masked (``Bearer token`` in
  prose loses its second word). After the other schemes, which are also English
  words, the credential must contain an upper-case letter, digit or one of
  ``-._~+/=`` after a first letter or digit (``token = ?`` holds no credential), so ``basic validation failed`` is left alone; an all-lower-case-letter
  credential is missed. ``Digest`` and ``AWS4-HMAC-SHA256`` parameter lists: the rest
  of the line is masked.
- ``phone``: international numbers starting ``+`` or ``00`` (E.164, with optional
  spaces, dots, dashes and a bracketed area code), North-American ``(555) 123-4567`` /
  ``555-123-4567`` / ``555.123.4567``, and trunk-prefixed national numbers starting
  ``0`` with space or dash groups (``030 1234567``, ``06 12 34 56 78``). A candidate
  needs 7-15 digits. National numbers must contain a separator, so plain digit runs
  (ids, epoch timestamps) are never phones - and an unformatted national number is
  missed. False positives: dotted or dashed digit groups shaped like phones
  (``123.456.7890`` version triples, ``+1234567`` in arithmetic), and a short digit
  group following a phone after a single separator is absorbed into it. Dates
  ``dd-mm-yyyy`` / ``dd mm yyyy`` are rejected explicitly.

User regexes (RE2 syntax) come before the built-ins in the alternation: when a user
pattern and a detector match at the same position, the user's pattern decides the
extent. A user regex that matches the empty string at some position is ignored there.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import re2

__all__ = ["DETECTORS", "Detector", "Masker", "UnknownDetector"]

# A verifier gets the UTF-8 bytes of the whole value and the candidate's span, and
# returns the end of the accepted match (<= end, > start) or -1 to reject it. The
# whole value is passed so a verifier can look at the context (ipv4, ipv6).
Verifier = Callable[[bytes, int, int], int]


@dataclass(frozen=True)
class Detector:
    name: str
    pattern: str
    verify: Verifier | None
    doc: str
    # When set, only these named groups are replaced (the auth scheme stays), not the match.
    value_groups: tuple[str, ...] = ()


class UnknownDetector(ValueError):
    """A detector name that is not in ``DETECTORS``; the message lists the valid names."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        super().__init__(
            f"unknown detector(s) {', '.join(map(repr, self.names))}; "
            f"valid detectors: {', '.join(DETECTORS)}"
        )


# --------------------------------------------------------------------------- verifiers

_DIGITS = frozenset(b"0123456789")
_SEPARATORS = frozenset(b" -./")
_HEX_COLON = frozenset(b"0123456789abcdefABCDEF:")
_WORD = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


def _group_ends(data: bytes, start: int, end: int, min_len: int = 1) -> list[int]:
    """Candidate ends, longest first: ``end`` and every position just before a separator.

    Lets a verifier shrink an over-long greedy match back to a group boundary (the
    regex cannot know that the trailing group belongs to something else).
    """
    ends = [end]
    for i in range(end - 1, start + min_len - 1, -1):
        if data[i] in _SEPARATORS and data[i - 1] not in _SEPARATORS:
            ends.append(i)
    return ends


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: 2*d with its digits summed


def _luhn(digits: bytes) -> bool:
    odd = digits[-1::-2]   # check digit and every second one, as they are
    even = digits[-2::-2]  # the others, doubled
    return (sum(odd) - 48 * len(odd) + sum(_DOUBLED[c - 48] for c in even)) % 10 == 0


def _verify_card(data: bytes, start: int, end: int) -> int:
    candidate = data[start:end]
    digits = candidate.translate(None, b" -")
    if len(digits) == len(candidate):  # one unbroken run, 13-19 digits by the pattern
        return end if _luhn(digits) else -1
    for stop in _group_ends(data, start, end, 13):
        digits = data[start:stop].translate(None, b" -")
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return stop
    return -1


def _mod97_ok(text: bytes) -> bool:
    compact = text.replace(b" ", b"")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    # Letters count as two-digit numbers A=10 .. Z=35 (ISO 13616); reduce as we go so
    # the intermediate number stays small.
    remainder = 0
    for ch in rearranged:
        value = ch - 48 if ch < 65 else ch - 55
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return remainder == 1


def _verify_iban(data: bytes, start: int, end: int) -> int:
    for stop in _group_ends(data, start, end, 15):
        if _mod97_ok(data[start:stop]):
            return stop
    return -1


_DATE_SHAPE = re2.compile(rb"\d{1,2}[ ./-]\d{1,2}[ ./-]\d{2,4}")


def _verify_phone(data: bytes, start: int, end: int) -> int:
    for stop in _group_ends(data, start, end, 7):
        text = data[start:stop]
        count = len(text) - len(text.translate(None, b"0123456789"))
        if 7 <= count <= 15 and _DATE_SHAPE.fullmatch(text) is None:
            return stop
    return -1


def _verify_ipv4(data: bytes, start: int, end: int) -> int:
    # Part of a longer dotted number (version, OID): not an address.
    if end + 1 < len(data) and data[end] == 0x2E and data[end + 1] in _DIGITS:
        return -1
    if start >= 2 and data[start - 1] == 0x2E and data[start - 2] in _DIGITS:
        return -1
    return end


def _verify_ipv6(data: bytes, start: int, end: int) -> int:
    if end < len(data) and data[end] in _WORD:
        return -1  # "de::Error", "fe80::1g": glued to a word
    if start >= 2 and data[start - 1] == 0x3A and data[start - 2] in _HEX_COLON:
        return -1  # the tail of a longer colon run that is not an address ("1:2:...:9")
    stop = end
    # Trailing sentence punctuation ("... from fe80::1.") may be swallowed by the
    # greedy tail; try up to two characters shorter.
    for _ in range(3):
        text = data[start:stop]
        if stop > start and len(text.translate(None, b"0123456789")) < len(text):
            try:
                ipaddress.IPv6Address(text.decode("ascii"))
            except ValueError:
                pass
            else:
                glued = stop + 1 < len(data) and data[stop] == 0x3A and data[stop + 1] in _HEX_COLON
                return -1 if glued else stop
        if stop > start and data[stop - 1] in b".:":
            stop -= 1
        else:
            break
    return -1


# --------------------------------------------------------------------------- patterns

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b"
_H = r"[0-9A-Fa-f]{1,4}"
# Three shapes, longest first (leftmost-first alternation must not stop at a prefix):
# eight full groups, six groups + dotted quad, and anything containing "::". The
# "::" shape only guarantees the double colon; ``ipaddress`` decides validity. All
# repetitions are bounded so a rejected candidate is short.
_IPV6 = (
    rf"(?:\b(?:{_H}:){{7}}{_H}\b"
    rf"|\b(?:{_H}:){{6}}(?:[0-9]{{1,3}}\.){{3}}[0-9]{{1,3}}\b"
    rf"|(?:\b{_H}:|\B:)(?:[0-9A-Fa-f]{{0,4}}:){{0,7}}:[0-9A-Fa-f:.]{{0,39}})"
    r"(?:%[0-9A-Za-z_.~\-]{1,32})?"
)
# Non-ASCII is taken as one range (IDN / SMTPUTF8) to keep the program small; all
# repetitions are bounded (RFC 5321: local part <= 64, label <= 63) so a candidate
# that never finds its "@" or TLD dies within a few hundred bytes.
_EMAIL = (
    r"[A-Za-z0-9._%+\-\x{80}-\x{10FFFF}]{1,64}@"
    r"(?:[A-Za-z0-9\-\x{80}-\x{10FFFF}]{1,63}\.){1,8}"
    r"[A-Za-z\x{80}-\x{10FFFF}]{2,63}"
)
_CARD = r"\b(?:[0-9]{3,6}(?:[ \-][0-9]{3,6}){1,5}|[0-9]{13,19})\b"
_IBAN = r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"
# "eyJ" is base64 for '{"'. Ten more base64url characters make a JSON object
# certain; from there the match extends greedily over segments and dots, so a JWS,
# a JWE or a bare base64url JSON blob is masked whole, and no candidate can stay
# undecided for long (which would make rescans after a rejected candidate costly).
_JWT = r"\beyJ[A-Za-z0-9_\-]{10}[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*)*={0,2}"
_TOKEN68 = r"[A-Za-z0-9\-._~+/]"
# Refused candidates one value may cost before it is replaced whole (see Masker.mask):
# 256, plus one per 16 bytes of value. Real text (a log line of order ids failing Luhn)
# stays far below; a value crafted to be a candidate at every byte hits it, which bounds
# the work per byte.
REJECTED_BASE = 256
REJECTED_PER_BYTES = 16
_BEARER = (
    r"\b(?:"
    rf"(?i:bearer)\s{{1,8}}(?P<bearer_value>[A-Za-z0-9]{_TOKEN68}*=*)"
    rf"|(?i:basic|token|negotiate|ntlm|apikey)\s{{1,8}}"
    # A credential starts with a letter or digit: "token = ?" (a sanitized SQL fragment),
    # "token - expired" (prose) hold none.
    rf"(?P<scheme_value>(?:[a-z]{{1,200}}[A-Z0-9\-._~+/=]|[A-Z0-9]){_TOKEN68}*=*)"
    r"|(?i:digest|aws4-hmac-sha256)\s{1,8}(?P<params_value>[^\r\n]*[^\s])"
    r")"
)
_PHONE = (
    r"(?:"
    # +CC ... or 00CC ... (the 00 form needs separators: "0012345678" is an id)
    r"\B\+[1-9][0-9]{0,3}(?:[ .\-]?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,5}){1,6}\b"
    r"|\b00[1-9][0-9]{0,2}(?:[ .\-](?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,8}){1,6}\b"
    # North America: (555) 123-4567, 1-555-123-4567, 555.123.4567
    r"|(?:\b1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ .\-]?|\b[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4}\b"
    # national with trunk 0: 030 1234567, 0171-1234567, (030) 1234567, 06 12 34 56 78
    r"|(?:\b0[1-9][0-9]{0,4}|\(0[1-9][0-9]{0,4}\))(?:[ \-][0-9]{2,8}){1,4}\b"
    r")"
)

# Precedence when two detectors match at the same position: this order. Detectors
# rarely overlap; the order is chosen so the more specific shape wins.
DETECTORS: Mapping[str, Detector] = MappingProxyType({
    d.name: d
    for d in (
        Detector("jwt", _JWT, None, "JSON Web Tokens (JWS/JWE) and other base64url JSON (eyJ...)"),
        Detector("bearer_token", _BEARER, None,
                 "credential after an HTTP auth scheme (Bearer/Basic/Token/...), scheme kept",
                 ("bearer_value", "scheme_value", "params_value")),
        Detector("email", _EMAIL, None, "e-mail addresses"),
        Detector("iban", _IBAN, _verify_iban, "IBANs, confirmed by the ISO 7064 mod-97 checksum"),
        Detector("credit_card", _CARD, _verify_card,
                 "payment card numbers (13-19 digits), confirmed by the Luhn checksum"),
        Detector("ipv6", _IPV6, _verify_ipv6, "IPv6 addresses, all text forms, optional zone id"),
        Detector("ipv4", _IPV4, _verify_ipv4, "dotted-quad IPv4 addresses"),
        Detector("phone", _PHONE, _verify_phone,
                 "phone numbers: +/00 international, North-American, 0-prefixed national"),
    )
})


# --------------------------------------------------------------------------- masker

def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad user regex is reported by the exception, not stderr
    return options


@dataclass(frozen=True)
class _Spec:
    """One alternative: its pattern, the groups to replace and its verifier."""

    pattern: str
    value_groups: tuple[int, ...]  # inner groups to replace, numbered within the pattern
    verify: Verifier | None
    groups: int                    # number of capturing groups inside the pattern


class _Alternation:
    """Specs as one leftmost-first RE2 alternation, one wrapper group per spec."""

    __slots__ = ("regex", "groups")

    def __init__(self, specs: Sequence[_Spec], options: re2.Options) -> None:
        groups = []
        group = 1
        for spec in specs:
            groups.append(group)
            group += 1 + spec.groups
        self.groups = tuple(groups)
        self.regex = re2.compile("|".join(f"({spec.pattern})" for spec in specs), options)

    def which(self, match) -> int:
        """Index of the spec that produced ``match`` (exactly one wrapper participates)."""
        for index, group in enumerate(self.groups):
            if match.start(group) >= 0:
                return index
        raise AssertionError("a match without a participating alternative")


class Masker:
    """Replaces every detected substring of a value, in one RE2 pass.

    ``replace`` is either a fixed string or a callable given the matched text (for
    ``{hash}``-style replacements). Raises ``UnknownDetector`` for unknown names and
    ``ValueError`` for a user regex RE2 rejects (the message names its index and
    RE2's reason; patterns come from the policy, never from telemetry).
    """

    __slots__ = ("_specs", "_main", "_rests", "_options", "_replace")

    def __init__(
        self,
        detectors: Sequence[str] = (),
        regexes: Sequence[str] = (),
        replace: Callable[[str], str] | str = "[REDACTED]",
    ) -> None:
        if isinstance(detectors, str) or isinstance(regexes, str):
            raise TypeError("detectors and regexes must be sequences of strings, not a string")
        unknown = [name for name in detectors if name not in DETECTORS]
        if unknown:
            raise UnknownDetector(unknown)
        options = _options()
        specs: list[_Spec] = []
        for index, pattern in enumerate(regexes):
            try:
                compiled = re2.compile(pattern, options)
            except re2.error as exc:
                reason = exc.args[0] if exc.args else ""
                if isinstance(reason, bytes):
                    reason = reason.decode("utf-8", "replace")
                raise ValueError(f"regexes[{index}]: invalid RE2 regex: {reason}") from exc
            specs.append(_Spec(pattern, (), None, compiled.groups))
        wanted = frozenset(detectors)
        for name, det in DETECTORS.items():  # table order = precedence
            if name in wanted:
                compiled = re2.compile(det.pattern, options)
                values = tuple(compiled.groupindex[n] for n in det.value_groups)
                specs.append(_Spec(det.pattern, values, det.verify, compiled.groups))
        self._specs = tuple(specs)
        self._options = options
        self._main = _Alternation(specs, options) if specs else None
        # What a rejected candidate shadowed: the later alternatives, anchored at its
        # start. Built now for verified detectors (the usual case); for a user regex
        # (rejected only for matching the empty string) on first need.
        self._rests: dict[int, _Alternation] = {
            k: _Alternation(specs[k + 1:], options)
            for k, spec in enumerate(specs)
            if spec.verify is not None and k + 1 < len(specs)
        }
        self._replace = replace if callable(replace) else (lambda _text, _r=replace: _r)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The RE2 pattern of every alternative (user regexes, then detectors).
        ``mask`` changes nothing in a value that none of them matches."""
        return tuple(spec.pattern for spec in self._specs)

    def mask(self, value: str) -> str | None:
        """The value with every detection replaced, or None if nothing was replaced."""
        main = self._main
        if main is None or not value:
            return None
        regex = main.regex
        data = value.encode("utf-8", "surrogatepass")
        match = regex.search(data)
        if match is None:
            return None
        out: list[bytes] = []
        last = 0
        size = len(data)
        rejected = 0
        budget = REJECTED_BASE + size // REJECTED_PER_BYTES
        while match is not None:
            hit = self._resolve(data, match)
            if hit is None:
                # A candidate its verifier refused: the scan moves on one character and
                # searches again. A value built to make every position a refused candidate
                # ("1.1.1.1..." , "4111 4111 ...") would cost a search per byte; past a
                # budget the whole value is replaced instead (fail closed, bounded time).
                rejected += 1
                if rejected > budget:
                    return self._replace(value)
                pos = _next_char(data, match.start())
            else:
                spans, pos = hit
                for start, end in spans:
                    out.append(data[last:start])
                    text = data[start:end].decode("utf-8", "surrogatepass")
                    out.append(self._replace(text).encode("utf-8", "surrogatepass"))
                    last = end
            if pos > size:
                break
            match = regex.search(data, pos)
        if not out:
            return None
        out.append(data[last:])
        result = b"".join(out).decode("utf-8", "surrogatepass")
        return None if result == value else result

    def _resolve(self, data: bytes, match) -> tuple[list[tuple[int, int]], int] | None:
        """Spans to replace and where to resume, or None if nothing is accepted here."""
        start = match.start()
        alternation, offset = self._main, 0
        while True:
            index = alternation.which(match)
            k = offset + index
            found = _accept(data, self._specs[k], match, alternation.groups[index])
            if found is not None:
                return found
            if k + 1 >= len(self._specs):
                return None
            # Leftmost-first: the later alternatives are what the rejected one shadowed.
            rest = self._rests.get(k)
            if rest is None:
                rest = self._rests[k] = _Alternation(self._specs[k + 1:], self._options)
            match = rest.regex.match(data, start)
            if match is None:
                return None
            alternation, offset = rest, k + 1


def _accept(data: bytes, spec: _Spec, match, group: int):
    start, end = match.span(group)
    if end <= start:
        return None  # an empty match replaces nothing and must not stall the scan
    if spec.verify is not None:
        end = spec.verify(data, start, end)
        if end < 0:
            return None
    if spec.value_groups:
        spans = []
        for inner in spec.value_groups:
            s, e = match.span(group + inner)
            if e > s:
                spans.append((s, e))
        return (spans, end) if spans else None
    return [(start, end)], end


def _next_char(data: bytes, pos: int) -> int:
    """The byte offset of the character after the one at ``pos`` (UTF-8 aware)."""
    pos += 1
    while pos < len(data) and data[pos] & 0xC0 == 0x80:
        pos += 1
    return pos
