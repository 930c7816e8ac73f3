"""receivers/http.py in process: the receiver serving on a loopback port in the test's
own event loop (its own runner, as `serve` starts it), called with aiohttp, in front of
the real Pipeline (upstream: a recorder). Each answer the
receiver decides itself: 200 with the signal's response in the request's format, 415,
401 before anything else, 400 with a google.rpc.Status, 413, and 503 with Retry-After
once the in-flight budget is spent."""

from __future__ import annotations

import gzip

import pytest
import aiohttp
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse,
)

from helpers import inproc
from redact_proxy.receivers.http import HttpReceiver

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _body() -> bytes:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="op", trace_id=b"\x01" * 16,
                                                                 span_id=b"\x02" * 8)
    for key in ("secret", "plain"):
        span.attributes.add(key=key).value.string_value = "v"
    return req.SerializeToString()


@pytest.fixture
async def served(request):
    """(client, recorder, pipeline) for a receiver with the settings the test's
    ``receiver_options`` mark gives (option dest -> text)."""
    port = inproc.free_port()
    settings, rec, pipe = inproc.receiver_parts(request.node, http_listen=f"127.0.0.1:{port}")
    receiver = HttpReceiver(settings, pipe)
    await receiver.start()
    # The client must not inflate or re-encode anything: what it posts is what arrives.
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", auto_decompress=False) as client:
        yield client, rec, pipe
    await receiver.stop(0)
    pipe.close()


async def test_a_protobuf_export_is_scrubbed_and_answered_in_protobuf(served):
    client, rec, _ = served
    answer = await client.post("/v1/traces", data=_body(), headers=PROTOBUF)
    assert answer.status == 200 and answer.content_type == "application/x-protobuf"
    ExportTraceServiceResponse.FromString(await answer.read())
    [batch] = rec.batches
    assert [kv.key for kv in batch.message.resource_spans[0].scope_spans[0].spans[0].attributes] == ["plain"]


async def test_a_gzip_body_is_inflated_once(served):
    client, rec, _ = served
    answer = await client.post("/v1/traces", data=gzip.compress(_body()),
                               headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert answer.status == 200 and len(rec.batches) == 1


async def test_a_json_client_is_answered_in_json(served):
    client, rec, _ = served
    answer = await client.post("/v1/traces", data=b'{"resourceSpans": []}',
                               headers={"Content-Type": "application/json"})
    assert answer.status == 200 and answer.content_type == "application/json"
    assert rec.batches == []  # nothing to forward


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "text/plain"}, 415),
    ({**PROTOBUF, "Content-Encoding": "br"}, 415),
])
async def test_what_the_receiver_does_not_speak_is_415(served, headers, status):
    client, rec, _ = served
    answer = await client.post("/v1/traces", data=_body(), headers=headers)
    assert answer.status == status and rec.batches == []
    status_pb2.Status.FromString(await answer.read())


async def test_a_malformed_body_is_400_with_a_status_that_quotes_nothing(served):
    client, rec, _ = served
    answer = await client.post("/v1/traces", data=b"\x0a\xff\xffsecret-bytes", headers=PROTOBUF)
    assert answer.status == 400
    status = status_pb2.Status.FromString(await answer.read())
    assert "secret-bytes" not in status.message and rec.batches == []


@pytest.mark.receiver_options(max_request_bytes="1024")
async def test_a_body_over_the_limit_is_413_unread(served):
    client, rec, _ = served
    answer = await client.post("/v1/traces", data=b"\x00" * 4096, headers=PROTOBUF)
    assert answer.status == 413 and rec.batches == []


@pytest.mark.receiver_options(auth_token="let-me-in")
async def test_without_the_token_a_client_learns_nothing_else(served):
    client, rec, _ = served
    # Wrong media type too: 401 comes first.
    answer = await client.post("/v1/traces", data=_body(), headers={"Content-Type": "text/plain"})
    assert answer.status == 401
    answer = await client.post("/v1/traces", data=_body(), headers={**PROTOBUF, "Authorization": "Bearer let-me-in"})
    assert answer.status == 200 and len(rec.batches) == 1


@pytest.mark.receiver_options(max_inflight="1")
async def test_past_the_inflight_budget_the_answer_is_503_with_retry_after(served):
    client, rec, pipe = served
    with pipe.admission(1):  # the one request the budget allows is in progress
        answer = await client.post("/v1/traces", data=_body(), headers=PROTOBUF)
    assert answer.status == 503 and answer.headers["Retry-After"].isdigit()
    assert rec.batches == []
    assert inproc.sample(pipe.telemetry, "redact_proxy_requests_total", signal="traces", transport="http",
                         code="503") == 1
    answer = await client.post("/v1/traces", data=_body(), headers=PROTOBUF)
    assert answer.status == 200
