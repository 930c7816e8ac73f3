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
from typing import Callable

import re2

from redact_proxy.errors import PolicyError
from redact_proxy.policy.schema import (
    LEVELS_OF, SIGNAL_NAMES, Action, Level, PolicyDoc, Rule, compile_regex, load_file,
)

MIN_KEY_BYTES = 16  # an HMAC key shorter than this is guessable; refuse it
DECISION_CACHE_LIMIT = 4096  # memoised keys per decider; a flood of unique keys resets it
MASK_MEMO_LIMIT = 8192  # memoised values per mask rule
MASK_MEMO_MAX_VALUE = 256  # characters; longer values (free text, bodies) rarely repeat


# What the scrubber does with an attribute, as a small int: the hot loop compares ints
# rather than hashing Action enum members (whose __hash__ runs in Python).
OP_KEEP, OP_REMOVE, OP_HASH, OP_REWRITE = range(4)
_OPS = {None: OP_KEEP, Action.DELETE: OP_REMOVE, Action.KEEP_ONLY: OP_REMOVE, Action.HASH: OP_HASH,
        Action.SANITIZE_SQL: OP_REWRITE, Action.SANITIZE_URL: OP_REWRITE}


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one attribute key. ``action is None`` means: keep it. ``masks``
    (the mask rules targeting this key) then apply to the strings of a kept or sanitized
    value, never to a hashed one."""

    action: Action | None
    rule: int = -1  # index into CompiledPolicy.rules, for the redaction counters
    rewrite: Callable[[str], str] | None = None  # sanitize_*: string -> string
    masks: tuple["Mask", ...] = ()
    collector_hash: bool = False  # hash with the collector's bytes (imported configs)
    op: int = field(init=False, default=OP_KEEP)

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", _OPS[self.action])


class Mask:
    """One mask rule, ready to run: ``apply(text)`` is one RE2 pass over a value not seen
    recently. Attribute values repeat a lot (routes, methods, service names), so results
    are memoised, in memory only, and the memo is reset when it fills."""

    __slots__ = ("rule", "masker", "memo")

    def __init__(self, rule: int, masker):
        self.rule = rule
        self.masker = masker  # detectors.Masker
        self.memo: dict[str, str | None] = {}

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


class Decider:
    """Key -> Decision for one (signal, level), memoised."""

    __slots__ = ("key_rules", "keep_only", "masks", "top", "nested", "has_key_rules")

    def __init__(self, key_rules: tuple["_KeyRule", ...], keep_only: tuple["_KeyRule", ...],
                 masks: tuple[tuple["_KeyRule | None", Mask], ...] = ()):
        self.key_rules = key_rules
        self.keep_only = keep_only
        self.masks = masks  # (key filter or None = every attribute, mask)
        self.has_key_rules = bool(key_rules)
        self.top: dict[str, Decision] = {}  # attributes: key rules, then keep_only
        self.nested: dict[str, Decision] = {}  # keys inside kvlists: key rules only

    def decide(self, key: str) -> Decision:
        d = self.top.get(key)
        if d is None:
            d = self._first_match(key)
            if d is KEEP and self.keep_only and not any(r.matches(key) for r in self.keep_only):
                d = Decision(Action.KEEP_ONLY, self.keep_only[0].index)
            if self.masks and d.op in (OP_KEEP, OP_REWRITE):
                masks = tuple(m for f, m in self.masks if f is None or f.matches(key))
                if masks:
                    d = replace(d, masks=masks)
            if len(self.top) >= DECISION_CACHE_LIMIT:
                self.top.clear()
            self.top[key] = d
        return d

    def decide_nested(self, key: str) -> Decision:
        d = self.nested.get(key)
        if d is None:
            d = self._first_match(key)
            if len(self.nested) >= DECISION_CACHE_LIMIT:
                self.nested.clear()
            self.nested[key] = d
        return d

    def _first_match(self, key: str) -> Decision:
        for rule in self.key_rules:
            if rule.matches(key):
                return rule.decision
        return KEEP


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
    # Mask rules on names and bodies, by (signal, target): target is span_name,
    # event_name (span events and log records' event_name) or log_body.
    name_masks: dict[tuple[str, str], tuple[Mask, ...]]

    def decider(self, signal: str, level: Level) -> Decider:
        return self.deciders[(signal, level)]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rules:
            counts[r.action.value] = counts.get(r.action.value, 0) + 1
        parts = ", ".join(f"{n} {a}" for a, n in counts.items())
        return f"{len(self.rules)} rules ({parts})" if self.rules else "0 rules"


def load(path: str | Path, environ: dict[str, str] | None = None) -> CompiledPolicy:
    """Load, check and compile a policy file. Raises PolicyError with every problem."""
    return compile_policy(load_file(path), environ)


def compile_policy(doc: PolicyDoc, environ: dict[str, str] | None = None) -> CompiledPolicy:
    environ = os.environ if environ is None else environ
    hasher = _hasher(doc, environ)
    deciders: dict[tuple[str, Level], Decider] = {}
    errors: list[str] = []
    compiled: dict[int, _KeyRule] = {}
    for rule in doc.rules:
        if rule.action in _VALUE_REWRITERS or rule.action in (Action.DELETE, Action.HASH, Action.KEEP_ONLY):
            try:
                compiled[rule.index] = _KeyRule(rule, _decision(rule))
            except re2.error:
                errors.append(f"{doc.source}:{rule.where}: invalid RE2 regex in patterns")
    if errors:
        raise PolicyError(errors)
    masks = {r.index: _mask(r, hasher) for r in doc.rules if r.action is Action.MASK}
    for signal in SIGNAL_NAMES:
        for level in LEVELS_OF[signal]:
            applies = [r for r in doc.rules if signal in r.signals and level in r.levels]
            key_rules = tuple(compiled[r.index] for r in applies if r.index in compiled and r.action is not Action.KEEP_ONLY)
            keep = tuple(compiled[r.index] for r in applies if r.action is Action.KEEP_ONLY)
            attr_masks = tuple(
                (_KeyRule(r, KEEP) if r.keys or r.patterns else None, masks[r.index])
                for r in applies if r.index in masks and "attributes" in r.targets
            )
            deciders[(signal, level)] = Decider(key_rules, keep, attr_masks)
    drops = {}
    for s in SIGNAL_NAMES:
        by_key: dict[str, list[DropRule]] = {}
        for r in doc.rules:
            if r.action is Action.DROP and s in r.signals and r.when:
                by_key.setdefault(r.when.key, []).append(_drop(r))
        drops[s] = {key: tuple(rules) for key, rules in by_key.items()}
    name_masks = {}
    for signal, target, level in _NAME_TARGETS:
        name_masks[(signal, target)] = tuple(
            masks[r.index] for r in doc.rules
            if r.index in masks and target in r.targets and signal in r.signals and level in r.levels
        )
    return CompiledPolicy(doc.source, doc.sha256, doc.rules, hasher, deciders, drops, name_masks)


# Where a mask target lives: (signal, target, the level a rule must cover to reach it).
_NAME_TARGETS = (
    ("traces", "span_name", Level.SPAN),
    ("traces", "event_name", Level.EVENT),
    ("logs", "event_name", Level.LOG),
    ("logs", "log_body", Level.LOG),
)


def _mask(rule: Rule, hasher: Callable[[bytes], str]) -> Mask:
    from redact_proxy.policy.detectors import Masker  # only policies with mask rules need it

    template = rule.replacement
    if "{hash}" in template:
        # The keyed hash of the matched text keeps correlation without the text.
        replace = lambda text: template.replace("{hash}", hasher(text.encode()))  # noqa: E731
    else:
        replace = template
    return Mask(rule.index, Masker(rule.detectors, rule.regexes, replace))


def _decision(rule: Rule) -> Decision:
    rewrite = _VALUE_REWRITERS[rule.action](rule) if rule.action in _VALUE_REWRITERS else None
    return Decision(rule.action, rule.index, rewrite, collector_hash=rule.collector_hash)


def _sanitize_sql(rule: Rule) -> Callable[[str], str]:
    from redact_proxy.policy.sql import sanitize_sql

    return sanitize_sql


def _sanitize_url(rule: Rule) -> Callable[[str], str]:
    from redact_proxy.policy.url import sanitize_url

    path_ids = rule.path_ids
    return lambda value: sanitize_url(value, path_ids=path_ids)


_VALUE_REWRITERS = {Action.SANITIZE_SQL: _sanitize_sql, Action.SANITIZE_URL: _sanitize_url}


def _drop(rule: Rule) -> DropRule:
    when = rule.when
    if when.op == "matches":
        regex = compile_regex(when.values[0])
        test = lambda text: regex.fullmatch(text) is not None  # noqa: E731
    else:
        values = frozenset(when.values)
        test = values.__contains__
    return DropRule(rule.index, when.key, test)


def _unkeyed_use(data: bytes) -> str:
    raise RuntimeError("no rule of this policy hashes, so no hash key was loaded")


def _hasher(doc: PolicyDoc, environ) -> Callable[[bytes], str]:
    spec = doc.hash
    if spec.algorithm == "sha256":
        return lambda data: hashlib.sha256(data).hexdigest()
    where = f"{doc.source}:{spec.where}"
    if not any(r.action is Action.HASH or "{hash}" in r.replacement for r in doc.rules):
        return _unkeyed_use  # nothing hashes: a policy without hash rules needs no key
    if spec.key_env:
        value = environ.get(spec.key_env)
        if not value:
            raise PolicyError([f"{where}.key_env: environment variable {spec.key_env} is not set; the hash key is required"])
        key = value.encode()
    else:
        try:
            key = Path(spec.key_file).read_bytes().strip()
        except OSError as exc:
            raise PolicyError([f"{where}.key_file: cannot read {spec.key_file}: {exc.strerror}"]) from exc
    if len(key) < MIN_KEY_BYTES:
        raise PolicyError([f"{where}: hash key is {len(key)} bytes; at least {MIN_KEY_BYTES} are required (e.g. `openssl rand -hex 32`)"])
    base = hmac.new(key, digestmod=hashlib.sha256)

    def hmac_sha256(data: bytes) -> str:
        h = base.copy()  # reuses the keyed inner/outer state: no re-keying per value
        h.update(data)
        return h.hexdigest()

    return hmac_sha256
