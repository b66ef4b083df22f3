"""A project moved or copied to another directory redoes nothing: attempts and runs name
the student model and adapter relative to the project (app.identity), and migration 10
renames the rows an older tailor keyed on absolute paths."""

from __future__ import annotations

import json
import shutil

from app.cli import main
from app.config import DB_NAME, load_config
from app.events import RecordingEvents
from app.identity import identity, located, shown
from app.jobs import JobOutcome
from app.pipeline.diagnose import attempt_key, diagnose
from app.pipeline.evaluate import targets_for
from app.records import Problem, Run
from app.store import Store


class AnswerAll:
    """Stands in for MlxJob: answers every item at once; records what it was asked."""

    asked: list[int] = []

    def __init__(self, spec, blas=None):
        self.spec = spec

    def cancel(self) -> None:
        pass

    def run(self, on_event):
        AnswerAll.asked.append(len(self.spec["items"]))
        on_event({"event": "start", "model": self.spec["model"], "device": "cpu", "dtype": "float32"})
        for item in self.spec["items"]:
            on_event(
                {"event": "result", "id": item["id"], "text": "\\boxed{4}", "n_tokens": 3, "finish_reason": "stop"}
            )
        return JobOutcome(status="done", returncode=0)


def make_project(tmp_path):
    project = tmp_path / "first"
    assert main(["init", str(project)]) == 0
    model = project / "models" / "student"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    cfg = project / "tailor.toml"
    cfg.write_text(
        cfg.read_text().replace('model = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"', 'model = "models/student"')
    )
    with Store(project / DB_NAME) as s:
        s.insert_problems(Problem(id=f"p{i}", question=f"{i}+{i}?", answer=str(2 * i), split="train") for i in range(6))
    return project


def run_diagnose(project):
    with Store(project / DB_NAME) as s:
        return diagnose(load_config(project), s, RecordingEvents(), project=project, job_cls=AnswerAll)


def test_a_copied_and_a_moved_project_diagnose_nothing_again(tmp_path):
    AnswerAll.asked = []
    first = make_project(tmp_path)
    assert run_diagnose(first).skipped == 0 and AnswerAll.asked == [6]
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    moved = tmp_path / "moved"
    first.rename(moved)
    assert run_diagnose(copy).skipped == 6 and run_diagnose(moved).skipped == 6
    assert AnswerAll.asked == [6]  # no job was started for either
    with Store(copy / DB_NAME) as s:
        assert {a.model for a in s.attempts()} == {"./models/student"}


def test_runs_find_their_adapter_in_the_moved_project(tmp_path):
    first = make_project(tmp_path)
    adapters = first / "runs" / "r1" / "adapters"
    adapters.mkdir(parents=True)
    (adapters / "adapters.safetensors").write_bytes(b"x")
    name = identity(str(first / "models" / "student"), first)
    with Store(first / DB_NAME) as s:
        s.insert_run(Run(id="r1", config={"model": name}, status="done", adapter_path=identity(str(adapters), first)))
    moved = tmp_path / "moved"
    first.rename(moved)
    with Store(moved / DB_NAME) as s:
        run = s.get_run("r1")
    base, target = targets_for(load_config(moved), moved, [run])
    assert target.adapter == str((moved / "runs" / "r1" / "adapters").resolve())
    assert (target.name, target.adapter_name) == ("./models/student", "./runs/r1/adapters")
    assert base.model == str((moved / "models" / "student").resolve())


def test_migration_renames_absolute_paths_and_keeps_what_it_cannot_reproduce(tmp_path):
    project = make_project(tmp_path)
    model = str((project / "models" / "student").resolve())
    adapters = project / "runs" / "r1" / "adapters"
    adapters.mkdir(parents=True)
    params = {"temperature": 0.6}
    with Store(project / DB_NAME) as s:  # rows as tailor wrote them before migration 10
        old_key = attempt_key("p0", "diagnose", model, None, "h", params, 7)
        for key, pid in ((old_key, "p0"), ("hand-made", "p1")):
            s.db["attempts"].insert(
                {
                    "key": key,
                    "problem_id": pid,
                    "purpose": "diagnose",
                    "model": model,
                    "prompt_hash": "h",
                    "params": json.dumps(params),
                    "seed": 7,
                    "created_at": "2025-01-01",
                }
            )
        s.insert_run(Run(id="r1", config={"model": model}, status="done", adapter_path=str(adapters.resolve())))
        s.db.execute("PRAGMA foreign_keys = OFF")  # a score row without its trace is enough here
        s.db["trace_scores"].insert({"trace_id": 1, "state": f"{model}+run:r1", "prompt_hash": "h"})
        s.db.execute("PRAGMA user_version = 9")
        s.db.conn.commit()
    with Store(project / DB_NAME) as s:
        rows = {a.problem_id: a for a in s.attempts()}
        assert rows["p0"].key == attempt_key("p0", "diagnose", "./models/student", None, "h", params, 7)
        assert rows["p0"].model == "./models/student"
        assert (rows["p1"].key, rows["p1"].model) == ("hand-made", model)  # not reproducible: left alone
        run = s.get_run("r1")
        assert (run.config["model"], run.adapter_path) == ("./models/student", "./runs/r1/adapters")
        assert [r["state"] for r in s.db["trace_scores"].rows] == ["./models/student+run:r1"]
        s.db.execute("PRAGMA user_version = 9")  # a second run changes nothing more
        s.db.conn.commit()
    with Store(project / DB_NAME) as s:
        assert s.attempts()[0].key == rows["p0"].key


def test_a_model_outside_the_project_is_named_by_path_and_contents(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    first = identity(str(outside), tmp_path / "proj")
    assert first.startswith(str(outside.resolve()) + "#") and located(first, tmp_path) == str(outside.resolve())
    (outside / "config.json").write_text('{"hidden_size": 8}')  # other weights at the same path
    assert identity(str(outside), tmp_path / "proj") != first
    assert identity("mlx-community/Some-Model", tmp_path) == "mlx-community/Some-Model"


def test_a_name_is_shown_by_its_last_component_and_fingerprint(tmp_path):
    outside = tmp_path / "models" / "SmolLM2-float32"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text("{}")
    name = identity(str(outside), tmp_path / "proj")
    assert shown(name) == "SmolLM2-float32#" + name.rsplit("#", 1)[1]
    assert shown("./runs/r1/adapters") == "./runs/r1/adapters"
    assert shown("mlx-community/Some-Model") == "mlx-community/Some-Model"
    assert shown("org/repo#tag") == "org/repo#tag"  # a repo id with a mark is not a path
