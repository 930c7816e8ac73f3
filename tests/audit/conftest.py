"""tests/audit: the inputs in tests/testdata/audit and the integration helpers (a real
``serve --audit`` subprocess) of tests/integration."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "integration"))
