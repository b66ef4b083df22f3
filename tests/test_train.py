"""`tailor train` on a tiny model: overfit + evaluate, early stopping, interruption, resume, find-stop, mlx.launch.

The model is the tiny builder's with one layer and two heads: the same tokenizer and
chat template as the default tiny model, but it memorises question -> answer in a few
dozen steps on a 2-core CPU, where the two-layer default needs several times more.
"""

import json
import os
import signal

import pytest

pytest.importorskip("mlx.core")

from app.blas import find_blas
from app.cli import BUNDLED, main
from app.config import DB_NAME, load_config
from app.events import RecordingEvents
from app.identity import located
from app.jobs import MlxJob
from app.pipeline.diagnose import diagnose
from app.pipeline.export import format_cot
from app.pipeline.train import TrainError, format_result, train
from app.prompts import load_prompt
from app.store import Store

# Enough to memorise 16 short answers; high lr, all layers, full batch.
FAST = {
    "rank": 16,
    "scale": 10.0,
    "learning_rate": 1e-3,
    "batch_size": 16,
    "num_layers": -1,
    "dropout": 0.0,
    "schedule": "constant",
    "warmup": 0,
    "weight_decay": 0.0,
    "steps_per_report": 5,
}


@pytest.fixture(scope="session")
def learner_model_dir(tmp_path_factory):
    from mlx_backend.tiny import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("learner") / "model", seed=0, num_layers=1, num_heads=2, num_kv_heads=1
    )


def bundled_train(n):
    rows = [json.loads(line) for line in BUNDLED.read_text().splitlines()]
    return [r for r in rows if r["split"] == "train"][:n]


def write_chat(path, rows, long_cot=False):
    prompt = load_prompt("student_solve")
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            messages = prompt.render(question=r["question"])
            messages.append(
                {"role": "assistant", "content": format_cot(r["solution"] if long_cot else "", r["answer"])}
            )
            f.write(json.dumps({"messages": messages}) + "\n")


def make_project(root, model_dir):
    assert main(["init", str(root)]) == 0
    cfg = root / "tailor.toml"
    text = cfg.read_text().replace('model = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"', f'model = "{model_dir}"')
    text = text.replace(
        "temperature = 0.6\ntop_p = 0.9\nmax_tokens = 1024", "temperature = 0.0\ntop_p = 0.9\nmax_tokens = 20"
    )
    cfg.write_text(text)
    return root


@pytest.fixture(scope="module")
def exported(tmp_path_factory, learner_model_dir):
    """17 bundled train problems whose reference solution is only the final line, through the
    whole chain: import, diagnose (base model), grade, sample all, teach, verify, export."""
    root = make_project(tmp_path_factory.mktemp("train") / "proj", learner_model_dir)
    src = root / "problems.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {
                    **{k: r[k] for k in ("question", "answer")},
                    "split": "train",
                    "solution": f"The answer is \\boxed{{{r['answer']}}}.",
                }
            )
            + "\n"
            for r in bundled_train(17)
        )
    )
    run = lambda *a: main(["--project", str(root), *a])  # noqa: E731
    for args in (
        ("import", str(src)),
        ("diagnose",),
        ("grade",),
        ("sample", "--name", "o", "--strategy", "all"),
        ("teach", "--dataset", "o"),
        ("verify", "--dataset", "o"),
        ("export", "--dataset", "o", "--valid-fraction", "0.05"),
    ):
        assert run(*args) == 0, args
    return root


def accuracy(store, adapter, problem_ids):
    rows = [a for a in store.attempts(purpose="diagnose") if a.adapter == adapter and a.problem_id in problem_ids]
    assert len(rows) == len(problem_ids)
    return sum(bool(a.correct) for a in rows) / len(rows)


def test_overfit_16_problems_then_evaluate_with_the_adapter(exported):
    """Memorise 16 problems, then evaluate them through diagnose (generate job, student_solve
    prompt, is_equivalent): proves the adapter is loaded and the chat template matches."""
    manifest = json.loads((exported / "runs" / "datasets" / "o" / "manifest.json").read_text())
    cfg = load_config(exported)
    with Store(exported / DB_NAME) as store:
        trained = {p.id for p in store.problems(split="train")} - set(manifest["valid_problem_ids"])
        assert len(trained) == 16
        before = accuracy(store, None, trained)
        res = train(
            cfg,
            store,
            RecordingEvents(),
            project=exported,
            dataset="o",
            profile="obryan",
            iters=80,
            seeds=[0],
            overrides={**FAST, "steps_per_eval": 40},
        )
        run = res.runs[0]
        assert (run.status, run.stop_reason, run.final_iter) == ("done", "max_iters", 80)
        assert run.adapter_path.endswith("/last")  # obryan keeps the last adapter
        record = store.get_run(run.run_id)
        assert record.status == "done" and record.adapter_path == run.adapter_path
        # float32 is the fast CPU path only with a fast BLAS; otherwise the checkpoint's bf16.
        assert record.valid_disjoint_from_test is True
        assert record.dtype == ("float32" if find_blas() else "bfloat16")
        assert record.config["data"]["split_sizes"]["train_examples"] == 16
        losses = store.curve(run.run_id, "train_loss")
        assert [s for s, _ in losses] == list(range(5, 81, 5)) and losses[-1][1] < losses[0][1]
        assert [s for s, _ in store.curve(run.run_id, "val_loss")] == [0, 40, 80]

        with_adapter = cfg.model_copy(update={"student": cfg.student.model_copy(update={"adapter": run.adapter_path})})
        out = diagnose(with_adapter, store, RecordingEvents(), project=exported)
        assert out.status == "done"
        after = accuracy(store, run.adapter_path, trained)
    assert before <= 0.1 and after >= 0.8, (before, after)


def early_stop_data(tmp_path):
    """Train on 16 short answers; validate on the long CoT of 8 other problems: the validation
    loss falls while the model learns what the two share, then rises as it specialises."""
    rows = bundled_train(24)
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_chat(tmp_path / "train.jsonl", rows[:16])
    write_chat(tmp_path / "valid.jsonl", rows[16:], long_cot=True)
    return tmp_path


def test_early_stopping_on_a_rising_validation_curve_keeps_the_best_adapter(
    project, store, tmp_path, learner_model_dir
):
    import mlx.core as mx

    data = early_stop_data(tmp_path / "data")
    cfg = load_config(project).model_copy(
        update={"student": load_config(project).student.model_copy(update={"model": str(learner_model_dir)})}
    )
    patience, every = 3, 2
    res = train(
        cfg,
        store,
        RecordingEvents(),
        project=project,
        data_dir=data,
        profile="acotd",
        iters=60,
        seeds=[3],
        patience=patience,
        overrides={**FAST, "learning_rate": 2e-3, "steps_per_eval": every, "save_every": every, "keep_checkpoints": 0},
    )
    run = res.runs[0]
    assert (run.status, run.stop_reason) == ("done", "patience")
    assert 0 < run.best_iter < run.final_iter == run.best_iter + patience * every < 60
    curve = dict(store.curve(run.run_id, "val_loss"))
    assert min(curve, key=curve.get) == run.best_iter and curve[run.best_iter] == pytest.approx(run.best_val_loss)
    after = [v for s, v in curve.items() if s > run.best_iter]
    assert len(after) == patience and min(after) >= run.best_val_loss and max(after) > run.best_val_loss
    record = store.get_run(run.run_id)
    assert (record.best_iter, record.stop_reason, record.valid_disjoint_from_test) == (run.best_iter, "patience", None)

    run_dir = project / "runs" / run.run_id
    assert run.adapter_path == f"./runs/{run.run_id}/adapters"  # named relative to the project
    assert located(run.adapter_path, project) == str((run_dir / "adapters").resolve())
    final = mx.load(str(run_dir / "adapters" / "adapters.safetensors"))
    best_ckpt = mx.load(str(run_dir / "checkpoints" / f"{run.best_iter:07d}" / "adapters.safetensors"))
    last = mx.load(str(run_dir / "last" / "adapters.safetensors"))
    assert final.keys() == best_ckpt.keys() and all(mx.array_equal(final[k], best_ckpt[k]) for k in final)
    assert not all(mx.array_equal(final[k], last[k]) for k in final)
    config = json.loads((run_dir / "adapters" / "adapter_config.json").read_text())
    assert config["lora_parameters"] == {"rank": 16, "scale": 10.0, "dropout": 0.0} and config["num_layers"] == 1
    from mlx_lm.lora import CONFIG_DEFAULTS  # the record `mlx_lm lora` writes: every one of its keys

    assert set(CONFIG_DEFAULTS) <= set(config) and config["mask_prompt"] and config["tailor"]["patience"] == patience


class StopAfter(MlxJob):
    """Cancels (SIGTERM) after the n-th training-loss report, or kills the child outright."""

    def __init__(self, *a, n=2, kill=False, ctrl_c=False, **kw):
        super().__init__(*a, **kw)
        self.n, self.kill, self.ctrl_c, self.seen = n, kill, ctrl_c, []

    def run(self, on_event):
        def wrapped(ev):
            self.seen.append(ev)
            on_event(ev)
            if ev.get("event") == "metric" and "train_loss" in ev:
                self.n -= 1
                if self.n == 0 and self.kill:
                    self.proc.send_signal(signal.SIGKILL)
                elif self.n == 0:
                    if self.ctrl_c:  # a terminal's Ctrl-C reaches the child too, then MlxJob's SIGTERM
                        self.proc.send_signal(signal.SIGINT)
                    self.cancel()

        return super().run(wrapped)


class Recording(MlxJob):
    def run(self, on_event):
        self.seen = []
        return super().run(lambda ev: (self.seen.append(ev), on_event(ev)))


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_interrupted_run_is_marked_and_resume_finishes_it_exactly(project, store, tmp_path, learner_model_dir, packing):
    import mlx.core as mx

    data = early_stop_data(tmp_path / "data")
    base = load_config(project)
    cfg = base.model_copy(update={"student": base.student.model_copy(update={"model": str(learner_model_dir)})})
    kw = dict(
        project=project,
        data_dir=data,
        profile="obryan",
        iters=24,
        seeds=[1],
        overrides={**FAST, "dropout": 0.1, "steps_per_eval": 8, "save_every": 8, "packing": packing},
    )
    jobs = []

    def stopping(spec, **k):
        jobs.append(StopAfter(spec, n=2, **k))
        return jobs[-1]

    res = train(cfg, store, RecordingEvents(), job_cls=stopping, **kw)
    run_id = res.runs[0].run_id
    assert res.status == "interrupted" and res.runs[0].status == "interrupted"
    record = store.get_run(run_id)
    assert (record.status, record.stop_reason) == ("interrupted", "interrupted") and record.finished_at
    cancelled = [e for e in jobs[0].seen if e["event"] in ("checkpoint", "cancelled")][-2:]
    assert [e["event"] for e in cancelled] == ["checkpoint", "cancelled"]
    k = cancelled[1]["iter"]
    assert 10 <= k < 24 and cancelled[0]["iter"] == k
    assert json.loads((project / "runs" / run_id / "checkpoints" / "latest.json").read_text())["iter"] == k
    assert "resume with `tailor train --resume" in format_result(res)

    resumed = []

    def recording(spec, **k2):
        resumed.append(Recording(spec, **k2))
        return resumed[-1]

    again = train(cfg, store, RecordingEvents(), project=project, resume=run_id[:-2], job_cls=recording)
    out = again.runs[0]
    assert (out.run_id, out.status, out.stop_reason, out.final_iter) == (run_id, "done", "max_iters", 24)
    start = next(e for e in resumed[0].seen if e["event"] == "start")  # after any batch-size message
    assert start["start_iter"] == k and start["resumed_from"].endswith(f"{k:07d}")
    progress = [e["done"] for e in resumed[0].seen if e["event"] == "progress"]
    assert progress[0] == k and progress[1] == k + 1 and progress[-1] == 24
    assert store.get_run(run_id).status == "done"
    steps = [s for s, _ in store.curve(run_id, "train_loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 24

    # The same seed without the interruption ends with the very same weights.
    whole = train(cfg, store, RecordingEvents(), **kw).runs[0]
    a = mx.load(str(project / "runs" / run_id / "last" / "adapters.safetensors"))
    b = mx.load(str(project / "runs" / whole.run_id / "last" / "adapters.safetensors"))
    assert all(mx.allclose(a[key], b[key], rtol=1e-5, atol=1e-6) for key in a)
    done = next(e for e in resumed[0].seen if e["event"] == "done")["stats"]
    assert done["packing"] is packing and done["updates"] == 24 and done["tokens_per_update"] > 0
    assert store.curve(run_id, "updates")[-1] == (24, 24.0)  # recorded with the run (and at the stop)
    with pytest.raises(Exception, match="finished"):
        train(cfg, store, RecordingEvents(), project=project, resume=run_id)


def test_a_killed_child_marks_the_run_interrupted(project, store, tmp_path, learner_model_dir):
    data = early_stop_data(tmp_path / "data")
    base = load_config(project)
    cfg = base.model_copy(update={"student": base.student.model_copy(update={"model": str(learner_model_dir)})})
    res = train(
        cfg,
        store,
        RecordingEvents(),
        project=project,
        data_dir=data,
        profile="obryan",
        iters=40,
        seeds=[0],
        overrides={**FAST, "steps_per_eval": 100},
        job_cls=lambda spec, **k: StopAfter(spec, n=1, kill=True, **k),
    )
    record = store.get_run(res.runs[0].run_id)
    assert (record.status, record.stop_reason) == ("interrupted", "interrupted")
    assert store.runs(status="running") == []


def test_find_stop_then_fixed_length_seeds(exported):
    cfg = load_config(exported)
    with Store(exported / DB_NAME) as store:
        found = train(
            cfg,
            store,
            RecordingEvents(),
            project=exported,
            dataset="o",
            profile="obryan",
            find_stop=True,
            max_iters=12,
            overrides={**FAST, "steps_per_eval": 4},
        )
        fs = found.runs[0]
        assert found.find_stop and len(found.runs) == 1 and fs.stop_reason == "max_iters" and fs.final_iter == 12
        record = store.get_run(fs.run_id)
        assert record.config["find_stop"] and record.config["params"]["patience"] == 0
        assert record.valid_disjoint_from_test is True and fs.adapter_path.endswith("/adapters")
        curve = dict(store.curve(fs.run_id, "val_loss"))
        assert sorted(curve) == [0, 4, 8, 12] and min(curve, key=curve.get) == fs.best_iter
        report = format_result(found)
        assert f"lowest at iteration {fs.best_iter}" in report and f"--iters {fs.best_iter} --seeds" in report
        assert "disjoint from test: yes" in report

        n = max(fs.best_iter, 1)
        seeds = train(
            cfg,
            store,
            RecordingEvents(),
            project=exported,
            dataset="o",
            profile="obryan",
            iters=n,
            seeds=[0, 1],
            overrides={**FAST, "steps_per_eval": 4},
        )
        assert [r.seed for r in seeds.runs] == [0, 1] and all(r.status == "done" for r in seeds.runs)
        for r in seeds.runs:
            rec = store.get_run(r.run_id)
            assert rec.config["params"]["iters"] == n and rec.valid_disjoint_from_test is True
            assert rec.config["iters_from_find_stop"] == (fs.run_id if n == fs.best_iter else None)
            assert rec.best_iter is not None and store.curve(r.run_id, "val_loss")
        assert "2 seeds: best iterations" in format_result(seeds)


@pytest.mark.skipif(os.environ.get("TAILOR_SKIP_DISTRIBUTED") == "1", reason="TAILOR_SKIP_DISTRIBUTED=1")
def test_data_parallel_over_mlx_launch_matches_one_process(project, store, tmp_path, learner_model_dir):
    """Two ring-backend processes on loopback (mlx.launch -n 2): same losses as one process."""
    data = early_stop_data(tmp_path / "data")
    base = load_config(project)
    cfg = base.model_copy(update={"student": base.student.model_copy(update={"model": str(learner_model_dir)})})
    kw = dict(project=project, data_dir=data, profile="obryan", iters=4, seeds=[0])
    over = {**FAST, "steps_per_report": 2, "steps_per_eval": 4}
    one = train(cfg, store, RecordingEvents(), overrides=over, **kw).runs[0]
    two = train(cfg, store, RecordingEvents(), overrides={**over, "processes": 2, "backend": "ring"}, **kw).runs[0]
    assert two.status == "done" and two.stats["world_size"] == 2 and one.stats["world_size"] == 1
    a, b = store.curve(one.run_id, "train_loss"), store.curve(two.run_id, "train_loss")
    assert [s for s, _ in a] == [s for s, _ in b] == [2, 4]
    assert all(x == pytest.approx(y, rel=1e-3) for (_, x), (_, y) in zip(a, b))
    assert store.get_run(two.run_id).config["launch"] == {"hostfile": None, "processes": 2, "backend": "ring"}


def test_ctrl_c_and_the_forwarded_sigterm_are_one_stop_request(project, store, tmp_path, learner_model_dir):
    data = early_stop_data(tmp_path / "data")
    base = load_config(project)
    cfg = base.model_copy(update={"student": base.student.model_copy(update={"model": str(learner_model_dir)})})
    jobs = []

    def job(spec, **k):
        jobs.append(StopAfter(spec, n=1, ctrl_c=True, **k))
        return jobs[-1]

    res = train(
        cfg,
        store,
        RecordingEvents(),
        project=project,
        data_dir=data,
        profile="obryan",
        iters=40,
        seeds=[0],
        overrides={**FAST, "steps_per_eval": 100, "save_every": 100},
        job_cls=job,
    )
    out = res.runs[0]
    assert out.status == "interrupted" and out.final_iter and out.final_iter >= 5
    cancelled = [e for e in jobs[0].seen if e["event"] == "cancelled"]
    assert cancelled and cancelled[0]["iter"] == out.final_iter  # checkpointed, not abandoned
    ckpt = json.loads((project / "runs" / out.run_id / "checkpoints" / "latest.json").read_text())
    assert ckpt["iter"] == out.final_iter


def test_examples_longer_than_max_seq_length_are_refused_unless_truncation_is_asked(
    project, store, tmp_path, tiny_model_dir
):
    data = early_stop_data(tmp_path / "data")
    base = load_config(project)
    cfg = base.model_copy(update={"student": base.student.model_copy(update={"model": str(tiny_model_dir)})})
    kw = dict(project=project, data_dir=data, profile="obryan", iters=1, seeds=[0])
    over = {**FAST, "max_seq_length": 8, "steps_per_eval": 1, "save_every": 1}
    with pytest.raises(
        TrainError,
        match=r"24 of 24 examples \(100\.0 %\) are longer than max_seq_length 8 "
        r"tokens; the longest is \d+ .*or truncate = true",
    ):
        train(cfg, store, RecordingEvents(), overrides=over, **kw)
    cut = train(cfg, store, RecordingEvents(), overrides={**over, "truncate": True}, **kw).runs[0]
    assert cut.status == "done"
