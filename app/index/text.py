"""BM25 over one agent's memories, in memory: the text half of hybrid recall.

Why per agent and in memory: BM25 weighs a term by how rare it is and a memory by its length
relative to the others, and those statistics must be the agent's own. Over a table shared by
every agent, a word the other agents use often counts as common for everyone, so one agent's
answers changed with what other agents stored (LoCoMo dev, beside 8 other agents: any@10
-8.7 points). FTS5 computes its statistics per table, and an FTS5 table per agent costs
~200 ms of schema parsing on every new connection at 1,000 agents. So each agent gets an
inverted index of its own, a cache rebuilt from the memories table (the truth) like its
vector index, kept in step by the same index log and saved beside it.

Scoring is FTS5's bm25 (k1 1.2, b 0.75, idf log((N - n + 0.5) / (n + 0.5)) floored at 1e-6)
over two fields: the content, and the event date in words at weight 0.5 (term frequency is
content + 0.5 x date; a memory's length counts both). Terms are porter stems of folded
words (app/text.tokens), for documents and queries alike. Labels are memory rowids; deleted
memories stay as dead slots until compaction.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from app.text import BM25_B as B
from app.text import BM25_K1 as K1
from app.text import DATE_WEIGHT, event_words, tokens

log = logging.getLogger("dakera.index")

FORMAT = 1

# One memory as the index takes it: the stems of its content and of its event date.
Doc = tuple[Sequence[str], Sequence[str]]


def doc(content: str, event_time: int | None) -> Doc:
    return tokens(content), tokens(event_words(event_time))


class TextIndex:
    def __init__(self, agent_id: str, seq: int = 0) -> None:
        self.agent_id = agent_id
        self.seq = seq  # last index-log entry applied
        self.dirty = False
        self._lock = threading.Lock()
        self._labels = array("q")  # slot -> label
        self._slot: dict[int, int] = {}  # label -> live slot
        self._length = array("f")  # slot -> weighted token count
        self._alive = bytearray()  # slot -> 1 while live
        # term -> (slots holding it, its weighted frequency there); one entry per slot
        self._postings: dict[str, tuple[array[int], array[float]]] = {}
        self._live_length = 0.0
        self._deleted = 0

    def __len__(self) -> int:
        return len(self._slot)

    # -- changes ------------------------------------------------------------------------

    def add(self, labels: Sequence[int], docs: Sequence[Doc], seq: int = 0) -> None:
        """Insert or replace these memories' texts."""
        with self._lock:
            for label, (content, date) in zip(labels, docs, strict=True):
                self._remove(int(label))
                slot = len(self._labels)
                self._labels.append(int(label))
                self._alive.append(1)
                freq: dict[str, float] = {}
                for term in content:
                    freq[term] = freq.get(term, 0.0) + 1.0
                for term in date:
                    freq[term] = freq.get(term, 0.0) + DATE_WEIGHT
                length = len(content) + DATE_WEIGHT * len(date)
                self._length.append(length)
                self._live_length += length
                for term, tf in freq.items():
                    posting = self._postings.get(term)
                    if posting is None:
                        posting = self._postings[term] = (array("i"), array("f"))
                    posting[0].append(slot)
                    posting[1].append(tf)
                self._slot[int(label)] = slot
            self._bump(seq)

    def delete(self, labels: Iterable[int], seq: int = 0) -> None:
        with self._lock:
            for label in labels:
                self._remove(int(label))
            self._bump(seq)

    def _remove(self, label: int) -> None:
        slot = self._slot.pop(label, None)
        if slot is None:
            return
        self._alive[slot] = 0
        self._live_length -= self._length[slot]
        self._deleted += 1

    def _bump(self, seq: int) -> None:
        self.seq = max(self.seq, seq)
        self.dirty = True

    def needs_compaction(self) -> bool:
        return self._deleted > 1000 and self._deleted > len(self)

    def compact(self) -> None:
        """Drop the dead slots (the live ones keep their order)."""
        with self._lock:
            if not self._deleted:
                return
            alive = np.frombuffer(self._alive, dtype=np.uint8).astype(bool)
            new_slot = np.cumsum(alive) - 1
            labels = np.frombuffer(self._labels, dtype=np.int64)[alive]
            self._labels = array("q", labels.tobytes())
            self._length = array("f", np.frombuffer(self._length, np.float32)[alive].tobytes())
            self._alive = bytearray(b"\x01" * len(labels))
            self._slot = {int(label): i for i, label in enumerate(labels.tolist())}
            postings = {}
            for term, (slots, tfs) in self._postings.items():
                s = np.frombuffer(slots, dtype=np.int32)
                keep = alive[s]
                if keep.any():
                    postings[term] = (array("i", new_slot[s[keep]].astype(np.int32).tobytes()),
                                      array("f", np.frombuffer(tfs, np.float32)[keep].tobytes()))
            self._postings = postings
            self._deleted = 0
            self.dirty = True

    # -- search -------------------------------------------------------------------------

    def search(self, terms: Sequence[str], k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(labels, bm25 scores) of the k best live memories holding any of the terms,
        best first; `allowed` (sorted labels) restricts the result, not the statistics."""
        with self._lock:
            n = len(self._slot)
            if n == 0 or k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            avg = self._live_length / n
            alive = np.frombuffer(self._alive, dtype=np.uint8)
            length = np.frombuffer(self._length, dtype=np.float32)
            scores = np.zeros(len(self._labels), dtype=np.float32)
            for term in dict.fromkeys(terms):
                posting = self._postings.get(term)
                if posting is None:
                    continue
                slots = np.frombuffer(posting[0], dtype=np.int32)
                tfs = np.frombuffer(posting[1], dtype=np.float32)
                live = alive[slots].astype(bool)
                slots, tfs = slots[live], tfs[live]
                if len(slots) == 0:
                    continue
                idf = math.log((n - len(slots) + 0.5) / (len(slots) + 0.5))
                idf = idf if idf > 0 else 1e-6
                norm = K1 * (1 - B + B * length[slots] / avg)
                scores[slots] += idf * tfs * (K1 + 1) / (tfs + norm)
            hit = np.flatnonzero(scores)
            labels = np.frombuffer(self._labels, dtype=np.int64)
            if allowed is not None:
                hit = hit[np.isin(labels[hit], allowed, assume_unique=True)]
            if len(hit) > k:
                hit = hit[np.argpartition(-scores[hit], k - 1)[:k]]
            order = hit[np.argsort(-scores[hit], kind="stable")]
            return labels[order].copy(), scores[order].copy()

    def holding_all(self, terms: Sequence[str]) -> np.ndarray:
        """Labels of the live memories whose content holds every one of the terms (phrase
        candidates). The content holds a term when its frequency is at least 1: the event
        date adds 0.5 for each of its words, and names each word once."""
        with self._lock:
            found: np.ndarray | None = None
            for term in dict.fromkeys(terms):
                posting = self._postings.get(term)
                if posting is None:
                    return np.empty(0, np.int64)
                slots = np.frombuffer(posting[0], dtype=np.int32)
                slots = slots[np.frombuffer(posting[1], dtype=np.float32) >= 1.0]
                found = slots if found is None else np.intersect1d(found, slots,
                                                                    assume_unique=True)
            if found is None:
                return np.empty(0, np.int64)
            alive = np.frombuffer(self._alive, dtype=np.uint8)
            labels = np.frombuffer(self._labels, dtype=np.int64)
            return labels[found[alive[found].astype(bool)]].copy()

    # -- persistence --------------------------------------------------------------------

    def save(self, path: Path) -> int:
        """Write the index atomically (a temp file, then a rename); returns the seq saved.
        The arrays are copied under the lock and written outside it."""
        with self._lock:
            seq = self.seq
            terms = list(self._postings)
            sizes = np.fromiter((len(self._postings[t][0]) for t in terms), np.int64,
                                count=len(terms))
            labels = np.frombuffer(self._labels, np.int64).copy()
            length = np.frombuffer(self._length, np.float32).copy()
            alive = np.frombuffer(self._alive, np.uint8).copy()
            slots = (np.concatenate([np.frombuffer(self._postings[t][0], np.int32)
                                     for t in terms]) if terms else np.empty(0, np.int32))
            tfs = (np.concatenate([np.frombuffer(self._postings[t][1], np.float32)
                                   for t in terms]) if terms else np.empty(0, np.float32))
            meta = json.dumps({"format": FORMAT, "agent_id": self.agent_id, "seq": seq,
                               "deleted": self._deleted}).encode()
            self.dirty = False
        tmp = path.with_name(path.name + ".tmp")
        try:
            with tmp.open("wb") as f:
                np.savez(f, labels=labels, length=length, alive=alive, sizes=sizes,
                         terms=np.frombuffer("\n".join(terms).encode(), np.uint8),
                         slots=slots, tfs=tfs, meta=np.frombuffer(meta, np.uint8))
            os.replace(tmp, path)
        except BaseException:
            self.dirty = True  # saved nothing: try again next time
            tmp.unlink(missing_ok=True)
            raise
        return seq

    @classmethod
    def load(cls, path: Path, agent_id: str) -> TextIndex | None:
        """The saved index, or None when there is none usable (the caller rebuilds)."""
        try:
            with np.load(path) as data:
                meta = json.loads(data["meta"].tobytes())
                if meta["format"] != FORMAT or meta["agent_id"] != agent_id:
                    return None
                index = cls(agent_id, seq=int(meta["seq"]))
                index._labels = array("q", data["labels"].tobytes())
                index._length = array("f", data["length"].tobytes())
                index._alive = bytearray(data["alive"].tobytes())
                terms = data["terms"].tobytes().decode().split("\n") if len(
                    data["terms"]) else []
                bounds = np.concatenate([[0], np.cumsum(data["sizes"])])
                slots, tfs = data["slots"], data["tfs"]
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("text index for %s is unreadable (%s): rebuilding", agent_id, exc)
            return None
        for i, term in enumerate(terms):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            index._postings[term] = (array("i", slots[lo:hi].tobytes()),
                                     array("f", tfs[lo:hi].tobytes()))
        labels = np.frombuffer(index._labels, np.int64)
        alive = np.frombuffer(index._alive, np.uint8).astype(bool)
        index._slot = {int(label): int(slot) for slot, label in
                       zip(np.flatnonzero(alive).tolist(), labels[alive].tolist(), strict=True)}
        index._live_length = float(np.frombuffer(index._length, np.float32)[alive].sum())
        index._deleted = int(meta["deleted"])
        return index
