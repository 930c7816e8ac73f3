"""Bounded fuzzing of decode + scrub for all three signals and both encodings (and gzip),
run in CI: hypothesis mutates the seed corpus (flips, inserts, deletes, truncations,
splices, compression) and every input must satisfy fuzz_target's invariants: no crash,
no planted sensitive key or value in what would be forwarded.

FUZZ_EXAMPLES sets the number of inputs per test (CI default below); `make fuzz` runs the
coverage-guided atheris target for longer.
"""

from __future__ import annotations

import gzip
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_target
from fuzz_target import Format, Leak, check_one

from redact_proxy.policy.compile import compile_policy
from redact_proxy.policy.schema import parse

SEEDS = fuzz_target.seeds()
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

edit = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("splice"), st.integers(0, 1 << 16), st.integers(0, len(SEEDS) - 1)),
)


def mutate(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for op, pos, arg in edits:
        pos = pos % (len(buf) + 1)
        if op == "flip" and buf:
            buf[pos % len(buf)] = arg
        elif op == "insert":
            buf[pos:pos] = arg
        elif op == "delete":
            del buf[pos:pos + arg]
        elif op == "truncate":
            del buf[pos:]
        elif op == "splice":
            other = SEEDS[arg][2]
            buf[pos:] = other[pos % (len(other) + 1):]
    return bytes(buf)


@pytest.mark.parametrize("index", range(len(SEEDS)), ids=[f"{s}-{f.name.lower()}" for s, f, _ in SEEDS])
def test_mutated_seeds_never_crash_or_leak(index):
    signal, fmt, seed = SEEDS[index]

    @FUZZ
    @given(edits=st.lists(edit, max_size=6), compress=st.booleans())
    def run(edits, compress):
        data = mutate(seed, edits)
        if compress:
            check_one(gzip.compress(data), signal, fmt, "gzip")
        else:
            check_one(data, signal, fmt)

    run()


@FUZZ
@given(data=st.binary(max_size=512), signal=st.sampled_from(["traces", "metrics", "logs"]),
       fmt=st.sampled_from([Format.PROTOBUF, Format.JSON]),
       encoding=st.sampled_from([None, "gzip", "deflate", "zstd"]))
def test_random_bytes_never_crash(data, signal, fmt, encoding):
    check_one(data, signal, fmt, encoding)


def test_unmutated_seeds_are_accepted():
    # The corpus must decode, or the mutation tests would only exercise refusals.
    assert all(check_one(data, signal, fmt) for signal, fmt, data in SEEDS)


def test_the_invariant_catches_a_leak(monkeypatch):
    """The checker can fail: with a policy that redacts nothing, every seed leaks."""
    monkeypatch.setattr(fuzz_target, "POLICY", compile_policy(parse(
        b"version: 1\nrules:\n  - {name: nothing, action: delete, keys: [no.such.key]}\n", "x.yaml"), {}))
    for signal, fmt, data in SEEDS:
        with pytest.raises(Leak):
            check_one(data, signal, fmt)
