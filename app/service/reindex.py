"""Re-embedding every memory with the configured model (`dakera reindex`), offline: the data
dir's lock is held throughout, so no server runs on it meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

from app.config import Settings
from app.embed import load_embedder
from app.locking import DataDirLock
from app.service.memories import embed_with_sentences
from app.store import Tx, open_store
from app.store.protocol import StagedRow

log = logging.getLogger("dakera.reindex")

BATCH = 256


def reindex(settings: Settings, *, on_total: Callable[[int], None] = lambda n: None,
            on_progress: Callable[[int], None] = lambda n: None) -> int:
    """Embed every memory (and the sentences of those that say several things) with
    settings.embedding_model and make it the data dir's model.
    Resumable: an interrupted run keeps the old vectors and continues where it stopped.
    Returns how many memories were re-embedded."""
    lock = DataDirLock(Path(settings.data_dir))
    lock.acquire()
    try:
        embedder = load_embedder(settings.embedding_model, Path(settings.models_dir),
                                 settings.embed_threads)
        dim, model_id = embedder.preset.dimension, embedder.model_id
        store = open_store(settings.db_path, dimension=dim, model_id=model_id,
                           synchronous=settings.sqlite_synchronous, check_model=False,
                           url=settings.database_url)
        try:
            store.write(lambda tx: tx.reindex.begin(model_id))
            on_total(store.reindex.count_pending())
            while batch := store.reindex.pending(BATCH):
                vectors, sentences = embed_with_sentences(
                    embedder, settings.recall_sentence_weight > 0,
                    settings.recall_sentence_vectors == "pooled",
                    [content for _, content, _ in batch])
                staged = [(rowid, v, h, s) for (rowid, _, h), v, s in zip(
                    batch, vectors, sentences, strict=True)]
                store.write(partial(_stage, rows=staged))
                on_progress(len(batch))
            count = store.write(lambda tx: tx.reindex.finish(model_id, dim))
        finally:
            store.close()
        for path in _index_files(settings.index_dir):
            path.unlink(missing_ok=True)  # the indexes are rebuilt from the new vectors
        log.info("re-embedded %d memories with %s", count, model_id)
        return count
    finally:
        lock.release()


def _stage(tx: Tx, rows: list[StagedRow]) -> None:
    tx.reindex.stage(rows)


def _index_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.suffix in (".hnsw", ".flat", ".json", ".tmp")]
