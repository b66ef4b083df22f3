"""A quantized student on the CPU: which of two float32 forms runs faster here.

MLX's quantized matmul does not go through BLAS, and with half-precision scales (as
mlx-community checkpoints and GGUF conversions store them) it is some 40x slower on a
CPU than with float32 scales. The two forms worth choosing between:

- "float32 scales": the weights stay quantized (4-8x less memory), scales and biases
  become float32;
- "dequantized": every quantized layer is expanded once to a dense float32 layer, so
  the matmuls are BLAS calls (more memory, usually faster with a fast BLAS).

The choice is measured on the model's own largest quantized projection at a decode-sized
and a prefill-sized input, both forms side by side, and refused for "dequantized" when
the dense weights would not fit in memory. Both compute the same function: dequantize
gives exactly the values the quantized matmul uses.
"""

from __future__ import annotations

import time

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

ROWS = (1, 64)  # a decode step of one sequence and a prompt's worth of rows


def _quantized_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding))]


def float32_scales(model: nn.Module) -> None:
    """Scales and biases of every quantized layer to float32, weights left packed."""
    out = []
    for name, layer in _quantized_layers(model):
        prefix = name + "." if name else ""
        for key in ("scales", "biases"):
            value = getattr(layer, key, None)
            if value is not None and value.dtype != mx.float32:
                out.append((prefix + key, value.astype(mx.float32)))
    if out:
        model.update(tree_unflatten(out))
        mx.eval(model.parameters())


def _seconds(fn, repeat: int = 5) -> float:
    mx.eval(fn())  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        mx.eval(fn())
        best = min(best, time.perf_counter() - t)
    return best


def measure(model: nn.Module) -> dict:
    """Seconds per call of the largest quantized projection, in both forms, summed over ROWS."""
    linears = [m for _, m in _quantized_layers(model) if isinstance(m, nn.QuantizedLinear)]
    if not linears:
        return {}
    layer = max(linears, key=lambda m: m.weight.size)
    scales = layer.scales.astype(mx.float32)
    biases = None if layer.biases is None else layer.biases.astype(mx.float32)
    how = {"group_size": layer.group_size, "bits": layer.bits, "mode": getattr(layer, "mode", "affine")}
    dense = mx.dequantize(layer.weight, scales, biases, **how)
    mx.eval(scales, dense)
    quant, full = 0.0, 0.0
    for rows in ROWS:
        x = mx.random.normal((rows, dense.shape[1]))
        mx.eval(x)
        quant += _seconds(lambda x=x: mx.quantized_matmul(x, layer.weight, scales, biases, transpose=True, **how))
        full += _seconds(lambda x=x: x @ dense.T)
    return {"float32 scales": quant, "dequantized": full}


def dense_bytes(model: nn.Module) -> int:
    """Bytes of the model as dense float32."""
    n = 0
    for _, layer in _quantized_layers(model):
        n += layer.weight.size * 32 // layer.bits
    skip = tuple(name + "." for name, _ in _quantized_layers(model))
    n += sum(v.size for k, v in tree_flatten(model.parameters()) if not k.startswith(skip))
    return 4 * n


def choose(model: nn.Module) -> dict:
    """Measure, pick, and apply the faster float32 form; returns what was measured and chosen."""
    from mlx_lm.utils import dequantize_model

    times = measure(model)
    if not times:
        return {}
    from app.memory import memory_bytes

    avail = memory_bytes()[1]
    fits = avail is None or dense_bytes(model) * 1.3 < avail
    pick = "dequantized" if fits and times["dequantized"] < times["float32 scales"] else "float32 scales"
    float32_scales(model)  # first for both: dequantized from half-precision scales would round
    if pick == "dequantized":
        dequantize_model(model)  # in place: exactly the values the quantized matmul used
    return {"path": pick, "seconds": {k: round(v, 6) for k, v in times.items()}, "dense_fits": fits}
