"""Coverage-guided fuzzing of the same target with atheris (libFuzzer), for longer runs
than CI affords:

    python tests/fuzz/atheris_pipeline.py -max_total_time=300 .cache/fuzz-corpus    (make fuzz)

The first input byte picks the signal, format and compression; the rest is the body. The
working corpus directory (outside git) is seeded from tests/fuzz/corpus with the right
first byte; libFuzzer adds the inputs that reach new code to it. A crash or a leak stops
the run with the input saved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["redact_proxy"]):
    import fuzz_target

SIGNALS = ("traces", "metrics", "logs")
FORMATS = (fuzz_target.Format.PROTOBUF, fuzz_target.Format.JSON)
ENCODINGS = (None, "gzip", "deflate", "zstd")


def one_input(data: bytes) -> None:
    if not data:
        return
    mode = data[0]
    fuzz_target.check_one(data[1:], SIGNALS[mode % 3], FORMATS[(mode // 3) % 2], ENCODINGS[(mode // 6) % 4])


def seed_work_corpus(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for signal, fmt, data in fuzz_target.seeds():
        mode = SIGNALS.index(signal) + 3 * FORMATS.index(fmt)
        (directory / f"seed-{signal}-{fmt.name.lower()}").write_bytes(bytes([mode]) + data)


if __name__ == "__main__":
    dirs = [a for a in sys.argv[1:] if not a.startswith("-")]
    if dirs:
        seed_work_corpus(Path(dirs[0]))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
