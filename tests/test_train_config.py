"""[train] profiles and overrides, run/metric records, the validation-split check, stale runs. No MLX."""

import json

import pytest

from app.config import TRAIN_PROFILES, TrainConfig, parse_config
from app.errors import ConfigError
from app.pipeline.train import (
    RunLock,
    TrainError,
    check_data,
    dataset_dir,
    parse_overrides,
    reconcile_stale_runs,
    resolve_params,
)
from app.records import Dataset, DatasetItem, Problem, Run


def test_profiles_resolve_to_the_papers_numbers():
    a = TrainConfig().resolved()
    assert (a["profile"], a["rank"], a["scale"], a["dropout"], a["learning_rate"], a["batch_size"]) == (
        "acotd",
        32,
        1.0,
        0.1,
        1e-5,
        16,
    )  # alpha 32 / rank 32
    assert (a["epochs"], a["iters"], a["schedule"], a["warmup"], a["weight_decay"]) == (5.0, None, "cosine", 0.03, 0.01)
    assert (a["steps_per_eval"], a["save_every"], a["val_batches"], a["keep"]) == (16, 64, -1, "best")
    o = TrainConfig(profile="obryan").resolved()
    assert (o["iters"], o["epochs"], o["rank"], o["scale"], o["patience"], o["keep"]) == (200, None, 8, 20.0, 0, "last")
    assert o["seeds"] == [0, 1, 2, 3, 4] and set(TRAIN_PROFILES) == {"acotd", "obryan"}


def test_overrides_alpha_scale_iters_epochs():
    assert TrainConfig(rank=16).resolved()["scale"] == 2.0  # acotd's alpha 32 kept
    assert TrainConfig(scale=3.0).resolved()["scale"] == 3.0
    assert TrainConfig(profile="obryan", alpha=16.0).resolved()["scale"] == 2.0
    assert TrainConfig(iters=50).resolved()["epochs"] is None
    assert TrainConfig(profile="obryan", epochs=2).resolved()["iters"] is None
    with pytest.raises(ConfigError, match="alpha and train.scale"):
        TrainConfig(alpha=8.0, scale=2.0).resolved()
    with pytest.raises(ConfigError, match="save_every"):
        TrainConfig(save_every=10, grad_accumulation=4).resolved()


def test_config_file_and_set_flags_name_the_key():
    cfg = parse_config('[train]\nprofile = "obryan"\nrank = 4\n')
    p = resolve_params(
        cfg,
        overrides=parse_overrides(["learning_rate=1e-3", "keep=best", "grad-checkpoint=true"]),
        iters=30,
        patience=2,
    )
    assert (
        p["profile"],
        p["rank"],
        p["learning_rate"],
        p["keep"],
        p["grad_checkpoint"],
        p["iters"],
        p["patience"],
    ) == ("obryan", 4, 1e-3, "best", True, 30, 2)
    assert resolve_params(cfg, profile="acotd")["rank"] == 4  # tailor.toml keys still apply
    with pytest.raises(ConfigError, match="train.rnak: unknown key"):
        resolve_params(cfg, overrides={"rnak": 3})
    with pytest.raises(ConfigError, match="train.dropout"):
        resolve_params(cfg, overrides={"dropout": 1.5})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["rank"])
    with pytest.raises(ConfigError, match="tailor.toml: train.patience"):
        parse_config("[train]\npatience = -1\n")


def test_run_and_metric_accessors(store):
    store.insert_run(
        Run(id="d-s0-x", seed=0, profile="acotd", config={"params": {"rank": 8}}, valid_disjoint_from_test=True)
    )
    with pytest.raises(Exception, match="already exists"):
        store.insert_run(Run(id="d-s0-x", config={}))
    store.add_metrics("d-s0-x", 10, {"train_loss": 2.5, "learning_rate": 1e-4, "tokens_per_s": None})
    store.add_metrics("d-s0-x", 16, {"val_loss": 2.0}, extra={"val_time": 0.1})
    store.add_metrics("d-s0-x", 16, {"val_loss": 1.9})  # a re-report (after a resume) replaces
    store.add_metrics("d-s0-x", 20, {"train_loss": 2.1})
    assert store.curve("d-s0-x", "val_loss") == [(16, 1.9)]
    assert {m.kind for m in store.metrics("d-s0-x")} == {"train_loss", "learning_rate", "val_loss"}
    assert store.delete_metrics_after("d-s0-x", 16) == 1
    store.update_run("d-s0-x", status="done", best_iter=16, best_val_loss=1.9, stop_reason="patience")
    run = store.get_run("d-s0-x")
    assert (run.status, run.best_iter, run.stop_reason, run.valid_disjoint_from_test) == ("done", 16, "patience", True)
    assert run.config == {"params": {"rank": 8}} and [r.id for r in store.find_runs("d-s0")] == ["d-s0-x"]
    assert store.runs(status="running") == []


def _export(project, store, valid_problem: Problem, test_problem: Problem, edit: bool = False):
    import hashlib

    store.insert_problems(
        [Problem(id="t1", question="What is 2+2?", answer="4", split="train"), valid_problem, test_problem]
    )
    store.create_dataset(
        Dataset(name="d", strategy="all", params={}, items=[DatasetItem(problem_id="t1", route="short")])
    )
    out = project / "runs" / "datasets" / "d"
    out.mkdir(parents=True)
    line = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n"
    (out / "train.jsonl").write_text(line)
    (out / "valid.jsonl").write_text(line)
    manifest = {
        "dataset": "d",
        "valid_problem_ids": [valid_problem.id],
        "counts": {"train": {"problems": 1}, "valid": {"problems": 1}},
        "files": {"valid.jsonl": {"sha256": hashlib.sha256(line.encode()).hexdigest()}},
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    if edit:
        (out / "valid.jsonl").write_text(line + line)
    return out


def test_valid_split_is_checked_against_the_test_split(project, store):
    out = _export(
        project,
        store,
        Problem(id="v1", question="What is 3+3?", answer="6", split="train"),
        Problem(id="x1", question="What is 5+5?", answer="10", split="test"),
    )
    check = check_data(store, dataset_dir(project, "d"))
    assert check.valid_disjoint_from_test is True and "1 test problems" in check.detail
    rec = check.record()
    assert rec["split_sizes"] == {
        "train_examples": 1,
        "valid_examples": 1,
        "train_problems": 1,
        "valid_problems": 1,
        "test_problems": 1,
    }
    assert check.dataset_id == store.get_dataset("d").id
    (out / "manifest.json").unlink()
    assert check_data(store, out).valid_disjoint_from_test is None
    with pytest.raises(TrainError, match=r"nope/train.jsonl: not found \(exported: d\)"):
        dataset_dir(project, "nope")


def test_valid_problem_that_is_a_test_question_is_flagged(project, store):
    _export(
        project,
        store,
        Problem(id="v1", question="What is  5+5?", answer="10", split="train"),
        Problem(id="x1", question="what is 5+5?", answer="10", split="test"),
    )
    check = check_data(store, project / "runs" / "datasets" / "d")
    assert check.valid_disjoint_from_test is False and "test problems" in check.detail


def test_edited_valid_file_is_not_trusted(project, store):
    _export(
        project,
        store,
        Problem(id="v1", question="What is 3+3?", answer="6", split="train"),
        Problem(id="x1", question="What is 5+5?", answer="10", split="test"),
        edit=True,
    )
    check = check_data(store, project / "runs" / "datasets" / "d")
    assert check.valid_disjoint_from_test is None and "edited" in check.detail


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(project, store):
    for rid in ("gone", "alive"):
        store.insert_run(Run(id=rid, config={}, status="running"))
    held = RunLock(project / "runs" / "alive")
    assert held.acquire()
    try:
        assert reconcile_stale_runs(store, project) == ["gone"]
    finally:
        held.release()
    assert store.get_run("gone").status == "interrupted" and store.get_run("gone").stop_reason == "interrupted"
    assert store.get_run("alive").status == "running"


def test_one_list_of_training_parameters():
    """mlx_backend.train.PARAMS is the list: the job spec sends exactly its keys, and every
    one of them is a [train] key that both profiles set (the seed comes from `seeds`)."""
    from app.config import TRAIN_PROFILES, TrainConfig
    from mlx_backend.train import PARAMS

    child = set(PARAMS) - {"seed"}
    assert child <= set(TrainConfig.model_fields)
    for name in TRAIN_PROFILES:
        resolved = TrainConfig(profile=name).resolved()  # alpha becomes scale here
        assert child <= set(resolved), f"profile {name} lacks {sorted(child - set(resolved))}"
