#!/usr/bin/env python3
"""Crash safety: concurrent writers, `kill -9` of the server at a random moment, restart on
the same data dir, and check that nothing acknowledged was lost and nothing is half-written.

    python scripts/crash_test.py --rounds 20          # make crash-test

Each round starts the server on the data dir the previous round killed, runs writer threads
(single stores, batch stores with custom ids, content updates, single and batch forgets,
recalls) over three agents, and SIGKILLs the server after a random delay. Indexes are saved
every second (DAKERA_INDEX_SAVE_INTERVAL_SECS=1) so that kills also land during saves. Then:

* the killed data dir: memories and memory_vectors hold the same number of rows;
  every agent's vector index, loaded as a restarting server loads it (saved file + log
  replay), holds exactly the database's rowids of that agent;
* the restarted server: every write that got a 2xx is there with its content (a forget that
  got a 2xx: gone), the one write per thread that was in flight at the kill is wholly there
  or wholly absent, nothing else exists; a sample of acknowledged memories (all of the last
  round's, some older) is recalled by its own content.

Exit status 1 on any failure. Each thread only updates and forgets memories it stored
itself, so the expected state is known exactly.

On PostgreSQL (`--database-url`, a fresh database), `--nodes N` servers share it, each with a
data dir of its own; the writers are spread over them and each round kill -9s one node at
random while the others go on serving (they are stopped cleanly at the end of the round).
The database check after each kill: every agent's BM25 statistics (documents, total length)
agree with its memories and their postings.

    python scripts/crash_test.py --rounds 10 --writers 8 --nodes 2 \
        --database-url postgresql://postgres@127.0.0.1:55432/crash
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import corpus
from harness import Client, Server, model_id, table_counts

AGENTS = ("crash-a", "crash-b", "crash-c")
ABSENT = "<absent>"


@dataclass
class Ledger:
    """What must exist: key (agent, id) -> content. `maybe` holds the outcomes still allowed
    for writes in flight at a kill (ABSENT among them); uncertain single stores are known by
    their content only (the server picks their id)."""

    present: dict[tuple[str, str], str] = field(default_factory=dict)
    gone: set[tuple[str, str]] = field(default_factory=set)
    maybe: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    maybe_stores: dict[str, str] = field(default_factory=dict)  # content -> agent
    groups: list[list[tuple[str, str]]] = field(default_factory=list)  # all-or-none writes
    errors: list[str] = field(default_factory=list)  # answers other than 2xx
    acked: dict[str, int] = field(default_factory=lambda: {
        "stores": 0, "batch_items": 0, "updates": 0, "forgets": 0, "recalls": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Report:
    rounds: int = 0
    failures: list[str] = field(default_factory=list)
    checked_present: int = 0
    recalled: int = 0
    uncertain_resolved: int = 0
    kills_during_load: int = 0


class Writer(threading.Thread):
    def __init__(self, client: Client, ledger: Ledger, round_no: int, thread_no: int,
                 texts: list[str], stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.ledger = ledger
        self.tag = f"r{round_no}t{thread_no}"
        self.texts = texts
        self.stop = stop
        self.rng = random.Random(seed)
        self.mine: list[tuple[str, str]] = []  # acknowledged keys this thread may touch
        self.n = 0
        self.ops = 0

    def text(self) -> str:
        self.n += 1
        return f"{self.rng.choice(self.texts)} (ref {self.tag}n{self.n})"

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
                self.ops += 1
        except (OSError, http.client.HTTPException):
            return  # the server died under us: the in-flight write is in `maybe`
        except Exception as exc:
            if not self.stop.is_set():
                with self.ledger.lock:
                    self.ledger.errors.append(f"{self.tag}: {exc}")

    def step(self) -> None:
        led, rng = self.ledger, self.rng
        agent = rng.choice(AGENTS)
        roll = rng.random()
        if roll < 0.35 or not self.mine:
            content = self.text()
            with led.lock:
                led.maybe_stores[content] = agent
            out = self.client.ok("POST", "/v1/memory/store",
                                 {"agent_id": agent, "content": content,
                                  "tags": [self.tag], "importance": 0.5})
            key = (agent, out["memory"]["id"])
            with led.lock:
                del led.maybe_stores[content]
                led.present[key] = content
                led.acked["stores"] += 1
            self.mine.append(key)
        elif roll < 0.5:
            items = [{"id": f"{self.tag}-b{self.n}-{i}", "content": self.text(),
                      "tags": [self.tag, f"{self.tag}-batch{self.n}"]}
                     for i in range(rng.randint(2, 40))]
            keys = [(agent, it["id"]) for it in items]
            with led.lock:
                for key, it in zip(keys, items, strict=True):
                    led.maybe[key] = {it["content"], ABSENT}
                led.groups.append(keys)
            self.client.ok("POST", "/v1/memories/store/batch",
                           {"agent_id": agent, "memories": items})
            with led.lock:
                for key, it in zip(keys, items, strict=True):
                    led.maybe.pop(key)
                    led.present[key] = it["content"]
                led.acked["batch_items"] += len(items)
            self.mine.extend(keys)
        elif roll < 0.7:
            key = rng.choice(self.mine)
            new = self.text()
            with led.lock:
                led.maybe[key] = {led.present[key], new}
            self.client.ok("PUT", f"/v1/memory/update/{key[1]}?agent_id={key[0]}",
                           {"content": new})
            with led.lock:
                led.maybe.pop(key)
                led.present[key] = new
                led.acked["updates"] += 1
        elif roll < 0.85:
            key = self.mine.pop(rng.randrange(len(self.mine)))
            with led.lock:
                led.maybe[key] = {led.present[key], ABSENT}
            out = self.client.ok("POST", "/v1/memory/forget",
                                 {"agent_id": key[0], "memory_ids": [key[1]]})
            assert out["deleted_count"] == 1, out
            with led.lock:
                led.maybe.pop(key)
                del led.present[key]
                led.gone.add(key)
                led.acked["forgets"] += 1
        elif roll < 0.9:
            # batch forget of everything this thread stored under one agent in this round
            keys = [k for k in self.mine if k[0] == agent]
            if not keys:
                return
            with led.lock:
                for key in keys:
                    led.maybe[key] = {led.present[key], ABSENT}
                led.groups.append(keys)
            status, out = self.client.call("DELETE", "/v1/memories/forget/batch",
                                           {"agent_id": agent, "filter": {"tags": [self.tag]}})
            if status != 200 or out["deleted_count"] != len(keys):
                raise RuntimeError(f"batch forget of {len(keys)} -> {status}: {out}")
            with led.lock:
                for key in keys:
                    led.maybe.pop(key)
                    del led.present[key]
                    led.gone.add(key)
                led.acked["forgets"] += len(keys)
            self.mine = [k for k in self.mine if k[0] != agent]
        else:
            q = rng.choice(self.texts)
            self.client.ok("POST", "/v1/memory/recall", {"agent_id": agent, "query": q,
                                                         "top_k": 5})
            with led.lock:
                led.acked["recalls"] += 1


def list_agent(client: Client, agent: str) -> dict[str, str]:
    out = client.ok("POST", "/v1/memories/recall/batch", {"agent_id": agent, "limit": 10000})
    if out.get("truncated"):
        raise RuntimeError(f"{agent} holds more than 10000 memories: cannot list them all")
    return {m["id"]: m["content"] for m in out["memories"]}


def check_files(data_dir: Path, mid: str, report: Report, when: str) -> None:
    """The killed (or stopped) data dir: the three tables hold the same rows, and every
    agent's index, loaded as a restarting server loads it (saved file + log replay, or a
    rebuild), holds exactly the agent's rowids as live labels."""
    from app.index import IndexRegistry
    from app.store import SqliteStore

    counts = table_counts(data_dir)
    if len(set(counts.values())) != 1:
        report.failures.append(f"{when}: row counts disagree {counts}")
    store = SqliteStore(data_dir / "dakera.db", dimension=384, model_id=mid)
    try:
        registry = IndexRegistry(store.vectors, data_dir / "indexes", mid, 64,
                                 lambda fn: store.write(lambda tx: fn()))
        registry.open_all()
        for agent in store.vectors.agents():
            index = registry.get(agent)
            live = set()
            for label in index._index.get_ids_list():
                try:
                    index._index.get_items([label])
                    live.add(int(label))
                except RuntimeError:  # marked deleted
                    pass
            rowids = {r[0] for r in store.reader().execute(
                "SELECT rowid FROM memories WHERE agent_id = ?", (agent,))}
            if len(index) != len(rowids) or live != rowids:
                report.failures.append(
                    f"{when}: {agent} index holds {len(index)} ({len(live - rowids)} labels "
                    f"extra, {len(rowids - live)} missing), the database {len(rowids)}")
    finally:
        store.close()


def check_database(url: str, report: Report, when: str) -> None:
    """PostgreSQL after a kill: each agent's BM25 statistics agree with its memories, and
    every memory has its postings (they are written in the memory's transaction)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.agent_id, a.text_docs, a.text_length, "
            "(SELECT count(*) FROM memories m WHERE m.agent_id = a.agent_id), "
            "(SELECT coalesce(sum(m.text_length), 0) FROM memories m "
            " WHERE m.agent_id = a.agent_id), "
            "(SELECT count(*) FROM memories m WHERE m.agent_id = a.agent_id AND NOT EXISTS "
            " (SELECT 1 FROM memory_terms t WHERE t.rowid = m.rowid)) FROM agents a").fetchall()
    for agent, docs, length, count, total, bare in rows:
        if docs != count or abs(length - total) > 1e-6 * max(1.0, total) or bare:
            report.failures.append(
                f"{when}: {agent} statistics say {docs} memories / length {length}, the "
                f"table holds {count} / {total}; {bare} without postings")


def verify(client: Client, ledger: Ledger, report: Report, when: str,
           recall_keys: list[tuple[str, str]]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for agent in AGENTS:
        for mid, content in list_agent(client, agent).items():
            seen[(agent, mid)] = content
    fail = report.failures
    by_content = {(k[0], c): k for k, c in seen.items()}
    for key, content in ledger.present.items():
        if key in ledger.maybe:
            continue
        if seen.get(key) != content:
            fail.append(f"{when}: acknowledged {key} is "
                        f"{'missing' if key not in seen else 'changed: ' + seen[key][:60]}")
        report.checked_present += 1
    for key in ledger.gone:
        if key in seen and key not in ledger.maybe:
            fail.append(f"{when}: forgotten {key} is back")
    # writes in flight at the kill: each wholly applied or wholly absent, then settled
    for group in ledger.groups:
        states = {seen.get(k, ABSENT) == ABSENT for k in group if k in ledger.maybe}
        if len(states) > 1:
            fail.append(f"{when}: a batch of {len(group)} in flight at the kill is half "
                        "applied")
    ledger.groups.clear()
    for key, allowed in list(ledger.maybe.items()):
        got = seen.get(key, ABSENT)
        if got not in allowed:
            fail.append(f"{when}: in-flight {key} is {got[:60]!r}, expected one of "
                        f"{[a[:40] for a in allowed]}")
        if got == ABSENT:
            ledger.present.pop(key, None)
            ledger.gone.add(key)
        else:
            ledger.present[key] = got
            ledger.gone.discard(key)
        del ledger.maybe[key]
        report.uncertain_resolved += 1
    for content, agent in list(ledger.maybe_stores.items()):
        key = by_content.get((agent, content))
        if key is not None:
            ledger.present[key] = content
        del ledger.maybe_stores[content]
        report.uncertain_resolved += 1
    expected = set(ledger.present)
    extra = set(seen) - expected
    if extra:
        fail.append(f"{when}: {len(extra)} memories nobody stored, e.g. {sorted(extra)[:3]}")
    for key in recall_keys:
        if key not in ledger.present:
            continue
        content = ledger.present[key]
        out = client.ok("POST", "/v1/memory/recall",
                        {"agent_id": key[0], "query": content, "top_k": 5})
        if key[1] not in [m["memory"]["id"] for m in out["memories"]]:
            fail.append(f"{when}: {key} is not recalled by its own content")
        report.recalled += 1


def run(data_dir: Path, rounds: int, writers: int = 6, min_s: float = 0.5,
        max_s: float = 4.0, seed: int = 1, log: Any = print,
        recall_sample: int = 40, recall_all_at_end: bool = False,
        database_url: str | None = None, nodes: int = 1) -> tuple[Report, Ledger]:
    rng = random.Random(seed)
    texts = corpus(2000, seed=seed)
    ledger, report = Ledger(), Report()
    mid = model_id()
    env = {"DAKERA_INDEX_SAVE_INTERVAL_SECS": "1", "DAKERA_LOG_LEVEL": "warning"}
    if database_url is not None:
        env["DAKERA_DATABASE_URL"] = database_url
    dirs = [data_dir] if nodes == 1 else [data_dir.with_name(f"{data_dir.name}-node{i}")
                                          for i in range(nodes)]

    def check(when: str) -> None:
        if database_url is None:
            check_files(data_dir, mid, report, when)
        else:
            check_database(database_url, report, when)

    previous: list[tuple[str, str]] = []
    for r in range(1, rounds + 1):
        servers = []
        try:
            for d in dirs:
                servers.append(Server(d, env=env).start())
        except BaseException:
            for server in servers:
                server.kill()
            raise
        victim = rng.randrange(len(servers))
        client = Client(servers[0].port)
        try:
            verify(client, ledger, report, f"round {r} start", previous)
            stop = threading.Event()
            threads = [Writer(Client(servers[t % len(servers)].port), ledger, r, t, texts,
                              stop, rng.randrange(1 << 30)) for t in range(writers)]
            before = set(ledger.present)
            for t in threads:
                t.start()
            delay = rng.uniform(min_s, max_s)
            time.sleep(delay)
            busy = sum(t.is_alive() for t in threads)
        finally:
            servers[victim].kill()
        stop.set()
        for t in threads:
            t.join(30)
        for i, server in enumerate(servers):
            if i != victim and server.stop() != 0:
                report.failures.append(f"round {r}: node {i} did not stop cleanly")
        report.kills_during_load += busy == writers
        report.failures.extend(f"round {r}: {e}" for e in ledger.errors)
        ledger.errors.clear()
        ops = sum(t.ops for t in threads)
        new = [k for k in ledger.present if k not in before]
        previous = rng.sample(new, min(recall_sample, len(new)))
        check(f"round {r} after kill")
        report.rounds = r
        log(f"round {r}: killed {'node ' + str(victim) + ' ' if nodes > 1 else ''}after "
            f"{delay:.2f} s, {ops} operations by {writers} "
            f"writers; {len(ledger.present)} memories acknowledged in all, "
            f"{len(ledger.maybe) + len(ledger.maybe_stores)} in flight at the kill; "
            f"failures so far: {len(report.failures)}")
    server = Server(data_dir, env=env).start()
    try:
        client = Client(server.port)
        keys = list(ledger.present)
        verify(client, ledger, report, "final", keys if recall_all_at_end else
               previous + rng.sample(keys, min(4 * recall_sample, len(keys))))
    finally:
        code = server.stop()
    if code != 0:
        report.failures.append(f"final clean shutdown exited with {code}")
    check("after the final clean shutdown")
    return report, ledger


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--max-seconds", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--data-dir", help="default: a temp dir, removed afterwards")
    parser.add_argument("--database-url", help="a fresh PostgreSQL database to run on")
    parser.add_argument("--nodes", type=int, default=1,
                        help="servers sharing the database (with --database-url)")
    args = parser.parse_args()
    if args.nodes > 1 and not args.database_url:
        parser.error("--nodes needs --database-url: only PostgreSQL is shared by servers")
    tmp = tempfile.TemporaryDirectory(prefix="dakera-crash-")
    data_dir = Path(args.data_dir) if args.data_dir else Path(tmp.name) / "data"
    print(f"crash test: {args.rounds} rounds, {args.writers} writers, seed {args.seed}, "
          f"data dir {data_dir}"
          + (f", {args.nodes} node(s) on PostgreSQL" if args.database_url else ""))
    start = time.perf_counter()
    report, ledger = run(data_dir, args.rounds, args.writers, args.min_seconds,
                         args.max_seconds, args.seed,
                         log=lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True),
                         recall_all_at_end=True, database_url=args.database_url,
                         nodes=args.nodes)
    a = ledger.acked
    print(f"\n{report.rounds} rounds of kill -9 in {time.perf_counter() - start:.0f} s; "
          f"{report.kills_during_load} killed with every writer busy.")
    print(f"acknowledged: {a['stores']} single stores, {a['batch_items']} batch-stored "
          f"memories, {a['updates']} updates, {a['forgets']} forgets, {a['recalls']} recalls")
    print(f"checked: {report.checked_present} presence checks over {report.rounds + 1} "
          f"restarts, {report.uncertain_resolved} in-flight writes settled whole, "
          f"{report.recalled} recalls by own content (every surviving memory at the end); "
          f"{len(ledger.present)} memories at the end; row counts and index labels checked "
          "after every kill")
    if report.failures:
        print(f"\nFAILED: {len(report.failures)} problem(s)")
        for f in report.failures[:50]:
            print("  " + f)
        return 1
    print("\nOK: no acknowledged write lost, nothing half-written, index and database agree")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
