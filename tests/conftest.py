"""Suite-wide: which tests form the fast tier (``make test-fast``, ``pytest -m fast``).

Strategy: one table, here, rather than a mark in each file: the tier is a choice about
the suite (what runs in seconds, in process, with no subprocess, no real stack and no long
hypothesis search), so it is made in one place and reviewed as one. A path names a test
file or a directory of them, relative to this folder. The tier is a subset: the full
suite still runs every one of these."""

from __future__ import annotations

from pathlib import Path

import pytest

FAST = (
    "test_pipeline.py",
    "receivers",
    "test_errors.py",
    "test_telemetry.py",
    "test_import_cycles.py",
    "test_codec.py",
    "test_settings.py",
    "test_validate.py",
    "policy/test_compile.py",
    "policy/test_collector.py",
    "scrub/test_attributes.py",
    "scrub/test_traces.py",
    "scrub/test_metrics.py",
    "scrub/test_logs.py",
    "scrub/test_fields.py",
    "scrub/test_value_actions.py",
)

_HERE = Path(__file__).parent
_FAST = tuple(_HERE / p for p in FAST)


def _fast(path: Path) -> bool:
    return any(path == p or p in path.parents for p in _FAST)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m fast``, the rest of the suite is not even imported (its collection alone,
    integration helpers and all, took as long as the tier)."""
    if config.getoption("markexpr") != "fast" or collection_path == _HERE:
        return None
    if collection_path.is_dir():
        return not (_fast(collection_path) or any(collection_path in p.parents for p in _FAST)) or None
    return (collection_path.suffix == ".py" and not _fast(collection_path)) or None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _fast(Path(item.path)):
            item.add_marker(pytest.mark.fast)
