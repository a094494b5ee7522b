"""scripts/bench_known_item.py and the known-item questions of scripts/corpus.py: the
questions' answers are the memories they are about, and a tiny run goes end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_known_item  # noqa: E402
import corpus  # noqa: E402


def test_labelled_corpus_is_the_corpus() -> None:
    assert [text for text, _, _ in corpus.labelled_corpus(500, seed=3)] == \
        corpus.corpus(500, seed=3)


def test_known_item_answers_share_the_fields_the_question_names() -> None:
    items = corpus.labelled_corpus(2000, seed=5)
    questions = corpus.known_item_queries(items, 200, seed=6)
    assert len(questions) == 200
    assert len({q for q, _ in questions}) == 200
    for question, answers in questions:
        assert 1 <= len(answers) <= 3
        templates = {items[i][1] for i in answers}
        assert len(templates) == 1
        template = templates.pop()
        # some question form of the template names fields on which all answers agree and
        # whose values the question holds
        assert any(
            all(items[i][2][k] == items[answers[0]][2][k] for i in answers for k in names)
            and all(items[answers[0]][2][k] in question for k in names)
            for _, names in corpus.KNOWN_ITEM[template]), question
    # every template has questions
    assert set(corpus.KNOWN_ITEM) == set(range(len(corpus.TEMPLATES)))


def test_score() -> None:
    s = bench_known_item.score([1, 3, None, 10])
    assert s["hit@1"] == 0.25 and s["hit@5"] == 0.5 and s["hit@10"] == 0.75
    assert abs(s["mrr"] - (1 + 1 / 3 + 1 / 10) / 4) < 1e-9


def test_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_known_item.py"), "--size", "120",
         "--queries", "12", "--others", "1", "--other-size", "30", "--json", str(out),
         "--env", "DAKERA_EMBEDDING_MODEL=hash", "--option", "neighborhood=false"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "ingest: 120 memories in the scored agent and 30 in 1 other agents" in run.stdout
    assert "known-item recall (12 questions, 120 memories): hit@1" in run.stdout
    assert "recall over HTTP (12 queries" in run.stdout
    result = json.loads(out.read_text())
    assert len(result["rows"]) == 12
    assert set(result["summary"]) == {"hit@1", "hit@5", "hit@10", "mrr"}
    # BM25 alone finds most of them at this size, whatever the embedder
    assert result["summary"]["hit@10"] >= 0.5
