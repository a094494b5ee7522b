"""The interface every embedder implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from app.embed.presets import Preset

# A part of a text to embed with it: its own text, and the character ranges of the text it
# is made of (a sentence, and the author prefix it takes: app/recall/sentences.py).
Part = tuple[str, list[tuple[int, int]]]


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

    def embed_parts(self, texts: list[str], parts: list[list[Part]]
                    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """The texts' vectors (as `embed`), and for each text the vectors of its parts
        (None when it has none)."""
        ...


def embed_separately(embedder: Embedder, texts: list[str], parts: list[list[Part]]
                     ) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """`embed_parts` by embedding each part's own text, in one pass with the texts."""
    flat = [text for found in parts for text, _ in found]
    vectors = embedder.embed([*texts, *flat])
    out: list[np.ndarray | None] = []
    at = len(texts)
    for found in parts:
        out.append(vectors[at:at + len(found)] if found else None)
        at += len(found)
    return vectors[:len(texts)], out
