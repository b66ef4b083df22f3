"""load_model: dtypes, adapters, clear errors; chat_prompt matches mlx_lm's training path."""

import json

import pytest

pytest.importorskip("mlx.core")

from mlx_fixtures import user

from mlx_backend.errors import ModelLoadError
from mlx_backend.model import cast_floating, chat_prompt, load_model, model_dtype


def test_auto_keeps_bf16_and_explicit_dtype_casts(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("TAILOR_FAST_BLAS", raising=False)
    _, _, info = load_model(str(tiny_model_dir))
    assert (info["dtype"], info["native_dtype"], info["device"]) == ("bfloat16", "bfloat16", "cpu")
    assert info["context"] == 2048 and info["quantized"] is False
    model, _, info = load_model(str(tiny_model_dir), dtype="float32")
    assert info["dtype"] == "float32" == model_dtype(model)


def test_fast_blas_env_makes_auto_float32_on_cpu(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("TAILOR_FAST_BLAS", "1")
    _, _, info = load_model(str(tiny_model_dir))
    assert info["dtype"] == "float32"
    _, _, info = load_model(str(tiny_model_dir), dtype="bfloat16")
    assert info["dtype"] == "bfloat16"


def test_cast_leaves_quantized_layers_quantized(tiny_model_dir):
    import mlx.core as mx
    import mlx.nn as nn

    model, _, _ = load_model(str(tiny_model_dir))
    nn.quantize(model, group_size=32, bits=4, class_predicate=lambda p, m: isinstance(m, nn.Linear))
    cast_floating(model, mx.float32)
    q = model.model.layers[0].self_attn.q_proj
    assert isinstance(q, nn.QuantizedLinear)
    assert q.weight.dtype == mx.uint32 and q.scales.dtype == mx.bfloat16
    assert model.model.layers[0].input_layernorm.weight.dtype == mx.float32


def test_missing_paths_raise_one_line_errors(tmp_path, tiny_model_dir, monkeypatch):
    with pytest.raises(ModelLoadError, match="model path does not exist: .*nope"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="adapter path does not exist: .*no-adapter"):
        load_model(str(tiny_model_dir), adapter_path=str(tmp_path / "no-adapter"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelLoadError, match="'someone/no-such-model' is not in the local Hugging Face cache"):
        load_model("someone/no-such-model")
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load_model(str(tiny_model_dir), dtype="int8")


def test_lora_adapter_in_mlx_lm_format_is_applied(tmp_path, tiny_model_dir):
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, tokenizer, _ = load_model(str(tiny_model_dir))
    lora = {"rank": 4, "scale": 10.0, "dropout": 0.0}
    model.freeze()  # as mlx_lm's trainer does: only the LoRA matrices are trainable
    linear_to_lora_layers(model, 2, lora)
    mx.random.seed(0)
    params = {k: mx.random.normal(v.shape) for k, v in tree_flatten(model.trainable_parameters())}
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    mx.save_safetensors(str(adapter / "adapters.safetensors"), params)
    (adapter / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": lora})
    )

    base, _, _ = load_model(str(tiny_model_dir))
    adapted, _, info = load_model(str(tiny_model_dir), adapter_path=str(adapter))
    assert info["adapter"] == str(adapter)
    ids = mx.array([chat_prompt(tokenizer, user("What is 2 + 2?"))])
    assert not mx.allclose(base(ids), adapted(ids)).item()


def test_chat_prompt_matches_mlx_lm_chat_dataset_offsets(tiny):
    from mlx_lm.tuner.datasets import ChatDataset

    _, tokenizer, _ = tiny
    messages = user("What is 12 times 7?")
    ids = chat_prompt(tokenizer, messages)
    assert all(isinstance(i, int) for i in ids)
    assert tokenizer.decode(ids).endswith("<|im_start|>assistant\n")
    conversation = messages + [{"role": "assistant", "content": "84"}]
    tokens, offset = ChatDataset([], tokenizer, mask_prompt=True).process({"messages": conversation})
    assert offset == len(ids) and tokens[:offset] == ids
    with pytest.raises(ValueError, match="messages must be"):
        chat_prompt(tokenizer, "What is 2 + 2?")
