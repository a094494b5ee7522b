"""Concurrency, the fast variant of `make concurrency-test` (scripts/mixed_load.py): 16
clients mixing stores, batch stores, recalls, searches, gets, updates, forgets and batch
recalls against one server. No 5xx, no "database is locked", no unexpected 4xx, a clean
shutdown with nothing logged as an error."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import mixed_load  # noqa: E402
from harness import Server, table_counts  # noqa: E402


def test_sixteen_clients_mixing_every_operation(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", env={"DAKERA_LOG_LEVEL": "warning"}).start()
    try:
        mixed_load.preload(server.port, 50)
        stats = mixed_load.run(server.port, clients=16, seconds=8, keep=50, seed=7)
    finally:
        code = server.stop()
    assert stats.failures == []
    assert set(stats.status) == {200}
    for op in ("store", "batch_store", "recall", "update", "forget"):
        assert stats.ops[op] > 0, stats.ops
    log = server.log()
    assert "database is locked" not in log
    assert " ERROR " not in log, log[-3000:]
    assert code == 0
    counts = table_counts(tmp_path / "data")
    assert len(set(counts.values())) == 1, counts
