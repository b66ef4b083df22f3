"""Sizing rules from the export's token lengths (the measuring job itself: test_chain)."""

import json
from types import SimpleNamespace

from app.pipeline.token_lengths import eval_budget_warning, messages


def _tokens(**kw):
    t = dict(
        examples=10,
        longest=900,
        longest_response=700,
        context=2048,
        max_seq_length=900,
        fitted=True,
        over_max_seq_length=0,
        generation_budget=1024,
        over_generation_budget=0,
    )
    return {**t, **kw}


def test_export_lines_name_each_limit_that_is_exceeded():
    assert len(messages(_tokens())) == 1
    lines = messages(
        _tokens(
            max_seq_length=512, fitted=False, over_max_seq_length=3, generation_budget=256, over_generation_budget=4
        )
    )
    assert "max_seq_length 512 (from [train], context 2048)" in lines[0]
    assert "3 examples are longer than max_seq_length 512" in lines[1]
    assert "4 responses are longer" in lines[2] and "set max_tokens = 700" in lines[2]


def test_eval_warns_when_a_run_was_trained_on_responses_its_budget_cuts(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"tokens": _tokens()}))
    run = SimpleNamespace(id="r1", config={"data": {"train": str(tmp_path / "train.jsonl")}})
    assert "up to 700 tokens" in eval_budget_warning(run, 512)
    assert eval_budget_warning(run, 700) is None
    (tmp_path / "manifest.json").write_text(json.dumps({"tokens": None}))  # not measured: nothing to say
    assert eval_budget_warning(run, 10) is None


def test_the_fitted_length_never_exceeds_the_context():
    import pytest

    pytest.importorskip("mlx.core")
    from mlx_backend.train import fit_length

    assert fit_length([10, 300, 40], 8192) == 300
    assert fit_length([10, 300, 40], 256) == 256
    assert fit_length([10, 300], None) == 300
