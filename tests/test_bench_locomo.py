"""scripts/bench_locomo.py: its parsing, and a run end to end on a tiny file of the LoCoMo
schema (the fixed scorer is not in this repository: that run is skipped without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_locomo  # noqa: E402

SCORER = Path(os.environ.get("LOCOMO_SCORER") or Path(bench_locomo.DEFAULT_DATA).parent
               / "score.py")


def test_session_dates_parse_as_utc() -> None:
    assert bench_locomo.session_time("1:56 pm on 8 May, 2023") == 1683554160
    assert bench_locomo.session_time("12:20 am on 8 December, 2023") == 1701994800
    assert bench_locomo.session_time("sometime") is None


def test_turn_content() -> None:
    turn = {"speaker": "Mel", "text": "Look!", "blip_caption": "a photo of a lake"}
    assert bench_locomo.turn_content(turn) == "Mel: Look! [shares a photo of a lake]"
    assert bench_locomo.turn_content({"speaker": "Jo", "text": "Hi"}) == "Jo: Hi"


TINY = [{
    "sample_id": "tiny-1",
    "conversation": {
        "speaker_a": "Ann", "speaker_b": "Bob",
        "session_1_date_time": "10:00 am on 3 March, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "Which ferry do we take?"},
            {"speaker": "Bob", "dia_id": "D1:2", "text": "The nine o'clock one to Skye."},
        ],
        "session_2_date_time": "6:00 pm on 9 April, 2023",
        "session_2": [
            {"speaker": "Bob", "dia_id": "D2:1", "text": "My sister adopted a beagle."},
            {"speaker": "Ann", "dia_id": "D2:2", "text": "Look at my garden!",
             "blip_caption": "a photo of tulips"},
        ],
    },
    "qa": [
        {"question": "Which ferry do Ann and Bob take?", "answer": "to Skye",
         "evidence": ["D1:2"], "category": 4},
        {"question": "What did Bob's sister adopt?", "answer": "a beagle",
         "evidence": ["D2:1"], "category": 1},
        {"question": "What flowers does Ann grow?", "answer": "tulips",
         "evidence": ["D2:2"], "category": 4},
    ],
}]


@pytest.mark.skipif(not SCORER.is_file(), reason=f"the fixed scorer is not at {SCORER}")
def test_runs_end_to_end_on_a_tiny_file(tmp_path: Path) -> None:
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(TINY))
    out = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_locomo.py"), "--data", str(data),
         "--scorer", str(SCORER), "--json", str(out), "--env", "DAKERA_EMBEDDING_MODEL=hash"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "ingest: 4 memories" in run.stdout
    assert "[all] all gold turns in top-k" in run.stdout and "recall over HTTP" in run.stdout
    result = json.loads(out.read_text())
    assert result["summary"]["overall"]["n"] == 3
    # Four memories, top_k 20: every evidence turn is somewhere in the first 20.
    assert result["summary"]["overall"]["all@20"] == 1.0


@pytest.mark.skipif(not SCORER.is_file(), reason=f"the fixed scorer is not at {SCORER}")
def test_crowd_mode_runs_alone_and_beside_other_agents(tmp_path: Path) -> None:
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(TINY))
    out = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_locomo.py"), "--data", str(data),
         "--scorer", str(SCORER), "--json", str(out), "--env", "DAKERA_EMBEDDING_MODEL=hash",
         "--crowd", "--crowd-agents", "2", "--crowd-size", "30"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "crowd: 60 memories of 2 other agents" in run.stdout
    assert "beside others minus alone (points): any@5" in run.stdout
    result = json.loads(out.read_text())
    assert set(result) == {"alone", "beside others"}
    assert result["beside others"]["summary"]["overall"]["n"] == 3
