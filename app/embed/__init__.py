"""Text to vectors: the ONNX embedder, model presets, a deterministic test embedder."""

from __future__ import annotations

from pathlib import Path

from app.embed.base import Embedder
from app.embed.hashing import HashEmbedder
from app.embed.onnx import ModelFilesMissing, OnnxEmbedder, verify_model_files
from app.embed.presets import PRESETS, Preset, PresetError, resolve


def load_embedder(name: str, models_dir: Path, threads: int = 0) -> Embedder:
    preset = resolve(name, models_dir)
    if preset.name == "hash":
        return HashEmbedder(preset)
    return OnnxEmbedder(preset, models_dir, threads)


__all__ = ["PRESETS", "Embedder", "HashEmbedder", "ModelFilesMissing", "OnnxEmbedder", "Preset",
           "PresetError", "load_embedder", "resolve", "verify_model_files"]
