"""errors.py: the exception tree and the one error -> answer table, read along the class
hierarchy; the tree drawn in the module's docstring is the tree the code has. That every
request error has an answer, and which retry, is tests/test_errors.py's."""

from __future__ import annotations

import re

import grpc
import pytest

from redact_proxy import errors
from redact_proxy.errors import (
    OUTCOMES, ClientGone, InternalError, Overloaded, ProxyError, QueueFull, ReadTimeout, RequestError,
    StartupError, UpstreamError,
)
from redact_proxy.forward.segments import QueueInUse


def _tree(cls: type) -> set[type]:
    out = {cls}
    for sub in cls.__subclasses__():
        out |= _tree(sub)
    return out


def test_the_docstring_draws_every_class_of_the_tree():
    drawn = set(re.findall(r"[├└]── (\w+)", errors.__doc__)) | {"ProxyError"}
    assert drawn == {c.__name__ for c in _tree(ProxyError) if c.__module__.startswith("redact_proxy")}


def test_a_subclass_without_a_row_answers_as_its_parent():
    class Cramped(QueueFull):
        pass

    class Lost(UpstreamError):
        pass

    assert Cramped("full").outcome() == OUTCOMES[Overloaded]
    assert Lost("?").outcome() == OUTCOMES[UpstreamError]
    assert Lost("?").outcome().http_status != 500


@pytest.mark.parametrize("exc, code, status", [
    (InternalError("bug"), grpc.StatusCode.INTERNAL, 500),
    (ClientGone("gone"), grpc.StatusCode.CANCELLED, 499),
    (ReadTimeout("late"), grpc.StatusCode.DEADLINE_EXCEEDED, 408),
])
def test_the_receivers_own_endings_are_rows_of_the_table(exc, code, status):
    outcome = exc.outcome()
    assert (outcome.grpc_code, outcome.http_status, outcome.retryable) == (code, status, False)


def test_start_up_errors_are_one_branch():
    assert issubclass(QueueInUse, StartupError) and not issubclass(StartupError, RequestError)
    taken = StartupError.from_os(OSError(98, "error while attempting to bind on address ('127.0.0.1', 1): "
                                             "address already in use"))
    assert str(taken) == "error while attempting to bind on address ('127.0.0.1', 1): address already in use (OSError)"
    missing = StartupError.from_os(FileNotFoundError(2, "No such file or directory", "/x/out.jsonl"))
    assert str(missing) == "No such file or directory: /x/out.jsonl (FileNotFoundError)"
