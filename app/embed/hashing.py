"""A small deterministic embedder: a hashed bag of words.

For unit tests of ranking logic only (chosen with DAKERA_EMBEDDING_MODEL=hash): it has no
semantics beyond shared words, but it is exact, fast and needs no model files.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from app.embed.base import Part, embed_separately
from app.embed.presets import Preset, resolve

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    def __init__(self, preset: Preset | None = None) -> None:
        self.preset = preset or resolve("hash")

    @property
    def model_id(self) -> str:
        return "hash-v1"

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Words plus the two special tokens a BERT-style model adds."""
        return [len(_WORD.findall(t)) + 2 for t in texts]

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        dim = self.preset.dimension
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[i]))
            if norm > 0:
                out[i] /= norm
            else:
                out[i, 0] = 1.0
        return out

    def embed_parts(self, texts: list[str], parts: list[list[Part]]
                    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        return embed_separately(self, texts, parts)  # a bag of words: the same thing
