"""The memory browser's reads: agents with their last activity, an agent's memories a page
at a time (filters, orders, keyset cursors), a memory with everything known about it, a
session as a timeline, the trash, and the numbers and distributions of the overview.

Every read is bounded: pages walk an index from a cursor (never an offset, never a whole
agent), and the distributions are read from indexes rather than from the memories.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import validate
from app.config import Settings
from app.errors import NotFoundError, ValidationError
from app.models import MEMORY_SORTS, Indexes, Memory, MemoryFilter, PageCursor, Session
from app.service.decay import Decay
from app.service.metrics import Metrics
from app.service.sessions import Sessions
from app.store import Store

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# A filtered page examines at most this many memories from its cursor: a filter few
# memories pass then shows what it found so far and a link to look further.
SCAN = 10_000
HISTOGRAM_BINS = 20
TIME_BUCKETS = 60
NEIGHBOURS = 2  # session neighbours on each side
SIMILAR = 5


def cursor_of(memory: Memory, sort: str) -> str:
    """A page cursor: the sort column's value and the rowid of a memory on the page."""
    value: float
    if sort == "importance":
        value = memory.importance
    elif sort == "accessed":
        value = memory.last_accessed_at
    else:
        value = memory.created_at
    return f"{value!r}:{memory.rowid}"


def _text(cursor: PageCursor) -> str:
    return f"{cursor[0]!r}:{cursor[1]}"


def parse_cursor(value: Any, field: str) -> PageCursor | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or ":" not in value:
        raise ValidationError(f"'{field}' is not a page cursor (follow the page links)")
    number, _, rowid = value.rpartition(":")
    try:
        return float(number), int(rowid)
    except ValueError:
        raise ValidationError(f"'{field}' is not a page cursor (follow the page links)"
                              ) from None


def _importance_bound(value: Any, field: str) -> float | None:
    """An importance typed into a form ("0.7") or given as a number."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = float(value)
        except ValueError:
            raise ValidationError(f"'{field}' must be a number between 0 and 1") from None
    return validate.importance(value, field)


class Browse:
    def __init__(self, store: Store, indexes: Indexes, settings: Settings,
                 now: Callable[[], int], sessions: Sessions, decay: Decay,
                 metrics: Metrics) -> None:
        self.db = store
        self.indexes = indexes
        self.settings = settings
        self.now = now
        self.sessions = sessions
        self.decay = decay
        self.metrics = metrics

    # -- agents -----------------------------------------------------------------------------

    def agents(self) -> list[dict[str, Any]]:
        """Every agent with its memory and session counts and its last activity."""
        activity = self.db.agents.last_activity()
        return [{**a, "last_activity_at": activity.get(a["agent_id"])}
                for a in self.db.agents.overview()]

    # -- an agent's memories --------------------------------------------------------------

    def page(self, agent_id: Any, *, sort: Any = None, memory_type: Any = None,
             tag: Any = None, session_id: Any = None, min_importance: Any = None,
             max_importance: Any = None, after: Any = None, before: Any = None,
             limit: Any = PAGE_SIZE) -> dict[str, Any]:
        """One page of the agent's memories. `after` / `before` are the cursors of the
        page links (`next` and `prev` of the answer)."""
        agent = validate.agent_id(agent_id)
        order = validate.choice(sort or None, MEMORY_SORTS, "sort") or "recent"
        low = _importance_bound(min_importance, "min_importance")
        high = _importance_bound(max_importance, "max_importance")
        if low is not None and high is not None and low > high:
            raise ValidationError("'min_importance' is above 'max_importance'")
        tag_value: Any = tag.strip() if isinstance(tag, str) else tag
        f = MemoryFilter(
            memory_type=validate.memory_type(memory_type or None),
            tags_any=validate.tags([tag_value], "tag", storing=False) if tag_value else None,
            session_id=validate.session_id(session_id or None, "session"),
            min_importance=low, max_importance=high)
        n = validate.limit(limit, MAX_PAGE_SIZE)
        start, end = parse_cursor(after, "after"), parse_cursor(before, "before")
        now = self.now()
        prev: str | None
        following: str | None
        if end is not None:
            rows, stopped = self.db.memories.browse(agent, f, now, sort=order, limit=n + 1,
                                                    before=end, scan=SCAN)
            prev = (cursor_of(rows[1], order) if len(rows) > n
                    else _text(stopped) if stopped else None)
            rows = rows[-n:]
            following = cursor_of(rows[-1], order) if rows else _text(end)
        else:
            rows, stopped = self.db.memories.browse(agent, f, now, sort=order, limit=n + 1,
                                                    after=start, scan=SCAN)
            following = (cursor_of(rows[n - 1], order) if len(rows) > n
                         else _text(stopped) if stopped else None)
            rows = rows[:n]
            prev = (None if start is None else cursor_of(rows[0], order) if rows
                    else _text(start))
        return {"agent_id": agent, "memories": rows, "sort": order, "filter": f,
                "next": following, "prev": prev, "partial": stopped is not None,
                "scan": SCAN, "stored": self.db.agents.memory_count(agent)}

    # -- one memory -----------------------------------------------------------------------

    def memory(self, agent_id: Any, memory_id: Any) -> dict[str, Any]:
        """A memory with its feedback history, its decay forecast, its session neighbours
        and the memories nearest to it by vector."""
        agent = validate.agent_id(agent_id)
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("'memory_id' is required")
        now = self.now()
        found = self.db.memories.get(memory_id, agent, now)
        if not found:
            raise NotFoundError(f"memory {memory_id!r} not found", resource="memory")
        memory = found[0]
        return {"memory": memory,
                "history": self.db.feedback.history(agent, memory.id),
                "forecast": self.decay.forecast(memory),
                "neighbours": self._neighbours(memory, now),
                "similar": self._similar(memory, now)}

    def _neighbours(self, memory: Memory, now: int) -> list[tuple[int, Memory]]:
        """(offset, memory) of the memories stored just before and after it in its
        session."""
        if memory.session_id is None:
            return []
        found = self.db.memories.session_adjacent(memory.agent_id, [memory.rowid],
                                                  MemoryFilter(), now, after=NEIGHBOURS,
                                                  before=NEIGHBOURS)
        loaded = self.db.memories.by_rowids([rowid for _, rowid, _ in found], now)
        return sorted(((offset, loaded[rowid]) for _, rowid, offset in found
                       if rowid in loaded), key=lambda pair: pair[0])

    def _similar(self, memory: Memory, now: int) -> list[tuple[float, Memory]]:
        """(cosine, memory) of the agent's memories nearest to it, nearest first."""
        index = self.indexes.find(memory.agent_id)
        if index is None or len(index) < 2:
            return []
        found, vectors = index.vectors([memory.rowid])
        if len(found) == 0:
            stored, vectors = self.db.vectors.get([memory.rowid])
            if len(stored) == 0:
                return []
        near, sims = index.search(vectors[0], SIMILAR + 1)
        loaded = self.db.memories.by_rowids([int(x) for x in near], now)
        return [(float(sim), loaded[int(label)]) for label, sim in zip(near, sims, strict=True)
                if int(label) != memory.rowid and int(label) in loaded][:SIMILAR]

    # -- sessions -------------------------------------------------------------------------

    def sessions_of(self, agent_id: Any, *, offset: Any = 0,
                    limit: Any = PAGE_SIZE) -> tuple[list[Session], int]:
        return self.sessions.find(agent_id=agent_id, limit=limit, offset=offset)

    def timeline(self, agent_id: Any, session_id: Any, *, after: Any = None,
                 before: Any = None, limit: Any = PAGE_SIZE) -> dict[str, Any]:
        """A session's memories in the order they were stored, a page at a time."""
        agent = validate.agent_id(agent_id)
        session = self.sessions.get(session_id)
        if session.agent_id != agent:
            raise NotFoundError(f"session {session.id!r} not found", resource="session")
        page = self.page(agent, sort="oldest", session_id=session.id, after=after,
                         before=before, limit=limit)
        return {**page, "session": session}

    # -- the trash ------------------------------------------------------------------------

    def trash(self, agent_id: Any) -> list[dict[str, Any]]:
        """What can still be restored: memories forgotten here, duplicates merged on
        store."""
        agent = validate.agent_id(agent_id)
        return self.db.trash.restorable(agent, self.now())

    # -- the overview ---------------------------------------------------------------------

    def overview(self, agent_id: Any = None) -> dict[str, Any]:
        """The numbers and distributions of one agent's memories, or of every agent's."""
        agent = None if agent_id is None else validate.agent_id(agent_id)
        first, last = self.db.memories.created_range(agent)
        timeline: dict[str, Any] = {"start": None, "step": 0, "counts": []}
        if first is not None and last is not None:
            step = max(3600, -(-(last + 1 - first) // TIME_BUCKETS))
            step = _round_step(step)
            start = first - first % step
            buckets = min(TIME_BUCKETS, (last - start) // step + 1)
            timeline = {"start": start, "step": step, "counts":
                        self.db.memories.created_histogram(agent, start, step, buckets)}
        out: dict[str, Any] = {
            "agent_id": agent,
            "by_type": self.db.memories.type_counts(agent),
            "importance": self.db.memories.importance_histogram(agent, HISTOGRAM_BINS),
            "created": timeline,
            "decay": {**self.decay.stats(), **self.decay.config(),
                      "floor": self.decay.policy().min_importance},
            "recall": self.metrics.recall_summary() if self.settings.metrics else None,
        }
        if agent is None:
            sizes = self.indexes.stats()
            out["agents"] = len(self.db.agents.last_activity())
            out["indexes"] = {"loaded": len(sizes), "vectors": sum(sizes.values()),
                              "builds": dict(self.indexes.builds), "by_agent": sizes}
        else:
            sizes = self.indexes.stats()
            out["indexes"] = {"vectors": sizes.get(agent, 0)}
        return out


def _round_step(step: int) -> int:
    """A bucket width people read easily: an hour, 6 hours, a day, a week, 30 days..."""
    for nice in (3600, 6 * 3600, 12 * 3600, 86_400, 2 * 86_400, 7 * 86_400, 14 * 86_400,
                 30 * 86_400, 91 * 86_400, 365 * 86_400):
        if step <= nice:
            return nice
    return step


__all__ = ["Browse", "cursor_of", "parse_cursor"]
