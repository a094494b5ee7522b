"""The vector index: a matrix searched exactly while small, hnswlib once grown; every search
answered, even where hnswlib's graph cannot reach k nodes."""

from pathlib import Path

import hnswlib
import numpy as np
import pytest

from app.index.exact import ExactIndex
from app.index.flat import FlatVectors
from app.index.hnsw import FLAT_UP_TO, AgentIndex


def _hnsw(dim: int, space: str = "cosine") -> hnswlib.Index:
    """An hnswlib index for AgentIndex, below the size at which it would make one itself."""
    index = hnswlib.Index(space=space, dim=dim)
    index.init_index(max_elements=1024, M=16, ef_construction=200)
    return index


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_many_identical_vectors_still_return_every_live_label() -> None:
    # Two groups of 500 identical vectors cut hnswlib's graph: asking for all 1000 made
    # knn_query raise ("Cannot return the results in a contiguous 2D array").
    rng = np.random.default_rng(0)
    groups = rng.normal(size=(2, 16)).astype(np.float32)
    index = AgentIndex("dupes", 16, ef=10, index=_hnsw(16))
    index.add(np.arange(1000), groups[np.arange(1000) % 2])
    query = groups[1] + 0.01 * rng.normal(size=16).astype(np.float32)
    labels, sims = index.search(query, 1000)
    assert sorted(labels.tolist()) == list(range(1000))
    assert set(labels[:500].tolist()) == set(range(1, 1000, 2))  # the nearer group first
    assert np.all(np.diff(sims) <= 1e-6)


def test_the_exact_fallback_skips_deleted_labels() -> None:
    rng = np.random.default_rng(1)
    groups = rng.normal(size=(2, 16)).astype(np.float32)
    index = AgentIndex("dupes", 16, ef=10, index=_hnsw(16))
    index.add(np.arange(1000), groups[np.arange(1000) % 2])
    index.delete(list(range(0, 1000, 4)))
    labels, _ = index.search(groups[0], len(index))
    assert len(labels) == 750 and not {int(x) for x in labels} & set(range(0, 1000, 4))


def test_search_many_answers_where_the_graph_cannot_reach_k() -> None:
    """The store-time links search many vectors at once: the same fallback per row."""
    rng = np.random.default_rng(2)
    groups = rng.normal(size=(2, 16)).astype(np.float32)
    index = AgentIndex("dupes", 16, ef=10, index=_hnsw(16))
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


@pytest.mark.parametrize("space", ["cosine", "ip", "l2"])
def test_a_small_index_answers_as_hnswlib_does(space: str) -> None:
    """Below FLAT_UP_TO the index is a matrix: the same labels, scores and deletions as an
    hnswlib index of the same vectors searched exhaustively."""
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(600, 24)).astype(np.float32)
    flat = AgentIndex("a", 24, ef=10, space=space)
    graph = AgentIndex("a", 24, ef=10, index=_hnsw(24, space), space=space)
    for index in (flat, graph):
        index.add(np.arange(600), vectors)
        index.delete([5, 6, 7])
    assert isinstance(flat._index, FlatVectors) and len(flat) == len(graph) == 597
    for query in rng.normal(size=(20, 24)).astype(np.float32):
        a_labels, a_scores = flat.search(query, 30)
        b_labels, b_scores = graph.search(query, 30)
        assert a_labels.tolist() == b_labels.tolist()
        assert np.allclose(a_scores, b_scores, atol=1e-4)
    some = [1, 2, 300]
    assert np.allclose(flat.vectors(some)[1], graph.vectors(some)[1], atol=1e-6)
    assert flat.vectors([1, 5])[0] == [1]  # a deleted label has no vector
    only_even = flat.search(vectors[3], 10, accept=lambda label: label % 2 == 0)[0]
    assert len(only_even) == 10 and all(x % 2 == 0 for x in only_even.tolist())


def test_an_index_moves_into_hnswlib_when_it_outgrows_the_matrix(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(FLAT_UP_TO + 300, 16)).astype(np.float32)
    index = AgentIndex("a", 16, ef=64)
    index.add(np.arange(FLAT_UP_TO - 100), vectors[:FLAT_UP_TO - 100], seq=1)
    index.delete([0, 1], seq=2)
    index.save(tmp_path, "model")
    # a name versions before the matrix do not read (they rebuild instead)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".flat", ".json"]
    loaded = AgentIndex.load(tmp_path, "a", "model", 16, ef=64)
    assert loaded is not None and isinstance(loaded._index, FlatVectors)
    assert loaded.seq == 2 and len(loaded) == FLAT_UP_TO - 102
    assert loaded.search(vectors[7], 1)[0].tolist() == [7]

    loaded.add(np.arange(FLAT_UP_TO - 100, len(vectors)), vectors[FLAT_UP_TO - 100:], seq=3)
    assert not isinstance(loaded._index, FlatVectors)
    assert len(loaded) == len(vectors) - 2  # the deleted stayed behind
    found = loaded.search(vectors[0], len(loaded))[0].tolist()
    assert 0 not in found and 1 not in found and len(found) == len(vectors) - 2
    for i in (7, FLAT_UP_TO - 50, FLAT_UP_TO + 200):
        assert loaded.search(vectors[i], 1)[0].tolist() == [i]
    loaded.save(tmp_path, "model")
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".hnsw", ".json"]  # none stale
    again = AgentIndex.load(tmp_path, "a", "model", 16, ef=64)
    assert again is not None and not isinstance(again._index, FlatVectors)
    assert again.search(vectors[FLAT_UP_TO + 200], 1)[0].tolist() == [FLAT_UP_TO + 200]


def test_small_agents_cost_their_vectors_not_a_fixed_overhead() -> None:
    """An hnswlib index holds 2.6 MB of label locks from birth: 100 agents of 50 memories
    each held 255 MB before any vector. As matrices they hold ~their vectors (7.5 MB)."""
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(50, 384)).astype(np.float32)
    before = _rss_mb()
    indexes = []
    for agent in range(100):
        index = AgentIndex(f"agent-{agent}", 384, ef=64)
        index.add(np.arange(agent * 50, agent * 50 + 50), vectors)
        indexes.append(index)
    grown = _rss_mb() - before
    assert grown < 60, f"100 small agent indexes took {grown:.0f} MB"
