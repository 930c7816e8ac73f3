"""Built-in value detectors for the ``mask`` action, and the ``Masker`` that applies them.

Strategy: every detector is an RE2 pattern (linear time, no ReDoS), optionally
followed by a Python *verifier* that confirms a candidate (Luhn and an issuer table for
cards, a per-country format table and ISO 7064 mod-97 for IBANs, digit count for
phones, address syntax and context for IPs, placeholder rules for ``password=``
values). A ``Masker`` is built once per rule: user regexes and the chosen detectors
become ONE RE2 alternation with one capturing group per alternative, so masking a
value is a single left-to-right scan however many detectors the rule names; a value
no pattern can match costs that one pass and nothing else. Verifiers run only on the
candidates of detectors that have one. A candidate that fails verification is left as
it is; the scan then retries the *later* alternatives anchored at the same position
(RE2 alternation is leftmost-first, so those are exactly the matches the failed
alternative shadowed) and otherwise resumes one character further on.

Names: ``DETECTORS`` maps each detector name to its ``Detector``; ``DETECTOR_GROUPS``
maps a group name (``secrets``) to detector names; ``expand_detectors`` turns a list
of names and groups into detector names. ``DIGIT_DETECTORS`` are the detectors that
can match a string of decimal digits only: the ones worth running on the decimal text
of an integer (which has lost any ``+`` or leading ``0``).

Cost: each RE2 search is linear, but a search must run until every candidate that
started earlier has failed, so a rescan after a rejection costs as much as the
longest-lived failing candidate. Every built-in pattern therefore either has a
bounded length (verified ones, e-mail: <= 64 + 8 x 64 + 63 bytes) or is certain to
match within a bounded number of bytes of its start and only then extends greedily
(jwt, bearer_token, the prefixed secret tokens, private_key, password_assignment),
which keeps a whole pass linear in the value's length with the built-ins. User
regexes are taken as written; one whose non-matching prefixes can run unboundedly
(``[a-z]+@corp``) can make adversarial values cost more.

``Masker.mask(value)`` returns the rewritten string, or ``None`` when nothing was
replaced so callers can skip re-encoding. Nothing here does I/O, and no exception
message ever contains the value being masked.

Precision, per detector (what each one will miss or over-mask, and the guard that
keeps look-alikes out):

- ``email``: local part <= 64 characters, 2-9 domain labels, TLD of >= 2 letters;
  any non-ASCII character counts as a letter (IDN, SMTPUTF8). The at sign may also be
  percent-encoded (``%40``) or an HTML entity (``&#64;``, ``&#x40;``, ``&commat;``).
  Guard: the encoded forms need the same local part, domain and letter TLD as ``@``,
  and an entity must be complete (with its ``;``). Misses obfuscated (``a at b dot
  c``) and double-encoded (``%2540``) addresses and domains with more than nine labels.
- ``ipv4``: dotted quad, octets 0-255, also followed by ``:port``, or by ``.port`` as
  tcpdump prints it (``10.1.2.3.8080``: the address is masked, the port kept), and the
  dashed form host names embed (``ip-10-1-2-3``, ``ec2-54-1-2-3...``,
  ``10-1-2-3.nip.io``). Guards: a dotted quad that is part of a longer dotted number
  is left alone (``1.2.3.4.5``, SNMP OIDs, ``build 10.0.19041.1234``) unless there are
  exactly five parts and the fifth is a 2-5 digit port <= 65535; a dashed quad counts
  only after ``ip-``/``ec2-`` or before a ``.``-and-letter domain, and never inside a
  longer dashed number (``06-12-34-56-78``). False positives: a four-part version
  string ``1.2.3.4`` standing alone, a five-part one ending in a number >= 10.
- ``ipv6``: all RFC 4291 text forms (full, ``::``-compressed, IPv4-embedded such as
  ``::ffff:1.2.3.4``, optional ``%zone``), confirmed by ``ipaddress``. Requires at least
  one decimal digit, so all-letter look-alikes (``dead::beef``, ``de::Error`` in Rust
  paths) are left alone - and so are the rare all-letter real addresses.
- ``credit_card``: 13-19 digits, either one unbroken run or the groupings issuers
  print (4-4-4-4, 4-4-4-4-3, Amex 4-6-5, Diners 4-6-4, and 4-4-4-1..3 for 13-15
  digit cards) separated by single spaces, dashes or dots, confirmed by Luhn AND the
  issuer table (``_ISSUERS``: prefix and lengths of Visa, Mastercard, Amex, Discover,
  Diners, JCB, UnionPay, Maestro, Mir, RuPay, Troy, Verve, Dankort, InterPayment), so
  a Luhn-valid number without a real issuer prefix stays. A card glued to letters
  (``card4111111111111111x``) is found; glued to other digits it is missed. Guard: a
  glued candidate inside a word of 16+ characters that are all hex digits (trace and
  span ids, digests) is taken for that id. If a grouped run fails, shorter runs ending
  at a group boundary are tried (``4111 1111 1111 1111 123`` masks the first 16
  digits). False positive: a random number of a card's length that starts with an
  issuer prefix passes Luhn one time in ten. UATP (``1...``, 15 digits) is left out:
  it would take epoch-like numbers.
- ``iban``: two-letter country code, two check digits and the BBAN, optionally in
  groups of four separated by single spaces or dashes; upper or lower case but not
  mixed. Confirmed by the country's registered length and BBAN format (``_IBAN_BBAN``,
  the SWIFT registry) and mod-97, which together leave about one random IBAN-shaped
  string in thousands; unknown countries are not IBANs.
- ``jwt``: ``eyJ`` (base64 of ``{"``) followed by at least ten base64url characters,
  extended over further base64url segments and dots: JWS (3 segments), JWE (5) and
  also bare base64url-encoded JSON objects (session blobs - masked on purpose).
  Other token formats (opaque random tokens) are not recognised.
- ``bearer_token``: the credential after an HTTP auth scheme (``Bearer``, ``Basic``,
  ``Token``, ``Negotiate``, ``NTLM``, ``ApiKey``, case-insensitive) is masked, the
  scheme is kept. After ``Bearer`` any token68 string is masked (``Bearer token`` in
  prose loses its second word). After the other schemes, which are also English
  words, the credential must contain an upper-case letter, digit or one of
  ``-._~+/=`` after a first letter or digit (``token = ?`` holds no credential), so
  ``basic validation failed`` is left alone, and be at least eight characters long
  (``token FROM users`` in SQL); an all-lower-case-letter or shorter credential is
  missed. ``Digest`` and ``AWS4-HMAC-SHA256`` parameter lists: the rest of the line is
  masked.
- ``phone``: international numbers starting ``+`` or ``00`` (E.164, with optional
  spaces, dots, dashes and a bracketed area code), North-American ``(555) 123-4567`` /
  ``555-123-4567`` / ``555.123.4567``, trunk-prefixed national numbers starting ``0``
  with space or dash groups (``030 1234567``, ``06 12 34 56 78``), and unformatted
  national numbers: ``0`` then a non-zero digit, 10-12 digits in all (``0612345678``,
  ``07700900123``, ``01711234567``). A candidate needs 7-15 digits. Guards for the
  unformatted form: it must be a whole word of digits (so never a digit run inside hex,
  a trace id or a longer number), must start with a single ``0`` (epoch seconds and
  millis start with ``1``, zero-padded ids with ``00``), and must not touch a ``-``
  (UUID groups, dashed ids) or a dot joining it to a word or number. False positives:
  dotted or dashed digit groups shaped like phones (``123.456.7890`` version triples,
  ``+1234567`` in arithmetic), 10-12 digit ids that start with one ``0``, and a short
  digit group following a phone after a single separator is absorbed into it. Dates
  ``dd-mm-yyyy`` / ``dd mm yyyy`` are rejected explicitly, and so is any candidate
  joined by a dash to a longer token (the ``0427-8320`` inside a UUID).

Secret detectors (group ``secrets``), after the gitleaks rule set and Datadog Sensitive
Data Scanner's secret rules. The prefixed token formats need their prefix at a word
start and their documented minimum body, then take the whole run of token characters
(a longer or truncated token is still masked; a prefix glued to a word, ``xghp_...``,
is missed). Their checksums (GitHub's and npm's CRC32 suffix) are deliberately not
verified: the prefix and length already make a false positive unlikely, and a
checksum rule would let a token with an unknown checksum variant through.

- ``private_key``: a PEM ``-----BEGIN ... PRIVATE KEY-----`` block (RSA, EC, DSA,
  OPENSSH, ENCRYPTED, PKCS#8, PGP ``... KEY BLOCK``) through its END line, also with
  the newlines escaped (``\\n``) or turned into spaces; without an END line the mask
  runs to the first character that cannot be in a key body.
- ``aws_access_key_id``: ``AKIA``/``ASIA``/``ABIA``/``ACCA``/``A3T?`` + 16 base32
  characters, a whole word.
- ``aws_secret_access_key``: 40 base64 characters, only right after a name such as
  ``aws_secret_access_key``, ``AWS_SECRET_KEY``, ``SecretAccessKey`` and ``=`` or
  ``:``; the name is kept. A bare 40-character string is never one; a longer base64
  run after the name is not either.
- ``github_token``: ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` + >= 30, and
  ``github_pat_`` + >= 40 token characters.
- ``gitlab_token``: ``glpat-``, ``gldt-``, ``glrt-``, ``glptt-``, ``glcbt-``, ``glft-``,
  ``glimt-``, ``glagent-``, ``gloas-``, ``glsoat-``, ``glffct-`` and runner
  registration ``GR1348941`` + >= 20 characters, with the routable ``.xxxxxxxxx`` tail.
- ``slack_token``: ``xoxb-``/``xoxp-``/``xoxa-``/``xoxr-``/``xoxs-``/``xoxo-``/``xoxe-``
  and app-level ``xapp-N-`` + >= 10 characters. ``slack_webhook``: the path after
  ``hooks.slack.com/services/`` (also ``workflows``, ``triggers``); the host is kept.
- ``stripe_key``: ``sk_``/``rk_``/``pk_`` + ``live_``/``test_``/``prod_`` + >= 10, and
  ``whsec_`` + >= 24 characters.
- ``google_api_key``: ``AIza`` + >= 35. ``npm_token``: ``npm_`` + >= 36 letters or
  digits (``npm_config_registry`` and other npm variables have underscores, so stay).
  ``pypi_token``: the macaroon prefix for pypi.org or test.pypi.org + >= 50.
- ``twilio_key``: ``AC`` (account SID) or ``SK`` (API key) + exactly 32 lower-case
  hex digits, a whole word (an upper-case hex digest never has a lower-case tail).
- ``sendgrid_key``: ``SG.`` + 22 + ``.`` + 43 characters.
- ``openai_key``: ``sk-proj-``/``sk-svcacct-``/``sk-admin-`` + >= 20, or ``sk-`` + >= 32
  letters and digits that include an upper-case letter, a lower-case letter and a
  digit (so ``sk-`` followed by a word or a hex id stays).
  ``anthropic_key``: ``sk-ant-`` + >= 20.
- ``password_assignment``: the value after a credential name - ``password``,
  ``passwd``, ``passphrase``, ``pwd``, ``secret``, ``secret_key``, ``token``,
  ``api_key``/``apikey``/``x-api-key``, ``auth_key``, ``private_key``,
  ``authorization``, ``credential(s)``, also as the end of a longer name
  (``db_password``, ``clientSecret``, ``access_token``) - and ``=``, ``:``, ``:=`` or
  ``=>``; the name is kept (like ``bearer_token`` keeps its scheme). Quoted values are
  masked to the closing quote (JSON, escaped JSON, YAML); bare values up to white
  space or one of ``"'\\&;,<>()[]{}``; an auth scheme before a bare value is kept.
  Guards: the name must end right before the separator (``token_count: 5``,
  ``max_tokens: 256``, ``secret_name: x`` stay); placeholders are no secrets (``?``,
  ``$1``, ``:name``, ``@p``, ``%s``, ``${VAR}``, ``{{ .x }}``, ``***``, ``null``,
  ``true``, ``false``...); after ``:`` a bare single word (``invalid token: expired``)
  is prose; ``PWD=/path`` is the shell's directory. Misses ``--password hunter2``
  (no separator) and values after a lone ``pass``.

User regexes (RE2 syntax) come before the built-ins in the alternation: when a user
pattern and a detector match at the same position, the user's pattern decides the
extent. A user regex that matches the empty string at some position is ignored there.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from types import MappingProxyType
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import re2

from redact_proxy.policy.regex import options as re2_options
from redact_proxy.policy.regex import reason as re2_reason

__all__ = [
    "DETECTORS",
    "DETECTOR_GROUPS",
    "DIGIT_DETECTORS",
    "Detector",
    "Masker",
    "UnknownDetector",
    "expand_detectors",
]

# A verifier gets the UTF-8 bytes of the whole value and the candidate's span, and
# returns the end of the accepted match (<= end, > start) or -1 to reject it. The
# whole value is passed so a verifier can look at the context (ipv4, ipv6). For a
# detector with ``value_groups`` the returned end also clips the replaced groups.
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
    """A name that is neither in ``DETECTORS`` nor in ``DETECTOR_GROUPS``; the message
    lists the valid detectors and groups."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        super().__init__(
            f"unknown detector(s) {', '.join(map(repr, self.names))}; "
            f"valid detectors: {', '.join(DETECTORS)}; "
            f"valid groups: {', '.join(DETECTOR_GROUPS)}"
        )


# --------------------------------------------------------------------------- verifiers

_DIGITS = frozenset(b"0123456789")
_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = _DIGITS | _LETTERS
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SEPARATORS = frozenset(b" -./")
_HEX_COLON = _HEX | frozenset(b":")
_WORD = _ALNUM | frozenset(b"_")
_BASE64 = _ALNUM | frozenset(b"+/=")


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


def _word_around(data: bytes, start: int, end: int) -> bytes:
    """The maximal run of letters and digits that contains ``data[start:end]``."""
    while start > 0 and data[start - 1] in _ALNUM:
        start -= 1
    while end < len(data) and data[end] in _ALNUM:
        end += 1
    return data[start:end]


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: 2*d with its digits summed


def _luhn(digits: bytes) -> bool:
    odd = digits[-1::-2]  # check digit and every second one, as they are
    even = digits[-2::-2]  # the others, doubled
    return (sum(odd) - 48 * len(odd) + sum(_DOUBLED[c - 48] for c in even)) % 10 == 0


_ANY = range(13, 20)
# (issuer, first digits from, to, card lengths): the IIN ranges issuers publish (ISO/IEC
# 7812; Wikipedia's "Payment card number" table). Maestro's 12-digit cards are below the
# 13 digits a candidate needs.
_ISSUERS = tuple(
    (len(low), int(low), int(high), frozenset(lengths))
    for _issuer, low, high, lengths in (
        ("visa", "4", "4", (13, 16, 19)),
        ("mastercard", "51", "55", (16,)),
        ("mastercard", "2221", "2720", (16,)),
        ("amex", "34", "34", (15,)),
        ("amex", "37", "37", (15,)),
        ("discover", "6011", "6011", (16, 17, 18, 19)),
        ("discover", "644", "649", (16, 17, 18, 19)),
        ("discover", "65", "65", (16, 17, 18, 19)),
        ("diners", "300", "305", (14, 15, 16, 17, 18, 19)),
        ("diners", "3095", "3095", (14, 15, 16, 17, 18, 19)),
        ("diners", "36", "36", (14, 15, 16, 17, 18, 19)),
        ("diners", "38", "39", (16, 17, 18, 19)),
        ("jcb", "3528", "3589", (16, 17, 18, 19)),
        ("unionpay", "62", "62", (16, 17, 18, 19)),
        ("unionpay", "81", "81", (16, 17, 18, 19)),
        ("maestro", "5018", "5018", _ANY),
        ("maestro", "5020", "5020", _ANY),
        ("maestro", "5038", "5038", _ANY),
        ("maestro", "5893", "5893", _ANY),
        ("maestro", "6304", "6304", _ANY),
        ("maestro", "6759", "6759", _ANY),
        ("maestro", "6761", "6763", _ANY),
        ("dankort", "5019", "5019", (16,)),
        ("mir", "2200", "2204", (16, 17, 18, 19)),
        ("rupay", "60", "60", (16,)),
        ("rupay", "82", "82", (16,)),
        ("rupay", "353", "353", (16,)),
        ("rupay", "356", "356", (16,)),
        ("rupay", "508", "508", (16,)),
        ("verve", "506099", "506198", (16, 18, 19)),
        ("verve", "507865", "507964", (16, 18, 19)),
        ("interpayment", "636", "636", (16, 17, 18, 19)),
        ("instapayment", "637", "639", (16,)),
        ("troy", "9792", "9792", (16,)),
    )
)


def _issuer_ok(digits: bytes) -> bool:
    size = len(digits)
    for width, low, high, lengths in _ISSUERS:
        if size in lengths and low <= int(digits[:width]) <= high:
            return True
    return False


def _verify_card(data: bytes, start: int, end: int) -> int:
    if data[start] not in _DIGITS:
        start += 1  # the letter the pattern took as its left boundary
    size = len(data)
    if (start > 0 and data[start - 1] in _WORD) or (end < size and data[end] in _WORD):
        word = _word_around(data, start, end)
        if len(word) >= 16 and all(c in _HEX for c in word) and not word.isdigit():
            return -1  # digits inside a trace id or digest, not a card glued to a word
    for stop in _group_ends(data, start, end, 13):
        if stop < size and data[stop] in _DIGITS:
            continue  # cut inside a longer number or digit group
        digits = data[start:stop].translate(None, b" .-")
        if 13 <= len(digits) <= 19 and _luhn(digits) and _issuer_ok(digits):
            return stop
    return -1


# BBAN structure per country (SWIFT IBAN registry): counts of n = digits, a = upper-case
# letters, c = letters or digits. The IBAN's length is 4 + the BBAN's.
_IBAN_BBAN_TEXT = (
    "AD:4n4n12c AE:3n16n AL:8n16c AT:5n11n AZ:4a20c BA:3n3n8n2n BE:3n7n2n BG:4a4n2n8c "
    "BH:4a14c BI:5n5n11n2n BR:8n5n10n1a1c BY:4c4n16c CH:5n12c CR:4n14n CY:3n5n16c "
    "CZ:4n16n DE:8n10n DJ:5n5n11n2n DK:4n9n1n DO:4c20n EE:2n14n EG:4n4n17n "
    "ES:4n4n1n1n10n FI:3n11n FK:2a12n FO:4n9n1n FR:5n5n11c2n GB:4a6n8n GE:2a16n "
    "GI:4a15c GL:4n9n1n GR:3n4n16c GT:4c20c HN:4a20n HR:7n10n HU:3n4n1n15n1n IE:4a6n8n "
    "IL:3n3n13n IQ:4a3n12n IS:4n2n6n10n IT:1a5n5n12c JO:4a4n18c KW:4a22c KZ:3n13c "
    "LB:4n20c LC:4a24c LI:5n12c LT:5n11n LU:3n13c LV:4a13c LY:3n3n15n MC:5n5n11c2n "
    "MD:2c18c ME:3n13n2n MK:3n10c2n MN:4n12n MR:5n5n11n2n MT:4a5n18c MU:4a2n2n12n3n3a "
    "NI:4a20n NL:4a10n NO:4n6n1n OM:3n16c PK:4a16c PL:8n16n PS:4a21c PT:4n4n11n2n "
    "QA:4a21c RO:4a16c RS:3n13n2n RU:9n5n15c SA:2n18c SC:4a2n2n16n3a SD:2n12n "
    "SE:3n16n1n SI:5n8n2n SK:4n6n10n SM:1a5n5n12c SO:4n3n12n ST:4n4n11n2n SV:4a20n "
    "TL:3n14n2n TN:2n3n13n2n TR:5n1n16c UA:6n19c VA:3n15n VG:4a16n XK:4n10n2n YE:4a4n18c"
)
_BBAN_CLASS = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Z0-9]"}


def _bban_table(text: str) -> Mapping[bytes, tuple[int, Any]]:  # (IBAN length, compiled BBAN regex)
    table = {}
    for entry in text.split():
        country, structure = entry.split(":")
        parts = re2.findall(r"([0-9]+)([nac])", structure)
        length = 4 + sum(int(count) for count, _kind in parts)
        regex = re2.compile("".join(f"{_BBAN_CLASS[kind]}{{{count}}}" for count, kind in parts))
        table[country.encode()] = (length, regex)
    return MappingProxyType(table)


_IBAN_BBAN = _bban_table(_IBAN_BBAN_TEXT)


def _mod97_ok(compact: bytes) -> bool:
    rearranged = compact[4:] + compact[:4]
    # Letters count as two-digit numbers A=10 .. Z=35 (ISO 13616); reduce as we go so
    # the intermediate number stays small.
    remainder = 0
    for ch in rearranged:
        value = ch - 48 if ch < 65 else ch - 55
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return remainder == 1


def _iban_ok(text: bytes) -> bool:
    compact = text.translate(None, b" -")
    if not (compact.isupper() or compact.islower()):
        return False  # mixed case: a word or an id, not a written IBAN
    compact = compact.upper()
    known = _IBAN_BBAN.get(compact[:2])
    if known is None or len(compact) != known[0] or known[1].fullmatch(compact[4:]) is None:
        return False
    return _mod97_ok(compact)


def _verify_iban(data: bytes, start: int, end: int) -> int:
    for stop in _group_ends(data, start, end, 15):
        if _iban_ok(data[start:stop]):
            return stop
    return -1


_DATE_SHAPE = re2.compile(rb"\d{1,2}[ ./-]\d{1,2}[ ./-]\d{2,4}")


def _verify_phone(data: bytes, start: int, end: int) -> int:
    size = len(data)
    # Never a piece of a longer dashed token: UUID groups ("0cea3fad-0427-8320-c732").
    if start > 1 and data[start - 1] == 0x2D and data[start - 2] in _ALNUM:
        return -1
    if end + 1 < size and data[end] == 0x2D and data[end + 1] in _ALNUM:
        return -1
    text = data[start:end]
    if text.isdigit():  # only the unformatted national form is all digits
        if start > 0 and (
            data[start - 1] == 0x2D or (data[start - 1] == 0x2E and start > 1 and data[start - 2] in _ALNUM)
        ):
            return -1  # a UUID group, a dashed id, ``v1.0612345678``
        if end < size and (data[end] == 0x2D or (data[end] == 0x2E and end + 1 < size and data[end + 1] in _ALNUM)):
            return -1
        return end
    for stop in _group_ends(data, start, end, 7):
        text = data[start:stop]
        count = len(text) - len(text.translate(None, b"0123456789"))
        if 7 <= count <= 15 and _DATE_SHAPE.fullmatch(text) is None:
            return stop
    return -1


def _verify_ipv4(data: bytes, start: int, end: int) -> int:
    size = len(data)
    if data[start:end].count(b"-"):  # the dashed form inside a host name
        if start >= 2 and data[start - 1] == 0x2D and data[start - 2] in _DIGITS:
            first = start - 2
            while first > 0 and data[first - 1] in _DIGITS:
                first -= 1
            if first == 0 or data[first - 1] not in _LETTERS:
                return -1  # a longer dashed number ("06-12-34-56-78"), not a label ("ec2-")
        if end + 1 < size and data[end] == 0x2D and data[end + 1] in _DIGITS:
            return -1
        label = data[max(0, start - 5) : start].lower()
        for prefix in (b"ip-", b"ec2-"):
            if label.endswith(prefix) and (len(label) == len(prefix) or label[-len(prefix) - 1] not in _ALNUM):
                return end
        if end + 1 < size and data[end] == 0x2E and data[end + 1] in _LETTERS:
            return end  # 10-1-2-3.example.com
        return -1
    # Part of a longer dotted number (version, OID): not an address ...
    if start >= 2 and data[start - 1] == 0x2E and data[start - 2] in _DIGITS:
        return -1
    if end + 1 < size and data[end] == 0x2E and data[end + 1] in _DIGITS:
        # ... unless it is tcpdump's addr.port: exactly one more part, a 2-5 digit port.
        stop = end + 1
        while stop < size and data[stop] in _DIGITS:
            stop += 1
        port = data[end + 1 : stop]
        if not 2 <= len(port) <= 5 or int(port) > 65535:
            return -1
        if stop + 1 < size and data[stop] == 0x2E and data[stop + 1] in _DIGITS:
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


def _verify_aws_secret(data: bytes, start: int, end: int) -> int:
    # Exactly 40 characters: a longer base64 run after the name is something else.
    return -1 if end < len(data) and data[end] in _BASE64 else end


def _verify_openai(data: bytes, start: int, end: int) -> int:
    body = data[start + 3 : end]
    if b"-" in body:
        return end  # sk-proj-..., sk-svcacct-..., sk-admin-...: the prefix decides
    mixed = any(c in _DIGITS for c in body) and body.upper() != body and body.lower() != body
    return end if mixed else -1


# --------------------------------------------------------------------------- patterns

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b|\b(?:{_OCTET}-){{3}}{_OCTET}\b"
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
    r"[A-Za-z0-9._%+\-\x{80}-\x{10FFFF}]{1,64}"
    r"(?:@|%40|&#0{0,3}64;|&#[xX]0{0,2}40;|&commat;)"
    r"(?:[A-Za-z0-9\-\x{80}-\x{10FFFF}]{1,63}\.){1,8}"
    r"[A-Za-z\x{80}-\x{10FFFF}]{2,63}"
)
# The left boundary is a word boundary or a letter the match takes along (the verifier
# steps over it and only ``card_number`` is replaced): no candidate can start inside a
# digit run, so a long number costs one rejection, not one per digit.
_CARD_SEP = r"[ .\-]"
_CARD = (
    r"(?:\b|[A-Za-z_])(?P<card_number>"
    rf"[0-9]{{4}}{_CARD_SEP}[0-9]{{4}}{_CARD_SEP}[0-9]{{4}}{_CARD_SEP}[0-9]{{4}}"
    rf"(?:{_CARD_SEP}[0-9]{{3}})?"
    rf"|[0-9]{{4}}{_CARD_SEP}[0-9]{{6}}{_CARD_SEP}[0-9]{{4,5}}"
    rf"|[0-9]{{4}}{_CARD_SEP}[0-9]{{4}}{_CARD_SEP}[0-9]{{4}}{_CARD_SEP}[0-9]{{1,3}}"
    r"|[0-9]{13,19})"
)
# The country code is one of the table's (either case): two arbitrary letters and two
# digits start a candidate in every fourth hex id, and each candidate costs a verifier.
_IBAN_COUNTRIES = "|".join(sorted(code.decode() for code in _IBAN_BBAN))
_IBAN = rf"\b(?i:{_IBAN_COUNTRIES})[0-9]{{2}}(?:[ \-]?[A-Za-z0-9]{{4}}){{2,7}}(?:[ \-]?[A-Za-z0-9]{{1,3}})?\b"
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
    # At least eight characters: "token FROM users" (SQL) holds none either.
    rf"(?P<scheme_value>(?:[a-z]{{1,200}}[A-Z0-9\-._~+/=]|[A-Z0-9]){_TOKEN68}{{6}}{_TOKEN68}*=*)"
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
    # unformatted national: 0612345678 (FR), 07700900123 (UK), 01711234567 (DE)
    r"|\b0[1-9][0-9]{8,10}\b"
    r")"
)

# --- secrets. Each prefixed format: a literal prefix at a word start, the documented
# minimum body (bounded, so a refused or unfinished candidate is short), then the rest
# of the token greedily.
_PEM_MARK = r"[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----"
_PRIVATE_KEY = (
    rf"-----BEGIN{_PEM_MARK}"
    # Base64, white space (or escaped newlines), and the Proc-Type/DEK-Info headers of
    # legacy encrypted keys; a dash only before a letter or digit, so "-----END" stops it.
    r"(?:[A-Za-z0-9+/=\s\\:,.]|-[A-Za-z0-9])*"
    rf"(?:-----END{_PEM_MARK})?"
)
# Real key ids are base32 ([A-Z2-7]); any upper-case alphanumeric body is taken, as older
# gitleaks rules did: a look-alike after these prefixes is a key id (or a typo of one).
_AWS_KEY_ID = r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"
_ASSIGN = r"[\\\"']{0,2}[ \t]{0,8}(?::=|=>|[:=])[ \t]{0,8}"
_AWS_SECRET = (
    r"(?i:aws[_.\-]?secret(?:[_.\-]?access)?[_.\-]?key|secret[_.\-]?access[_.\-]?key)"
    rf"{_ASSIGN}[\\\"']{{0,2}}(?P<aws_secret_value>[A-Za-z0-9/+]{{40}})"
)
_GITHUB = r"\b(?:gh[pousr]_[A-Za-z0-9]{30}|github_pat_[A-Za-z0-9_]{40})[A-Za-z0-9_]*"
_GITLAB = (
    r"\b(?:gl(?:pat|dt|rt|ptt|cbt|ft|imt|agent|oas|soat|ffct)-|GR1348941)"
    r"[A-Za-z0-9_\-]{20}[A-Za-z0-9_\-]*(?:\.[0-9a-z]{9})?"
)
_SLACK = r"\b(?:xox[abeoprs]-|xapp-[0-9]-)[A-Za-z0-9\-]{10}[A-Za-z0-9\-]*"
_SLACK_WEBHOOK = (
    r"\bhooks\.slack\.com/(?:services|workflows|triggers)/"
    r"(?P<slack_webhook_path>[A-Za-z0-9_\-]{8}[A-Za-z0-9+/_\-]*)"
)
_STRIPE = r"\b(?:(?:sk|rk|pk)_(?:live|test|prod)_[A-Za-z0-9]{10}|whsec_[A-Za-z0-9]{24})[A-Za-z0-9]*"
_GOOGLE_API_KEY = r"\bAIza[A-Za-z0-9_\-]{35}[A-Za-z0-9_\-]*"
_NPM = r"\bnpm_[A-Za-z0-9]{36}[A-Za-z0-9]*"
# "AgEIcHlwaS5vcmc" / "AgENdGVzdC5weXBpLm9yZw": a macaroon's header for pypi.org /
# test.pypi.org - the structure check is the prefix itself.
_PYPI = r"\bpypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50}[A-Za-z0-9_\-]*"
_TWILIO = r"\b(?:AC|SK)[0-9a-f]{32}\b"
_SENDGRID = r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"
_OPENAI = r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20}[A-Za-z0-9_\-]*|[A-Za-z0-9]{32}[A-Za-z0-9]*)"
_ANTHROPIC = r"\bsk-ant-[A-Za-z0-9_\-]{20}[A-Za-z0-9_\-]*"
_PASSWORD = (
    r"(?P<pw_name>(?i:pass(?:word|wd|wort|phrase)|pwd|secret(?:[_.\-]?access)?(?:[_.\-]?key)?|token"
    r"|api[_.\-]?key|auth[_.\-]?key|private[_.\-]?key|authorization|credentials?))"
    rf"(?P<pw_sep>{_ASSIGN})"
    # Quoted: in a JSON string escapes are skipped; opened by \" (JSON inside a JSON
    # string) the value ends at the next \".
    r"(?:\\\"(?P<pw_edq>(?:[^\"\\\r\n]|\\\\)+)"
    r"|\"(?P<pw_dq>(?:[^\"\\\r\n]|\\[^\r\n])+)"
    r"|'(?P<pw_sq>(?:[^'\\\r\n]|\\[^\r\n])+)"
    r"|(?:(?i:bearer|basic|token|digest)[ \t]{1,8})?"
    # Not starting with ":" or "=": those belong to the separator ("apikey := x").
    r"(?P<pw_bare>[^\s\"'\\&;,<>(){}\[\]:=][^\s\"'\\&;,<>(){}\[\]]*))"
)
_PW_REGEX = re2.compile(_PASSWORD)
# Group numbers, looked up once: the wrapper library resolves a name on every call.
_PW_NAME, _PW_SEP, _PW_EDQ, _PW_DQ, _PW_SQ, _PW_BARE = (
    _PW_REGEX.groupindex[name] for name in ("pw_name", "pw_sep", "pw_edq", "pw_dq", "pw_sq", "pw_bare")
)
_PLACEHOLDER = re2.compile(
    r"\?|\$[0-9]{0,3}|\$\{.*|\{\{.*|%[sd]|%\([A-Za-z0-9_]{1,64}\)s|"
    r"[*xX#.]{1,64}|(?i:null|none|nil|true|false|undefined|empty|redacted)"
)
# A bind name (":pw", "@p1", "$pw") after a spaced "=" is a SQL parameter; right after
# "=" it may be the password itself ("password=@dm1n").
_BIND_NAME = re2.compile(r"[:@$][A-Za-z_][A-Za-z0-9_]{0,63}")
_PROSE_WORD = re2.compile(r"[A-Za-z][a-z]*[.!?]?")


def _verify_password(data: bytes, start: int, end: int) -> int:
    match = _PW_REGEX.match(data, start)
    if match is None:
        return -1
    bare = match.group(_PW_BARE)
    value = match.group(_PW_EDQ) or match.group(_PW_DQ) or match.group(_PW_SQ) or bare
    if _PLACEHOLDER.fullmatch(value) is not None:
        return -1
    separator = match.group(_PW_SEP)
    if bare is not None:
        if b" " in separator and _BIND_NAME.fullmatch(value) is not None:
            return -1
        if b"=" not in separator and _PROSE_WORD.fullmatch(value) is not None:
            return -1  # "invalid token: expired"
    if match.group(_PW_NAME).lower() == b"pwd" and value[:1] in (b"/", b"~"):
        return -1  # PWD=/home/app: the shell's working directory
    return end


# Precedence when two detectors match at the same position: this order. Detectors
# rarely overlap; the order is chosen so the more specific shape wins.
_SECRETS = (
    Detector("private_key", _PRIVATE_KEY, None, "PEM private-key blocks (-----BEGIN ... PRIVATE KEY----- through END)"),
    Detector("aws_access_key_id", _AWS_KEY_ID, None, "AWS access key ids (AKIA/ASIA/ABIA/ACCA...)"),
    Detector(
        "aws_secret_access_key",
        _AWS_SECRET,
        _verify_aws_secret,
        "AWS secret access keys after an aws_secret_access_key-style name, name kept",
        ("aws_secret_value",),
    ),
    Detector("github_token", _GITHUB, None, "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)"),
    Detector("gitlab_token", _GITLAB, None, "GitLab tokens (glpat-, gldt-, glrt-, ... GR1348941)"),
    Detector("slack_token", _SLACK, None, "Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xapp-)"),
    Detector(
        "slack_webhook",
        _SLACK_WEBHOOK,
        None,
        "Slack webhook URLs (hooks.slack.com/services/...), host kept",
        ("slack_webhook_path",),
    ),
    Detector("stripe_key", _STRIPE, None, "Stripe keys (sk_live_, rk_live_, sk_test_, pk_live_, whsec_)"),
    Detector("google_api_key", _GOOGLE_API_KEY, None, "Google API keys (AIza...)"),
    Detector("npm_token", _NPM, None, "npm access tokens (npm_...)"),
    Detector("pypi_token", _PYPI, None, "PyPI upload tokens (pypi-AgEIcHlwaS5vcmc...)"),
    Detector("twilio_key", _TWILIO, None, "Twilio account SIDs and API keys (AC/SK + 32 hex)"),
    Detector("sendgrid_key", _SENDGRID, None, "SendGrid API keys (SG.xxx.yyy)"),
    Detector("anthropic_key", _ANTHROPIC, None, "Anthropic API keys (sk-ant-...)"),
    Detector("openai_key", _OPENAI, _verify_openai, "OpenAI API keys (sk-..., sk-proj-...)"),
    Detector(
        "password_assignment",
        _PASSWORD,
        _verify_password,
        "values of password=/secret:/token=/api_key=-style assignments, name kept",
        ("pw_edq", "pw_dq", "pw_sq", "pw_bare"),
    ),
)
DETECTORS: Mapping[str, Detector] = MappingProxyType(
    {
        d.name: d
        for d in (
            *_SECRETS,
            Detector("jwt", _JWT, None, "JSON Web Tokens (JWS/JWE) and other base64url JSON (eyJ...)"),
            Detector(
                "bearer_token",
                _BEARER,
                None,
                "credential after an HTTP auth scheme (Bearer/Basic/Token/...), scheme kept",
                ("bearer_value", "scheme_value", "params_value"),
            ),
            Detector("email", _EMAIL, None, "e-mail addresses, also with a %40 or &#64; at sign"),
            Detector(
                "iban", _IBAN, _verify_iban, "IBANs, confirmed by the country's length and BBAN format and mod-97"
            ),
            Detector(
                "credit_card",
                _CARD,
                _verify_card,
                "payment card numbers (13-19 digits), confirmed by Luhn and the issuer table",
                ("card_number",),
            ),
            Detector("ipv6", _IPV6, _verify_ipv6, "IPv6 addresses, all text forms, optional zone id"),
            Detector(
                "ipv4", _IPV4, _verify_ipv4, "IPv4 addresses: dotted quads (also addr.port) and ip-10-1-2-3 host names"
            ),
            Detector(
                "phone", _PHONE, _verify_phone, "phone numbers: +/00 international, North-American, 0-prefixed national"
            ),
        )
    }
)
DETECTOR_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "secrets": tuple(d.name for d in _SECRETS),
    }
)
# Only these can match a value made of decimal digits alone (tests/policy/test_detectors.py
# holds every other detector to that).
DIGIT_DETECTORS: frozenset[str] = frozenset({"credit_card", "phone"})
# The fewest digits either matches (a phone has 7-15, a card 13-19): a shorter integer
# needs no scan.
DIGIT_MIN_RUN = 7


def expand_detectors(names: Iterable[str]) -> tuple[str, ...]:
    """Detector names for ``names`` with every group replaced by its members, each name
    once, in first-mention order. Raises ``UnknownDetector`` naming every unknown one."""
    if isinstance(names, str):
        raise TypeError("detector names must be a sequence of strings, not a string")
    out: dict[str, None] = {}
    unknown = []
    for name in names:
        if name in DETECTOR_GROUPS:
            out.update(dict.fromkeys(DETECTOR_GROUPS[name]))
        elif name in DETECTORS:
            out[name] = None
        else:
            unknown.append(name)
    if unknown:
        raise UnknownDetector(unknown)
    return tuple(out)


# --------------------------------------------------------------------------- masker

MAIN_REGEX_MEMORY = 64 << 20  # bytes of RE2 program + DFA cache for a rule's main alternation


@dataclass(frozen=True)
class _Spec:
    """One alternative: its pattern, the groups to replace and its verifier."""

    pattern: str
    value_groups: tuple[int, ...]  # inner groups to replace, numbered within the pattern
    verify: Verifier | None
    groups: int  # number of capturing groups inside the pattern


class _Alternation:
    """Specs as one leftmost-first RE2 alternation, one wrapper group per spec."""

    __slots__ = ("regex", "groups", "_index")

    def __init__(self, specs: Sequence[_Spec], options: re2.Options) -> None:
        groups = []
        group = 1
        for spec in specs:
            groups.append(group)
            group += 1 + spec.groups
        self.groups = tuple(groups)
        self._index = {group: index for index, group in enumerate(groups)}
        self.regex = re2.compile("|".join(f"({spec.pattern})" for spec in specs), options)

    def which(self, match) -> int:
        """Index of the spec that produced ``match``.

        Exactly one wrapper group participates, and it ends where the match ends; its
        inner groups end no later, and ``lastindex`` picks the outermost of the groups
        that close last - the wrapper. One pass over the spans, where asking every
        wrapper in turn cost a wrapper-library call each."""
        index = self._index.get(match.lastindex)
        if index is None:
            raise AssertionError("a match without a participating alternative")
        return index


class Masker:
    """Replaces every detected substring of a value, in one RE2 pass.

    ``detectors`` names detectors and groups (``secrets``), in any order and any
    iterable but a string: precedence is the table's. ``replace`` is either a fixed
    string or a callable given the matched text (for ``{hash}``-style replacements).
    Raises ``UnknownDetector`` for unknown names and
    ``ValueError`` for a user regex RE2 rejects (the message names its index and
    RE2's reason; patterns come from the policy, never from telemetry).
    """

    __slots__ = ("_specs", "_main", "_rests", "_options", "_replace")

    def __init__(
        self,
        detectors: Iterable[str] = (),
        regexes: Sequence[str] = (),
        replace: Callable[[str], str] | str = "[REDACTED]",
    ) -> None:
        if isinstance(detectors, str) or isinstance(regexes, str):
            raise TypeError("detectors and regexes must be sequences of strings, not a string")
        wanted = frozenset(expand_detectors(detectors))
        options = re2_options()
        specs: list[_Spec] = []
        for index, pattern in enumerate(regexes):
            try:
                compiled = re2.compile(pattern, options)
            except re2.error as exc:
                raise ValueError(f"regexes[{index}]: invalid RE2 regex: {re2_reason(exc)}") from exc
            specs.append(_Spec(pattern, (), None, compiled.groups))
        for name, det in DETECTORS.items():  # table order = precedence
            if name in wanted:
                compiled = re2.compile(det.pattern, options)
                values = tuple(compiled.groupindex[n] for n in det.value_groups)
                specs.append(_Spec(det.pattern, values, det.verify, compiled.groups))
        self._specs = tuple(specs)
        self._options = options
        # The main alternation runs on every value: RE2's lazy DFA needs room for the
        # states of ~25 detectors at once, or it falls back to a search several times
        # slower (measured: 7.3 -> 3.2 us per 24-byte value with the doctrine's set). The
        # budget is an upper bound, filled only as states are met.
        self._main = _Alternation(specs, re2_options(max_mem=MAIN_REGEX_MEMORY)) if specs else None
        # What a rejected candidate shadowed: the later alternatives, anchored at its
        # start. Built now for verified detectors (the usual case); for a user regex
        # (rejected only for matching the empty string) on first need.
        self._rests: dict[int, _Alternation] = {
            k: _Alternation(specs[k + 1 :], options)
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
        assert alternation is not None, "a match comes from the main alternation"
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
                rest = _Alternation(self._specs[k + 1 :], self._options)
                self._rests[k] = rest
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
            e = min(e, end)  # a verifier that shortened the match shortens the groups
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
