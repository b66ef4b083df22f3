"""Log-likelihood of a response for this student: PPL, conditional PPL and IFD.

For a pair (prompt messages Q, response A), with A tokenised on its own
(``encode(A, add_special_tokens=False)``, so both scores cover the same tokens):

* conditional: ``chat_prompt(Q) + A`` — A is the assistant turn after the
  chat-templated prompt (no end-of-turn token is scored);
* unconditional: ``[d] + A`` — Cherry-LLM's "direct answer score" (loss on the
  answer alone). There it is the raw answer after the tokenizer's BOS; models
  without a BOS (Qwen) use ``<|endoftext|>``, their pre-training document
  separator, else EOS, so that A's first token is scored in both cases.

``cond_logprob`` / ``uncond_logprob`` are mean per-token natural-log likelihoods over
A; ``cppl = exp(-cond)``, ``ppl = exp(-uncond)``, ``ifd = cppl / ppl`` (IFD, Li et al.
2024, as in Cherry-LLM's code: ratio of perplexities).
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import mlx.core as mx

from .generate import Cancelled
from .model import chat_prompt

DEFAULT_MAX_BATCH = 16
# Full float32 logits of a batch, B*L*vocab*4 bytes, are the peak; cap them near this.
LOGITS_BUDGET_BYTES = 1.5e9
# Largest padding overhead accepted when packing rows of different lengths.
PAD_SLACK = 0.1


def doc_start_id(tokenizer) -> int:
    """The token the unconditional response is scored after (see module doc)."""
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if isinstance(eot, int) and eot != tokenizer.unk_token_id:
        return eot
    return tokenizer.eos_token_id


def default_max_batch_tokens(model) -> int:
    vocab = getattr(getattr(model, "args", None), "vocab_size", 32000)
    return int(min(16384, max(256, LOGITS_BUDGET_BYTES / (vocab * 4))))


def _row_logprobs(model, rows: list[list[int]], starts: list[int]) -> list[tuple[float, int]]:
    """(sum of log p(token), n) over tokens rows[i][starts[i]:], one forward pass."""
    length = max(len(r) for r in rows)
    inputs = mx.array([r + [0] * (length - len(r)) for r in rows])
    # Right padding needs no attention mask: causal attention never looks ahead.
    logits = model(inputs[:, :-1]).astype(mx.float32)
    targets = inputs[:, 1:]
    logprobs = mx.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    logprobs = logprobs - mx.logsumexp(logits, axis=-1)
    pos = mx.arange(1, length)[None]
    lens = mx.array([len(r) for r in rows])[:, None]
    mask = (pos >= mx.array(starts)[:, None]) & (pos < lens)
    sums = mx.where(mask, logprobs, 0.0).sum(axis=1)
    mx.eval(sums)
    return [(float(s), len(r) - st) for s, r, st in zip(sums.tolist(), rows, starts)]


def score(
    model,
    tokenizer,
    items: list[dict],
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_batch_tokens: int | None = None,
    context: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    stats: dict | None = None,
) -> Iterator[dict]:
    """Yield one result per item ``{"id", "messages", "response"}`` as soon as both its rows are scored.

    Rows (two per item) are sorted by length and packed up to ``max_batch`` rows,
    ``max_batch_tokens`` padded tokens and PAD_SLACK padding overhead per forward pass.
    """
    if context is None:
        context = getattr(getattr(model, "args", None), "max_position_embeddings", None)
    max_batch_tokens = max_batch_tokens or default_max_batch_tokens(model)
    start_id = doc_start_id(tokenizer)

    rows = []  # (tokens, start, item_index, kind)
    pending: dict[int, dict] = {}
    for i, raw in enumerate(items):
        item_id = str(raw.get("id"))
        response = raw.get("response")
        try:
            prompt = chat_prompt(tokenizer, raw.get("messages"))
            if not isinstance(response, str):
                raise ValueError("response must be a string")
        except (ValueError, TypeError) as e:
            yield {"id": item_id, "error": f"bad item: {e}"}
            continue
        answer = tokenizer.encode(response, add_special_tokens=False)
        if not answer:
            yield {"id": item_id, "error": "empty response: nothing to score"}
            continue
        if context is not None and len(prompt) + len(answer) > context:
            yield {
                "id": item_id,
                "error": f"prompt + response have {len(prompt) + len(answer)} tokens, "
                f"more than the model's context of {context}",
            }
            continue
        pending[i] = {"id": item_id, "n_tokens": len(answer), "prompt_tokens": len(prompt)}
        rows.append((prompt + answer, len(prompt), i, "cond"))
        rows.append(([start_id] + answer, 1, i, "uncond"))
    rows.sort(key=lambda r: len(r[0]))

    n_scored = 0
    k = 0
    while k < len(rows):
        if should_stop():
            raise Cancelled()
        # Rows are sorted, so the batch's padded width is its last row's length. Padding
        # is pure waste where the forward pass is compute-bound (CPU), so cap it too.
        end, real = k + 1, len(rows[k][0])
        while end < len(rows) and end - k < max_batch:
            width, real_next = len(rows[end][0]), real + len(rows[end][0])
            padded = (end - k + 1) * width
            if padded > max_batch_tokens or padded > (1 + PAD_SLACK) * real_next:
                break
            end, real = end + 1, real_next
        batch = rows[k:end]
        k = end
        sums = _row_logprobs(model, [r[0] for r in batch], [r[1] for r in batch])
        n_scored += sum(len(r[0]) for r in batch)
        for (total, n), (_, _, i, kind) in zip(sums, batch):
            res = pending[i]
            res[kind] = total / n
            if "cond" in res and "uncond" in res:
                del pending[i]
                yield _finish(res)
    if stats is not None:
        stats["scored_tokens"] = n_scored


def _finish(res: dict) -> dict:
    cond, uncond = res.pop("cond"), res.pop("uncond")
    if not (math.isfinite(cond) and math.isfinite(uncond)):
        return {"id": res["id"], "error": "non-finite log-likelihood (model overflow?)"}
    try:
        cppl, ppl = math.exp(-cond), math.exp(-uncond)
    except OverflowError:
        return {"id": res["id"], "error": "perplexity overflows a float"}
    return {**res, "cond_logprob": cond, "uncond_logprob": uncond, "ppl": ppl, "cppl": cppl, "ifd": cppl / ppl}
