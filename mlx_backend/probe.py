"""`python -m mlx_backend.probe [SECONDS] [SHAPES_JSON] [STUDENT_JSON]`: one JSON line of
facts about this MLX install and the two limits every model step is bound by.

Run by `tailor doctor` in a child process started exactly like a real job (same BLAS
preload), so the rates it reports are the ones jobs will get:

- gflops_f32: a 1024x1024 float32 matmul, the machine's dense rate;
- bandwidth_gbs: a vector times a 256 MB float32 matrix, the memory bandwidth as a
  decode step meets it;
- shapes: the rate of each (m, k, n) float32 matmul asked for (the student's own:
  a prompt's rows through its MLP, say), since small shapes run below the dense rate;
- decode: with STUDENT_JSON ``{"model", "dtype"}``, the student loaded as a job loads it
  and its batch-1 decode tokens/s (prefill excluded), with the form it was loaded in, so
  doctor can say how far the chosen path is from the roofline.
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


DECODE_TOKENS = 24
DECODE_PROMPT = "Count from one to forty in words, one per line."  # long enough to run to max_tokens


def decode_rate(model: str, dtype: str, tokens: int = DECODE_TOKENS) -> dict:
    """The student's batch-1 decode tokens/s in the form `dtype` loads it, after a warm run."""
    from mlx_lm import stream_generate

    from mlx_backend.model import chat_prompt, load_model

    m, tokenizer, info = load_model(model, dtype=dtype)
    prompt = chat_prompt(tokenizer, [{"role": "user", "content": DECODE_PROMPT}])
    for _ in range(2):  # the second run is timed: the first compiles kernels and grows the caches
        for last in stream_generate(m, tokenizer, prompt, max_tokens=tokens):
            pass
    path = (info.get("quantized_path") or {}).get("path")
    return {
        "tps": round(last.generation_tps, 2),
        "dtype": info["dtype"],
        "quantized": info["quantized"],
        "quantized_path": path,
    }


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    shapes = json.loads(sys.argv[2]) if len(sys.argv) > 2 else []
    student = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
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
                **({"decode": decode_rate(student["model"], student["dtype"])} if student else {}),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
