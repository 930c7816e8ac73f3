"""receivers/grpc.py in process: the receiver serving on a loopback port in the test's
own event loop, called with grpc.aio, in front of the real Pipeline (upstream: a
recorder). OK with the signal's response; INVALID_ARGUMENT for a malformed message;
UNAUTHENTICATED without the token; UNAVAILABLE with RetryInfo past the in-flight budget."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest, ExportLogsServiceResponse,
)

from helpers import inproc
from redact_proxy.receivers.grpc import GrpcReceiver
from redact_proxy.signals import BY_NAME

LOGS = BY_NAME["logs"]


def _body() -> bytes:
    req = ExportLogsServiceRequest()
    record = req.resource_logs.add().scope_logs.add().log_records.add(severity_text="INFO")
    for key in ("secret", "plain"):
        record.attributes.add(key=key).value.string_value = "v"
    return req.SerializeToString()


@pytest.fixture
async def served(request):
    """(call, recorder, pipeline): ``call(body, metadata=())`` exports logs."""
    port = inproc.free_port()
    settings, rec, pipe = inproc.receiver_parts(request.node, grpc_listen=f"127.0.0.1:{port}")
    receiver = GrpcReceiver(settings, pipe)
    await receiver.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    method = channel.unary_unary(LOGS.grpc_method, request_serializer=None, response_deserializer=None)

    async def call(body: bytes, metadata=()):
        return await method(body, metadata=metadata, timeout=10)

    yield call, rec, pipe
    await channel.close()
    await receiver.stop(0)
    pipe.close()


def _status(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    [details] = [v for k, v in err.trailing_metadata() if k == "grpc-status-details-bin"]
    return status_pb2.Status.FromString(details)


async def test_an_export_is_scrubbed_and_answered(served):
    call, rec, _ = served
    ExportLogsServiceResponse.FromString(await call(_body()))
    [batch] = rec.batches
    assert [kv.key for kv in batch.message.resource_logs[0].scope_logs[0].log_records[0].attributes] == ["plain"]


async def test_a_malformed_message_is_invalid_argument(served):
    call, rec, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(b"\x0a\xff\xffsecret-bytes")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "secret-bytes" not in (info.value.details() or "") and rec.batches == []


@pytest.mark.receiver_options(auth_token="let-me-in")
async def test_without_the_token_the_call_is_unauthenticated(served):
    call, rec, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(_body())
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await call(_body(), metadata=(("authorization", "Bearer let-me-in"),))
    assert len(rec.batches) == 1


@pytest.mark.receiver_options(max_inflight="1")
async def test_past_the_inflight_budget_the_call_is_unavailable_with_a_retry_hint(served):
    call, rec, pipe = served
    with pipe.admission(1), pytest.raises(grpc.aio.AioRpcError) as info:
        await call(_body())
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    [detail] = _status(info.value).details
    retry = error_details_pb2.RetryInfo()
    assert detail.Unpack(retry) and retry.retry_delay.seconds >= 1
    assert rec.batches == []
