"""Ranking logic with the deterministic test embedder: fusion order, conversation context,
weighting, dates, filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import NotFoundError
from app.recall.context import propagate
from app.recall.engine import _may_reach_pool
from app.recall.fusion import minmax, rrf
from app.recall.query import speaker
from app.service import Service
from tests.conftest import Clock, MakeService

DAY = 86_400


def test_rrf_orders_by_summed_reciprocal_ranks() -> None:
    fused = rrf([[1, 2, 3], [2, 3, 4]], k=60)
    assert sorted(fused, key=lambda x: -fused[x]) == [2, 3, 1, 4]
    assert rrf([[7], [7]], k=60)[7] == pytest.approx(1.0)
    weighted = rrf([[1, 2], [2, 1]], k=1, weights=[3.0, 1.0])
    assert weighted[1] > weighted[2]
    assert rrf([[], []], k=60) == {}


def test_minmax_normalises_each_channel() -> None:
    fused = minmax([{1: 0.9, 2: 0.5, 3: 0.1}, {3: 10.0, 2: 5.0}], [1.0, 1.0])
    assert fused[2] == pytest.approx((0.5 + 0.0) / 2)
    assert fused[3] == pytest.approx((0.0 + 1.0) / 2)
    assert fused[1] == pytest.approx(0.5)


def test_minmax_from_a_floor_keeps_the_meaning_of_zero() -> None:
    # Cosines 0.8 / 0.4 / -0.2 from the floor 0: 1, 0.5 and 0 (not 1, 0.67, 0).
    fused = minmax([{1: 0.8, 2: 0.4, 3: -0.2}], [1.0], floors=[0.0])
    assert fused == pytest.approx({1: 1.0, 2: 0.5, 3: 0.0})
    assert minmax([{1: -0.1, 2: -0.1}], [1.0], floors=[0.0]) == {1: 0.0, 2: 0.0}
    weighted = minmax([{1: 0.5, 2: 0.25}, {2: 4.0}], [0.5, 0.5], floors=[0.0, 0.0])
    assert weighted == pytest.approx({1: 0.5, 2: 0.25 + 0.5})


def test_propagate_passes_decaying_shares_to_what_follows() -> None:
    out = propagate({1: 1.0, 5: 0.4}, [(1, 2, 1), (1, 3, 2), (5, 2, 1)], weight=0.5)
    assert out == pytest.approx({1: 1.0, 2: 0.5 + 0.2, 3: 0.25, 5: 0.4})


@pytest.fixture
def svc(hash_service: Service) -> Service:
    return hash_service


def contents(svc: Service, query: str, **kw: object) -> list[str]:
    return [h.memory.content for h in svc.recall.recall("a", query, **kw).hits]  # type: ignore[arg-type]


def test_both_channels_agreeing_beats_either_alone(svc: Service) -> None:
    svc.memories.store("a", "red apples grow in the orchard")
    svc.memories.store("a", "the orchard is closed on mondays")
    svc.memories.store("a", "apples and pears")
    assert contents(svc, "orchard apples", top_k=1) == ["red apples grow in the orchard"]


def test_importance_breaks_ties_of_equal_relevance(svc: Service) -> None:
    svc.memories.store("a", "the meeting is at noon", importance=0.2)
    svc.memories.store("a", "the meeting is at noon", importance=0.9)
    hits = svc.recall.recall("a", "meeting noon", top_k=2).hits
    assert [h.memory.importance for h in hits] == [0.9, 0.2]
    assert hits[0].rank_score > hits[1].rank_score
    assert hits[0].score == pytest.approx(hits[1].score, abs=0.02)


def test_first_k_results_are_stable_across_top_k(svc: Service) -> None:
    for i in range(30):
        svc.memories.store("a", f"note {i} about gardening and tomatoes {'and compost' * (i % 3)}",
                  importance=(i % 10) / 10)
    full = contents(svc, "gardening compost tomatoes", top_k=10)
    for k in range(1, 11):
        assert contents(svc, "gardening compost tomatoes", top_k=k) == full[:k]


@pytest.mark.parametrize("exact_limit", [5000, 0], ids=["exact", "index-oversampled"])
def test_filters(make_service: MakeService, exact_limit: int) -> None:
    svc = make_service(exact_search_limit=exact_limit)
    may = int(datetime(2023, 5, 8, tzinfo=UTC).timestamp())
    june = int(datetime(2023, 6, 20, tzinfo=UTC).timestamp())
    svc.memories.store("a", "coffee with Ann", memory_type="episodic", tags=["social"],
              session_id="s1", event_time=may, importance=0.3)
    svc.memories.store("a", "coffee beans are kept in the freezer", memory_type="semantic",
              tags=["kitchen", "coffee"], session_id="s2", event_time=june, importance=0.8)
    svc.memories.store("a", "coffee tasting at the roastery", memory_type="episodic",
              tags=["social", "coffee"], session_id="s2", importance=0.6)
    svc.memories.store("b", "coffee for agent b only")

    assert set(contents(svc, "coffee", top_k=10)) == {
        "coffee with Ann", "coffee beans are kept in the freezer",
        "coffee tasting at the roastery"}
    assert contents(svc, "coffee", memory_type="semantic") == [
        "coffee beans are kept in the freezer"]
    assert set(contents(svc, "coffee", tags=["kitchen", "social"], top_k=10)) == {
        "coffee with Ann", "coffee beans are kept in the freezer",
        "coffee tasting at the roastery"}
    assert contents(svc, "coffee", tags=["kitchen"]) == [
        "coffee beans are kept in the freezer"]
    assert set(contents(svc, "coffee", session_id="s2", top_k=10)) == {
        "coffee beans are kept in the freezer", "coffee tasting at the roastery"}
    assert contents(svc, "coffee", min_importance=0.7) == [
        "coffee beans are kept in the freezer"]
    # since/until read the event time, else the ingest time (clock.now, in 2025).
    assert contents(svc, "coffee", since="2023-05-01T00:00:00Z",
                    until="2023-05-31T23:59:59Z") == ["coffee with Ann"]
    assert contents(svc, "coffee", since="2024-01-01T00:00:00+00:00") == [
        "coffee tasting at the roastery"]
    assert contents(svc, "coffee", memory_type="procedural") == []


def test_expired_memories_are_never_returned(svc: Service, clock: Clock) -> None:
    gone = svc.memories.store("a", "temporary door code 1234", ttl_seconds=3600).memory
    kept = svc.memories.store("a", "permanent door code 9876").memory
    assert gone.expires_at == int(clock.now) + 3600
    assert len(contents(svc, "door code", top_k=5)) == 2
    clock.now += 2 * 3600
    assert contents(svc, "door code", top_k=5) == [kept.content]
    with pytest.raises(NotFoundError):
        svc.memories.get(gone.id, "a")
    at = svc.memories.store("a", "expires at a fixed time", expires_at=int(clock.now) + 10,
                   ttl_seconds=10**6).memory
    assert at.expires_at == int(clock.now) + 10  # expires_at wins over ttl_seconds


def test_routing_selects_channels(svc: Service) -> None:
    svc.memories.store("a", "zebra crossing near the school")
    vector = svc.recall.recall("a", "zebra", routing="vector").hits
    bm25 = svc.recall.recall("a", "zebra", routing="bm25").hits
    assert vector[0].vector_score is not None and vector[0].text_score is None
    assert bm25[0].text_score is not None and bm25[0].vector_score is None


def test_update_reembeds_only_changed_content(svc: Service) -> None:
    m = svc.memories.store("a", "the cat sleeps on the sofa").memory
    svc.memories.update("a", m.id, importance=0.9)
    assert contents(svc, "cat sofa", top_k=1) == ["the cat sleeps on the sofa"]
    svc.memories.update("a", m.id, content="the dog sleeps in the garden")
    assert contents(svc, "dog garden", top_k=1) == ["the dog sleeps in the garden"]
    assert svc.recall.recall("a", "cat sofa", routing="bm25").hits == []


def test_both_channels_agreeing_wins_under_rrf_too(svc: Service) -> None:
    svc.memories.store("a", "red apples grow in the orchard")
    svc.memories.store("a", "the orchard is closed on mondays")
    svc.memories.store("a", "apples and pears")
    assert contents(svc, "orchard apples", top_k=1, fusion="rrf") == [
        "red apples grow in the orchard"]


@pytest.mark.parametrize("exact_limit", [5000, 0], ids=["exact-top-1", "index-top-1"])
def test_every_candidate_gets_its_exact_cosine(make_service: MakeService,
                                               exact_limit: int) -> None:
    # One candidate per channel (a filter, so not the all-scored path for small agents): the
    # replies that join through conversation context get cosines from their stored vectors.
    svc = make_service(recall_candidates=1, exact_search_limit=exact_limit)
    svc.memories.store_batch("a", [{"content": text, "session_id": "s", "tags": ["home"]}
                                   for text in ("the boiler needs a service",
                                                "call the plumber on friday",
                                                "and buy some milk for the service")])
    hits = svc.recall.recall("a", "boiler service", top_k=5, tags=["home"]).hits
    assert len(hits) == 3
    embedder = svc.parts().embedder
    expected = (embedder.embed([h.memory.content for h in hits])
                @ embedder.embed(["boiler service"], query=True)[0])
    assert [h.vector_score for h in hits] == pytest.approx(expected.tolist(), abs=1e-5)


QUESTION = "Gina: when does the dance studio open?"
REPLY = "Jon: tomorrow night, doors at eight"
FOLLOW_UP = "Gina: wow, cannot wait"
LATER = "Jon: my cat knocked a glass off the table"


def conversation(svc: Service) -> None:
    svc.memories.store_batch("a", [{"content": text, "session_id": "s1"}
                          for text in (QUESTION, REPLY, FOLLOW_UP, LATER)])
    # Stored right after, but in another session, or by another agent in a same-named one.
    svc.memories.store("a", "Jon: the answer lives in another session", session_id="s2")
    svc.memories.store("b", "Jon: another agent's reply", session_id="s1")


def test_a_reply_inherits_relevance_from_what_it_answers(svc: Service) -> None:
    conversation(svc)
    hits = svc.recall.recall("a", "When does the dance studio open?", routing="bm25", top_k=10).hits
    # BM25 alone matches only the question; the next memory of its session gets half its
    # text relevance, the one after a quarter, the third nothing; other sessions nothing.
    assert [h.memory.content for h in hits] == [QUESTION, REPLY, FOLLOW_UP]
    assert [h.score for h in hits] == pytest.approx([1.0, 0.5, 0.25])
    assert hits[1].text_score is None  # it matched no word itself


def test_context_weight_zero_turns_conversation_context_off(make_service: MakeService,
                                                          ) -> None:
    svc = make_service(recall_context_weight=0.0)
    conversation(svc)
    assert contents(svc, "When does the dance studio open?", routing="bm25") == [QUESTION]


def test_filters_apply_to_inherited_relevance(svc: Service) -> None:
    svc.memories.store_batch("a", [
        {"content": QUESTION, "session_id": "s1", "tags": ["studio"]},
        {"content": REPLY, "session_id": "s1"},
        {"content": FOLLOW_UP, "session_id": "s1", "tags": ["studio"]},
    ])
    # The reply fails the filter: it is left out, and the follow-up keeps its distance 2.
    hits = svc.recall.recall("a", "When does the dance studio open?", routing="bm25",
                      tags=["studio"]).hits
    assert [h.memory.content for h in hits] == [QUESTION, FOLLOW_UP]
    assert hits[1].score == pytest.approx(0.25)


def test_the_query_naming_the_speaker_favours_what_they_said(svc: Service) -> None:
    # Same words, so the same cosine and BM25: only the speaker tells them apart.
    svc.memories.store("a", "Caroline: Melanie and I went to the pottery class")
    svc.memories.store("a", "Melanie: Caroline and I went to the pottery class")
    first = contents(svc, "Which class did Melanie go to?", top_k=2)
    assert first[0].startswith("Melanie:")
    first = contents(svc, "Which class did Caroline go to?", top_k=2)
    assert first[0].startswith("Caroline:")
    assert speaker("Dr. Lee: take two") == {"dr", "lee"}
    assert speaker("see https://example.org: nothing") == frozenset()
    assert speaker("no colon here") == frozenset()


def test_a_memory_that_only_asks_ranks_below_one_that_tells(svc: Service) -> None:
    svc.memories.store("a", "pottery class on monday?")
    svc.memories.store("a", "pottery class on monday.")
    assert contents(svc, "pottery class monday", top_k=2) == [
        "pottery class on monday.", "pottery class on monday?"]


def test_the_event_date_is_searchable(svc: Service) -> None:
    may = int(datetime(2023, 5, 8, 14, 0, tzinfo=UTC).timestamp())
    june = int(datetime(2023, 6, 20, 14, 0, tzinfo=UTC).timestamp())
    svc.memories.store("a", "we cooked paella for the neighbours", event_time=june)
    svc.memories.store("a", "we cooked paella for the neighbours", event_time=may)
    first = svc.recall.recall("a", "what did we cook in May 2023?", top_k=1).hits[0]
    assert first.memory.event_time == may
    first = svc.recall.recall("a", "what did we cook on Tuesday 20 June?", top_k=1).hits[0]
    assert first.memory.event_time == june


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_candidates_left_without_a_cosine_could_not_have_entered_the_pool(data: Any) -> None:
    """The engine looks up the vectors of text candidates only when their exact cosine could
    put them in the pool: give every other one the highest cosine it can have, the n-th
    nearest's (the vector channel returned the nearest n), and the pool is the same."""
    unit = st.floats(-0.2, 1.0, allow_nan=False)
    nearest = data.draw(st.dictionaries(st.integers(0, 199), unit, min_size=1, max_size=60))
    text_only = data.draw(st.lists(st.integers(200, 399), unique=True, max_size=80))
    relevance = {label: data.draw(st.floats(0.0, 1.6)) for label in
                 text_only + data.draw(st.lists(st.sampled_from(sorted(nearest)), unique=True))}
    ident = set(data.draw(st.lists(st.sampled_from(text_only), unique=True, max_size=3))
                if text_only else [])
    wv = data.draw(st.sampled_from([0.0, 0.3, 0.5, 1.0]))
    size = data.draw(st.sampled_from([4, 10, 40]))
    wanted = set(relevance) | ident
    scored = _may_reach_pool(wanted, dict(nearest), relevance, ident, wv, 1.0 - wv, size)
    # the worst case: every other candidate as near as the n-th nearest
    truth = {label: min(nearest.values()) for label in wanted} | nearest

    def pool(cosines: dict[int, float]) -> list[float]:
        fused = minmax([cosines, relevance], [wv, 1.0 - wv], floors=[0.0, 0.0])
        for label in ident:
            fused[label] = fused.get(label, 0.0) + 1.0
        return sorted(fused.values(), reverse=True)[:size]

    assert set(nearest) & wanted <= scored <= wanted
    # the pool's scores are the same whether the others' cosines are known or not
    known = {k: v for k, v in truth.items() if k in nearest or k in scored}
    assert pool(known) == pytest.approx(pool(truth))
