"""Server time of every memory-browser page at 100,000 memories in one agent.

    .venv/bin/python scripts/bench_ui.py --data-dir /tmp/ui100k          # fill, then time
    .venv/bin/python scripts/bench_ui.py --data-dir /tmp/ui100k --repeat 20

1. Fill (once; skipped when the data dir holds the agent already): `--memories` memories
   (100,000) for one agent through the batch store of the service itself, 1000 per batch,
   with the deterministic `hash` embedder (`--model all-minilm-l6-v2` embeds them for real:
   several minutes). The texts come from scripts/corpus.py; types, tags (common and rare),
   sessions of 20 memories, importances and creation times (spread over 180 days on an
   injected clock) vary, and a few thousand memories are recalled so that "last accessed"
   means something.
2. Time: a real server (`dakera serve`) on that data dir; each page is requested `--repeat`
   times (after one warm-up request) and its server time read from the `Server-Timing`
   header the pages send (the handler's time, from routing to the rendered page; the
   gate, the access log and the socket come on top). Prints the median and the worst of
   each page, and the load average before and after.
   `--cpu` instead runs the app in this process (Litestar's test client, no socket) and
   gives the CPU time of each request (time.process_time: less sensitive than wall time
   to a busy machine), beside the API's recall of the same query for comparison.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.corpus import corpus  # noqa: E402
from scripts.harness import KEY, Server  # noqa: E402

AGENT = "bench-agent"
TAGS = ["work", "family", "travel", "health", "food", "music", "money", "home", "plans",
        "friends"]
RARE_TAGS = [f"rare-{i}" for i in range(50)]
DAY = 86_400


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def fill(data_dir: Path, n: int, model: str) -> None:
    from app.config import Settings
    from app.service import Service

    clock = FakeClock(time.time() - 180 * DAY)
    settings = Settings.from_env(env={}, data_dir=str(data_dir), embedding_model=model,
                                 decay_interval=0, dedup_on_store=False,
                                 models_dir=str(ROOT / "models"))
    service = Service(settings, clock=clock)
    service.start(wait=True)
    try:
        if service.agents.stats(AGENT)["total_memories"] >= n:
            print(f"{data_dir} already holds {n} memories of {AGENT}")
            return
        rng = random.Random(5)
        texts = corpus(n)
        step = 180 * DAY / (n / 1000)
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            items = []
            for i in range(start, min(n, start + 1000)):
                tags = rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3)))
                if rng.random() < 0.01:
                    tags.append(rng.choice(RARE_TAGS))
                items.append({
                    "content": texts[i], "tags": tags,
                    "memory_type": rng.choice(("episodic", "episodic", "semantic",
                                               "procedural", "working")),
                    "importance": round(rng.betavariate(2, 3), 3),
                    "session_id": f"sess-{i // 20:05d}"})
            service.memories.store_batch(AGENT, items)
            clock.now += step
            if start and start % 10_000 == 0:
                print(f"  {start} stored ({time.perf_counter() - t0:.0f}s)")
        for query in ("trip to Lisbon", "billing timeout", "passport", "favourite food",
                      "piano lessons", "Caroline", "Berlin", "meeting next week"):
            service.recall.recall(AGENT, query, top_k=50)
        service.flush_access()
        print(f"stored {n} memories in {time.perf_counter() - t0:.0f}s")
    finally:
        service.close()


def pages(client: httpx.Client) -> dict[str, str]:
    """The pages to time (a memory, a session and a tag taken from the data)."""
    listing = client.get(f"/ui/agents/{AGENT}").text
    memory_id = re.search(r'href="/ui/memories/([^"?]+)\?', listing)
    session = re.search(r'href="/ui/agents/[^/]+/sessions/([^"]+)"', listing)
    assert memory_id and session, "no memory or session link on the agent page"
    base = f"/ui/agents/{AGENT}"
    return {
        "agents (/ui)": "/ui",
        "overview (server)": "/ui/overview",
        "agent overview": f"{base}/overview",
        "memories, newest": base,
        "memories, page 50 (keyset)": None,  # filled below
        "memories by importance": f"{base}?sort=importance",
        "memories by last access": f"{base}?sort=accessed",
        "filter: type": f"{base}?type=semantic",
        "filter: common tag": f"{base}?tag=travel",
        "filter: rare tag": f"{base}?tag=rare-7",
        "filter: importance >= 0.9": f"{base}?min_importance=0.9",
        "filter: session": f"{base}?session={quote(session.group(1))}",
        "search (recall, hash embedder)": f"{base}?q=" + quote("a trip to Lisbon with Alice"),
        "sessions": f"{base}/sessions",
        "session timeline": f"{base}/sessions/{session.group(1)}",
        "memory detail": f"/ui/memories/{memory_id.group(1)}?agent_id={AGENT}",
        "trash": f"{base}/trash",
    }


def deep_page(client: httpx.Client, base: str, depth: int) -> str:
    url = base
    for _ in range(depth):
        found = re.search(r'href="([^"]*after=[^"]+)"', client.get(url).text)
        if not found:
            break
        url = found.group(1).replace("&amp;", "&")
    return url


def server_ms(response: httpx.Response) -> float:
    timing = response.headers.get("server-timing", "")
    found = re.search(r"dur=([0-9.]+)", timing)
    if response.status_code != 200 or not found:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {timing!r}")
    return float(found.group(1))


def cpu_times(data_dir: Path, model: str, repeat: int) -> None:
    """Each page's CPU time in process (the whole request: gate, handler, template)."""
    from litestar.testing import TestClient

    from app.cli import _app
    from app.config import Settings
    from app.service import Service

    settings = Settings.from_env(env={}, data_dir=str(data_dir), embedding_model=model,
                                 decay_interval=0, rate_limit=0,
                                 models_dir=str(ROOT / "models"))
    service = Service(settings)
    service.start(wait=True)
    try:
        with TestClient(_app(service), base_url="http://127.0.0.1:7700") as client:
            table: dict[str, Any] = dict(pages(client))
            table["memories, page 50 (keyset)"] = deep_page(client, f"/ui/agents/{AGENT}", 49)
            table["API: POST /v1/memory/recall"] = (
                "/v1/memory/recall", {"agent_id": AGENT, "query": "a trip to Lisbon with Alice",
                                      "top_k": 20})
            print(f"{'page':34} {'median CPU ms':>14} {'max':>8}")
            for name, url in table.items():
                def once(url: Any = url) -> float:
                    t0 = time.process_time()
                    answer = (client.post(url[0], json=url[1]) if isinstance(url, tuple)
                              else client.get(url))
                    assert answer.status_code == 200, (url, answer.status_code)
                    return (time.process_time() - t0) * 1000
                once()  # warm-up
                times = [once() for _ in range(repeat)]
                print(f"{name:34} {statistics.median(times):14.1f} {max(times):8.1f}")
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--model", default="hash")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--cpu", action="store_true",
                        help="CPU time per request, in process (see above)")
    args = parser.parse_args()
    fill(args.data_dir, args.memories, args.model)
    if args.cpu:
        load = os.getloadavg()
        cpu_times(args.data_dir, args.model, args.repeat)
        print("load average before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}"
              .format(*load, *os.getloadavg()))
        return
    load_before = os.getloadavg()
    server = Server(args.data_dir, env={"DAKERA_EMBEDDING_MODEL": args.model,
                                        "DAKERA_DECAY_INTERVAL_SECS": "0",
                                        "DAKERA_MODELS_DIR": str(ROOT / "models")})
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60,
                          headers={"Authorization": f"Bearer {KEY}"}) as client:
            table = pages(client)
            table["memories, page 50 (keyset)"] = deep_page(client, f"/ui/agents/{AGENT}", 49)
            print(f"{'page':34} {'median ms':>10} {'max ms':>8}")
            for name, url in table.items():
                server_ms(client.get(url))  # warm-up
                times = [server_ms(client.get(url)) for _ in range(args.repeat)]
                print(f"{name:34} {statistics.median(times):10.1f} {max(times):8.1f}")
    finally:
        server.stop()
    load_after = os.getloadavg()
    print("load average before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}".format(
        *load_before, *load_after))


if __name__ == "__main__":
    main()
