"""`tailor demo`: the project it prepares (the sweep itself is covered by tests/test_sweep.py)."""

import pytest

from app.config import DB_NAME, load_config
from app.demo import DEMO_SWEEP, prepare
from app.pipeline.batch import open_sweep
from app.store import Store


def test_prepare_builds_an_offline_project_and_is_idempotent(tmp_path):
    pytest.importorskip("mlx.core")
    said = []
    d = tmp_path / "demo"
    prepare(d, said.append)
    cfg = load_config(d)
    assert cfg.student.model == "model" and (d / "model" / "config.json").exists()
    assert (cfg.judge.provider, cfg.teachers.short.provider, cfg.teachers.long.provider) == ("rules", "reference",
                                                                                           "reference")
    assert cfg.student.max_tokens == 64 and cfg.eval.tiers["R6"].max_tokens == 12
    assert cfg.eval.tiers["R6"].instruction  # the default instruction is kept, only the budget shrinks
    with Store(d / DB_NAME) as store:
        assert store.count("problems") == 600
    sweep = open_sweep(d, DEMO_SWEEP)
    assert [c.label for c in sweep.cells] == ["adaptive", "only-long"] and sweep.section.seeds == [0, 1]
    said.clear()
    prepare(d, said.append)
    assert said == []  # nothing rebuilt, nothing imported twice
