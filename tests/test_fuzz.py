"""Fuzzing, the fast variant of `make fuzz` (scripts/fuzz.py): schemathesis cases for every
operation of the OpenAPI schema the server publishes, valid and invalid, plus malformed
bodies no schema describes. No 5xx, every error in the envelope, nothing in the server log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import fuzz  # noqa: E402


@pytest.mark.timeout(900)  # about 40 operations: over 300 s on a busy machine
def test_fuzz_every_published_operation(tmp_path: Path) -> None:
    result, operations, _ = fuzz.run(tmp_path / "data", examples=6, seed=20261125)
    assert result.failures == []
    assert len(operations) >= 12  # every route of the schema, DELETE with a body included
    assert "DELETE /v1/memories/forget/batch" in operations
    streams = {"GET /v1/events/stream", "GET /v1/namespaces/{namespace}/events",
               "GET /ops/events"}
    assert streams <= set(operations)
    for label in set(operations) - streams:
        assert result.cases[label] > 0, label
