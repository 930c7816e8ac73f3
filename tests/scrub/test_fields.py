"""The coverage guarantee (SPEC 6), over the protobuf descriptors in use: every string and
bytes field of the three export requests has a treatment, and a value planted in any of
them, reached by any path, does not survive a policy that masks every target."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from redact_proxy.fields import FIELDS, MASK_TARGETS, TARGET_LEVELS, Treatment
from redact_proxy.policy.compile import compile_policy
from redact_proxy.policy.schema import parse
from redact_proxy.scrub import scrub
from redact_proxy.signals import ALL
from scrub_support import otlp_paths

_TEXT_TYPES = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)
PLANT = "ada@example.com"


def _text_fields(root) -> set[tuple[str, str]]:
    seen, found, todo = set(), set(), [root]
    while todo:
        d = todo.pop()
        if d.full_name in seen:
            continue
        seen.add(d.full_name)
        for f in d.fields:
            if f.type in _TEXT_TYPES:
                found.add((d.full_name, f.name))
            if f.message_type is not None:
                todo.append(f.message_type)
    return found


ALL_TEXT_FIELDS = set().union(*(_text_fields(s.request.DESCRIPTOR) for s in ALL))


def test_every_string_and_bytes_field_has_a_treatment():
    missing = sorted(".".join(p) for p in ALL_TEXT_FIELDS - set(FIELDS))
    assert not missing, f"OTLP fields without a treatment in redact_proxy/fields.py: {missing}"


def test_the_table_names_no_field_that_does_not_exist():
    stale = sorted(".".join(p) for p in set(FIELDS) - ALL_TEXT_FIELDS)
    assert not stale


def test_every_text_field_has_a_target_the_policy_language_knows():
    for pair, field in FIELDS.items():
        if field.treatment is Treatment.TEXT:
            assert field.target in TARGET_LEVELS and field.target in MASK_TARGETS, pair
        else:
            assert field.target is None, pair


def _plant(signal, path) -> bytes:
    """A request with the plant in the last field of ``path`` (UTF-8 for bytes)."""
    request = signal.request()
    msg = request
    for f in path[:-1]:
        if f.is_repeated:
            msg = getattr(msg, f.name).add()
        else:
            msg = getattr(msg, f.name)
            msg.SetInParent()
    last = path[-1]
    value = PLANT.encode() if last.type == FieldDescriptor.TYPE_BYTES else PLANT
    if last.is_repeated:
        getattr(msg, last.name).append(value)
    else:
        setattr(msg, last.name, value)
    if msg.DESCRIPTOR.full_name.endswith("KeyValue") and last.name == "key":
        msg.value.string_value = "x"
    return request.SerializeToString()


MASK_EVERYTHING = compile_policy(parse(f"""
version: 1
rules:
  - name: mask-all
    action: mask
    detectors: [email]
    targets: [{", ".join(MASK_TARGETS)}]
""".encode(), "mask-all.yaml"), {})

CASES = [
    (signal, path)
    for signal in ALL
    for path in otlp_paths(signal.request)
    if FIELDS[(path[-1].containing_type.full_name, path[-1].name)].treatment is not Treatment.IDENTIFIER
]


def test_the_plant_reaches_every_text_field_of_every_signal():
    planted = {(p[-1].containing_type.full_name, p[-1].name) for _, p in CASES}
    texts = {pair for pair, f in FIELDS.items() if f.treatment is not Treatment.IDENTIFIER}
    assert planted == texts


@pytest.mark.parametrize("signal, path", CASES,
                         ids=[f"{s.name}:{'.'.join(f.name for f in p)}" for s, p in CASES])
def test_a_planted_value_in_any_text_field_is_masked(signal, path):
    body = _plant(signal, path)
    assert PLANT.encode() in body
    request = signal.request.FromString(body)
    report = scrub(signal.name, request, MASK_EVERYTHING)
    assert PLANT.encode() not in request.SerializeToString()
    assert report.changed and sum(report.redactions) >= 1
