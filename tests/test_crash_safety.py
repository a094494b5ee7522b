"""Crash safety, the fast variant of `make crash-test` (scripts/crash_test.py): concurrent
writers, kill -9 at random moments, restarts on the same data dir. Every acknowledged write
survives whole, in-flight writes are all-or-nothing, the tables and the vector index agree."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import crash_test  # noqa: E402


def test_kill_9_during_concurrent_writes(tmp_path: Path) -> None:
    report, ledger = crash_test.run(tmp_path / "data", rounds=3, writers=4, min_s=0.4,
                                    max_s=1.5, seed=20261125, log=lambda m: None,
                                    recall_sample=15)
    assert report.failures == []
    assert report.rounds == 3
    assert sum(ledger.acked.values()) > 50  # the writers did real work before each kill
    assert report.checked_present > 0 and report.recalled > 0
