#!/usr/bin/env python3
"""Benchmark the server against its floor. Prints figures and one markdown table; asserts
nothing.

    python scripts/bench.py                       # 10k and 100k memories (about 20 minutes)
    python scripts/bench.py --sizes 2000 --queries 200     # a quick look
    python scripts/bench.py --million             # also the engine alone at 1,000,000

What it measures, in this order, on a fresh data dir:

1. The floor for writes: raw embedding throughput in-process (the ONNX embedder on batches
   of 1000 passages, as a batch store embeds them) and raw query-embedding latency.
2. A real server (`dakera serve` in a subprocess, with a GC probe): start-up, idle RSS;
   single stores over HTTP at concurrency 1 and 8; batch stores of 1000 up to each size.
3. At each size: recall latency over HTTP at concurrency 1 and 8 (p50/p95/p99, p99/p50),
   garbage-collector pauses in the server during each run (gc.callbacks); then, with the
   server stopped, the floor in-process over the same files and the same queries: raw query
   embedding + raw hnswlib search (k = candidates, same ef) + raw BM25 search of the agent's
   saved text index (the same terms, k = candidates), and the recall engine alone
   (Service.recall).
4. RSS idle and at the largest size, bytes on disk per memory.
5. With --vectors: raw vectors in data namespaces (the contract's §2.1), on a server of
   their own: for each dimension (384 and 1536 by default), 100,000 vectors upserted over
   HTTP, then query latency over HTTP (top_k 10; unfiltered, and with a metadata filter
   leaving 10% and 1% of the vectors) and recall@10 of the answers against exact search
   computed in-process. The vectors are clustered (a mixture of 1,000 Gaussian clusters,
   normalised), as embeddings are, rather than uniform noise.

    python scripts/bench.py --vectors --skip-memories    # only the vector part (~15 min)

Every measured query is distinct (the engine caches query embeddings); warm-up queries are
another set. The load generator runs on the same machine and takes CPU from the server, as a
co-located agent would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from corpus import corpus, queries  # noqa: E402

KEY = "bench-key"
AGENT = "bench"
CANDIDATES = 100  # DAKERA_RECALL_CANDIDATES default
HNSW_EF = 128  # DAKERA_HNSW_EF default
TOP_K = 10


# -- small helpers ------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(lat: list[float]) -> dict[str, float]:
    p50 = pct(lat, 50)
    return {"n": len(lat), "p50": p50, "p95": pct(lat, 95), "p99": pct(lat, 99),
            "mean": statistics.mean(lat) if lat else float("nan"),
            "spread": pct(lat, 99) / p50 if p50 else float("nan")}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}){mem}, "
            f"Python {platform.python_version()}")


def versions() -> str:
    import hnswlib  # noqa: F401
    import onnxruntime

    from app.store.db import sqlite_version
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (f"commit {commit}{' (uncommitted changes)' if dirty else ''}, SQLite "
            f"{sqlite_version()}, onnxruntime {onnxruntime.__version__}")


# -- the server under test ----------------------------------------------------------------

class Server:
    """`dakera serve` through scripts/serve_probed.py (the CLI plus a GC probe)."""

    def __init__(self, data_dir: Path, log_path: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.gc_file = data_dir.parent / f"gc-{self.port}.json"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")},
               "DAKERA_API_KEY": KEY, "DAKERA_PORT": str(self.port),
               "DAKERA_DATA_DIR": str(data_dir), "DAKERA_LOG_LEVEL": "warning",
               "DAKERA_MODELS_DIR": str(ROOT / "models"),
               "DAKERA_GC_PROBE_FILE": str(self.gc_file)}
        for name in ("DAKERA_EMBED_THREADS", "DAKERA_SQLITE_SYNCHRONOUS"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(extra_env or {})
        self._log = log_path.open("ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "serve_probed.py"), "serve"], env=env,
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        while True:
            probe = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                probe.request("GET", "/health/ready")
                if probe.getresponse().status == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            finally:
                probe.close()
            if self.proc.poll() is not None or time.perf_counter() - t0 > 600:
                raise SystemExit(f"server did not start; see {log_path}")
            time.sleep(0.02)
        self.start_s = time.perf_counter() - t0

    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def gc(self) -> dict[str, Any]:
        for _ in range(20):
            try:
                return dict(json.loads(self.gc_file.read_text()))
            except (OSError, ValueError):
                time.sleep(0.05)
        return {"collections": [0, 0, 0], "pause_ms": [0.0, 0.0, 0.0],
                "max_pause_ms": [0.0, 0.0, 0.0], "frozen": 0}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(600)
        self._log.close()


def gc_delta(before: dict[str, Any], after: dict[str, Any], since: float) -> dict[str, Any]:
    """Collections between two probe readings; the longest pause after `since` (unix)."""
    longest = max((p for t, _, p in after.get("recent", []) if t >= since), default=0.0)
    return {"collections": sum(after["collections"]) - sum(before["collections"]),
            "gen2": after["collections"][2] - before["collections"][2],
            "pause_ms": sum(after["pause_ms"]) - sum(before["pause_ms"]),
            "max_ms": longest, "frozen": after.get("frozen", 0)}


_local = threading.local()


def request(port: int, method: str, path: str, body: Any, timeout: float = 600,
            retry: bool = True) -> tuple[int, bytes]:
    """One request on this thread's keep-alive connection (cheap on the client side)."""
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    conn = conns.get(port)
    if conn is None:
        conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    payload = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    try:
        conn.request(method, path, payload, headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        del conns[port]
        if not retry:
            raise
        # the server closed an idle keep-alive connection: once more on a new one
        return request(port, method, path, body, timeout, retry=False)


def post_ok(port: int, path: str, body: Any) -> bytes:
    status, data = request(port, "POST", path, body)
    if status != 200:
        raise SystemExit(f"POST {path} -> {status}: {data[:300]!r}")
    return data


def run_clients(n: int, jobs: list[Any], work: Callable[[Any], None]) -> tuple[list[float], float]:
    """Run jobs over n client threads; returns per-job latencies (ms) and wall time (s)."""
    lat: list[float] = []
    lock = threading.Lock()
    it: Iterator[Any] = iter(jobs)

    def client() -> None:
        mine = []
        while True:
            with lock:
                job = next(it, None)
            if job is None:
                break
            t = time.perf_counter()
            work(job)
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, time.perf_counter() - start


# -- phases -------------------------------------------------------------------------------

def load_embedder() -> Any:
    from app.config import Settings
    from app.embed import load_embedder as load

    s = Settings.from_env(env={}, models_dir=str(ROOT / "models"))
    return load(s.embedding_model, Path(s.models_dir), s.embed_threads)


def embed_rate(embedder: Any, texts: list[str], seconds: float = 8.0) -> float:
    """Passages per second, embedded in batches of 1000 as a batch store embeds them."""
    embedder.embed(texts[:64])
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        chunk = texts[n % len(texts):n % len(texts) + 1000]
        embedder.embed(chunk)
        n += len(chunk)
    return n / (time.perf_counter() - start)


def raw_embedding(embedder: Any, texts: list[str], qs: list[str]) -> dict[str, float]:
    batch_rate = embed_rate(embedder, texts)
    lat = []
    for q in qs:
        t = time.perf_counter()
        embedder.embed([q], query=True)
        lat.append((time.perf_counter() - t) * 1000)
    return {"batch_rate": batch_rate, "query_p50": pct(lat, 50)}


def single_stores(server: Server, texts: list[str], concurrency: int, agent: str
                  ) -> dict[str, float]:
    def work(text: str) -> None:
        post_ok(server.port, "/v1/memory/store", {"agent_id": agent, "content": text})

    lat, wall = run_clients(concurrency, texts, work)
    return {"rate": len(texts) / wall, **summary(lat)}


def batch_stores(server: Server, texts: list[str], agent: str) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), 1000):
        post_ok(server.port, "/v1/memories/store/batch",
                {"agent_id": agent, "memories": [{"content": t} for t in texts[i:i + 1000]]})
        if (i // 1000) % 10 == 9:
            log(f"  stored {i + 1000} of {len(texts)}")
    return len(texts) / (time.perf_counter() - start)


def ten_agents(data_dir: Path, log_path: Path) -> float:
    """RSS of a fresh server after ten agents stored 600 memories each, in batches of 500:
    a small multi-agent deployment."""
    server = Server(data_dir, log_path)
    try:
        for a in range(10):
            texts = corpus(600, seed=100 + a)
            for i in range(0, len(texts), 500):
                post_ok(server.port, "/v1/memories/store/batch",
                        {"agent_id": f"agent-{a}",
                         "memories": [{"content": t} for t in texts[i:i + 500]]})
        time.sleep(2)
        return server.rss()
    finally:
        server.stop()


def recalls(server: Server, qs: list[str], warm: list[str], concurrency: int
            ) -> dict[str, Any]:
    def work(q: str) -> None:
        post_ok(server.port, "/v1/memory/recall", {"agent_id": AGENT, "query": q,
                                                   "top_k": TOP_K})

    run_clients(concurrency, warm, work)
    time.sleep(0.5)  # one probe write
    before, since = server.gc(), time.time()
    lat, wall = run_clients(concurrency, qs, work)
    time.sleep(0.5)
    return {**summary(lat), "qps": len(qs) / wall, "gc": gc_delta(before, server.gc(), since),
            "lat": lat}


def floor_and_engine(data_dir: Path, qs: list[str]) -> dict[str, Any]:
    """Raw parts in-process over the stopped server's files, then the engine alone."""
    from app.config import Settings
    from app.embed import load_embedder
    from app.index import AgentIndex, index_name
    from app.index.text import TextIndex
    from app.recall.query import query_stems
    from app.service import Service

    s = Settings.from_env(env={}, data_dir=str(data_dir), models_dir=str(ROOT / "models"))
    embedder = load_embedder(s.embedding_model, Path(s.models_dir), s.embed_threads)
    text = TextIndex.load(data_dir / "indexes" / (index_name(AGENT) + ".bm25"), AGENT)
    assert text is not None, "the stopped server saved no text index"
    # the raw index (hnswlib's, or a small agent's matrix) without our wrapper
    loaded = AgentIndex.load(data_dir / "indexes", AGENT, embedder.model_id, 384, HNSW_EF)
    assert loaded is not None, "the stopped server saved no vector index"
    index = loaded._index
    for q in qs[:20]:  # warm caches
        index.knn_query(embedder.embed([q], query=True), k=CANDIDATES)
        text.search(query_stems(q), CANDIDATES)
    emb, ann, fts, total = [], [], [], []
    for q in qs:
        t0 = time.perf_counter()
        vec = embedder.embed([q], query=True)
        t1 = time.perf_counter()
        index.knn_query(vec, k=CANDIDATES)
        t2 = time.perf_counter()
        text.search(query_stems(q), CANDIDATES)
        t3 = time.perf_counter()
        emb.append((t1 - t0) * 1000)
        ann.append((t2 - t1) * 1000)
        fts.append((t3 - t2) * 1000)
        total.append((t3 - t0) * 1000)
    del index, embedder, text
    gc.collect()

    svc = Service(s)
    svc.start(wait=True)
    try:
        for q in qs[:20]:
            svc.recall.recall(AGENT, "warm " + q, top_k=TOP_K)
        eng = []
        for q in qs:
            t = time.perf_counter()
            svc.recall.recall(AGENT, q, top_k=TOP_K)
            eng.append((time.perf_counter() - t) * 1000)
    finally:
        svc.close()
    return {"embed": summary(emb), "hnsw": summary(ann), "fts": summary(fts),
            "floor": summary(total), "engine": summary(eng)}


def million(args: argparse.Namespace, qs: list[str]) -> dict[str, Any]:
    """The engine alone in-process at 1,000,000 memories (vectors cached on disk)."""
    import numpy as np

    from app.config import Settings
    from app.service import Service

    n = args.million_size
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    data_dir = cache / f"million-{n}"
    texts = corpus(n)
    s = Settings.from_env(env={}, data_dir=str(data_dir), models_dir=str(ROOT / "models"),
                          sqlite_synchronous="normal")
    svc = Service(s)
    svc.start(wait=True)
    try:
        have = svc.memories.batch_recall(AGENT, None, 1)["total"]
        if have < n:
            vec_path = cache / f"million-{n}-vectors.npy"
            if vec_path.exists():
                vectors = np.load(vec_path, mmap_mode="r")
            else:
                log(f"embedding {n:,} memories once (cached in {vec_path}; about an hour "
                    "for 1,000,000 on 2 cores)")
                vectors = np.lib.format.open_memmap(vec_path.with_suffix(".tmp.npy"), "w+",
                                                    np.float32, (n, 384))
                for i in range(0, n, 10_000):
                    vectors[i:i + 10_000] = svc.memories.embedder.embed(texts[i:i + 10_000])
                    log(f"  embedded {min(i + 10_000, n)}")
                vectors.flush()
                del vectors
                os.replace(vec_path.with_suffix(".tmp.npy"), vec_path)
                vectors = np.load(vec_path, mmap_mode="r")
            real = svc.memories.embedder

            class Cached:  # the real embedder's vectors, looked up by position
                preset = real.preset
                model_id = real.model_id
                position = 0

                def embed(self, batch: list[str], *, query: bool = False) -> Any:
                    out = np.array(vectors[self.position:self.position + len(batch)])
                    self.position += len(batch)
                    return out

            cached = Cached()
            cached.position = have
            svc.memories.embedder = cached  # type: ignore[assignment]
            svc.memories.split = False  # vectors by position: no sentence vectors
            log(f"inserting {n - have} memories in-process")
            for i in range(have, n, 1000):
                svc.memories.store_batch(AGENT, [{"content": t} for t in texts[i:i + 1000]])
                if (i // 1000) % 50 == 49:
                    log(f"  inserted {i + 1000}")
            svc.memories.embedder = real
    finally:
        svc.close()
    svc = Service(s)
    t0 = time.perf_counter()
    svc.start(wait=True)
    start_s = time.perf_counter() - t0
    try:
        for q in qs[:20]:
            svc.recall.recall(AGENT, "warm " + q, top_k=TOP_K)
        eng = []
        for q in qs:
            t = time.perf_counter()
            svc.recall.recall(AGENT, q, top_k=TOP_K)
            eng.append((time.perf_counter() - t) * 1000)
        rss = rss_mb(os.getpid())
    finally:
        svc.close()
    return {"engine": summary(eng), "start_s": start_s, "rss": rss,
            "disk": dir_bytes(data_dir) / n}


# -- report -------------------------------------------------------------------------------

def fmt_lat(s: dict[str, float]) -> str:
    return (f"p50 {s['p50']:.1f} / p95 {s['p95']:.1f} / p99 {s['p99']:.1f} ms "
            f"(p99/p50 {s['spread']:.1f})")


def fmt_gc(g: dict[str, Any]) -> str:
    return (f"{g['collections']} collections ({g['gen2']} full), {g['pause_ms']:.1f} ms "
            f"in total, longest {g['max_ms']:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000",
                        help="memories in the agent at each recall measurement")
    parser.add_argument("--queries", type=int, default=1000, help="measured recalls per run")
    parser.add_argument("--single-stores", type=int, default=400,
                        help="single stores per concurrency level")
    parser.add_argument("--million", action="store_true",
                        help="also the engine alone in-process at 1,000,000 memories")
    parser.add_argument("--million-size", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default=str(ROOT / ".bench-cache"),
                        help="where --million keeps its vectors and data dir")
    parser.add_argument("--vectors", action="store_true",
                        help="also raw vector queries in a data namespace (part 5)")
    parser.add_argument("--skip-memories", action="store_true",
                        help="skip parts 1-4 (with --vectors: only the vector part)")
    parser.add_argument("--vector-dims", default="384,1536", help="dimensions for --vectors")
    parser.add_argument("--vector-count", type=int, default=100_000,
                        help="vectors per namespace for --vectors")
    parser.add_argument("--vector-queries", type=int, default=500,
                        help="measured queries per vector run")
    parser.add_argument("--out", help="write the markdown report here (e.g. docs/benchmarks.md)")
    parser.add_argument("--keep", help="keep the data dir here instead of a temp dir")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    command = "python scripts/bench.py " + " ".join(sys.argv[1:])
    started = dt.datetime.now(dt.UTC)
    loads = [loadavg()]
    log(f"{machine()}; load average {loads[0]}")
    if args.skip_memories:
        if not args.vectors:
            raise SystemExit("--skip-memories leaves nothing to measure without --vectors")
        return run_vectors(args, command, started, loads)

    texts = corpus(max(sizes))
    n_single = args.single_stores
    single_texts = corpus(2 * n_single, seed=99)
    all_q = queries(args.queries * 2 + 200, texts=texts[:min(sizes)])
    qs, warm = all_q[:args.queries * 2], all_q[args.queries * 2:]
    q1, q8 = qs[:args.queries], qs[args.queries:]

    log("raw embedding throughput (in-process, no server running)")
    embedder = load_embedder()
    raw = raw_embedding(embedder, texts[:5000], q1[:200])
    log(f"  {raw['batch_rate']:.0f} passages/s in batches of 1000; query embedding p50 "
        f"{raw['query_p50']:.2f} ms")

    results: dict[str, Any] = {"raw": raw, "sizes": {}, "embedder": embedder}
    tmp = tempfile.TemporaryDirectory(prefix="dakera-bench-")
    base = Path(args.keep) if args.keep else Path(tmp.name)
    data_dir = base / "data"
    server_log = base / "server.log"
    base.mkdir(parents=True, exist_ok=True)

    server: Server | None = Server(data_dir, server_log)
    try:
        measure(results, server, args, sizes, data_dir, server_log, texts, single_texts, q1,
                q8, warm, loads)
    finally:
        if results.get("server") is not None:
            results.pop("server").stop()
    results.pop("server", None)
    results.pop("embedder", None)

    if args.million:
        log(f"engine alone at {args.million_size:,} memories")
        results["million"] = million(args, q1)
        m = results["million"]
        log(f"  engine {fmt_lat(m['engine'])}; start {m['start_s']:.1f} s; RSS {m['rss']:.0f} "
            f"MB; {m['disk']:.0f} bytes per memory")
        loads.append(loadavg())

    report = render(results, sizes, args, command, started, loads)
    print()
    print(report)
    if args.out:
        write_report(Path(args.out), report)
        log(f"wrote {args.out}")
    if not args.keep:
        tmp.cleanup()
    if args.vectors:
        return run_vectors(args, command, started, [loadavg()])
    return 0


# -- raw vectors in a data namespace (part 5) ------------------------------------------------

def clustered(n: int, dim: int, seed: int, centroids: Any = None) -> tuple[Any, Any]:
    """n unit vectors from a mixture of 1,000 Gaussian clusters (and the centroids)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if centroids is None:
        centroids = rng.normal(size=(1000, dim)).astype(np.float32)
    picks = rng.integers(0, len(centroids), size=n)
    x = centroids[picks] + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), centroids


def exact_top10(data: Any, queries_: Any, keep: Any = None) -> list[set[int]]:
    """Indices of the 10 nearest (cosine; the vectors are unit length) per query."""
    import numpy as np

    out = []
    for q in queries_:
        s = data @ q
        if keep is not None:
            s = np.where(keep, s, -np.inf)
        out.append({int(i) for i in np.argpartition(-s, 10)[:10]})
    return out


def vector_run(server: Server, dim: int, count: int, n_queries: int) -> dict[str, Any]:
    import numpy as np

    ns = f"bench{dim}"
    data, centroids = clustered(count, dim, seed=dim)
    queries_, _ = clustered(n_queries + 50, dim, seed=dim + 1, centroids=centroids)
    warm, queries_ = queries_[:50], queries_[50:]
    status, body = request(server.port, "POST", "/v1/namespaces", {"name": ns, "dimension": dim})
    if status != 201:
        raise SystemExit(f"creating {ns}: {status} {body[:300]!r}")
    batch = 500 if dim <= 512 else 250
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        rows = [{"id": f"v{i}", "values": [round(float(x), 6) for x in data[i]],
                 "metadata": {"bucket": i % 100}}
                for i in range(start, min(count, start + batch))]
        post_ok(server.port, f"/v1/namespaces/{ns}/vectors", {"vectors": rows})
    upsert_s = time.perf_counter() - t0
    out: dict[str, Any] = {"upsert_rate": count / upsert_s}
    log(f"  {count:,} x {dim}: upserted at {out['upsert_rate']:.0f} vectors/s")
    # bucket < 10: 10% of the vectors (index search with a filter); bucket == 0: 1% (exact)
    cases = [("unfiltered", None, None),
             ("filter 10%", {"bucket": {"$lt": 10}}, np.arange(count) % 100 < 10),
             ("filter 1%", {"bucket": 0}, np.arange(count) % 100 == 0)]
    for name, flt, keep in cases:
        for q in warm[:20]:
            post_ok(server.port, f"/v1/namespaces/{ns}/query",
                    {"vector": q.tolist(), "top_k": TOP_K, "filter": flt})
        lat: list[float] = []
        found: list[set[int]] = []
        bodies = [{"vector": [round(float(x), 6) for x in q], "top_k": TOP_K,
                   "include_metadata": False, **({"filter": flt} if flt else {})}
                  for q in queries_]
        for body in bodies:
            t = time.perf_counter()
            raw = post_ok(server.port, f"/v1/namespaces/{ns}/query", body)
            lat.append((time.perf_counter() - t) * 1000)
            found.append({int(r["id"][1:]) for r in json.loads(raw)["results"]})
        truth = exact_top10(data, queries_, keep)
        recall = sum(len(a & b) for a, b in zip(found, truth, strict=True)) / (10 * len(truth))
        out[name] = {**summary(lat), "recall": recall}
        log(f"  {name}: {fmt_lat(out[name])}; recall@10 {recall:.3f}")
    out["rss"] = server.rss()
    return out


def run_vectors(args: argparse.Namespace, command: str, started: dt.datetime,
                loads: list[str]) -> int:
    dims = [int(x) for x in args.vector_dims.split(",")]
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="dakera-bench-vectors-") as tmp:
        server = Server(Path(tmp) / "data", Path(tmp) / "server.log")
        try:
            for dim in dims:
                log(f"raw vectors: {args.vector_count:,} of {dim} dimensions")
                results[dim] = vector_run(server, dim, args.vector_count, args.vector_queries)
                loads.append(loadavg())
        finally:
            server.stop()
    rows = []
    for dim, r in results.items():
        label = f"{args.vector_count:,} x {dim}"
        rows.append((f"Upsert over HTTP, {label}", f"{r['upsert_rate']:.0f} vectors/s"))
        for name in ("unfiltered", "filter 10%", "filter 1%"):
            s = r[name]
            rows.append((f"Query over HTTP, {label}, top_k {TOP_K}, {name}",
                         f"{fmt_lat(s)}; recall@10 vs exact {s['recall']:.3f}"))
        rows.append((f"Server RSS after {label}", f"{r['rss']:.0f} MB"))
    report = "\n".join([
        f"Machine: {machine()}; {versions()}.",
        f"Command: `{command}` ({args.vector_queries} distinct queries per run, concurrency "
        f"1; run {started:%Y-%m-%d %H:%M} UTC).",
        f"Load average (1/5/15 min) at the start and after each dimension: "
        f"{'; '.join(loads)}.", "",
        "| Measure | Result |", "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows]]) + "\n"
    print()
    print(report)
    if args.out:
        write_report(Path(args.out), report, VECTOR_MARKERS)
        log(f"wrote {args.out}")
    return 0


def measure(results: dict[str, Any], server: Server | None, args: argparse.Namespace,
            sizes: list[int], data_dir: Path, server_log: Path, texts: list[str],
            single_texts: list[str], q1: list[str], q8: list[str], warm: list[str],
            loads: list[str]) -> None:
    assert server is not None
    results["server"] = server
    n_single = len(single_texts) // 2
    time.sleep(2)
    results["start_empty_s"] = server.start_s
    results["rss_idle"] = server.rss()
    log(f"server ready in {server.start_s:.2f} s; idle RSS {results['rss_idle']:.0f} MB")

    results["ten_agents"] = ten_agents(data_dir.parent / "ten-agents", server_log)
    log(f"ten agents of 600 memories (batches of 500) in a server of their own: RSS "
        f"{results['ten_agents']:.0f} MB")

    for c, chunk in ((1, single_texts[:n_single]), (8, single_texts[n_single:])):
        r = single_stores(server, chunk, c, f"single-c{c}")
        results[f"single_c{c}"] = r
        log(f"single stores, concurrency {c}: {r['rate']:.0f}/s, {fmt_lat(r)}")

    stored = 0
    for size in sizes:
        if server is None:
            server = results["server"] = Server(data_dir, server_log)
            results["sizes"][size] = {"restart_s": server.start_s}
            log(f"server restarted in {server.start_s:.2f} s")
        res = results["sizes"].setdefault(size, {})
        # the floor for writes again, just before (the machine's load drifts)
        res["raw_rate"] = embed_rate(results["embedder"], texts[stored:stored + 5000])
        log(f"batch stores of 1000 up to {size} memories (raw embedding now "
            f"{res['raw_rate']:.0f}/s)")
        res["batch_rate"] = batch_stores(server, texts[stored:size], AGENT)
        stored = size
        log(f"  {res['batch_rate']:.0f} memories/s "
            f"({100 * res['batch_rate'] / res['raw_rate']:.0f}% of raw embedding)")
        time.sleep(2)  # let the access-stats flush and the WAL settle
        for c, qset in ((1, q1), (8, q8)):
            r = recalls(server, qset, [f"{w} {size} {c}" for w in warm[:50]], c)
            res[f"recall_c{c}"] = r
            log(f"recall at {size}, concurrency {c}: {fmt_lat(r)}, {r['qps']:.0f}/s; GC "
                f"{fmt_gc(r['gc'])}")
        res["rss"] = server.rss()
        log(f"  RSS {res['rss']:.0f} MB")
        results.pop("server").stop()
        server = None
        res["disk_per_memory"] = dir_bytes(data_dir) / (size + 2 * n_single)
        log(f"  on disk {dir_bytes(data_dir) / 1e6:.1f} MB, "
            f"{res['disk_per_memory']:.0f} bytes per memory")
        log("floor and engine in-process")
        fl = floor_and_engine(data_dir, q1)
        res["floor"] = fl
        log(f"  floor {fmt_lat(fl['floor'])} (embed p50 {fl['embed']['p50']:.2f}, hnsw "
            f"{fl['hnsw']['p50']:.2f}, bm25 {fl['fts']['p50']:.2f}); engine "
            f"{fmt_lat(fl['engine'])}")
        loads.append(loadavg())


START, END = "<!-- bench:start -->", "<!-- bench:end -->"
VECTOR_MARKERS = ("<!-- bench-vectors:start -->", "<!-- bench-vectors:end -->")


def write_report(path: Path, report: str, markers: tuple[str, str] = (START, END)) -> None:
    """Replace the generated part of the file (between the markers), keeping the prose."""
    first, last = markers
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{first}\n{last}\n"
    if first not in text or last not in text:
        text = text.rstrip() + f"\n\n{first}\n{last}\n"
    head, rest = text.split(first, 1)
    _, tail = rest.split(last, 1)
    path.write_text(f"{head}{first}\n{report}{last}{tail}")


def render(results: dict[str, Any], sizes: list[int], args: argparse.Namespace,
           command: str, started: dt.datetime, loads: list[str]) -> str:
    raw = results["raw"]
    rows: list[tuple[str, str, str]] = []
    rows.append(("Raw embedding, in-process, batches of 1000 (floor for writes)",
                 f"{raw['batch_rate']:.0f} memories/s", ""))
    rows.append(("Raw query embedding, in-process", f"p50 {raw['query_p50']:.2f} ms", ""))
    rows.append(("Server start to ready, empty data dir", f"{results['start_empty_s']:.2f} s",
                 ""))
    for c in (1, 8):
        r = results[f"single_c{c}"]
        rows.append((f"Single store over HTTP, concurrency {c}",
                     f"{r['rate']:.0f} memories/s; {fmt_lat(r)}", ""))
    for size in sizes:
        res = results["sizes"][size]
        label = f"{size:,}"
        if "restart_s" in res:
            rows.append((f"Server restart to ready, before filling to {label}",
                         f"{res['restart_s']:.2f} s", ""))
        ratio = 100 * res["batch_rate"] / res["raw_rate"]
        rows.append((f"Batch store over HTTP (1000 per request), filling to {label}",
                     f"{res['batch_rate']:.0f} memories/s = {ratio:.0f}% of raw embedding "
                     f"measured just before ({res['raw_rate']:.0f}/s)", ">= 90%"))
        for c in (1, 8):
            r = res[f"recall_c{c}"]
            target = result = ""
            if size == 100_000 and c == 1:
                target = "p50 <= 10 ms, p99 <= 3x p50"
            if c == 8:
                result = f" = {r['qps'] / res['recall_c1']['qps']:.2f}x concurrency 1"
                target = ">= 1.8x concurrency 1" if size == 100_000 else ""
            rows.append((f"Recall over HTTP at {label}, concurrency {c}, top_k {TOP_K}",
                         f"{fmt_lat(r)}; {r['qps']:.0f} recalls/s{result}", target))
            rows.append((f"GC in the server during those {r['n']} recalls",
                         fmt_gc(r["gc"]), ""))
        fl = res["floor"]
        rows.append((f"Floor at {label}, in-process: embed + hnswlib + BM25 index",
                     f"{fmt_lat(fl['floor'])} (p50s: embed {fl['embed']['p50']:.2f}, hnswlib "
                     f"{fl['hnsw']['p50']:.2f}, BM25 {fl['fts']['p50']:.2f})", ""))
        server_ratio = res["recall_c1"]["p50"] / fl["floor"]["p50"]
        rows.append((f"Server / floor at {label} (p50, concurrency 1)", f"{server_ratio:.2f}",
                     "<= 1.3"))
        rows.append((f"Recall engine alone, in-process, at {label}", fmt_lat(fl["engine"]),
                     ""))
        rows.append((f"RSS at {label} memories", f"{res['rss']:.0f} MB", ""))
        rows.append((f"On disk at {label} memories", f"{res['disk_per_memory']:.0f} bytes per "
                     "memory", ""))
    rows.insert(3, ("RSS idle (empty data dir, model loaded)", f"{results['rss_idle']:.0f} MB",
                    "<= 110 MB"))
    rows.insert(4, ("RSS after ten agents stored 600 memories each (batches of 500)",
                    f"{results['ten_agents']:.0f} MB", "<= 200 MB"))
    if "million" in results:
        m = results["million"]
        big = f"{args.million_size:,}"
        rows.append((f"Recall engine alone, in-process, at {big}", fmt_lat(m["engine"]), ""))
        rows.append((f"Start-up at {big} (indexes loaded)", f"{m['start_s']:.1f} s", ""))
        rows.append((f"RSS of the process at {big}", f"{m['rss']:.0f} MB", ""))
        rows.append((f"On disk at {big}", f"{m['disk']:.0f} bytes per memory", ""))
    lines = [
        "| Measure | Result | Target |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]
    head = [
        f"Machine: {machine()}; {versions()}.",
        f"Command: `{command}` ({args.queries} distinct queries per recall run; run "
        f"{started:%Y-%m-%d %H:%M} UTC).",
        f"Load average (1/5/15 min) at the start and after each size: {'; '.join(loads)}.",
    ]
    return "\n".join(head) + "\n\n" + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
