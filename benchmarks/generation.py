"""Generation throughput: our batched generation vs a loop of plain mlx_lm.generate.

Same model, same 32 prompts, same max_tokens; tokens/s counts generated tokens over
wall time including prompt processing, for every variant. Prints ratios to the loop, and
each variant as a fraction of the decode roofline at its batch (app/roofline.py, with the
bandwidth and matmul rate measured in this run, as `tailor doctor` measures them; the
wall time includes prefill, so the fraction understates decode alone).

    python benchmarks/generation.py [--model DIR] [--max-tokens 64] [--temperature 0]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A Qwen2-style model of ~20.5M parameters (close to the 22.7M one in DESIGN.md).
MODEL_20M = dict(hidden_size=384, num_layers=8, intermediate_size=1536, num_heads=6, num_kv_heads=2, vocab_size=8192)

_SUBJECTS = ["apples", "marbles", "books", "coins", "tickets", "pencils", "stamps", "cookies"]


def prompts(n: int = 32) -> list[str]:
    """Deterministic math questions of varied length (so bucketing matters)."""
    out = []
    for i in range(n):
        a, b, s = 3 + 7 * i, 5 + 3 * i, _SUBJECTS[i % len(_SUBJECTS)]
        q = f"Maria has {a} {s} and buys {b} more. How many {s} does she have now?"
        out.append(q + " Explain every step carefully, then give the final answer." * (i % 4))
    return out


def model_dir(path: str | None) -> str:
    if path:
        return path
    from mlx_backend.tiny import build_tiny_model

    tmp = tempfile.mkdtemp(prefix="tailor-bench-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return str(build_tiny_model(Path(tmp) / "model20m", seed=0, **MODEL_20M))


def timed(fn):
    tic = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - tic


def as_a_job() -> None:
    """Re-run this script the way tailor starts an MLX job (the fast BLAS preloaded), so
    the rates and limits are the ones diagnose and eval get."""
    import os

    from app.blas import FAST_BLAS_FLAG, child_env, find_blas

    blas = find_blas(None)
    if blas and not os.environ.get(FAST_BLAS_FLAG):
        os.execve(sys.executable, [sys.executable, *sys.argv], child_env(blas))


def main() -> None:
    as_a_job()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model dir or repo (default: build the ~20M tiny model)")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    a = p.parse_args()

    from mlx_lm import batch_generate, stream_generate
    from mlx_lm.sample_utils import make_sampler

    from mlx_backend.generate import generate
    from mlx_backend.model import chat_prompt, load_model

    model, tokenizer, info = load_model(model_dir(a.model), dtype=a.dtype)
    questions = prompts(a.prompts)
    messages = [[{"role": "user", "content": q}] for q in questions]
    ids = [chat_prompt(tokenizer, m) for m in messages]
    items = [{"id": str(i), "messages": m, "max_tokens": a.max_tokens, "seed": i} for i, m in enumerate(messages)]
    sampler = make_sampler(a.temperature, a.top_p)
    print(
        f"model {info['model_path']} ({info['dtype']}, {info['device']}), {len(ids)} prompts "
        f"of {min(map(len, ids))}-{max(map(len, ids))} tokens, max_tokens {a.max_tokens}, "
        f"temperature {a.temperature}, top_p {a.top_p}"
    )

    def plain_loop():
        n = 0
        for prompt in ids:
            for r in stream_generate(model, tokenizer, prompt, max_tokens=a.max_tokens, sampler=sampler):
                pass
            n += r.generation_tokens - (r.finish_reason == "stop")
        return n

    def ours(batch):
        return lambda: sum(
            r["n_tokens"]
            for r in generate(model, tokenizer, items, temperature=a.temperature, top_p=a.top_p, max_batch=batch)
        )

    def plain_batch():
        out = batch_generate(
            model,
            tokenizer,
            ids,
            max_tokens=a.max_tokens,
            sampler=sampler,
            completion_batch_size=16,
            prefill_batch_size=16,
            return_token_ids=True,
        )
        return sum(len(t) for t in out.token_ids)

    list(generate(model, tokenizer, items[:2], max_batch=2))  # warm-up
    roof = roofline(info, sum(map(len, ids)) // len(ids) + a.max_tokens // 2)

    rows = [("mlx_lm.generate loop", plain_loop, 1)]
    rows += [(f"tailor generate, max_batch {b}", ours(b), b) for b in (1, 4, 16)]
    rows += [("mlx_lm.batch_generate, batch 16", plain_batch, 16)]
    base = None
    for name, fn, batch in rows:
        tokens, seconds = timed(fn)
        tps = tokens / seconds
        base = base or tps
        limit = roof(min(batch, len(ids)))
        print(
            f"{name:34s} {tokens:6d} tok {seconds:7.2f} s {tps:8.1f} tok/s  {tps / base:5.2f}x"
            f"   roofline {limit:7.1f} tok/s: {100 * tps / limit:4.0f} %"
        )


def roofline(info: dict, context: int):
    """batch -> the decode roofline (tok/s) for this model on this machine, measured now."""
    import json

    from app.doctor import PREFILL_ROWS, bytes_per_weight
    from app.roofline import Limits, Shape, decode_tps
    from mlx_backend.probe import bandwidth_gbs, matmul_gflops

    config = json.loads((Path(info["model_path"]) / "config.json").read_text())
    shape = Shape.from_config(config)
    lim = Limits(
        flops=matmul_gflops(PREFILL_ROWS, shape.hidden, shape.intermediate, 1.0) * 1e9,
        bandwidth=bandwidth_gbs(1.0) * 1e9,
    )
    per = bytes_per_weight(config, info["dtype"])
    print(
        f"limits measured now: {lim.flops / 1e9:.1f} GFLOPS at {PREFILL_ROWS}x{shape.hidden} @ "
        f"{shape.hidden}x{shape.intermediate}, {lim.bandwidth / 1e9:.1f} GB/s; {per:g} bytes a weight, "
        f"context {context}"
    )
    return lambda batch: decode_tps(shape, lim, batch, context, per)


if __name__ == "__main__":
    main()
