"""`tailor diagnose` end to end through the MLX child process, with the tiny model."""

import pytest

pytest.importorskip("mlx.core")


from app.cli import BUNDLED, main
from app.config import load_config
from app.events import RecordingEvents
from app.identity import identity
from app.jobs import MlxJob
from app.pipeline.diagnose import diagnose
from app.pipeline.importing import import_file
from app.prompts import load_prompt


@pytest.fixture
def tiny_project(project, store, tiny_model_dir):
    cfg_path = project / "tailor.toml"
    text = cfg_path.read_text()
    text = text.replace('model = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"', f'model = "{tiny_model_dir}"')
    cfg_path.write_text(text.replace("max_tokens = 1024", "max_tokens = 12"))
    import_file(store, BUNDLED)
    return project


def test_diagnose_stores_one_attempt_per_problem_and_resumes(tiny_project, store, tiny_model_dir):
    cfg = load_config(tiny_project)
    ev = RecordingEvents()
    first = diagnose(cfg, store, ev, project=tiny_project, limit=10)
    assert (first.generated, first.skipped, first.status) == (10, 0, "done")
    rows = store.attempts(purpose="diagnose")
    assert len(rows) == 10 and len({a.problem_id for a in rows}) == 10
    a = rows[0]
    assert a.prompt_hash == load_prompt("student_solve").hash
    assert a.model == identity(str(tiny_model_dir), tiny_project)  # its path and a fingerprint of its files
    assert a.finish_reason in ("stop", "length") and a.n_tokens and a.n_tokens <= 12
    assert a.correct is not None and a.dtype and a.seed is not None
    assert ("start", "diagnose", 10) in ev.log

    again = diagnose(cfg, store, RecordingEvents(), project=tiny_project, limit=10)
    assert (again.generated, again.skipped) == (0, 10)
    more = diagnose(cfg, store, RecordingEvents(), project=tiny_project, limit=14)
    assert (more.generated, more.skipped) == (4, 10)
    assert store.count("attempts") == 14


def test_cancel_keeps_finished_attempts(tiny_project, store):
    class CancelAfterFirst(MlxJob):
        def run(self, on_event):
            def wrapped(ev):
                on_event(ev)
                if ev.get("event") == "result":
                    self.cancel()

            return super().run(wrapped)

    cfg = load_config(tiny_project)
    cfg.student.max_batch = 1  # one item at a time, so the cancel lands mid-job
    res = diagnose(cfg, store, RecordingEvents(), project=tiny_project, limit=30, job_cls=CancelAfterFirst)
    assert res.status == "cancelled"
    kept = store.count("attempts")
    assert 1 <= kept < 30 and kept == res.generated
    rest = diagnose(cfg, store, RecordingEvents(), project=tiny_project, limit=30)
    assert rest.generated == 30 - kept and store.count("attempts") == 30


def test_an_exception_in_the_event_handler_stops_the_child(tiny_project, store):
    """A stage that fails (or is cancelled by raising, as the TUI does) mid-job must not
    leave the MLX child running; what was stored before stays."""
    jobs = []

    class Remember(MlxJob):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            jobs.append(self)

    class Boom(Exception):
        pass

    class Failing(RecordingEvents):
        def advance(self, n=1):
            super().advance(n)
            if sum(e[1] for e in self.log if e[0] == "advance") >= 3:
                raise Boom

    cfg = load_config(tiny_project)
    cfg.student.max_batch = 1
    with pytest.raises(Boom):
        diagnose(cfg, store, Failing(), project=tiny_project, limit=30, job_cls=Remember)
    (job,) = jobs
    assert job.proc.poll() is not None
    assert 1 <= store.count("attempts") < 30


def test_cli_diagnose_bad_model_is_one_line(project, capsys):
    (project / "tailor.toml").write_text('[student]\nmodel = "/no/such/model/dir"\n')
    main(["--project", str(project), "import", str(BUNDLED)])
    capsys.readouterr()
    assert main(["--project", str(project), "diagnose", "--limit", "2"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tailor: error: diagnose: ") and "/no/such/model/dir" in err[-1]


def test_limit_is_a_seeded_draw_stratified_over_categories():
    from collections import Counter

    from app.pipeline.diagnose import spread_limit
    from app.records import Problem

    # Categories stored in order, the first one large: "the first N" would be all algebra.
    cats = ["algebra"] * 60 + ["geometry"] * 30 + ["number_theory"] * 10
    probs = [
        Problem(id=f"{c[:3]}{i:03d}", question=f"q{i}", answer="1", category=c, split="train")
        for i, c in enumerate(cats)
    ]
    got = spread_limit(probs, 20)
    assert Counter(p.category for p in got) == {"algebra": 12, "geometry": 6, "number_theory": 2}
    assert got == spread_limit(list(reversed(probs)), 20)[::-1]  # the same draw whatever the order
    assert [p.id for p in got] != [p.id for p in probs[:12]]  # random within a category, not its first
    assert spread_limit(probs, 3) != spread_limit(probs, 3, seed=1)
    assert spread_limit(probs, None) == probs and spread_limit(probs, 500) == probs


def test_the_cli_says_what_diagnose_did(tiny_project, capsys):
    assert main(["--project", str(tiny_project), "diagnose", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "diagnose: 3 new attempts (" in out and "0 already done" in out
