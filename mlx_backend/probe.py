"""`python -m mlx_backend.probe [SECONDS]`: one JSON line of facts about this MLX install.

Run by `tailor doctor` in a child process started exactly like a real job (same BLAS
preload), so the GFLOPS it reports are the ones jobs will get.
"""

import json
import sys
import time


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    import mlx.core as mx

    a = mx.random.normal((1024, 1024))
    b = mx.random.normal((1024, 1024))
    mx.eval(a @ b)  # warm-up: first call pays for kernel setup
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        mx.eval(a @ b)
        n += 1
    dt = time.perf_counter() - t0
    device = mx.default_device()
    print(
        json.dumps(
            {
                "mlx_version": getattr(mx, "__version__", "unknown"),
                "device": str(device.type).split(".")[-1],
                "metal": bool(mx.metal.is_available()) if hasattr(mx, "metal") else False,
                "gflops_f32": round(2 * 1024**3 * n / dt / 1e9, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
