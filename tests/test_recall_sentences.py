"""A memory scores as well as its best sentence: the split, the sentence vectors kept beside
the memory's (written, replaced, deleted with it), and the ranking they change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.models import MemoryFilter
from app.recall.sentences import sentences
from app.service import Service
from tests.conftest import MakeService


def test_sentences_keep_the_author_and_drop_what_says_nothing() -> None:
    assert sentences("Mel: You'd be a great counselor! Thanks. By the way, look at this. "
                     "[a photo of a painting of a sunset]") == [
        "Mel: You'd be a great counselor!", "Mel: By the way, look at this.",
        "Mel: [a photo of a painting of a sunset]"]
    assert sentences("User: is my laptop at the office? Assistant: Yes, it is there.") == [
        "User: is my laptop at the office?", "Assistant: Yes, it is there."]
    assert sentences('He said "stop it now." Then we left the party early.') == [
        'He said "stop it now."', "Then we left the party early."]
    # one sentence (or one that says something): the whole text is enough
    assert sentences("Calvin lost the laptop somewhere in Kyoto on Friday.") == []
    assert sentences("Caroline: Thanks! Wow.") == []
    assert sentences("Calvin lost the laptop in Kyoto. Oh no!") == []
    assert len(sentences(" ".join(["one more sentence here."] * 100))) == 32


LONG = ("Melanie: You would be a great counselor, your empathy will help the people you work "
        "with. The weather was grey and the traffic slow all week long. "
        "We went swimming in the lake with the kids.")
OTHER = "Melanie: swimming lessons for the kids are expensive, and the pool is far away"


def rowid(svc: Service, content: str) -> int:
    parts = svc.parts()
    for r in parts.store.memories.rowids("a", MemoryFilter(), None):
        if parts.store.memories.by_rowid(r).content == content:
            return r
    raise AssertionError(content)


def test_sentence_vectors_live_and_die_with_their_memory(svc: Service) -> None:
    stored = svc.memories.store_batch("a", [{"content": LONG}, {"content": OTHER}])
    parts = svc.parts()
    long_id, other_id = rowid(svc, LONG), rowid(svc, OTHER)
    kept = parts.store.memories.sentence_vectors([long_id, other_id])
    assert list(kept) == [long_id]  # the one-sentence memory has none
    assert kept[long_id].shape == (3, parts.embedder.preset.dimension)
    expected = parts.embedder.embed(sentences(LONG))
    assert np.allclose(kept[long_id], expected, atol=1e-6)
    # an update to two sentences replaces them; to one sentence, removes them
    memory_id = stored.memories[0].id
    svc.memories.update("a", memory_id,
                        content="Melanie: we did one thing. And then we did another.")
    assert parts.store.memories.sentence_vectors([long_id])[long_id].shape[0] == 2
    svc.memories.update("a", memory_id, content="Melanie: just the one thing now")
    assert parts.store.memories.sentence_vectors([long_id]) == {}
    svc.memories.store("a", LONG)
    again = rowid(svc, LONG)
    assert again in parts.store.memories.sentence_vectors([again])
    svc.memories.forget("a", memory_ids=[parts.store.memories.by_rowid(again).id])
    assert parts.store.memories.sentence_vectors([again]) == {}


def test_a_memory_scores_as_well_as_its_best_sentence(make_service: MakeService,
                                                      tmp_path: Path) -> None:
    query = "went swimming in the lake with the kids"
    scores = {}
    for weight in (0.0, 1.0):
        svc = make_service(recall_sentence_weight=weight, data_dir=tmp_path / str(weight))
        svc.memories.store_batch("a", [{"content": LONG}])
        hit = svc.recall.recall("a", query, routing="vector", top_k=1).hits[0]
        sentence_vector = svc.parts().embedder.embed([sentences(LONG)[2]])[0]
        query_vector = svc.parts().embedder.embed([query], query=True)[0]
        scores[weight] = hit.vector_score
        svc.close()
    # weight 1: the cosine of its best sentence, higher than the whole text's
    assert scores[1.0] == pytest.approx(float(sentence_vector @ query_vector), abs=1e-5)
    assert scores[1.0] > scores[0.0]


@pytest.fixture
def svc(hash_service: Service) -> Service:
    return hash_service
