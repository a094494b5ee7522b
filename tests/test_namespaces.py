"""Data namespaces in the service: limits hold with nothing half-written, the vector index is
a cache rebuilt from SQLite, exact and index search agree, deletion removes everything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.errors import NamespaceNotFoundError, QuotaExceededError, ValidationError
from tests.conftest import MakeService


def rows(n: int, dim: int, seed: int = 0, start: int = 0) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return [{"id": f"v{start + i}", "values": rng.normal(size=dim).tolist(),
             "metadata": {"group": (start + i) % 10, "label": f"L{(start + i) % 3}"}}
            for i in range(n)]


def test_the_namespace_limit_refuses_the_whole_upsert(make_service: MakeService) -> None:
    svc = make_service(namespace_max_vectors=10)
    svc.vectors.upsert("small", rows(8, 4))
    with pytest.raises(QuotaExceededError) as err:
        svc.vectors.upsert("small", rows(3, 4, start=8))
    assert err.value.status == 413 and err.value.code == "QUOTA_EXCEEDED"
    assert svc.vectors.count("small")["count"] == 8
    svc.vectors.upsert("small", rows(2, 4, start=8))  # up to the limit, and updates, pass
    svc.vectors.upsert("small", rows(10, 4, seed=1))
    assert svc.vectors.count("small")["count"] == 10


def test_a_bad_item_leaves_nothing_written(make_service: MakeService) -> None:
    svc = make_service()
    svc.vectors.upsert("atomic", rows(5, 4))
    batch = rows(5, 4, start=5)
    batch[3]["values"] = [1.0, float("inf"), 0.0, 0.0]
    with pytest.raises(ValidationError):
        svc.vectors.upsert("atomic", batch)
    batch[3]["values"] = [1.0, 2.0]
    with pytest.raises(ValidationError) as err:
        svc.vectors.upsert("atomic", batch)
    assert err.value.code == "DIMENSION_MISMATCH"
    with pytest.raises(ValidationError):
        svc.vectors.upsert("atomic", [*rows(2, 4, start=20), *rows(1, 4, start=20)])
    assert svc.vectors.count("atomic")["count"] == 5
    with pytest.raises(ValidationError):
        svc.vectors.upsert("too-wide", [{"id": "w", "values": [0.1] * 4097}])
    with pytest.raises(NamespaceNotFoundError):
        svc.namespaces.describe("too-wide")


def exact_top(data: list[dict[str, object]], q: np.ndarray, distance: str, k: int,
              keep: set[int] | None = None) -> list[str]:
    ids = [str(r["id"]) for r in data]
    m = np.asarray([r["values"] for r in data], dtype=np.float32)
    if distance == "cosine":
        s = (m @ q) / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
    elif distance == "dot_product":
        s = m @ q
    else:
        s = -np.linalg.norm(m - q, axis=1)
    order = [i for i in np.argsort(-s) if keep is None or int(ids[i][1:]) % 10 in keep]
    return [ids[i] for i in order[:k]]


@pytest.mark.parametrize("distance", ["cosine", "dot_product", "euclidean"])
def test_index_and_exact_search_agree(make_service: MakeService, distance: str) -> None:
    """The index (filtered queries too, with exact search off) finds what exact search
    finds: recall@10 over 10 queries, and scores in the namespace's terms."""
    svc = make_service(exact_search_limit=0)
    svc.namespaces.create("agree", 16, distance_=distance)
    data = rows(3000, 16)
    for i in range(0, 3000, 1000):
        svc.vectors.upsert("agree", data[i:i + 1000])
    rng = np.random.default_rng(7)
    found = total = 0
    for _ in range(10):
        q = rng.normal(size=16).astype(np.float32)
        for keep in (None, {1, 2}):
            flt = None if keep is None else {"group": {"$in": sorted(keep)}}
            got = svc.vectors.query("agree", q.tolist(), top_k=10, filter=flt)["results"]
            ids = [r["id"] for r in got]
            scores = [r["score"] for r in got]
            assert scores == sorted(scores, reverse=True)
            if keep is not None:
                assert all(int(i[1:]) % 10 in keep for i in ids)
            truth = exact_top(data, q, distance, 10, keep)
            found += len(set(ids) & set(truth))
            total += 10
    assert found / total >= 0.95
    best = exact_top(data, q, distance, 1)[0]
    vec = np.asarray(next(r["values"] for r in data if r["id"] == best), dtype=np.float32)
    top = svc.vectors.query("agree", q.tolist(), top_k=1)["results"][0]
    expected = {"cosine": float(vec @ q / np.linalg.norm(vec) / np.linalg.norm(q)),
                "dot_product": float(vec @ q),
                "euclidean": 1 / (1 + float(np.linalg.norm(vec - q)))}[distance]
    assert top["id"] == best and top["score"] == pytest.approx(expected, rel=1e-3)


def test_the_index_is_rebuilt_from_sqlite(make_service: MakeService, tmp_path: Path) -> None:
    data_dir = tmp_path / "rebuild"
    svc = make_service(data_dir=data_dir)
    svc.vectors.upsert("cache", rows(500, 8))
    q = rows(1, 8, seed=9)[0]["values"]
    before = svc.vectors.query("cache", q, top_k=5)["results"]
    svc.close()
    for f in (data_dir / "indexes" / "namespaces").glob("*"):
        f.unlink()
    again = make_service(data_dir=data_dir)
    # served by exact search until the background rebuild swaps the index in: the same
    # answer, scores equal up to float rounding
    after = again.vectors.query("cache", q, top_k=5)["results"]
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert [r["score"] for r in after] == pytest.approx([r["score"] for r in before], abs=1e-5)
    # a saved index with later changes in the log is brought up to date on load
    again.vectors.delete("cache", [before[0]["id"]])
    again.save_indexes()
    again.vectors.upsert("cache", [{"id": "late", "values": q}])
    again.close()
    third = make_service(data_dir=data_dir)
    assert third.vectors.query("cache", q, top_k=1)["results"][0]["id"] == "late"
    assert before[0]["id"] not in [r["id"] for r in
                                   third.vectors.query("cache", q, top_k=20)["results"]]


def test_deleting_a_namespace_removes_everything(make_service: MakeService) -> None:
    svc = make_service()
    svc.vectors.upsert("gone", rows(20, 4))
    svc.text.index_documents("gone", [{"id": "doc", "text": "some searchable words"}])
    assert svc.text.fulltext_search("gone", "searchable")["results"]
    svc.save_indexes()
    svc.namespaces.delete("gone")
    with pytest.raises(NamespaceNotFoundError):
        svc.vectors.query("gone", [0.0, 0.0, 0.0, 1.0])
    svc.vectors.upsert("gone", rows(3, 6, seed=4))  # the name is free, any dimension
    assert svc.vectors.count("gone")["count"] == 3
    assert svc.text.fulltext_stats("gone")["document_count"] == 0
    q = rows(1, 6, seed=4)[0]["values"]
    assert svc.vectors.query("gone", q, top_k=1)["results"][0]["id"] == "v0"


def test_expired_text_documents_disappear(make_service: MakeService, clock) -> None:  # type: ignore[no-untyped-def]
    svc = make_service()
    svc.text.upsert_text("ttl", [{"id": "short", "text": "gone soon", "ttl_seconds": 60},
                                 {"id": "long", "text": "gone later"}])
    assert svc.vectors.count("ttl")["count"] == 2
    clock.now += 61
    assert svc.vectors.count("ttl")["count"] == 1
    assert [r["id"] for r in svc.text.fulltext_search("ttl", "gone")["results"]] == ["long"]
    assert svc.vectors.purge_expired() == 1
