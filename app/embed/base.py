"""The interface every embedder implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from app.embed.presets import Preset


class Embedder(Protocol):
    preset: Preset

    @property
    def model_id(self) -> str: ...

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens the model would read from each text before its window cuts it (special
        tokens included): more than preset.max_seq_length means the text was truncated."""
        ...
