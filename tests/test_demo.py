"""`tailor demo`: the projects it prepares (the sweeps themselves are covered by tests/test_sweep.py)."""

import pytest

from app.config import DB_NAME, load_config
from app.demo import REAL, TINY, demo_config_text, prepare
from app.errors import TailorError
from app.pipeline.batch import open_sweep
from app.store import Store


def test_prepare_tiny_builds_an_offline_project_and_is_idempotent(tmp_path):
    pytest.importorskip("mlx.core")
    said = []
    d = tmp_path / "demo"
    prepare(d, said.append, TINY)
    cfg = load_config(d)
    assert cfg.student.model == "model" and (d / "model" / "config.json").exists()
    assert (cfg.judge.provider, cfg.teachers.short.provider, cfg.teachers.long.provider) == (
        "rules",
        "reference",
        "reference",
    )
    assert cfg.student.max_tokens == 64 and cfg.eval.tiers["R6"].max_tokens == 12
    assert cfg.eval.tiers["R6"].instruction  # the default instruction is kept, only the budget shrinks
    with Store(d / DB_NAME) as store:
        assert store.count("problems") == 600
    sweep = open_sweep(d, TINY.sweep)
    assert [c.label for c in sweep.cells] == ["adaptive", "only-long"] and sweep.section.seeds == [0, 1]
    said.clear()
    prepare(d, said.append, TINY)
    assert said == []  # nothing rebuilt, nothing imported twice


def test_the_real_demo_config_is_smollm2_with_the_steps_judge_and_base_seeds(tmp_path):
    d = tmp_path / "demo"
    d.mkdir()
    (d / "tailor.toml").write_text(demo_config_text(REAL), encoding="utf-8")
    cfg = load_config(d)
    assert cfg.student.model == "smollm2-135m" and cfg.judge.provider == "steps"
    assert (cfg.teachers.short.provider, cfg.teachers.long.provider) == ("reference", "reference")
    assert cfg.eval.seeds is None  # no override: the base at every training seed of the sweep
    sweep = open_sweep(d, REAL.sweep)
    assert [c.label for c in sweep.cells] == ["adaptive", "only-long"] and sweep.section.seeds == [0, 1]


def test_a_demo_directory_of_the_other_kind_is_refused(tmp_path):
    d = tmp_path / "demo"
    d.mkdir()
    (d / "tailor.toml").write_text(demo_config_text(TINY), encoding="utf-8")
    with pytest.raises(TailorError, match="another demo"):
        prepare(d, print, REAL)
