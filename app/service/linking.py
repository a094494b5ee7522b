"""Edges made at store time, inside the write transaction that inserts the memory.

A new memory is linked to what the agent already holds by what the store already computes:

- related_to: the index's nearest neighbours (the search deduplication makes anyway) at a
  cosine of at least the threshold (0.85 by default), and earlier memories of the same batch.
- supersedes: one of those neighbours that states the same thing with one value changed: the
  same words around its numbers, dates and amounts, and exactly one of them different
  ("Alice's rent is $1,200 a month" -> "$1,450 a month"). Identifiers (order numbers, ticket
  ids, hosts) count as words, not values, so "Order 4417 shipped" never supersedes "Order
  4418 shipped".
  Deduplication keeps such pairs apart on purpose; this edge says which one is newer.
- shares_entity: the most recent memories naming the same person, organisation, place,
  date, url, email or identifier, found in the entity index. An entity that many memories
  name (the agent's own user, a year) links nothing: it tells nothing apart.
- precedes: the memory stored just before it in the same session (weight 0.5: certain, but
  it says little about meaning).

Explicit links (linked_by) are made by the graph part.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from app.extract import extract
from app.models import Edge, Indexes, Mention
from app.store import MemoryRow, Tx
from app.text import normalise

NEIGHBOURS = 5  # index neighbours searched per stored memory (dedup's search)
LINK_EF = 32  # search breadth for links alone: neighbours at cosine >= 0.85 are easy to reach
DERIVED = ("related_to", "shares_entity", "supersedes")  # re-derived when content changes

# How much a shared entity says about two memories being about the same thing. Quantities
# are not linked ("20%" in two memories is a coincidence); a bare year links nothing.
ENTITY_WEIGHTS = {"identifier": 0.9, "email": 0.9, "url": 0.9, "person": 0.8, "org": 0.8,
                  "location": 0.6, "date": 0.6}
MONTH_WEIGHT = 0.4  # a date that is a month (2023-05) or a day without a year (--05-07)
# Being next in a session is certain but says little about meaning: walks that rank by
# weight (associated memories) prefer similarity, shared entities and explicit links.
PRECEDES_WEIGHT = 0.5

# Words a restatement may add or change around its new value: "is on March 3" -> "moved to
# March 10", "rent is $1,200" -> "rent is now $1,450".
UPDATE_WORDS = frozenset(
    "now currently moved changed updated new newly again instead still became becomes "
    "become is was are were has had have will be been on to at".split())
_ID_TYPES = ("identifier", "url", "email")
_SENTINEL = "qqentityqq"


@dataclass(frozen=True)
class GraphSettings:
    enabled: bool = True
    related_threshold: float = 0.85
    entity_links: int = 3  # memories linked per shared entity
    entity_hub: int = 50  # an entity named by this many memories links nothing more


@dataclass(slots=True)
class Near:
    """A memory close to one being stored: its rowid, cosine, type and text."""

    rowid: int
    sim: float
    memory_type: str
    content: str


Hits = tuple[np.ndarray, np.ndarray]  # (labels, cosines) of one index search


def search_ahead(indexes: Indexes, agent_id: str, vectors: np.ndarray,
                 exhaustive: np.ndarray) -> list[Hits | None]:
    """The index's nearest neighbours of each vector, in one search per kind (before the
    write job: what earlier transactions committed). `exhaustive` marks the vectors whose
    search must not miss a repeat (deduplication); the graph's links can."""
    index = indexes.find(agent_id)
    out: list[Hits | None] = [None] * len(vectors)
    if index is None:
        return out
    for kind in (True, False):
        picked = np.nonzero(exhaustive == kind)[0]
        if len(picked):
            labels, sims = index.search_many(vectors[picked], NEIGHBOURS, exhaustive=kind,
                                             ef=None if kind else LINK_EF)
            for i, pos in enumerate(picked):
                out[int(pos)] = (labels[i], sims[i])
    return out


def neighbours(tx: Tx, row: MemoryRow, floor: float, now: int, batch: list[Near],
               hits: Hits | None) -> list[Near]:
    """Live memories of the agent at a cosine of at least `floor`, nearest first: the
    index's hits (what earlier transactions committed) and `batch` (inserted earlier in
    this one)."""
    found = [n for n in batch if n.sim >= floor]
    if hits is not None:
        close = {int(label): float(sim) for label, sim in zip(*hits, strict=True)
                 if sim >= floor and int(label) != row.memory.rowid}
        if close:
            held = {n.rowid for n in found}
            for rowid, m in tx.memories.by_rowids(list(close), now).items():
                if rowid not in held and m.agent_id == row.memory.agent_id:
                    found.append(Near(rowid, close[rowid], m.memory_type, m.content))
    found.sort(key=lambda n: -n.sim)
    return found


def search_one(indexes: Indexes, row: MemoryRow) -> Hits | None:
    index = indexes.find(row.memory.agent_id)
    if index is None:
        return None
    labels, sims = index.search_many(row.vector[None, :], NEIGHBOURS, exhaustive=False,
                                     ef=LINK_EF)
    return labels[0], sims[0]


class BatchSimilarity:
    """Cosines between the memories of one write, for what each meets earlier in it."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.sims = vectors @ vectors.T if len(vectors) > 1 else None
        self.kept: list[tuple[int, int, str, str]] = []  # (position, rowid, type, text)
        self.positions = np.zeros(len(vectors), dtype=np.int64)

    def near(self, position: int, floor: float) -> list[Near]:
        """The (at most NEIGHBOURS) nearest memories kept so far at a cosine of at least
        `floor` to this one: a batch of near-identical memories stays linear."""
        if self.sims is None or not self.kept or floor > 1.0:
            return []
        row = self.sims[position, self.positions[:len(self.kept)]]
        close = np.nonzero(row >= floor)[0]
        if len(close) > NEIGHBOURS:
            close = close[np.argpartition(-row[close], NEIGHBOURS)[:NEIGHBOURS]]
        return [Near(self.kept[i][1], float(row[i]), self.kept[i][2], self.kept[i][3])
                for i in close]

    def keep(self, position: int, rowid: int, memory_type: str, content: str) -> None:
        self.positions[len(self.kept)] = position
        self.kept.append((position, rowid, memory_type, content))


class Linker:
    """The entities and edges of the memories one write job inserts, written together at
    the end of the job (flush). Within the job it remembers each session's last memory and
    each entity's memories, so a batch asks the store once per session and entity."""

    def __init__(self, tx: Tx, settings: GraphSettings, now: int) -> None:
        self.tx = tx
        self.settings = settings
        self.now = now
        self.edges: list[Edge] = []
        self.mentions: list[tuple[int, str, Mention]] = []
        self._last: dict[tuple[str, str], int] = {}  # (agent, session) -> this job's last
        self._stored: dict[tuple[str, str, str], tuple[int, list[int]]] = {}  # the store's
        self._fresh: dict[tuple[str, str, str], list[int]] = {}  # this job's, oldest first

    def add(self, row: MemoryRow, near: list[Near], mentions: list[Mention]) -> None:
        """A memory just inserted: its entities, and (with the graph on) its edges."""
        m = row.memory
        self.mentions += [(m.rowid, m.agent_id, e) for e in mentions]
        if not self.settings.enabled:
            return
        for n in near[:NEIGHBOURS]:  # the nearest: the index's and the batch's together
            if n.sim < self.settings.related_threshold:
                break
            self.edges.append(Edge(m.rowid, n.rowid, "related_to", round(n.sim, 6), self.now))
            if supersedes(m.content, n.content):
                self.edges.append(Edge(m.rowid, n.rowid, "supersedes", round(n.sim, 6),
                                       self.now))
        if m.session_id is not None:
            key = (m.agent_id, m.session_id)
            before = self._last.get(key)
            if before is None:
                before = self.tx.memories.session_previous(m.agent_id, m.session_id, m.rowid)
            if before is not None:
                self.edges.append(Edge(before, m.rowid, "precedes", PRECEDES_WEIGHT, self.now))
            self._last[key] = m.rowid
        self._shared(m.agent_id, m.rowid, mentions)

    def _shared(self, agent_id: str, rowid: int, mentions: list[Mention]) -> None:
        best: dict[int, float] = {}
        links = self.settings.entity_links
        for entity_type, normalized in {(e.entity_type, e.normalized) for e in mentions}:
            weight = entity_weight(entity_type, normalized)
            if not weight or not links:
                continue
            key = (agent_id, entity_type, normalized)
            stored = self._stored.get(key)
            if stored is None:
                stored = self._stored[key] = self.tx.entities.memories_with(
                    agent_id, entity_type, normalized, links, count_upto=self.settings.entity_hub)
            fresh = self._fresh.setdefault(key, [])
            if stored[0] + len(fresh) < self.settings.entity_hub:  # else everyone's entity
                for other in (fresh[::-1] + stored[1])[:links]:
                    best[other] = max(best.get(other, 0.0), weight)
            fresh.append(rowid)
        self.edges += [Edge(rowid, other, "shares_entity", w, self.now)
                       for other, w in best.items()]

    def flush(self) -> None:
        if self.mentions:
            self.tx.entities.add(self.mentions)
        if self.edges:
            self.tx.edges.add(self.edges)


def entity_weight(entity_type: str, normalized: str) -> float:
    """How strongly sharing this entity links two memories (0: not at all)."""
    weight = ENTITY_WEIGHTS.get(entity_type, 0.0)
    if entity_type == "date":
        if len(normalized) == 4:  # a year
            return 0.0
        if len(normalized) == 7:  # yyyy-mm or --mm-dd
            return MONTH_WEIGHT
    return weight


# -- supersedes -----------------------------------------------------------------------------

def frame(text: str) -> tuple[list[str], list[str]]:
    """(the words of a statement with each run of values as "#", the runs of values in
    order): identifiers, urls and emails stay words."""
    kept: list[str] = []
    pieces, last = [], 0
    for e in extract(text, _ID_TYPES):
        pieces += [text[last:e.start], f" {_SENTINEL}{len(kept)} "]
        kept.append(e.normalized)
        last = e.end
    pieces.append(text[last:])
    words: list[str] = []
    runs: list[str] = []
    for token in normalise("".join(pieces)).split():
        if token.startswith(_SENTINEL) and token[len(_SENTINEL):].isdigit():
            words.append("id:" + kept[int(token[len(_SENTINEL):])])
        elif any(c.isdigit() for c in token):
            if words and words[-1] == "#":
                runs[-1] += " " + token
            else:
                words.append("#")
                runs.append(token)
        else:
            words.append(token)
    return words, runs


def supersedes(newer: str, older: str, *, max_chars: int = 2000) -> bool:
    """Whether `newer` restates `older` with other values (see the module's docstring)."""
    if len(newer) > max_chars or len(older) > max_chars:
        return False
    if not any(c.isdigit() for c in newer) or not any(c.isdigit() for c in older):
        return False
    new_words, new_runs = frame(newer)
    old_words, old_runs = frame(older)
    # One value changes: a new price, date or count. Several changing at once is another
    # fact of the same form ("fact 5: box 5" and "fact 22: box 22").
    if len(new_runs) != len(old_runs) or sum(
            a != b for a, b in zip(new_runs, old_runs, strict=True)) != 1:
        return False
    same = 0
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            same += sum(1 for w in old_words[a0:a1] if w != "#" and w not in UPDATE_WORDS)
        elif any(w not in UPDATE_WORDS for w in old_words[a0:a1] + new_words[b0:b1]):
            return False  # another subject, not another value
    return same >= 3
