"""Property: personal data planted in any string or bytes field of OTLP, at any level and
nesting, as a key or a value, as text, UTF-8 bytes, an integer or inside JSON text, sent
as protobuf or OTLP-JSON, never survives the doctrine; and nothing else in the request
changes.

The fields and paths come from the protobuf descriptors (``tests/test_fields.py`` proves
every field has a treatment); this test proves the doctrine gives every one of them one
that catches what it carries.
"""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redact_proxy.codec import Format, decode, encode
from redact_proxy.fields import FIELDS, Treatment
from redact_proxy.policy.compile import load
from redact_proxy.scrub import scrub
from redact_proxy.signals import ALL
from scrub_support import otlp_paths

ROOT = Path(__file__).resolve().parents[2]
DOCTRINE = load(ROOT / "policies" / "doctrine.yaml", {"REDACT_PROXY_HASH_KEY": "planted-test-key-0123456789abcdef"})

PROFILE = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

# What is planted: each a value the doctrine's detectors must find wherever it is.
PII = [
    "ada@example.com",
    "ada.lovelace+plant@mail.example.org",
    "203.0.113.7",
    "2001:db8::7",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "DE89 3704 0044 0532 0130 00",
    "+44 20 7946 0958",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlLXBsYW50",
]
CARD = 4111111111111111  # as an integer value

TEXT_PATHS = [
    (signal, path) for signal in ALL for path in otlp_paths(signal.request)
    if FIELDS[(path[-1].containing_type.full_name, path[-1].name)].treatment is not Treatment.IDENTIFIER
]
# Keys the doctrine keeps, so the plant meets the masks rather than a key rule.
KEPT_KEYS = ["note", "component", "detail.info", "x"]
words = st.text(alphabet="abcdefghij klmnop", max_size=12)


def _is(path, message: str, field: str) -> bool:
    f = path[-1]
    return f.containing_type.full_name.endswith(message) and f.name == field


@st.composite
def planted(draw):
    signal, path = draw(st.sampled_from(TEXT_PATHS))
    pii = draw(st.sampled_from(PII))
    text = f"{draw(words)} {pii} {draw(words)}"
    form = draw(st.sampled_from(["text", "json", "int"])) if _is(path, "AnyValue", "string_value") else "text"
    if form == "json":
        text = json.dumps({draw(st.sampled_from(KEPT_KEYS)): {"inner": [text]}, "n": 1})
    key = draw(st.sampled_from(KEPT_KEYS))
    transport = draw(st.sampled_from([Format.PROTOBUF, Format.JSON]))
    return signal, path, text, pii, form, key, transport


def _build(signal, path, text, form, key):
    request = signal.request()
    msg = request
    for f in path[:-1]:
        if f.is_repeated:
            msg = getattr(msg, f.name).add()
        else:
            msg = getattr(msg, f.name)
            msg.SetInParent()
        if msg.DESCRIPTOR.name == "KeyValue":
            msg.key = key
    last = path[-1]
    if form == "int":
        msg.int_value = CARD
    elif last.type == FieldDescriptor.TYPE_BYTES:
        setattr(msg, last.name, text.encode())
    elif last.is_repeated:
        getattr(msg, last.name).append(text)
    else:
        setattr(msg, last.name, text)
    if msg.DESCRIPTOR.name == "KeyValue" and last.name == "key":
        msg.value.string_value = "v"
    if signal.name == "metrics":
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    m.name = m.name or "requests"  # a metric without a name is refused upstream
    return request


def _without(request, path):
    """``request`` with the planted field cleared, for "nothing else changed"."""
    msg = request
    for f in path[:-1]:
        msg = getattr(msg, f.name)[0] if f.is_repeated else getattr(msg, f.name)
    if msg.DESCRIPTOR.name == "AnyValue":
        msg.Clear()
    elif msg.DESCRIPTOR.name == "KeyValue":
        msg.Clear()
    else:
        msg.ClearField(path[-1].name)
    return request


def _find(request, path):
    msg = request
    for f in path[:-1]:
        items = getattr(msg, f.name)
        if f.is_repeated:
            if not items:
                return None
            msg = items[0]
        else:
            msg = items
    return msg


@PROFILE
@given(planted())
def test_planted_personal_data_never_survives_the_doctrine(case):
    signal, path, text, pii, form, key, transport = case
    original = _build(signal, path, text, form, key)
    request = decode(signal, encode(original, transport), transport)
    assert request == original  # the transport is lossless for the plant

    scrub(signal.name, request, DOCTRINE)

    out = encode(request, Format.PROTOBUF) + encode(request, Format.JSON)
    if form == "int":
        assert str(CARD).encode() not in out
    else:
        assert pii.encode() not in out
        assert json.dumps(pii)[1:-1].encode() not in out
    # Nothing else changed: with the planted field cleared on both sides, they are equal.
    if _find(request, path) is not None:
        assert _without(request, path) == _without(original, path)


def test_the_plant_is_in_the_request_before_the_scrub():
    """The property is not vacuous: every path carries the plant into the encoded body."""
    for signal, path in TEXT_PATHS:
        body = encode(_build(signal, path, f"x {PII[0]} y", "text", "note"), Format.PROTOBUF)
        assert PII[0].encode() in body
