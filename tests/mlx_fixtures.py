"""Shared fixtures and helpers for the MLX tests (tests/test_mlx_*.py).

tests/conftest.py loads this module as a plugin (pytest_plugins), so every test can use
the fixtures; nothing here imports mlx until a fixture runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The default tiny model (seed 0), built once per test session."""
    from mlx_backend.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    """(model, tokenizer, info) of the tiny model, loaded once."""
    from mlx_backend.model import load_model

    return load_model(str(tiny_model_dir))


def job_command(job_path: Path) -> list[str]:
    return [sys.executable, "-m", "mlx_backend", str(job_path)]


def job_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TAILOR_FAST_BLAS", None)
    return env


def write_job(tmp_path: Path, job: dict, name: str = "job.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(job), encoding="utf-8")
    return path


def run_job(tmp_path: Path, job: dict, timeout: float = 60) -> tuple[list[dict], int, str]:
    """Run ``python -m mlx_backend`` on ``job``; return (events, exit code, stderr)."""
    proc = subprocess.run(
        job_command(write_job(tmp_path, job)),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=job_env(),
    )
    # Every stdout line must be one JSON event.
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return events, proc.returncode, proc.stderr


def results(events: list[dict]) -> dict[str, dict]:
    return {e["id"]: e for e in events if e["event"] == "result"}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# -- GGUF files written the way llama.cpp's convert_hf_to_gguf.py writes them ------------

# mlx_lm / HF module path -> GGUF tensor stem (llama.cpp's tensor_mapping.py)
_HF_TO_GGUF_LAYER = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
}
_HF_TO_GGUF_TOP = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def gguf_name(hf_name: str) -> str:
    module, suffix = hf_name.rsplit(".", 1)
    if module.startswith("model.layers."):
        _, _, i, rest = module.split(".", 3)
        return f"blk.{i}.{_HF_TO_GGUF_LAYER[rest]}.{suffix}"
    return f"{_HF_TO_GGUF_TOP[module]}.{suffix}"


def llama_permute(w, n_head: int, n_head_kv: int | None):
    """convert_hf_to_gguf.py's LlamaModel.permute (HF rotate-half rows -> llama.cpp interleaved)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_weights(model_dir: Path) -> dict:
    """A model directory's weights as float32 numpy arrays, under their mlx_lm / HF names."""
    import mlx.core as mx
    import numpy as np

    return {k: np.array(v.astype(mx.float32)) for k, v in mx.load(str(Path(model_dir) / "model.safetensors")).items()}


def tokenizer_metadata(model_dir: Path) -> dict:
    """The tokenizer.* keys convert_hf_to_gguf.py writes for a byte-level BPE (Qwen2-style) tokenizer."""
    tok = json.loads((Path(model_dir) / "tokenizer.json").read_text("utf-8"))
    tcfg = json.loads((Path(model_dir) / "tokenizer_config.json").read_text("utf-8"))
    vocab = dict(tok["model"]["vocab"])
    added = {t["content"]: t for t in tok["added_tokens"]}
    vocab.update({c: t["id"] for c, t in added.items()})
    by_id = {i: t for t, i in vocab.items()}
    tokens = [by_id[i] for i in range(len(by_id))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    types = [(3 if added[t]["special"] else 4) if t in added else 1 for t in tokens]
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "qwen2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.token_type": types,
        "tokenizer.ggml.bos_token_id": vocab["<|endoftext|>"],
        "tokenizer.ggml.eos_token_id": vocab[tcfg["eos_token"]],
        "tokenizer.ggml.padding_token_id": vocab[tcfg["pad_token"]],
        "tokenizer.chat_template": tcfg["chat_template"],
    }


def write_gguf(
    path: Path,
    arch: str,
    config: dict,
    tensors: dict,
    tokenizer: dict,
    *,
    set_meta: dict | None = None,
    drop_meta: tuple = (),
) -> Path:
    """Write a GGUF file with gguf-py's writer. ``tensors``: GGUF name -> (float32 array, type name)
    or (raw uint8 blocks, type name) for a type gguf-py cannot quantize; ``config`` is HF-style."""
    import gguf
    import numpy as np
    from gguf import GGMLQuantizationType as T

    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tailor test model")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_head_count(config["num_attention_heads"])
    w.add_head_count_kv(config["num_key_value_heads"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_rope_freq_base(config["rope_theta"])
    w.add_vocab_size(config["vocab_size"])
    w.add_tokenizer_model(tokenizer["tokenizer.ggml.model"])
    w.add_tokenizer_pre(tokenizer["tokenizer.ggml.pre"])
    w.add_token_list(tokenizer["tokenizer.ggml.tokens"])
    w.add_token_merges(tokenizer["tokenizer.ggml.merges"])
    w.add_token_types(tokenizer["tokenizer.ggml.token_type"])
    w.add_bos_token_id(tokenizer["tokenizer.ggml.bos_token_id"])
    w.add_eos_token_id(tokenizer["tokenizer.ggml.eos_token_id"])
    w.add_pad_token_id(tokenizer["tokenizer.ggml.padding_token_id"])
    w.add_add_bos_token(False)
    w.add_chat_template(tokenizer["tokenizer.chat_template"])
    for key, value in (set_meta or {}).items():
        w.add_key_value(key, value, gguf.GGUFValueType.get_type(value))
    for key in drop_meta:
        del w.kv_data[0][key]
    for name, (arr, qtype) in tensors.items():
        qtype = T[qtype]
        if arr.dtype == np.uint8:
            w.add_tensor(name, arr, raw_dtype=qtype)
        elif qtype in (T.F32, T.F16):
            w.add_tensor(name, arr.astype(np.float32 if qtype == T.F32 else np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(arr.astype(np.float32), qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)


def gguf_tensors(weights: dict, qtype: str = "Q8_0", embd_qtype: str | None = None) -> dict:
    """GGUF name -> (array, type): 2-D weights in ``qtype`` (the embedding in ``embd_qtype``), 1-D in F32."""
    out = {}
    for k, v in weights.items():
        t = "F32" if v.ndim == 1 else (embd_qtype or qtype) if k == "model.embed_tokens.weight" else qtype
        out[gguf_name(k)] = (v, t)
    return out


def tiny_gguf(model_dir: Path, path: Path, *, qtype: str = "Q8_0", untied: bool = False, **kw) -> Path:
    """The tiny Qwen2-style model as convert_hf_to_gguf.py writes it (arch qwen2: no Q/K permutation)."""
    config = json.loads((Path(model_dir) / "config.json").read_text("utf-8"))
    weights = hf_weights(model_dir)
    if untied:  # an explicit output layer (same values, so the logits do not change)
        weights["lm_head.weight"] = weights["model.embed_tokens.weight"].copy()
    return write_gguf(path, "qwen2", config, gguf_tensors(weights, qtype), tokenizer_metadata(model_dir), **kw)


@pytest.fixture(scope="session")
def tiny_gguf_path(tiny_model_dir, tmp_path_factory) -> Path:
    """The default tiny model as a Q8_0 qwen2 GGUF."""
    return tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-q8_0.gguf")
