"""Memories: store (single and batch, with dedup, entities and graph edges), get, update,
forget, batch recall and forget by filter, merges (consolidation, deduplication) and the
trash of merged memories.

A write validates with the contract's rules, embeds and extracts entities outside the writer,
commits through it, and brings the agent's vector index in step after the commit (in commit
order).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from app import validate
from app.config import Settings
from app.embed import Embedder
from app.embed.base import embed_separately
from app.errors import ConflictError, DakeraError, NotFoundError, ValidationError
from app.models import Indexes, Memory, MemoryFilter, Mention, NewMemory, StoreResult
from app.recall.sentences import sentence_parts
from app.service.dedup import find_duplicate
from app.service.events import Publisher
from app.service.extraction import find_entities
from app.service.linking import (
    DERIVED,
    BatchSimilarity,
    GraphSettings,
    Linker,
    neighbours,
    search_ahead,
    search_one,
)
from app.service.metrics import Metrics
from app.service.sessions import IdleEnded, announce_idle
from app.store import MemoryRow, Store, Tx, unique_violation

if TYPE_CHECKING:
    from app.service.policies import StorePolicy

EVENT_TIME_KEY = "_dakera_event_time"
FORGOTTEN_KEY = "forgotten"  # in a trash entry: the whole memory, as it was when discarded
DELETE_BATCH = 1000


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def new_memory_id() -> str:
    return "mem_" + uuid.uuid4().hex


def batch_filter(raw: Any) -> MemoryFilter:
    """The `filter` object of batch recall and batch forget (tags: all of them)."""
    if raw is None:
        return MemoryFilter()
    if not isinstance(raw, Mapping):
        raise ValidationError("'filter' must be an object")
    return MemoryFilter(
        tags_all=validate.tags(raw.get("tags"), "filter.tags", storing=False),
        min_importance=validate.importance(raw.get("min_importance"), "filter.min_importance"),
        max_importance=validate.importance(raw.get("max_importance"), "filter.max_importance"),
        created_after=validate.unix_seconds(raw.get("created_after"), "filter.created_after"),
        created_before=validate.unix_seconds(raw.get("created_before"),
                                             "filter.created_before"),
        memory_type=validate.memory_type(raw.get("memory_type"), "filter.memory_type"),
        session_id=validate.session_id(raw.get("session_id"), "filter.session_id"),
    )


class Memories:
    def __init__(self, store: Store, indexes: Indexes, embedder: Embedder,
                 settings: Settings, now: Callable[[], int],
                 store_policy: Callable[[str], StorePolicy], graph: GraphSettings,
                 retention: Callable[[], int], events: Publisher, metrics: Metrics) -> None:
        self.db = store
        self.indexes = indexes
        self.embedder = embedder
        self.settings = settings
        self.now = now
        self.store_policy = store_policy  # the agent's dedup and extraction settings
        self.graph = graph  # edges made at store time
        self.retention = retention  # seconds a merged or consolidated memory stays restorable
        self.events = events
        self.metrics = metrics
        # embed the sentences of memories that say several things (the best-sentence
        # lever); off with it: memories stored meanwhile get none until re-embedded
        self.split = settings.recall_sentence_weight > 0
        self.pooled = settings.recall_sentence_vectors == "pooled"

    def _embed(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray | None]]:
        return embed_with_sentences(self.embedder, self.split, self.pooled, texts)

    # -- writes -------------------------------------------------------------------------

    def store(self, agent_id: Any, content: Any, *, memory_type: Any = None,
                  importance: Any = None, tags: Any = None, metadata: Any = None,
                  session_id: Any = None, ttl_seconds: Any = None, expires_at: Any = None,
                  event_time: Any = None, memory_id: Any = None) -> StoreResult:
        new = self._validate_new(agent_id, content, memory_type=memory_type,
                                 importance=importance, tags=tags, metadata=metadata,
                                 session_id=session_id, ttl_seconds=ttl_seconds,
                                 expires_at=expires_at, event_time=event_time,
                                 memory_id=memory_id)
        return self.insert([new], batch=False)

    def store_batch(self, agent_id: Any, items: Any) -> StoreResult:
        """Store 1-1000 memories in one embedding pass and one transaction: all or none."""
        agent = validate.agent_id(agent_id)
        if not isinstance(items, list) or not 1 <= len(items) <= validate.MAX_BATCH:
            raise ValidationError(f"'memories' must hold 1 to {validate.MAX_BATCH} items")
        news = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValidationError(f"memories[{i}] must be an object")
            try:
                news.append(self._validate_new(
                    agent, item.get("content"), memory_type=item.get("memory_type"),
                    importance=item.get("importance"), tags=item.get("tags"),
                    metadata=item.get("metadata"), session_id=item.get("session_id"),
                    ttl_seconds=item.get("ttl_seconds"), expires_at=item.get("expires_at"),
                    event_time=item.get("event_time"), memory_id=item.get("id")))
            except DakeraError as exc:
                exc.message = f"memories[{i}]: {exc.message}"
                exc.args = (exc.message,)
                raise
        custom = [n.id for n in news if n.id is not None]
        dupes = sorted(i for i, n in Counter(custom).items() if n > 1)
        if dupes:
            raise ConflictError(f"the batch repeats memory ids: {', '.join(dupes[:10])}")
        taken = self.db.memories.existing_ids(agent, custom) if custom else []
        if taken:
            raise ConflictError(f"memory ids already exist for agent {agent!r}: "
                                f"{', '.join(sorted(taken)[:10])}")
        return self.insert(news, batch=True)

    def _validate_new(self, agent_id: Any, content: Any, *, memory_type: Any = None,
                      importance: Any = None, tags: Any = None, metadata: Any = None,
                      session_id: Any = None, ttl_seconds: Any = None, expires_at: Any = None,
                      event_time: Any = None, memory_id: Any = None) -> NewMemory:
        meta = validate.metadata(metadata, max_bytes=self.settings.max_metadata_bytes) or {}
        when = validate.event_time(event_time)
        if when is not None:
            meta[EVENT_TIME_KEY] = when
        weight = validate.importance(importance)
        return NewMemory(
            agent_id=validate.agent_id(agent_id),
            content=validate.content(content, self.settings.max_content_bytes),
            memory_type=validate.memory_type(memory_type) or "episodic",
            importance=0.5 if weight is None else weight,
            tags=validate.tags(tags) or [],
            metadata=meta,
            session_id=validate.session_id(session_id),
            ttl_seconds=validate.ttl_seconds(ttl_seconds),
            expires_at=validate.unix_seconds(expires_at, "expires_at"),
            event_time=when,
            id=None if memory_id is None else validate.memory_id(memory_id),
        )

    def insert(self, items: list[NewMemory], *, dedup: bool = True, batch: bool = False,
               event: str = "stored") -> StoreResult:
        """Embed once (and extract entities), then in one transaction: merge each duplicate
        into the memory it repeats (per the agent's policy; custom ids are never merged) or
        insert it and link it into the graph, and record session activity. One index search
        per memory serves both deduplication and the graph. The index is updated after the
        commit, and the events (`event` per inserted memory, deduplicated per merged one)
        are published there, in commit order."""
        self.db.check_writable()  # a full or read-only disk: refuse before embedding
        now = self.now()
        policies = {a: self.store_policy(a) for a in {m.agent_id for m in items}}
        extracting = find_entities([(new.content, policies[new.agent_id].entity_types)
                                    for new in items])
        t0 = time.perf_counter()
        vectors, sentence_vectors = self._embed([m.content for m in items])
        embed_ms = (time.perf_counter() - t0) * 1000
        found = extracting.result()
        tokens = self.embedder.count_tokens([m.content for m in items])
        rows = []
        sessions: dict[str, set[str]] = {}
        for new, vector, sentence in zip(items, vectors, sentence_vectors, strict=True):
            expires = new.expires_at
            if expires is None and new.ttl_seconds is not None:
                expires = now + new.ttl_seconds
            memory = Memory(
                id=new.id or new_memory_id(), agent_id=new.agent_id, content=new.content,
                memory_type=new.memory_type, importance=new.importance, tags=new.tags,
                metadata=new.metadata, session_id=new.session_id, created_at=now,
                updated_at=now, last_accessed_at=now, access_count=0,
                ttl_seconds=new.ttl_seconds, expires_at=expires, event_time=new.event_time)
            rows.append(MemoryRow(memory, vector, content_hash(new.content),
                                  sentences=sentence))
            if new.session_id is not None:
                sessions.setdefault(new.agent_id, set()).add(new.session_id)
        retention = self.retention()
        timeout = self.settings.session_idle_timeout
        graph = self.graph

        Result = tuple[list[Memory], list[int], int, dict[str, str], dict[int, str],
                       IdleEnded]

        def job(tx: Tx) -> Result:
            # other servers' stores into these agents first: deduplication must see them
            tx.memories.lock_agents([new.agent_id for new in items])
            out: list[Memory] = []
            added: list[int] = []
            duplicates: dict[int, str] = {}
            batch = BatchSimilarity(vectors)
            linker = Linker(tx, graph, now)
            merging = [dedup and new.id is None and policies[new.agent_id].dedup.applies(
                new.memory_type) for new in items]
            floors = [min(policies[new.agent_id].dedup.threshold if merge else 2.0,
                          graph.related_threshold if graph.enabled else 2.0)
                      for new, merge in zip(items, merging, strict=True)]
            # One index search for the whole job, inside it: a repeat committed just
            # before cannot slip past deduplication.
            wanted = np.array([f <= 1.0 for f in floors])
            hits = (search_ahead(self.indexes, items[0].agent_id, vectors[wanted],
                                 np.array(merging)[wanted]) if wanted.any() else [])
            hit_of = dict(zip(np.nonzero(wanted)[0].tolist(), hits, strict=True))
            seq = 0
            for pos, (new, row) in enumerate(zip(items, rows, strict=True)):
                m = row.memory
                near = (neighbours(tx, row, floors[pos], now, batch.near(pos, floors[pos]),
                                   hit_of[pos]) if pos in hit_of else [])
                survivor = (find_duplicate(tx, row, policies[m.agent_id].dedup, near, now)
                            if merging[pos] else None)
                if survivor is None:
                    seq = tx.memories.insert(row)
                    linker.add(row, near, found[pos])
                    batch.keep(pos, m.rowid, m.memory_type, m.content)
                    out.append(m)
                    added.append(pos)
                    continue
                tx.memories.merge_duplicate(survivor, m.importance, m.tags, now)
                kept = tx.memories.by_rowid(survivor)
                saved = {**dataclasses.asdict(new), "id": m.id}
                tx.trash.put(m.agent_id, m.id, kept.id, saved, now, retention)
                out.append(kept)
                duplicates[pos] = m.id
            linker.flush()
            states: dict[str, str] = {}
            idle = tx.sessions.expire_idle(now, timeout) if sessions else []
            for agent, ids in sessions.items():
                states.update(tx.sessions.activity(agent, ids, now, timeout))
            return out, added, seq, states, duplicates, idle

        def after(result: Result) -> None:
            memories, added, seq, _, duplicates, idle = result
            if added:
                agent = memories[added[0]].agent_id
                self.indexes.added(agent, [memories[i].rowid for i in added], vectors[added],
                                   [(memories[i].content, memories[i].event_time)
                                    for i in added], seq)
            self.metrics.observe_store(len(items), len(duplicates), batch=batch)
            if self.events.listening:
                self._announce_stored(items, memories, added, duplicates, event)
                announce_idle(self.events, idle)

        try:
            memories, _, _, states, duplicates, _ = self.db.write(job, after)
        except DakeraError:
            raise
        except Exception as exc:
            if unique_violation(exc):
                raise ConflictError("a memory with this id already exists for this agent"
                                    ) from None
            raise
        return StoreResult(memories, embed_ms, states, duplicates, tokens,
                           self.embedder.preset.max_seq_length)

    def _announce_stored(self, items: list[NewMemory], memories: list[Memory],
                         added: list[int], duplicates: dict[int, str], event: str) -> None:
        for i in added:
            m = memories[i]
            self.events.memory(event, m.agent_id, memory_id=m.id, content=m.content,
                               importance=m.importance, tags=m.tags, session_id=m.session_id)
        for i, duplicate_id in duplicates.items():
            new, kept = items[i], memories[i]
            self.events.memory("deduplicated", kept.agent_id, memory_id=duplicate_id,
                               content=new.content, importance=new.importance, tags=new.tags,
                               session_id=new.session_id, merged_into=kept.id)
        if added:
            self.events.vectors_mutated(memories[added[0]].agent_id, "upsert", len(added))

    def update(self, agent_id: Any, memory_id: Any, *, content: Any = None,
               metadata: Any = None, memory_type: Any = None, importance: Any = None,
               tags: Any = None, ttl_seconds: Any = None, expires_at: Any = None) -> Memory:
        """Change the given fields; new content is re-embedded. A new ttl_seconds counts
        from now; expires_at wins over it."""
        agent = validate.agent_id(agent_id)
        ttl = validate.ttl_seconds(ttl_seconds)
        expiry = validate.unix_seconds(expires_at, "expires_at")
        text = None if content is None else validate.content(
            content, self.settings.max_content_bytes)
        meta = validate.metadata(metadata, max_bytes=self.settings.max_metadata_bytes)
        mtype = validate.memory_type(memory_type)
        new_importance = validate.importance(importance)
        new_tags = validate.tags(tags)
        memory = self.get(memory_id, agent)
        now = self.now()
        if meta is not None:
            kept = {k: v for k, v in memory.metadata.items() if k == EVENT_TIME_KEY}
            memory.metadata = {**meta, **kept}
        if mtype is not None:
            memory.memory_type = mtype
        if new_importance is not None:
            memory.importance = new_importance
        if new_tags is not None:
            memory.tags = new_tags
        if ttl is not None:
            memory.ttl_seconds, memory.expires_at = ttl, now + ttl
        if expiry is not None:
            memory.expires_at = expiry
        row = None
        found: list[Mention] = []
        if text is not None and text != memory.content:
            memory.content = text
            self.db.check_writable()
            extracting = find_entities([(text, self.store_policy(agent).entity_types)])
            vectors, sentence_vectors = self._embed([text])
            row = MemoryRow(memory, vectors[0], content_hash(text),
                            sentences=sentence_vectors[0])
            found = extracting.result()[0]
        memory.updated_at = now
        timeout = self.settings.session_idle_timeout
        graph = self.graph

        def job(tx: Tx) -> tuple[int, Memory, IdleEnded]:
            # Importance is written only when asked: a recall's boost committed since the
            # read above is kept. The memory comes back as committed.
            seq = tx.memories.update(memory, row, set_importance=new_importance is not None)
            if row is not None:  # new content: its entities and derived edges anew
                tx.entities.replace(memory.rowid, agent, [])
                tx.edges.remove_from(memory.rowid, DERIVED)
                linker = Linker(tx, graph, now)
                near = (neighbours(tx, row, graph.related_threshold, now, [],
                                   search_one(self.indexes, row)) if graph.enabled else [])
                linker.add(row, near, found)
                linker.flush()
            idle: IdleEnded = []
            if memory.session_id is not None:
                idle = tx.sessions.expire_idle(now, timeout)
                tx.sessions.activity(agent, {memory.session_id}, now, timeout)
            return seq, tx.memories.by_rowid(memory.rowid), idle

        def after(result: tuple[int, Memory, IdleEnded]) -> None:
            if row is not None:
                self.indexes.added(agent, [memory.rowid], row.vector[None, :],
                                   [(memory.content, memory.event_time)], result[0])
                self.events.vectors_mutated(agent, "upsert", 1)
            if new_importance is not None:
                m = result[1]
                self.events.memory("importance_updated", agent, memory_id=m.id,
                                   importance=m.importance, tags=m.tags,
                                   session_id=m.session_id)
            announce_idle(self.events, result[2])

        return self.db.write(job, after)[1]

    def truncation(self, content: str) -> dict[str, Any] | None:
        """The truncation report of a content longer than the model's window, else None."""
        tokens = self.embedder.count_tokens([content])
        return StoreResult([], 0.0, tokens=tokens,
                           max_tokens=self.embedder.preset.max_seq_length).truncation(0)

    def forget(self, agent_id: Any, *, memory_ids: Any = None, tags: Any = None,
               session_id: Any = None, before_timestamp: Any = None) -> int:
        """Delete the agent's memories matching every given predicate. An explicit empty
        `tags` list matches everything; an explicit empty `memory_ids` list matches nothing."""
        agent = validate.agent_id(agent_id)
        if memory_ids is not None and (not isinstance(memory_ids, list) or not all(
                isinstance(i, str) for i in memory_ids)):
            raise ValidationError("'memory_ids' must be a list of strings")
        tag_list = validate.tags(tags, storing=False)
        session = validate.session_id(session_id)
        before = validate.unix_seconds(before_timestamp, "before_timestamp")
        if memory_ids is None and tag_list is None and session is None and before is None:
            raise ValidationError(
                "forget needs at least one of memory_ids, tags, session_id, before_timestamp")
        if memory_ids == []:
            return 0
        f = MemoryFilter(memory_ids=memory_ids, tags_any=tag_list or None, session_id=session,
                         created_before=None if before is None else before - 1)
        return self.delete(agent, self.db.memories.rowids(agent, f, None))

    def delete(self, agent: str, rowids: list[int], reason: str = "forget") -> int:
        """Delete these memories of the agent, and their vectors from its index; a
        `forgotten` event (with the reason: forget, decay, expired) for each."""
        if not rowids:
            return 0
        listening = self.events.listening

        def job(tx: Tx) -> tuple[int, dict[int, str]]:
            ids = tx.memories.ids(rowids) if listening else {}
            return tx.memories.delete(agent, rowids), ids

        def after(result: tuple[int, dict[int, str]]) -> None:
            seq, ids = result
            self.indexes.deleted(agent, rowids, seq)
            self.metrics.observe_delete(len(rowids), reason)
            for memory_id in ids.values():
                self.events.memory("forgotten", agent, memory_id=memory_id, reason=reason)
            self.events.vectors_mutated(agent, "delete", len(rowids))

        self.db.write(job, after)
        return len(rowids)

    def delete_pairs(self, pairs: list[tuple[str, int]], reason: str = "forget") -> int:
        """Delete (agent, rowid) pairs in bounded batches."""
        by_agent: dict[str, list[int]] = {}
        for agent, rowid in pairs:
            by_agent.setdefault(agent, []).append(rowid)
        deleted = 0
        for agent, rowids in by_agent.items():
            for i in range(0, len(rowids), DELETE_BATCH):
                deleted += self.delete(agent, rowids[i:i + DELETE_BATCH], reason)
        return deleted

    def compact_indexes(self) -> int:
        """Rebuild vector indexes left mostly empty by deletions."""
        return self.indexes.compact()

    # -- reads --------------------------------------------------------------------------

    def get(self, memory_id: Any, agent_id: Any = None) -> Memory:
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("'memory_id' must be a non-empty string")
        agent = None if agent_id is None else validate.agent_id(agent_id)
        found = self.db.memories.get(memory_id, agent, self.now())
        if not found:
            raise NotFoundError(f"memory {memory_id!r} not found", resource="memory")
        if len(found) > 1:
            holders = ", ".join(sorted(m.agent_id for m in found))
            raise ValidationError(f"memory id {memory_id!r} is held by several agents "
                                  f"({holders}); pass agent_id")
        return found[0]

    def batch_recall(self, agent_id: Any, filter: Any = None, limit: Any = 100
                     ) -> dict[str, Any]:
        """Memories matching filter predicates, newest first; no embedding."""
        agent = validate.agent_id(agent_id)
        f = batch_filter(filter)
        n = validate.limit(limit, validate.MAX_BATCH_RECALL, "limit")
        now = self.now()
        memories = self.db.memories.newest(agent, f, now, limit=n)
        filtered = self.db.memories.count(agent, f, now)
        total = self.db.memories.count(agent, MemoryFilter(), now) if f.any() else filtered
        return {"memories": memories, "total": total, "filtered": filtered,
                "truncated": filtered > len(memories)}

    def batch_forget(self, agent_id: Any, filter: Any) -> int:
        """Delete the agent's memories matching the filter; refuses an empty filter
        (an explicit empty `tags` list counts, and matches everything)."""
        agent = validate.agent_id(agent_id)
        f = batch_filter(filter)
        if not f.any():
            raise ValidationError("batch forget needs at least one filter predicate "
                                  "(tags, min_importance, max_importance, created_after, "
                                  "created_before, memory_type, session_id)")
        return self.delete(agent, self.db.memories.rowids(agent, f, self.now()))

    # -- the trash of merged duplicates --------------------------------------------------

    def list_deduplicated(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        items = self.db.trash.restorable(agent, self.now())
        return {"agent_id": agent, "memories": items, "count": len(items)}

    def restore_deduplicated(self, agent_id: Any, memory_id: Any) -> Memory:
        """Store a merged duplicate again, as a separate memory under its own id; a memory
        forgotten with `discard` comes back as it was."""
        agent = validate.agent_id(agent_id)
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("'memory_id' is required")
        now = self.now()
        if self.db.memories.get(memory_id, agent, now):
            raise ConflictError(f"agent {agent!r} already holds a memory {memory_id!r}")
        peeked = self.db.trash.peek(agent, memory_id, now)
        if peeked is not None and FORGOTTEN_KEY in peeked:
            return self._restore_forgotten(agent, memory_id, peeked[FORGOTTEN_KEY], now)
        saved = self.db.write(lambda tx: tx.trash.take(agent, memory_id, now))
        if saved is None:
            raise NotFoundError(f"no restorable duplicate {memory_id!r}", resource="memory")
        new = NewMemory(
            agent_id=agent, content=saved["content"], memory_type=saved["memory_type"],
            importance=saved["importance"], tags=saved["tags"], metadata=saved["metadata"],
            session_id=saved.get("session_id"), ttl_seconds=saved.get("ttl_seconds"),
            expires_at=saved.get("expires_at"), event_time=saved.get("event_time"),
            id=memory_id)
        return self.insert([new], dedup=False, event="restored").memory

    # -- forget with undo (the memory browser) ---------------------------------------------

    def discard(self, agent_id: Any, memory_id: Any) -> dict[str, Any]:
        """Forget one memory but keep it restorable, as it was (importance, times, access
        count, when it last decayed), for DAKERA_DEDUP_RETENTION_HOURS: it is listed in the
        agent's trash (kind `forgotten`) and `restore_deduplicated` brings it back."""
        agent = validate.agent_id(agent_id)
        memory = self.get(memory_id, agent)
        now = self.now()
        keep = self.settings.dedup_retention_hours * 3600
        listening = self.events.listening

        def job(tx: Tx) -> int:
            state = tx.decay.state(memory.rowid)
            saved = {"content": memory.content, "memory_type": memory.memory_type,
                     "session_id": memory.session_id,
                     FORGOTTEN_KEY: {**memory.to_dict(), "importance": memory.importance,
                                     "event_time": memory.event_time,
                                     "decayed_at": state[0] if state else now}}
            tx.trash.put(agent, memory.id, "", saved, now, keep, kind="forgotten")
            return tx.memories.delete(agent, [memory.rowid])

        def after(seq: int) -> None:
            self.indexes.deleted(agent, [memory.rowid], seq)
            self.metrics.observe_delete(1, "forget")
            if listening:
                self.events.memory("forgotten", agent, memory_id=memory.id, reason="forget")
            self.events.vectors_mutated(agent, "delete", 1)

        self.db.write(job, after)
        return {"memory_id": memory.id, "agent_id": agent, "restorable_until": now + keep,
                "restorable": keep > 0}

    def _restore_forgotten(self, agent: str, memory_id: str, saved: dict[str, Any],
                           now: int) -> Memory:
        memory = Memory(
            id=memory_id, agent_id=agent, content=saved["content"],
            memory_type=saved["memory_type"], importance=float(saved["importance"]),
            tags=list(saved["tags"]), metadata=dict(saved["metadata"]),
            session_id=saved.get("session_id"), created_at=int(saved["created_at"]),
            updated_at=int(saved["updated_at"]),
            last_accessed_at=int(saved["last_accessed_at"]),
            access_count=int(saved["access_count"]), ttl_seconds=saved.get("ttl_seconds"),
            expires_at=saved.get("expires_at"), event_time=saved.get("event_time"))
        vectors, sentence_vectors = self._embed([memory.content])
        vector = vectors[0]
        row = MemoryRow(memory, vector, content_hash(memory.content),
                        decayed_at=saved.get("decayed_at"), sentences=sentence_vectors[0])

        def job(tx: Tx) -> int:
            if tx.trash.take(agent, memory_id, now) is None:
                raise NotFoundError(f"no restorable memory {memory_id!r}", resource="memory")
            return tx.memories.insert(row)

        def after(seq: int) -> None:
            self.indexes.added(agent, [memory.rowid], vector[None, :],
                               [(memory.content, memory.event_time)], seq)
            self.events.memory("restored", agent, memory_id=memory.id, content=memory.content,
                               importance=memory.importance, tags=memory.tags,
                               session_id=memory.session_id)
            self.events.vectors_mutated(agent, "upsert", 1)

        try:
            self.db.write(job, after)
        except Exception as exc:
            if unique_violation(exc):
                raise ConflictError(f"agent {agent!r} already holds a memory {memory_id!r}"
                                    ) from None
            raise
        return memory
    # -- merges: consolidation and deduplication ------------------------------------------

    def merge_into(self, sources: list[Memory], new: NewMemory) -> Memory:
        """Store `new` in place of `sources` (of one agent) in one transaction: the new
        memory is inserted and linked, the sources' explicit links and supersedes edges move
        to it, and the sources go to the trash (kind consolidation), restorable. Raises
        ConflictError when a source changed or went since it was read."""
        agent = new.agent_id
        now = self.now()
        extracting = find_entities([(new.content, self.store_policy(agent).entity_types)])
        vectors, sentence_vectors = self._embed([new.content])
        vector = vectors[0]
        memory = Memory(
            id=new_memory_id(), agent_id=agent, content=new.content,
            memory_type=new.memory_type, importance=new.importance, tags=new.tags,
            metadata=new.metadata, session_id=new.session_id, created_at=now, updated_at=now,
            last_accessed_at=now, access_count=0, ttl_seconds=None, expires_at=None,
            event_time=new.event_time)
        row = MemoryRow(memory, vector, content_hash(new.content),
                        sentences=sentence_vectors[0])
        found = extracting.result()[0]
        retention, graph = self.retention(), self.graph
        old = [m.rowid for m in sources]

        def job(tx: Tx) -> tuple[int, int]:
            _unchanged(tx, sources, now)
            added_seq = tx.memories.insert(row)
            linker = Linker(tx, graph, now)
            near = (neighbours(tx, row, graph.related_threshold, now, [],
                               search_one(self.indexes, row)) if graph.enabled else [])
            linker.add(row, [n for n in near if n.rowid not in old], found)
            linker.flush()
            tx.edges.repoint(old, memory.rowid, KEPT_ON_MERGE)
            for m in sources:
                tx.trash.put(agent, m.id, memory.id, saved_copy(m), now, retention,
                             "consolidation")
            return added_seq, tx.memories.delete(agent, old)

        def after(seqs: tuple[int, int]) -> None:
            self.indexes.deleted(agent, old, seqs[1])
            self.indexes.added(agent, [memory.rowid], vector[None, :],
                               [(memory.content, memory.event_time)], seqs[0])
            self.events.memory("stored", agent, memory_id=memory.id, content=memory.content,
                               importance=memory.importance, tags=memory.tags,
                               session_id=memory.session_id)
            for m in sources:
                self.events.memory("consolidated", agent, memory_id=m.id, content=m.content,
                                   importance=m.importance, tags=m.tags,
                                   session_id=m.session_id, merged_into=memory.id)
            self.events.vectors_mutated(agent, "upsert", 1)
            self.events.vectors_mutated(agent, "delete", len(old))

        self.db.write(job, after)
        return memory

    def fold(self, agent: str, groups: list[tuple[Memory, list[Memory]]], kind: str,
             keep_secs: int | None = None) -> tuple[list[tuple[Memory, list[Memory]]], int]:
        """Fold each group's duplicates into its survivor (the higher importance and every
        tag kept, explicit links moved over) and trash them (restorable). A group whose
        memories changed or went since they were read is skipped. Returns the groups folded
        and how many duplicates were skipped."""
        if not groups:
            return [], 0
        now = self.now()
        retention = self.retention() if keep_secs is None else keep_secs

        def job(tx: Tx) -> tuple[list[tuple[Memory, list[Memory]]], int, list[int], int]:
            done, skipped, gone, seq = [], 0, [], 0
            for survivor, dups in groups:
                try:
                    _unchanged(tx, [survivor, *dups], now)
                except ConflictError:
                    skipped += len(dups)
                    continue
                for m in dups:
                    tx.memories.merge_duplicate(survivor.rowid, m.importance, m.tags, now)
                    tx.trash.put(agent, m.id, survivor.id, saved_copy(m), now, retention, kind)
                rowids = [m.rowid for m in dups]
                tx.edges.repoint(rowids, survivor.rowid, KEPT_ON_MERGE)
                seq = tx.memories.delete(agent, rowids)
                gone += rowids
                done.append((survivor, dups))
            return done, skipped, gone, seq

        def after(result: tuple[list[tuple[Memory, list[Memory]]], int, list[int], int]
                  ) -> None:
            if result[2]:
                self.indexes.deleted(agent, result[2], result[3])
                event = "deduplicated" if kind == "deduplication" else "consolidated"
                for survivor, dups in result[0]:
                    for m in dups:
                        self.events.memory(event, agent, memory_id=m.id, content=m.content,
                                           importance=m.importance, tags=m.tags,
                                           session_id=m.session_id, merged_into=survivor.id)
                self.events.vectors_mutated(agent, "delete", len(result[2]))

        done, skipped, _, _ = self.db.write(job, after)
        return done, skipped


# Edges a merged memory inherits from the memories merged into it: what was said
# explicitly. Derived edges (similarity, entities, session order) are made anew for it.
KEPT_ON_MERGE = ("linked_by", "supersedes")


def saved_copy(m: Memory) -> dict[str, Any]:
    """What the trash keeps of a memory to restore it (the fields of NewMemory)."""
    return {"agent_id": m.agent_id, "content": m.content, "memory_type": m.memory_type,
            "importance": m.importance, "tags": m.tags, "metadata": m.metadata,
            "session_id": m.session_id, "ttl_seconds": m.ttl_seconds,
            "expires_at": m.expires_at, "event_time": m.event_time, "id": m.id}


def _unchanged(tx: Tx, memories: list[Memory], now: int) -> None:
    """Raise ConflictError unless these memories are all still there as they were read."""
    live = tx.memories.by_rowids([m.rowid for m in memories], now)
    for m in memories:
        held = live.get(m.rowid)
        if held is None or held.updated_at != m.updated_at or held.content != m.content:
            raise ConflictError(f"memory {m.id!r} changed or was deleted meanwhile; "
                                "nothing was merged")


def embed_with_sentences(embedder: Embedder, split: bool, pooled: bool, texts: list[str],
                         known: list[np.ndarray | None] | None = None
                         ) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """The texts' vectors, and (with `split`: the lever is on) for each text that says
    several things its sentences' vectors (recall.sentences), else None: `pooled` from the
    same pass (Embedder.embed_parts), else each embedded on its own (in the same call). A
    text whose vector is `known` (an import's) is embedded only when it has sentences, for
    theirs."""
    have = known if known is not None else [None] * len(texts)
    parts = [sentence_parts(t) if split else [] for t in texts]
    todo = [i for i, v in enumerate(have) if v is None or parts[i]]
    whole = [None if v is None else np.asarray(v, dtype=np.float32) for v in have]
    out: list[np.ndarray | None] = [None] * len(texts)
    if todo:
        embed = embedder.embed_parts if pooled else partial(embed_separately, embedder)
        vectors, found = embed([texts[i] for i in todo], [parts[i] for i in todo])
        for j, i in enumerate(todo):
            if whole[i] is None:
                whole[i] = vectors[j]
            out[i] = found[j]
    if not whole:
        return np.empty((0, embedder.preset.dimension), dtype=np.float32), out
    return np.stack([w for w in whole if w is not None]), out
