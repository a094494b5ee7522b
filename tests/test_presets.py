"""A user's own model export: a folder with model.onnx, tokenizer.json and preset.json. The
preset's pooling and prefixes are applied (checked against onnxruntime run by hand)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from app.config import SettingError, Settings
from app.embed import PresetError, load_embedder, resolve
from tests.conftest import MakeService

ROOT = Path(__file__).resolve().parent.parent
MINILM = ROOT / "models" / "all-minilm-l6-v2"
PRESET = {"dimension": 384, "max_tokens": 128, "pooling": "cls", "normalize": True,
          "query_prefix": "query: ", "passage_prefix": "passage: "}


def user_export(models: Path, name: str = "my-cls-model", **preset: object) -> Path:
    """The MiniLM export copied into a folder of its own, with a preset.json (no manifest,
    as a user's export has none)."""
    folder = models / name
    folder.mkdir(parents=True)
    for file in ("model.onnx", "tokenizer.json"):
        shutil.copyfile(MINILM / file, folder / file)
    (folder / "preset.json").write_text(json.dumps({**PRESET, **preset}))
    return folder


def by_hand(folder: Path, text: str, pooling: str) -> np.ndarray:
    """The model run directly: one text, no padding, the given pooling, L2-normalised."""
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=128)
    enc = tok.encode(text)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {"input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64)}
    if "token_type_ids" in {i.name for i in session.get_inputs()}:
        feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
    hidden = session.run(None, feed)[0][0]
    vec = hidden[0] if pooling == "cls" else hidden.mean(axis=0)
    return vec / np.linalg.norm(vec)


def test_the_preset_file_sets_pooling_and_prefixes(tmp_path: Path) -> None:
    folder = user_export(tmp_path)
    embedder = load_embedder("my-cls-model", tmp_path)
    assert embedder.preset.pooling == "cls" and embedder.preset.from_file
    text = "Caroline moved to Berlin in May"
    passage = embedder.embed([text])[0]
    query = embedder.embed([text], query=True)[0]
    assert float(passage @ by_hand(folder, "passage: " + text, "cls")) > 0.9999
    assert float(query @ by_hand(folder, "query: " + text, "cls")) > 0.9999
    # and it is not what the built-in preset (mean pooling, no prefix) would give
    assert float(passage @ by_hand(folder, text, "mean")) < 0.99


def test_a_server_stores_and_recalls_through_a_user_model(tmp_path: Path,
                                                          make_service: MakeService) -> None:
    models = tmp_path / "models"
    folder = user_export(models)
    service = make_service(data_dir=tmp_path / "data", embedding_model="my-cls-model",
                           models_dir=str(models))
    facts = ["Caroline moved to Berlin in May", "Melanie paints sunsets on weekends",
             "The team ships the release on Friday"]
    for fact in facts:
        service.memories.store("agent", fact)
    hits = service.recall.recall("agent", "where did Caroline move", top_k=3).hits
    assert hits[0].memory.content == facts[0]
    expected = float(by_hand(folder, "query: where did Caroline move", "cls")
                     @ by_hand(folder, "passage: " + facts[0], "cls"))
    assert hits[0].vector_score == pytest.approx(expected, abs=2e-3)
    assert service.capabilities.describe()["default_model"] == "my-cls-model"


def test_editing_the_preset_changes_the_model_id(tmp_path: Path) -> None:
    folder = user_export(tmp_path)
    first = load_embedder("my-cls-model", tmp_path).model_id
    (folder / "preset.json").write_text(json.dumps({**PRESET, "pooling": "mean"}))
    second = load_embedder("my-cls-model", tmp_path).model_id
    assert first != second and first.startswith("my-cls-model-")


def test_bad_preset_files_are_refused_with_their_path(tmp_path: Path) -> None:
    folder = user_export(tmp_path, pooling="max")
    with pytest.raises(PresetError, match=re.escape(str(folder / "preset.json"))):
        resolve("my-cls-model", tmp_path)
    (folder / "preset.json").write_text('{"dimension": 384, "colour": "blue"}')
    with pytest.raises(PresetError, match="colour"):
        resolve("my-cls-model", tmp_path)
    with pytest.raises(PresetError, match="does not exist"):
        resolve("nobody-built-this", tmp_path)


def test_the_setting_takes_presets_and_folder_names_only(tmp_path: Path) -> None:
    assert Settings.from_env(env={"DAKERA_EMBEDDING_MODEL": "MiniLM"}).embedding_model == (
        "all-minilm-l6-v2")
    with pytest.raises(SettingError, match=r"my-cls-model/preset\.json does not exist"):
        Settings.from_env(env={"DAKERA_EMBEDDING_MODEL": "my-cls-model",
                               "DAKERA_MODELS_DIR": str(tmp_path)})
    user_export(tmp_path)
    assert Settings.from_env(env={"DAKERA_EMBEDDING_MODEL": "my-cls-model",
                                  "DAKERA_MODELS_DIR": str(tmp_path)}).embedding_model == (
        "my-cls-model")
    with pytest.raises(SettingError, match=r"preset\.json"):
        Settings.from_env(env={"DAKERA_EMBEDDING_MODEL": "../elsewhere"})
