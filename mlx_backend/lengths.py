"""Token lengths of chat examples exactly as training will see them (mlx_lm's ChatDataset
with the prompt masked): the whole example and the assistant turn. Export uses them to
size max_seq_length and to check the student's generation budget before anything trains."""

from __future__ import annotations

from collections.abc import Callable, Iterator


def lengths(tokenizer, items: list[dict], should_stop: Callable[[], bool], stats: dict) -> Iterator[dict]:
    from mlx_lm.tuner.datasets import ChatDataset

    from .generate import Cancelled

    render = ChatDataset([], tokenizer, mask_prompt=True).process
    for item in items:
        if should_stop():
            raise Cancelled()
        try:
            tokens, offset = render({"messages": item["messages"]})
        except Exception as e:  # one malformed example does not hide the others' lengths
            yield {"id": item["id"], "error": " ".join(str(e).split()) or type(e).__name__}
            continue
        stats["tokens"] = stats.get("tokens", 0) + len(tokens)
        yield {"id": item["id"], "tokens": len(tokens), "response_tokens": len(tokens) - offset}
