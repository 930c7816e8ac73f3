"""Checked policy -> ``CompiledPolicy``: everything the hot path needs, decided up front.

Strategy: for each (signal, level) that exists, a ``Decider`` holds only the rules that
apply there, already compiled. A key's fate is computed once and memoised in the
decider (keys are few, values many), so scrubbing a known key is one dict lookup. The
hash function, the drop predicates and the value rewriters are plain callables built
here; nothing downstream reads the policy document again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from collections.abc import Callable, Mapping

import re2

from redact_proxy.errors import PolicyError
from redact_proxy.fields import TARGET_LEVELS
from redact_proxy.policy.schema import (
    LEVELS_OF,
    SIGNAL_NAMES,
    Action,
    Level,
    PolicyDoc,
    Rule,
    compile_regex,
    load_file,
)

MIN_KEY_BYTES = 16  # an HMAC key shorter than this is guessable; refuse it
DECISION_CACHE_LIMIT = 4096  # memoised keys per decider; a flood of unique keys resets it
MASK_MEMO_LIMIT = 8192  # memoised values per mask rule
MASK_MEMO_MAX_VALUE = 256  # characters; longer values (free text, bodies) rarely repeat
# RE2 instructions (``programsize``). RE2 is linear in the text, but the constant is the
# program: once its DFA runs out of cache (stacked bounded repetitions such as
# `[\s\S]{0,1000}` three times, ~24k instructions) every byte costs a walk of the whole
# program - measured through a Masker (64 MiB DFA budget): 4.6 s per MiB of ASCII text,
# 108 s per MiB of accented text; regexes within the bound below stay under 0.3 s. A
# policy regex is refused above MAX_REGEX_PROGRAM (the doctrine's largest is ~730), and
# a mask rule above MAX_MASK_PROGRAM for the one alternation it runs over every value
# (its regexes and its detectors together; every built-in detector at once is ~11.3k).
MAX_REGEX_PROGRAM = 2048
MAX_MASK_PROGRAM = 12288


# What the scrubber does with an attribute, as a small int: the hot loop compares ints
# rather than hashing Action enum members (whose __hash__ runs in Python).
OP_KEEP, OP_REMOVE, OP_HASH, OP_REWRITE, OP_REPLACE = range(5)
_OPS = {
    None: OP_KEEP,
    Action.DELETE: OP_REMOVE,
    Action.KEEP_ONLY: OP_REMOVE,
    Action.HASH: OP_HASH,
    Action.SANITIZE_SQL: OP_REWRITE,
    Action.SANITIZE_URL: OP_REWRITE,
    Action.REPLACE: OP_REPLACE,
}
# A rewriter gets the text and the item's database system (db.system.name / db.system,
# None when absent): statements are sanitized by their dialect.
Rewrite = Callable[[str, "str | None"], str]


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one attribute key. ``action is None`` means: keep it. ``masks``
    (the mask rules targeting this key) then apply to the strings of a kept or sanitized
    value, never to a hashed one."""

    action: Action | None
    rule: int = -1  # index into CompiledPolicy.rules, for the redaction counters
    rewrite: Rewrite | None = None  # sanitize_*: (text, db system) -> text
    masks: tuple["Mask", ...] = ()
    collector_hash: bool = False  # hash with the collector's bytes (imported configs)
    replacement: str = ""  # replace: the value's new text
    # Keys are data: the key as the `keys` mask rules rewrite it (None: unchanged), and
    # those rules, for the counters.
    new_key: str | None = None
    key_rules: tuple[int, ...] = ()
    op: int = field(init=False, default=OP_KEEP)

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", _OPS[self.action])


class Mask:
    """One mask rule, ready to run: ``apply(text)`` is one RE2 pass over a value not seen
    recently. Attribute values repeat a lot (routes, methods, service names), so results
    are memoised, in memory only, and the memo is reset when it fills. ``digits`` is the
    rule's detectors that can match a run of decimal digits, for integer values."""

    __slots__ = ("rule", "masker", "memo", "digits")

    def __init__(self, rule: int, masker, digits=None):
        self.rule = rule
        self.masker = masker  # detectors.Masker
        self.memo: dict[str, str | None] = {}
        self.digits = digits  # detectors.Masker over the digit detectors, or None

    def apply(self, text: str) -> str | None:
        """The masked text, or None when nothing in it is masked."""
        memo = self.memo
        if text in memo:
            return memo[text]
        out = self.masker.mask(text)
        if len(text) <= MASK_MEMO_MAX_VALUE:
            if len(memo) >= MASK_MEMO_LIMIT:
                memo.clear()
            memo[text] = out
        return out


KEEP = Decision(None)


def join(parent: str, key: str) -> str:
    """The dotted path of ``key`` under ``parent``."""
    return f"{parent}.{key}" if parent else key


def tails(path: str) -> list[str]:
    """A nested key's dotted path and every dotted tail of it, longest first:
    ``a.b.c`` -> ``a.b.c``, ``b.c``, ``c``. A rule matches a nested key when it matches
    any of them (README, "Nested data")."""
    out = [path]
    start = path.find(".")
    while start >= 0:
        out.append(path[start + 1 :])
        start = path.find(".", start + 1)
    return out


class Decider:
    """Key -> Decision for one (signal, level), memoised: top-level attribute keys by the
    key, nested keys (inside kvlists, structured bodies and JSON text) by dotted path."""

    __slots__ = ("key_rules", "keep_only", "masks", "key_masks", "top", "nested", "has_key_rules", "descend")

    def __init__(
        self,
        key_rules: tuple["_KeyRule", ...],
        keep_only: tuple["_KeyRule", ...],
        masks: tuple[tuple["_KeyRule | None", Mask], ...] = (),
        key_masks: tuple[Mask, ...] = (),
    ):
        self.key_rules = key_rules
        self.keep_only = keep_only
        self.masks = masks  # (key filter or None = every attribute, mask)
        self.key_masks = key_masks  # mask rules whose targets include `keys`
        self.has_key_rules = bool(key_rules)
        # Whether a kept kvlist or JSON value must be walked for its keys: key rules
        # decide nested keys, key masks rewrite them.
        self.descend = bool(key_rules or key_masks)
        self.top: dict[str, Decision] = {}  # attributes: key rules, then keep_only
        self.nested: dict[tuple[str, str], Decision] = {}  # (parent path, key): key rules only

    def decide(self, key: str) -> Decision:
        d = self.top.get(key)
        if d is None:
            d = self._first_match((key,))
            if d is KEEP and self.keep_only and not any(r.matches(key) for r in self.keep_only):
                d = Decision(Action.KEEP_ONLY, self.keep_only[0].index)
            if self.masks and d.op in (OP_KEEP, OP_REWRITE):
                masks = tuple(m for f, m in self.masks if f is None or f.matches(key))
                if masks:
                    d = replace(d, masks=masks)
            d = self._mask_key(key, d)
            if len(self.top) >= DECISION_CACHE_LIMIT:
                self.top.clear()
            self.top[key] = d
        return d

    def decide_nested(self, parent: str, key: str) -> Decision:
        """The Decision for ``key`` nested under the dotted path ``parent`` ("" at the root
        of a log body): rules see ``parent.key`` and its tails."""
        memo_key = (parent, key)
        d = self.nested.get(memo_key)
        if d is None:
            d = self._first_match(tails(join(parent, key)))
            d = self._mask_key(key, d)
            if len(self.nested) >= DECISION_CACHE_LIMIT:
                self.nested.clear()
            self.nested[memo_key] = d
        return d

    def _first_match(self, candidates) -> Decision:
        for rule in self.key_rules:
            if any(rule.matches(c) for c in candidates):
                return rule.decision
        return KEEP

    def _mask_key(self, key: str, d: Decision) -> Decision:
        """Keys are data: a key a `keys` mask matches is rewritten (the rules above decided
        on the original key, as they were written for key names). A removed key needs no
        rewrite."""
        if not self.key_masks or d.op == OP_REMOVE:
            return d
        out, rules = key, []
        for m in self.key_masks:
            masked = m.masker.mask(out)
            if masked is not None:
                out = masked
                rules.append(m.rule)
        return replace(d, new_key=out, key_rules=tuple(rules)) if rules else d


class _KeyRule:
    __slots__ = ("index", "keys", "regexes", "decision")

    def __init__(self, rule: Rule, decision: Decision):
        self.index = rule.index
        self.keys = frozenset(rule.keys)
        self.regexes = tuple(compile_regex(p) for p in rule.patterns)
        self.decision = decision

    def matches(self, key: str) -> bool:
        return key in self.keys or any(r.fullmatch(key) for r in self.regexes)


@dataclass(frozen=True)
class FieldRule:
    """A whole-field rule on one free-text field: delete, replace or sanitize."""

    decision: Decision
    # For a sanitizer: whether it can change a given text at all (a span name that is no
    # statement or URL is left alone), given whether any item may name a database system
    # (which picks the dialect). Triage asks it; None: assume it can.
    may_rewrite: Callable[[str, bool], bool] | None = None


@dataclass(frozen=True)
class TextOps:
    """What happens to one free-text field (fields.TARGET_LEVELS) at one (signal, level):
    its whole-field rules in file order -- sanitizers each run (each leaves alone what
    it does not recognise), a delete or replace ends the list -- then the masks."""

    rules: tuple[FieldRule, ...]
    masks: tuple[Mask, ...]

    def __bool__(self) -> bool:
        return bool(self.rules) or bool(self.masks)

    @property
    def rule(self) -> Decision | None:
        """The first whole-field rule, or None."""
        return self.rules[0].decision if self.rules else None

    def rule_touches(self, text: str, db_systems: bool = True) -> bool:
        """Whether the whole-field rules would change ``text`` (masks aside).
        ``db_systems=False``: no item of the batch names a database system."""
        if not text:
            return False
        for r in self.rules:
            if r.decision.op != OP_REWRITE:
                return True
            if r.may_rewrite is None or r.may_rewrite(text, db_systems):
                return True
        return False


NO_TEXT_OPS = TextOps((), ())


@dataclass(frozen=True)
class DropRule:
    index: int
    key: str
    test: Callable[[str], bool]  # on the canonical text of the attribute's value


@dataclass(frozen=True)
class CompiledPolicy:
    source: str
    sha256: str
    rules: tuple[Rule, ...]
    hasher: Callable[[bytes], str]
    deciders: dict[tuple[str, Level], Decider]
    drops: dict[str, dict[str, tuple[DropRule, ...]]]  # signal -> tested key -> rules in file order
    # Free-text fields by (signal, level, target): target as in fields.TARGET_LEVELS.
    texts: dict[tuple[str, Level, str], TextOps]
    # What `hasher` computes, for the native engine to compute the same: "hmac-sha256"
    # with `hash_key`, "sha256", or "" when the policy hashes nothing (no key loaded).
    hash_algorithm: str = ""
    hash_key: bytes | None = field(default=None, repr=False)

    def decider(self, signal: str, level: Level) -> Decider:
        return self.deciders[(signal, level)]

    def text(self, signal: str, level: Level, target: str) -> TextOps:
        return self.texts.get((signal, level, target), NO_TEXT_OPS)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rules:
            counts[r.action.value] = counts.get(r.action.value, 0) + 1
        parts = ", ".join(f"{n} {a}" for a, n in counts.items())
        return f"{len(self.rules)} rules ({parts})" if self.rules else "0 rules"


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> CompiledPolicy:
    """Load, check and compile a policy file. Raises PolicyError with every problem."""
    return compile_policy(load_file(path), environ)


def compile_policy(doc: PolicyDoc, environ: Mapping[str, str] | None = None) -> CompiledPolicy:
    env: Mapping[str, str] = os.environ if environ is None else environ
    hasher, hash_algorithm, hash_key = _hasher(doc, env)
    deciders: dict[tuple[str, Level], Decider] = {}
    errors: list[str] = []
    compiled: dict[int, _KeyRule] = {}
    for rule in doc.rules:
        if rule.action in _KEY_ACTIONS and (rule.keys or rule.patterns):
            try:
                compiled[rule.index] = _KeyRule(rule, _decision(rule))
            except re2.error:
                errors.append(f"{doc.source}:{rule.where}: invalid RE2 regex in patterns")
    costly = _costly_regexes(doc)
    masks = {r.index: _mask(r, hasher) for r in doc.rules if r.action is Action.MASK}
    errors += [error for _, error in costly]
    errors += [
        f"{doc.source}:{r.where}: the regexes and detectors of this mask rule compile to {size} RE2 "
        f"instructions together; at most {MAX_MASK_PROGRAM} are accepted (every value is scanned by all "
        f"of them at once, and a larger program costs seconds per MiB): split the rule or drop detectors"
        for r in doc.rules
        if r.index in masks and r.index not in dict(costly)
        for size in [_program_size(_alternation(masks[r.index].masker.patterns))]
        if size > MAX_MASK_PROGRAM
    ]
    if errors:
        raise PolicyError(errors)
    texts: dict[tuple[str, Level, str], TextOps] = {}
    for signal in SIGNAL_NAMES:
        for level in LEVELS_OF[signal]:
            applies = [r for r in doc.rules if signal in r.signals and level in r.levels]
            key_rules = tuple(
                compiled[r.index] for r in applies if r.index in compiled and r.action is not Action.KEEP_ONLY
            )
            keep = tuple(compiled[r.index] for r in applies if r.action is Action.KEEP_ONLY)
            attr_masks = tuple(
                (_KeyRule(r, KEEP) if r.keys or r.patterns else None, masks[r.index])
                for r in applies
                if r.index in masks and "attributes" in r.targets
            )
            key_masks = tuple(masks[r.index] for r in applies if r.index in masks and "keys" in r.targets)
            deciders[(signal, level)] = Decider(key_rules, keep, attr_masks, key_masks)
            for target, places in TARGET_LEVELS.items():
                if (signal, level.value) not in places:
                    continue
                field_rules = _field_rules([r for r in applies if target in r.fields], target)
                field_masks = tuple(masks[r.index] for r in applies if r.index in masks and target in r.targets)
                if field_rules or field_masks:
                    texts[(signal, level, target)] = TextOps(field_rules, field_masks)
    drops = {}
    for s in SIGNAL_NAMES:
        by_key: dict[str, list[DropRule]] = {}
        for r in doc.rules:
            if r.action is Action.DROP and s in r.signals and r.when:
                by_key.setdefault(r.when.key, []).append(_drop(r))
        drops[s] = {key: tuple(rules) for key, rules in by_key.items()}
    return CompiledPolicy(doc.source, doc.sha256, doc.rules, hasher, deciders, drops, texts, hash_algorithm, hash_key)


def _costly_regexes(doc: PolicyDoc) -> list[tuple[int, str]]:
    """(rule index, located error) for every policy regex whose program is over
    MAX_REGEX_PROGRAM."""
    found = []
    for rule in doc.rules:
        places = [
            (f"{rule.where}.{name}[{j}]", pattern)
            for name, patterns in (("patterns", rule.patterns), ("regexes", rule.regexes))
            for j, pattern in enumerate(patterns)
        ]
        if rule.when is not None and rule.when.op == "matches":
            places.append((f"{rule.when.where}.matches", rule.when.values[0]))
        for where, pattern in places:
            size = _program_size(pattern)
            if size > MAX_REGEX_PROGRAM:
                found.append(
                    (
                        rule.index,
                        f"{doc.source}:{where}: regex compiles to {size} RE2 instructions; at most "
                        f"{MAX_REGEX_PROGRAM} are accepted (a program this large costs seconds per MiB of "
                        f"value): use shorter bounded repetitions such as {{0,100}} instead of {{0,1000}}",
                    )
                )
    return found


def _alternation(patterns: tuple[str, ...]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


def _program_size(pattern: str) -> int:
    try:
        return compile_regex(pattern).programsize
    except re2.error:
        return 0  # invalid: reported as such by the schema or the key rules


_KEY_ACTIONS = (Action.DELETE, Action.HASH, Action.KEEP_ONLY, Action.REPLACE, Action.SANITIZE_SQL, Action.SANITIZE_URL)


def _mask(rule: Rule, hasher: Callable[[bytes], str]) -> Mask:
    from redact_proxy.policy import detectors  # only policies with mask rules need it

    template = rule.replacement
    replace: Callable[[str], str] | str
    if "{hash}" in template:
        # The keyed hash of the matched text keeps correlation without the text.
        replace = lambda text: template.replace("{hash}", hasher(text.encode()))  # noqa: E731
    else:
        replace = template
    names = detectors.expand_detectors(rule.detectors)
    # The detectors that can match a bare run of decimal digits check integer values.
    digit_names = tuple(n for n in names if n in detectors.DIGIT_DETECTORS)
    digits = detectors.Masker(digit_names, (), replace) if digit_names else None
    return Mask(rule.index, detectors.Masker(names, rule.regexes, replace), digits)


def _decision(rule: Rule) -> Decision:
    rewrite = _VALUE_REWRITERS[rule.action](rule) if rule.action in _VALUE_REWRITERS else None
    return Decision(
        rule.action,
        rule.index,
        rewrite,
        collector_hash=rule.collector_hash,
        replacement=rule.replacement if rule.action is Action.REPLACE else "",
    )


def _field_rules(rules: list[Rule], target: str) -> tuple[FieldRule, ...]:
    """The whole-field rules of one field, in file order, up to the first delete/replace
    (nothing after it can see the text)."""
    out = []
    for rule in rules:
        out.append(_field_rule(rule, target))
        if rule.action not in (Action.SANITIZE_SQL, Action.SANITIZE_URL):
            break
    return tuple(out)


def _field_rule(rule: Rule, target: str) -> FieldRule:
    """On a span name the sanitizers rewrite only a name that is a statement or a URL
    (any other name is left as it is, not made a placeholder)."""
    d = _decision(rule)
    if target == "span_name" and rule.action is Action.SANITIZE_SQL:
        from redact_proxy.policy import statements

        return FieldRule(replace(d, rewrite=_memoised(statements.sanitize_span_name)), _statement_may_change)
    if target == "span_name" and rule.action is Action.SANITIZE_URL:
        from redact_proxy.policy import url

        path_ids = rule.path_ids
        sanitize = _memoised(lambda name, system: url.sanitize_span_name(name, path_ids))
        return FieldRule(replace(d, rewrite=sanitize), lambda name, db_systems: sanitize(name, None) != name)
    return FieldRule(d)


def _memoised(rewrite: Rewrite) -> Rewrite:
    """A span-name sanitizer with its results memoised: span names are few (routes,
    operations) and every span of a batch carries one. Bounded like the key memos."""
    memo: dict[tuple[str, str | None], str] = {}

    def sanitize(name: str, system: str | None) -> str:
        key = (name, system)
        out = memo.get(key)
        if out is None:
            out = rewrite(name, system)
            if len(memo) >= DECISION_CACHE_LIMIT:
                memo.clear()
            memo[key] = out
        return out

    return sanitize


# One system of each dialect the statement sanitizers read differently: a span name
# that none of them rewrites is left alone whatever system its span names.
_DIALECTS = ("postgresql", "mysql", "mssql", "oracle", "sqlite", "redis", "memcached", "mongodb", "elasticsearch")


def _statement_may_change(name: str, db_systems: bool) -> bool:
    from redact_proxy.policy.statements import sanitize_span_name

    if sanitize_span_name(name, None) != name:
        return True
    return db_systems and any(sanitize_span_name(name, s) != name for s in _DIALECTS)


def _sanitize_sql(rule: Rule) -> Rewrite:
    from redact_proxy.policy.statements import sanitize

    return sanitize


def _sanitize_url(rule: Rule) -> Rewrite:
    from redact_proxy.policy.url import sanitize_url

    path_ids = rule.path_ids
    return lambda value, system: sanitize_url(value, path_ids=path_ids)


_VALUE_REWRITERS = {Action.SANITIZE_SQL: _sanitize_sql, Action.SANITIZE_URL: _sanitize_url}


def _drop(rule: Rule) -> DropRule:
    when = rule.when
    assert when is not None, "the schema gives every drop rule a `when:`"
    if when.op == "matches":
        regex = compile_regex(when.values[0])
        test = lambda text: regex.fullmatch(text) is not None  # noqa: E731
    else:
        values = frozenset(when.values)
        test = values.__contains__
    return DropRule(rule.index, when.key, test)


def _unkeyed_use(data: bytes) -> str:
    raise RuntimeError("no rule of this policy hashes, so no hash key was loaded")


def _hasher(doc: PolicyDoc, environ: Mapping[str, str]) -> tuple[Callable[[bytes], str], str, bytes | None]:
    """The hash function, its algorithm and its key."""
    spec = doc.hash
    if spec.algorithm == "sha256":
        return (lambda data: hashlib.sha256(data).hexdigest()), "sha256", None
    where = f"{doc.source}:{spec.where}"
    if not any(r.action is Action.HASH or "{hash}" in r.replacement for r in doc.rules):
        return _unkeyed_use, "", None  # nothing hashes: a policy without hash rules needs no key
    if spec.key_env:
        value = environ.get(spec.key_env)
        if not value:
            raise PolicyError(
                [f"{where}.key_env: environment variable {spec.key_env} is not set; the hash key is required"]
            )
        key = value.encode()
    else:
        assert spec.key_file is not None, "the schema gives hmac-sha256 a key_env or a key_file"
        try:
            key = Path(spec.key_file).read_bytes().strip()
        except OSError as exc:
            raise PolicyError([f"{where}.key_file: cannot read {spec.key_file}: {exc.strerror}"]) from exc
    if len(key) < MIN_KEY_BYTES:
        raise PolicyError(
            [
                f"{where}: hash key is {len(key)} bytes; at least {MIN_KEY_BYTES} are required (e.g. `openssl rand -hex 32`)"
            ]
        )
    base = hmac.new(key, digestmod=hashlib.sha256)

    def hmac_sha256(data: bytes) -> str:
        h = base.copy()  # reuses the keyed inner/outer state: no re-keying per value
        h.update(data)
        return h.hexdigest()

    return hmac_sha256, "hmac-sha256", key
