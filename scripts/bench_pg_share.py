#!/usr/bin/env python3
"""PostgreSQL: how to search one agent's vectors when the agent holds a small share of a
large table. For agents of several sizes beside many filler agents, in the real schema
(`memory_vectors` with its HNSW index), it times the two queries recall can use
(app/store/postgres/search.py): EXACT_SQL scores every vector of the agent (through the
agent's b-tree index), INDEX_SQL scans the HNSW index iteratively (strict_order, as the
server sets it) until k of the agent's rows are found; recall@10 is against exact scoring.
Prints a markdown table; asserts nothing.

    make pg-up
    python scripts/bench_pg_share.py --pg-url postgresql://postgres@127.0.0.1:55432/postgres

The vectors are clustered (as embeddings are), each agent around its own centres. Nothing
is embedded: the rows are written with COPY and the index is built once, afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.store import open_store  # noqa: E402
from app.store.postgres.memories import vector_text  # noqa: E402
from app.store.postgres.search import EXACT_SQL, INDEX_SQL, SEARCH_SETTINGS  # noqa: E402


def clustered(rng: np.random.Generator, n: int, dim: int, centres: int) -> np.ndarray:
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill(conn: object, agent: str, vectors: np.ndarray, first_id: int) -> None:
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        with cur.copy("COPY memories (id, agent_id, content, memory_type, importance, "
                      "created_at, updated_at, last_accessed_at, content_hash, decayed_at, "
                      "norm_hash, text_length, model_id) FROM STDIN") as copy:
            for i in range(len(vectors)):
                copy.write_row((f"m{first_id + i}", agent, "x", "episodic", 0.5, 1, 1, 1,
                                "h", 1, "n", 1, "bench"))
        rows = cur.execute("SELECT rowid FROM memories WHERE agent_id = %s ORDER BY rowid",
                           (agent,)).fetchall()
        with cur.copy("COPY memory_vectors (rowid, agent_id, embedding) FROM STDIN") as copy:
            for (rowid,), v in zip(rows, vectors, strict=True):
                copy.write_row((rowid, agent, vector_text(v)))


def timed(conn: object, sql: str, agent: str, q: np.ndarray, k: int
          ) -> tuple[float, list[int]]:
    t = time.perf_counter()
    rows = conn.execute(sql, {"qs": [vector_text(q)], "agent": agent,  # type: ignore[attr-defined]
                              "k": k}).fetchall()
    return (time.perf_counter() - t) * 1000, [r[1] for r in sorted(rows, key=lambda r: -r[2])]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pg-url", required=True, help="a superuser's URL (a database is "
                        "made on its server for the run and dropped after)")
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the table")
    parser.add_argument("--agents", default="1000,2000,5000,10000,20000",
                        help="sizes of the measured agents (the rest is one filler agent)")
    parser.add_argument("--filler-agents", type=int, default=200,
                        help="agents holding the rest of the rows")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--k", type=int, default=100, help="candidates asked (recall's)")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    import psycopg

    sizes = [int(x) for x in args.agents.split(",")]
    filler = args.rows - sum(sizes)
    if filler < 0:
        raise SystemExit("--rows is smaller than the agents")
    name = f"dakera_share_{int(time.time())}"
    with psycopg.connect(args.pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = args.pg_url.rsplit("/", 1)[0] + "/" + name
    try:
        with tempfile.TemporaryDirectory() as tmp:
            open_store(Path(tmp), dimension=args.dim, model_id="bench", url=url).close()
        rng = np.random.default_rng(5)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP INDEX memory_vectors_hnsw")
            t = time.perf_counter()
            per = -(-filler // args.filler_agents)
            for i in range(args.filler_agents):  # spread over the partitions, as agents are
                n = min(per, filler - i * per)
                if n > 0:
                    fill(conn, f"filler-{i}", clustered(rng, n, args.dim, 20), i * per)
            agents = {f"agent-{n}": clustered(rng, n, args.dim, 20) for n in sizes}
            for i, (agent, vecs) in enumerate(agents.items()):
                fill(conn, agent, vecs, (i + 1) * 10**7)
            print(f"{args.rows:,} rows written in {time.perf_counter() - t:.0f} s",
                  flush=True)
            t = time.perf_counter()
            conn.execute("SET maintenance_work_mem = '1GB'")
            conn.execute("CREATE INDEX memory_vectors_hnsw ON memory_vectors "
                         "USING hnsw (embedding vector_cosine_ops)")
            conn.execute("VACUUM ANALYZE memory_vectors")
            conn.execute("VACUUM ANALYZE memories")
            print(f"HNSW index built in {time.perf_counter() - t:.0f} s", flush=True)
            for key, value in SEARCH_SETTINGS.items():
                conn.execute("SELECT set_config(%s, %s, false)", (key, value))
            lines = [f"`python scripts/bench_pg_share.py --rows {args.rows} --agents "
                     f"{args.agents} --filler-agents {args.filler_agents} --k {args.k}`, "
                     f"{args.queries} queries each, p50 (p90):",
                     "", "| agent's rows (share) | exact scoring | HNSW, strict_order | "
                     "recall@10 of HNSW |", "|---|---|---|---|"]
            for agent, vecs in agents.items():
                qs = clustered(rng, args.queries, args.dim, 20) * 0.5 + vecs[
                    rng.integers(0, len(vecs), args.queries)] * 0.5
                exact, index, hits = [], [], []
                for q in qs:
                    q = q / np.linalg.norm(q)
                    ms, truth = timed(conn, EXACT_SQL, agent, q, args.k)
                    exact.append(ms)
                    ms, got = timed(conn, INDEX_SQL, agent, q, args.k)
                    index.append(ms)
                    hits.append(len(set(truth[:10]) & set(got[:10])) / 10)

                def fmt(ms: list[float]) -> str:
                    return (f"{statistics.median(ms):.1f} ms "
                            f"({statistics.quantiles(ms, n=10)[-1]:.1f})")

                line = (f"| {len(vecs):,} ({100 * len(vecs) / args.rows:.1f}%) | "
                        f"{fmt(exact)} | {fmt(index)} | {statistics.mean(hits):.2f} |")
                print(line, flush=True)
                lines.append(line)
        print()
        print("\n".join(lines))
    finally:
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
