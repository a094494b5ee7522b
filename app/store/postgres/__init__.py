"""The PostgreSQL + pgvector backend (DAKERA_DATABASE_URL): the store protocol over one
database that any number of servers share. See store.py, and docs/postgres.md."""

from app.store.postgres.store import PgStore

__all__ = ["PgStore"]
