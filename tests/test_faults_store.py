"""Faults under the service, on real filesystems: a full disk fails writes cleanly and the
writer keeps serving, index saves keep their previous file, damaged index files are rebuilt
in the background while exact search serves, a damaged database is refused at start and
reported by `dakera check`. (The live server's side: tests/test_faults.py.)"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from app.cli import main
from app.errors import DataDirError, StorageFullError
from app.files import sha256_of as file_sha256
from app.index import ExactIndex
from app.index.hnsw import index_file
from app.models import MemoryFilter
from app.service import Service
from tests.conftest import MakeService, make_settings
from tests.faultfs import fill, free_bytes, small_tmpfs

TEXT = "the note number {} about a {} kept in drawer {} " + "words " * 60


def store_until_full(service: Service, agent: str = "a") -> tuple[list[str], Exception]:
    """Store batches until one fails; the ids acknowledged before, and the error."""
    acked: list[str] = []
    for batch in range(10_000):
        items = [{"content": TEXT.format(batch * 20 + i, "thing", i)} for i in range(20)]
        try:
            result = service.memories.store_batch(agent, items)
        except Exception as exc:
            return acked, exc
        acked += [m.id for m in result.memories]
    raise AssertionError("the disk never filled")


@pytest.fixture
def disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    with small_tmpfs(tmp_path / "disk", "12m") as mnt:
        yield mnt


def test_full_disk_fails_the_write_and_the_writer_goes_on(
        make_service: MakeService, disk: Path) -> None:
    service = make_service(data_dir=disk / "data")
    service.memories.store("a", "written before the disk filled")
    filler = fill(disk, leave=600_000)
    acked, error = store_until_full(service)
    assert isinstance(error, StorageFullError)
    assert error.status == 507 and error.code == "STORAGE_FULL"
    assert str(disk / "data") in error.message and "full" in error.message
    store = service.parts().store
    assert store.write_fault() is not None and store.write_fault().reason == "disk full"
    # The writer is alive: each later write is answered (refused), never left waiting.
    for _ in range(3):
        with pytest.raises(StorageFullError):
            service.memories.store("a", "refused while full")
    assert service.parts().store.writer.alive()
    # Reads go on.
    assert service.recall.recall("a", "note number 3 thing", top_k=3).hits
    assert service.readiness_checks()["storage"] == {"status": "degraded",
                                                     "reason": "writes fail: disk full"}
    # Space comes back: the next write succeeds, no restart.
    filler.unlink()
    kept = service.memories.store("a", "written after space came back")
    assert store.write_fault() is None
    assert service.readiness_checks()["storage"] == {"status": "ok"}
    for memory_id in [*acked, kept.memory.id]:
        assert service.memories.get(memory_id, "a").id == memory_id


def test_the_storage_probe_clears_the_fault_without_a_client_write(
        make_service: MakeService, disk: Path) -> None:
    service = make_service(data_dir=disk / "data")
    filler = fill(disk, leave=600_000)
    store_until_full(service)
    service.probe_storage()  # still full: fails, the fault stays
    assert service.parts().store.write_fault() is not None
    filler.unlink()
    service.probe_storage()
    assert service.parts().store.write_fault() is None


def test_an_index_save_on_a_full_disk_keeps_the_previous_file(
        make_service: MakeService, disk: Path) -> None:
    service = make_service(data_dir=disk / "data")
    service.memories.store_batch("a", [{"content": TEXT.format(i, "cup", i)} for i in range(50)])
    assert service.save_indexes() == 1
    saved = index_file(service.settings.index_dir, "a")
    before = file_sha256(saved)
    service.memories.store_batch("a", [{"content": TEXT.format(i, "mug", i)}
                                       for i in range(50, 400)])
    filler = fill(disk, leave=0)
    assert free_bytes(disk) < 64 << 10
    assert service.save_indexes() == 0
    assert file_sha256(saved) == before  # the previous good file, untouched
    assert sorted(p.name for p in saved.parent.iterdir() if p.suffix == ".tmp") == []
    filler.unlink()
    assert service.save_indexes() == 1  # still changed: saved once there is room
    assert file_sha256(saved) != before


def test_close_is_bounded_while_the_disk_is_full(make_service: MakeService,
                                                 disk: Path) -> None:
    service = make_service(data_dir=disk / "data")
    fill(disk, leave=600_000)
    store_until_full(service)
    futures = [service.parts().store.submit(lambda tx: tx.meta.set("x", 1)) for _ in range(5)]
    service.close()
    for future in futures:  # every pending write was answered
        assert future.done()


def _saved_agent(make_service: MakeService, data_dir: Path) -> tuple[Path, list[str]]:
    service = make_service(data_dir=data_dir)
    texts = [TEXT.format(i, w, i % 7) for i, w in enumerate(["stapler", "torch", "key"] * 40)]
    service.memories.store_batch("a", [{"content": t} for t in texts])
    service.close()  # saves the index
    return index_file(service.settings.index_dir, "a"), texts


@pytest.mark.parametrize("damage", ["deleted", "garbled"])
def test_a_damaged_index_is_rebuilt_in_the_background(
        make_service: MakeService, tmp_path: Path, damage: str) -> None:
    path, texts = _saved_agent(make_service, tmp_path / "data")
    if damage == "deleted":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2: len(data) // 2 + 4096] = b"\xff" * 4096
        path.write_bytes(bytes(data))
    service = make_service(data_dir=tmp_path / "data")
    hits = service.recall.recall("a", texts[5], top_k=1).hits  # exact search or the rebuilt
    assert hits and hits[0].memory.content == texts[5]
    indexes = service.parts().indexes
    rebuilder = indexes._rebuilder
    assert rebuilder is not None
    rebuilder.join(60)
    assert indexes.rebuilding() == []
    hits = service.recall.recall("a", texts[7], top_k=1).hits
    assert hits[0].memory.content == texts[7]
    assert len(indexes.get("a")) == len(texts)


def test_exact_search_ranks_like_brute_force(make_service: MakeService) -> None:
    service = make_service()
    texts = [TEXT.format(i, w, i % 5) for i, w in enumerate(["pen", "box", "lamp"] * 30)]
    service.memories.store_batch("a", [{"content": t} for t in texts])
    store = service.parts().store
    exact = ExactIndex("a", store.vectors)
    query = service.parts().embedder.embed([texts[4]], query=True)[0]
    labels, sims = exact.search(query, 10)
    all_labels, vectors = next(store.vectors.of_agent("a"))
    brute = np.sort(vectors @ query)[::-1][:10]
    assert np.allclose(sims, brute)  # the same best scores, best first (ties in any order)
    found, stored = exact.vectors(labels.tolist())
    by_label = dict(zip(labels.tolist(), sims.tolist(), strict=True))
    assert np.allclose(stored @ query, [by_label[x] for x in found])
    assert len(exact) == len(texts) == len(all_labels)
    # a selective filter's exact search, scored in SQL by sqlite-vec, agrees too
    rowids, cosines = store.memories.nearest_filtered("a", MemoryFilter(),
                                                      2**40, query, 10)
    assert np.allclose(cosines, brute, atol=1e-5)
    by_rowid = dict(zip(all_labels.tolist(), (vectors @ query).tolist(), strict=True))
    assert np.allclose([by_rowid[r] for r in rowids.tolist()], cosines, atol=1e-5)


def test_writes_during_a_background_rebuild_reach_the_rebuilt_index(
        make_service: MakeService, tmp_path: Path) -> None:
    path, texts = _saved_agent(make_service, tmp_path / "data")
    path.unlink()
    service = make_service(data_dir=tmp_path / "data")
    added = [service.memories.store("a", f"written during the rebuild {i}").memory
             for i in range(5)]
    rebuilder = service.parts().indexes._rebuilder
    assert rebuilder is not None
    rebuilder.join(60)
    index = service.parts().indexes.get("a")
    assert len(index) == len(texts) + len(added)
    found, _ = index.vectors([m.rowid for m in added])
    assert sorted(found) == sorted(m.rowid for m in added)


def _garble_database(data_dir: Path) -> None:
    db = data_dir / "dakera.db"
    data = bytearray(db.read_bytes())
    page = 4096
    for start in range(2 * page, len(data) - page, 3 * page):  # keep the header page
        data[start + 8: start + page] = bytes(range(256)) * ((page - 8) // 256) + b"\x00" * (
            (page - 8) % 256)
    db.write_bytes(bytes(data))


def test_a_damaged_database_refuses_to_start_and_check_reports_it(
        make_service: MakeService, tmp_path: Path) -> None:
    _saved_agent(make_service, tmp_path / "data")
    runner = CliRunner()
    env = {"DAKERA_DATA_DIR": str(tmp_path / "data"), "DAKERA_EMBEDDING_MODEL": "hash"}
    result = runner.invoke(main, ["check"], env=env)
    assert result.exit_code == 0, result.output
    assert "everything is sound" in result.output
    _garble_database(tmp_path / "data")
    service = Service(make_settings(tmp_path / "data", embedding_model="hash"))
    with pytest.raises(DataDirError, match="damaged") as refused:
        service.start(wait=True)
    assert "dakera check" in str(refused.value) and "restore a backup" in str(refused.value)
    service.close()
    result = runner.invoke(main, ["check"], env=env)
    assert result.exit_code == 1, result.output
    assert "PROBLEM  database" in result.output and "restore a backup" in result.output


def test_check_reports_a_damaged_index_and_an_altered_model(
        make_service: MakeService, tmp_path: Path) -> None:
    import shutil

    from tests.conftest import ROOT

    path, _ = _saved_agent(make_service, tmp_path / "data")
    path.write_bytes(path.read_bytes()[:-100])
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "all-minilm-l6-v2", models / "all-minilm-l6-v2")
    tokenizer = models / "all-minilm-l6-v2" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace("[UNK]", "[UNX]", 1))
    env = {"DAKERA_DATA_DIR": str(tmp_path / "data"), "DAKERA_MODELS_DIR": str(models)}
    result = CliRunner().invoke(main, ["check"], env=env)
    assert result.exit_code == 1, result.output
    assert "PROBLEM  index: agent a:" in result.output and "checksum" in result.output
    assert f"the model file {tokenizer} is altered" in result.output
    assert "PROBLEM  database" not in result.output


def test_an_altered_model_file_refuses_to_start_naming_it(tmp_path: Path) -> None:
    import json
    import shutil

    from tests.conftest import ROOT

    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "all-minilm-l6-v2", models / "all-minilm-l6-v2")
    tokenizer = models / "all-minilm-l6-v2" / "tokenizer.json"
    expected = json.loads((tokenizer.parent / "manifest.json").read_text())["files"][
        "tokenizer.json"]
    tokenizer.write_text(tokenizer.read_text().replace("[UNK]", "[UNX]", 1))
    service = Service(make_settings(tmp_path / "data", models_dir=str(models)))
    service.start()
    service.wait_ready_quietly()
    message = str(service.failure)
    assert str(tokenizer) in message and expected in message and "altered" in message
    service.close()


def test_the_writer_answers_every_job_when_transactions_fail(
        make_service: MakeService, disk: Path) -> None:
    """Many threads writing into a filling disk: every call returns (stored or refused)."""
    service = make_service(data_dir=disk / "data")
    fill(disk, leave=900_000)
    outcomes: list[str] = []

    def writer(n: int) -> None:
        for i in range(40):
            try:
                service.memories.store("a", TEXT.format(n * 100 + i, "cable", i))
                outcomes.append("stored")
            except StorageFullError:
                outcomes.append("full")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == 160 and "full" in outcomes


def test_a_stalled_writer_fails_readiness_and_close_is_bounded(
        make_service: MakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction that never ends (a hung disk): readiness says so, and close() still
    returns, failing the writes queued behind it."""
    import app.store.sqlite as sqlite_backend

    service = make_service()
    store = service.parts().store
    release, started = threading.Event(), threading.Event()

    def hangs(tx):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(60)

    stuck = store.submit(hangs)
    assert started.wait(30)
    queued = [store.submit(lambda tx: tx.meta.set("x", 1)) for _ in range(3)]
    monkeypatch.setattr(sqlite_backend, "STALLED_AFTER", 0.0)
    assert service.readiness_checks()["storage"] == {"status": "degraded",
                                                     "reason": "writes fail: writer stalled"}
    service.close(timeout=1.0)
    for future in queued:
        assert future.done() and future.exception() is not None
    release.set()
    stuck.result(30)


def test_the_writer_thread_survives_a_failing_rollback(make_service: MakeService) -> None:
    """The original defect: a transaction SQLite had already ended (a job that committed it
    itself here, as a failed COMMIT does) made the writer's ROLLBACK raise and the thread
    die. Now the group is answered and the next write goes through."""
    service = make_service()
    store = service.parts().store

    def ends_the_transaction(tx):  # type: ignore[no-untyped-def]
        store.writer.connection.execute("ROLLBACK")
        raise RuntimeError("the job failed after its transaction ended")

    with pytest.raises(Exception, match="the job failed"):
        store.write(ends_the_transaction)
    assert store.writer.alive()
    assert service.memories.store("a", "still written").memory.id
