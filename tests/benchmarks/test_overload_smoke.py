"""benchmarks/overload.py keeps working: a seconds-long run on a tiny workload.

No figure is asserted (they depend on the machine); what must hold on any machine is that
the run completes, the overload was refused as overload (with a retry hint), and the OTel
SDK's own retries delivered every span once the load dropped: delivered == sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "overload.py"


def test_overload_benchmark_smoke_run_delivers_everything():
    result = subprocess.run([sys.executable, str(BENCHMARK), "--smoke", "--json"],
                            capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    report = json.loads(result.stdout)
    overload = report["overload"]
    assert overload["requests"] > 0 and overload["accepted"] > 0
    assert overload["refused"] > 0, "ten times the capacity was offered and nothing was refused"
    assert overload["refusals_without_retry_hint"] == 0, "a refusal without Retry-After / RetryInfo"
    assert overload["peak_rss_bytes"] > 0
    for transport, sdk in report["recovery"]["sdk"].items():
        assert sdk["sent"] > 0, transport
        assert sdk["received"] == sdk["sent"], f"{transport}: the SDK's spans were lost or duplicated"
    assert report["recovery"]["delivered_equals_sent"]
    assert report["proxy_exit_code"] == 0
