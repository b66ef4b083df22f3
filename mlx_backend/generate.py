"""Batched generation on mlx_lm's BatchGenerator (continuous batching).

Reproducibility: every item samples with its own PRNG key, ``mx.random.key(seed)``,
split once per generated token, and BatchGenerator calls a per-item sampler on that
item's row only. So the random stream an item sees depends on its seed alone, not on
the other items, their order, or the batch it lands in. The logits themselves are
bit-identical across batch compositions when the matmuls are (verified for the
mlx[cpu] wheel, float32 and bfloat16; tests/test_mlx_generate.py asserts it). On
Metal or with OpenBLAS, kernels chosen by batch shape can round differently, so two
batch compositions may then diverge at a near-tie; ``max_batch=1`` makes an item's
text depend only on (model, prompt, seed, max_tokens, temperature, top_p) everywhere.

Shared prefix: the prompts of one call (diagnose's, evaluate's) start with the same
instructions, often most of each prompt. Their KV cache is computed once and each item
starts from a copy, prefilling only its own tail. Chunked prefill is bit-identical to
one pass on the mlx[cpu] BLAS (as batching is) and may round differently with OpenBLAS
or Metal, so ``max_batch=1`` (the strict guarantee above) prefills each prompt whole.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Iterator

import mlx.core as mx
from mlx_lm.generate import BatchGenerator
from mlx_lm.models.cache import make_prompt_cache
from mlx_lm.sample_utils import apply_top_p

from .model import chat_prompt

DEFAULT_MAX_BATCH = 16
# KV-cache tokens (prompt + max_tokens, summed over the running batch) admitted at once;
# ~1 GB of bf16 KV for a 1.5B Qwen2.5, far less for smaller students.
DEFAULT_MAX_BATCH_TOKENS = 32768
# Below this many shared tokens a cache copy per item saves less than it costs.
MIN_SHARED_PREFIX = 16


class Cancelled(Exception):
    """Raised between decode steps when ``should_stop()`` turns true."""


@dataclass
class _Item:
    id: str
    prompt: list[int]
    max_tokens: int
    seed: int
    tokens: list[int] = field(default_factory=list)


def item_sampler(seed: int, temperature: float, top_p: float):
    """A sampler with its own key, so an item's draws ignore what else is in the batch."""
    key = mx.random.key(seed & 0xFFFFFFFFFFFFFFFF)

    def sample(logprobs: mx.array) -> mx.array:
        nonlocal key
        key, sub = mx.random.split(key)
        if 0.0 < top_p < 1.0:
            logprobs = apply_top_p(logprobs, top_p)
        return mx.random.categorical(logprobs * (1.0 / temperature), key=sub)

    return sample


def shared_prefix(prompts: list[list[int]]) -> int:
    """How many leading tokens every prompt shares, leaving each at least one of its own
    (the tail whose last position gives the first logits); 0 when too few to pay."""
    if len(prompts) < 2:
        return 0
    lo, hi = min(prompts), max(prompts)  # the set's common prefix is theirs
    n, limit = 0, min(map(len, prompts)) - 1
    while n < limit and lo[n] == hi[n]:
        n += 1
    return n if n >= MIN_SHARED_PREFIX else 0


def prefix_cache(model, tokens: list[int]) -> list:
    """The model's KV cache after `tokens`, computed once, to be copied per item."""
    cache = make_prompt_cache(model)
    model(mx.array(tokens)[None], cache=cache)
    mx.eval([c.state for c in cache])
    return cache


def _prepare(model, tokenizer, raw: dict, limit: int | None, context: int | None, default_seed: int):
    """Either an _Item or an error result for one job item."""
    item_id = str(raw.get("id"))
    seed = raw.get("seed")
    seed = default_seed if seed is None else seed
    try:
        prompt = chat_prompt(tokenizer, raw.get("messages"))
        max_tokens = int(raw.get("max_tokens", 256))
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError("seed must be an integer")
    except (ValueError, TypeError) as e:
        return {"id": item_id, "error": f"bad item: {e}"}
    if max_tokens <= 0:
        return {"id": item_id, "error": "max_tokens must be > 0"}
    if limit is not None and len(prompt) > limit:
        why = "max_prompt_tokens" if limit != context else "the model's context (max_position_embeddings)"
        return {
            "id": item_id,
            "prompt_tokens": len(prompt),
            "error": f"prompt has {len(prompt)} tokens, more than {limit} allowed by {why}",
        }
    if context is not None:
        if len(prompt) >= context:
            return {
                "id": item_id,
                "prompt_tokens": len(prompt),
                "error": f"prompt has {len(prompt)} tokens, no room left in the context of {context}",
            }
        max_tokens = min(max_tokens, context - len(prompt))
    return _Item(item_id, prompt, max_tokens, seed)


def generate(
    model,
    tokenizer,
    items: list[dict],
    *,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_prompt_tokens: int | None = None,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    context: int | None = None,
    seed: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
    stats: dict | None = None,
    share_prefix: bool = True,
) -> Iterator[dict]:
    """Yield one result dict per item, in the order items finish.

    items: ``{"id", "messages", "max_tokens", "seed"}``. Results carry ``text``,
    ``n_tokens`` (generated, without the stop token), ``prompt_tokens``,
    ``finish_reason`` ("stop" at EOS, "length" at max_tokens or the context end) and
    ``seed``; an item that cannot run gets ``{"id", "error"}`` and the rest continue.
    ``context`` defaults to the model's max_position_embeddings. ``share_prefix``: prefill
    the prompts' common prefix once (not at ``max_batch`` 1).
    """
    if context is None:
        context = getattr(getattr(model, "args", None), "max_position_embeddings", None)
    limit = min(x for x in (context, max_prompt_tokens) if x) if (context or max_prompt_tokens) else None
    max_batch = max(1, int(max_batch))

    pending: list[_Item] = []
    for raw in items:
        prepared = _prepare(model, tokenizer, raw, limit, context, seed)
        if isinstance(prepared, dict):
            yield prepared
        else:
            pending.append(prepared)
    # Shortest first: items admitted together have similar lengths, so little padding.
    pending.sort(key=lambda it: len(it.prompt))
    pending.reverse()  # pop() from the end
    shared = shared_prefix([it.prompt for it in pending]) if share_prefix and max_batch > 1 else 0
    head = prefix_cache(model, pending[0].prompt[:shared]) if shared else None

    gen = BatchGenerator(
        model,
        stop_tokens=[[t] for t in tokenizer.eos_token_ids],
        completion_batch_size=max_batch,
        prefill_batch_size=max_batch,
    )
    active: dict[int, _Item] = {}
    kv_tokens = 0
    try:
        with gen.stats() as batch_stats:
            while pending or active:
                if should_stop():
                    raise Cancelled()
                # Admit while the batch has a free row and the KV budget allows;
                # a single item is always admitted so nothing starves.
                while pending and len(active) < max_batch:
                    need = len(pending[-1].prompt) + pending[-1].max_tokens
                    if active and kv_tokens + need > max_batch_tokens:
                        break
                    it = pending.pop()
                    sampler = item_sampler(it.seed, temperature, top_p) if temperature > 0 else None
                    (uid,) = gen.insert(
                        [it.prompt[shared:]],
                        [it.max_tokens],
                        caches=[copy.deepcopy(head)] if head else None,
                        all_tokens=[it.prompt[:shared]] if head else None,
                        samplers=[sampler],
                    )
                    active[uid] = it
                    kv_tokens += need
                for r in gen.next_generated():
                    it = active[r.uid]
                    if r.finish_reason != "stop":
                        it.tokens.append(r.token)
                    if r.finish_reason is None:
                        continue
                    del active[r.uid]
                    kv_tokens -= len(it.prompt) + it.max_tokens
                    yield {
                        "id": it.id,
                        "text": tokenizer.decode(it.tokens),
                        "n_tokens": len(it.tokens),
                        "prompt_tokens": len(it.prompt),
                        "finish_reason": r.finish_reason,
                        "seed": it.seed,
                    }
    finally:
        gen.close()
        if stats is not None and "batch_stats" in locals():
            stats.update(
                prompt_tokens=batch_stats.prompt_tokens,  # prefilled: the shared prefix once is not counted
                shared_prefix_tokens=shared,
                generation_tokens=batch_stats.generation_tokens,
                prompt_tps=batch_stats.prompt_tps,
                generation_tps=batch_stats.generation_tps,
            )
