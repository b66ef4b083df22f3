"""Does mx.compile speed up a decode step? The compilable part of it, side by side.

BatchGenerator's decode step cannot be compiled whole: the KV cache it writes changes
shape every step. What can be compiled is each block's feed-forward half (the norm, the
MLP and the residual: fixed shapes for a given batch) and the input norm, around the
uncompiled attention. This times decode steps at batch 1 and 16 on the student both ways
(mlx_lm already compiles its elementwise activations, so this measures what is left),
and checks the compiled model's logits against the plain one's.

    python benchmarks/compile_decode.py [--model DIR] [--steps 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generation import as_a_job, model_dir  # noqa: E402

CONTEXT = 100  # prompt tokens in the cache before the timed steps


def compiled_blocks(model) -> None:
    """Each decoder block's call with its feed-forward half and input norm compiled."""
    import mlx.core as mx

    for block in model.layers:
        ffn = mx.compile(lambda h, b=block: h + b.mlp(b.post_attention_layernorm(h)))
        norm = mx.compile(block.input_layernorm)

        def call(x, mask=None, cache=None, b=block, ffn=ffn, norm=norm):
            return ffn(x + b.self_attn(norm(x), mask, cache))

        block.__call__ = call  # instance attribute: looked up by the model's loop below
    inner = model.model

    def forward(inputs, cache=None, **kw):
        from mlx_lm.models.base import create_attention_mask

        h = inner.embed_tokens(inputs)
        mask = create_attention_mask(h, cache[0] if cache else None)
        for block, c in zip(inner.layers, cache or [None] * len(inner.layers), strict=True):
            h = block.__call__(h, mask, c)
        h = inner.norm(h)
        return inner.embed_tokens.as_linear(h) if model.args.tie_word_embeddings else model.lm_head(h)

    model.forward = forward


def step_seconds(call, batch: int, steps: int) -> tuple[float, object]:
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(MODEL)
    mx.eval(call(mx.zeros((batch, CONTEXT), dtype=mx.int32) + 7, cache=cache))
    y = mx.zeros((batch, 1), dtype=mx.int32) + 11
    for _ in range(3):
        out = call(y, cache=cache)
        mx.eval(out)
    tic = time.perf_counter()
    for _ in range(steps):
        out = call(y, cache=cache)
        mx.eval(out)
    return (time.perf_counter() - tic) / steps, out


def main() -> None:
    as_a_job()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model dir (default: build the ~20M tiny model)")
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    import mlx.core as mx

    from mlx_backend.model import load_model

    global MODEL
    MODEL, _, info = load_model(model_dir(a.model), dtype="auto")
    print(f"model {info['model_path']} ({info['dtype']}, {info['device']}), {CONTEXT} tokens of context")
    if not hasattr(MODEL, "model") or not hasattr(MODEL.model.layers[0], "post_attention_layernorm"):
        sys.exit("this measurement knows llama-style blocks only")
    plain = {}
    for batch in (1, 16):
        plain[batch] = step_seconds(MODEL, batch, a.steps)
    compiled_blocks(MODEL)
    for batch in (1, 16):
        (t_plain, out_plain), (t_comp, out_comp) = plain[batch], step_seconds(MODEL.forward, batch, a.steps)
        diff = mx.abs(out_plain - out_comp).max().item()
        print(
            f"batch {batch:2d}: plain {1000 * t_plain:7.1f} ms a step, compiled blocks {1000 * t_comp:7.1f} ms: "
            f"{t_plain / t_comp:.3f}x (largest logit difference {diff:.2e})"
        )


if __name__ == "__main__":
    main()
