"""Packed training batches: several examples in one fixed-length row, none seeing another.

ACoTD trains with packing; mlx_lm pads each example to its batch's longest. Here the
examples are placed into rows of `row_len` tokens (first fit, longest first: a fixed,
seeded-free plan, so a resumed run sees the same rows), and each row carries a segment
id per token. Attention is confined to each example by a block-diagonal causal mask,
handed to the model the one way mlx_lm's models take a mask from outside: through the
per-layer cache objects' ``make_mask`` (the shim below keeps nothing and has offset 0).
Positions run on across a row; rotary embeddings depend only on the distance between two
tokens, so an example's attention is what it would be alone. The loss is on assistant
tokens only, averaged over them, as mlx_lm's default loss is.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np


def plan(lengths: list[int], row_len: int) -> list[list[int]]:
    """Example indices per row: first fit, longest first; an example longer than a row
    gets a row of its own (truncated, as mlx_lm truncates)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        n = min(lengths[i], row_len)
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(row_len - n)
    return rows


def pack_row(examples: list[tuple[list[int], int]], row_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, segment ids (0 = padding, 1.. per example), loss weights) of one row.
    An example is (tokens, prompt length): its loss covers the tokens after the prompt."""
    tokens = np.zeros(row_len, np.int32)
    segments = np.zeros(row_len, np.int32)
    weights = np.zeros(row_len, np.float32)
    at = 0
    for s, (toks, offset) in enumerate(examples, 1):
        toks = list(toks)[: row_len - at]
        tokens[at : at + len(toks)] = toks
        segments[at : at + len(toks)] = s
        # a token is a target when it is predicted from the one before it, in its example
        weights[at + max(offset, 1) : at + len(toks)] = 1.0
        at += len(toks)
    return tokens, segments, weights


def packed_batches(dataset, batch_size: int, row_len: int, loop: bool = False, seed: int | None = None):
    """Batches of packed rows, (tokens, segments, weights), in an order shuffled with
    numpy's global RNG (as mlx_lm's iterate_batches, so a resumed run replays it)."""
    rows = plan(token_lengths(dataset), row_len)
    if len(rows) < batch_size:
        raise ValueError(f"{len(rows)} packed rows of {row_len} tokens, fewer than batch_size={batch_size}")
    # the last batch may be smaller: the plan is fixed, so a row left out would never train
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    if seed is not None:
        np.random.seed(seed)
    while True:
        for b in np.random.permutation(len(batches)):
            packed = [pack_row([_example(dataset[j]) for j in row], row_len) for row in batches[b]]
            yield tuple(mx.array(np.stack(part)) for part in zip(*packed, strict=True))
        if not loop:
            break


def rows_per_epoch(dataset, row_len: int) -> int:
    return len(plan(token_lengths(dataset), row_len))


def token_lengths(dataset) -> list[int]:
    """Each example's length in tokens. Not CacheDataset.itemlen: that is the length of
    the raw row (its number of keys for a chat row), not of its tokens."""
    return [len(_example(dataset[i])[0]) for i in range(len(dataset))]


def _example(item) -> tuple[list[int], int]:
    return (item[0], item[1]) if len(item) == 2 and not isinstance(item[1], list) else (item, 0)


class _MaskOnly:
    """A per-layer 'cache' that stores nothing and supplies the attention mask."""

    offset = 0

    def __init__(self, mask: mx.array):
        self.mask = mask

    def make_mask(self, n: int, return_array: bool = False, window_size: int | None = None) -> mx.array:
        return self.mask

    def update_and_fetch(self, keys: mx.array, values: mx.array):
        return keys, values


def block_causal_mask(segments: mx.array) -> mx.array:
    """(B, 1, L, L) booleans: a token attends to earlier tokens of its own example."""
    n = segments.shape[1]
    causal = mx.arange(n)[:, None] >= mx.arange(n)[None, :]
    same = segments[:, :, None] == segments[:, None, :]
    return mx.logical_and(same, causal)[:, None]


def packed_logits(model, tokens: mx.array, segments: mx.array) -> mx.array:
    mask = block_causal_mask(segments)
    layers = len(model.layers)
    return model(tokens, cache=[_MaskOnly(mask) for _ in range(layers)])


def padded_loss(model, batch: mx.array, lengths: mx.array):
    """mlx_lm's default_loss for padded batches without its off-by-one: mlx_lm 0.32 keeps
    targets up to and including step == length, one past each row's last token, so every
    example is also trained to predict the padding id after it. That extra, easy target
    lowers a padded run's training and validation loss and makes it incomparable with a
    packed run's, which never has it; here a target is a token of the example."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits = model(inputs)
    steps = mx.arange(1, targets.shape[1] + 1)
    mask = mx.logical_and(steps >= lengths[:, 0:1], steps < lengths[:, 1:])
    ce = nn.losses.cross_entropy(logits, targets) * mask
    ntoks = mask.sum()
    return ce.astype(mx.float32).sum() / ntoks, ntoks


def packed_loss(model, tokens: mx.array, segments: mx.array, weights: mx.array):
    """mlx_lm's loss contract, (mean loss, tokens counted), for a packed batch."""
    logits = packed_logits(model, tokens[:, :-1], segments[:, :-1])
    w = weights[:, 1:]
    ce = nn.losses.cross_entropy(logits, tokens[:, 1:]) * w
    ntoks = w.sum()
    return ce.astype(mx.float32).sum() / ntoks, ntoks
