"""otlpjson.py (the native OTLP-JSON transcoder) against the Python codec it replaces.

Decode: hypothesis requests of all three signals -- every field, every oneof member,
ids, int64 extremes, NaN/Inf/-0.0 doubles, unicode, empty messages -- encoded to JSON by
the codec, then rewritten in each spelling a client may send (snake_case members,
64-bit integers as numbers, enum names, unknown members), decoded by both: the
protobuf must be byte-identical (so also equal as messages). Then the same bodies with
hostile edits (values of every wrong or borderline type, repeated keys, both spellings,
nulls, extension-like and foreign members) and the fuzz corpus mutated: each body must be
refused by both or turned into the same bytes by both. Refusals never quote content.

Encode: otlpjson.encode of the protobuf against codec.encode of the decoded message,
byte for byte (hence equal as messages and ids byte-exact), also on mutated protobuf:
refused by both (upb's DecodeError) or the same JSON.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor as FD
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redact_proxy import codec, otlpjson
from redact_proxy.codec import Format
from redact_proxy.errors import MalformedRequest
from redact_proxy.signals import ALL, BY_NAME, LOGS, METRICS, TRACES
from redact_proxy.validate import ID_LENGTHS

sys.path.insert(0, str(Path(__file__).parent))
from test_codec import MALFORMED, SECRET, WRONG_JSON_TYPES, _attr, _deep_json, _span  # noqa: E402

CORPUS = Path(__file__).parent / "fuzz" / "corpus"
PROFILE = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
REFUSED = "refused"


def ref_decode(signal, body: bytes):
    """The codec's protobuf for a JSON body, or REFUSED. Two bodies escape the codec as
    other errors, which otlpjson refuses as MalformedRequest: an integer too large for a
    double in a double field (OverflowError from ParseDict's float(int)), and a member
    name holding a lone surrogate where ParseDict looks members up (SystemError from
    upb's fields_by_name)."""
    try:
        return codec.decode(signal, body, Format.JSON).SerializeToString()
    except (MalformedRequest, OverflowError, SystemError):
        return REFUSED


def nat_decode(signal, body: bytes):
    try:
        out = otlpjson.decode(body, signal.name)
    except MalformedRequest as exc:
        assert SECRET not in str(exc) and "SECRET" not in str(exc)
        return REFUSED
    # Canonical: what upb writes for the message it reads back.
    assert signal.request.FromString(out).SerializeToString() == out
    return out


def ref_encode(signal, pb: bytes):
    try:
        msg = signal.request.FromString(pb)
    except DecodeError:
        return REFUSED
    return codec.encode(msg, Format.JSON)


def nat_encode(signal, pb: bytes):
    try:
        return otlpjson.encode(pb, signal.name)
    except MalformedRequest:
        return REFUSED


# --- requests from the descriptors -----------------------------------------------------

_INT_RANGES = {
    FD.TYPE_INT32: (-2**31, 2**31 - 1), FD.TYPE_SINT32: (-2**31, 2**31 - 1), FD.TYPE_SFIXED32: (-2**31, 2**31 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1), FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_INT64: (-2**63, 2**63 - 1), FD.TYPE_SINT64: (-2**63, 2**63 - 1), FD.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1), FD.TYPE_FIXED64: (0, 2**64 - 1),
}
_INT64 = {FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64, FD.TYPE_UINT64, FD.TYPE_FIXED64}


def _ints(lo: int, hi: int):
    edges = [lo, hi, 0, 1, -1, 2**53 + 1, -(2**53) - 1, 2**31, 2**32 - 1]
    return st.one_of(st.sampled_from([e for e in edges if lo <= e <= hi]), st.integers(lo, hi))


_doubles = st.one_of(st.floats(), st.sampled_from([-0.0, 0.0, math.nan, -math.nan, math.inf, -math.inf, 1e16,
                                                   1e-5, 5e-324, 2.0**63]))
_texts = st.one_of(st.text(max_size=8), st.sampled_from(["", "\x00", "é\u2028\U0001f600", '"\\/\x7f', "a\nb"]))


def _scalar(f):
    if f.type == FD.TYPE_BYTES:
        length = ID_LENGTHS.get((f.containing_type.full_name, f.name))
        if length:
            return st.one_of(st.just(b""), st.binary(min_size=length, max_size=length))
        return st.binary(max_size=8)
    if f.type == FD.TYPE_STRING:
        return _texts
    if f.type == FD.TYPE_BOOL:
        return st.booleans()
    if f.type == FD.TYPE_DOUBLE:
        return _doubles
    if f.type == FD.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in f.enum_type.values]), _ints(-2**31, 2**31 - 1))
    return _ints(*_INT_RANGES[f.type])


@st.composite
def messages(draw, desc, depth: int = 0):
    msg = BY_DESC[desc.full_name]()
    real = [o for o in desc.oneofs if not getattr(o, "is_synthetic", False) and len(o.fields) > 1]
    chosen = {draw(st.sampled_from(list(o.fields))).name for o in real if draw(st.booleans())}
    in_real = {f.name for o in real for f in o.fields}
    deep = depth >= 6
    for f in desc.fields:
        if f.name in in_real and f.name not in chosen:
            continue
        if f.name not in chosen and draw(st.integers(0, 9)) < 3:  # most fields set
            continue
        if f.message_type is not None:
            if deep:
                continue
            if f.is_repeated:
                subs = st.lists(messages(f.message_type, depth + 1), min_size=int(depth < 3), max_size=2 if depth < 3 else 1)
                for sub in draw(subs):
                    getattr(msg, f.name).add().CopyFrom(sub)
            else:
                getattr(msg, f.name).CopyFrom(draw(messages(f.message_type, depth + 1)))
                getattr(msg, f.name).SetInParent()
        elif f.is_repeated:
            getattr(msg, f.name).extend(draw(st.lists(_scalar(f), max_size=3)))
        else:
            setattr(msg, f.name, draw(_scalar(f)))
    return msg


def _all_types():
    found, stack = {}, [s.request.DESCRIPTOR for s in ALL]
    while stack:
        d = stack.pop()
        if d.full_name not in found:
            found[d.full_name] = d
            stack.extend(f.message_type for f in d.fields if f.message_type is not None)
    return found


def _class(d):
    from google.protobuf import message_factory
    return message_factory.GetMessageClass(d)


BY_DESC = {name: _class(d) for name, d in _all_types().items()}
requests = st.sampled_from(ALL).flatmap(lambda s: messages(s.request.DESCRIPTOR).map(lambda m: (s, m)))


# --- rewriting JSON the way clients may send it ----------------------------------------


class Obj(list):
    """A JSON object as its (key, value) pairs: repeated keys allowed."""


class Raw(str):
    """A JSON token written as it is (NaN, 1e400, -0, ...)."""


def dump(v) -> str:
    if isinstance(v, Obj):
        return "{" + ",".join((k if isinstance(k, Raw) else json.dumps(k)) + ":" + dump(x) for k, x in v) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dump(x) for x in v) + "]"
    if isinstance(v, Raw):
        return str(v)
    return json.dumps(v)


def respell(tree, desc, draw, unknown: bool):
    """The codec's JSON tree for ``desc``, with members in either spelling, 64-bit
    integers as numbers or strings, enums as names or numbers, unknown members added."""
    out = Obj()
    fields = {f.json_name: f for f in desc.fields}
    for key, value in tree.items():
        f = fields[key]
        name = f.name if draw(st.booleans()) else key
        if f.message_type is not None:
            if f.is_repeated:
                value = [respell(v, f.message_type, draw, unknown) for v in value]
            else:
                value = respell(value, f.message_type, draw, unknown)
        elif f.type in _INT64 and draw(st.booleans()):
            value = [int(v) for v in value] if f.is_repeated else int(value)
        elif f.type == FD.TYPE_ENUM and value in f.enum_type.values_by_number and draw(st.booleans()):
            value = f.enum_type.values_by_number[value].name
        out.append((name, value))
    if unknown and draw(st.booleans()):
        out.insert(draw(st.integers(0, len(out))), ("futureMember" + draw(st.sampled_from(["", "X"])),
                                                    draw(st.sampled_from([1, Raw("NaN"), [Obj()], SECRET, None]))))
    return out


@PROFILE
@given(requests, st.data())
def test_decode_matches_the_codec_in_every_spelling(case, data):
    signal, msg = case
    tree = json.loads(codec.encode(msg, Format.JSON))
    for body in (codec.encode(msg, Format.JSON), dump(respell(tree, signal.request.DESCRIPTOR, data.draw, True)).encode()):
        ref = ref_decode(signal, body)
        assert ref != REFUSED  # (not always the bytes of msg: JSON keeps no NaN payload)
        assert nat_decode(signal, body) == ref


@PROFILE
@given(requests)
def test_encode_matches_the_codec_byte_for_byte(case):
    signal, msg = case
    pb = msg.SerializeToString()
    out = nat_encode(signal, pb)
    assert out == codec.encode(msg, Format.JSON)
    again = codec.decode(signal, out, Format.JSON)
    assert codec.encode(again, Format.JSON) == out  # the same message (JSON keeps no NaN sign)
    assert _ids(again) == _ids(msg) and all(_ids(msg))  # ids byte-exact


def _ids(msg) -> list[bytes]:
    """Every trace and span id of a message, in order."""
    found = []
    for f, value in msg.ListFields():
        if (f.containing_type.full_name, f.name) in ID_LENGTHS:
            found.append(value or b"-")  # an empty id stays empty
        elif f.message_type is not None:
            for sub in (value if f.is_repeated else [value]):
                found.extend(_ids(sub))
    return found


# --- hostile edits ---------------------------------------------------------------------

TRICKY = [Raw(t) for t in (
    "NaN", "Infinity", "-Infinity", "-0", "0", "1", "-1", "1.5", "1.0", "-0.0", "1e400", "-1e400", "1e18", "3.0",
    "1E2", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551615",
    "18446744073709551616", "4294967296", "2147483648", "-2147483649", "1" + "0" * 400, "true", "false",
    "null", "[]", "{}", "[1]", "[null]", "[{}]", '[""]', '["QQ"]', "[1.5]", '{"a":1}', '"\\ud800"',
    '"\\ud83d\\ude00"', '"tr\\u0061ce"', '[{"key":"k","value":{"stringValue":"x"}}]')] + [
    "", "0", "-0", "12", " 12", "\t12\n", "1_2", "1__2", "_1", "1.5", "1.0", "1e3", "1e400", "0x10",
    "\u0661\u0662", "\u300012", "\x1c12", "NaN", "nan", "-nan", " nan", "Infinity", "-Infinity", "inf",
    "-iNfinity", "1_0.5", ".5", "5.", "true", "QUJD", "QQ", "Q", "Q-_/", "QQ==QQ==", "\u00e9", "abc",
    "5b8efff798038103d269b633813fc60c", "EEE19B7EC3C1B174", "00" * 8, "00" * 15, "zz" * 8,
    "SPAN_KIND_SERVER", "STATUS_CODE_ERROR", "SEVERITY_NUMBER_INFO", "AGGREGATION_TEMPORALITY_DELTA",
    "0" * 4301 + "5", "0" * 4301 + "1700000000000000001", "9223372036854775807", "9223372036854775808",
    "18446744073709551615", "4294967295", "2147483648", "a\x00b", SECRET,
]
tricky = st.one_of(st.sampled_from(TRICKY), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(alphabet="0123456789+-_.eE nainfINF\u0661\u3000", max_size=6), st.booleans())


def _slots(node, out):
    """Every (container, index) of an Obj tree: where an edit may go."""
    if isinstance(node, Obj):
        for i, (_, v) in enumerate(node):
            out.append((node, i))
            _slots(v, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            _slots(v, out)
    return out


def _other_spelling(key: str) -> str:
    if "_" in key:
        head, *rest = key.split("_")
        return head + "".join(w.title() for w in rest)
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def edit(tree: Obj, draw, signal) -> None:
    slots = _slots(tree, [])
    container, i = draw(st.sampled_from(slots)) if slots else (tree, None)
    op = draw(st.sampled_from(["replace", "replace", "repeat-key", "respell", "null", "extension", "foreign",
                               "escape-key"]))
    value = draw(tricky)
    if op == "foreign":
        other = draw(st.sampled_from([s for s in ALL if s is not signal]))
        tree.append((draw(st.sampled_from([f.json_name for f in other.request.DESCRIPTOR.fields])), []))
    elif op == "extension":
        tree.append((draw(st.sampled_from(["[a.b]", "[x]", "[]\n", "[a-b]", "[a.b"])), 1))
    elif i is None:
        return
    elif isinstance(container, Obj):
        key, old = container[i]
        if op == "replace":
            container[i] = (key, value)
        elif op == "null":
            container[i] = (key, None)
        elif op == "escape-key":  # the same member, its name spelled with an escape
            container[i] = (Raw('"\\u%04x' % ord(key[0]) + key[1:] + '"') if key else key, old)
        elif op == "repeat-key":
            container.append((key, draw(st.sampled_from([value, old, None]))))
        else:
            container.insert(draw(st.integers(0, len(container))), (_other_spelling(key), draw(st.sampled_from([value, old, None]))))
    elif op in ("replace", "null"):
        container[i] = value if op == "replace" else None


@PROFILE
@given(requests, st.data())
def test_hostile_edits_are_refused_or_read_alike(case, data):
    signal, msg = case
    tree = respell(json.loads(codec.encode(msg, Format.JSON)), signal.request.DESCRIPTOR, data.draw, False)
    for _ in range(data.draw(st.integers(1, 3))):
        edit(tree, data.draw, signal)
    body = dump(tree).encode()
    assert nat_decode(signal, body) == ref_decode(signal, body)


def _seeds():
    seeds = [(BY_NAME[p.stem.split("-")[0]], p.read_bytes()) for p in sorted(CORPUS.glob("*.json"))]
    # json.loads also detects UTF-16 and UTF-32 (with or without a BOM): so must otlpjson.
    signal, body = seeds[-1]
    text = json.dumps(json.loads(body), ensure_ascii=False)
    return seeds + [(signal, text.encode(e)) for e in ("utf-16", "utf-16-be", "utf-32-le", "utf-8-sig")]


SEEDS = _seeds()
edits = st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]), st.integers(0, 1 << 16),
                           st.binary(min_size=1, max_size=4)), min_size=1, max_size=3)


def mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for op, pos, arg in ops:
        pos = pos % (len(buf) + 1)
        if op == "flip" and buf:
            buf[pos % len(buf)] = arg[0]
        elif op == "insert":
            buf[pos:pos] = arg
        elif op == "delete":
            del buf[pos:pos + arg[0] % 16 + 1]
        elif op == "truncate":
            del buf[pos:]
    return bytes(buf)


@pytest.mark.parametrize("signal, body", SEEDS, ids=[f"{s.name}-{i}" for i, (s, _) in enumerate(SEEDS)])
def test_fuzz_corpus_reads_alike(signal, body):
    assert nat_decode(signal, body) == ref_decode(signal, body) != REFUSED


@PROFILE
@given(st.sampled_from(SEEDS), edits)
def test_mutated_corpus_is_refused_or_read_alike(seed, ops):
    signal, body = seed
    body = mutate(body, ops)
    for s in ALL:  # also sent to the wrong endpoint
        assert nat_decode(s, body) == ref_decode(s, body)


@PROFILE
@given(requests, edits)
def test_mutated_protobuf_is_refused_or_encoded_alike(case, ops):
    signal, msg = case
    pb = mutate(msg.SerializeToString(), ops)
    assert nat_encode(signal, pb) == ref_encode(signal, pb)


PARTIAL = st.fixed_dictionaries({}, optional={
    "rejectedSpans": st.one_of(st.integers(-2**63, 2**63 - 1), st.sampled_from(["7", "-1", "1e3", 1.5, None, "x"])),
    "errorMessage": st.one_of(_texts, st.sampled_from([None, 5])),
    "future": st.just([1])})


@PROFILE
@given(st.lists(st.tuples(st.sampled_from(["partialSuccess", "partial_success"]),
                          st.one_of(st.none(), PARTIAL, st.sampled_from(["x", []]))), max_size=3))
def test_responses_merge_both_spellings_as_parsedict_does(members):
    # partial_success is the one singular message OTLP spells two ways: the later merges.
    body = dump(Obj(members)).encode()
    try:
        ref = codec.decode_response(TRACES, body, Format.JSON).SerializeToString()
    except MalformedRequest:
        ref = REFUSED
    try:
        nat = otlpjson.decode_response(body, "traces")
    except MalformedRequest:
        nat = REFUSED
    assert nat == ref


# --- fixed hostile cases -----------------------------------------------------------------


def _dp(kind: str, point: dict) -> dict:
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", kind: {"dataPoints": [point]}}]}]}]}


# One field of each type and shape, as a body with that member set to a placeholder.
FIELD_SLOTS = {
    "string": (TRACES, lambda v: _span(name=v)), "id": (TRACES, lambda v: _span(traceId=v)),
    "enum": (TRACES, lambda v: _span(kind=v)), "fixed64": (TRACES, lambda v: _span(startTimeUnixNano=v)),
    "uint32": (TRACES, lambda v: _span(droppedAttributesCount=v)), "fixed32": (TRACES, lambda v: _span(flags=v)),
    "oneof-string": (TRACES, lambda v: _attr({"stringValue": v})), "bool": (TRACES, lambda v: _attr({"boolValue": v})),
    "int64": (TRACES, lambda v: _attr({"intValue": v})), "double": (TRACES, lambda v: _attr({"doubleValue": v})),
    "bytes": (TRACES, lambda v: _attr({"bytesValue": v})), "int32": (TRACES, lambda v: _attr({"stringValueStrindex": v})),
    "message": (TRACES, lambda v: {"resourceSpans": [{"resource": v}]}),
    "messages": (TRACES, lambda v: _span(attributes=v)),
    "log-enum": (LOGS, lambda v: {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": v}]}]}]}),
    "sint32": (METRICS, lambda v: _dp("exponentialHistogram", {"scale": v})),
    "sfixed64": (METRICS, lambda v: _dp("gauge", {"asInt": v})),
    "optional-double": (METRICS, lambda v: _dp("histogram", {"sum": v})),
    "packed-fixed64": (METRICS, lambda v: _dp("histogram", {"bucketCounts": v})),
    "packed-double": (METRICS, lambda v: _dp("histogram", {"explicitBounds": v})),
    "packed-uint64": (METRICS, lambda v: _dp("exponentialHistogram", {"positive": {"bucketCounts": v}})),
    "repeated-string": (TRACES, lambda v: {"resourceSpans": [{"resource": {"entityRefs": [{"idKeys": v}]}}]}),
}


@pytest.mark.parametrize("slot", FIELD_SLOTS)
def test_every_tricky_value_in_every_field_type_reads_alike(slot):
    signal, make = FIELD_SLOTS[slot]
    placeholder = "\x00PLACEHOLDER\x00"
    template = dump(json.loads(json.dumps(make(placeholder)), object_pairs_hook=Obj))
    accepted = 0
    for value in TRICKY + [[v] for v in TRICKY] + [[TRICKY[3], TRICKY[4]]]:
        body = template.replace(json.dumps(placeholder), dump(value)).encode()
        ref = ref_decode(signal, body)
        assert nat_decode(signal, body) == ref, (slot, value)
        accepted += ref != REFUSED
    assert accepted  # each field takes some of them




@pytest.mark.parametrize("body", [b for f, b in MALFORMED if f is Format.JSON])
def test_the_codec_tests_malformed_json_is_refused_by_both(body):
    assert ref_decode(TRACES, body) == REFUSED
    with pytest.raises(MalformedRequest) as info:
        otlpjson.decode(body, "traces")
    assert "SECRET" not in str(info.value)


WRONG = [tree for tree, _ in WRONG_JSON_TYPES] + [
    _span(name=5), _span(startTimeUnixNano={}), _span(startTimeUnixNano=1.5), _span(droppedAttributesCount=-1),
    _span(flags=SECRET), _span(traceState=[SECRET]), _attr({"intValue": [SECRET]}), _attr({"boolValue": "true"}),
    _attr({"doubleValue": SECRET}), _attr({"stringValue": 5}), _span(traceId=5), _span(traceId="ab" * 15),
    _span(links=[{"spanId": "ab" * 9}]), _attr({"stringValue": "a", "intValue": 1}),
    _attr({"stringValue": "a", "string_value": "b"}), {"resourceLogs": []}, {"resource_metrics": None},
]


@pytest.mark.parametrize("tree", WRONG)
def test_wrong_types_are_refused_by_both_without_content(tree):
    body = json.dumps(tree).encode()
    assert ref_decode(TRACES, body) == REFUSED
    with pytest.raises(MalformedRequest) as info:
        otlpjson.decode(body, "traces")
    assert "SECRET" not in str(info.value)


def test_messages_name_the_problem_and_the_place():
    with pytest.raises(MalformedRequest) as info:
        otlpjson.decode(json.dumps(_span(kind=SECRET)).encode(), "traces")
    assert str(info.value) == ("body is not valid OTLP-JSON: Span.kind must be an enum number"
                               " at resourceSpans[0].scopeSpans[0].spans[0].kind")
    with pytest.raises(MalformedRequest) as info:
        otlpjson.decode(json.dumps({"resourceLogs": []}).encode(), "traces")
    assert str(info.value) == "OTLP-JSON body is an export request for logs, not for this endpoint"


def _kvlists(depth: int, wrapper: str = "kvlistValue") -> bytes:
    value = '{"stringValue":"x"}'
    for _ in range(depth):
        value = '{"kvlistValue":{"values":[{"key":"k","value":%s}]}}' % value
    return ('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":%s}]}]}]}' % value).encode()


@pytest.mark.parametrize("depth", [29, 30, 31, 32])  # 100 message levels are read, 101 are not
def test_message_depth_limit_is_the_codecs(depth):
    body = _kvlists(depth)
    assert nat_decode(LOGS, body) == ref_decode(LOGS, body)


@pytest.mark.parametrize("depth, refused", [(150, False), (3000, True)])
def test_deep_unknown_members(depth, refused):
    body = b'{"future":' + b"[" * depth + b"]" * depth + b',"resourceSpans":[]}'
    assert (nat_decode(TRACES, body) == REFUSED) is refused
    assert nat_decode(TRACES, body) == ref_decode(TRACES, body)
    assert ref_decode(TRACES, _deep_json(3000)) == nat_decode(TRACES, _deep_json(3000)) == REFUSED


@pytest.mark.parametrize("depth", [31, 32, 33, 34])  # upb reads 100 submessages below the root
def test_protobuf_depth_limit_is_upbs(depth):
    msg = LOGS.request()
    value = msg.resource_logs.add().scope_logs.add().log_records.add().body
    for _ in range(depth):
        value = value.kvlist_value.values.add(key="k").value
    value.string_value = "x"
    pb = msg.SerializeToString()
    assert nat_encode(LOGS, pb) == ref_encode(LOGS, pb)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"])
def test_json_in_any_encoding_json_loads_detects(encoding):
    body = json.dumps(_span(name="é\U0001f600"), ensure_ascii=False).encode(encoding)
    assert nat_decode(TRACES, body) == ref_decode(TRACES, body) != REFUSED


def test_surrogates_and_big_numbers_are_read_as_python_reads_them():
    for tree in (_attr({"stringValue": "\ud83d"}), _attr({"bytesValue": "\udc00"}), {"future\ud800": 1},
                 _attr({"doubleValue": 10**400}), _attr({"intValue": "0" * 5000 + "7"})):
        body = json.dumps(tree).encode()
        assert nat_decode(TRACES, body) == ref_decode(TRACES, body)
    raw = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\xed\xa0\xbd\xed\xb8\x80"}]}]}]}'
    assert nat_decode(TRACES, raw) == ref_decode(TRACES, raw) == REFUSED  # surrogatepass, then not encodable
