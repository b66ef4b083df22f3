"""`python -m mlx_backend.probe [SECONDS] [SHAPES_JSON]`: one JSON line of facts about this
MLX install and the two limits every model step is bound by.

Run by `tailor doctor` in a child process started exactly like a real job (same BLAS
preload), so the rates it reports are the ones jobs will get:

- gflops_f32: a 1024x1024 float32 matmul, the machine's dense rate;
- bandwidth_gbs: a vector times a 256 MB float32 matrix, the memory bandwidth as a
  decode step meets it;
- shapes: the rate of each (m, k, n) float32 matmul asked for (the student's own:
  a prompt's rows through its MLP, say), since small shapes run below the dense rate.
"""

import json
import sys
import time

READ_BYTES = 256 * 1024 * 1024


def _rate(step, seconds: float) -> float:
    """Calls of `step` per second, after one warm-up call (kernel setup, allocation)."""
    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        step()
        n += 1
    return n / (time.perf_counter() - t0)


def matmul_gflops(m: int, k: int, n: int, seconds: float) -> float:
    import mlx.core as mx

    a, b = mx.random.normal((m, k)), mx.random.normal((k, n))
    mx.eval(a, b)
    return round(2 * m * k * n * _rate(lambda: mx.eval(a @ b), seconds) / 1e9, 1)


def bandwidth_gbs(seconds: float) -> float:
    import mlx.core as mx

    # A vector times a 256 MB matrix reads every byte once and computes little: the
    # way a decode step reads the weights (through the same BLAS, on every core). An
    # elementwise copy runs on one core here and would understate it several times.
    side = int((READ_BYTES // 4) ** 0.5)
    w, x = mx.random.normal((side, side)), mx.random.normal((1, side))
    mx.eval(w, x)
    return round(side * side * 4 * _rate(lambda: mx.eval(x @ w), seconds) / 1e9, 1)


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    shapes = json.loads(sys.argv[2]) if len(sys.argv) > 2 else []
    import mlx.core as mx

    device = mx.default_device()
    print(
        json.dumps(
            {
                "mlx_version": getattr(mx, "__version__", "unknown"),
                "device": str(device.type).split(".")[-1],
                "metal": bool(mx.metal.is_available()) if hasattr(mx, "metal") else False,
                "gflops_f32": matmul_gflops(1024, 1024, 1024, seconds),
                "bandwidth_gbs": bandwidth_gbs(seconds / 2),
                "shapes": [[m, k, n, matmul_gflops(m, k, n, seconds / 2)] for m, k, n in shapes],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
