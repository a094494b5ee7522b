"""The memories' sentence vectors as recall reads them: a bounded LRU in this process over the
`memory_sentences` table, so that a recall does not read a few hundred BLOBs from SQLite.

Recall asks for the sentence vectors of its ~200 candidates on every query; reading them
(`json_each` over the rowids, a BLOB per row, an array per BLOB) cost 1.5 to 2 ms of a
recall. Kept here as int8 with a scale per sentence (a quarter of float32; a cosine moves by
at most ~0.002, measured over LoCoMo's sentences, where the int8 model itself is ~0.99 of
its float32 reference; float16 was rejected: numpy converts it back to float32 at ~3 ns a
number, 0.8 ms for 200 candidates' sentences), at most `max_bytes` of them, least recently
used out first. A memory without sentence vectors (one sentence) is remembered too, so it
costs no read either.

Consistency: the writer forgets a memory's entry when it writes or deletes its sentence
vectors (inside the transaction) and again after the commit (`committed`); a reader puts
what it read only if no such change began or ended while it read (`generation`), so an
entry never outlives the row it was read from. The writer is the only writer of the file
(the data dir's lock), so no other process changes the table under the cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

Packed = tuple[np.ndarray, np.ndarray]  # (n x dimension int8, n float32 scales)
ABSENT_BYTES = 140  # what an entry without vectors costs (measured: the dict entry, the int key)
ENTRY_BYTES = 400  # and one with vectors beyond its data (the tuple, two array headers)


class SentenceCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, Packed | None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._generation = 0
        self._writing = False  # a change to sentence vectors not committed yet
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def lookup(self, rowids: Iterable[int]) -> tuple[dict[int, Packed], list[int], int]:
        """(rowid -> packed vectors of those cached with vectors, rowids not cached, the
        generation to hand to `put`); a generation of -1 means: do not put."""
        found: dict[int, Packed] = {}
        missing: list[int] = []
        with self._lock:
            entries = self._entries
            for rowid in rowids:
                if rowid in entries:
                    entries.move_to_end(rowid)
                    held = entries[rowid]
                    if held is not None:
                        found[rowid] = held
                else:
                    missing.append(rowid)
            self.hits += len(found)
            self.misses += len(missing)
            generation = -1 if self._writing else self._generation
        return found, missing, generation

    def put(self, generation: int, read: dict[int, Packed], asked: list[int]) -> None:
        """Keep what a reader read for `asked` (those not in `read` have no vectors), unless
        a change began or ended since its `lookup`."""
        if self.max_bytes <= 0 or generation < 0:
            return
        with self._lock:
            if generation != self._generation or self._writing:
                return
            for rowid in asked:
                packed = read.get(rowid)
                if rowid in self._entries:
                    continue
                self._entries[rowid] = packed
                self._bytes += _cost(packed)
            while self._bytes > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= _cost(dropped)

    def forget(self, rowids: Iterable[int]) -> None:
        """The writer changes these memories' sentence vectors (in its open transaction)."""
        with self._lock:
            self._writing = True
            self._generation += 1
            for rowid in rowids:
                if rowid in self._entries:
                    self._bytes -= _cost(self._entries.pop(rowid))

    def clear(self) -> None:
        with self._lock:
            self._writing = True
            self._generation += 1
            self._entries.clear()
            self._bytes = 0

    def committed(self) -> None:
        """After each commit (or rollback) of the writer: reads from now on see the change."""
        if not self._writing:
            return
        with self._lock:
            self._writing = False
            self._generation += 1


def _cost(vectors: Packed | None) -> int:
    return ABSENT_BYTES if vectors is None else (
        ENTRY_BYTES + vectors[0].nbytes + vectors[1].nbytes)


def pack(vectors: np.ndarray) -> Packed:
    """float32 rows as int8 rows and a scale each (row ~= int8 row x scale)."""
    scales = np.abs(vectors).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    return (np.rint(vectors / scales[:, None]).astype(np.int8),
            scales.astype(np.float32))


def pack_many(found: dict[int, np.ndarray]) -> dict[int, Packed]:
    """pack() of each memory's rows in one pass (a pass per memory costs ~25 us of numpy
    overhead each, and a recall at 100,000 memories misses the cache for ~30 of them)."""
    if not found:
        return {}
    blocks = list(found.values())
    ints, scales = pack(np.concatenate(blocks))
    cuts = np.cumsum([len(b) for b in blocks[:-1]]).tolist()
    return dict(zip(found, zip(np.split(ints, cuts), np.split(scales, cuts), strict=True),
                    strict=True))


def best_cosines(found: dict[int, np.ndarray], query: np.ndarray) -> dict[int, float]:
    """rowid -> the highest cosine between the query and one of its sentences' (float32,
    unit) vectors."""
    if not found:
        return {}
    blocks = list(found.values())
    return _best(list(found), blocks, np.concatenate(blocks), None, query)


def best_packed_cosines(found: dict[int, Packed], query: np.ndarray) -> dict[int, float]:
    """The same over packed vectors."""
    if not found:
        return {}
    packed = list(found.values())
    blocks = [p[0] for p in packed]
    return _best(list(found), blocks, np.concatenate(blocks),
                 np.concatenate([p[1] for p in packed]), query)


def _best(rowids: list[int], blocks: list[np.ndarray], matrix: np.ndarray,
          scales: np.ndarray | None, query: np.ndarray) -> dict[int, float]:
    starts = np.zeros(len(blocks), dtype=np.intp)
    np.cumsum([len(b) for b in blocks[:-1]], out=starts[1:])
    # einsum, not @ or np.dot: in the server process (onnxruntime's threads beside numpy's
    # BLAS threads, on a loaded machine) a 1,223 x 384 product through BLAS measured 5 to
    # 21 ms, einsum's own loop 0.3 ms
    sims = np.einsum("ij,j->i", matrix.astype(np.float32, copy=False),
                     np.asarray(query, dtype=np.float32))
    if scales is not None:
        sims *= scales
    best = np.maximum.reduceat(sims, starts)
    return dict(zip(rowids, best.tolist(), strict=True))
