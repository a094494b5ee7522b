"""Numbered migrations, applied in order when the database opens (PRAGMA user_version)."""

from __future__ import annotations

from app.errors import DataDirError
from app.store.db import Connection
from app.text import normal_hash


def _m1_core(conn: Connection, dimension: int) -> None:
    _run_script(
        conn,
        f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE agents (
            agent_id TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE memories (
            rowid INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: it is the vector label
            id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            content TEXT NOT NULL,
            memory_type TEXT NOT NULL,
            importance REAL NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            metadata TEXT NOT NULL DEFAULT '{{}}',
            session_id TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            last_accessed_at INTEGER NOT NULL,
            access_count INTEGER NOT NULL DEFAULT 0,
            ttl_seconds INTEGER,
            expires_at INTEGER,
            event_time INTEGER,
            content_hash TEXT NOT NULL,
            UNIQUE (agent_id, id)
        );
        CREATE INDEX memories_by_id ON memories(id);
        CREATE INDEX memories_by_agent_time ON memories(agent_id, created_at);
        CREATE INDEX memories_by_session ON memories(session_id) WHERE session_id IS NOT NULL;
        CREATE INDEX memories_by_expiry ON memories(expires_at) WHERE expires_at IS NOT NULL;
        -- BM25 over content plus indexed context (e.g. the event date); rowid = memories.rowid.
        -- `agent` holds one token per agent so a MATCH is confined to that agent's rows.
        CREATE VIRTUAL TABLE memories_fts USING fts5(
            content, context, agent, content='', contentless_delete=1,
            tokenize='porter unicode61 remove_diacritics 2'
        );
        -- every vector with the model that made it and the hash of the text it embeds
        CREATE VIRTUAL TABLE memory_vectors USING vec0(
            embedding float[{dimension}], +model_id text, +content_hash text
        );
        -- vector changes not yet in a saved index file: replayed when an index loads
        CREATE TABLE index_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            agent_id TEXT NOT NULL,
            label INTEGER NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('add', 'del'))
        );
        CREATE INDEX index_log_by_agent ON index_log(agent_id, seq);
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            ended_at INTEGER,
            last_activity_at INTEGER NOT NULL,
            ended_reason TEXT,
            idle_timeout_secs INTEGER,  -- NULL: the server default applies
            metadata TEXT,
            summary TEXT
        );
        CREATE INDEX sessions_by_agent ON sessions(agent_id, started_at);
        """,
    )
    conn.execute("INSERT INTO meta (key, value) VALUES ('vector_dimension', ?)", (str(dimension),))


def _run_script(conn: Connection, script: str) -> None:
    """Run statements one by one (executescript would commit the open transaction)."""
    statement = ""
    for line in script.splitlines():
        code = line.split("--", 1)[0]
        if not code.strip():
            continue
        statement += code + "\n"
        if code.rstrip().endswith(";"):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        conn.execute(statement)


def _m2_lifecycle(conn: Connection, dimension: int) -> None:
    """Decay, feedback, deduplication and per-agent policies."""
    _run_script(
        conn,
        """
        ALTER TABLE memories ADD COLUMN decayed_at INTEGER;  -- last decay or reinforcement
        ALTER TABLE memories ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE memories ADD COLUMN norm_hash TEXT;  -- hash of the normalised content
        CREATE INDEX memories_by_norm_hash ON memories(agent_id, norm_hash);
        CREATE TABLE feedback (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            agent_id TEXT NOT NULL,
            memory_id TEXT NOT NULL,
            signal TEXT NOT NULL,
            timestamp INTEGER NOT NULL,
            old_importance REAL NOT NULL,
            new_importance REAL NOT NULL
        );
        CREATE INDEX feedback_by_memory ON feedback(agent_id, memory_id);
        -- duplicates that were merged on store, kept until restorable_until
        CREATE TABLE deduplicated (
            id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            survivor_id TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'deduplication',
            memory TEXT NOT NULL,  -- the would-be memory as JSON, to restore it
            deleted_at INTEGER NOT NULL,
            restorable_until INTEGER NOT NULL,
            PRIMARY KEY (agent_id, id)
        );
        CREATE TABLE agent_policies (
            agent_id TEXT PRIMARY KEY,
            policy TEXT NOT NULL
        );
        """,
    )
    conn.execute("UPDATE memories SET decayed_at = COALESCE(last_accessed_at, created_at)")
    for rowid, content in conn.execute("SELECT rowid, content FROM memories").fetchall():
        conn.execute("UPDATE memories SET norm_hash = ? WHERE rowid = ?",
                     (normal_hash(content), rowid))


def _m3_api_keys(conn: Connection, dimension: int) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,    -- SHA-256 of the raw key, which is not kept
            name TEXT NOT NULL,
            scope TEXT NOT NULL,
            namespaces TEXT,                  -- JSON list of grants; NULL = every namespace
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            active INTEGER NOT NULL DEFAULT 1,
            created_by TEXT,
            rotated_to TEXT,
            last_used_at INTEGER,
            total_requests INTEGER NOT NULL DEFAULT 0,
            failed_requests INTEGER NOT NULL DEFAULT 0
        );
        """,
    )


def _m4_text_index_per_agent(conn: Connection, dimension: int) -> None:
    """BM25 moved to a per-agent index rebuilt from the memories (app/index/text.py): FTS5
    statistics are per table, so one table shared by every agent let each agent's ranking
    depend on the others' memories."""
    conn.execute("DROP TABLE IF EXISTS memories_fts")


def _m5_graph(conn: Connection, dimension: int) -> None:
    """The knowledge graph: edges between memories and the entities each memory mentions.
    Both die with their memory (ON DELETE CASCADE, in the deleting transaction). Few
    b-trees (each one a store touches is a page more in its commit): the tables are keyed
    by memory, with one index each."""
    _run_script(
        conn,
        """
        -- keyed by the memory an edge leaves: a memory's own edges are few (made when it
        -- is stored, plus explicit links); the edges arriving at a memory are read
        -- strongest first off memory_edges_by_dst, never all of a hub's
        CREATE TABLE memory_edges (
            src INTEGER NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
            dst INTEGER NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
            edge_type TEXT NOT NULL,
            weight REAL NOT NULL,
            created_at INTEGER NOT NULL,
            label TEXT,
            PRIMARY KEY (src, dst, edge_type)
        ) WITHOUT ROWID;
        CREATE INDEX memory_edges_by_dst ON memory_edges(dst, weight);
        CREATE TABLE memory_entities (
            memory INTEGER NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
            start INTEGER NOT NULL,
            entity_type TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            normalized TEXT NOT NULL,  -- equal for two mentions of the same thing
            value TEXT NOT NULL,  -- as written in this memory
            score REAL NOT NULL,
            "end" INTEGER NOT NULL,
            PRIMARY KEY (memory, start, entity_type)
        ) WITHOUT ROWID;
        -- the agent's memories naming an entity, newest first
        CREATE INDEX memory_entities_by_key ON memory_entities(
            agent_id, entity_type, normalized, memory);
        """,
    )


def _m6_browse(conn: Connection, dimension: int) -> None:
    """The memory browser pages an agent's memories by importance and by last access without
    reading them all (newest first already has memories_by_agent_time), and counts them by
    type and importance from indexes."""
    _run_script(
        conn,
        """
        CREATE INDEX memories_by_agent_importance ON memories(agent_id, importance);
        CREATE INDEX memories_by_agent_access ON memories(agent_id, last_accessed_at);
        CREATE INDEX memories_by_agent_type ON memories(agent_id, memory_type);
        """,
    )


def _m7_namespaces(conn: Connection, dimension: int) -> None:
    """Data namespaces: raw vectors of any dimension, full-text documents, metadata."""
    _run_script(
        conn,
        """
        CREATE TABLE namespaces (
            name TEXT PRIMARY KEY,
            dimension INTEGER,  -- NULL until the first vector
            distance TEXT NOT NULL DEFAULT 'cosine',  -- cosine, dot_product, euclidean
            index_type TEXT NOT NULL DEFAULT 'hnsw',
            metadata TEXT,
            model TEXT,  -- the server model that embedded its vectors (upsert-text), if any
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE ns_items (
            rowid INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: it is the vector label
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            vector BLOB,  -- float32; NULL: a full-text document only
            metadata TEXT NOT NULL DEFAULT '{}',
            text TEXT,  -- NULL: not in the full-text index
            text_words INTEGER,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            expires_at INTEGER,
            UNIQUE (namespace, id)
        );
        CREATE INDEX ns_items_by_expiry ON ns_items(expires_at) WHERE expires_at IS NOT NULL;
        -- `ns` holds one token per namespace so a MATCH is confined to it
        CREATE VIRTUAL TABLE ns_fts USING fts5(
            text, ns, content='', contentless_delete=1,
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE VIRTUAL TABLE ns_fts_terms USING fts5vocab(ns_fts, 'instance');
        -- vector changes not yet in a saved index file (as index_log, per namespace)
        CREATE TABLE ns_index_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            namespace TEXT NOT NULL,
            label INTEGER NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('add', 'del'))
        );
        CREATE INDEX ns_index_log_by_namespace ON ns_index_log(namespace, seq);
        """,
    )


def _m8_import_jobs(conn: Connection, dimension: int) -> None:
    """Import jobs and their progress (a job's counts are written with each batch it
    imports, in the same transaction)."""
    _run_script(
        conn,
        """
        CREATE TABLE import_jobs (
            job_id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            state TEXT NOT NULL  -- the job as JSON: format, counts, errors
        );
        CREATE INDEX import_jobs_by_status ON import_jobs(status);
        """,
    )


def _m9_sentence_vectors(conn: Connection, dimension: int) -> None:
    """A vector per sentence of the memories that say several things (recall scores a
    memory by its best sentence as well as by its whole text); keyed by the memory's rowid,
    with the model and content they were made from."""
    _run_script(
        conn,
        """
        CREATE TABLE memory_sentences (
            rowid INTEGER PRIMARY KEY,  -- the memory's
            model_id TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            vectors BLOB NOT NULL  -- n x dimension float32
        );
        """,
    )


def _m10_plain_vectors(conn: Connection, dimension: int) -> None:
    """The memories' vectors in a plain table instead of a vec0 one. Recall reads the
    vectors of its text candidates by rowid: vec0 found each in its chunk of 1024 vectors
    in about 0.2 ms, a rowid table in about 8 us (from the OS page cache)."""
    _run_script(
        conn,
        """
        CREATE TABLE memory_vectors_plain (
            rowid INTEGER PRIMARY KEY,  -- the memory's
            embedding BLOB NOT NULL,  -- float32
            model_id TEXT NOT NULL,
            content_hash TEXT NOT NULL
        );
        INSERT INTO memory_vectors_plain (rowid, embedding, model_id, content_hash)
            SELECT rowid, embedding, model_id, content_hash FROM memory_vectors;
        DROP TABLE memory_vectors;
        ALTER TABLE memory_vectors_plain RENAME TO memory_vectors;
        """,
    )


MIGRATIONS = (_m1_core, _m2_lifecycle, _m3_api_keys, _m4_text_index_per_agent, _m5_graph,
              _m6_browse, _m7_namespaces, _m8_import_jobs, _m9_sentence_vectors,
              _m10_plain_vectors)


def migrate(conn: Connection, dimension: int) -> int:
    """Bring the schema up to date; returns the version. Each migration is one transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise DataDirError(f"the database schema is version {version}, newer than this "
                           f"dakera knows ({len(MIGRATIONS)}): run the newer dakera that "
                           "wrote it, or restore a backup made by this one")
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            migration(conn, dimension)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
