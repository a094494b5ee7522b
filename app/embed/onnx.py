"""Sentence embeddings on onnxruntime + tokenizers: the preset's prefixes, mean or CLS pooling,
L2 norm."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.embed.base import Part, embed_separately
from app.embed.presets import Preset
from app.files import sha256_of
from app.memory import give_back

BATCH = 32
CONCURRENT_RUNS = 2
# A call embedding at least this many texts gives the arena back after its last batch: the
# activations of a batch of 32 long texts hold ~100 MB that the arena would otherwise keep
# for good. Queries (one short text) keep the arena warm.
SHRINK_FROM = 8


# The inputs an exported encoder may declare (token_type_ids are all zeros: one segment).
FEEDS = ("input_ids", "attention_mask", "token_type_ids")


class ModelFilesMissing(Exception):
    pass


def _pad_token(tok: Any) -> tuple[int, str]:
    """The tokenizer's pad token: from its padding settings, else [PAD] or <pad> in its
    vocabulary, else id 0."""
    padding = tok.padding
    if padding and padding.get("pad_token") is not None:
        return int(padding["pad_id"]), str(padding["pad_token"])
    for token in ("[PAD]", "<pad>"):
        found = tok.token_to_id(token)
        if found is not None:
            return int(found), token
    return 0, "[PAD]"


def build_command(name: str) -> str:
    """How to build a built-in model (docs/models.md)."""
    return "make models" if name == "all-minilm-l6-v2" else f"make models MODEL={name}"


def verify_model_files(folder: Path) -> list[str]:
    """Each model file missing or unlike the sha256 its manifest records (empty: all good)."""
    manifest_path = folder / "manifest.json"
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except FileNotFoundError:
        return [f"{manifest_path} is missing"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{manifest_path} is unreadable ({exc})"]
    problems = []
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"the model file {path} is missing (expected sha256 {expected})")
            continue
        actual = sha256_of(path)
        if actual != expected:
            problems.append(f"the model file {path} is altered: sha256 {actual}, expected "
                            f"{expected}")
    return problems


class OnnxEmbedder:
    def __init__(self, preset: Preset, models_dir: Path, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.preset = preset
        folder = models_dir / preset.name
        self._model_id = _verify(folder, preset)

        counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        counter.no_padding()
        counter.no_truncation()
        self._counter = counter
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The shipped tokenizer pads everything to 128; pad to the longest in the batch, with
        # the tokenizer's own pad token (BERT's [PAD] is 0, MPNet's <pad> is 1).
        pad_id, pad_token = _pad_token(tok)
        tok.no_padding()
        tok.enable_truncation(max_length=preset.max_seq_length)
        tok.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self._tokenizer = tok

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        # Idle pool threads spin by default, burning the cores the writer, the indexes and
        # other requests need (on 2 shared cores: batch embedding 170/s spinning, 300/s not).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Shapes vary with every batch: a memory pattern cached per shape only grows.
        opts.enable_mem_pattern = False
        self._session = ort.InferenceSession(str(folder / "model.onnx"), opts,
                                             providers=["CPUExecutionProvider"])
        # Feed what the graph declares: BERT exports take token_type_ids, MPNet's do not.
        self._inputs = [i.name for i in self._session.get_inputs()]
        unknown = [n for n in self._inputs if n not in FEEDS]
        if unknown:
            raise ModelFilesMissing(f"{folder / 'model.onnx'} wants inputs {unknown}; an "
                                    f"embedding model takes only {', '.join(FEEDS)}")
        if "input_ids" not in self._inputs:
            raise ModelFilesMissing(f"{folder / 'model.onnx'} takes no input_ids")
        # Each concurrent run holds its own activations (a batch of 32 long texts: tens of
        # MB) and the arena keeps its peak for good; the pool already uses every core, so
        # more runs at once add memory, not speed. Two: a query can pass a long batch.
        self._runs = threading.BoundedSemaphore(CONCURRENT_RUNS)
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    @property
    def model_id(self) -> str:
        return self._model_id

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        prefix = self.preset.query_prefix if query else self.preset.passage_prefix
        if prefix:
            texts = [prefix + t for t in texts]
        out = np.empty((len(texts), self.preset.dimension), dtype=np.float32)
        # Sort by length so each batch pads little.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            last = start + BATCH >= len(order)
            out[idx] = self._embed_batch([texts[i] for i in idx],
                                         shrink=last and len(texts) >= SHRINK_FROM)
        if len(texts) >= SHRINK_FROM:
            give_back()
        return out

    def embed_parts(self, texts: list[str], parts: list[list[Part]]
                    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """The texts' vectors, and each part's pooled from the same forward pass (late
        chunking): the mean of the token states of the part's ranges and of the special
        tokens, so a sentence is read in the context of its whole text and costs no second
        pass. On LoCoMo's development split (in process) the best-sentence lever gave
        any@10 / all@10 86.1 / 74.5 this way against 85.7 / 74.9 with each sentence embedded
        on its own, 83.1 / 71.4 without it; pooling the sentence's tokens alone gave 84.0 /
        72.7. A part beyond the model's window, and every part under CLS pooling, is
        embedded on its own."""
        if self.preset.pooling == "cls":
            return embed_separately(self, texts, parts)
        prefix = self.preset.passage_prefix
        shift = len(prefix)
        full = [prefix + t for t in texts] if prefix else texts
        moved = [[(t, [(a + shift, b + shift) for a, b in spans]) for t, spans in found]
                 for found in parts]
        keep = [(0, shift)] if shift else []
        out = np.empty((len(texts), self.preset.dimension), dtype=np.float32)
        pooled: list[np.ndarray | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(full[i]))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            last = start + BATCH >= len(order)
            vectors, found = self._embed_batch([full[i] for i in idx],
                                               shrink=last and len(texts) >= SHRINK_FROM,
                                               parts=[moved[i] for i in idx], keep=keep)
            out[idx] = vectors
            for i, vecs in zip(idx, found, strict=True):
                pooled[i] = vecs
        cut = [(i, k) for i, vecs in enumerate(pooled) if vecs is not None
               for k in range(len(vecs)) if np.isnan(vecs[k, 0])]
        if cut:  # past the window: on their own
            alone = self.embed([parts[i][k][0] for i, k in cut])
            for (i, k), vector in zip(cut, alone, strict=True):
                vecs = pooled[i]
                assert vecs is not None
                vecs[k] = vector
        if len(texts) >= SHRINK_FROM:
            give_back()
        return out, pooled

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(texts)]

    def _embed_batch(self, texts: list[str], shrink: bool = False,
                     parts: list[list[Part]] | None = None,
                     keep: list[tuple[int, int]] | None = None) -> Any:
        """The batch's vectors; with `parts`, also (vectors, each text's parts' vectors
        pooled from the same pass, NaN rows for parts past the window). `keep`: ranges
        every part pools too (the model's passage prefix)."""
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        given = {"input_ids": ids, "attention_mask": mask}
        feed = {n: given[n] if n in given else np.zeros_like(ids) for n in self._inputs}
        with self._runs:
            (hidden,) = self._session.run(None, feed, self._shrink if shrink else None)[:1]
        if self.preset.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        if self.preset.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        if parts is None:
            return pooled.astype(np.float32)
        found = [self._pool_parts(hidden[j], encodings[j], mask[j], parts[j], keep or [])
                 if parts[j] else None for j in range(len(texts))]
        return pooled.astype(np.float32), found

    def _pool_parts(self, hidden: np.ndarray, encoding: Any, mask: np.ndarray,
                    parts: list[Part], keep: list[tuple[int, int]]) -> np.ndarray:
        offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        live = mask.astype(bool)
        special = np.array(encoding.special_tokens_mask, dtype=bool) & live
        real = live & (offsets[:, 1] > offsets[:, 0])

        def within(a: int, b: int) -> np.ndarray:
            return real & (offsets[:, 0] >= a) & (offsets[:, 1] <= b)

        kept = special.copy()
        for a, b in keep:
            kept |= within(a, b)
        rows = np.full((len(parts), hidden.shape[1]), np.nan, dtype=np.float32)
        for k, (_, spans) in enumerate(parts):
            own = within(*spans[-1])  # the sentence itself (after its author prefix)
            if not own.any():
                continue  # past the window
            chosen = kept | own
            for a, b in spans[:-1]:
                chosen |= within(a, b)
            row = hidden[chosen].mean(axis=0)
            if self.preset.normalize:
                row = row / max(float(np.linalg.norm(row)), 1e-12)
            rows[k] = row
        return rows


def _verify(folder: Path, preset: Preset) -> str:
    """The model id of the folder's files, checked against its manifest when it has one (the
    models we build); a user's export with a preset.json has none and is identified by its
    weights and its preset, so that editing either asks for `dakera reindex`."""
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        problems = verify_model_files(folder)
        if problems:
            raise ModelFilesMissing(f"{problems[0]}; dakera will not start with a damaged "
                                    f"model: run `{build_command(preset.name)}` to rebuild it "
                                    "(a binary: download it again)")
        weights = json.loads(manifest_path.read_text())["files"]["model.onnx"]
        if not preset.from_file:
            return f"{preset.name}-int8-{weights[:12]}"
    elif not preset.from_file:
        raise ModelFilesMissing(
            f"model files for {preset.name} not found in {folder}; "
            f"run `{build_command(preset.name)}` (python scripts/fetch_models.py --model "
            f"{preset.name}) to fetch them")
    else:
        missing = [n for n in ("model.onnx", "tokenizer.json") if not (folder / n).is_file()]
        if missing:
            raise ModelFilesMissing(f"{folder} has a preset.json but no {' or '.join(missing)}")
        weights = sha256_of(folder / "model.onnx")
    described = json.dumps([preset.dimension, preset.max_seq_length, preset.pooling,
                            preset.normalize, preset.query_prefix, preset.passage_prefix])
    return f"{preset.name}-{weights[:12]}-{hashlib.sha256(described.encode()).hexdigest()[:8]}"
