"""Files other memory tools write, made at test time, small: what the importers are tested on.

mcp-memory-service: its SQLite database, with the DDL copied verbatim from
mcp-memory-service 12.4.0 (storage/mixins/migrations.py, storage/migrations/008..019, as
read from the PyPI wheel; one SQL comment shortened) and rows written the way its
StoreMixin.store writes them (tags comma-joined, metadata json.dumps, unix float seconds,
soft deletes setting deleted_at); the vec0 table is left out (an importer never reads it,
and the real file opens without it). Its JSON export as sync/exporter.py MemoryExporter
writes it. Mem0: `Memory.get_all()` output of mem0ai 2.2.1 (ISO times with offsets,
metadata possibly null, ids as UUIDs) and the 0.1.x shape (a bare list, US/Pacific
offsets). Zep: message lists of zep-cloud v2 (role = speaker name, role_type = kind), v3
(role = kind, name = speaker) and v4 (items). The shapes were checked against the tools
themselves (see docs/transfer.md).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DDL = [
    # migrations.py _ensure_metadata_table
    """
            CREATE TABLE IF NOT EXISTS metadata (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )
            """,
    # migrations.py _apply_pragmas_and_create_tables
    '''
                    CREATE TABLE IF NOT EXISTS memories (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        content_hash TEXT UNIQUE NOT NULL,
                        content TEXT NOT NULL,
                        tags TEXT,
                        memory_type TEXT,
                        metadata TEXT,
                        created_at REAL,
                        updated_at REAL,
                        created_at_iso TEXT,
                        updated_at_iso TEXT,
                        deleted_at REAL DEFAULT NULL
                    )
                ''',
    "INSERT OR REPLACE INTO metadata (key, value) VALUES ('distance_metric', 'cosine')",
    'CREATE INDEX IF NOT EXISTS idx_content_hash ON memories(content_hash)',
    'CREATE INDEX IF NOT EXISTS idx_created_at ON memories(created_at)',
    'CREATE INDEX IF NOT EXISTS idx_memory_type ON memories(memory_type)',
    'CREATE INDEX IF NOT EXISTS idx_deleted_at ON memories(deleted_at)',
    "ALTER TABLE memories ADD COLUMN store TEXT DEFAULT 'default'",
    # migrations.py _ensure_fts5_initialized
    '''
                CREATE VIRTUAL TABLE IF NOT EXISTS memory_content_fts USING fts5(
                    content,
                    content='memories',
                    content_rowid='id',
                    tokenize='trigram'
                )
            ''',
    '''
                CREATE TRIGGER IF NOT EXISTS memories_fts_ai AFTER INSERT ON memories
                BEGIN
                    INSERT INTO memory_content_fts(rowid, content)
                    VALUES (new.id, new.content);
                END;
            ''',
    '''
                CREATE TRIGGER IF NOT EXISTS memories_fts_au AFTER UPDATE ON memories
                BEGIN
                    DELETE FROM memory_content_fts WHERE rowid = old.id;
                    INSERT INTO memory_content_fts(rowid, content)
                    VALUES (new.id, new.content);
                END;
            ''',
    '''
                CREATE TRIGGER IF NOT EXISTS memories_fts_ad AFTER DELETE ON memories
                BEGIN
                    DELETE FROM memory_content_fts WHERE rowid = old.id;
                END;
            ''',
    "INSERT OR REPLACE INTO metadata (key, value) VALUES ('fts5_enabled', 'true')",
    # migration_runner.py
    """
            CREATE TABLE IF NOT EXISTS migration_registry (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                filename TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                checksum TEXT
            )
            """,
    # migrations/008_add_graph_table.sql
    """CREATE TABLE IF NOT EXISTS memory_graph (
    source_hash TEXT NOT NULL,
    target_hash TEXT NOT NULL,
    similarity REAL NOT NULL,
    connection_types TEXT NOT NULL,  -- JSON array: ["semantic", "temporal", "causal", "thematic"]
    metadata TEXT,                   -- JSON object: {discovery_date, confidence, context}
    created_at REAL NOT NULL,
    PRIMARY KEY (source_hash, target_hash)
)""",
    "CREATE INDEX IF NOT EXISTS idx_graph_source ON memory_graph(source_hash)",
    "CREATE INDEX IF NOT EXISTS idx_graph_target ON memory_graph(target_hash)",
    # 009
    "ALTER TABLE memory_graph ADD COLUMN relationship_type TEXT DEFAULT 'related'",
    "CREATE INDEX IF NOT EXISTS idx_graph_relationship ON memory_graph(relationship_type)",
    # 011_memory_evolution_p1.sql
    "ALTER TABLE memories ADD COLUMN parent_id TEXT",
    "ALTER TABLE memories ADD COLUMN version INTEGER DEFAULT 1",
    "ALTER TABLE memories ADD COLUMN confidence REAL DEFAULT 1.0",
    "ALTER TABLE memories ADD COLUMN last_accessed INTEGER",
    "ALTER TABLE memories ADD COLUMN superseded_by TEXT",
    # 012_add_belief_store.sql
    """CREATE TABLE IF NOT EXISTS beliefs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    belief_hash TEXT UNIQUE NOT NULL,
    content TEXT NOT NULL,
    confidence REAL NOT NULL DEFAULT 0.5,
    status TEXT NOT NULL DEFAULT 'candidate',  -- candidate, active, disputed, superseded
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    derived_from TEXT NOT NULL DEFAULT '[]',  -- JSON array of observation content_hashes
    contradicted_by TEXT NOT NULL DEFAULT '[]',  -- JSON array of observation content_hashes
    metadata TEXT DEFAULT '{}'
)""",
    "CREATE INDEX IF NOT EXISTS idx_beliefs_status ON beliefs(status)",
    "CREATE INDEX IF NOT EXISTS idx_beliefs_confidence ON beliefs(confidence)",
    # 015_add_sync_events.sql (+016, +017)
    """CREATE TABLE IF NOT EXISTS sync_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    schema_version INTEGER NOT NULL DEFAULT 1,
    agent_id TEXT,
    event_id TEXT NOT NULL,
    op TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    created_at_iso TEXT,
    UNIQUE(agent_id, event_id)
)""",
    "CREATE INDEX IF NOT EXISTS idx_sync_events_hash ON sync_events(content_hash)",
    "CREATE INDEX IF NOT EXISTS idx_sync_events_seq ON sync_events(seq)",
    "CREATE INDEX IF NOT EXISTS idx_sync_events_op ON sync_events(op, content_hash)",
    "ALTER TABLE sync_events ADD COLUMN hlc_physical INTEGER",
    "ALTER TABLE sync_events ADD COLUMN hlc_logical INTEGER",
    "CREATE INDEX IF NOT EXISTS idx_sync_events_hlc ON sync_events(hlc_physical, hlc_logical, "
    "agent_id, event_id)",
    "ALTER TABLE memories ADD COLUMN embedding_pending INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS idx_memories_embedding_pending ON memories(embedding_pending)",
    "ALTER TABLE sync_events ADD COLUMN embedding_model TEXT",
    "ALTER TABLE sync_events ADD COLUMN embedding_dim INTEGER",
    # 018 / 019
    """CREATE TABLE IF NOT EXISTS sync_cursor (
    peer_id TEXT PRIMARY KEY,
    last_seq_seen INTEGER NOT NULL DEFAULT 0,
    last_hlc_physical INTEGER,
    last_hlc_logical INTEGER,
    updated_at REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS idx_sync_cursor_updated ON sync_cursor(updated_at)",
    """CREATE TABLE IF NOT EXISTS push_cursor (
    peer_id TEXT PRIMARY KEY,
    last_seq_pushed INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS idx_push_cursor_updated ON push_cursor(updated_at)",
    "INSERT OR REPLACE INTO metadata (key, value) VALUES ('schema_version', '19')",
]

MMS_INSERT = """
    INSERT INTO memories (content_hash, content, tags, memory_type, metadata, created_at,
                          updated_at, created_at_iso, updated_at_iso, store)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

# content, tags, memory_type, metadata, created_at, updated_at, store, deleted_at
MMS_ROWS: list[tuple[Any, ...]] = [
    ("The deploy script lives in scripts/deploy.sh and needs AWS_PROFILE=prod.",
     ["project:dakera", "deploy", "ops"], "note", {"source": "chat", "agent_id": "claude-code"},
     1717243200.5, 1717243260.5, "default", None),
    ("Decided to use SQLite WAL mode for the memory store.", ["decision", "topic:storage"],
     "decision", {"rationale": "concurrent readers", "priority": 2}, 1717329600.0,
     1717329660.0, "default", None),
    ("pytest -x fails on Python 3.13 because of the asyncio loop fixture.", ["bug", "python"],
     "error", {}, 1717416000.25, 1717416060.25, "default", None),
    ("User prefers concise answers with code first.", ["untagged"], None,
     {"confidence": 0.9, "nested": {"k": [1, 2, 3]}}, 1717430000.0, 1717430000.0, "default",
     None),
    ("Weekly sync moved to Thursdays 10:00 CET.", ["meeting", "q:high"], "meeting",
     {"attendees": ["ana", "bo"]}, 1717502400.0, 1717502460.0, "default", None),
    ("Personal: dentist appointment on 2024-06-12.", ["personal"], "observation", {},
     1718000000.0, 1718000000.0, "personal", None),
    ("Temporary note that was deleted.", ["tmp"], "note", {}, 1718100000.0, 1718100000.0,
     "default", 1718200000.0),
]
MMS_LIVE = [r for r in MMS_ROWS if r[7] is None]


def _iso(ts: float) -> str:  # models/memory.py float_to_iso
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None).isoformat() + "Z"


def content_hash(content: str) -> str:  # utils/hashing.py generate_content_hash
    return hashlib.sha256(content.strip().lower().encode("utf-8")).hexdigest()


def mcp_memory_service_db(path: Path, *, extra: int = 0, keep_open: bool = False
                          ) -> sqlite3.Connection | None:
    """An mcp-memory-service database at `path` (WAL mode, as the tool runs it), with the
    rows above plus `extra` generated ones. keep_open: the connection is returned open and
    the last rows are left in the WAL, as while the tool runs."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    for stmt in DDL:
        con.execute(stmt)
    rows = list(MMS_ROWS) + [
        (f"Generated note {i}: the build cache of service {i % 17} lives in /var/cache/{i}.",
         [f"service:{i % 17}", "cache"], "note", {"i": i}, 1717000000.0 + i, 1717000000.0 + i,
         "default", None) for i in range(extra)]
    for content, tags, mtype, meta, c_at, u_at, store, deleted in rows:
        cur = con.execute(MMS_INSERT, (content_hash(content), content, ",".join(tags), mtype,
                                       json.dumps(meta) if meta else "{}", c_at, u_at,
                                       _iso(c_at), _iso(u_at), store))
        if deleted is not None:  # DeleteMixin.delete: a soft delete
            con.execute("UPDATE memories SET deleted_at = ? WHERE id = ?",
                        (deleted, cur.lastrowid))
    # an older version of the first memory, replaced by it (memory evolution, migration 011)
    old = "The deploy script is scripts/deploy.sh."
    con.execute(MMS_INSERT, (content_hash(old), old, "deploy", "note", "{}", 1717000000.0,
                             1717000000.0, _iso(1717000000.0), _iso(1717000000.0), "default"))
    con.execute("UPDATE memories SET superseded_by = ? WHERE content_hash = ?",
                (content_hash(rows[0][0]), content_hash(old)))
    con.commit()
    if keep_open:
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.execute(MMS_INSERT, (content_hash("Written while the tool runs."),
                                 "Written while the tool runs.", "live", "note", "{}",
                                 1719000000.0, 1719000000.0, _iso(1719000000.0),
                                 _iso(1719000000.0), "default"))
        con.commit()
        return con
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return None


def mcp_memory_service_export(path: Path) -> None:
    """The tool's JSON export (MemoryExporter.export_to_json, exporter_version 5.0.1)."""
    memories = [{"content": c, "content_hash": content_hash(c), "tags": tags,
                 "created_at": c_at, "updated_at": u_at, "memory_type": mtype,
                 "metadata": meta, "store": store, "export_source": "fixture-host"}
                for c, tags, mtype, meta, c_at, u_at, store, deleted in reversed(MMS_LIVE)]
    doc = {"export_metadata": {
        "source_machine": "fixture-host", "export_timestamp": "2026-11-27T16:17:16.973006",
        "total_memories": len(memories), "database_path": "/tmp/sqlite_vec.db",
        "platform": "Linux", "python_version": "3.11.2", "include_embeddings": False,
        "filter_tags": None, "stores": ["default", "personal"], "exporter_version": "5.0.1"},
        "memories": memories}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False))


MEM0_RESULTS = [
    {"id": "81ba7ebb-2e3e-4a56-b27b-18f062f457c1", "memory": "Noted, I will avoid peanut dishes.",
     "hash": "fdeb76f72e0f3df2a72277586d33769d",
     "metadata": {"source": "onboarding", "priority": 2},
     "created_at": "2026-11-27T16:19:18.362815+00:00",
     "updated_at": "2026-11-27T16:19:18.362815+00:00", "user_id": "alice",
     "role": "assistant"},
    {"id": "8bd4d07a-698e-4afa-9098-17f0300c2368", "memory": "My favourite city is Lisbon.",
     "hash": "bce06f1a47a2434ddb8cb364a13db9ce", "metadata": None,
     "created_at": "2026-11-27T16:19:18.400177+00:00",
     "updated_at": "2026-11-27T16:19:18.400177+00:00", "user_id": "alice",
     "run_id": "trip-2024", "actor_id": "Alice", "role": "user"},
    {"id": "ff4439f1-e344-4ddc-a64c-37a1611de096",
     "memory": "I am vegetarian (no fish) and allergic to peanuts.",
     "hash": "1be3e23c1cf1121f8ba02ed8e93b6f5f",
     "metadata": {"source": "onboarding", "priority": 2},
     "created_at": "2026-11-27T16:19:18.297713+00:00",
     "updated_at": "2026-11-27T16:19:18.521036+00:00", "user_id": "alice", "role": "user"},
    {"id": "96453cc3-2aee-4adf-9d28-7473655f17e9",
     "memory": "Deploys happen on Fridays after 16:00 UTC.",
     "hash": "301512e0dbb586c54f1ad01c435972e8",
     "metadata": {"category_hint": "ops", "tags": ["deploy", "schedule"]},
     "created_at": "2026-11-27T16:19:18.431532+00:00",
     "updated_at": "2026-11-27T16:19:18.431532+00:00", "agent_id": "ops-bot",
     "role": "user"},
]


def mem0_export(path: Path, *, extra: int = 0) -> None:
    """Mem0 `get_all()` output (mem0ai 2.x: {"results": [...]}), plus `extra` generated
    memories, one of them procedural."""
    results = list(MEM0_RESULTS) + [
        {"id": f"00000000-0000-4000-8000-{i:012d}",
         "memory": f"User fact {i}: prefers {['tea', 'coffee', 'water'][i % 3]} at meeting {i}.",
         "hash": hashlib.md5(str(i).encode(), usedforsecurity=False).hexdigest(),
         "metadata": {"memory_type": "procedural_memory"} if i == 0 else None,
         "created_at": f"2026-11-{1 + i % 27:02d}T10:00:00.000001-08:00",
         "updated_at": f"2026-11-{1 + i % 27:02d}T10:00:00.000001-08:00", "user_id": "bob"}
        for i in range(extra)]
    path.write_text(json.dumps({"results": results}, indent=2, ensure_ascii=False))


def mem0_v01_export(path: Path) -> None:
    """mem0 0.1.x get_all(version="v1.0"): a bare list, US/Pacific offsets."""
    path.write_text(json.dumps([
        {"id": "1c8b8a5e-0000-4000-8000-000000000001", "memory": "Likes hiking in the Alps",
         "hash": "a" * 32, "metadata": None, "created_at": "2024-06-01T09:00:00.123456-07:00",
         "updated_at": None, "user_id": "carol"}]))


ZEP_V2 = {"messages": [
    {"uuid": "3b9b4e0c-6f2a-4a51-9d1e-0d7a6c1f0a01", "created_at": "2024-06-01T12:00:00.123456Z",
     "updated_at": "2024-06-01T12:00:00.123456Z", "role": "Alice", "role_type": "user",
     "content": "I'm moving to Lisbon in September.", "metadata": {"channel": "web"},
     "token_count": 11, "processed": True},
    {"uuid": "3b9b4e0c-6f2a-4a51-9d1e-0d7a6c1f0a02", "created_at": "2024-06-01T12:00:05Z",
     "updated_at": "2024-06-01T12:00:05Z", "role": "support-bot", "role_type": "assistant",
     "content": "Congrats! Do you need help finding an apartment?", "metadata": {},
     "token_count": 12, "processed": True}],
    "row_count": 2, "total_count": 2}
ZEP_V3 = {"messages": [
    {"uuid": "7c0e9a52-1111-4c9b-8a65-2f3b1a000001", "created_at": "2025-03-10T09:15:00.250Z",
     "role": "user", "name": "Alice", "content": "I'm moving to Lisbon in September.",
     "metadata": {"channel": "web"}, "processed": True}],
    "row_count": 1, "total_count": 1, "thread_created_at": "2025-03-10T09:14:59Z",
    "user_id": "alice", "user_uuid": "0b7f6f0e-2222-4d7e-9c1a-5e6f7a8b9c0d"}
ZEP_V4 = {"items": [
    {"uuid": "a4a4a4a4-4444-4aaa-8bbb-000000000001",
     "thread_uuid": "t4t4t4t4-4444-4aaa-8bbb-000000000001",
     "created_at": "2026-01-05T08:00:00.123456789Z", "reference_time": "2026-01-05T08:00:00Z",
     "role": "user", "name": "Alice", "content": "I'm moving to Lisbon in September.",
     "metadata": {"channel": "web"}, "processed": True}], "total_size": 1}
