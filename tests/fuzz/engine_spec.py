"""The native engine's build input (spec) for the fuzz policy, as JSON: what
native/fuzz/spec.json holds for `cargo fuzz run engine`; the audit walk's table
(native/fuzz/audit.json, the same target audits each body too); and its seed inputs (a
signal byte, then a body of the fuzz and leak corpora).

    python tests/fuzz/engine_spec.py > native/fuzz/spec.json
    python tests/fuzz/engine_spec.py --audit > native/fuzz/audit.json
    python tests/fuzz/engine_spec.py --seeds DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fuzz_target import ENGINE  # noqa: E402


def spec_json() -> str:
    return json.dumps(ENGINE.spec, sort_keys=True) + "\n"


def audit_json() -> str:
    """``_native.Audit``'s arguments (audit/native.py builds the same): layout, tables,
    spaces, detectors."""
    from redact_proxy.audit.native import _TABLE_SPEC
    from redact_proxy.audit.shapes import DETECTOR_KINDS
    from redact_proxy.audit.table import SPACE_LIST
    from redact_proxy.engine import _layout

    return json.dumps([list(_layout()), _TABLE_SPEC, len(SPACE_LIST), list(DETECTOR_KINDS)]) + "\n"


def write_seeds(out: Path) -> int:
    """One seed per corpus body: the fuzz target reads the first byte as the signal."""
    root = Path(__file__).resolve().parents[2]
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, signal in enumerate(("traces", "metrics", "logs")):
        for path in sorted((root / "tests/fuzz/corpus").glob(f"{signal}*.pb")) + sorted(
                (root / "tests/testdata/leak-corpus").glob(f"*.{signal}.pb")):
            (out / f"{signal}-{path.stem}").write_bytes(bytes([i]) + path.read_bytes())
            n += 1
    return n


if __name__ == "__main__":
    if sys.argv[1:2] == ["--seeds"]:
        print(f"{write_seeds(Path(sys.argv[2]))} seeds in {sys.argv[2]}", file=sys.stderr)
    elif sys.argv[1:2] == ["--audit"]:
        sys.stdout.write(audit_json())
    else:
        sys.stdout.write(spec_json())
