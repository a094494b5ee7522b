"""Edges made at store time, inside the write transaction that inserts the memory.

A new memory is linked to what the agent already holds by what the store already computes:

- related_to: the index's nearest neighbours (the search deduplication makes anyway) at a
  cosine of at least the threshold (0.85 by default), and earlier memories of the same batch.
- supersedes: one of those neighbours that states the same thing with other values: the same
  words around its numbers, dates and amounts, but different numbers ("Alice's rent is $1,200
  a month" -> "$1,450 a month"). Identifiers (order numbers, ticket ids, hosts) count as
  words, not values, so "Order 4417 shipped" never supersedes "Order 4418 shipped".
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
from app.index import IndexRegistry
from app.models import Edge, Mention
from app.store import MemoryRow, Tx
from app.text import normalise

NEIGHBOURS = 5  # index neighbours searched per stored memory (dedup's search)
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


def neighbours(tx: Tx, indexes: IndexRegistry, row: MemoryRow, floor: float, now: int,
               batch: list[Near], *, exhaustive: bool = True) -> list[Near]:
    """Live memories of the agent at a cosine of at least `floor`, nearest first: from the
    index (what earlier transactions committed) and `batch` (inserted earlier in this one).
    `exhaustive`: search a small index exhaustively (deduplication must not miss a repeat;
    the graph's links can)."""
    found = [n for n in batch if n.sim >= floor]
    index = indexes.find(row.memory.agent_id)
    if index is not None:
        labels, sims = index.search(row.vector, NEIGHBOURS, exhaustive=exhaustive)
        close = {int(label): float(sim) for label, sim in zip(labels, sims, strict=True)
                 if sim >= floor and int(label) != row.memory.rowid}
        if close:
            held = {n.rowid for n in found}
            for rowid, m in tx.memories.by_rowids(list(close), now).items():
                if rowid not in held and m.agent_id == row.memory.agent_id:
                    found.append(Near(rowid, close[rowid], m.memory_type, m.content))
    found.sort(key=lambda n: -n.sim)
    return found


class BatchSimilarity:
    """Cosines between the memories of one write, for what each meets earlier in it."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.sims = vectors @ vectors.T if len(vectors) > 1 else None
        self.kept: list[tuple[int, int, str, str]] = []  # (position, rowid, type, text)
        self.positions = np.zeros(len(vectors), dtype=np.int64)

    def near(self, position: int, floor: float) -> list[Near]:
        """The memories kept so far at a cosine of at least `floor` to this one."""
        if self.sims is None or not self.kept or floor > 1.0:
            return []
        row = self.sims[position, self.positions[:len(self.kept)]]
        return [Near(self.kept[i][1], float(row[i]), self.kept[i][2], self.kept[i][3])
                for i in np.nonzero(row >= floor)[0]]

    def keep(self, position: int, rowid: int, memory_type: str, content: str) -> None:
        self.positions[len(self.kept)] = position
        self.kept.append((position, rowid, memory_type, content))


def link(tx: Tx, row: MemoryRow, near: list[Near], mentions: list[Mention],
         settings: GraphSettings, now: int, before: int | None = -1) -> list[Edge]:
    """The edges of a memory just inserted (its entities, `mentions`, already stored), for
    the caller to write (tx.edges.add; a batch writes them all at once). `before`: the
    previous memory of its session when the caller knows it (None: none), else it is
    looked up."""
    m = row.memory
    edges: list[Edge] = []
    for n in near:
        if n.sim < settings.related_threshold:
            break
        edges.append(Edge(m.rowid, n.rowid, "related_to", round(n.sim, 6), now))
        if supersedes(m.content, n.content):
            edges.append(Edge(m.rowid, n.rowid, "supersedes", round(n.sim, 6), now))
    if m.session_id is not None:
        if before == -1:
            before = tx.memories.session_previous(m.agent_id, m.session_id, m.rowid)
        if before is not None:
            edges.append(Edge(before, m.rowid, "precedes", PRECEDES_WEIGHT, now))
    if mentions:  # stored by the caller just before
        edges += _shared(tx, m.agent_id, m.rowid, mentions, settings, now)
    return edges


def _shared(tx: Tx, agent_id: str, rowid: int, mentions: list[Mention],
            settings: GraphSettings, now: int) -> list[Edge]:
    best: dict[int, float] = {}
    for key in {(e.entity_type, e.normalized) for e in mentions}:
        weight = entity_weight(*key)
        if not weight:
            continue
        mentioned, named = tx.entities.memories_with(
            agent_id, key[0], key[1], settings.entity_links + 1, count_upto=settings.entity_hub)
        if mentioned >= settings.entity_hub:
            continue  # everyone's entity: it links nothing apart
        for other in [r for r in named if r != rowid][:settings.entity_links]:
            best[other] = max(best.get(other, 0.0), weight)
    return [Edge(rowid, other, "shares_entity", w, now) for other, w in best.items()]


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
    """(the words of a statement with each run of values as "#", the values): identifiers,
    urls and emails stay words."""
    kept: list[str] = []
    pieces, last = [], 0
    for e in extract(text, _ID_TYPES):
        pieces += [text[last:e.start], f" {_SENTINEL}{len(kept)} "]
        kept.append(e.normalized)
        last = e.end
    pieces.append(text[last:])
    words: list[str] = []
    values: list[str] = []
    for token in normalise("".join(pieces)).split():
        if token.startswith(_SENTINEL) and token[len(_SENTINEL):].isdigit():
            words.append("id:" + kept[int(token[len(_SENTINEL):])])
        elif any(c.isdigit() for c in token):
            values.append(token)
            if not words or words[-1] != "#":
                words.append("#")
        else:
            words.append(token)
    return words, sorted(values)


def supersedes(newer: str, older: str, *, max_chars: int = 2000) -> bool:
    """Whether `newer` restates `older` with other values (see the module's docstring)."""
    if len(newer) > max_chars or len(older) > max_chars:
        return False
    if not any(c.isdigit() for c in newer) or not any(c.isdigit() for c in older):
        return False
    new_words, new_values = frame(newer)
    old_words, old_values = frame(older)
    if not new_values or not old_values or new_values == old_values:
        return False
    same = 0
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            same += sum(1 for w in old_words[a0:a1] if w != "#" and w not in UPDATE_WORDS)
        elif any(w not in UPDATE_WORDS for w in old_words[a0:a1] + new_words[b0:b1]):
            return False  # another subject, not another value
    return same >= 3
