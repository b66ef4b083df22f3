"""The tiny model: deterministic, loadable by plain mlx_lm, Qwen2/ChatML-shaped."""

import json

import pytest

pytest.importorskip("mlx.core")


from mlx_backend.tiny import build_tiny_model, n_parameters


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_gives_byte_identical_files(tmp_path, tiny_model_dir):
    again = build_tiny_model(tmp_path / "again", seed=0)
    assert _files(again) == _files(tiny_model_dir)
    other = _files(build_tiny_model(tmp_path / "other", seed=1))
    assert other["model.safetensors"] != _files(again)["model.safetensors"]
    assert other["tokenizer.json"] == _files(again)["tokenizer.json"]


def test_loads_with_mlx_lm_and_has_chatml_template(tiny_model_dir):
    import mlx.core as mx
    import mlx_lm
    from mlx.utils import tree_flatten

    model, tokenizer = mlx_lm.load(str(tiny_model_dir))
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["torch_dtype"] == "bfloat16"
    assert model.model.embed_tokens.weight.dtype == mx.bfloat16
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in tokenizer.eos_token_ids
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 12 times 7?"}], add_generation_prompt=True, tokenize=False
    )
    assert text.endswith("<|im_start|>user\nWhat is 12 times 7?<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer.encode("<|im_start|>user 1234<|im_end|>", add_special_tokens=False)
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokenizer.decode(ids) == "<|im_start|>user 1234<|im_end|>"
    assert n_parameters(config) == sum(v.size for _, v in tree_flatten(model.parameters()))
    assert max(tokenizer.get_vocab().values()) < config["vocab_size"]
