"""Scoring throughput: (prompt, response) pairs per second, batched vs one by one.

Both use mlx_backend.score (two forward passes per pair: conditional and
unconditional); one by one is max_batch=1. Prints the ratio.

    python benchmarks/scoring.py [--model DIR] [--pairs 64] [--max-batch 16]
"""

from __future__ import annotations

import argparse

from generation import model_dir, prompts, timed  # same model and prompts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model dir or repo (default: build the ~20M tiny model)")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--pairs", type=int, default=32)
    p.add_argument("--max-batch", type=int, default=16)
    a = p.parse_args()

    from mlx_backend.model import load_model
    from mlx_backend.score import score

    model, tokenizer, info = load_model(model_dir(a.model), dtype=a.dtype)
    items = []
    for i, q in enumerate(prompts(a.pairs)):
        steps = " ".join(f"Step {k}: we add {k + i} and {2 * k} to get {3 * k + i}." for k in range(1 + i % 6))
        items.append(
            {"id": str(i), "messages": [{"role": "user", "content": q}], "response": f"{steps} The answer is {i + 7}."}
        )
    print(f"model {info['model_path']} ({info['dtype']}, {info['device']}), {len(items)} pairs")

    list(score(model, tokenizer, items[:2]))  # warm-up
    single, t1 = timed(lambda: {r["id"]: r for r in score(model, tokenizer, items, max_batch=1)})
    batched, tb = timed(lambda: {r["id"]: r for r in score(model, tokenizer, items, max_batch=a.max_batch)})
    worst = max(abs(single[k]["ifd"] - batched[k]["ifd"]) / single[k]["ifd"] for k in single)
    print(f"one by one      {len(items) / t1:7.2f} pairs/s  ({t1:.2f} s)")
    print(f"max_batch {a.max_batch:<4d}  {len(items) / tb:7.2f} pairs/s  ({tb:.2f} s)")
    print(f"batched / one by one: {t1 / tb:.2f}x   (largest relative IFD difference {worst:.1e})")


if __name__ == "__main__":
    main()
