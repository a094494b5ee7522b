"""The hnswlib wrapper answers every search, even where the graph cannot reach k nodes."""

import numpy as np

from app.index.hnsw import AgentIndex


def test_many_identical_vectors_still_return_every_live_label() -> None:
    # Two groups of 500 identical vectors cut hnswlib's graph: asking for all 1000 made
    # knn_query raise ("Cannot return the results in a contiguous 2D array").
    rng = np.random.default_rng(0)
    groups = rng.normal(size=(2, 16)).astype(np.float32)
    index = AgentIndex("dupes", 16, ef=10)
    index.add(np.arange(1000), groups[np.arange(1000) % 2])
    query = groups[1] + 0.01 * rng.normal(size=16).astype(np.float32)
    labels, sims = index.search(query, 1000)
    assert sorted(labels.tolist()) == list(range(1000))
    assert set(labels[:500].tolist()) == set(range(1, 1000, 2))  # the nearer group first
    assert np.all(np.diff(sims) <= 1e-6)


def test_the_exact_fallback_skips_deleted_labels() -> None:
    rng = np.random.default_rng(1)
    groups = rng.normal(size=(2, 16)).astype(np.float32)
    index = AgentIndex("dupes", 16, ef=10)
    index.add(np.arange(1000), groups[np.arange(1000) % 2])
    index.delete(list(range(0, 1000, 4)))
    labels, _ = index.search(groups[0], len(index))
    assert len(labels) == 750 and not {int(x) for x in labels} & set(range(0, 1000, 4))
