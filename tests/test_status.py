from app.cli import main
from app.config import DB_NAME
from app.records import Attempt, Problem
from app.store import Store


def _attempt(i: int, purpose: str, problem_id: str) -> Attempt:
    return Attempt(
        key=f"{purpose}-{i}",
        problem_id=problem_id,
        purpose=purpose,
        model="student",
        prompt_hash="h",
        params={"temperature": 0.6},
        seed=i,
        text="... \\boxed{1}",
        extracted="1",
        correct=True,
    )


def _lines(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_status_counts_eval_and_fewshot_answers_and_ratings(project, capsys):
    with Store(project / DB_NAME) as store:
        store.insert_problems([Problem(id="p1", question="q", answer="1", split="test")])
        ids = [store.insert_attempt(_attempt(i, "eval", "p1")) for i in range(5)]
        for i in range(2):
            store.insert_attempt(_attempt(i, "fewshot", "p1"))
        store.insert_attempt(_attempt(0, "diagnose", "p1"))
        store.put_eval_ratings(
            [{"attempt_id": ids[0], "coherence": 4, "completeness": 4, "factual": 5, "cotqs": 13 / 3}]
        )

    assert main(["status", "--project", str(project)]) == 0
    lines = _lines(capsys.readouterr().out)
    assert lines["attempts"] == "8"
    assert lines["eval answers"] == "5"
    assert lines["few-shot answers"] == "2"
    assert lines["CoT-quality ratings"] == "1"
    assert "evals" not in lines  # the old, ambiguous name (it counted ratings, not answers)


def test_status_of_an_empty_project(project, capsys):
    assert main(["--project", str(project), "status"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert lines["problems"] == "none"
    assert (lines["eval answers"], lines["few-shot answers"], lines["CoT-quality ratings"]) == ("0", "0", "0")


def test_status_shows_a_broken_config_and_still_counts(project, capsys):
    with Store(project / DB_NAME) as store:
        store.insert_problems([Problem(id="p1", question="q", answer="1", split="train")])
    (project / "tailor.toml").write_text("[student]\nmax_tokens = 0\n")
    assert main(["--project", str(project), "status"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert "student.max_tokens" in lines["config"] and lines["problems"] == "train 1"


def test_status_of_a_missing_project_is_one_line(tmp_path, capsys):
    assert main(["--project", str(tmp_path / "nowhere"), "status"]) == 1
    assert "tailor.db: not found (run `tailor init" in capsys.readouterr().err
