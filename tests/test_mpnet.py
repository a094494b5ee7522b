"""The all-mpnet-base-v2 preset and its exporter (scripts/export_mpnet.py), without the real
weights: a tiny MPNet of random weights is written as safetensors, exported to ONNX and run
through onnxruntime and the server's embedder, and compared with the float64 NumPy
reference of scripts/fetch_models.py, which computes the same forward pass on its own (one
text at a time, positions and buckets as transformers does)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from app.embed import ModelFilesMissing, load_embedder, resolve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import export_mpnet  # noqa: E402
import fetch_models  # noqa: E402

TINY = export_mpnet.MPNetConfig(hidden=32, heads=4, layers=2, intermediate=64, vocab=48,
                                max_positions=200)
WORDS = ["caroline", "moved", "to", "berlin", "in", "may", "melanie", "paints", "sunsets",
         "on", "weekends", "the", "team", "ships", "release", "friday", "where", "did",
         "go", "what", "does", "do", "a", "long", "note", "item", "is", "stored", "bin",
         ".", ",", "?", "##s", "##ed", "and", "her", "kids", "camping", "trip"]


def tiny_weights(cfg: export_mpnet.MPNetConfig, seed: int = 7) -> dict[str, np.ndarray]:
    """Random weights with every tensor an MPNet checkpoint has, at a small scale (and the
    relative bias large enough to matter)."""
    rng = np.random.default_rng(seed)
    h, i = cfg.hidden, cfg.intermediate

    def r(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = {"embeddings.word_embeddings.weight": r(cfg.vocab, h, scale=1.0),
         "embeddings.position_embeddings.weight": r(cfg.max_positions, h, scale=1.0),
         "embeddings.LayerNorm.weight": 1 + r(h), "embeddings.LayerNorm.bias": r(h),
         "embeddings.position_ids": np.arange(cfg.max_positions, dtype=np.int64)[None],
         "encoder.relative_attention_bias.weight": r(cfg.buckets, cfg.heads, scale=2.0),
         "pooler.dense.weight": r(h, h), "pooler.dense.bias": r(h)}
    for n in range(cfg.layers):
        p = f"encoder.layer.{n}."
        for name in "qkvo":
            w[f"{p}attention.attn.{name}.weight"] = r(h, h)
            w[f"{p}attention.attn.{name}.bias"] = r(h)
        w.update({f"{p}attention.LayerNorm.weight": 1 + r(h), f"{p}attention.LayerNorm.bias": r(h),
                  f"{p}intermediate.dense.weight": r(i, h), f"{p}intermediate.dense.bias": r(i),
                  f"{p}output.dense.weight": r(h, i), f"{p}output.dense.bias": r(h),
                  f"{p}output.LayerNorm.weight": 1 + r(h), f"{p}output.LayerNorm.bias": r(h)})
    return w


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": {np.float32: "F32", np.int64: "I64"}[array.dtype.type],
                        "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def tiny_tokenizer(path: Path) -> None:
    """An MPNet-style tokenizer: <s> 0, <pad> 1, </s> 2, <unk> 3, lower-cased WordPiece,
    <s> text </s>, padded with <pad>, as the real one."""
    vocab = {t: n for n, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", *WORDS])}
    assert len(vocab) <= TINY.vocab
    tok = Tokenizer(models.WordPiece(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.decoder = decoders.WordPiece()
    tok.enable_padding(pad_id=1, pad_token="<pad>")
    tok.enable_truncation(128)
    tok.save(str(path))


LONG = "a long note : " + " ".join(f"item {n % 7} is stored in bin {n % 5} ." for n in range(24))
TEXTS = ["Caroline moved to Berlin in May.", "Where did Caroline go?",
         "Melanie paints sunsets on weekends, and her kids go camping.",
         "The team ships the release on Friday.", LONG]

CALIBRATION = ["Melanie moved to Berlin.", "the team did go camping on friday",
               "where is the long note stored?"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The tiny MPNet exported: safetensors -> ONNX (fp32 and int8), with its tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-mpnet")
    write_safetensors(folder / "model.safetensors", tiny_weights(TINY))
    weights = fetch_models.load_safetensors(folder / "model.safetensors")
    onnx.save(export_mpnet.build_graph(weights, TINY), str(folder / "fp32.onnx"))
    tiny_tokenizer(folder / "tokenizer.json")
    # the smoothing scales from calibration text other than TEXTS, as the build does
    cal_ids, cal_mask = fetch_models.tokenize(folder / "tokenizer.json", CALIBRATION, 190)
    act_max = export_mpnet.activation_maxima(str(folder / "fp32.onnx"), TINY, cal_ids, cal_mask)
    scales = export_mpnet.smoothing_scales(weights, TINY, act_max)
    onnx.save(export_mpnet.build_graph(weights, TINY, scales), str(folder / "smoothed.onnx"))
    export_mpnet.quantize(str(folder / "smoothed.onnx"), str(folder / "int8.onnx"),
                          export_mpnet.ffn_out_nodes(TINY))
    ids, mask = fetch_models.tokenize(folder / "tokenizer.json", TEXTS, 190)
    return {"folder": folder, "weights": weights, "ids": ids, "mask": mask, "scales": scales}


def test_buckets_are_transformers_rule() -> None:
    # key index - query index -> bucket, as transformers' relative_position_bucket gives them
    known = {0: 0, -1: 1, -7: 7, -8: 8, -15: 9, -16: 10, -32: 12, -64: 14, -127: 15, -128: 15,
             -500: 15, 1: 17, 5: 21, 8: 24, 16: 26, 50: 29, 100: 31, 200: 31}
    offsets = np.array(list(known))
    assert export_mpnet.relative_buckets(offsets, 32, 128).tolist() == list(known.values())
    assert [fetch_models.mpnet_bucket(o) for o in known] == list(known.values())
    # and the graph's table and the reference's rule agree everywhere a 384-token text reaches
    span = np.arange(-400, 401)
    assert (export_mpnet.relative_buckets(span, 32, 128).tolist()
            == [fetch_models.mpnet_bucket(int(o)) for o in span])


@pytest.mark.parametrize("graph", ["fp32.onnx", "smoothed.onnx"])
def test_the_graph_is_the_reference_forward_pass(tiny: dict, graph: str) -> None:
    """The exported graph (and the smoothed one: the same function in float) gives the
    reference's hidden states, token for token, in a padded batch."""
    ids, mask = tiny["ids"], tiny["mask"]
    assert ids.shape[1] > 130  # the long text reaches the last relative-distance bucket
    assert (ids[mask == 0] == 1).all()  # padded with <pad>, as the real tokenizer does
    model = onnx.load(str(tiny["folder"] / graph))
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    hidden = fetch_models.onnx_hidden(tiny["folder"] / graph, ids, mask)
    assert hidden.shape == (len(TEXTS), ids.shape[1], TINY.hidden)
    for row in range(len(TEXTS)):
        real = mask[row].astype(bool)
        ref = fetch_models.mpnet_reference_hidden(tiny["weights"], TINY, ids[row][real])
        assert np.abs(hidden[row][real] - ref).max() < 2e-4, TEXTS[row]


def test_the_smoothing_scales_follow_the_activations(tiny: dict) -> None:
    """A channel whose activations reach further gets a larger divisor (s ~ max|x|^alpha)."""
    cal_ids, cal_mask = fetch_models.tokenize(tiny["folder"] / "tokenizer.json",
                                              CALIBRATION, 190)
    act_max = export_mpnet.activation_maxima(str(tiny["folder"] / "fp32.onnx"), TINY,
                                             cal_ids, cal_mask)
    assert set(act_max) == set(tiny["scales"]) == {
        f"layer.{n}.{g}" for n in range(TINY.layers) for g in ("qkv", "ffn_in", "ffn_out")}
    boosted = dict(act_max)
    boosted["layer.1.ffn_in"] = act_max["layer.1.ffn_in"].copy()
    boosted["layer.1.ffn_in"][5] *= 16
    before = export_mpnet.smoothing_scales(tiny["weights"], TINY, act_max, alpha=0.5)
    after = export_mpnet.smoothing_scales(tiny["weights"], TINY, boosted, alpha=0.5)
    assert after["layer.1.ffn_in"][5] == pytest.approx(4 * before["layer.1.ffn_in"][5])
    assert np.array_equal(np.delete(after["layer.1.ffn_in"], 5),
                          np.delete(before["layer.1.ffn_in"], 5))


def test_a_wrong_position_or_bias_would_show(tiny: dict) -> None:
    """The comparison above has teeth: the reference with the relative bias table zeroed,
    or with the position embeddings shifted by one, is far from the graph."""
    ids, mask = tiny["ids"], tiny["mask"]
    hidden = fetch_models.onnx_hidden(tiny["folder"] / "fp32.onnx", ids, mask)
    real = mask[0].astype(bool)
    no_bias = dict(tiny["weights"])
    no_bias["encoder.relative_attention_bias.weight"] = np.zeros((TINY.buckets, TINY.heads),
                                                                 np.float32)
    shifted = dict(tiny["weights"])
    shifted["embeddings.position_embeddings.weight"] = np.roll(
        tiny["weights"]["embeddings.position_embeddings.weight"], 1, axis=0)
    for weights in (no_bias, shifted):
        ref = fetch_models.mpnet_reference_hidden(weights, TINY, ids[0][real])
        assert np.abs(hidden[0][real] - ref).max() > 0.05


def test_the_int8_model_stays_close(tiny: dict) -> None:
    ids, mask = tiny["ids"], tiny["mask"]
    ref = fetch_models.mpnet_reference_embed(tiny["weights"], TINY, ids, mask)
    got = fetch_models.mean_pool(fetch_models.onnx_hidden(tiny["folder"] / "int8.onnx",
                                                          ids, mask), mask)
    cosines = (got * ref).sum(1)
    assert cosines.min() > 0.98, cosines
    nodes = onnx.load(str(tiny["folder"] / "int8.onnx")).graph.node
    assert "MatMulInteger" in {n.op_type for n in nodes}
    # the feed-forward output matmuls (and nothing else of the encoder's) stayed float
    float_matmuls = {n.name for n in nodes if n.op_type == "MatMul" and n.name.endswith(
        ".matmul")}
    assert float_matmuls == set(export_mpnet.ffn_out_nodes(TINY))


def test_the_embedder_feeds_an_mpnet_graph(tiny: dict, tmp_path: Path) -> None:
    """A folder holding the tiny export: the embedder feeds only the inputs the graph
    declares (no token_type_ids), pads with <pad>, and its vectors are the reference's."""
    folder = tmp_path / "tiny-mpnet"
    folder.mkdir()
    (folder / "model.onnx").write_bytes((tiny["folder"] / "fp32.onnx").read_bytes())
    (folder / "tokenizer.json").write_bytes((tiny["folder"] / "tokenizer.json").read_bytes())
    (folder / "preset.json").write_text(json.dumps({"dimension": TINY.hidden,
                                                    "max_tokens": 190}))
    embedder = load_embedder("tiny-mpnet", tmp_path)
    vectors = embedder.embed(TEXTS)
    ref = fetch_models.mpnet_reference_embed(tiny["weights"], TINY, tiny["ids"], tiny["mask"])
    assert (vectors * ref).sum(1).min() > 0.99999
    # one at a time (no padding) gives the same vectors as the padded batch
    alone = np.concatenate([embedder.embed([t]) for t in TEXTS])
    assert np.abs(alone - vectors).max() < 1e-5


def test_the_preset_resolves(tmp_path: Path) -> None:
    for name in ("all-mpnet-base-v2", "mpnet"):
        preset = resolve(name)
        assert (preset.name, preset.dimension, preset.max_seq_length, preset.pooling,
                preset.normalize) == ("all-mpnet-base-v2", 768, 384, "mean", True)
        assert not preset.query_prefix and not preset.passage_prefix
    # not built: the error says how to build it
    with pytest.raises(ModelFilesMissing, match="make models MODEL=all-mpnet-base-v2"):
        load_embedder("mpnet", tmp_path)


def test_the_setting_takes_the_preset(tmp_path: Path) -> None:
    from app.config import Settings

    for value in ("mpnet", "all-mpnet-base-v2", "MPNet"):
        settings = Settings.from_env(env={"DAKERA_EMBEDDING_MODEL": value},
                                     data_dir=str(tmp_path))
        assert settings.embedding_model == "all-mpnet-base-v2"


BUILT = ROOT / "models" / "all-mpnet-base-v2"


@pytest.mark.skipif(not (BUILT / "manifest.json").is_file(),
                    reason="all-mpnet-base-v2 is not built (make models MODEL=all-mpnet-base-v2)")
def test_the_built_model_embeds_sense() -> None:
    """Where the real model is built: it loads under its preset (its files match the
    manifest) and puts a paraphrase nearer than an unrelated sentence."""
    embedder = load_embedder("mpnet", ROOT / "models")
    assert embedder.model_id.startswith("all-mpnet-base-v2-int8-")
    vectors = embedder.embed(["The weather is lovely today.", "It's so sunny outside!",
                              "He drove to the stadium."])
    assert vectors.shape == (3, 768)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > 0.5 > 0.2 > float(vectors[0] @ vectors[2])
