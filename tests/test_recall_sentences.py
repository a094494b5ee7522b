"""A memory scores as well as its best sentence: the split, the sentence vectors kept beside
the memory's (written, replaced, deleted with it), and the ranking they change."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from app.models import MemoryFilter
from app.recall.sentences import sentence_parts, sentences
from app.service import Service
from app.store.sentences import SentenceCache, best_cosines, best_packed_cosines, pack
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


@pytest.mark.parametrize("cache_mb", [0, 16])
def test_a_memory_scores_as_well_as_its_best_sentence(make_service: MakeService,
                                                      tmp_path: Path, cache_mb: int) -> None:
    query = "went swimming in the lake with the kids"
    scores = {}
    for weight in (0.0, 1.0):
        svc = make_service(recall_sentence_weight=weight, recall_sentence_cache_mb=cache_mb,
                           data_dir=tmp_path / str(weight))
        svc.memories.store_batch("a", [{"content": LONG}])
        for _ in range(2):  # read from the database, then (cache_mb > 0) from the cache
            hit = svc.recall.recall("a", query, routing="vector", top_k=1).hits[0]
            sentence_vector = svc.parts().embedder.embed([sentences(LONG)[2]])[0]
            query_vector = svc.parts().embedder.embed([query], query=True)[0]
            scores[weight] = hit.vector_score
        svc.close()
    # weight 1: the cosine of its best sentence, higher than the whole text's; exact when
    # read from the database, within int8's rounding when from the cache
    assert scores[1.0] == pytest.approx(float(sentence_vector @ query_vector),
                                        abs=1e-5 if cache_mb == 0 else 5e-3)
    assert scores[1.0] > scores[0.0]


@pytest.fixture
def svc(hash_service: Service) -> Service:
    return hash_service


# -- every write path keeps them in step with the content -------------------------------

def assert_fresh(svc: Service, agent: str) -> int:
    """Every live memory of the agent has the sentence vectors of its current content (none
    when it has fewer than two sentences), read from the database and through recall's
    cache alike; returns how many have some."""
    parts = svc.parts()
    memories = parts.store.memories
    rowids = memories.rowids(agent, MemoryFilter(), None)
    stored = memories.sentence_vectors(rowids)
    query = parts.embedder.embed(["a question about the kids and the lake"], query=True)[0]
    cached = memories.best_sentence_cosines(rowids, query)
    for r in rowids:
        content = memories.by_rowid(r).content
        expected = sentences(content)
        if not expected:
            assert r not in stored and r not in cached, content
            continue
        vectors = parts.embedder.embed(expected)
        assert np.allclose(stored[r], vectors, atol=1e-6), content
        assert cached[r] == pytest.approx(float((vectors @ query).max()), abs=5e-3), content
    return len(stored)


def test_updates_replace_them_even_through_the_cache(svc: Service) -> None:
    memory = svc.memories.store("a", LONG).memory
    assert assert_fresh(svc, "a") == 1  # (and in the cache now)
    svc.memories.update("a", memory.id, content="Melanie: we baked bread on Sunday. "
                                                "Then the kids painted the fence blue.")
    assert assert_fresh(svc, "a") == 1
    svc.memories.update("a", memory.id, content="Melanie: just the one thing now")
    assert assert_fresh(svc, "a") == 0
    svc.memories.update("a", memory.id, content=LONG)
    assert assert_fresh(svc, "a") == 1
    svc.memories.forget("a", memory_ids=[memory.id])
    assert assert_fresh(svc, "a") == 0


def test_consolidation_and_restore_embed_the_sentences(svc: Service) -> None:
    a = svc.memories.store("a", "Melanie: the kids loved the lake. We swam every morning.").memory
    b = svc.memories.store("a", "Melanie: the kids loved the lake a lot. The water was cold "
                                "but clear.").memory
    assert_fresh(svc, "a")
    out = svc.consolidation.consolidate("a", memory_ids=[a.id, b.id])
    assert out["memories_removed"] == 2
    assert assert_fresh(svc, "a") == 1  # the merged memory, of several sentences
    first = svc.memories.store("a", "The user's favourite colour is green. They paint with "
                                    "it often.", memory_type="semantic").memory
    again = svc.memories.store("a", "the user's favourite colour is GREEN. they paint with "
                                    "it often", memory_type="semantic")
    assert again.memory.id == first.id and again.duplicates
    svc.memories.restore_deduplicated("a", again.duplicates[0])
    assert assert_fresh(svc, "a") == 3


def test_an_import_embeds_the_sentences_of_memories_that_came_with_vectors(
        make_service: MakeService, tmp_path: Path) -> None:
    a = make_service(data_dir=tmp_path / "a")
    a.memories.store_batch("a", [{"content": LONG}, {"content": OTHER},
                                 {"content": "Two short ones here. And another one here."}])
    data = b"".join(a.transfer.export("a", "jsonl", include_vectors=True).chunks)
    b = make_service(data_dir=tmp_path / "b")
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    job = b.transfer.wait(b.transfer.submit("a", path, None, owned=False)["job_id"], 60)
    assert (job["imported"], job["reembedded"]) == (3, 0)  # the vectors were used
    assert assert_fresh(b, "a") == 2
    # the export carried the sentence vectors: the same ones, not made again (the hash
    # embedder would make the same ones again: the import's are marked to tell)
    assert b"sentence_vectors" in data
    marked = b"\n".join(_marked(line) for line in data.splitlines() if line.strip())
    path.write_bytes(marked)
    job = b.transfer.wait(b.transfer.submit("m", path, None, owned=False)["job_id"], 60)
    mm = b.parts().store.memories
    kept = mm.sentence_vectors(mm.rowids("m", MemoryFilter(), None))
    assert len(kept) == 2 and all(float(v[0, 0]) == 0.5 for v in kept.values())
    ma, mb = a.parts().store.memories, b.parts().store.memories
    sa = ma.sentence_vectors(ma.rowids("a", MemoryFilter(), None))
    sb = mb.sentence_vectors(mb.rowids("a", MemoryFilter(), None))
    by_content_a = {ma.by_rowid(r).content: v for r, v in sa.items()}
    assert {mb.by_rowid(r).content: v.tobytes() for r, v in sb.items()} == {
        c: v.tobytes() for c, v in by_content_a.items()}
    # an export without them (another tool's, an older one's): made on import
    stripped = b"\n".join(json.dumps({k: v for k, v in json.loads(line).items()
                                       if k != "sentence_vectors"}).encode()
                          for line in data.splitlines() if line.strip())
    assert b"sentence_vectors" in data and b"sentence_vectors" not in stripped
    path.write_bytes(stripped)
    job = b.transfer.wait(b.transfer.submit("c", path, None, owned=False)["job_id"], 60)
    assert (job["imported"], job["reembedded"]) == (3, 0)
    assert assert_fresh(b, "c") == 2


def test_the_cache_keeps_nothing_read_while_a_write_was_open() -> None:
    cache = SentenceCache(1 << 20)
    packed = pack(np.eye(2, 4, dtype=np.float32))
    found, missing, generation = cache.lookup([1, 2])
    assert (found, missing) == ({}, [1, 2])
    cache.put(generation, {1: packed}, missing)
    found, missing, _ = cache.lookup([1, 2])
    assert list(found) == [1] and missing == []  # 2 is known to have none
    cache.forget([1])  # the writer, in its transaction
    found, missing, generation = cache.lookup([1])
    assert missing == [1] and generation == -1  # a read now may see the old row
    cache.put(generation, {1: packed}, missing)
    assert cache.lookup([1])[1] == [1]
    _, _, before = cache.lookup([2])
    cache.committed()
    cache.put(before, {1: packed}, [1])  # read before the commit: not kept
    assert cache.lookup([1])[1] == [1]
    _, missing, generation = cache.lookup([1])
    cache.put(generation, {1: packed}, missing)
    assert cache.lookup([1])[1] == []
    small = SentenceCache(400)
    _, missing, generation = small.lookup([1, 2, 3])
    small.put(generation, {1: packed, 2: packed, 3: packed}, missing)
    assert len(small) < 3 and small.size_bytes <= 400  # the least recently used went


def test_int8_keeps_the_cosines() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((50, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[7] + 0.1 * rng.standard_normal(384).astype(np.float32)
    query /= np.linalg.norm(query)
    found = {i: vectors[i * 5:i * 5 + 5] for i in range(10)}
    exact = best_cosines(found, query)
    approx = best_packed_cosines({i: pack(v) for i, v in found.items()}, query)
    assert exact.keys() == approx.keys()
    for i in exact:
        assert approx[i] == pytest.approx(exact[i], abs=3e-3)
        assert exact[i] == pytest.approx(float((found[i] @ query).max()), abs=1e-6)


def test_with_the_lever_off_no_sentence_is_embedded(make_service: MakeService) -> None:
    svc = make_service(recall_sentence_weight=0)
    svc.memories.store_batch("a", [{"content": LONG}])
    memories = svc.parts().store.memories
    assert memories.sentence_vectors(memories.rowids("a", MemoryFilter(), None)) == {}


def test_pooled_sentence_vectors_come_from_the_same_pass(service: Service) -> None:
    """The real model: each sentence's pooled vector is nearest its own sentence embedded
    alone, and a sentence past the model's window is embedded on its own."""
    embedder = service.parts().embedder
    parts = sentence_parts(LONG)
    vectors, pooled = embedder.embed_parts([LONG, OTHER], [parts, []])
    assert np.allclose(vectors, embedder.embed([LONG, OTHER]), atol=0.05)
    assert pooled[1] is None and pooled[0] is not None and pooled[0].shape == (3, 384)
    assert np.allclose(np.linalg.norm(pooled[0], axis=1), 1.0, atol=1e-5)
    alone = embedder.embed([text for text, _ in parts])
    sims = pooled[0] @ alone.T
    assert list(sims.argmax(axis=1)) == [0, 1, 2]
    long = "Melanie: " + " ".join(["we talked about the weather for a while."] * 60) + (
        " In the end we went swimming in the lake.")
    found = sentence_parts(long)
    _, pooled = embedder.embed_parts([long], [found])
    assert pooled[0] is not None and not np.isnan(pooled[0]).any()
    last = embedder.embed([found[-1][0]])[0]
    assert float(pooled[0][-1] @ last) > 0.99  # past the window: embedded alone


def _marked(line: bytes) -> bytes:
    """An export line whose sentence vectors start with 0.5: made by no embedder."""
    record = json.loads(line)
    if "sentence_vectors" in record:
        raw = bytearray(base64.b64decode(record["sentence_vectors"]))
        raw[:4] = np.float32(0.5).tobytes()
        record["sentence_vectors"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(record).encode()
