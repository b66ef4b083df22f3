"""Packed training rows: no example attends to another, each sees what it would alone,
and the packed loss is the per-token mean over every example's assistant tokens."""

from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    import mlx_lm

    from mlx_backend.model import cast_floating

    m, _ = mlx_lm.load(str(tiny_model_dir))
    cast_floating(m, mx.float32)
    return m


EXAMPLES = [([5, 9, 13, 2, 44, 7], 3), ([8, 3, 3, 91, 6, 6, 12, 4, 77], 4), ([30, 31, 32, 33], 1)]


def alone(model, tokens):
    out = model(mx.array([tokens])).astype(mx.float32)
    mx.eval(out)
    return out[0]


def test_plan_fills_rows_longest_first_and_never_overflows():
    from mlx_backend.packing import plan

    rows = plan([6, 9, 4, 12, 3], row_len=13)
    assert rows == [[3], [1, 2], [0, 4]]  # 12 | 9 + 4 | 6 + 3
    assert plan([20, 2], row_len=8) == [[0], [1]]  # too long for a row: its own, truncated
    assert sorted(i for r in plan([5] * 7, 11) for i in r) == list(range(7))


def test_no_example_attends_to_another_and_each_sees_what_it_would_alone(model):
    from mlx_backend.packing import pack_row, packed_logits

    tokens, segments, _ = pack_row(EXAMPLES, 24)
    got = packed_logits(model, mx.array(tokens[None]), mx.array(segments[None])).astype(mx.float32)[0]
    changed = [EXAMPLES[0], ([1, 2, 3, 4, 5, 6, 7, 8, 9], 4), EXAMPLES[2]]  # the middle one rewritten
    t2, s2, _ = pack_row(changed, 24)
    got2 = packed_logits(model, mx.array(t2[None]), mx.array(s2[None])).astype(mx.float32)[0]
    at = 0
    for i, (toks, _) in enumerate(EXAMPLES):
        span = slice(at, at + len(toks))
        if i != 1:  # the others' logits do not move when one example changes
            assert mx.array_equal(got[span], got2[span]).item()
        # and equal the example's logits alone (rotary positions: only distances count)
        assert mx.allclose(got[span], alone(model, toks), atol=1e-4).item()
        at += len(toks)


def test_packed_loss_is_the_mean_over_every_examples_assistant_tokens(model):
    import mlx.nn as nn

    from mlx_backend.packing import pack_row, packed_loss

    rows = [pack_row(EXAMPLES[:2], 16), pack_row(EXAMPLES[2:], 16)]
    tokens, segments, weights = (mx.array(np.stack(p)) for p in zip(*rows, strict=True))
    loss, n = packed_loss(model, tokens, segments, weights)
    total, count = 0.0, 0
    for toks, offset in EXAMPLES:  # each example alone: targets from its prompt's end
        logits = alone(model, toks)[:-1]
        ce = nn.losses.cross_entropy(logits, mx.array(toks[1:]))
        keep = ce[max(offset, 1) - 1 :]
        total += keep.sum().item()
        count += keep.size
    assert n.item() == count == (6 - 3) + (9 - 4) + (4 - 1)
    assert loss.item() == pytest.approx(total / count, rel=1e-5)


def test_packed_batches_cover_the_data_in_a_seeded_order(tiny_model_dir):
    from mlx_backend.packing import packed_batches, rows_per_epoch

    data = [(list(range(1, 1 + n)), 1) for n in (5, 7, 3, 9, 4, 6)]
    first = [t.tolist() for t, _, _ in packed_batches(data, 2, 12, seed=3)]
    again = [t.tolist() for t, _, _ in packed_batches(data, 2, 12, seed=3)]
    assert first == again and rows_per_epoch(data, 12) == 3  # 9+3, 7+5, 6+4
    assert sorted(len(batch) for batch in first) == [1, 2]  # the last batch is smaller, not dropped
    seen = sorted(n for batch in first for row in batch for n in [sum(1 for x in row if x)])
    assert sum(seen) == 5 + 7 + 3 + 9 + 4 + 6


def test_rows_are_planned_on_token_lengths_not_on_itemlen():
    from mlx_backend.packing import rows_per_epoch

    class LikeCacheDataset(list):  # mlx_lm's CacheDataset.itemlen is the raw row's len()
        def itemlen(self, i):
            return 1

    data = LikeCacheDataset([(list(range(1, 11)), 2)] * 4)
    assert rows_per_epoch(data, 12) == 4  # 10 tokens each: one per row, not all four in one


def test_an_epoch_of_packed_rows_takes_the_last_smaller_batch_too():
    from mlx_backend.train import plan_iters

    p = {"iters": None, "epochs": 1}
    # 3 rows in batches of 2: packed_batches yields 2 batches (the last of 1 row), and an
    # epoch must take both, or one batch of the fixed plan would be skipped every epoch
    assert plan_iters(p, 3, 2, keep_last=True) == 2
    assert plan_iters(p, 3, 2) == 1  # mlx_lm's padded batches drop a last partial batch
    assert plan_iters({"iters": None, "epochs": 2}, 14, 4, keep_last=True) == 8


def test_padded_and_packed_losses_count_the_same_targets(model):
    """mlx_lm 0.32's default_loss also counts one padding target after every row; the
    padded loss tailor trains and validates with counts the example's own tokens, as the
    packed loss does, so the two agree on the same examples."""
    from mlx_lm.tuner.trainer import default_loss

    from mlx_backend.packing import pack_row, packed_loss, padded_loss

    width = 1 + max(len(t) for t, _ in EXAMPLES)  # padded, as mlx_lm pads every batch
    batch = mx.array([t + [0] * (width - len(t)) for t, _ in EXAMPLES])
    lengths = mx.array([[offset, len(t)] for t, offset in EXAMPLES])
    loss, n = padded_loss(model, batch, lengths)
    rows = [pack_row(EXAMPLES[:2], 16), pack_row(EXAMPLES[2:], 16)]
    tokens, segments, weights = (mx.array(np.stack(p)) for p in zip(*rows, strict=True))
    packed, m = packed_loss(model, tokens, segments, weights)
    assert n.item() == m.item() == (6 - 3) + (9 - 4) + (4 - 1)
    assert loss.item() == pytest.approx(packed.item(), rel=1e-5)
    assert default_loss(model, batch, lengths)[1].item() == n.item() + len(EXAMPLES)  # mlx_lm's extra target a row
