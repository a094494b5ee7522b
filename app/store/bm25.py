"""Top-k BM25 over FTS5 without scoring every match.

FTS5's bm25() costs about half a microsecond per matching row (it reads the row's position
lists and its size), and a common word matches a large share of an agent's memories: at
100,000 memories "What does Alice like?" matches 36,000 rows, and scoring all of them was
most of the cost of a recall. Three things keep the rows scored few:

1. Confinement only when needed. The agent token (see migrations) confines a MATCH to one
   agent's rows, at the price of walking that agent's whole doclist in every statement.
   When the other agents hold less than a fifth of the rows, the token is left out (it has
   weight 0: the scores do not change) and the agent's rows are picked from the top rows.
2. Exact pruning (MaxScore). A term t adds at most idf(t) * (k1 + 1) to any row's score.
   The query's terms are split into rare ones R and common ones C; the rows holding an R term
   are scored exactly (`R AND C` plus `R NOT C`: every phrase of the query is in both
   expressions, once, so each score equals the full query's). If the limit-th best of those
   scores beats the largest score a row holding only C terms could reach, those rows cannot
   enter the result, and the result equals full scoring. idf(t) is read from FTS5 itself in
   the query's snapshot (two bm25() weightings of one row give it exactly).
3. A budget. When the exact plan would score more than `max_scored` rows, the rows holding
   the rarer terms are still all scored, but of the rows holding only common terms just the
   newest `max_scored` are: BM25 over common terms alone carries little signal, and the
   newest memories are the likelier answer. A query made only of common terms is scored over
   its newest `max_scored` matches. `max_scored=0` always scores everything.

Filters other than the agent and expiry are applied by joining the scored rows to memories;
without them the FTS5 top rows are checked after the fact (and fetched again, deeper, in the
rare case that expired rows crowd the top).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.store.db import Connection

K1 = 1.2  # FTS5's bm25 constants
WEIGHTS = "1.0, 0.5, 0.0"  # content, context, agent
SCORE = f"bm25(memories_fts, {WEIGHTS})"
MAX_SCORED = 10_000
FULL_BELOW = 4_000  # rows: scoring all of them beats planning to score fewer
_OR_OF_PHRASES = re.compile(r'"[^"]*"(?: OR "[^"]*")*')
_PHRASE = re.compile(r'"[^"]*"')
_ATTEMPTS = 3

@dataclass
class Query:
    agent_id: str
    agent_token: str
    where: str  # memories filters over alias m (agent and expiry included)
    params: list[Any]
    filtered: bool  # filters beyond agent and expiry
    limit: int


def phrases(match: str) -> list[str] | None:
    """The quoted phrases of an OR-of-phrases expression (what recall builds), else None."""
    if not _OR_OF_PHRASES.fullmatch(match):
        return None
    return list(dict.fromkeys(_PHRASE.findall(match)))


def top(conn: Connection, q: Query, match: str, max_scored: int = MAX_SCORED,
        trace: list[str] | None = None) -> list[tuple[int, float]]:
    """(rowid, -bm25) of the agent's best `q.limit` rows for `match`, best first. `trace`
    receives how the query was answered: "plain" (not an OR of phrases), "none" (no term
    matches), "pruned" (exact, common-only rows skipped), "full" (exact, every match scored)
    or "window" (the budget: newest matches only)."""
    trace = [] if trace is None else trace
    prefix = f'agent : "{q.agent_token}" AND ' if _confine(conn, q.agent_id) else ""
    terms = phrases(match)
    if terms is None:
        trace.append("plain")
        return _run(conn, q, f"{prefix}({match})")
    known = _idf_cache(conn)
    idf = {t: v for t in terms if (v := known.get(t) if t in known else
                                   known.setdefault(t, _idf(conn, t))) is not None}
    if not idf:
        trace.append("none")
        return []
    n_rows = _row_bound(conn)
    hits = {t: _hits_estimate(v, n_rows) for t, v in idf.items()}
    ordered = sorted(idf, key=lambda t: -idf[t])  # rarest first
    total = sum(hits.values())
    if (len(ordered) == 1 or total <= FULL_BELOW) and (not max_scored or total <= max_scored):
        trace.append("full")  # one statement scoring everything is the cheapest plan
        return _run(conn, q, f"{prefix}({_any(ordered)})")
    if max_scored and hits[ordered[0]] > max_scored:
        trace.append("window")
        return _run(conn, q, f"{prefix}({_any(ordered)})", window=max_scored)
    # Score the rows holding the rarest terms exactly, a few more terms at a time, until
    # the rows holding only the remaining (common) terms cannot reach the result.
    best: list[tuple[int, float]] = []
    done: list[str] = []  # terms whose rows are all scored
    cut = 0
    for attempt in range(_ATTEMPTS + 1):
        nxt = cut + 1
        while nxt < len(ordered) and sum(hits[t] for t in ordered[:nxt]) < q.limit:
            nxt += 1
        if attempt == _ATTEMPTS:
            nxt = len(ordered)
        if max_scored and sum(hits[t] for t in ordered[:nxt]) > max_scored:
            # Over budget: the rows holding the rarer terms are scored (best, exact); of
            # the rows holding only common terms, the newest max_scored are.
            trace.append("window")
            if not done:
                return _run(conn, q, f"{prefix}({_any(ordered)})", window=max_scored)
            rest = _run(conn, q, f"{prefix}({_any(ordered[cut:])}) NOT ({_any(done)})",
                        window=max_scored)
            return sorted([*best, *rest], key=lambda r: -r[1])[:q.limit]
        new, common = ordered[cut:nxt], ordered[nxt:]
        cut = nxt
        unseen = f" NOT ({_any(done)})" if done else ""
        if common:
            # Rows holding a new term and a common one, scored fully; then rows holding a
            # new term scored over the new terms only (exact for those without common
            # terms; the others are either in the first list or below its last row).
            scores = dict(_run(conn, q, f"{prefix}({_any(new)}){unseen}"))
            scores.update(_run(conn, q, f"{prefix}({_any(new)}) AND ({_any(common)}){unseen}"))
            rows = list(scores.items())
        else:
            rows = _run(conn, q, f"{prefix}({_any(new)}){unseen}")
        best = sorted([*best, *rows], key=lambda r: -r[1])[:q.limit]
        done.extend(new)
        if not common:
            trace.append("full")
            return best
        bound = sum(idf[t] for t in common) * (K1 + 1) * (1 + 1e-9) + 1e-12
        if len(best) == q.limit and best[-1][1] > bound:
            trace.append("pruned")
            return best
    raise AssertionError("unreachable: the last attempt scores every term")


def _any(terms: Sequence[str]) -> str:
    return " OR ".join(terms)


_IDF_CACHE: dict[int, tuple[Connection, int, dict[str, float | None]]] = {}


def _idf_cache(conn: Connection) -> dict[str, float | None]:
    """The idf of phrases already probed on this connection, while nothing has changed:
    `PRAGMA data_version` moves when another connection commits (the readers never write),
    so a cached value is the value FTS5 computes now."""
    version = int(conn.execute("PRAGMA data_version").fetchone()[0])
    cached = _IDF_CACHE.get(id(conn))
    if (cached is None or cached[0] is not conn or cached[1] != version
            or len(cached[2]) > 10_000):
        cached = _IDF_CACHE[id(conn)] = (conn, version, {})
    return cached[2]


def forget(conn: Connection) -> None:
    """Drop a closing connection's cache."""
    _IDF_CACHE.pop(id(conn), None)


def _confine(conn: Connection, agent_id: str) -> bool:
    """Whether to confine the MATCH with the agent token: when other agents hold a fair
    share of the rows. The token's phrase costs a walk of the agent's whole doclist in every
    statement (bm25 computes its idf too), so an agent holding most rows is better served
    unconfined, its rows picked out of the FTS5 top rows afterwards (see `_run`)."""
    cache = _idf_cache(conn)
    key = "\x00confine:" + agent_id
    if key not in cache:
        n_rows = _row_bound(conn)
        cap = max(1000, n_rows // 5)
        others = sum(int(conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM memories WHERE agent_id {op} ? LIMIT ?)",
            (agent_id, cap)).fetchone()[0]) for op in ("<", ">"))
        cache[key] = 1.0 if others >= cap else 0.0
    return bool(cache[key])


def _idf(conn: Connection, phrase: str) -> float | None:
    """The idf FTS5's bm25 gives a phrase now, or None when no row holds it.

    For one row holding the phrase, with every column weighted w, -bm25 = idf * (k1 + 1) *
    w f / (w f + K) (f and K the row's): 1 / score is linear in 1 / w, and its intercept is
    1 / (idf (k1 + 1)). Two weightings of the same row give it; FTS5 computes idf once per
    statement from the phrase's whole doclist."""
    row = conn.execute(
        "SELECT -bm25(memories_fts, 1.0, 1.0, 1.0), -bm25(memories_fts, 2.0, 2.0, 2.0) "
        "FROM memories_fts WHERE memories_fts MATCH ? LIMIT 1", (phrase,)).fetchone()
    if row is None:
        return None
    s1, s2 = float(row[0]), float(row[1])
    if s1 <= 0 or s2 <= 0:  # cannot happen (idf is at least 1e-6); stay safe: no bound
        return math.inf
    slope = (1 / s1 - 1 / s2) / (1 / 1.0 - 1 / 2.0)
    intercept = 1 / s1 - slope
    if intercept <= 0:
        return math.inf
    return 1 / ((K1 + 1) * intercept)


def _row_bound(conn: Connection) -> int:
    """At least the number of rows (rowids are never reused)."""
    return int(conn.execute("SELECT coalesce(max(rowid), 0) FROM memories").fetchone()[0])


def _hits_estimate(idf: float, n_rows: int) -> int:
    """Rows holding a term, from its idf = log((N - n + 0.5) / (n + 0.5)); for planning only."""
    if math.isinf(idf):
        return 0
    if idf <= 1e-5:  # clamped: the term is in more than half of the rows
        return n_rows
    return int((n_rows + 1) / (math.exp(idf) + 1))


def _run(conn: Connection, q: Query, expr: str, window: int = 0) -> list[tuple[int, float]]:
    """The best q.limit rows of the agent for one FTS5 expression; with `window`, among the
    newest `window` matching rows only."""
    if q.filtered:
        return _joined(conn, q, expr, window)
    depth = q.limit * 3 // 2 + 16  # room for rows of other agents or expired ones
    for _ in range(4):
        if window:
            sql = (f"SELECT rowid, s FROM (SELECT rowid, {SCORE} AS s FROM memories_fts "
                   "WHERE memories_fts MATCH ? ORDER BY rowid DESC LIMIT ?) "
                   "ORDER BY s LIMIT ?")
            rows = conn.execute(sql, (expr, window, depth)).fetchall()
        else:
            sql = (f"SELECT rowid, {SCORE} AS s FROM memories_fts WHERE memories_fts MATCH ? "
                   "ORDER BY s LIMIT ?")
            rows = conn.execute(sql, (expr, depth)).fetchall()
        if not rows:
            return []
        ids = ",".join(str(int(r[0])) for r in rows)
        keep = {r[0] for r in conn.execute(
            f"SELECT m.rowid FROM memories m NOT INDEXED WHERE m.rowid IN ({ids}) "
            f"AND {q.where}",
            q.params)}
        out = [(int(r[0]), -float(r[1])) for r in rows if r[0] in keep]
        if len(out) >= q.limit or len(rows) < depth:
            return out[:q.limit]
        depth *= 8
    return _joined(conn, q, expr, window)


def _joined(conn: Connection, q: Query, expr: str, window: int) -> list[tuple[int, float]]:
    inner = (f"SELECT rowid, {SCORE} AS s FROM memories_fts WHERE memories_fts MATCH ?"
             + (" ORDER BY rowid DESC LIMIT ?" if window else ""))
    sql = (f"WITH hits AS MATERIALIZED ({inner}) "
           "SELECT h.rowid, -h.s FROM hits h CROSS JOIN memories m NOT INDEXED "
           "ON m.rowid = h.rowid "
           f"WHERE {q.where} ORDER BY h.s LIMIT ?")
    args: list[Any] = [expr, *([window] if window else []), *q.params, q.limit]
    return [(int(r[0]), float(r[1])) for r in conn.execute(sql, args)]
