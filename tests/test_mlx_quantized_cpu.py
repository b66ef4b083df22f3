"""A quantized student on the CPU: the float32-scale form and the dense form compute the
same logits as each other (and, within half-precision rounding, as the stored form)."""

from __future__ import annotations

import pytest

mx = pytest.importorskip("mlx.core")


def quantized_tiny(tiny_model_dir, scale_dtype):
    import mlx.nn as nn
    import mlx_lm
    from mlx.utils import tree_flatten, tree_unflatten

    model, _ = mlx_lm.load(str(tiny_model_dir))
    nn.quantize(model, group_size=32, bits=4)
    # stored as mlx-community checkpoints and GGUF conversions store them
    cast = [(k, v.astype(scale_dtype)) for k, v in tree_flatten(model.parameters()) if k.endswith(("scales", "biases"))]
    model.update(tree_unflatten(cast))
    mx.eval(model.parameters())
    return model


def logits(model):
    tokens = mx.array([[1, 7, 42, 99, 3, 250, 17, 5]])
    out = model(tokens).astype(mx.float32)
    mx.eval(out)
    return out


def test_float32_scales_and_dequantized_give_the_same_logits(tiny_model_dir):
    from mlx_lm.utils import dequantize_model

    from mlx_backend.model import cast_floating
    from mlx_backend.quantized_cpu import float32_scales

    stored = logits(quantized_tiny(tiny_model_dir, mx.float16))
    scaled = quantized_tiny(tiny_model_dir, mx.float16)
    float32_scales(scaled)
    cast_floating(scaled, mx.float32)  # the layers left dense, as load_model does for both
    dense = quantized_tiny(tiny_model_dir, mx.float16)
    float32_scales(dense)
    dequantize_model(dense)
    cast_floating(dense, mx.float32)
    a, b = logits(scaled), logits(dense)
    assert mx.allclose(a, b, atol=1e-4, rtol=1e-4).item()  # the same function, two kernels
    assert mx.allclose(a, stored, atol=5e-2).item()  # the stored form, up to float16 rounding
    assert a.shape == (1, 8, 512)


def test_choose_measures_both_forms_and_applies_one(tiny_model_dir):
    import mlx.nn as nn

    from mlx_backend.quantized_cpu import choose, dense_bytes

    model = quantized_tiny(tiny_model_dir, mx.float16)
    before = logits(model)
    got = choose(model)
    assert got["path"] in ("float32 scales", "dequantized") and set(got["seconds"]) == {"float32 scales", "dequantized"}
    quantized = [m for _, m in model.named_modules() if isinstance(m, nn.QuantizedLinear)]
    if got["path"] == "dequantized":
        assert not quantized
    else:
        assert quantized and all(m.scales.dtype == mx.float32 for m in quantized)
    assert mx.allclose(logits(model), before, atol=5e-2).item()
    assert dense_bytes(quantized_tiny(tiny_model_dir, mx.float16)) > 0
