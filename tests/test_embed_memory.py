"""Concurrent embedding keeps memory bounded: onnxruntime keeps the peak of its arena and
(with memory patterns) a plan per input shape, so unbounded concurrent runs of varying
shapes grew a server by hundreds of MB (a soak went from 660 to 755 MB after warm-up)."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from app.embed import load_embedder

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_eight_threads_of_varied_batches_stay_bounded() -> None:
    embedder = load_embedder("all-minilm-l6-v2", ROOT / "models", 0)
    words = ("memory agent recall store vector index query answer meeting Berlin order "
             "shipped tomorrow remember preference coffee tea window seat").split()
    embedder.embed(["warm up"])
    before = rss_mb()

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(6):
            n = rng.choice([1, 20, 50])
            embedder.embed([" ".join(rng.choices(words, k=rng.randint(5, 120)))
                            for _ in range(n)])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = rss_mb() - before
    assert grown < 500, f"embedding grew the process by {grown:.0f} MB"


def test_a_large_call_gives_the_arena_back() -> None:
    """The activations of batches of long texts (~190 MB for 64 texts of 100 words) are
    returned to the system after the call, not kept by onnxruntime's arena for good."""
    embedder = load_embedder("all-minilm-l6-v2", ROOT / "models", 0)
    embedder.embed(["warm up"], query=True)
    before = rss_mb()
    text = ("The deploy of the search service to the staging cluster failed again last night "
            "because the database ran out of connections, and Dave rolled it back. ") * 4
    for _ in range(3):
        embedder.embed([f"{text} {i}" for i in range(64)])
    grown = rss_mb() - before
    assert grown < 100, f"three calls of 64 long texts left {grown:.0f} MB behind"
