"""Embedding model presets: what each model is and how it wants its text.

Built-in presets name the models we build (`make models`). Any other BERT-family ONNX export
works when its folder in the models dir holds `model.onnx`, `tokenizer.json` and a
`preset.json` describing it (see docs/models.md); a `preset.json` beside a built-in model
overrides the built-in description.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

PRESET_FILE = "preset.json"
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Preset:
    name: str
    aliases: tuple[str, ...]
    dimension: int
    max_seq_length: int
    query_prefix: str = ""
    passage_prefix: str = ""
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    from_file: bool = False  # described by a preset.json (a user's export), not built in


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("all-minilm-l6-v2", ("minilm", "all-MiniLM-L6-v2"), 384, 256),
        # Optional, built by `make models MODEL=all-mpnet-base-v2` (docs/models.md).
        Preset("all-mpnet-base-v2", ("mpnet",), 768, 384),
        Preset("bge-small-en-v1.5", ("bge-small",), 384, 512, pooling="cls",
               query_prefix="Represent this sentence for searching relevant passages: "),
        Preset("e5-small-v2", ("e5-small",), 384, 512,
               query_prefix="query: ", passage_prefix="passage: "),
        # Deterministic hashed bag of words: for tests of ranking logic, never for users.
        Preset("hash", ("test-hash",), 384, 256),
    )
}


class PresetFile(msgspec.Struct, forbid_unknown_fields=True):
    """The schema of preset.json."""
    dimension: int
    max_tokens: int = 512
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    query_prefix: str = ""
    passage_prefix: str = ""


class PresetError(ValueError):
    pass


def builtin(name: str) -> Preset | None:
    for preset in PRESETS.values():
        if name == preset.name or name in preset.aliases:
            return preset
    return None


def resolve(name: str, models_dir: Path | None = None) -> Preset:
    """The preset called `name`: the folder's preset.json when the models dir has one, else
    the built-in description."""
    known = builtin(name)
    folder_name = known.name if known else name
    if models_dir is not None and FOLDER_NAME.fullmatch(folder_name):
        path = models_dir / folder_name / PRESET_FILE
        if path.is_file():
            return read_preset(path, folder_name)
    if known is not None:
        return known
    raise PresetError(
        f"unknown embedding model {name!r}: not one of {', '.join(sorted(PRESETS))}, and "
        + (f"{models_dir / name / PRESET_FILE} does not exist" if models_dir is not None
           and FOLDER_NAME.fullmatch(name) else "not a model folder name"))


def read_preset(path: Path, name: str) -> Preset:
    try:
        spec = msgspec.json.decode(path.read_bytes(), type=PresetFile)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, json.JSONDecodeError) as exc:
        raise PresetError(f"{path}: {exc}") from exc
    if not 1 <= spec.dimension <= 8192 or not 8 <= spec.max_tokens <= 8192:
        raise PresetError(f"{path}: dimension must be 1-8192 and max_tokens 8-8192")
    return Preset(name, (), spec.dimension, spec.max_tokens, spec.query_prefix,
                  spec.passage_prefix, spec.pooling, spec.normalize, from_file=True)
