"""Data namespaces (the contract's §2.1): each holds items, an item being a vector (of the
namespace's dimension) and/or a full-text document, with JSON metadata.

Vectors are float32 blobs in `ns_items` (namespaces differ in dimension, so sqlite-vec's
fixed-width tables do not fit); their hnswlib indexes are a cache kept in step through
`ns_index_log`, exactly as memories' are through `index_log` (app/store/vectors.py).
Full-text documents are indexed in `ns_fts` (FTS5, porter stemming), confined to their
namespace by a token column.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec
import numpy as np

from app import filter_dsl as dsl
from app.models import Item, Namespace
from app.store.db import Connection
from app.store.filters import dsl_sql, json_list
from app.store.protocol import ConnSource, ItemWrite

_encode = msgspec.json.encode
_decode = msgspec.json.decode

SPACE = {"cosine": "cosine", "dot_product": "ip", "euclidean": "l2"}
LIVE = "(i.expires_at IS NULL OR i.expires_at > ?)"
ITEM_COLUMNS = "i.rowid, i.id, i.vector, i.metadata, i.text, i.created_at, i.updated_at, " \
               "i.expires_at"
NS_COLUMNS = "name, dimension, distance, index_type, metadata, model, created_at, updated_at"
FTS_WEIGHTS = "1.0, 0.0"  # text, namespace token


_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def fts_text(content: str) -> str:
    """What FTS5 indexes of a text: word characters only (unicode61 keeps emoji inside
    tokens, so "blender🙄" would not be found by "blender")."""
    return _NOT_WORD.sub(" ", content)


def ns_token(namespace: str) -> str:
    """One FTS token per namespace (names hold characters the tokenizer splits on)."""
    return "n" + hashlib.sha256(namespace.encode()).hexdigest()[:24]


def vector_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _vector(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32)


def _item(row: Sequence[Any]) -> Item:
    return Item(rowid=row[0], id=row[1], vector=_vector(row[2]), metadata=_decode(row[3]),
                text=row[4], created_at=row[5], updated_at=row[6], expires_at=row[7])


def _namespace(row: Sequence[Any]) -> Namespace:
    return Namespace(name=row[0], dimension=row[1], distance=row[2], index_type=row[3],
                     metadata=None if row[4] is None else _decode(row[4]), model=row[5],
                     created_at=row[6], updated_at=row[7])


def _stack(rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, vectors) of (rowid, blob) rows of one namespace."""
    labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return labels, np.empty((0, 0), dtype=np.float32)
    vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
    return labels, vecs.reshape(len(rows), -1)


class SqliteNamespaces:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    # -- namespaces ----------------------------------------------------------------------

    def all(self) -> list[Namespace]:
        return [_namespace(r) for r in self._conn().execute(
            f"SELECT {NS_COLUMNS} FROM namespaces ORDER BY name")]

    def get(self, name: str) -> Namespace | None:
        row = self._conn().execute(f"SELECT {NS_COLUMNS} FROM namespaces WHERE name = ?",
                                   (name,)).fetchone()
        return None if row is None else _namespace(row)

    def stats(self, name: str, now: int) -> dict[str, int]:
        """Counts of a namespace's live items: with a vector, with text, and their bytes."""
        row = self._conn().execute(
            "SELECT count(i.vector), count(i.text), coalesce(sum(length(i.vector)), 0), "
            "coalesce(sum(length(i.text) + length(i.metadata)), 0), count(*) "
            f"FROM ns_items i WHERE i.namespace = ? AND {LIVE}", (name, now)).fetchone()
        return {"vector_count": row[0], "document_count": row[1], "vector_bytes": row[2],
                "other_bytes": row[3], "item_count": row[4]}

    # -- items: reads --------------------------------------------------------------------

    def _where(self, namespace: str, where: dsl.Node | None, now: int,
               vectors_only: bool = False, texts_only: bool = False) -> tuple[str, list[Any]]:
        clauses = ["i.namespace = ?", LIVE]
        params: list[Any] = [namespace, now]
        if vectors_only:
            clauses.append("i.vector IS NOT NULL")
        if texts_only:
            clauses.append("i.text IS NOT NULL")
        if where is not None:
            sql, more = dsl_sql(where, "i.metadata")
            clauses.append(sql)
            params += more
        return " AND ".join(clauses), params

    def count(self, namespace: str, where: dsl.Node | None, now: int, *,
              vectors_only: bool = True) -> int:
        sql, params = self._where(namespace, where, now, vectors_only=vectors_only)
        return int(self._conn().execute(f"SELECT count(*) FROM ns_items i WHERE {sql}",
                                        params).fetchone()[0])

    def rowids(self, namespace: str, where: dsl.Node | None, now: int | None, *,
               vectors_only: bool = False) -> list[int]:
        """Rowids of the items passing the filter (expired ones too when now is None)."""
        sql, params = self._where(namespace, where, now if now is not None else -1,
                                  vectors_only=vectors_only)
        return [r[0] for r in self._conn().execute(
            f"SELECT i.rowid FROM ns_items i WHERE {sql}", params)]

    def by_rowids(self, rowids: Iterable[int], now: int) -> dict[int, Item]:
        ids = list(rowids)
        if not ids:
            return {}
        rows = self._conn().execute(
            f"SELECT {ITEM_COLUMNS} FROM ns_items i WHERE i.rowid IN "
            f"(SELECT value FROM json_each(?)) AND {LIVE}", (json_list(ids), now))
        return {r[0]: _item(r) for r in rows}

    def by_ids(self, namespace: str, ids: Sequence[str], now: int) -> dict[str, Item]:
        rows = self._conn().execute(
            f"SELECT {ITEM_COLUMNS} FROM ns_items i WHERE i.namespace = ? AND i.id IN "
            f"(SELECT value FROM json_each(?)) AND {LIVE}", (namespace, json_list(ids), now))
        return {r[1]: _item(r) for r in rows}

    def existing(self, namespace: str, ids: Sequence[str]) -> dict[str, int]:
        """id -> rowid of the namespace's items with these ids (expired ones included)."""
        return {r[0]: r[1] for r in self._conn().execute(
            "SELECT id, rowid FROM ns_items WHERE namespace = ? AND id IN "
            "(SELECT value FROM json_each(?))", (namespace, json_list(ids)))}

    def size(self, namespace: str) -> int:
        """Every item the namespace holds (what its limit counts)."""
        return int(self._conn().execute("SELECT count(*) FROM ns_items WHERE namespace = ?",
                                        (namespace,)).fetchone()[0])

    def vectors(self, namespace: str, where: dsl.Node | None, now: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, vectors) of the live items passing the filter: for exact search."""
        sql, params = self._where(namespace, where, now, vectors_only=True)
        return _stack(self._conn().execute(
            f"SELECT i.rowid, i.vector FROM ns_items i WHERE {sql}", params).fetchall())

    def page(self, namespace: str, where: dsl.Node | None, now: int, after: int,
             limit: int) -> list[Item]:
        """Live items passing the filter in rowid order after `after` (export pages)."""
        sql, params = self._where(namespace, where, now)
        return [_item(r) for r in self._conn().execute(
            f"SELECT {ITEM_COLUMNS} FROM ns_items i WHERE {sql} AND i.rowid > ? "
            "ORDER BY i.rowid LIMIT ?", [*params, after, limit])]

    def fulltext(self, namespace: str, words: Sequence[str], where: dsl.Node | None, now: int,
                 limit: int) -> list[tuple[int, float]]:
        """(rowid, -bm25) of the namespace's best documents holding any of these words (each
        quoted: no user text is read as FTS5 syntax)."""
        if not words:
            return []
        sql, params = self._where(namespace, where, now, texts_only=True)
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        query = f'ns : "{ns_token(namespace)}" AND ({match})'
        rows = self._conn().execute(
            f"WITH hits AS MATERIALIZED (SELECT rowid, bm25(ns_fts, {FTS_WEIGHTS}) AS s "
            "FROM ns_fts WHERE ns_fts MATCH ?) SELECT h.rowid, -h.s FROM hits h "
            f"CROSS JOIN ns_items i ON i.rowid = h.rowid WHERE {sql} ORDER BY h.s LIMIT ?",
            [query, *params, limit])
        return [(int(r[0]), float(r[1])) for r in rows]

    def text_stats(self, namespace: str, now: int) -> tuple[int, float, int]:
        """(documents, mean length in words, distinct terms) of the full-text index."""
        conn = self._conn()
        n, avg = conn.execute(
            "SELECT count(*), coalesce(avg(i.text_words), 0) FROM ns_items i WHERE "
            f"i.namespace = ? AND i.text IS NOT NULL AND {LIVE}", (namespace, now)).fetchone()
        terms = conn.execute(
            "SELECT count(DISTINCT v.term) FROM ns_fts_terms v WHERE v.col = 'text' AND "
            "v.doc IN (SELECT rowid FROM ns_items WHERE namespace = ? AND text IS NOT NULL)",
            (namespace,)).fetchone()[0] if n else 0
        return int(n), float(avg), int(terms)

    def expired(self, now: int, limit: int) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._conn().execute(
            "SELECT namespace, rowid FROM ns_items WHERE expires_at IS NOT NULL AND "
            "expires_at <= ? LIMIT ?", (now, limit))]

    # -- writes (on the writer's connection, inside its transaction) -------------------

    def create(self, ns: Namespace) -> None:
        self._conn().execute(
            f"INSERT INTO namespaces ({NS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ns.name, ns.dimension, ns.distance, ns.index_type,
             None if ns.metadata is None else _encode(ns.metadata).decode(), ns.model,
             ns.created_at, ns.updated_at))

    def configure(self, name: str, *, dimension: int | None = None,
                  distance: str | None = None, model: str | None = None, now: int) -> None:
        """Set the given settings (None keeps a value)."""
        self._conn().execute(
            "UPDATE namespaces SET dimension = coalesce(?, dimension), distance = "
            "coalesce(?, distance), model = coalesce(?, model), updated_at = ? WHERE name = ?",
            (dimension, distance, model, now, name))

    def drop(self, name: str) -> int:
        """Delete a namespace with every item, its full-text rows and its index log;
        returns the items deleted."""
        conn = self._conn()
        conn.execute("DELETE FROM ns_fts WHERE rowid IN (SELECT rowid FROM ns_items WHERE "
                     "namespace = ? AND text IS NOT NULL)", (name,))
        count = conn.execute("DELETE FROM ns_items WHERE namespace = ?", (name,)).rowcount
        conn.execute("DELETE FROM ns_index_log WHERE namespace = ?", (name,))
        conn.execute("DELETE FROM meta WHERE key = ?", (f"ns_index_trim:{name}",))
        conn.execute("DELETE FROM namespaces WHERE name = ?", (name,))
        return int(count)

    def upsert(self, namespace: str, items: Sequence[ItemWrite], now: int
               ) -> tuple[list[int], int]:
        """Insert or update items by id (None fields keep their stored values); returns
        the labels whose vector was set, and the index log seq (0 when none was)."""
        conn = self._conn()
        known = self.existing(namespace, [w.id for w in items])
        labels: list[int] = []
        seq = 0
        for w in items:
            blob = None if w.vector is None else vector_blob(w.vector)
            meta = None if w.metadata is None else _encode(w.metadata).decode()
            words = None if w.text is None else len(fts_text(w.text).split())
            rowid = known.get(w.id)
            if rowid is None:
                cur = conn.execute(
                    "INSERT INTO ns_items (namespace, id, vector, metadata, text, text_words, "
                    "created_at, updated_at, expires_at) VALUES (?, ?, ?, coalesce(?, '{}'), "
                    "?, ?, ?, ?, ?)",
                    (namespace, w.id, blob, meta, w.text, words, now, now, w.expires_at))
                rowid = int(cur.lastrowid)
                known[w.id] = rowid
            else:
                if w.text is not None:
                    conn.execute("DELETE FROM ns_fts WHERE rowid = ?", (rowid,))
                conn.execute(
                    "UPDATE ns_items SET vector = coalesce(?, vector), metadata = "
                    "coalesce(?, metadata), text = coalesce(?, text), text_words = "
                    "coalesce(?, text_words), updated_at = ?, expires_at = ? WHERE rowid = ?",
                    (blob, meta, w.text, words, now, w.expires_at, rowid))
            if w.text is not None:
                conn.execute("INSERT INTO ns_fts (rowid, text, ns) VALUES (?, ?, ?)",
                             (rowid, fts_text(w.text), ns_token(namespace)))
            if blob is not None:
                labels.append(rowid)
                seq = _log(conn, namespace, rowid, "add")
        return labels, seq

    def delete(self, namespace: str, rowids: Sequence[int]) -> tuple[list[int], int]:
        """Delete items; returns the labels of the vectors removed and the log seq."""
        conn = self._conn()
        labels: list[int] = []
        seq = 0
        for rowid in rowids:
            row = conn.execute("DELETE FROM ns_items WHERE rowid = ? AND namespace = ? "
                               "RETURNING vector IS NOT NULL, text IS NOT NULL",
                               (rowid, namespace)).fetchone()
            if row is None:
                continue
            if row[1]:
                conn.execute("DELETE FROM ns_fts WHERE rowid = ?", (rowid,))
            if row[0]:
                labels.append(rowid)
                seq = _log(conn, namespace, rowid, "del")
        return labels, seq

    def unindex_text(self, namespace: str, ids: Sequence[str]) -> tuple[int, list[int]]:
        """Take documents out of the full-text index; items left with neither text nor a
        vector are deleted. Returns (documents removed, rowids of items deleted)."""
        conn = self._conn()
        removed = 0
        emptied: list[int] = []
        for rowid, has_vector in conn.execute(
                "SELECT rowid, vector IS NOT NULL FROM ns_items WHERE namespace = ? AND "
                "text IS NOT NULL AND id IN (SELECT value FROM json_each(?))",
                (namespace, json_list(ids))).fetchall():
            conn.execute("DELETE FROM ns_fts WHERE rowid = ?", (rowid,))
            if has_vector:
                conn.execute("UPDATE ns_items SET text = NULL, text_words = NULL WHERE "
                             "rowid = ?", (rowid,))
            else:
                conn.execute("DELETE FROM ns_items WHERE rowid = ?", (rowid,))
                emptied.append(rowid)
            removed += 1
        return removed, emptied

    def merge_metadata(self, rowids: Sequence[int], patch: dict[str, Any], now: int) -> int:
        """Merge `patch` into the metadata of these items (a null value removes the key)."""
        cur = self._conn().execute(
            "UPDATE ns_items SET metadata = json_patch(metadata, ?), updated_at = ? WHERE "
            "rowid IN (SELECT value FROM json_each(?))",
            (_encode(patch).decode(), now, json_list(rowids)))
        return int(cur.rowcount)


def _log(conn: Connection, namespace: str, label: int, op: str) -> int:
    cur = conn.execute("INSERT INTO ns_index_log (namespace, label, op) VALUES (?, ?, ?)",
                       (namespace, label, op))
    return int(cur.lastrowid)


class SqliteNamespaceVectors:
    """Namespaces' vectors and index log as the vector indexes read them (the registry's
    VectorSource: its keys are namespace names)."""

    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def layout(self, namespace: str) -> tuple[int, str] | None:
        row = self._conn().execute("SELECT dimension, distance FROM namespaces WHERE name = ?",
                                   (namespace,)).fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0]), SPACE[row[1]]

    def agents(self) -> list[str]:
        """Every namespace holding vectors."""
        return [r[0] for r in self._conn().execute(
            "SELECT name FROM namespaces n WHERE dimension IS NOT NULL AND EXISTS (SELECT 1 "
            "FROM ns_items i WHERE i.namespace = n.name AND i.vector IS NOT NULL) "
            "ORDER BY name")]

    def has(self, namespace: str) -> bool:
        return self._conn().execute(
            "SELECT 1 FROM ns_items WHERE namespace = ? AND vector IS NOT NULL LIMIT 1",
            (namespace,)).fetchone() is not None

    def count(self, namespace: str) -> int:
        return int(self._conn().execute(
            "SELECT count(*) FROM ns_items WHERE namespace = ? AND vector IS NOT NULL",
            (namespace,)).fetchone()[0])

    def of_agent(self, namespace: str, batch: int = 10_000
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = 0
        conn = self._conn()
        while True:
            rows = conn.execute(
                "SELECT rowid, vector FROM ns_items WHERE namespace = ? AND rowid > ? AND "
                "vector IS NOT NULL ORDER BY rowid LIMIT ?", (namespace, last, batch)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield _stack(rows)

    def get(self, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return _stack(self._conn().execute(
            "SELECT rowid, vector FROM ns_items WHERE vector IS NOT NULL AND rowid IN "
            "(SELECT value FROM json_each(?))", (json_list(labels),)).fetchall())

    def log(self, namespace: str, after_seq: int) -> list[tuple[int, int, str]]:
        return [(r[0], r[1], r[2]) for r in self._conn().execute(
            "SELECT seq, label, op FROM ns_index_log WHERE namespace = ? AND seq > ? "
            "ORDER BY seq", (namespace, after_seq))]

    def log_head(self, namespace: str) -> int:
        row = self._conn().execute("SELECT max(seq) FROM ns_index_log WHERE namespace = ?",
                                   (namespace,)).fetchone()
        return int(row[0] or 0)

    def log_trimmed(self, namespace: str) -> int:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?",
                                   (f"ns_index_trim:{namespace}",)).fetchone()
        return int(row[0]) if row else 0

    def trim_log(self, namespace: str, upto_seq: int) -> None:
        conn = self._conn()
        conn.execute("DELETE FROM ns_index_log WHERE namespace = ? AND seq <= ?",
                     (namespace, upto_seq))
        if conn.execute("SELECT 1 FROM namespaces WHERE name = ?", (namespace,)).fetchone():
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                         "UPDATE SET value = excluded.value",
                         (f"ns_index_trim:{namespace}", str(upto_seq)))
