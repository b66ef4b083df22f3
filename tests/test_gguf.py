"""mlx_backend.gguf: GGUF files written the way llama.cpp's convert_hf_to_gguf.py writes them
(gguf-py's GGUFWriter) convert into mlx_lm directories that reproduce the original model.

No network: the GGUFs are built from the tiny random-weight model (tests/mlx_fixtures.py).
"""

import json
import shutil

import pytest

pytest.importorskip("mlx.core")

import numpy as np
from mlx_fixtures import gguf_name, gguf_tensors, hf_weights, llama_permute, tiny_gguf, tokenizer_metadata, write_gguf

from mlx_backend import gguf as G
from mlx_backend.errors import ModelLoadError

TEXTS = [
    "Maria has 12 apples and buys 345 more.\n\nThe answer is \\boxed{357}!",
    "<|im_start|>user\nWhat is 7 squared?<|im_end|>\n<|im_start|>assistant\n",
    "  leading spaces,\ttabs and   gaps: 3.14159 -- ok?\r\n",
    "Unicode: café, naïve, 漢字, emoji 🙂 and 'quotes' don't",
    "x^2 + y^2 = z^2; f(x) = (x - 2)^2.<|endoftext|>",
]
MESSAGES = [
    [{"role": "user", "content": "Solve 3n + 7 = 22.\nShow steps."}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 12 * 5?"},
        {"role": "assistant", "content": "60"},
        {"role": "user", "content": "Why?"},
    ],
]
# Q8_0 keeps one fp16 scale per 32 weights and rounds to 1/254 of the block's largest
# weight: measured, the tiny model's logits move by 6.1e-3 of the largest logit (float32 and
# keep-quantized alike). 2e-2 leaves 3x headroom. (Exact layout checks are the conversion's
# own check and the tests below that compare against the same weights dequantized.)
Q8_0_TOLERANCE = 2e-2


def rel_error(got, ref) -> float:
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def logits(model, ids):
    import mlx.core as mx

    return np.array(model(mx.array([ids]))[0].astype(mx.float32))


@pytest.fixture(scope="module")
def original(tiny_model_dir):
    """The tiny model as mlx_lm loads it from its own directory, in float32."""
    import mlx.core as mx
    import mlx_lm

    from mlx_backend.model import cast_floating

    model, tokenizer = mlx_lm.load(str(tiny_model_dir))
    cast_floating(model, mx.float32)
    return model, tokenizer


@pytest.fixture(scope="module")
def qwen2_converted(tiny_gguf_path, tmp_path_factory):
    """dtype -> (out dir, manifest) of the Q8_0 tiny GGUF converted both ways."""
    root = tmp_path_factory.mktemp("converted")
    return {
        dtype: (root / dtype, G.convert(tiny_gguf_path, root / dtype, dtype)) for dtype in ("float32", "keep-quantized")
    }


@pytest.mark.parametrize("dtype", ["float32", "keep-quantized"])
def test_qwen2_q8_0_conversion_reproduces_the_original_model(qwen2_converted, original, dtype):
    import mlx.core as mx
    import mlx.nn as nn
    import mlx_lm

    out, manifest = qwen2_converted[dtype]
    # The conversion's own check: mlx_lm against the NumPy reference on the same (Q8_0) weights.
    check = manifest["check"]
    assert check["top1_agreement"] == 1.0
    assert check["max_rel_error"] < (1e-5 if dtype == "float32" else 5e-3), check
    assert (manifest["architecture"], manifest["dtype"]) == ("qwen2", dtype)
    assert not list(out.parent.glob(".*"))  # no temporary directory left behind

    config = json.loads((out / "config.json").read_text())
    assert {
        k: config[k]
        for k in (
            "model_type",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "intermediate_size",
            "rope_theta",
            "vocab_size",
            "max_position_embeddings",
            "tie_word_embeddings",
            "eos_token_id",
        )
    } == {
        "model_type": "qwen2",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 256,
        "rope_theta": 1e6,
        "vocab_size": 512,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
        "eos_token_id": 511,
    }
    assert config["rms_norm_eps"] == pytest.approx(1e-6)

    model, tokenizer = mlx_lm.load(str(out))
    q_proj = model.model.layers[0].self_attn.q_proj
    if dtype == "keep-quantized":
        assert config["quantization"] == {"group_size": 32, "bits": 8}
        assert isinstance(q_proj, nn.QuantizedLinear) and isinstance(model.model.embed_tokens, nn.QuantizedEmbedding)
        assert (q_proj.bits, q_proj.group_size) == (8, 32)
    else:
        assert "quantization" not in config
        assert type(q_proj) is nn.Linear and q_proj.weight.dtype == mx.float32
    assert q_proj.bias is not None  # qwen2's q/k/v biases survived the renaming

    orig_model, orig_tok = original
    for text in TEXTS[:2]:
        ids = orig_tok.encode(text)
        got, ref = logits(model, ids), logits(orig_model, ids)
        assert rel_error(got, ref) < Q8_0_TOLERANCE
        assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.9


def test_converted_tokenizer_and_chat_template_give_the_original_ids(qwen2_converted, tiny_model_dir, original):
    import mlx_lm
    from tokenizers import Tokenizer

    from mlx_backend.model import chat_prompt

    out, _ = qwen2_converted["float32"]
    theirs = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    ours = Tokenizer.from_file(str(out / "tokenizer.json"))
    _, wrapped = mlx_lm.load(str(out))
    orig_tok = original[1]
    for text in TEXTS:
        # The split regex itself (the tiny BPE's few merges would hide a wrong one: its
        # merges never cross a digit, so GPT-2's digit runs would still come out one by one).
        assert ours.pre_tokenizer.pre_tokenize_str(text) == theirs.pre_tokenizer.pre_tokenize_str(text), text
        ids = theirs.encode(text).ids
        assert ours.encode(text).ids == ids, text
        assert wrapped.encode(text) == orig_tok.encode(text) == ids, text  # no BOS added, specials kept whole
        assert ours.decode(ids, skip_special_tokens=False) == text
        assert ours.decode(ids) == theirs.decode(ids)  # control tokens are special: skipped
    assert {i: (t.content, t.special) for i, t in ours.get_added_tokens_decoder().items()} == {
        i: (t.content, t.special) for i, t in theirs.get_added_tokens_decoder().items()
    }
    special = {t: theirs.token_to_id(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")}
    assert [ours.token_to_id(t) for t in special] == list(special.values())
    assert wrapped.encode("<|im_start|>user") == [special["<|im_start|>"], *theirs.encode("user").ids]
    for messages in MESSAGES:
        assert chat_prompt(wrapped, messages) == chat_prompt(orig_tok, messages)
        assert chat_prompt(wrapped, messages, add_generation_prompt=False) == chat_prompt(
            orig_tok, messages, add_generation_prompt=False
        )
    assert wrapped.eos_token_ids == orig_tok.eos_token_ids == {special["<|im_end|>"]}
    assert wrapped.pad_token == "<|endoftext|>"


def test_add_bos_token_prepends_the_bos_once(tiny_model_dir, original, tmp_path):
    import mlx_lm

    src = tiny_gguf(tiny_model_dir, tmp_path / "bos.gguf", set_meta={"tokenizer.ggml.add_bos_token": True})
    G.convert(src, tmp_path / "out", "float32")
    assert json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())["add_bos_token"] is True
    _, tokenizer = mlx_lm.load(str(tmp_path / "out"))
    bos = original[1].convert_tokens_to_ids("<|endoftext|>")
    for text in TEXTS[:3]:
        assert tokenizer.encode(text) == [bos, *original[1].encode(text)]
        assert tokenizer.encode(text, add_special_tokens=False) == original[1].encode(text)


def test_untied_output_layer_becomes_lm_head(tiny_model_dir, original, tmp_path):
    import mlx_lm

    src = tiny_gguf(tiny_model_dir, tmp_path / "untied.gguf", untied=True)
    manifest = G.convert(src, tmp_path / "out", "float32")
    assert manifest["check"]["max_rel_error"] < 1e-5
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["tie_word_embeddings"] is False
    model, _ = mlx_lm.load(str(tmp_path / "out"))
    assert "lm_head" in model
    ids = original[1].encode(TEXTS[0])
    assert rel_error(logits(model, ids), logits(original[0], ids)) < Q8_0_TOLERANCE


# -- llama: llama.cpp permutes the rows of Q and K ---------------------------------------------

# Random weights at the tiny builder's std 0.02 give near-uniform attention, where RoPE
# (and so the Q/K layout) barely shows in the logits: a wrong permutation moved them by
# only 6e-3. Trained models attend sharply; q/k five times larger make these do too
# (a wrong permutation then moves the logits by ~0.14 of the largest).
QK_GAIN = 5.0


@pytest.fixture(scope="module")
def llama(tiny_model_dir, tmp_path_factory):
    """A llama GGUF (Q4_0, token embedding Q8_0, tied, 4 heads / 2 KV heads, permuted Q/K) and
    the mlx_lm llama directory of the same model in HF layout (dequantized, unpermuted)."""
    root = tmp_path_factory.mktemp("llama")
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config.update(
        model_type="llama",
        architectures=["LlamaForCausalLM"],
        rope_theta=10000.0,
        attention_bias=False,
        mlp_bias=False,
        head_dim=16,
        torch_dtype="float32",
    )
    nh, nkv = config["num_attention_heads"], config["num_key_value_heads"]
    assert nkv < nh
    weights = {k: v for k, v in hf_weights(tiny_model_dir).items() if not k.endswith(".bias")}
    for k in weights:
        if ".q_proj." in k or ".k_proj." in k:
            weights[k] = weights[k] * QK_GAIN
    tensors = gguf_tensors(weights, "Q4_0", embd_qtype="Q8_0")
    for k, v in weights.items():
        if ".q_proj." in k:
            tensors[gguf_name(k)] = (llama_permute(v, nh, nh), "Q4_0")
        elif ".k_proj." in k:
            tensors[gguf_name(k)] = (llama_permute(v, nh, nkv), "Q4_0")
    assert "output.weight" not in tensors
    src = write_gguf(root / "llama-q4_0.gguf", "llama", config, tensors, tokenizer_metadata(tiny_model_dir))
    # GGUF quantizes along the input features, so quantizing permuted rows == permuting
    # quantized rows: the HF-layout model is the dequantized weights, never permuted.
    return src, expected_dir(root / "expected", tiny_model_dir, config, weights, tensors), config


def expected_dir(out, tiny_model_dir, config, weights, tensors):
    """An mlx_lm directory in HF layout holding what the GGUF's tensors decode to."""
    import mlx.core as mx
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize, quantize

    out.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_model_dir / name, out / name)
    (out / "config.json").write_text(json.dumps(config))
    hf = {}
    for k, v in weights.items():
        qtype = T[tensors[gguf_name(k)][1]]
        hf[k] = mx.array(v if v.ndim == 1 else dequantize(quantize(v, qtype), qtype))
    mx.save_safetensors(str(out / "model.safetensors"), hf)
    return out


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("keep-quantized", 5e-3)])
def test_llama_q4_0_conversion_undoes_the_qk_permutation(llama, tmp_path, dtype, tolerance):
    import mlx.nn as nn
    import mlx_lm

    src, expected, _ = llama
    manifest = G.convert(src, tmp_path / "out", dtype)
    assert manifest["architecture"] == "llama" and manifest["check"]["top1_agreement"] == 1.0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and config["num_key_value_heads"] == 2
    model, tokenizer = mlx_lm.load(str(tmp_path / "out"))
    if dtype == "keep-quantized":
        # Q4_0 layers, and the Q8_0 embedding (also the tied output) as a per-layer override.
        assert config["quantization"] == {
            "group_size": 32,
            "bits": 4,
            "model.embed_tokens": {"group_size": 32, "bits": 8},
        }
        assert model.model.layers[0].self_attn.k_proj.bits == 4 and model.model.embed_tokens.bits == 8
        assert isinstance(model.model.layers[1].mlp.down_proj, nn.QuantizedLinear)
    ref_model, _ = mlx_lm.load(str(expected))
    for text in TEXTS[:3]:
        ids = tokenizer.encode(text)
        got, ref = logits(model, ids), logits(ref_model, ids)
        # float32: the same weights, so rounding only; keep-quantized: MLX's quantized matmul
        # (fp16 scales) measured at 4-7e-4 here and 2.8e-4 on SmolLM2.
        assert rel_error(got, ref) < tolerance
        assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_qwen3_qk_norms_are_mapped(tiny_model_dir, tmp_path):
    """qwen3: no biases, per-head RMSNorm of q and k (attn_q_norm / attn_k_norm), NEOX RoPE."""
    import mlx_lm

    config = json.loads((tiny_model_dir / "config.json").read_text())
    config.update(model_type="qwen3", architectures=["Qwen3ForCausalLM"], head_dim=16, torch_dtype="float32")
    rng = np.random.default_rng(3)
    weights = {
        k: v * (QK_GAIN if ".q_proj." in k or ".k_proj." in k else 1.0)
        for k, v in hf_weights(tiny_model_dir).items()
        if not k.endswith(".bias")
    }
    for i in range(config["num_hidden_layers"]):  # different norms, so swapping them would show
        for n in ("q_norm", "k_norm"):
            weights[f"model.layers.{i}.self_attn.{n}.weight"] = rng.uniform(0.2, 2.0, 16).astype(np.float32)
    tensors = gguf_tensors(weights, "Q8_0")
    assert "blk.0.attn_q_norm.weight" in tensors
    src = write_gguf(tmp_path / "qwen3.gguf", "qwen3", config, tensors, tokenizer_metadata(tiny_model_dir))
    manifest = G.convert(src, tmp_path / "out", "float32")
    assert manifest["architecture"] == "qwen3" and manifest["check"]["max_rel_error"] < 1e-5
    model, tokenizer = mlx_lm.load(str(tmp_path / "out"))
    ref_model, _ = mlx_lm.load(str(expected_dir(tmp_path / "expected", tiny_model_dir, config, weights, tensors)))
    ids = tokenizer.encode(TEXTS[0])
    assert rel_error(logits(model, ids), logits(ref_model, ids)) < 1e-5


def test_unpermute_rows_inverts_llama_cpp_permute_also_on_quantized_triples():
    import mlx.core as mx

    rng = np.random.default_rng(0)
    # (rows, n_head, n_head_kv): Q rows permute per attention head, K rows per KV head.
    for rows, n_head, n_kv in [(64, 4, 4), (32, 4, 2), (96, 6, 2), (8, 2, 1)]:
        w = rng.normal(size=(rows, 64)).astype(np.float32)
        permuted = llama_permute(w, n_head, n_kv)
        heads = n_kv  # what convert_hf_to_gguf.py's permute uses when n_head != n_head_kv
        assert not np.array_equal(permuted, w)
        assert np.array_equal(np.array(G.unpermute_rows(mx.array(permuted), heads)), w)
        # Rows are output features and quantization groups run along the input features:
        # un-permuting weight, scales and biases alike un-permutes the dequantized matrix.
        for bits in (4, 8):
            q, s, b = mx.quantize(mx.array(permuted), group_size=32, bits=bits)
            triple = {
                "t.weight": G.unpermute_rows(q, heads),
                "t.scales": G.unpermute_rows(s, heads),
                "t.biases": G.unpermute_rows(b, heads),
            }
            dense = mx.dequantize(q, s, b, group_size=32, bits=bits)
            assert np.array_equal(np.array(G.dequantize_triple(triple, "t")), np.array(G.unpermute_rows(dense, heads)))


# -- the check catches layout mistakes, and a failed conversion leaves nothing ---------------------


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


@pytest.mark.parametrize("dtype", ["float32", "keep-quantized"])
def test_check_fails_without_the_unpermutation_and_leaves_nothing(llama, tmp_path, monkeypatch, dtype):
    monkeypatch.setattr(G, "unpermute_rows", lambda x, n_head: x)
    out = tmp_path / "models" / "llama"
    with pytest.raises(ModelLoadError, match="conversion check failed: logits differ from the GGUF reference"):
        G.convert(llama[0], out, dtype)
    assert _leftovers(out.parent) == []


def test_check_fails_on_swapped_tensor_names_and_leaves_nothing(tiny_gguf_path, tmp_path, monkeypatch):
    # ffn_gate and ffn_up have the same shape, so mlx_lm loads the swapped weights without complaint.
    names = dict(G._LAYER_NAMES, ffn_gate="mlp.up_proj", ffn_up="mlp.gate_proj")
    monkeypatch.setattr(G, "_LAYER_NAMES", names)
    out = tmp_path / "models" / "tiny"
    with pytest.raises(ModelLoadError, match="conversion check failed"):
        G.convert(tiny_gguf_path, out, "float32")
    assert _leftovers(out.parent) == []


# -- bad input: one clear line, nothing written ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_parts(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    return config, gguf_tensors(hf_weights(tiny_model_dir), "Q8_0"), tokenizer_metadata(tiny_model_dir)


def _convert_fails(src, tmp_path, match):
    out = tmp_path / "out" / "model"
    with pytest.raises(ModelLoadError, match=match) as e:
        G.convert(src, out, "float32")
    assert "\n" not in str(e.value)
    assert _leftovers(out.parent) == []
    return str(e.value)


def test_truncated_and_non_gguf_files(tiny_gguf_path, tmp_path):
    data = tiny_gguf_path.read_bytes()
    for n, why in [
        (len(data) // 2, "truncated or corrupt GGUF file .*extends past the end"),
        (len(data) - 64, "truncated or corrupt GGUF file"),
        (400, "truncated or corrupt GGUF file"),
        (12, "not a GGUF file"),
    ]:
        src = tmp_path / f"cut-{n}.gguf"
        src.write_bytes(data[:n])
        assert str(src) in _convert_fails(src, tmp_path, why)
    text = tmp_path / "notes.gguf"
    text.write_text("this is not a model\n" * 10)
    _convert_fails(text, tmp_path, "notes.gguf: not a GGUF file")
    _convert_fails(tmp_path / "missing.gguf", tmp_path, "GGUF file not found")


@pytest.mark.parametrize("arch", ["gpt2", "phi3"])
def test_unsupported_architecture(tiny_parts, tmp_path, arch):
    config, tensors, tok = tiny_parts
    src = write_gguf(tmp_path / f"{arch}.gguf", arch, config, tensors, tok)
    _convert_fails(src, tmp_path, f"architecture '{arch}' is not supported \\(supported: llama, qwen2, qwen3\\)")


@pytest.mark.parametrize(
    "meta, drop, match",
    [
        ({"tokenizer.ggml.model": "llama"}, (), "tokenizer type 'llama' is not supported"),
        ({"tokenizer.ggml.pre": "chatglm-bpe"}, (), "pre-tokenizer 'chatglm-bpe' is not supported"),
        ({}, ("tokenizer.chat_template",), "no tokenizer.chat_template"),
        ({}, ("qwen2.feed_forward_length",), "metadata has no qwen2.feed_forward_length"),
    ],
)
def test_unsupported_tokenizer_or_missing_metadata(tiny_parts, tmp_path, meta, drop, match):
    config, tensors, tok = tiny_parts
    src = write_gguf(tmp_path / "bad.gguf", "qwen2", config, tensors, tok, set_meta=meta, drop_meta=drop)
    _convert_fails(src, tmp_path, match)


def q5_0_blocks(rows: int, cols: int, seed: int = 0):
    """Raw Q5_0 bytes (gguf-py cannot quantize to it): per 32 values an fp16 scale d, 4 bytes
    of high bits and 16 bytes of low nibbles; d small and finite so the values are sane."""
    rng = np.random.default_rng(seed)
    n = rows * cols // 32
    blocks = np.empty((n, 22), np.uint8)
    d = (rng.uniform(0.5, 1.0, n) * 0.005).astype(np.float16)
    blocks[:, :2] = d.view(np.uint8).reshape(n, 2)
    blocks[:, 2:] = rng.integers(0, 256, (n, 20), dtype=np.uint8)
    return blocks.reshape(rows, cols // 32 * 22)


def test_a_tensor_type_mlx_cannot_read_is_dequantized_with_gguf_py(tiny_parts, tmp_path):
    import mlx.core as mx
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize

    config, tensors, tok = tiny_parts
    raw = q5_0_blocks(64, 256)  # blk.0.ffn_down: 64 outputs x 256 inputs
    src = write_gguf(tmp_path / "q5.gguf", "qwen2", config, {**tensors, "blk.0.ffn_down.weight": (raw, "Q5_0")}, tok)
    with pytest.raises(Exception):
        mx.load(str(src))  # MLX itself refuses the file
    weights, meta = G.read_gguf(src)
    expected = dequantize(raw, T.Q5_0)
    assert np.isfinite(expected).all() and expected.std() > 0
    assert np.array_equal(np.array(weights["blk.0.ffn_down.weight"]), expected)
    assert meta["general.architecture"] == "qwen2" and len(meta["tokenizer.ggml.tokens"]) == 512
    # The whole file then converts (everything dequantized), and the check passes.
    manifest = G.convert(src, tmp_path / "out", "keep-quantized")
    assert manifest["dtype"] == "float32" and manifest["check"]["max_rel_error"] < 1e-5
    assert "quantization" not in json.loads((tmp_path / "out" / "config.json").read_text())


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q8_0"])
def test_mlx_triples_dequantize_exactly_like_gguf_py(tmp_path, qtype):
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize, quantize

    rng = np.random.default_rng(1)
    # Rows of very different magnitudes, an offset (Q4_1's minimum), zeros and a constant row.
    w = rng.normal(size=(8, 96)).astype(np.float32) * np.logspace(-4, 1, 8, dtype=np.float32)[:, None]
    w[2] += 3.0
    w[5, :32] = 0.0
    w[6] = -0.75
    config = {
        "max_position_embeddings": 64,
        "hidden_size": 96,
        "intermediate_size": 96,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1e4,
        "vocab_size": 2,
    }
    tok = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "default",
        "tokenizer.ggml.tokens": ["a", "b"],
        "tokenizer.ggml.merges": ["a b"],
        "tokenizer.ggml.token_type": [1, 1],
        "tokenizer.ggml.bos_token_id": 0,
        "tokenizer.ggml.eos_token_id": 1,
        "tokenizer.ggml.padding_token_id": 1,
        "tokenizer.chat_template": "x",
    }
    src = write_gguf(tmp_path / "t.gguf", "llama", config, {"blk.0.attn_q.weight": (w, qtype)}, tok)
    weights, _ = G.read_gguf(src)
    assert {"blk.0.attn_q.weight", "blk.0.attn_q.scales", "blk.0.attn_q.biases"} <= set(weights)
    got = np.array(G.dequantize_triple(weights, "blk.0.attn_q"))
    assert got.dtype == np.float32
    assert np.array_equal(got, dequantize(quantize(w, T[qtype]), T[qtype]))


# -- the child-process entry point --------------------------------------------------------------


def test_main_prints_json_events(tiny_gguf_path, tmp_path, capsys):
    out = tmp_path / "m"
    assert G.main([str(tiny_gguf_path), str(out), "--dtype", "float32"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["message", "message", "done"]
    assert events[-1]["cached"] is False and events[-1]["check"]["max_rel_error"] < 1e-5
    assert G.main([str(tiny_gguf_path), str(out), "--dtype", "float32"]) == 0
    assert json.loads(capsys.readouterr().out) == {"event": "done", "out": str(out), "cached": True}
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 8)
    assert G.main([str(bad), str(tmp_path / "n")]) == 2
    (event,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert event["event"] == "error" and "bad.gguf" in event["message"]
