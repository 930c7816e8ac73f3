"""Policy file -> checked model, with every error located.

Strategy: the YAML is composed into nodes (which carry line and column marks), then walked
once by hand. Each problem becomes a line ``FILE:LINE:COL: yaml.path: message`` naming the
bad value and what was expected; all of them are collected and raised together as a
``PolicyError``, so an operator fixes a file in one round. Nothing here compiles regexes
beyond checking them, reads keys, or touches telemetry: that is ``compile.py``. The model
it builds is ``model.py``; the node helpers it walks with are ``yamlnodes.py``, shared with
``collector.py``.

Two inputs are accepted (SPEC section 6): a redact-proxy policy (``version: 1``) and a
collector config whose ``processors: attributes/*`` hold ``delete``/``hash`` actions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import re2
import yaml

from redact_proxy.errors import PolicyError
from redact_proxy.fields import FIELD_TARGETS, MASK_TARGETS, REQUIRED_TARGETS, SANITIZE_TARGETS
from redact_proxy.policy import regex
from redact_proxy.policy.collector import rules_from_collector
from redact_proxy.policy.model import (
    LEVELS_OF,
    SIGNAL_NAMES,
    Action,
    HashSpec,
    Level,
    PolicyCase,
    PolicyDoc,
    Rule,
    When,
    Where,
)
from redact_proxy.policy.regex import compile_regex
from redact_proxy.policy.yamlnodes import (
    Errors,
    choices,
    join,
    kind,
    mapping,
    scalar,
    string,
    string_list,
    text_of_scalar,
    unknown,
    where,
)

# The model and the regex compiler are imported from here by compile.py, offline.py and
# the tests: this module is the policy reader's front.
__all__ = [
    "DEFAULT_KEY_ENV",
    "FIELDS_OF",
    "HASH_ALGORITHMS",
    "LEVELS_OF",
    "MAX_POLICY_BYTES",
    "SIGNAL_NAMES",
    "Action",
    "HashSpec",
    "Level",
    "PolicyCase",
    "PolicyDoc",
    "Rule",
    "When",
    "Where",
    "compile_regex",
    "load_file",
    "parse",
]


HASH_ALGORITHMS = ("hmac-sha256", "sha256")
# Bytes. What a Kubernetes ConfigMap holds at most; the shipped doctrine is ~70 KiB. A
# policy at the bound takes 5-10 s to parse and compile (on the reload thread, not the
# event loop); a larger file is refused unread.
MAX_POLICY_BYTES = 1024 * 1024
DEFAULT_KEY_ENV = "REDACT_PROXY_HASH_KEY"

_COMMON = {"name", "action", "description", "signals", "levels"}
_KEYED = {"keys", "patterns"}
FIELDS_OF: dict[Action, frozenset[str]] = {
    Action.DELETE: frozenset(_COMMON | _KEYED | {"fields"}),
    Action.HASH: frozenset(_COMMON | _KEYED),
    Action.KEEP_ONLY: frozenset(_COMMON | _KEYED),
    Action.REPLACE: frozenset(_COMMON | _KEYED | {"fields", "replacement"}),
    Action.SANITIZE_SQL: frozenset(_COMMON | _KEYED | {"fields"}),
    Action.SANITIZE_URL: frozenset(_COMMON | _KEYED | {"fields", "path_ids"}),
    Action.MASK: frozenset(_COMMON | _KEYED | {"detectors", "regexes", "targets", "replacement"}),
    # A drop removes whole items (spans, data points, log records) judged on their own
    # attributes: `levels` would have no meaning.
    Action.DROP: frozenset((_COMMON - {"levels"}) | {"when"}),
}
_NAME_RE = re2.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")

# --- the policy document ----------------------------------------------------------------


def load_file(path: str | Path) -> PolicyDoc:
    """Read and check a policy (or collector config) file. Raises PolicyError."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as f:
            # Read one byte past the bound, never the whole of a file that is too big.
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError([f"{source}:1:1: cannot read policy file: {exc.strerror}"]) from exc
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            [
                f"{source}:1:1: (file): the policy file is larger than {MAX_POLICY_BYTES} bytes "
                f"({MAX_POLICY_BYTES / 2**20:g} MiB), the most a policy may be"
            ]
        )
    return parse(data, source)


def parse(data: bytes, source: str) -> PolicyDoc:
    """Check a policy (or collector config) document; raises PolicyError."""
    try:
        return _parse(data, source)
    except RecursionError as exc:  # PyYAML composes and constructs recursively
        raise PolicyError([f"{source}:1:1: (yaml): nesting too deep; a policy is a few levels deep"]) from exc


def _parse(data: bytes, source: str) -> PolicyDoc:
    errs = Errors(source)
    try:
        root = yaml.compose(data, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PolicyError([f"{source}:{line}:{col}: (yaml): {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise PolicyError([f"{source}:1:1: (yaml): {exc}"]) from exc
    if root is None:
        raise PolicyError([f"{source}:1:1: (root): the file is empty; expected a policy"])
    sha = hashlib.sha256(data).hexdigest()
    top = mapping(root, "(root)", errs)
    if top is None:
        raise PolicyError(errs.lines)
    if "processors" in top and "version" not in top:
        migrated = rules_from_collector(top, errs)
        if errs.lines:
            raise PolicyError(errs.lines)
        return PolicyDoc(source, sha, HashSpec(algorithm="sha256"), migrated, from_collector=True)

    unknown(top, {"version", "hash", "rules", "tests"}, "", errs, "a policy")
    if "version" not in top:
        errs.add(root, "version", "missing; expected `version: 1`")
    else:
        _, vnode = top["version"]
        if not (isinstance(vnode, yaml.ScalarNode) and scalar(vnode) == 1):
            errs.add(vnode, "version", f"unsupported version {kind(vnode)}; expected 1")
    hash_spec = _hash_section(top.get("hash"), errs)
    rules: list[Rule] = []
    if "rules" not in top:
        errs.add(root, "rules", "missing; a policy needs a `rules:` list")
    else:
        _, rnode = top["rules"]
        if not isinstance(rnode, yaml.SequenceNode):
            errs.add(rnode, "rules", f"expected a list of rules, got {kind(rnode)}")
        else:
            seen: dict[str, int] = {}
            for i, node in enumerate(rnode.value):
                rule = _rule(node, i, errs)
                if rule is None:
                    continue
                if rule.name in seen:
                    name_node = next(v for k, v in node.value if getattr(k, "value", None) == "name")
                    errs.add(
                        name_node,
                        f"rules[{i}].name",
                        f"duplicate rule name {rule.name!r} (first used by rules[{seen[rule.name]}])",
                    )
                    continue
                seen[rule.name] = i
                rules.append(rule)
    tests = _tests(top.get("tests"), errs)
    if errs.lines:
        raise PolicyError(errs.lines)
    return PolicyDoc(source, sha, hash_spec, tuple(rules), tuple(tests))


def _hash_section(entry, errs) -> HashSpec:
    if entry is None:
        return HashSpec(key_env=DEFAULT_KEY_ENV)
    _, node = entry
    fields = mapping(node, "hash", errs)
    if fields is None:
        return HashSpec()
    unknown(fields, {"algorithm", "key_env", "key_file"}, "hash", errs, "the hash section")
    algorithm = "hmac-sha256"
    if "algorithm" in fields:
        value = string(fields["algorithm"][1], "hash.algorithm", errs)
        if value is not None and value not in HASH_ALGORITHMS:
            errs.add(
                fields["algorithm"][1],
                "hash.algorithm",
                f"unknown algorithm {value!r}; expected one of: {', '.join(HASH_ALGORITHMS)}",
            )
        elif value is not None:
            algorithm = value
    key_env = string(fields["key_env"][1], "hash.key_env", errs) if "key_env" in fields else None
    key_file = string(fields["key_file"][1], "hash.key_file", errs) if "key_file" in fields else None
    if key_env and key_file:
        errs.add(node, "hash", "give key_env or key_file, not both")
    if algorithm == "sha256" and (key_env or key_file):
        errs.add(node, "hash", "sha256 is unkeyed; remove key_env/key_file or use hmac-sha256")
    if algorithm == "hmac-sha256" and not (key_env or key_file):
        key_env = DEFAULT_KEY_ENV
    return HashSpec(algorithm, key_env, key_file, where(node, "hash"))


def _rule(node, i, errs) -> Rule | None:
    path = f"rules[{i}]"
    fields = mapping(node, path, errs)
    if fields is None:
        return None
    before = len(errs.lines)
    name = string(fields["name"][1], f"{path}.name", errs) if "name" in fields else None
    if "name" not in fields:
        errs.add(node, f"{path}.name", "missing; every rule needs a unique name")
    elif name is not None and not _NAME_RE.fullmatch(name):
        errs.add(
            fields["name"][1],
            f"{path}.name",
            f"invalid rule name {name!r}; use 1-63 of a-z 0-9 _ . - (it becomes a metric label)",
        )
    if "action" not in fields:
        errs.add(node, f"{path}.action", f"missing; expected one of: {', '.join(a.value for a in Action)}")
        return None
    anode = fields["action"][1]
    raw = string(anode, f"{path}.action", errs)
    try:
        action = Action(raw)
    except ValueError:
        if raw is not None:
            errs.add(
                anode,
                f"{path}.action",
                f"unknown action {raw!r}; expected one of: {', '.join(a.value for a in Action)}",
            )
        return None
    unknown(fields, FIELDS_OF[action], path, errs, f"action {action.value}")

    def opt(name, fn, *args):
        return fn(fields[name][1], f"{path}.{name}", errs, *args) if name in fields else None

    keyed_errors = len(errs.lines)
    keys = [k for k, _ in opt("keys", string_list) or []]
    patterns = []
    for j, (pattern, pnode) in enumerate(opt("patterns", string_list) or []):
        try:
            compile_regex(pattern)
            patterns.append(pattern)
        except re2.error as exc:
            errs.add(pnode, f"{path}.patterns[{j}]", f"invalid RE2 regex {pattern!r}: {regex.reason(exc)}")
    targets = _field_targets(fields, action, path, errs)
    if action in _KEYED_ACTIONS and not (keys or patterns or targets) and len(errs.lines) == keyed_errors:
        # a malformed keys:/patterns:/fields: is reported once, above
        wants = "`keys:`, `patterns:` or `fields:`" if "fields" in FIELDS_OF[action] else "`keys:` or `patterns:`"
        errs.add(node, path, f"action {action.value} needs {wants}")
    signals = opt("signals", choices, SIGNAL_NAMES)
    levels_raw = opt("levels", choices, tuple(lv.value for lv in Level))
    signals_set = frozenset(signals) if signals else frozenset(SIGNAL_NAMES)
    levels = frozenset(Level(v) for v in levels_raw) if levels_raw else frozenset(Level)
    if levels_raw and not any(levels & LEVELS_OF[s] for s in signals_set):
        errs.add(
            fields["levels"][1],
            f"{path}.levels",
            f"none of these levels exists in signals {sorted(signals_set)}; the rule would never apply",
        )
    kwargs: dict = {}
    if action is Action.DROP:
        if "when" not in fields:
            errs.add(node, path, "action drop needs `when: {key: K, in: [...]}` (or equals:/matches:)")
        else:
            kwargs["when"] = _when(fields["when"][1], f"{path}.when", errs)
    if action is Action.MASK:
        kwargs.update(_mask_fields(fields, path, errs))
    if action is Action.REPLACE and "replacement" in fields:
        value = _replacement(fields["replacement"][1], f"{path}.replacement", errs)
        if value is not None:
            kwargs["replacement"] = value
    if targets:
        kwargs["fields"] = frozenset(targets)
    if action is Action.SANITIZE_URL and "path_ids" in fields:
        value = scalar(fields["path_ids"][1]) if isinstance(fields["path_ids"][1], yaml.ScalarNode) else None
        if not isinstance(value, bool):
            errs.add(fields["path_ids"][1], f"{path}.path_ids", "expected true or false")
        else:
            kwargs["path_ids"] = value
    if len(errs.lines) > before or name is None:
        return None
    return Rule(
        index=i,
        name=name,
        action=action,
        keys=tuple(keys),
        patterns=tuple(patterns),
        signals=signals_set,
        levels=levels,
        where=where(node, path),
        **kwargs,
    )


_KEYED_ACTIONS = (
    Action.DELETE,
    Action.HASH,
    Action.KEEP_ONLY,
    Action.REPLACE,
    Action.SANITIZE_SQL,
    Action.SANITIZE_URL,
)


def _field_targets(fields, action: Action, path: str, errs) -> list[str]:
    """The ``fields:`` of a delete/replace/sanitize rule, checked against what the action
    can do to each field."""
    if "fields" not in fields:
        return []
    node = fields["fields"][1]
    if action in (Action.SANITIZE_SQL, Action.SANITIZE_URL):
        allowed = tuple(t for t in FIELD_TARGETS if t in SANITIZE_TARGETS)
    else:
        allowed = FIELD_TARGETS
    out = []
    for j, (value, item) in enumerate(string_list(node, f"{path}.fields", errs)):
        if value not in allowed:
            errs.add(
                item,
                f"{path}.fields[{j}]",
                f"unknown field {value!r} for action {action.value}; expected one of: {', '.join(allowed)}",
            )
        elif action is Action.DELETE and value in REQUIRED_TARGETS:
            errs.add(
                item, f"{path}.fields[{j}]", f"{value} is required by OTLP and cannot be deleted; use action replace"
            )
        else:
            out.append(value)
    return out


def _replacement(node, path: str, errs) -> str | None:
    value = scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, str):
        errs.add(node, path, f"expected a string, got {kind(node)}")
        return None
    return value


def _when(node, path, errs) -> When | None:
    fields = mapping(node, path, errs)
    if fields is None:
        return None
    unknown(fields, {"key", "in", "equals", "matches"}, path, errs, "a drop condition")
    key = string(fields["key"][1], f"{path}.key", errs) if "key" in fields else None
    if "key" not in fields:
        errs.add(node, f"{path}.key", "missing; the attribute key to test")
    ops = [op for op in ("in", "equals", "matches") if op in fields]
    if len(ops) != 1:
        errs.add(node, path, "give exactly one of `in:`, `equals:`, `matches:`")
        return None
    op = ops[0]
    vnode = fields[op][1]
    values: list[str] = []
    if op == "in":
        if not isinstance(vnode, yaml.SequenceNode) or not vnode.value:
            errs.add(vnode, f"{path}.in", f"expected a non-empty list of values, got {kind(vnode)}")
        else:
            for j, item in enumerate(vnode.value):
                if isinstance(item, yaml.ScalarNode) and scalar(item) is not None:
                    values.append(text_of_scalar(scalar(item)))
                else:
                    errs.add(item, f"{path}.in[{j}]", f"expected a scalar value, got {kind(item)}")
    elif op == "equals":
        if isinstance(vnode, yaml.ScalarNode) and scalar(vnode) is not None:
            values.append(text_of_scalar(scalar(vnode)))
        else:
            errs.add(vnode, f"{path}.equals", f"expected a scalar value, got {kind(vnode)}")
    else:
        pattern = string(vnode, f"{path}.matches", errs)
        if pattern is not None:
            try:
                compile_regex(pattern)
                values.append(pattern)
            except re2.error as exc:
                errs.add(vnode, f"{path}.matches", f"invalid RE2 regex {pattern!r}: {regex.reason(exc)}")
    if key is None or not values:
        return None
    return When(key, op, tuple(values), where(node, path))


def _mask_fields(fields, path, errs) -> dict:
    from redact_proxy.policy import detectors  # only mask rules need them

    out: dict = {}
    if "detectors" in fields:
        names = tuple(detectors.DETECTORS) + tuple(detectors.DETECTOR_GROUPS)
        out["detectors"] = tuple(choices(fields["detectors"][1], f"{path}.detectors", errs, names))
    regexes = []
    for j, (pattern, pnode) in enumerate(
        string_list(fields["regexes"][1], f"{path}.regexes", errs) if "regexes" in fields else []
    ):
        try:
            compile_regex(pattern)
            regexes.append(pattern)
        except re2.error as exc:
            errs.add(pnode, f"{path}.regexes[{j}]", f"invalid RE2 regex {pattern!r}: {regex.reason(exc)}")
    out["regexes"] = tuple(regexes)
    if not out.get("detectors") and not regexes and "detectors" not in fields and "regexes" not in fields:
        errs.add(fields["action"][1], path, "action mask needs `detectors:` or `regexes:`")
    if "targets" in fields:
        out["targets"] = frozenset(choices(fields["targets"][1], f"{path}.targets", errs, MASK_TARGETS))
    if "replacement" in fields:
        value = _replacement(fields["replacement"][1], f"{path}.replacement", errs)
        if value is not None:
            out["replacement"] = value
    return out


def _case_fields(node, path: str, errs, signal: str, level: Level) -> dict:
    """A test case's free-text fields: {target: text}, each a target of the case's level."""
    from redact_proxy.fields import TARGET_LEVELS

    fields = mapping(node, path, errs)
    if fields is None:
        return {}
    here = [t for t, places in TARGET_LEVELS.items() if (signal, level.value) in places]
    out = {}
    for name, (knode, vnode) in fields.items():
        value = scalar(vnode) if isinstance(vnode, yaml.ScalarNode) else None
        if name not in here:
            errs.add(
                knode,
                join(path, name),
                f"no such field at {signal} level {level.value}; expected one of: {', '.join(here)}",
            )
        elif not isinstance(value, str):
            errs.add(vnode, join(path, name), f"expected a string, got {kind(vnode)}")
        else:
            out[name] = value
    return out


def _tests(entry, errs) -> list[PolicyCase]:
    if entry is None:
        return []
    _, node = entry
    if not isinstance(node, yaml.SequenceNode):
        errs.add(node, "tests", f"expected a list of test cases, got {kind(node)}")
        return []
    cases = []
    for i, item in enumerate(node.value):
        path = f"tests[{i}]"
        fields = mapping(item, path, errs)
        if fields is None:
            continue
        unknown(
            fields, {"name", "signal", "level", "input", "expect", "fields", "expect_fields"}, path, errs, "a test case"
        )
        missing = [f for f in ("name", "input", "expect") if f not in fields]
        for f in missing:
            errs.add(item, f"{path}.{f}", "missing")
        if missing:
            continue
        name = string(fields["name"][1], f"{path}.name", errs)
        signal = scalar(fields["signal"][1]) if "signal" in fields else "traces"
        if signal not in SIGNAL_NAMES:
            errs.add(fields["signal"][1], f"{path}.signal", f"expected one of: {', '.join(SIGNAL_NAMES)}")
            continue
        level_name = scalar(fields["level"][1]) if "level" in fields else "span"
        try:
            level = Level(level_name)
        except ValueError:
            errs.add(fields["level"][1], f"{path}.level", f"expected one of: {', '.join(lv.value for lv in Level)}")
            continue
        payload = {}
        for f in ("input", "expect"):
            value = scalar(fields[f][1])
            if f == "expect" and value == "dropped":
                value = None  # the item must be removed by a drop rule
            elif not isinstance(value, dict):
                errs.add(
                    fields[f][1],
                    f"{path}.{f}",
                    "expected a mapping of attribute key: value" + (" (or `dropped`)" if f == "expect" else ""),
                )
                value = False
            payload[f] = value
        texts = {
            f: _case_fields(fields[f][1], f"{path}.{f}", errs, signal, level) if f in fields else {}
            for f in ("fields", "expect_fields")
        }
        if name is not None and payload["input"] is not False and payload["expect"] is not False:
            cases.append(
                PolicyCase(
                    name,
                    signal,
                    level,
                    payload["input"],
                    payload["expect"],
                    where(item, path),
                    texts["fields"],
                    texts["expect_fields"],
                )
            )
    return cases
