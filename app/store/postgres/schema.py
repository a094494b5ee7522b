"""Numbered migrations for PostgreSQL, applied when a server opens the database.

The version is kept in `dakera_schema`; a server refuses a schema newer than it knows. Each
migration runs in one transaction under an advisory lock, so servers starting together
apply it once (the others wait, then find it done).

The tables mirror the SQLite schema (app/store/migrations.py) with PostgreSQL's types:
rowids are identity columns (never reused: they are the labels recall works with), tags and
metadata jsonb, vectors pgvector's `vector(dimension)` in `memory_vectors` (beside the
memories, as in SQLite; hash-partitioned by agent) with an HNSW index (cosine) on each
partition, and the agents' BM25 postings in `memory_terms` (see search.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.errors import DataDirError

MIGRATION_LOCK = 0x64616B65  # pg_advisory_xact_lock key: "dake"


def _m1_core(conn: Any, dimension: int) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for statement in f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE agents (
            agent_id TEXT PRIMARY KEY,
            created_at BIGINT NOT NULL,
            text_docs BIGINT NOT NULL DEFAULT 0,            -- memories in the BM25 statistics
            text_length DOUBLE PRECISION NOT NULL DEFAULT 0  -- their weighted lengths, summed
        );
        CREATE TABLE memories (
            rowid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            content TEXT NOT NULL,
            memory_type TEXT NOT NULL,
            importance DOUBLE PRECISION NOT NULL,
            tags JSONB NOT NULL DEFAULT '[]',
            metadata JSONB NOT NULL DEFAULT '{{}}',
            session_id TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            last_accessed_at BIGINT NOT NULL,
            access_count BIGINT NOT NULL DEFAULT 0,
            ttl_seconds BIGINT,
            expires_at BIGINT,
            event_time BIGINT,
            content_hash TEXT NOT NULL,
            decayed_at BIGINT NOT NULL,
            flagged BOOLEAN NOT NULL DEFAULT false,
            norm_hash TEXT NOT NULL,
            text_length DOUBLE PRECISION NOT NULL,
            embedding vector({dimension}) NOT NULL,
            model_id TEXT NOT NULL,
            UNIQUE (agent_id, id)
        );
        CREATE INDEX memories_by_id ON memories(id);
        CREATE INDEX memories_by_agent_time ON memories(agent_id, created_at);
        CREATE INDEX memories_by_session ON memories(session_id, agent_id, rowid)
            WHERE session_id IS NOT NULL;
        CREATE INDEX memories_by_expiry ON memories(expires_at) WHERE expires_at IS NOT NULL;
        CREATE INDEX memories_by_norm_hash ON memories(agent_id, norm_hash);
        CREATE INDEX memories_by_agent_importance ON memories(agent_id, importance);
        CREATE INDEX memories_by_agent_access ON memories(agent_id, last_accessed_at);
        CREATE INDEX memories_by_agent_type ON memories(agent_id, memory_type);
        CREATE INDEX memories_hnsw ON memories USING hnsw (embedding vector_cosine_ops);
        -- BM25 postings: one row per (memory, distinct stem), weighted term frequency
        CREATE TABLE memory_terms (
            agent_id TEXT NOT NULL,
            term TEXT NOT NULL,
            rowid BIGINT NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
            tf REAL NOT NULL,
            doc_length REAL NOT NULL,
            PRIMARY KEY (agent_id, term, rowid)
        );
        CREATE INDEX memory_terms_by_memory ON memory_terms(rowid);
        CREATE TABLE sessions (
            seq BIGINT GENERATED ALWAYS AS IDENTITY,
            id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            started_at BIGINT NOT NULL,
            ended_at BIGINT,
            last_activity_at BIGINT NOT NULL,
            ended_reason TEXT,
            idle_timeout_secs BIGINT,
            metadata JSONB,
            summary TEXT
        );
        CREATE INDEX sessions_by_agent ON sessions(agent_id, started_at);
        CREATE INDEX sessions_open ON sessions(last_activity_at) WHERE ended_at IS NULL;
        CREATE TABLE feedback (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            agent_id TEXT NOT NULL,
            memory_id TEXT NOT NULL,
            signal TEXT NOT NULL,
            timestamp BIGINT NOT NULL,
            old_importance DOUBLE PRECISION NOT NULL,
            new_importance DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX feedback_by_memory ON feedback(agent_id, memory_id);
        CREATE TABLE deduplicated (
            id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            survivor_id TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'deduplication',
            memory JSONB NOT NULL,
            deleted_at BIGINT NOT NULL,
            restorable_until BIGINT NOT NULL,
            PRIMARY KEY (agent_id, id)
        );
        CREATE TABLE agent_policies (agent_id TEXT PRIMARY KEY, policy JSONB NOT NULL);
        CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            scope TEXT NOT NULL,
            namespaces JSONB,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            active BOOLEAN NOT NULL DEFAULT true,
            created_by TEXT,
            rotated_to TEXT,
            last_used_at BIGINT,
            total_requests BIGINT NOT NULL DEFAULT 0,
            failed_requests BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE memory_edges (
            src BIGINT NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
            dst BIGINT NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
            edge_type TEXT NOT NULL,
            weight DOUBLE PRECISION NOT NULL,
            created_at BIGINT NOT NULL,
            label TEXT,
            PRIMARY KEY (src, dst, edge_type)
        );
        CREATE INDEX memory_edges_by_dst ON memory_edges(dst, weight);
        CREATE TABLE memory_entities (
            memory BIGINT NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
            start INTEGER NOT NULL,
            entity_type TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            normalized TEXT NOT NULL,
            value TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL,
            "end" INTEGER NOT NULL,
            PRIMARY KEY (memory, start, entity_type)
        );
        CREATE INDEX memory_entities_by_key ON memory_entities(
            agent_id, entity_type, normalized, memory);
        CREATE TABLE import_jobs (
            job_id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at BIGINT NOT NULL,
            finished_at BIGINT,
            state JSONB NOT NULL
        );
        CREATE INDEX import_jobs_by_status ON import_jobs(status)
    """.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO meta (key, value) VALUES ('vector_dimension', %s)",
                 (str(dimension),))


def _m2_namespaces(conn: Any, dimension: int) -> None:
    """Data namespaces: items with a vector of the namespace's dimension (searched exactly
    in SQL: no index yet) and/or a full-text document, whose BM25 postings are kept in
    `ns_terms` with the statistics FTS5 keeps for SQLite's shared `ns_fts` table (search.py)."""
    for statement in """
        CREATE TABLE namespaces (
            name TEXT PRIMARY KEY,
            dimension INTEGER,
            distance TEXT NOT NULL DEFAULT 'cosine',
            index_type TEXT NOT NULL DEFAULT 'hnsw',
            metadata JSONB,
            model TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE TABLE ns_items (
            rowid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            vector vector,
            metadata JSONB NOT NULL DEFAULT '{}',
            metadata_chars INTEGER NOT NULL DEFAULT 2,  -- its compact JSON's length (stats)
            text TEXT,
            text_words INTEGER,
            text_tokens INTEGER,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            expires_at BIGINT,
            UNIQUE (namespace, id)
        );
        CREATE INDEX ns_items_by_expiry ON ns_items(expires_at) WHERE expires_at IS NOT NULL;
        CREATE TABLE ns_terms (
            term TEXT NOT NULL,
            rowid BIGINT NOT NULL REFERENCES ns_items(rowid) ON DELETE CASCADE,
            namespace TEXT NOT NULL,
            tf INTEGER NOT NULL,
            PRIMARY KEY (term, rowid)
        );
        CREATE INDEX ns_terms_by_namespace ON ns_terms(namespace, term);
        CREATE INDEX ns_terms_by_item ON ns_terms(rowid)
    """.split(";"):
        if statement.strip():
            conn.execute(statement)


VECTOR_PARTITIONS = 16


def _m3_vectors_apart(conn: Any, dimension: int) -> None:
    """The vectors in a table of their own, as in SQLite, hash-partitioned by agent.

    Recall's access statistics update the memories it returns; with the vector in the
    memory's row, every such update wrote the vector into the HNSW index again (no HOT
    update: importance and last access are indexed). Apart, they are never touched.
    Partitions: an agent's search reads one partition's HNSW index, in which the agent holds
    a VECTOR_PARTITIONS times larger share than in the whole table, so the filtered
    (iterative) scan finds its rows sooner and misses fewer (docs/postgres.md)."""
    partitions = ";".join(
        f"CREATE TABLE memory_vectors_p{i} PARTITION OF memory_vectors "
        f"FOR VALUES WITH (MODULUS {VECTOR_PARTITIONS}, REMAINDER {i})"
        for i in range(VECTOR_PARTITIONS))
    for statement in f"""
        CREATE TABLE memory_vectors (
            rowid BIGINT NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
            agent_id TEXT NOT NULL,
            embedding vector({dimension}) NOT NULL,
            PRIMARY KEY (agent_id, rowid)
        ) PARTITION BY HASH (agent_id);
        {partitions};
        INSERT INTO memory_vectors (rowid, agent_id, embedding)
            SELECT rowid, agent_id, embedding FROM memories;
        DROP INDEX memories_hnsw;
        ALTER TABLE memories DROP COLUMN embedding;
        CREATE INDEX memory_vectors_by_rowid ON memory_vectors(rowid);
        CREATE INDEX memory_vectors_hnsw ON memory_vectors USING hnsw (embedding vector_cosine_ops)
    """.split(";"):
        if statement.strip():
            conn.execute(statement)


def _m4_sentence_vectors(conn: Any, dimension: int) -> None:
    """A vector per sentence of the memories that say several things (recall scores a
    memory by its best sentence as well as by its whole text), as SQLite's migration 9:
    one row per memory, the vectors as little-endian float32 (n x dimension), with the
    model and content they were made from; gone with the memory (ON DELETE CASCADE)."""
    conn.execute("""
        CREATE TABLE memory_sentences (
            rowid BIGINT PRIMARY KEY REFERENCES memories(rowid) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            vectors BYTEA NOT NULL
        )""")


Migration = Callable[[Any, int], None]
MIGRATIONS: tuple[Migration, ...] = (_m1_core, _m2_namespaces, _m3_vectors_apart,
                                     _m4_sentence_vectors)


def migrate(conn: Any, dimension: int, location: str) -> int:
    """Bring the schema up to date (each migration one transaction); returns the version.
    Refuses a database whose schema is newer than this server knows."""
    conn.execute("CREATE TABLE IF NOT EXISTS dakera_schema (version INTEGER NOT NULL)")
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            row = conn.execute("SELECT version FROM dakera_schema").fetchone()
            if row is None:
                conn.execute("INSERT INTO dakera_schema (version) VALUES (0)")
                version = 0
            else:
                version = int(row[0])
            if version > len(MIGRATIONS):
                raise DataDirError(
                    f"the database at {location} has schema version {version}, newer than "
                    f"this dakera knows ({len(MIGRATIONS)}): run the newer dakera that wrote "
                    "it, or restore a dump made by this one")
            if version == len(MIGRATIONS):
                return version
            MIGRATIONS[version](conn, dimension)
            conn.execute("UPDATE dakera_schema SET version = %s", (version + 1,))
