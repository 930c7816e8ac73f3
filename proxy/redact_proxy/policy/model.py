"""The checked policy model: what ``schema.py`` and ``collector.py`` read a file into.

Strategy: plain frozen dataclasses and enums, with no YAML, no regex engine and no I/O, so
both readers (a redact-proxy policy, a collector config) build the same objects without
importing each other, and ``compile.py`` turns them into a ``CompiledPolicy``. Every
object carries its ``Where`` (line, column, YAML path), so a later stage can still locate
its messages in the file.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Action(enum.Enum):
    DELETE = "delete"
    HASH = "hash"
    MASK = "mask"
    REPLACE = "replace"
    SANITIZE_SQL = "sanitize_sql"
    SANITIZE_URL = "sanitize_url"
    KEEP_ONLY = "keep_only"
    DROP = "drop"


class Level(enum.Enum):
    RESOURCE = "resource"
    SCOPE = "scope"
    SPAN = "span"
    EVENT = "event"
    LINK = "link"
    DATAPOINT = "datapoint"  # data point attributes, and a metric's metadata
    EXEMPLAR = "exemplar"
    LOG = "log"  # log record attributes, and keys inside a structured log body


SIGNAL_NAMES = ("traces", "metrics", "logs")
# Which levels exist in which signal: a rule restricted to levels its signals lack would
# silently do nothing, so that is an error.
LEVELS_OF = {
    "traces": frozenset({Level.RESOURCE, Level.SCOPE, Level.SPAN, Level.EVENT, Level.LINK}),
    "metrics": frozenset({Level.RESOURCE, Level.SCOPE, Level.DATAPOINT, Level.EXEMPLAR}),
    "logs": frozenset({Level.RESOURCE, Level.SCOPE, Level.LOG}),
}


@dataclass(frozen=True)
class Where:
    line: int  # 1-based
    col: int  # 1-based
    path: str

    def __str__(self) -> str:
        return f"{self.line}:{self.col}: {self.path}"


@dataclass(frozen=True)
class When:
    key: str
    op: str  # "in" | "equals" | "matches"
    values: tuple[str, ...]  # canonical text of the scalars (see scrub.attributes.text_of)
    where: Where


@dataclass(frozen=True)
class Rule:
    index: int
    name: str
    action: Action
    keys: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    signals: frozenset[str] = frozenset(SIGNAL_NAMES)
    levels: frozenset[Level] = frozenset(Level)
    when: When | None = None
    detectors: tuple[str, ...] = ()
    regexes: tuple[str, ...] = ()
    targets: frozenset[str] = frozenset({"attributes"})
    replacement: str = "[REDACTED]"
    path_ids: bool = False
    # Whole free-text fields this rule deletes, replaces or sanitizes (fields.FIELD_TARGETS).
    fields: frozenset[str] = frozenset()
    # Imported from a collector config: `hash` reproduces the collector's own bytes for
    # non-string values too (see scrub.attributes.collector_hash_value).
    collector_hash: bool = False
    where: Where = field(default=Where(1, 1, "rules"), compare=False)


@dataclass(frozen=True)
class HashSpec:
    algorithm: str = "hmac-sha256"
    key_env: str | None = None
    key_file: str | None = None
    where: Where = field(default=Where(1, 1, "hash"), compare=False)


@dataclass(frozen=True)
class PolicyCase:
    """One ``tests:`` case (run by ``redact-proxy test``)."""

    name: str
    signal: str
    level: Level
    input: dict
    expect: dict | None  # None: the item must be dropped
    where: Where
    # Free-text fields of the item by target (span_name, status_message, ...): what the
    # item carries, and what each must become.
    fields: dict = field(default_factory=dict)
    expect_fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyDoc:
    source: str  # file name, for messages
    sha256: str  # of the file's bytes: redact_proxy_policy_info{sha256}
    hash: HashSpec
    rules: tuple[Rule, ...]
    tests: tuple[PolicyCase, ...] = ()
    from_collector: bool = False
