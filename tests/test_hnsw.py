"""The hnswlib wrapper answers every search, even where the graph cannot reach k nodes."""

import numpy as np

from app.index.exact import ExactIndex
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


def test_search_many_answers_where_the_graph_cannot_reach_k() -> None:
    """The store-time links search many vectors at once: the same fallback per row."""
    rng = np.random.default_rng(2)
    groups = rng.normal(size=(2, 16)).astype(np.float32)
    index = AgentIndex("dupes", 16, ef=10)
    index.add(np.arange(1000), groups[np.arange(1000) % 2])
    labels, sims = index.search_many(groups, 1000, exhaustive=False, ef=8)
    assert labels.shape == (2, 1000)
    for row, parity in ((0, 0), (1, 1)):
        assert sorted(labels[row].tolist()) == list(range(1000))
        assert set(labels[row, :500].tolist()) == set(range(parity, 1000, 2))
        assert np.all(np.diff(sims[row]) <= 1e-6)


class _Vectors:
    """A VectorSource over an array, read in blocks as the store reads them."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.rows = vectors

    def count(self, agent_id: str) -> int:
        return len(self.rows)

    def layout(self, agent_id: str) -> tuple[int, str]:
        return self.rows.shape[1], "cosine"

    def of_agent(self, agent_id: str, block: int = 64):  # type: ignore[no-untyped-def]
        for start in range(0, len(self.rows), block):
            end = min(start + block, len(self.rows))
            yield np.arange(start, end), self.rows[start:end]


def test_exact_index_search_many_matches_its_search() -> None:
    """While an agent's index is rebuilt, stores link through ExactIndex.search_many."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = ExactIndex("a", _Vectors(vectors))  # type: ignore[arg-type]
    queries = vectors[[3, 100, 250]]
    labels, sims = exact.search_many(queries, 5, exhaustive=False, ef=8)
    assert labels.shape == sims.shape == (3, 5)
    for row, query in enumerate(queries):
        one, cos = exact.search(query, 5)
        assert labels[row].tolist() == one.tolist() and np.allclose(sims[row], cos)
    assert labels[:, 0].tolist() == [3, 100, 250]
    assert exact.search_many(queries, 1000)[0].shape == (3, 300)
