"""Embedding model presets: what each model is and how it wants its text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    aliases: tuple[str, ...]
    dimension: int
    max_seq_length: int
    query_prefix: str = ""
    passage_prefix: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("all-minilm-l6-v2", ("minilm", "all-MiniLM-L6-v2"), 384, 256),
        Preset("bge-small-en-v1.5", ("bge-small",), 384, 512,
               query_prefix="Represent this sentence for searching relevant passages: "),
        Preset("e5-small-v2", ("e5-small",), 384, 512,
               query_prefix="query: ", passage_prefix="passage: "),
        # Deterministic hashed bag of words: for tests of ranking logic, never for users.
        Preset("hash", ("test-hash",), 384, 256),
    )
}


def resolve(name: str) -> Preset:
    for preset in PRESETS.values():
        if name == preset.name or name in preset.aliases:
            return preset
    known = ", ".join(sorted(PRESETS))
    raise ValueError(f"unknown embedding model {name!r}; known: {known}")
