"""Generation throughput: tailor's diagnose path vs plain mlx_lm, and against the roofline.

Same model, the same prompts (the bundled problems through the student_solve prompt, as
diagnose sends them), same max_tokens; tokens/s counts generated tokens over wall time
including prompt processing, for every variant: a loop of plain mlx_lm.generate,
tailor's generate at max_batch 1 / 8 / 16, and plain mlx_lm.batch_generate at 8 / 16.
Prints ratios to the loop and to batch_generate at the same batch, and each variant as a
fraction of the decode roofline at its batch (app/roofline.py, with the bandwidth and
matmul rate measured in this run, as `tailor doctor` measures them; the wall time
includes prefill, so the fraction understates decode alone).

Then prefill: 16 prompts through tailor's path (BatchGenerator's prompt tokens/s) and
one forward of the 16 prompts padded to one batch, each as a fraction of the compute
roofline for prompts of that length.

    python benchmarks/generation.py [--model DIR] [--prompts 32] [--max-tokens 64] [--temperature 0]
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


def messages(n: int = 32) -> list[list[dict]]:
    """The first n bundled problems as diagnose renders them (student_solve)."""
    import json

    from app.prompts import load_prompt

    prompt = load_prompt("student_solve")
    with (Path(__file__).resolve().parents[1] / "data" / "problems.jsonl").open(encoding="utf-8") as f:
        questions = [json.loads(line)["question"] for line, _ in zip(f, range(n))]
    return [prompt.render(question=q) for q in questions]


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
    msgs = messages(a.prompts)
    ids = [chat_prompt(tokenizer, m) for m in msgs]
    items = [{"id": str(i), "messages": m, "max_tokens": a.max_tokens, "seed": i} for i, m in enumerate(msgs)]
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

    def ours(batch, share_prefix=True):
        return lambda: sum(
            r["n_tokens"]
            for r in generate(
                model,
                tokenizer,
                items,
                temperature=a.temperature,
                top_p=a.top_p,
                max_batch=batch,
                share_prefix=share_prefix,
            )
        )

    def plain_batch(batch):
        def run():
            out = batch_generate(
                model,
                tokenizer,
                ids,
                max_tokens=a.max_tokens,
                sampler=sampler,
                completion_batch_size=batch,
                prefill_batch_size=batch,
                return_token_ids=True,
            )
            return sum(len(t) for t in out.token_ids)

        return run

    list(generate(model, tokenizer, items[:2], max_batch=2))  # warm-up
    roof, shape, lim = roofline(info, sum(map(len, ids)) // len(ids) + a.max_tokens // 2)

    rows = [("mlx_lm.generate loop", plain_loop, 1)]
    for b in (1, 8, 16, 32):
        rows.append((f"tailor generate, max_batch {b}", ours(b), b))
        if b > 1:
            rows.append((f"mlx_lm.batch_generate, batch {b}", plain_batch(b), b))
        if b == 16:
            rows.append(("  the same, prefix not shared", ours(b, share_prefix=False), -b))
    base, tailor_at = None, {}
    for name, fn, batch in rows:
        tokens, seconds = timed(fn)
        tps = tokens / seconds
        base = base or tps
        limit = roof(min(abs(batch), len(ids)))
        print(
            f"{name:34s} {tokens:6d} tok {seconds:7.2f} s {tps:8.1f} tok/s  {tps / base:5.2f}x loop"
            f"   roofline {limit:7.1f} tok/s: {100 * tps / limit:4.0f} %"
        )
        if name.startswith("tailor"):
            tailor_at[batch] = tps
        else:
            if batch in tailor_at:  # tailor's row at this batch ran just before
                print(f"{'':34s} tailor / batch_generate at batch {batch}: {tailor_at[batch] / tps:.2f}x")
    prefill(model, tokenizer, info, items[:16], ids[:16])


def prefill(model, tokenizer, info, items, ids) -> None:
    """Prompt tokens/s at batch len(ids), tailor's path and one padded forward, vs compute.
    A shared prefix is computed once, so its effective rate (every prompt token over the
    wall time) can pass the roofline, which assumes every token is computed."""
    import mlx.core as mx

    from app.roofline import prefill_tps
    from mlx_backend.generate import generate

    mean = sum(map(len, ids)) // len(ids)
    _, shape, lim = roofline(info, mean)  # again: a shared machine's rate drifts over a long run
    limit = prefill_tps(shape, lim, mean)
    one = [dict(it, max_tokens=1) for it in items]
    print(f"prefill, {len(ids)} prompts of mean {mean} tokens: roofline {limit:.0f} tok/s")
    for share in (False, True):
        stats: dict = {}
        list(generate(model, tokenizer, one, max_batch=len(one), share_prefix=share))  # warm
        _, seconds = timed(
            lambda: list(generate(model, tokenizer, one, max_batch=len(one), stats=stats, share_prefix=share))
        )
        tps = sum(map(len, ids)) / seconds  # every prompt token, over the wall time of prefill + 1 token
        name = f"shared prefix of {stats['shared_prefix_tokens']} tokens" if share else "each prompt whole"
        print(f"  tailor generate, {name:28s} {tps:8.1f} prompt tok/s: {100 * tps / limit:4.0f} %")
    width = max(map(len, ids))
    batch = mx.array([p + [0] * (width - len(p)) for p in ids])
    mx.eval(model(batch))  # warm
    tokens, seconds = timed(lambda: mx.eval(model(batch)) or batch.size)
    print(
        f"  one padded forward [{len(ids)} x {width}] {tokens / seconds:8.1f} tok/s: {100 * tokens / seconds / limit:4.0f} %"
        f" (padding included; {sum(map(len, ids)) / tokens:.0%} of it real)"
    )


def roofline(info: dict, context: int):
    """(batch -> the decode roofline in tok/s, shape, limits) for this model, measured now."""
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
    return (lambda batch: decode_tps(shape, lim, batch, context, per)), shape, lim


if __name__ == "__main__":
    main()
