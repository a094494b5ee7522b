"""A data dir keeps the embedding model its vectors were made with: another model refuses
to start, naming both and the command that re-embeds; `dakera reindex` moves it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from app.errors import DataDirError
from app.store import SqliteStore
from tests.conftest import LiveServer

pytestmark = pytest.mark.both_targets

FACTS = ["Maria's bicycle is a green Dutch city bike with a basket",
         "The team stand-up moved to 9:30 every weekday",
         "Grandma's lasagne recipe needs a pinch of nutmeg"]


def test_another_model_refuses_until_reindexed(tmp_path: Path,
                                               dakera_command: tuple[list[str], dict[str, str]]
                                               ) -> None:
    data = tmp_path / "data"
    made = LiveServer(data, extra_env={"DAKERA_EMBEDDING_MODEL": "hash"},
                      command=dakera_command).start()
    client = made.client()
    ids = [client.store_memory("maria", fact)["id"] for fact in FACTS]
    client.store_memory("maria", "Grandma visited on Sunday. Then she baked bread for us.")
    assert made.stop() == 0
    assert sentence_rows(data) == 1  # the memory of two sentences has their vectors

    other = LiveServer(data, command=dakera_command)  # the default model: MiniLM
    with pytest.raises(RuntimeError, match="exited with 1"):
        other.start()
    log = other.log()
    assert "embedded by the model hash-v1" in log and "all-minilm-l6-v2-int8-" in log, log
    assert f"dakera reindex --data-dir {data}" in log, log

    command, target_env = dakera_command
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env.update(target_env, DAKERA_DATA_DIR=str(data))
    proc = subprocess.run([*command, "reindex"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "done: 4 memories now embedded with all-minilm-l6-v2" in proc.stdout
    assert "re-embedding 4 memories" in proc.stderr
    # the sentences re-embedded with the memories, under the new model
    assert sentence_rows(data) == 1
    conn = sqlite3.connect(data / "dakera.db")
    try:
        (model,) = conn.execute("SELECT DISTINCT model_id FROM memory_sentences").fetchone()
    finally:
        conn.close()
    assert model.startswith("all-minilm-l6-v2")

    server = LiveServer(data, command=dakera_command).start()
    try:
        hits = server.client().recall("maria", "what kind of bike does she ride?", top_k=1)
        assert [m.id for m in hits.memories] == [ids[0]]  # found by meaning, not words
    finally:
        server.stop()


def sentence_rows(data: Path) -> int:
    conn = sqlite3.connect(data / "dakera.db")
    try:
        return int(conn.execute("SELECT count(*) FROM memory_sentences").fetchone()[0])
    finally:
        conn.close()


def test_a_database_without_a_recorded_model_takes_its_vectors_model(tmp_path: Path) -> None:
    """Databases of the previous release did not record the model: the vectors say it."""
    path = tmp_path / "dakera.db"
    store = SqliteStore(path, dimension=4, model_id="model-a")
    store.writer.run(lambda conn: conn.execute(
        "INSERT INTO memory_vectors (rowid, embedding, model_id, content_hash) "
        "VALUES (1, zeroblob(16), 'model-a', 'h')"))
    store.writer.run(lambda conn: conn.execute("DELETE FROM meta WHERE key = 'embedding_model'"))
    store.close()
    with pytest.raises(DataDirError, match="embedded by the model model-a"):
        SqliteStore(path, dimension=4, model_id="model-b")
    SqliteStore(path, dimension=4, model_id="model-a").close()  # recorded now
    with pytest.raises(DataDirError, match=r"model-a.*runs model-b"):
        SqliteStore(path, dimension=4, model_id="model-b")
