"""A GGUF file (llama.cpp, Ollama, LM Studio) -> an mlx_lm model directory.

    python -m mlx_backend.gguf FILE.gguf OUT_DIR [--dtype auto|float32|float16|bfloat16|keep-quantized]

What conversion means, and why each step:

* ``mx.load`` reads GGUF natively; Q4_0 / Q4_1 / Q8_0 tensors arrive as MLX
  weight/scales/biases triples (group size 32), which *are* MLX quantized layers. Other
  types (K-quants, Q5_x, IQ*) are dequantized with llama.cpp's own ``gguf`` package.
* Tensor names are renamed to mlx_lm's for the architecture (``ARCHS``).
* llama.cpp permutes the rows of Q and K for the llama architecture so that its
  interleaved RoPE matches HF's rotate-half RoPE; mlx_lm uses rotate-half, so the
  permutation is undone. Rows are output features and GGUF quantizes along the input
  features, so the inverse permutation applies to weight, scales and biases alike and a
  quantized tensor stays quantized. qwen2 / qwen3 use NEOX RoPE: nothing to undo.
* tokenizer.json is rebuilt from the vocabulary and merges with ``tokenizers``; the
  pre-tokenizer regex comes from ``tokenizer.ggml.pre`` (llama.cpp's table).
* The result is checked: logits of a fixed prompt under mlx_lm must match a NumPy
  forward pass written against the GGUF layout itself (interleaved RoPE on the permuted
  weights), so a wrong permutation, name or hyperparameter fails the conversion.

Everything is written to a temporary sibling directory and renamed into place, so a
failed or interrupted conversion leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

from .errors import ModelLoadError, one_line

DTYPES = ("auto", "float32", "float16", "bfloat16", "keep-quantized")
NATIVE_QUANT_GROUP = 32  # MLX's GGUF reader always uses groups of 32
CHECK_PROMPT = "Question: what is 12 + 7? Answer step by step."


@dataclass(frozen=True)
class Arch:
    model_type: str
    permute_qk: bool  # llama.cpp's row permutation for interleaved RoPE
    qk_norm: bool = False
    qkv_bias: bool = False


ARCHS = {
    "llama": Arch("llama", permute_qk=True),
    "qwen2": Arch("qwen2", permute_qk=False, qkv_bias=True),
    "qwen3": Arch("qwen3", permute_qk=False, qk_norm=True),
}

# GGUF tensor stem -> mlx_lm module path; "{i}" is the layer index.
_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}

# tokenizer.ggml.pre -> the split regex applied before byte-level BPE (llama.cpp's
# llama-vocab.cpp). None: GPT-2's own regex, which ByteLevel applies itself.
_GPT2 = None
_DIGITS_THEN_GPT2 = r"\p{N}"
_QWEN2 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PRE_TOKENIZERS = {
    "default": _GPT2,
    "gpt2": _GPT2,
    "mpt": _GPT2,
    "olmo": _GPT2,
    "smollm": _DIGITS_THEN_GPT2,
    "starcoder": _DIGITS_THEN_GPT2,
    "refact": _DIGITS_THEN_GPT2,
    "qwen2": _QWEN2,
    "stablelm2": _QWEN2,
    "deepseek-r1-qwen": _QWEN2,
    "llama-bpe": _LLAMA3,
    "llama3": _LLAMA3,
    "smaug-bpe": _LLAMA3,
}
_TOKEN_CONTROL, _TOKEN_USER_DEFINED = 3, 4


# -- reading -------------------------------------------------------------------------


def _scalar(v):
    if isinstance(v, mx.array):
        return v.item() if v.ndim == 0 else v.tolist()
    return v


def read_gguf(path: Path) -> tuple[dict[str, mx.array], dict]:
    """Tensors (native MLX quantized triples where possible) and metadata as Python values."""
    if not path.is_file():
        raise ModelLoadError(f"GGUF file not found: {path}")
    try:
        weights, meta = mx.load(str(path), return_metadata=True)
    except Exception as e:
        msg = one_line(e)
        if "extends past the end" in msg:
            raise ModelLoadError(
                f"{path}: truncated or corrupt GGUF file ({msg.removeprefix('[load_gguf] ')})"
            ) from None
        if "gguf_init failed" in msg:
            raise ModelLoadError(f"{path}: not a GGUF file (or a corrupt header)") from None
        # A tensor type MLX does not read: decode the whole file with llama.cpp's reader.
        return _read_with_gguf_py(path, msg)
    return weights, {k: _scalar(v) for k, v in meta.items()}


def _read_with_gguf_py(path: Path, why: str) -> tuple[dict[str, mx.array], dict]:
    try:
        import gguf
        from gguf.quants import dequantize
    except ImportError:
        raise ModelLoadError(
            f"{path}: MLX cannot read a tensor type in this file ({why}); install the `gguf` package to dequantize it"
        ) from None
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as e:
        raise ModelLoadError(f"{path}: cannot read GGUF: {one_line(e)}") from None
    meta = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    weights = {}
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape))  # GGUF lists the fastest axis first
        try:
            arr = dequantize(t.data, t.tensor_type).reshape(shape)
        except NotImplementedError:
            raise ModelLoadError(
                f"{path}: tensor {t.name} has type {t.tensor_type.name}, "
                "which neither MLX nor the gguf package can decode"
            ) from None
        weights[t.name] = mx.array(arr.astype(np.float32))
    return weights, meta


# -- hyperparameters and names ---------------------------------------------------------


def hyperparameters(meta: dict, path: Path) -> tuple[Arch, dict]:
    """(architecture, mlx_lm config.json) from GGUF metadata; unsupported -> one clear line."""
    name = meta.get("general.architecture")
    if name not in ARCHS:
        raise ModelLoadError(f"{path}: architecture {name!r} is not supported (supported: {', '.join(ARCHS)})")
    arch = ARCHS[name]

    def get(key, default=None, required=True):
        v = meta.get(f"{name}.{key}", default)
        if v is None and required:
            raise ModelLoadError(f"{path}: metadata has no {name}.{key}")
        return v

    heads = int(get("attention.head_count"))
    hidden = int(get("embedding_length"))
    head_dim = int(
        get("attention.key_length", None, False) or get("rope.dimension_count", None, False) or hidden // heads
    )
    if "rope.scaling.type" in {k.removeprefix(f"{name}.") for k in meta} and get(
        "rope.scaling.type", "none", False
    ) not in ("none", None):
        raise ModelLoadError(f"{path}: RoPE scaling {get('rope.scaling.type')!r} is not supported yet")
    config = {
        "model_type": arch.model_type,
        "hidden_size": hidden,
        "intermediate_size": int(get("feed_forward_length")),
        "num_hidden_layers": int(get("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(get("attention.head_count_kv", heads, False)),
        "head_dim": head_dim,
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon")),
        "rope_theta": float(get("rope.freq_base", 10000.0, False)),
        "max_position_embeddings": int(get("context_length", 4096, False)),
        "vocab_size": len(meta.get("tokenizer.ggml.tokens") or []) or int(get("vocab_size")),
    }
    if arch.model_type == "llama":
        config["attention_bias"] = False
        config["mlp_bias"] = False
    return arch, config


def _mlx_name(gguf_name: str) -> str | None:
    stem, _, suffix = gguf_name.rpartition(".")
    if stem.startswith("blk."):
        _, i, part = stem.split(".", 2)
        target = _LAYER_NAMES.get(part)
        return f"model.layers.{i}.{target}.{suffix}" if target else None
    target = _TOP_NAMES.get(stem)
    return f"{target}.{suffix}" if target else None


def unpermute_rows(x: mx.array, n_head: int) -> mx.array:
    """Inverse of llama.cpp's ``permute`` (convert_hf_to_gguf.py) along the rows."""
    rows = x.shape[0]
    return x.reshape(n_head, rows // n_head // 2, 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def _bits(weight: mx.array, scales: mx.array) -> int:
    return weight.shape[-1] * 32 // (scales.shape[-1] * NATIVE_QUANT_GROUP)


def mlx_weights(
    weights: dict[str, mx.array], arch: Arch, config: dict, path: Path, dtype: str
) -> tuple[dict[str, mx.array], dict | None]:
    """Renamed, un-permuted tensors in ``dtype`` (or kept quantized) and the quantization config."""
    out: dict[str, mx.array] = {}
    for name, w in weights.items():
        if name == "rope_freqs.weight":
            raise ModelLoadError(
                f"{path}: per-dimension RoPE frequencies (Llama 3.1-style scaling) are not supported yet"
            )
        new = _mlx_name(name)
        if new is None:
            raise ModelLoadError(f"{path}: unexpected tensor {name!r} for architecture {arch.model_type}")
        if arch.permute_qk and (".attn_q." in name or ".attn_k." in name):
            heads = config["num_attention_heads"] if ".attn_q." in name else config["num_key_value_heads"]
            w = unpermute_rows(w, heads)
        out[new] = w
    config["tie_word_embeddings"] = "lm_head.weight" not in out

    quantized = sorted(k.removesuffix(".scales") for k in out if k.endswith(".scales"))
    if dtype != "keep-quantized":
        for stem in quantized:
            out[f"{stem}.weight"] = dequantize_triple(out, stem)
            del out[f"{stem}.scales"], out[f"{stem}.biases"]
        target = getattr(mx, dtype)
        return {k: v.astype(target) for k, v in out.items()}, None
    # Norms and biases stay float32; scales stay in their own half precision as GGUF stores them.
    bits = {stem: _bits(out[f"{stem}.weight"], out[f"{stem}.scales"]) for stem in quantized}
    common = max(set(bits.values()), key=list(bits.values()).count) if bits else 4
    quant = {"group_size": NATIVE_QUANT_GROUP, "bits": common}
    for stem, b in bits.items():
        if b != common:
            quant[stem] = {"group_size": NATIVE_QUANT_GROUP, "bits": b}
    # Layers without scales (norms, an F16 output layer) stay dense: mlx_lm quantizes only
    # the modules whose .scales it finds in the weights.
    return out, quant


def dequantize_triple(w: dict[str, mx.array], stem: str) -> mx.array:
    """Float32 weight of a quantized triple; scales and biases widened first so no half rounding."""
    weight, scales = w[f"{stem}.weight"], w[f"{stem}.scales"]
    return mx.dequantize(
        weight,
        scales.astype(mx.float32),
        w[f"{stem}.biases"].astype(mx.float32),
        group_size=NATIVE_QUANT_GROUP,
        bits=_bits(weight, scales),
    )


# -- tokenizer -------------------------------------------------------------------------


def build_tokenizer(meta: dict, path: Path):
    """A ``tokenizers.Tokenizer`` from the GGUF vocabulary, merges and pre-tokenizer type."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ModelLoadError(f"{path}: tokenizer type {kind!r} is not supported (only byte-level BPE, 'gpt2')")
    pre = meta.get("tokenizer.ggml.pre", "default")
    if pre not in PRE_TOKENIZERS:
        raise ModelLoadError(f"{path}: pre-tokenizer {pre!r} is not supported (supported: {', '.join(PRE_TOKENIZERS)})")
    tokens = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges") or []]
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False)
    tok = Tokenizer(bpe)
    regex = PRE_TOKENIZERS[pre]
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=regex in (_GPT2, _DIGITS_THEN_GPT2))
    tok.pre_tokenizer = (
        byte_level
        if regex is None
        else pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(regex), behavior="isolated"), byte_level])
    )
    tok.decoder = decoders.ByteLevel()
    types = list(meta.get("tokenizer.ggml.token_type") or [])
    special = [
        AddedToken(tokens[i], special=t == _TOKEN_CONTROL, normalized=False)
        for i, t in enumerate(types)
        if t in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED)
    ]
    tok.add_tokens(special)
    bos = meta.get("tokenizer.ggml.bos_token_id")
    if meta.get("tokenizer.ggml.add_bos_token") and bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{tokens[bos]}:0 $A:0", pair=f"{tokens[bos]}:0 $A:0 $B:1", special_tokens=[(tokens[bos], bos)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok, tokens


def tokenizer_config(meta: dict, tokens: list[str], path: Path) -> dict:
    template = meta.get("tokenizer.chat_template")
    if not template:
        raise ModelLoadError(f"{path}: no tokenizer.chat_template in the metadata (tailor needs a chat model)")

    def token(key):
        i = meta.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[i] if isinstance(i, int) and 0 <= i < len(tokens) else None

    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": template,
        "bos_token": token("bos"),
        "eos_token": token("eos"),
        "pad_token": token("padding") or token("eos"),
        "unk_token": token("unknown"),
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(meta.get(f"{meta['general.architecture']}.context_length", 4096)),
    }


# -- the reference forward pass (GGUF layout, NumPy) -----------------------------------


def _rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _rope(x, theta, interleaved):
    """x: (heads, T, d). llama.cpp's NORM mode rotates pairs (2i, 2i+1), NEOX pairs (i, i+d/2)."""
    _, t, d = x.shape
    inv = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(t)[:, None] * inv[None, :]
    cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out
    a, b = x[..., : d // 2], x[..., d // 2 :]
    return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


def reference_logits(weights: dict[str, mx.array], arch: Arch, config: dict, ids: list[int]) -> np.ndarray:
    """Logits of ``ids`` computed from the GGUF tensors as llama.cpp lays them out."""

    def get(name):
        if f"{name}.scales" in weights:
            return np.array(dequantize_triple(weights, name))
        return np.array(weights[f"{name}.weight"].astype(mx.float32))

    def bias(name):
        b = weights.get(f"{name}.bias")
        return 0.0 if b is None else np.array(b.astype(mx.float32))

    nh, nkv, hd, eps = (
        config["num_attention_heads"],
        config["num_key_value_heads"],
        config["head_dim"],
        config["rms_norm_eps"],
    )
    t = len(ids)
    x = get("token_embd")[ids]
    mask = np.triu(np.full((t, t), -np.inf, dtype=np.float32), 1)
    for i in range(config["num_hidden_layers"]):
        p = f"blk.{i}."
        h = _rms(x, get(p + "attn_norm"), eps)
        q = (h @ get(p + "attn_q").T + bias(p + "attn_q")).reshape(t, nh, hd).transpose(1, 0, 2)
        k = (h @ get(p + "attn_k").T + bias(p + "attn_k")).reshape(t, nkv, hd).transpose(1, 0, 2)
        v = (h @ get(p + "attn_v").T + bias(p + "attn_v")).reshape(t, nkv, hd).transpose(1, 0, 2)
        if arch.qk_norm:
            q, k = _rms(q, get(p + "attn_q_norm"), eps), _rms(k, get(p + "attn_k_norm"), eps)
        q, k = (_rope(a, config["rope_theta"], arch.permute_qk) for a in (q, k))
        k, v = np.repeat(k, nh // nkv, axis=0), np.repeat(v, nh // nkv, axis=0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        x = x + a.transpose(1, 0, 2).reshape(t, nh * hd) @ get(p + "attn_output").T
        h = _rms(x, get(p + "ffn_norm"), eps)
        g, u = h @ get(p + "ffn_gate").T, h @ get(p + "ffn_up").T
        x = x + (g / (1 + np.exp(-g)) * u) @ get(p + "ffn_down").T
    x = _rms(x, get("output_norm"), eps)
    out = get("output") if "output.weight" in weights else get("token_embd")
    return x @ out.T


# Measured on correct conversions (tests/test_gguf.py, SmolLM2): float32 ~1e-6, quantized
# and float16 ~4e-4..3e-3, bfloat16 up to ~2e-2; a missing Q/K unpermute gives ~0.4.
CHECK_LIMITS = {"float32": 1e-3, "keep-quantized": 1e-2, "float16": 1e-2, "bfloat16": 5e-2}


def check_logits(out_dir: Path, weights: dict[str, mx.array], arch: Arch, config: dict, dtype: str = "float32") -> dict:
    """Compare mlx_lm's logits of the converted directory with the reference; raise on mismatch."""
    import mlx_lm

    model, tokenizer = mlx_lm.load(str(out_dir))
    ids = tokenizer.encode(CHECK_PROMPT, add_special_tokens=False)[:24]
    got = model(mx.array([ids]))[0].astype(mx.float32)
    got = np.array(got)
    ref = reference_logits(weights, arch, config, ids)
    scale = float(np.abs(ref).max()) or 1.0
    err = float(np.abs(got - ref).max()) / scale
    agree = float((got.argmax(-1) == ref.argmax(-1)).mean())
    limit = CHECK_LIMITS[dtype]
    result = {"tokens": len(ids), "max_rel_error": round(err, 7), "top1_agreement": round(agree, 4), "limit": limit}
    if err > limit or agree < 0.9:
        raise ModelLoadError(
            f"conversion check failed: logits differ from the GGUF reference (relative error "
            f"{err:.2e}, limit {limit:g} for {dtype}; top-1 agreement {agree:.0%}, at least 90 % needed)"
        )
    return result


# -- conversion ------------------------------------------------------------------------


def auto_dtype() -> str:
    """Measured in benchmarks/gguf_dtype.py: on the CPU dense float32 goes through BLAS and
    beats MLX's quantized matmul; on Metal the quantized form is mlx_lm's usual fast path."""
    return "keep-quantized" if mx.default_device().type == mx.DeviceType.gpu else "float32"


def convert(src: Path, out_dir: Path, dtype: str = "auto", check: bool = True, say=lambda s: None) -> dict:
    """Write an mlx_lm model directory for ``src`` at ``out_dir`` (atomically); return its manifest."""
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r} (use {', '.join(DTYPES)})")
    dtype = auto_dtype() if dtype == "auto" else dtype
    src = Path(src)
    weights, meta = read_gguf(src)
    arch, config = hyperparameters(meta, src)
    if dtype == "keep-quantized" and not any(k.endswith(".scales") for k in weights):
        dtype = (
            "float16"
            if all(v.dtype != mx.float32 for k, v in weights.items() if k.endswith(".weight") and v.ndim == 2)
            else "float32"
        )
    tok, tokens = build_tokenizer(meta, src)
    tok_config = tokenizer_config(meta, tokens, src)
    tensors, quant = mlx_weights(weights, arch, config, src, dtype)
    eos = meta.get("tokenizer.ggml.eos_token_id")
    config.update(bos_token_id=meta.get("tokenizer.ggml.bos_token_id"), eos_token_id=eos)
    if quant:
        config["quantization"] = quant
    say(f"converting {src.name}: {arch.model_type}, {config['num_hidden_layers']} layers, dtype {dtype}")

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        mx.save_safetensors(str(tmp / "model.safetensors"), tensors, metadata={"format": "mlx"})
        tok.save(str(tmp / "tokenizer.json"))
        _write_json(tmp / "tokenizer_config.json", tok_config)
        _write_json(
            tmp / "special_tokens_map.json",
            {k: v for k, v in tok_config.items() if k.endswith("_token") and isinstance(v, str)},
        )
        _write_json(tmp / "config.json", config)
        manifest = {
            "source": str(src),
            "source_name": src.name,
            "architecture": arch.model_type,
            "dtype": dtype,
            "file_type": meta.get("general.file_type"),
            "name": meta.get("general.name"),
        }
        if check:
            manifest["check"] = check_logits(tmp, weights, arch, config, dtype)
            say(f"checked: logits match the GGUF reference (relative error {manifest['check']['max_rel_error']:.1e})")
        _write_json(tmp / "tailor_gguf.json", manifest)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not (out_dir / "config.json").is_file():
                raise
            shutil.rmtree(tmp)  # another process finished the same conversion first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlx_backend.gguf", description=__doc__.split("\n")[0])
    p.add_argument("file", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--dtype", default="auto", choices=DTYPES)
    p.add_argument("--no-check", action="store_true", help="skip the logits check against the GGUF reference")
    a = p.parse_args(argv)
    if (a.out / "config.json").is_file():
        print(json.dumps({"event": "done", "out": str(a.out), "cached": True}), flush=True)
        return 0
    try:
        manifest = convert(
            a.file,
            a.out,
            a.dtype,
            check=not a.no_check,
            say=lambda s: print(json.dumps({"event": "message", "text": s}), flush=True),
        )
    except ModelLoadError as e:
        print(json.dumps({"event": "error", "message": one_line(e)}), flush=True)
        return 2
    print(json.dumps({"event": "done", "out": str(a.out), "cached": False, **manifest}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
