"""A small agent's vectors as one matrix, searched exactly: what an `AgentIndex` holds until
the agent outgrows it (then hnswlib takes over).

Why: an hnswlib index costs ~2.6 MB the moment it exists (65,536 label locks), so a server
of 1,000 small agents held 2.6 GB of locks; below a few thousand vectors hnswlib is searched
exhaustively anyway, and reading vectors back out of it (`get_items`, ~25 µs a vector)
cost more than the rest of a recall. Here the same operations are a matrix product and a
row lookup. The class speaks hnswlib's `Index` dialect (distances, labels, the exceptions
it raises), so `AgentIndex` drives either the same way.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import hnswlib
import numpy as np


class FlatVectors:
    def __init__(self, space: str, dim: int) -> None:
        self.space = space
        self.dim = dim
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._labels = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)
        self._slot: dict[int, int] = {}
        self._count = 0
        self._saved_size = 0

    # -- hnswlib's dialect ----------------------------------------------------------------

    def get_current_count(self) -> int:
        return self._count

    def get_max_elements(self) -> int:
        return len(self._labels)

    def resize_index(self, n: int) -> None:
        self._grow(n)

    def set_ef(self, ef: int) -> None:  # exact: nothing to tune
        pass

    def set_num_threads(self, n: int) -> None:
        pass

    def add_items(self, vectors: np.ndarray, labels: Sequence[int] | np.ndarray,
                  num_threads: int = 1) -> None:
        rows = self._prepare(np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim))
        for row, label in zip(rows, np.asarray(labels, dtype=np.int64).tolist(), strict=True):
            slot = self._slot.get(label)
            if slot is None:  # a new label takes the next slot
                if self._count == len(self._labels):
                    self._grow(max(16, 2 * len(self._labels)))
                slot = self._count
                self._count += 1
                self._slot[label] = slot
                self._labels[slot] = label
            self._vectors[slot] = row  # an existing label is updated (and undeleted)
            self._alive[slot] = True

    def mark_deleted(self, label: int) -> None:
        slot = self._slot.get(int(label))
        if slot is None or not self._alive[slot]:
            raise RuntimeError("Label not found")
        self._alive[slot] = False

    def get_ids_list(self) -> list[int]:
        return [int(x) for x in self._labels[:self._count]]

    def get_items(self, labels: Sequence[int], return_type: str = "numpy") -> np.ndarray:
        try:
            slots = [self._slot[int(label)] for label in labels]
        except KeyError:
            raise RuntimeError("Label not found") from None
        if not self._alive[slots].all():
            raise RuntimeError("Label not found")
        return self._vectors[slots]

    def knn_query(self, queries: np.ndarray, k: int = 1,
                  filter: Callable[[int], bool] | None = None,
                  num_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(labels, distances), one row per query, k wide; RuntimeError when fewer than k
        live (accepted) vectors exist, as hnswlib answers."""
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        live = np.flatnonzero(self._alive[:self._count])
        if filter is not None:
            live = live[np.fromiter((filter(int(x)) for x in self._labels[live]), dtype=bool,
                                    count=len(live))]
        if len(live) < k:
            raise RuntimeError("Cannot return the results in a contiguous 2D array. "
                               "Probably ef or M is too small")
        # every slot (a view, no copy), then the live columns
        distances = self._distances(self._prepare(queries), self._vectors[:self._count])[:, live]
        if k < len(live):
            part = np.argpartition(distances, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(len(live)), (len(queries), len(live)))
        near = np.take_along_axis(distances, part, axis=1)
        order = np.argsort(near, axis=1, kind="stable")
        slots = live[np.take_along_axis(part, order, axis=1)]
        return self._labels[slots], np.take_along_axis(near, order, axis=1)

    def save_index(self, path: str) -> None:
        buf = io.BytesIO()
        n = self._count
        np.savez(buf, vectors=self._vectors[:n], labels=self._labels[:n],
                 alive=self._alive[:n])
        data = buf.getvalue()
        with open(path, "wb") as f:
            f.write(data)
        self._saved_size = len(data)

    def index_file_size(self) -> int:
        return self._saved_size

    @classmethod
    def load(cls, path: Path, space: str, dim: int) -> FlatVectors:
        flat = cls(space, dim)
        with np.load(path) as data:
            vectors, labels, alive = data["vectors"], data["labels"], data["alive"]
        if vectors.shape != (len(labels), dim) or len(alive) != len(labels):
            raise ValueError(f"arrays of mismatched shapes {vectors.shape} / {len(labels)}")
        flat._vectors = vectors.astype(np.float32, copy=True)
        flat._labels = labels.astype(np.int64, copy=True)
        flat._alive = alive.astype(bool, copy=True)
        flat._count = len(labels)
        flat._slot = {int(label): i for i, label in enumerate(flat._labels.tolist())}
        return flat

    # -- its own -------------------------------------------------------------------------

    def to_hnsw(self, capacity: int, m: int, ef_construction: int,
                threads: int) -> hnswlib.Index:
        """An hnswlib index of the live vectors (deleted ones are left behind)."""
        index = hnswlib.Index(space=self.space, dim=self.dim)
        index.init_index(max_elements=max(capacity, self._count), M=m,
                         ef_construction=ef_construction)
        live = np.flatnonzero(self._alive[:self._count])
        if len(live):
            index.add_items(self._vectors[live], self._labels[live], num_threads=threads)
        return index

    def _grow(self, n: int) -> None:
        if n <= len(self._labels):
            return
        vectors = np.empty((n, self.dim), dtype=np.float32)
        vectors[:self._count] = self._vectors[:self._count]
        labels = np.full(n, -1, dtype=np.int64)
        labels[:self._count] = self._labels[:self._count]
        alive = np.zeros(n, dtype=bool)
        alive[:self._count] = self._alive[:self._count]
        self._vectors, self._labels, self._alive = vectors, labels, alive

    def _prepare(self, rows: np.ndarray) -> np.ndarray:
        """hnswlib's cosine space keeps (and compares) unit vectors."""
        if self.space != "cosine":
            return rows
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms == 0, 1.0, norms)

    def _distances(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """hnswlib's distances: 1 - dot (cosine, ip), squared euclidean (l2)."""
        if self.space == "l2":
            return (np.sum(queries ** 2, axis=1, keepdims=True) - 2 * queries @ rows.T
                    + np.sum(rows ** 2, axis=1)[None, :]).astype(np.float32)
        return (1.0 - queries @ rows.T).astype(np.float32)
