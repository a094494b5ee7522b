"""BM25 per agent (app/index/text.py): exact scores, isolation between agents, persistence
and replay, compaction, identifiers, and any text finding itself."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.index.text import DATE_WEIGHT, K1, B, TextIndex, doc
from app.recall.query import identifiers, query_stems, terms
from app.service import Service
from app.text import event_words, tokens
from tests.conftest import MakeService

WORDS = [f"w{i}" for i in range(60)]
WEIGHTS = [1.0 / (i + 1) ** 1.1 for i in range(len(WORDS))]


def text(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, WEIGHTS, k=rng.randint(3, 14)))


def reference(docs: dict[int, tuple[str, int | None]], query: list[str]) -> dict[int, float]:
    """BM25 as FTS5 computes it, term by term with plain loops, over these docs only."""
    parsed = {label: doc(c, t) for label, (c, t) in docs.items()}
    lengths = {label: len(c) + DATE_WEIGHT * len(d) for label, (c, d) in parsed.items()}
    avg = sum(lengths.values()) / len(parsed)
    scores: dict[int, float] = {}
    for term in dict.fromkeys(query):
        tf = {label: c.count(term) + DATE_WEIGHT * d.count(term)
              for label, (c, d) in parsed.items()}
        holding = [label for label, f in tf.items() if f > 0]
        if not holding:
            continue
        idf = math.log((len(parsed) - len(holding) + 0.5) / (len(holding) + 0.5))
        idf = idf if idf > 0 else 1e-6
        for label in holding:
            f = tf[label]
            scores[label] = scores.get(label, 0.0) + idf * f * (K1 + 1) / (
                f + K1 * (1 - B + B * lengths[label] / avg))
    return scores


def check(index: TextIndex, docs: dict[int, tuple[str, int | None]], query: list[str],
          k: int, allowed: list[int] | None = None) -> None:
    want = reference(docs, query)
    if allowed is not None:
        want = {label: s for label, s in want.items() if label in allowed}
    labels, scores = index.search(query, k, None if allowed is None else np.array(allowed))
    best = sorted(want.values(), reverse=True)[:k]
    assert scores.tolist() == pytest.approx(best, rel=1e-4)
    for label, score in zip(labels.tolist(), scores.tolist(), strict=True):
        assert want[label] == pytest.approx(score, rel=1e-4)


def test_scores_are_bm25_over_the_agents_own_memories(tmp_path: Path) -> None:
    rng = random.Random(3)
    index = TextIndex("a")
    docs: dict[int, tuple[str, int | None]] = {}
    for label in range(1, 1501):
        docs[label] = (text(rng), 1_700_000_000 + label * 86_400 if rng.random() < 0.2
                       else None)
    index.add(list(docs), [doc(c, t) for c, t in docs.values()])
    # deletions and replaced contents leave dead slots behind
    for label in rng.sample(sorted(docs), 150):
        del docs[label]
        index.delete([label])
    for label in rng.sample(sorted(docs), 100):
        docs[label] = (text(rng), None)
        index.add([label], [doc(*docs[label])])
    queries = [[f"w{rng.choice(range(60))}" for _ in range(rng.randint(1, 4))]
               for _ in range(60)] + [["w0", "w1"], ["absent"], ["monday", "w3"],
                                     tokens(event_words(1_700_000_000 + 9 * 86_400))]
    for i, query in enumerate(queries):
        check(index, docs, query, (5, 10, 50)[i % 3])
    allowed = sorted(rng.sample(sorted(docs), 300))
    for query in queries[:10]:
        check(index, docs, query, 10, allowed)
    # compaction drops the dead slots and changes nothing else
    index._deleted = 5000
    assert index.needs_compaction()
    index.compact()
    assert len(index._labels) == len(docs) == len(index)
    for query in queries[:20]:
        check(index, docs, query, 10)
    # saved and loaded: the same index
    index.save(tmp_path / "a.bm25")
    loaded = TextIndex.load(tmp_path / "a.bm25", "a")
    assert loaded is not None and len(loaded) == len(docs)
    for query in queries[:20]:
        check(loaded, docs, query, 10)
    assert TextIndex.load(tmp_path / "a.bm25", "b") is None  # another agent's file
    (tmp_path / "a.bm25").write_bytes(b"\x00garbage")
    assert TextIndex.load(tmp_path / "a.bm25", "a") is None


CONVERSATION = [
    "Caroline: I went to the LGBTQ support group yesterday and it was so powerful",
    "Melanie: that sounds amazing, what did you learn there?",
    "Caroline: the transgender stories were inspiring, I want to study counseling",
    "Melanie: I painted a sunset with my kids at the lake last weekend",
    "Caroline: adoption agencies are my next step, I researched them this week",
    "Melanie: we went camping in the mountains and saw the perseid meteor shower",
]
QUESTIONS = ["What did Caroline research?", "Where did Melanie go camping?",
             "What did Melanie paint?", "What is Caroline studying?", "support group"]


def answers(svc: Service, agent: str) -> list[list[tuple[str, float]]]:
    out = []
    for q in QUESTIONS:
        for routing in ("bm25", "hybrid"):
            hits = svc.recall.search(agent, q, top_k=4, routing=routing).hits
            out.append([(h.memory.content, round(h.score, 6)) for h in hits])
    return out


def test_an_agents_answers_do_not_depend_on_other_agents(make_service: MakeService,
                                                         tmp_path: Path) -> None:
    alone = make_service(data_dir=tmp_path / "alone")
    alone.memories.store_batch("caroline", [{"content": c} for c in CONVERSATION])
    crowded = make_service(data_dir=tmp_path / "crowded")
    rng = random.Random(5)
    others = ["Caroline and Melanie went camping again", "support group meeting notes",
              "the research on adoption", "paint the sunset", "Melanie Melanie Melanie"]
    for n in range(8):  # other agents, using the same words a lot
        crowded.memories.store_batch(f"other-{n}", [
            {"content": f"{rng.choice(others)} {text(rng)}"} for _ in range(60)])
    crowded.memories.store_batch("caroline", [{"content": c} for c in CONVERSATION])
    assert answers(alone, "caroline") == answers(crowded, "caroline")


def test_text_indexes_survive_restart_and_replay(make_service: MakeService,
                                                 tmp_path: Path) -> None:
    data = tmp_path / "data"
    svc = make_service(data_dir=data)
    ids = [m.id for m in svc.memories.store_batch("a", [{"content": c}
                                                         for c in CONVERSATION]).memories]
    svc.close()  # saves the indexes
    assert list((data / "indexes").glob("*.bm25"))
    svc = make_service(data_dir=data)
    before = answers(svc, "a")
    # committed but never saved: replayed from the index log at the next start
    m = svc.memories.store("a", "Caroline: my research is on adoption law").memory
    svc.memories.forget("a", memory_ids=[ids[4]])
    changed = answers(svc, "a")
    assert changed != before
    svc.parts().store.write(lambda tx: None)
    svc.parts().indexes._texts.clear()  # as if the process died before saving
    svc.parts().indexes._indexes.clear()
    assert answers(svc, "a") == changed
    assert m.id in [h.memory.id for h in svc.recall.search("a", "adoption law").hits]


def test_identifiers_match_as_written_in_the_content(hash_service: Service) -> None:
    svc = hash_service
    a = svc.memories.store("a", "ticket 4417-XQ-93 is about the blender").memory
    svc.memories.store("a", "ticket 4417-XQ-39 is about the toaster")
    svc.memories.store("a", "XQ 93 4417 are just words here")
    dated = svc.memories.store("a", "a trip to the coast", event_time=1_700_000_000).memory
    assert identifiers("what about ticket 4417-XQ-93?") == [["4417", "xq", "93"]]
    assert identifiers("hello there") == []
    engine, index = svc.recall.engine, svc.parts().indexes.find_text("a")
    assert index is not None
    assert engine._holding_identifiers(index, "status of 4417-XQ-93?", None, svc.now()) == [
        a.rowid]  # all three tokens are in the third memory too, but not in that order
    hits = svc.recall.search("a", "4417-XQ-93", top_k=3).hits
    assert hits[0].memory.id == a.id and hits[0].rank_score > 1.0  # above all without it
    # the year of an event date is indexed beside the content, but is no identifier match
    year = event_words(dated.event_time).split()[-1]
    assert engine._holding_identifiers(index, f"trip in {year}", None, svc.now()) == []
    assert svc.recall.search("a", f"trip in {year}", top_k=1).hits[0].memory.id == dated.id


WORD_PARTS = st.sampled_from(["blender", "ticket", "Ärger", "naïve", "AND", "OR", "NOT",
                              "NEAR", "x1", "42", "über", "don't", "e-mail", "a_b", "café"])
SEPARATORS = st.sampled_from([" ", "  ", ", ", "; ", ' "', "* ", ":", "(", ")", "-", "^",
                              "?", "\n", "🙄", "dog🐶"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WORD_PARTS, SEPARATORS), min_size=1, max_size=8))
def test_a_text_finds_itself(parts: list[tuple[str, str]]) -> None:
    """Stored, a text is found by its own words as a query, whatever operators, quotes,
    punctuation, diacritics and emoji it holds."""
    content = "".join(w + sep for w, sep in parts)
    index = TextIndex("a")
    index.add([1, 2], [doc(content, None), doc("something else entirely", None)])
    labels, _ = index.search(query_stems(content), 2)
    assert 1 in labels.tolist()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_query(query: str) -> None:
    """Any user text (no syntax is read from it) gives a search, of nothing when it has no
    words; identifiers are token sequences."""
    index = TextIndex("a")
    index.add([1], [doc("a memory about blenders and 4417-XQ-93", 1_700_000_000)])
    labels, scores = index.search(query_stems(query), 5)
    assert len(labels) <= 1 and (len(labels) == 0) == (len(scores) == 0)
    assert (query_stems(query) == []) == (terms(query) == [])
    assert all(seq and all(seq) for seq in identifiers(query))


def test_terms_drop_stop_words_unless_nothing_else() -> None:
    assert terms("What did Caroline do last weekend?") == ["caroline", "last", "weekend"]
    assert terms("what is it") == ["what", "is", "it"]
    assert terms("!!! 🙄") == []
    assert terms("Café NAÏVE") == ["cafe", "naive"]
    assert query_stems("running runners") == ["run", "runner"]
