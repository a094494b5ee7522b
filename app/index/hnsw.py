"""The hnswlib cache: one approximate-nearest-neighbour index per agent (or namespace).

Labels are SQLite rowids (never reused). The space is cosine for memories; a namespace's
may be cosine, ip (dot product) or l2 (squared euclidean). Deleted labels stay as marked slots
until the index is compacted (rebuilt), which the owner does once they outnumber live ones.
Each index is saved as `<hash>.hnsw` (hnswlib's file) or `<hash>.flat` (a small index's
matrix: a name older versions do not read) plus a `<hash>.json` sidecar recording which, the
model, the dimension and `seq`, the last index-log entry it contains. On load, newer log entries are
replayed; an index that is missing, unreadable, from another model, or older than the
retained log is rebuilt from the database by the caller. hnswlib is not safe for adds
alongside queries: each index has a lock.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import hnswlib
import numpy as np

from app.files import fsync_file, sha256_of
from app.index.flat import FlatVectors

log = logging.getLogger("dakera.index")

M = 16
EF_CONSTRUCTION = 200
INITIAL_CAPACITY = 1024
EXHAUSTIVE_BELOW = 2000
# Up to this many vectors an index is a plain matrix searched exactly (app/index/flat.py):
# hnswlib would search it exhaustively anyway, and costs 2.6 MB the moment it exists.
FLAT_UP_TO = EXHAUSTIVE_BELOW
EXACT_FALLBACK_UP_TO = 50_000
ADD_THREADS = os.cpu_count() or 1
SPACES = ("cosine", "ip", "l2")


class AgentIndex:
    def __init__(self, agent_id: str, dimension: int, ef: int,
                 index: hnswlib.Index | FlatVectors | None = None, seq: int = 0,
                 space: str = "cosine") -> None:
        self.agent_id = agent_id
        self.dimension = dimension
        self.space = space
        self.ef = ef
        if index is None:
            index = FlatVectors(space, dimension)
        index.set_ef(ef)  # ef is not persisted in the file
        index.set_num_threads(1)
        self._index = index
        self._lock = threading.Lock()
        self._deleted = 0  # slots marked deleted; labels are never reused, so this is exact
        self.seq = seq  # last index-log entry applied
        self.dirty = False

    def __len__(self) -> int:
        return int(self._index.get_current_count()) - self._deleted

    def add(self, labels: np.ndarray, vectors: np.ndarray, seq: int = 0) -> None:
        """Insert or replace vectors under their labels."""
        if len(labels) == 0:
            return
        with self._lock:
            if isinstance(self._index, FlatVectors) and len(self) + len(labels) > FLAT_UP_TO:
                # outgrown: the live vectors move into hnswlib (the deleted stay behind)
                self._index = self._index.to_hnsw(
                    max(INITIAL_CAPACITY, 2 * (len(self) + len(labels))), M, EF_CONSTRUCTION,
                    ADD_THREADS)
                self._index.set_ef(self.ef)
                self._index.set_num_threads(1)
                self._deleted = 0
            needed = self._index.get_current_count() + len(labels)
            if needed > self._index.get_max_elements():
                self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
            # a batch is inserted on every core (a single vector on one: no thread start-up)
            self._index.add_items(vectors, labels,
                                  num_threads=ADD_THREADS if len(labels) >= 64 else 1)
            self._bump(seq)

    def delete(self, labels: np.ndarray | list[int], seq: int = 0) -> None:
        with self._lock:
            for label in labels:
                try:
                    self._index.mark_deleted(int(label))
                    self._deleted += 1
                except RuntimeError:  # unknown or already deleted: nothing to do
                    pass
            self._bump(seq)

    def _bump(self, seq: int) -> None:
        self.seq = max(self.seq, seq)
        self.dirty = True

    def needs_compaction(self) -> bool:
        """Deleted slots still cost memory and search time: rebuild when they dominate."""
        return self._deleted > 1000 and self._deleted > len(self)

    def search(self, vector: np.ndarray, k: int,
               accept: Callable[[int], bool] | None = None, *, exhaustive: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, scores) of the k nearest live vectors (those `accept` takes, when given),
        best first. Scores are higher-is-better: cosine similarity (cosine), dot product
        (ip), minus the squared distance (l2). Fewer than k when fewer are found. Without
        `exhaustive`, a small index is searched like a large one (ef), which is cheaper
        when only near neighbours matter (the graph's links at store time)."""
        with self._lock:
            live = len(self)
            k = min(k, live)
            if k <= 0:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
            # Small indexes are searched (almost) exhaustively: greedy search can stall on a
            # dense cluster before reaching an outlier, and exploring a few thousand nodes
            # costs well under a millisecond.
            small = exhaustive and live <= EXHAUSTIVE_BELOW
            self._index.set_ef(live if small else max(self.ef, k))
            while True:
                try:
                    labels, distances = self._index.knn_query(vector.reshape(1, -1), k=k,
                                                              filter=accept)
                    return labels[0].astype(np.int64), self._scores(distances[0])
                except RuntimeError:
                    # The graph reached fewer than k live (accepted) nodes: a filter, many
                    # identical vectors or deletions can cut it. Score exactly when that is
                    # cheap, else ask for fewer.
                    if live <= EXACT_FALLBACK_UP_TO:
                        return self._exact(vector, k, accept)
                    k //= 2
                    if k == 0:
                        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)

    def _scores(self, distances: np.ndarray) -> np.ndarray:
        """hnswlib's distances as higher-is-better scores."""
        return -distances if self.space == "l2" else 1.0 - distances

    def _exact(self, vector: np.ndarray, k: int, accept: Callable[[int], bool] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over every live (accepted) vector (the caller holds the lock)."""
        ids = [int(i) for i in self._index.get_ids_list()]
        if accept is not None:
            ids = [i for i in ids if accept(i)]
        found, rows = self._items(ids)
        if not found:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        if self.space == "cosine":  # hnswlib's cosine space stores normalised vectors
            scores = rows @ (vector / (float(np.linalg.norm(vector)) or 1.0))
        elif self.space == "ip":
            scores = rows @ vector
        else:
            scores = -np.sum((rows - vector) ** 2, axis=1)
        order = np.argsort(-scores, kind="stable")[:k]
        return np.asarray(found, dtype=np.int64)[order], scores[order].astype(np.float32)

    def search_many(self, vectors: np.ndarray, k: int, *, exhaustive: bool = True,
                    ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """search() for each row of `vectors` in one call (on every core): (labels,
        cosines), one row per vector. `ef` (when not exhaustive): the search breadth, lower
        than the index's when only close neighbours matter."""
        n = len(vectors)
        with self._lock:
            live = len(self)
            kk = min(k, live)
            if kk <= 0 or n == 0:
                return (np.full((n, 0), -1, dtype=np.int64), np.full((n, 0), -1.0,
                                                                     dtype=np.float32))
            small = exhaustive and live <= EXHAUSTIVE_BELOW
            breadth = ef if ef is not None and not exhaustive else self.ef
            self._index.set_ef(live if small else max(breadth, kk))
            try:
                labels, distances = self._index.knn_query(
                    vectors.reshape(n, -1), k=kk, num_threads=ADD_THREADS if n >= 64 else 1)
                return labels.astype(np.int64), self._scores(distances)
            except RuntimeError:
                pass  # some row reached fewer than kk live nodes: search() each row below
        found = np.full((n, kk), -1, dtype=np.int64)
        sims = np.full((n, kk), -1.0, dtype=np.float32)
        for i, row in enumerate(vectors.reshape(n, -1)):
            got, cos = self.search(row, kk, exhaustive=exhaustive)
            found[i, :len(got)] = got
            sims[i, :len(got)] = cos
        return found, sims

    def vectors(self, labels: list[int]) -> tuple[list[int], np.ndarray]:
        """The stored vectors of these labels (those the index holds), without touching
        the database."""
        with self._lock:
            return self._items(labels)

    def _items(self, labels: list[int]) -> tuple[list[int], np.ndarray]:
        try:
            return labels, self._index.get_items(labels, return_type="numpy")
        except RuntimeError:  # some label unknown or deleted: take them one by one
            found, rows = [], []
            for label in labels:
                try:
                    rows.append(self._index.get_items([label])[0])
                    found.append(label)
                except RuntimeError:
                    pass
            return found, np.asarray(rows, dtype=np.float32).reshape(-1, self.dimension)

    def save(self, folder: Path, model_id: str) -> int:
        """Write the index and its sidecar atomically; returns the seq saved. When the
        write fails (a full or read-only disk) the previous files are kept as they were,
        the temporary ones removed, and the index stays dirty; the error is raised."""
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / index_name(self.agent_id)
        tmp_json = base.with_suffix(".json.tmp")
        tmp: Path | None = None
        try:
            with self._lock:
                kind = "flat" if isinstance(self._index, FlatVectors) else "hnsw"
                tmp = base.with_suffix(f".{kind}.tmp")
                seq = self.seq
                deleted = self._deleted
                self._index.save_index(str(tmp))  # hnswlib does not report short writes
                expected = int(self._index.index_file_size())
                self.dirty = False
            fsync_file(tmp)
            if tmp.stat().st_size != expected:
                raise OSError(errno.ENOSPC, f"{tmp.name} was cut short "
                              f"({tmp.stat().st_size} of {expected} bytes written)")
            sidecar = {"agent_id": self.agent_id, "model_id": model_id, "kind": kind,
                       "dimension": self.dimension, "space": self.space, "seq": seq,
                       "deleted": deleted, "M": M,
                       "ef_construction": EF_CONSTRUCTION, "sha256": sha256_of(tmp)}
            tmp_json.write_text(json.dumps(sidecar))
            fsync_file(tmp_json)
            os.replace(tmp, base.with_suffix(f".{kind}"))
            os.replace(tmp_json, base.with_suffix(".json"))
            # the index changed kind (grew, or was rebuilt small): the other file is stale
            base.with_suffix(".hnsw" if kind == "flat" else ".flat").unlink(missing_ok=True)
        except BaseException:
            self.dirty = True
            for path in (tmp, tmp_json):
                with contextlib.suppress(OSError):
                    if path is not None:
                        path.unlink(missing_ok=True)
            raise
        return seq

    @classmethod
    def load(cls, folder: Path, agent_id: str, model_id: str, dimension: int,
             ef: int, space: str = "cosine") -> AgentIndex | None:
        """The saved index, or None when there is none usable (the caller rebuilds)."""
        base = folder / index_name(agent_id)
        try:
            meta = json.loads(base.with_suffix(".json").read_text())
            if (meta["agent_id"] != agent_id or meta["model_id"] != model_id
                    or meta["dimension"] != dimension
                    or meta.get("space", "cosine") != space):
                log.info("index for %s is from another model, dimension or space: rebuilding",
                         agent_id)
                return None
            path = base.with_suffix(".flat" if meta.get("kind") == "flat" else ".hnsw")
            # A damaged file can crash hnswlib: it is checked before hnswlib reads it.
            if "sha256" in meta and sha256_of(path) != meta["sha256"]:
                log.warning("index file %s does not match its checksum: rebuilding", path)
                return None
            index: hnswlib.Index | FlatVectors
            if meta.get("kind") == "flat":
                index = FlatVectors.load(path, space, dimension)
            else:
                index = hnswlib.Index(space=space, dim=dimension)
                index.load_index(str(path))
        except FileNotFoundError:
            if base.with_suffix(".json").exists():
                log.warning("index file of %s is missing: rebuilding", agent_id)
            return None
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("index for %s is unreadable (%s): rebuilding", agent_id, exc)
            return None
        loaded = cls(agent_id, dimension, ef, index=index, seq=int(meta["seq"]), space=space)
        loaded._deleted = int(meta.get("deleted", 0))
        return loaded


def check_index_file(folder: Path, agent_id: str, model_id: str | None,
                     trimmed: int) -> str | None:
    """What is wrong with an agent's saved index files (None: usable), without loading them
    into hnswlib. `trimmed`: the seq the database's index log was trimmed up to."""
    base = folder / index_name(agent_id)
    try:
        meta = json.loads(base.with_suffix(".json").read_text())
    except FileNotFoundError:
        return f"no saved index ({base.with_suffix('.json').name} is missing)"
    except (OSError, ValueError) as exc:
        return f"{base.with_suffix('.json').name} is unreadable ({exc})"
    path = base.with_suffix(".flat" if meta.get("kind") == "flat" else ".hnsw") if isinstance(
        meta, dict) else base.with_suffix(".hnsw")
    if not path.is_file():
        return f"{path.name} is missing"
    if not isinstance(meta, dict) or meta.get("agent_id") != agent_id:
        return f"{base.with_suffix('.json').name} belongs to another agent or is damaged"
    if model_id is not None and meta.get("model_id") != model_id:
        return f"{path.name} was made by the model {meta.get('model_id')}, not {model_id}"
    if "sha256" in meta and sha256_of(path) != meta["sha256"]:
        return f"{path.name} does not match its checksum (damaged)"
    if int(meta.get("seq", 0)) < trimmed:
        return f"{path.name} is older than the database's index log"
    return None


def remove_files(folder: Path, agent_id: str) -> None:
    """Delete an index's saved files (its agent or namespace is gone)."""
    base = folder / index_name(agent_id)
    for suffix in (".hnsw", ".flat", ".json", ".hnsw.tmp", ".flat.tmp", ".json.tmp"):
        base.with_suffix(suffix).unlink(missing_ok=True)


def index_file(folder: Path, agent_id: str) -> Path:
    """The saved index's data file (its sidecar says which kind), for tools and tests."""
    base = folder / index_name(agent_id)
    try:
        kind = json.loads(base.with_suffix(".json").read_text()).get("kind", "hnsw")
    except (OSError, ValueError, AttributeError):
        kind = "hnsw"
    return base.with_suffix(".flat" if kind == "flat" else ".hnsw")


def index_name(agent_id: str) -> str:
    """A file name for any agent id (ids may be long or contain dots)."""
    return hashlib.sha256(agent_id.encode()).hexdigest()[:32]
