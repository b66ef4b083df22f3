"""Loading the student (model + tokenizer + optional LoRA adapter) and the one chat-template path.

Everything that feeds text to the model goes through :func:`chat_prompt`, so diagnosis,
scoring and training see the same tokens for the same messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from .errors import ModelLoadError, one_line

DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}


def _set_offline() -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once at import time; set both so that
    # neither mlx_lm nor transformers (which may already be imported) calls out.
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") != 1 or os.sep != "/" and os.sep in name


def resolve_model_path(model: str) -> Path:
    """Local directory for ``model`` (a path, or a hub repo id served from the cache first)."""
    path = Path(model).expanduser()
    if path.exists():
        _set_offline()
        if not path.is_dir():
            raise ModelLoadError(f"model path is not a directory: {path}")
        return path
    if _looks_like_path(model):
        raise ModelLoadError(f"model path does not exist: {path}")

    from huggingface_hub import snapshot_download
    from mlx_lm.utils import DEFAULT_ALLOW_PATTERNS

    try:
        local = snapshot_download(model, allow_patterns=DEFAULT_ALLOW_PATTERNS, local_files_only=True)
        _set_offline()
        return Path(local)
    except Exception:
        pass  # not (fully) cached: fall through to the network unless offline
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(f"model {model!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set")
    try:
        local = snapshot_download(model, allow_patterns=DEFAULT_ALLOW_PATTERNS)
    except Exception as e:  # network, auth, 404: all end the job the same way
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        if isinstance(e, GatedRepoError):
            reason = "the repo is gated (log in with `hf auth login`)"
        elif isinstance(e, RepositoryNotFoundError):
            reason = "no such repo on the Hugging Face Hub"
        else:
            reason = f"the Hugging Face Hub is unreachable ({type(e).__name__})"
        raise ModelLoadError(f"cannot load model {model!r}: {reason}") from None
    _set_offline()
    return Path(local)


def _check_adapter(adapter_path: str) -> Path:
    path = Path(adapter_path).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"adapter path does not exist: {path}")
    for name in ("adapter_config.json", "adapters.safetensors"):
        if not (path / name).is_file():
            raise ModelLoadError(f"adapter {path} has no {name}")
    return path


def _quantized_prefixes(model: nn.Module) -> list[str]:
    return [
        name + "." if name else ""
        for name, m in model.named_modules()
        if isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding)) or hasattr(m, "bits") and hasattr(m, "scales")
    ]


def cast_floating(model: nn.Module, dtype: mx.Dtype) -> None:
    """Cast floating parameters to ``dtype``, leaving quantized layers (and their scales) alone."""
    skip = tuple(_quantized_prefixes(model))
    params = [
        (k, v.astype(dtype) if mx.issubdtype(v.dtype, mx.floating) and not (skip and k.startswith(skip)) else v)
        for k, v in tree_flatten(model.parameters())
    ]
    model.update(tree_unflatten(params))
    mx.eval(model.parameters())


def model_dtype(model: nn.Module) -> str:
    """Dtype of the first floating, non-quantized parameter (the embedding for most models)."""
    skip = tuple(_quantized_prefixes(model))
    for k, v in tree_flatten(model.parameters()):
        if mx.issubdtype(v.dtype, mx.floating) and not (skip and k.startswith(skip)):
            return _dtype_name(v.dtype)
    return "unknown"


def _dtype_name(dtype: mx.Dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def device_name() -> str:
    return "gpu" if mx.default_device().type == mx.DeviceType.gpu else "cpu"


def _fast_blas() -> bool:
    return os.environ.get("TAILOR_FAST_BLAS", "") == "1"


THINKING = ("model-default", "on", "off")


def set_thinking(tokenizer, thinking: str | None) -> None:
    """Pass ``enable_thinking`` to every chat-template render (Qwen3-style templates), the
    same in generation, scoring and training (mlx_lm's ChatDataset renders through this
    tokenizer too). "model-default" leaves it to mlx_lm, which turns thinking on when the
    vocabulary has think tokens; "on" / "off" on a template without the switch is an error
    rather than a silent no-op."""
    thinking = thinking or "model-default"
    if thinking not in THINKING:
        raise ModelLoadError(f"[student] thinking = {thinking!r}: use one of {', '.join(THINKING)}")
    if thinking == "model-default":
        return
    template = getattr(tokenizer, "chat_template", None) or ""
    if "enable_thinking" not in template:
        raise ModelLoadError(
            f"[student] thinking = {thinking!r}: this model's chat template has no "
            'enable_thinking switch; use thinking = "model-default"'
        )
    render = tokenizer.apply_chat_template

    def with_thinking(*args, **kwargs):
        return render(*args, **{**kwargs, "enable_thinking": thinking == "on"})

    tokenizer.apply_chat_template = with_thinking


def _chat_ready(tokenizer, path: Path, thinking: str | None) -> None:
    """Every prompt goes through the chat template: a model without one cannot be used."""
    if not getattr(tokenizer, "has_chat_template", True):
        raise ModelLoadError(f"model at {path} has no chat template (tokenizer_config.json)")
    set_thinking(tokenizer, thinking)


def load_model(model: str, adapter_path: str | None = None, dtype: str = "auto", thinking: str | None = None):
    """Load with mlx_lm; return ``(model, tokenizer, info)``.

    ``dtype="auto"`` keeps the checkpoint's dtype, except on a CPU device with
    ``TAILOR_FAST_BLAS=1`` (OpenBLAS preloaded by the parent), where float32 goes
    through BLAS and is many times faster than bf16, which never does; there a quantized
    model takes the faster of float32 scales and dense float32 (mlx_backend/quantized_cpu).
    """
    if dtype not in ("auto", "keep-quantized") and dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r} (use auto, keep-quantized, {', '.join(DTYPES)})")
    path = resolve_model_path(model)
    adapter = _check_adapter(adapter_path) if adapter_path else None
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"model directory has no config.json: {path}")

    import mlx_lm

    try:
        m, tokenizer, config = mlx_lm.load(
            str(path), adapter_path=str(adapter) if adapter else None, return_config=True
        )
    except Exception as e:
        raise ModelLoadError(f"cannot load model from {path}: {one_line(e)}") from None
    _chat_ready(tokenizer, path, thinking)

    native = model_dtype(m)
    target = dtype
    quantized_path = None
    if dtype == "auto":
        target = "float32" if device_name() == "cpu" and _fast_blas() else native
        if target == "float32" and _quantized_prefixes(m) and device_name() == "cpu":
            from .quantized_cpu import choose

            quantized_path = choose(m)  # float32 scales, or dense float32 (BLAS): the faster here
    elif dtype == "keep-quantized":
        target = native  # quantized layers are never cast; the rest stays as stored
    if target in DTYPES and target != native:
        cast_floating(m, DTYPES[target])

    info: dict[str, Any] = {
        "model": model,
        "model_path": str(path),
        "adapter": str(adapter) if adapter else None,
        "dtype": model_dtype(m),
        "native_dtype": native,
        "device": device_name(),
        "quantized": bool(_quantized_prefixes(m)),
        "quantized_path": quantized_path,
        "context": context_length(config),
    }
    return m, tokenizer, info


def load_tokenizer(model: str, thinking: str | None = None, offline: bool = False):
    """The student's tokenizer alone, rendered as in :func:`load_model` (no weights are read):
    ``(tokenizer, info)`` with the model's context length. ``offline``: a hub model that is
    not in the local cache is an error, not a download."""
    import json

    from mlx_lm.utils import load_tokenizer as _load

    if offline:
        _set_offline()
    path = resolve_model_path(model)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        tokenizer = _load(path)
    except FileNotFoundError:
        raise ModelLoadError(f"model directory has no config.json: {path}") from None
    except Exception as e:
        raise ModelLoadError(f"cannot load the tokenizer of {path}: {one_line(e)}") from None
    _chat_ready(tokenizer, path, thinking)
    return tokenizer, {"model": model, "model_path": str(path), "context": context_length(config)}


def context_length(config: dict) -> int | None:
    text = config.get("text_config", {})
    for key in ("max_position_embeddings", "max_sequence_length", "n_positions", "seq_length"):
        value = config.get(key, text.get(key))
        if isinstance(value, int) and value > 0:
            return value
    return None


def chat_prompt(tokenizer, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
    """Token ids of ``messages`` rendered with the tokenizer's chat template.

    Same call as mlx_lm's ChatDataset, so training tokenises prompts identically.
    """
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
    ):
        raise ValueError("messages must be a list of {role: str, content: str}")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return list(ids)
