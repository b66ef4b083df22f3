"""Which form of a GGUF student is faster here: dense float32/float16, or MLX quantized layers.

Converts the same GGUF (default: the fetched SmolLM2-135M-Instruct) to each form, then
measures decode throughput at batch 1 and batch 8 and prompt processing, side by side in
one run; prints tok/s and the ratio to keep-quantized. `dtype = "auto"` (app/models.py)
follows what this prints: on the Linux CPU with OpenBLAS preloaded, float32 wins by a
wide margin (quantized matmul bypasses BLAS). Run it on a Mac to measure Metal.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
        python benchmarks/gguf_dtype.py [--gguf FILE] [--tokens 48]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FORMS = ("keep-quantized", "float32", "float16")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", type=Path, help="a GGUF file (default: tailor model fetch smollm2-135m)")
    p.add_argument("--tokens", type=int, default=48, help="generated tokens per prompt")
    p.add_argument("--forms", default=",".join(FORMS))
    a = p.parse_args()

    import mlx.core as mx

    from app import models
    from benchmarks.generation import prompts
    from mlx_backend.generate import generate
    from mlx_backend.model import chat_prompt, load_model

    gguf = a.gguf or models.fetch("smollm2-135m", print)
    print(f"{gguf.name} on {mx.default_device()}, {a.tokens} tokens per prompt")
    rows = []
    for form in a.forms.split(","):
        model, tokenizer, info = load_model(str(models.convert(gguf, form, print)), dtype="keep-quantized")
        questions = prompts(8)
        items = [
            {"id": str(i), "messages": [{"role": "user", "content": q}], "max_tokens": a.tokens, "seed": i}
            for i, q in enumerate(questions)
        ]
        list(generate(model, tokenizer, items[:1], max_batch=1, temperature=0.0))  # warm-up
        result = {"form": form}
        for batch in (1, 8):
            chosen = items[:batch] if batch == 1 else items
            tic = time.perf_counter()
            n = sum(r["n_tokens"] for r in generate(model, tokenizer, chosen, max_batch=batch, temperature=0.0))
            result[f"decode_b{batch}"] = n / (time.perf_counter() - tic)
        long_prompt = chat_prompt(tokenizer, [{"role": "user", "content": " ".join(questions)}])
        tic = time.perf_counter()
        mx.eval(model(mx.array([long_prompt])))
        result["prefill"] = len(long_prompt) / (time.perf_counter() - tic)
        rows.append(result)
        del model
    base = rows[0]
    print(f"{'form':16s} {'decode b1':>18s} {'decode b8':>18s} {'prefill':>20s}")
    for r in rows:
        cells = [f"{r[k]:8.1f} ({r[k] / base[k]:5.2f}x)" for k in ("decode_b1", "decode_b8", "prefill")]
        print(f"{r['form']:16s} " + " ".join(f"{c:>18s}" for c in cells) + "  tok/s (ratio to " + base["form"] + ")")


if __name__ == "__main__":
    main()
