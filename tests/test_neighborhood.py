"""Session neighbourhood (the contract's `neighborhood` / `neighborhood_mode`): the memories
stored just before and after each result in its session, within five minutes of it, as
context outside the ranking: inline after the ranked results, separate, or off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.service import Service
from tests.conftest import LiveServer, MakeService

T0 = 1_700_000_000
TURNS = [  # (content, seconds after T0)
    ("Ann: did you book the ferry?", 0),
    ("Bob: yes, the ferry to Skye leaves at nine", 60),
    ("Ann: great, I'll pack the tent", 120),
    ("Bob: and the stove, the little blue one", 1500),  # 23 minutes later
]
QUERY = "ferry to Skye leaves at nine"


def store_trip(svc: Service) -> list[str]:
    items = [{"content": c, "session_id": "trip", "event_time": T0 + dt} for c, dt in TURNS]
    items.append({"content": "Ann: unrelated note about taxes", "session_id": "other",
                  "event_time": T0 + 90})
    return [m.id for m in svc.memories.store_batch("a", items).memories]


@pytest.fixture
def svc(hash_service: Service) -> Service:
    return hash_service


def test_neighbours_are_the_adjacent_memories_of_the_session(svc: Service) -> None:
    ids = store_trip(svc)
    out = svc.recall.recall("a", QUERY, top_k=1)
    assert [h.memory.id for h in out.hits] == [ids[1]]
    assert out.context_mode == "inline"  # the server default
    assert [h.memory.id for h in out.context] == [ids[0], ids[2]]
    assert all(h.context_of == ids[1] for h in out.context)
    assert all(h.vector_score is not None and h.score == h.vector_score for h in out.context)


def test_neighbours_are_within_five_minutes_and_never_repeat_a_result(
        svc: Service) -> None:
    ids = store_trip(svc)
    # The stove turn is 23 minutes after the tent turn: no neighbour of it.
    out = svc.recall.recall("a", "the little blue stove", top_k=1)
    assert [h.memory.id for h in out.hits] == [ids[3]]
    assert out.context == []
    # Results are not repeated as context; each neighbour appears once.
    out = svc.recall.recall("a", QUERY, top_k=3)
    ranked = {h.memory.id for h in out.hits}
    context = [h.memory.id for h in out.context]
    assert not ranked & set(context) and len(context) == len(set(context))


def test_neighbourhood_off(svc: Service) -> None:
    store_trip(svc)
    for kw in ({"neighborhood": False}, {"neighborhood_mode": "off"},
               {"neighborhood": False, "neighborhood_mode": "inline"}):
        out = svc.recall.recall("a", QUERY, top_k=1, **kw)  # type: ignore[arg-type]
        assert out.context == [] and out.context_mode == "off"


def test_default_mode_is_a_setting(make_service: MakeService) -> None:
    s = make_service(neighborhood_mode="separate")
    store_trip(s)
    assert s.recall.recall("a", QUERY, top_k=1).context_mode == "separate"


@pytest.fixture(scope="module")
def hash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("nb") / "data",
                        extra_env={"DAKERA_EMBEDDING_MODEL": "hash"}).start()
    with server.http() as http:
        items = [{"content": c, "session_id": "trip", "event_time": T0 + dt}
                 for c, dt in TURNS]
        http.post("/v1/memories/store/batch", json={"agent_id": "a", "memories": items}
                  ).raise_for_status()
    yield server
    server.stop()


def recall(server: LiveServer, **extra: object) -> dict:  # type: ignore[type-arg]
    with server.http() as http:
        r = http.post("/v1/memory/recall", json={"agent_id": "a", "query": QUERY, "top_k": 1,
                                                 **extra})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_inline_appends_marked_context_after_the_ranked_results(
        hash_server: LiveServer) -> None:
    body = recall(hash_server)
    first, *context = body["memories"]
    assert first["memory"]["content"] == TURNS[1][0] and "retrieval" not in first
    assert "rank_score" in first
    assert [c["memory"]["content"] for c in context] == [TURNS[0][0], TURNS[2][0]]
    for c in context:
        assert c["retrieval"] == "neighborhood"
        assert "rank_score" not in c and "context_of" not in c
    assert body["context_memories"] == [] and body["total_found"] == 1


def test_separate_and_off(hash_server: LiveServer) -> None:
    body = recall(hash_server, neighborhood_mode="separate")
    assert len(body["memories"]) == 1
    ranked_id = body["memories"][0]["memory"]["id"]
    assert [c["context_of"] for c in body["context_memories"]] == [ranked_id, ranked_id]
    assert all("retrieval" not in c for c in body["context_memories"])
    for extra in ({"neighborhood_mode": "off"}, {"neighborhood": False}):
        body = recall(hash_server, **extra)
        assert len(body["memories"]) == 1 and body["context_memories"] == []


def test_the_sdk_reads_inline_context_as_not_ranked(hash_server: LiveServer) -> None:
    result = hash_server.client().recall("a", QUERY, top_k=1)
    assert [m.content for m in result.ranked] == [TURNS[1][0]]
    assert sum(m.is_neighborhood for m in result.memories) == 2
