"""Consolidation and deduplication without a language model (§2.5, §7.5 of the contract).

- consolidate: chosen memories (or up to five near-duplicates the server picks) merged into
  one new memory whose text keeps every distinct sentence of the sources; the sources go to
  the trash, restorable.
- consolidate_agent: near-duplicates clustered by DBSCAN (cosine distance <= epsilon, same
  type, the same numbers); each cluster folds into its most important memory, the others go
  to the trash for soft_deprecation_days. Memories above importance 0.8 are never folded.
- deduplicate: duplicates by the store's rule (same type, cosine >= threshold, the same
  numbers) grouped under the oldest memory; a dry run only reports them.
- summarize and compress write new text: they need a language model, which this server does
  not run (501 FEATURE_DISABLED).

Scans are bounded: the newest SCAN_LIMIT memories of an agent, compared in blocks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from app import validate
from app.config import Settings
from app.errors import FeatureDisabledError, ValidationError
from app.models import Indexes, Memory, MemoryFilter, NewMemory
from app.service.memories import EVENT_TIME_KEY, Memories
from app.store import Store, Tx
from app.text import normalise, numbers

SCAN_LIMIT = 5000  # memories of an agent compared in one pass
PAIR_CAP = 50  # neighbours kept per memory in a pass
BLOCK = 512
PICK = 5  # memories consolidate picks when given no ids
MAX_SOURCES = 100
PROTECTED_IMPORTANCE = 0.8  # never folded away by agent consolidation
LOG_KEEP = 50
MAX_TAGS = 100
CONSOLIDATION_DEFAULTS = {"enabled": True, "epsilon": 0.1, "min_samples": 2,
                          "soft_deprecation_days": 30}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
NO_MODEL = ("{what} writes new text and needs a language model, which this server does not "
            "run. POST /v1/memory/consolidate merges memories without rewriting them.")


def merged_text(sources: list[Memory]) -> str:
    """Every distinct sentence of the sources, oldest memory first: nothing is lost and
    nothing is said twice (a sentence repeated in other words is kept twice)."""
    seen: set[str] = set()
    kept: list[str] = []
    for m in sources:
        for sentence in _SENTENCE.split(m.content.strip()):
            key = normalise(sentence)
            if key and key not in seen:
                seen.add(key)
                text = sentence.strip()
                kept.append(text if text[-1] in ".!?\"')]" else text + ".")
    return " ".join(kept)


class Scan:
    """An agent's newest memories with their unit vectors, for pairwise comparison."""

    def __init__(self, memories: list[Memory], vectors: np.ndarray) -> None:
        self.memories = memories
        self.vectors = vectors

    def pairs(self, threshold: float, *, same_session: bool) -> dict[int, list[int]]:
        """i -> the j (any order) whose memory duplicates memory i: cosine >= threshold,
        the same type and the same numbers (and session, when asked); at most the PAIR_CAP
        nearest are looked at (a group larger than that folds over several passes)."""
        out: dict[int, list[int]] = {i: [] for i in range(len(self.memories))}
        digits = [numbers(m.content) for m in self.memories]
        for start in range(0, len(self.memories), BLOCK):
            block = self.vectors[start:start + BLOCK] @ self.vectors.T
            for bi, row in enumerate(block):
                i = start + bi
                a = self.memories[i]
                close = np.nonzero(row >= threshold)[0]
                if len(close) > PAIR_CAP:  # the nearest: a scan of look-alikes stays bounded
                    close = close[np.argpartition(-row[close], PAIR_CAP)[:PAIR_CAP]]
                for j in close:
                    b = self.memories[int(j)]
                    if (int(j) != i and a.memory_type == b.memory_type and digits[i] == digits[j]
                            and (not same_session or a.session_id == b.session_id)):
                        out[i].append(int(j))
        return out


class Consolidation:
    def __init__(self, store: Store, indexes: Indexes, settings: Settings,
                 now: Callable[[], int], memories: Memories,
                 cross_session: Callable[[str], bool]) -> None:
        self.db = store
        self.indexes = indexes
        self.settings = settings
        self.now = now
        self.memories = memories
        self.cross_session = cross_session  # autopilot: "dedup" / "consolidate" -> allowed?

    def scan(self, agent: str, memory_type: str | None = None) -> Scan:
        memories = self.db.memories.newest(agent, MemoryFilter(memory_type=memory_type),
                                           self.now(), limit=SCAN_LIMIT)
        index = self.indexes.find(agent)
        if index is None or not memories:
            return Scan([], np.empty((0, 0), dtype=np.float32))
        found, vectors = index.vectors([m.rowid for m in memories])
        by_rowid = {m.rowid: m for m in memories}
        kept = [by_rowid[r] for r in found]
        order = sorted(range(len(kept)), key=lambda i: kept[i].rowid)  # oldest first
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms > 0, norms, 1.0)
        return Scan([kept[i] for i in order], unit[order].astype(np.float32))

    # -- explicit merge -----------------------------------------------------------------

    def consolidate(self, agent_id: Any, *, memory_ids: Any = None, threshold: Any = None,
                    target_type: Any = None) -> dict[str, Any]:
        """POST /v1/memory/consolidate: merge the given memories (at least 2), or up to five
        near-duplicates of the agent's most common type (cosine >= threshold, 0.85 by
        default), into one new memory; the sources go to the trash, restorable."""
        agent = validate.agent_id(agent_id)
        floor = validate.unit_float(threshold, "threshold")
        kind = validate.memory_type(target_type, "target_type")
        if memory_ids is None:
            sources = self._pick(agent, 0.85 if floor is None else floor)
            if not sources:
                return {"consolidated_memory": None, "source_memory_ids": [],
                        "memories_removed": 0,
                        "message": "no memories of the agent's most common type are similar "
                                   "enough to merge"}
        else:
            if (not isinstance(memory_ids, list) or not all(isinstance(i, str) for i in memory_ids)
                    or not 2 <= len(set(memory_ids)) <= MAX_SOURCES):
                raise ValidationError(f"'memory_ids' must list 2 to {MAX_SOURCES} memory ids")
            sources = [self.memories.get(i, agent) for i in dict.fromkeys(memory_ids)]
        lossy = [m.id for m in sources if m.expires_at is not None]
        if lossy:
            raise ValidationError(f"memory {lossy[0]!r} expires (ttl_seconds/expires_at): "
                                  "merging it would keep what was meant to go; forget it or "
                                  "leave it out")
        sources.sort(key=lambda m: (m.created_at, m.rowid))
        text = merged_text(sources)
        if len(text.encode()) > self.settings.max_content_bytes:
            raise ValidationError(f"the merged memory would be longer than "
                                  f"{self.settings.max_content_bytes} bytes")
        merged = self.memories.merge_into(sources, _merged(sources, text, kind))
        return {"consolidated_memory": merged.to_dict(),
                "source_memory_ids": [m.id for m in sources],
                "memories_removed": len(sources)}

    def _pick(self, agent: str, threshold: float) -> list[Memory]:
        """Up to PICK near-duplicates of the agent's most common type: the memory with the
        most neighbours at >= threshold, and its nearest ones."""
        types = Counter(self.db.agents.stats(agent, self.now())["memories_by_type"])
        if not types:
            return []
        scan = self.scan(agent, types.most_common(1)[0][0])
        best: list[int] = []
        for i, near in scan.pairs(threshold, same_session=False).items():
            if len(near) + 1 > len(best):
                sims = scan.vectors[near] @ scan.vectors[i] if near else np.empty(0)
                best = [i] + [near[k] for k in np.argsort(-sims)[:PICK - 1]]
        return [scan.memories[i] for i in best] if len(best) >= 2 else []

    # -- agent consolidation (DBSCAN) -----------------------------------------------------

    def config(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        saved = (self.db.policies.get(agent) or {}).get("consolidation") or {}
        return {"agent_id": agent, **CONSOLIDATION_DEFAULTS, **saved}

    def set_config(self, agent_id: Any, changes: Any) -> dict[str, Any]:
        """PATCH /v1/agents/{id}/consolidation/config: enabled, epsilon (0-1 cosine distance),
        min_samples (2-100), soft_deprecation_days (0-3650)."""
        agent = validate.agent_id(agent_id)
        if not isinstance(changes, dict):
            raise ValidationError("the consolidation config must be an object")
        update: dict[str, Any] = {}
        if changes.get("enabled") is not None:
            if not isinstance(changes["enabled"], bool):
                raise ValidationError("'enabled' must be true or false")
            update["enabled"] = changes["enabled"]
        if changes.get("epsilon") is not None:
            eps = validate.unit_float(changes["epsilon"], "epsilon")
            if not eps:
                raise ValidationError("'epsilon' must be a cosine distance above 0, at most 1")
            update["epsilon"] = eps
        for name, low, high in (("min_samples", 2, 100), ("soft_deprecation_days", 0, 3650)):
            if changes.get(name) is not None:
                update[name] = validate.int_range(changes[name], low, high, name, low)

        def job(tx: Tx) -> None:
            policy = tx.policies.get(agent) or {}
            tx.policies.set(agent, {**policy, "consolidation": {
                **(policy.get("consolidation") or {}), **update}})

        self.db.write(job)
        return self.config(agent)

    def consolidate_agent(self, agent_id: Any, trigger: str = "api") -> dict[str, Any]:
        """POST /v1/agents/{id}/consolidate: DBSCAN over the agent's newest memories; each
        cluster folds into its anchor (most important, then most used, then oldest)."""
        cfg = self.config(agent_id)
        agent = cfg["agent_id"]
        scan = self.scan(agent)
        near = scan.pairs(1.0 - cfg["epsilon"],
                          same_session=not self.cross_session("consolidate"))
        groups = []
        for cluster in dbscan(near, cfg["min_samples"]):
            members = [scan.memories[i] for i in cluster]
            anchor = max(members, key=lambda m: (m.importance, m.access_count, -m.rowid))
            folded = [m for m in members
                      if m is not anchor and m.importance <= PROTECTED_IMPORTANCE]
            if folded:
                groups.append((anchor, folded))
        done, _ = self.memories.fold(agent, groups, "consolidation",
                                     cfg["soft_deprecation_days"] * 86_400)
        entry = {"timestamp": self.now(), "memories_scanned": len(scan.memories),
                 "clusters_found": len(groups), "memories_deprecated": sum(len(d) for _, d in done),
                 "anchor_ids": [a.id for a, _ in done],
                 "deprecated_ids": [m.id for _, d in done for m in d], "trigger": trigger}
        key = f"consolidation_log:{agent}"

        def job(tx: Tx) -> None:
            tx.meta.set(key, [entry, *(tx.meta.get(key) or [])][:LOG_KEEP])

        self.db.write(job)
        return {"agent_id": agent, **{k: v for k, v in entry.items()
                                      if k not in ("timestamp", "trigger")}}

    def log(self, agent_id: Any) -> list[dict[str, Any]]:
        """The agent's consolidation runs, newest first (the last 50)."""
        agent = validate.agent_id(agent_id)
        return list(self.db.meta.get(f"consolidation_log:{agent}") or [])

    # -- deduplication ------------------------------------------------------------------

    def deduplicate(self, agent_id: Any, *, dry_run: Any = False, threshold: Any = None,
                    memory_type: Any = None) -> dict[str, Any]:
        """POST /v1/knowledge/deduplicate: duplicates grouped under the oldest memory of each
        group (cosine >= threshold, the same type and numbers); without dry_run each group
        folds into that memory and the others go to the trash, restorable."""
        agent = validate.agent_id(agent_id)
        if not isinstance(dry_run, bool):
            raise ValidationError("'dry_run' must be true or false")
        floor = validate.unit_float(threshold, "threshold")
        scan = self.scan(agent, validate.memory_type(memory_type))
        near = scan.pairs(self.settings.dedup_threshold if floor is None else floor,
                          same_session=not self.cross_session("dedup"))
        grouped: set[int] = set()
        groups: list[tuple[Memory, list[Memory]]] = []
        for i in range(len(scan.memories)):  # oldest first: it survives
            if i in grouped:
                continue
            dups = [j for j in near[i] if j > i and j not in grouped]
            if dups:
                grouped.update([i, *dups])
                groups.append((scan.memories[i], [scan.memories[j] for j in sorted(dups)]))
        found = sum(len(d) for _, d in groups)
        out = {"agent_id": agent, "dry_run": dry_run, "memories_scanned": len(scan.memories),
               "groups": [[s.id] + [m.id for m in d] for s, d in groups],
               "duplicates_found": found, "duplicates_merged": 0,
               "duplicates_skipped_changed": 0, "removed_count": 0}
        if not dry_run and groups:
            done, skipped = self.memories.fold(agent, groups, "deduplication")
            merged = sum(len(d) for _, d in done)
            out.update(duplicates_merged=merged, duplicates_skipped_changed=skipped,
                       removed_count=merged)
        return out

    # -- what needs a language model ----------------------------------------------------

    def summarize(self) -> dict[str, Any]:
        raise FeatureDisabledError(NO_MODEL.format(what="summarize"),
                                   details="no DAKERA_* setting enables it")

    def compress(self, agent_id: Any) -> dict[str, Any]:
        validate.agent_id(agent_id)
        raise FeatureDisabledError(NO_MODEL.format(what="compress"),
                                   details="no DAKERA_* setting enables it")


def dbscan(near: dict[int, list[int]], min_samples: int) -> list[list[int]]:
    """Clusters of DBSCAN over a neighbour relation: a core point has at least min_samples
    points within reach (itself included); clusters grow through core points, border points
    join the first cluster that reaches them; noise is left out."""
    core = {i for i, n in near.items() if len(n) + 1 >= min_samples}
    label: dict[int, int] = {}
    out: list[list[int]] = []
    for start in sorted(core):
        if start in label:
            continue
        cluster, todo = [], [start]
        label[start] = len(out)
        while todo:
            i = todo.pop()
            cluster.append(i)
            if i not in core:
                continue
            for j in near[i]:
                if j not in label:
                    label[j] = len(out)
                    todo.append(j)
        out.append(sorted(cluster))
    return out


def _merged(sources: list[Memory], text: str, target_type: str | None) -> NewMemory:
    types = Counter(m.memory_type for m in sources)
    sessions = {m.session_id for m in sources}
    metadata: dict[str, Any] = {}
    for m in sources:  # newer values win
        metadata.update({k: v for k, v in m.metadata.items() if k != EVENT_TIME_KEY})
    times = [m.event_time for m in sources if m.event_time is not None]
    if times:
        metadata[EVENT_TIME_KEY] = min(times)
    tags = list(dict.fromkeys(t for m in sources for t in m.tags))[:MAX_TAGS]
    return NewMemory(agent_id=sources[0].agent_id, content=text,
                     memory_type=target_type or types.most_common(1)[0][0],
                     importance=max(m.importance for m in sources), tags=tags,
                     metadata=metadata,
                     session_id=sessions.pop() if len(sessions) == 1 else None,
                     event_time=min(times) if times else None)
