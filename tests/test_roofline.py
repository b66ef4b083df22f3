"""Roofline arithmetic against figures worked by hand for SmolLM2-135M's shape."""

import pytest

from app.roofline import Limits, Shape, decode_bytes, decode_tps, flops_per_token, prefill_tps, train_tps, weight_bytes

SMOL_CONFIG = {  # SmolLM2-135M-Instruct's config.json, the keys the roofline reads
    "num_hidden_layers": 30,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
}
SMOL = Shape.from_config(SMOL_CONFIG)
LIM = Limits(flops=64.6e9, bandwidth=8e9)


def test_weights_and_flops_of_smollm2():
    # per layer: q, o 576*576 each; k, v 576*192 each; gate, up, down 576*1536 each
    assert SMOL.head_dim == 64
    assert SMOL.layer_weights == 30 * (2 * 331_776 + 2 * 110_592 + 3 * 884_736) == 106_168_320
    assert SMOL.output_weights == 28_311_552  # 576 x 49152, tied to the embedding
    assert flops_per_token(SMOL, 0) == 2 * 134_479_872
    assert flops_per_token(SMOL, 100) == 2 * 134_479_872 + 4 * 30 * 100 * 576


def test_decode_is_memory_bound_at_batch_1_and_compute_bound_at_32():
    assert decode_bytes(SMOL, 1, 0, 4.0) == 537_919_488
    assert decode_bytes(SMOL, 8, 100, 4.0) - decode_bytes(SMOL, 8, 0, 4.0) == 8 * 2 * 30 * 100 * 192 * 4
    assert decode_tps(SMOL, LIM, 1, 0, 4.0) == pytest.approx(8e9 / 537_919_488)  # 14.9 tok/s
    assert decode_tps(SMOL, LIM, 16, 0, 4.0) == pytest.approx(16 * 8e9 / 537_919_488)  # still memory
    assert decode_tps(SMOL, LIM, 32, 0, 4.0) == pytest.approx(64.6e9 / 268_959_744)  # compute: 240 tok/s


def test_prefill_training_and_quantized_bytes():
    assert prefill_tps(SMOL, LIM, 200) == pytest.approx(64.6e9 / flops_per_token(SMOL, 100))
    assert train_tps(SMOL, LIM, 200) == pytest.approx(prefill_tps(SMOL, LIM, 200) / 2)
    assert weight_bytes("float32") == 4 and weight_bytes("bfloat16") == 2
    assert weight_bytes("float32", bits=4, group_size=32, scale_bytes=2) == 0.5 + 4 / 32
    # 4-bit weights move 6.4x fewer bytes than float32: the batch-1 decode limit rises with them
    q = decode_tps(SMOL, LIM, 1, 0, weight_bytes("float32", bits=4, scale_bytes=2))
    assert q == pytest.approx(4 / 0.625 * decode_tps(SMOL, LIM, 1, 0, 4.0))
