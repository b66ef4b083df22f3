"""`tailor eval` and `app.results`: tiers, seeds, caching, model checks, CoT quality, statistics.

A fake MLX job stands in for the student here (fast, deterministic: it answers a problem
correctly when the adapter "knows" it); one test runs the real tiny model to check that
a budget too small for an answer is recorded as a wrong answer, not a crash.
"""

import json
import statistics

import httpx
import pytest
from recompute import recompute, recompute_family

from app.config import parse_config
from app.events import RecordingEvents
from app.jobs import JobOutcome
from app.pipeline.diagnose import student_model
from app.pipeline.evaluate import EvalError, evaluate, parse_rating
from app.records import Problem, Run
from app.remote import RetryPolicy
from app.results import collect
from app.stats import mcnemar, paired_t, seed_summary, sign_flip_test

FAST = RetryPolicy(max_retries=1, backoff_base=0.0, backoff_max=0.0, retry_after_max=0.0)
JUDGE = """
[judge]
provider = "openai"
base_url = "https://judge.test/v1"
model = "judge-1"
concurrency = 4
"""


class FakeJob:
    """Answers "\\boxed{answer}" when the adapter knows the problem, else "\\boxed{0}"."""

    specs: list[dict] = []
    knows: dict = {}  # adapter (None = base) -> set of question texts answered right

    def __init__(self, spec, blas=None):
        self.spec = spec
        FakeJob.specs.append(spec)

    def run(self, on_event):
        known = FakeJob.knows.get(self.spec["adapter"], set())
        on_event({"event": "start", "dtype": "float32"})
        for item in self.spec["items"]:
            question = item["messages"][-1]["content"]
            answer = next((a for q, a in known if q in question), "0")
            text = f"Step one. Step two. The answer is \\boxed{{{answer}}}."
            on_event(
                {
                    "event": "result",
                    "id": item["id"],
                    "text": text,
                    "n_tokens": min(12, item["max_tokens"]),
                    "finish_reason": "stop",
                }
            )
        return JobOutcome(status="done", returncode=0)


@pytest.fixture(autouse=True)
def _reset_fake():
    FakeJob.specs, FakeJob.knows = [], {}


def add_problems(store, n=10):
    probs = [
        Problem(
            id=f"t{i:02d}",
            question=f"Question t{i:02d}: what is {i} + {i}?",
            answer=str(2 * i),
            category="arith" if i % 2 else "algebra",
            split="test",
            source="bundled",
        )
        for i in range(n)
    ]
    store.insert_problems(probs)
    return probs


def add_run(store, project, tmp_path, seed, label="acotd", model=None, status="done"):
    d = tmp_path / f"run{label}{seed}" / "adapters"
    d.mkdir(parents=True)
    (d / "adapters.safetensors").write_bytes(b"")
    run = Run(
        id=f"{label}-s{seed}",
        seed=seed,
        config={"model": model or student_model(parse_config(""), project)},
        status=status,
        adapter_path=str(d),
        label=label,
    )
    store.insert_run(run)
    return run


def knows(run, problems):
    FakeJob.knows[run.adapter_path if run else None] = {(p.question, p.answer) for p in problems}


def test_tiers_apply_instruction_and_budget_and_base_is_cached(project, store, tmp_path):
    probs = add_problems(store, 4)
    cfg = parse_config("[student]\nmax_tokens = 300\n[eval.tiers.R6]\nmax_tokens = 5\n")
    r0 = add_run(store, project, tmp_path, 0)
    res = evaluate(cfg, store, RecordingEvents(), project=project, tiers=True, job_cls=FakeJob)
    assert res.generated == 2 * 6 * 4 and res.skipped == 0
    base_spec = FakeJob.specs[0]
    assert base_spec["adapter"] is None and base_spec["params"]["temperature"] == 0.6
    assert base_spec["params"]["top_p"] == 0.9
    by_budget = {}
    for item in base_spec["items"]:
        content = item["messages"][-1]["content"]
        by_budget.setdefault(item["max_tokens"], set()).add("about 30 words" in content)
    # R1: no instruction, the student's own budget; R2 (400) is capped at it; R6 overridden to 5.
    assert by_budget[5] == {True}
    assert sorted(by_budget) == [5, 140, 200, 280, 300]
    attempts = store.eval_attempts()
    assert {a.tier for a in attempts} == {f"R{i}" for i in range(1, 7)}
    assert {a.run_id for a in attempts} == {None, r0.id}
    assert all(a.params["eval_seed"] == 0 for a in attempts)

    # A second configuration: only its own answers are generated, the base comes from the store.
    FakeJob.specs.clear()
    add_run(store, project, tmp_path, 0, label="random")
    again = evaluate(cfg, store, RecordingEvents(), project=project, tiers=True, job_cls=FakeJob)
    assert again.generated == 6 * 4 and again.skipped == 2 * 6 * 4
    assert [s["adapter"] for s in FakeJob.specs] == [str(tmp_path / "runrandom0" / "adapters")]
    assert {a.problem_id for a in store.eval_attempts()} == {p.id for p in probs}


def test_adapter_trained_on_another_model_is_refused(project, store, tmp_path):
    add_problems(store, 2)
    add_run(store, project, tmp_path, 0, model="mlx-community/Other-Model")
    with pytest.raises(EvalError, match="trained on 'mlx-community/Other-Model' but the configured student is"):
        evaluate(parse_config(""), store, RecordingEvents(), project=project, job_cls=FakeJob)
    assert store.eval_attempts() == []


def test_runs_sweeps_and_benchmarks_are_selected(project, store, tmp_path):
    add_problems(store, 2)
    store.insert_problems([Problem(id="m1", question="Question m1: 1+1?", answer="2", split="test", source="math500")])
    a = add_run(store, project, tmp_path, 0)
    add_run(store, project, tmp_path, 1)
    res = evaluate(
        parse_config(""), store, RecordingEvents(), project=project, runs=[a.id], benchmark="math500", job_cls=FakeJob
    )
    assert res.problems == 1 and res.targets == ["base", "acotd seed 0"]
    with pytest.raises(EvalError, match="--benchmark 'gsm8k': no problems imported from that source"):
        evaluate(parse_config(""), store, RecordingEvents(), project=project, benchmark="gsm8k", job_cls=FakeJob)
    with pytest.raises(EvalError, match="--sweep 'nope': no finished runs"):
        evaluate(parse_config(""), store, RecordingEvents(), project=project, sweep="nope", job_cls=FakeJob)


def test_results_statistics_equal_what_the_store_holds(project, store, tmp_path):
    probs = add_problems(store, 10)
    runs = [add_run(store, project, tmp_path, s) for s in (0, 1, 2)]
    knows(None, probs[:4])
    for run, k in zip(runs, (6, 7, 8)):
        knows(run, probs[:k])
    res = evaluate(parse_config(""), store, RecordingEvents(), project=project, job_cls=FakeJob)
    # No [eval] seeds: the base at every training seed (0, 1, 2), each run at its own.
    assert res.generated == 3 * 10 + 3 * 10
    res = collect(store, n_boot=500)
    (conf,) = res["configurations"]
    assert conf["accuracy_by_seed"] == {"0": 0.6, "1": 0.7, "2": 0.8} and conf["base_mean"] == 0.4
    assert conf["reference_by_seed"] == {"0": 0.4, "1": 0.4, "2": 0.4} and conf["paired"]
    assert conf["mean"] == pytest.approx(0.7) and conf["std"] == pytest.approx(0.1)
    s = seed_summary([0.6, 0.7, 0.8])
    assert conf["ci"] == pytest.approx([s.ci_low, s.ci_high])
    assert conf["test"] == "sign-flip over problems (3 paired seeds)"
    assert conf["seed_p"] == pytest.approx(paired_t([0.4] * 3, [0.6, 0.7, 0.8]).p)
    assert conf["delta"] == pytest.approx(0.3)
    # Only 4 problems ever differ (all gained): the smallest two-sided p there is, 2 / 2^4, as mid-p 1 / 2^4.
    # Ten problems cannot show this +30 points (the old one-sample t said p = 0.03).
    assert conf["p"] == pytest.approx(1 / 16) and conf["verdict"] == "no significant difference"
    # Every number recomputes from the attempts in the store.
    by_seed = lambda rows: [[bool(a.correct) for a in sorted(rows, key=lambda a: a.problem_id)]]  # noqa: E731
    base = [
        by_seed([a for a in store.eval_attempts(base_only=True) if a.params["eval_seed"] == r.seed])[0] for r in runs
    ]
    mine = [by_seed(store.eval_attempts(run_id=r.id))[0] for r in runs]
    assert conf["p"] == sign_flip_test(base, mine).p
    assert conf["comparison"]["mcnemar"][0]["result"]["p"] == pytest.approx(mcnemar(base[0], mine[0]).p)
    recompute(conf)
    (base_row,) = [t for t in res["tiers"] if t["label"] == "base"]
    assert base_row["accuracy"] == pytest.approx(0.4) and base_row["mean_words"] == 8 and base_row["mean_tokens"] == 12
    cats = {(c["label"], c["category"]): c for c in res["categories"]}
    assert cats[("base", "algebra")]["accuracy"] == pytest.approx(
        statistics.fmean(p.id in {q.id for q in probs[:4]} for p in probs if p.category == "algebra")
    )
    assert [r["id"] for r in res["runs"]] == [r.id for r in runs]


def test_worse_than_baseline_is_degraded_on_the_adjusted_headline_p(project, store, tmp_path):
    probs = add_problems(store, 10)
    runs = [add_run(store, project, tmp_path, s) for s in (0, 1, 2)]
    knows(None, probs[:9])
    for run, k in zip(runs, (2, 3, 2)):
        knows(run, probs[:k])
    evaluate(parse_config(""), store, RecordingEvents(), project=project, job_cls=FakeJob)
    (conf,) = collect(store, n_boot=500)["configurations"]
    # 7 problems lost at every seed but one: all signs one way, exact p = 2 / 2^7, mid-p half that.
    assert conf["comparison"]["test"]["p_conventional"] == pytest.approx(2 / 2**7)
    assert conf["p"] == pytest.approx(1 / 2**7) and conf["p_adjusted"] == conf["p"]
    assert conf["verdict"] == "DEGRADED" and conf["degraded"]
    assert conf["flips"] == {"gained": 0, "lost": 20, "unit": "seed × problem pairs"}


def test_a_seeds_override_that_cannot_pair_is_reported_unpaired(project, store, tmp_path):
    probs = add_problems(store, 6)
    runs = [add_run(store, project, tmp_path, s) for s in (0, 1)]
    knows(None, probs[:3])
    for run in runs:
        knows(run, probs[:4])
    # The base only at seed 0; run 1 is evaluated at seed 0 too, so both runs share one base draw.
    res = evaluate(parse_config("[eval]\nseeds = [0]\n"), store, RecordingEvents(), project=project, job_cls=FakeJob)
    assert res.generated == 6 + 2 * 6
    out = collect(store, n_boot=500)
    (conf,) = out["configurations"]
    assert not conf["paired"] and conf["test"].startswith("within-problem permutation")
    assert any("do not pair up" in n for n in out["notes"])
    recompute(conf)


def test_a_run_without_evaluations_and_a_partial_problem_set_are_named(project, store, tmp_path):
    add_problems(store, 6)
    add_run(store, project, tmp_path, 0)
    evaluate(parse_config(""), store, RecordingEvents(), project=project, job_cls=FakeJob)
    add_run(store, project, tmp_path, 1, label="late")
    out = collect(store, n_boot=200)
    assert any("run late-s1 (late) finished but has no evaluations" in n for n in out["notes"])
    # A seventh problem, evaluated only for the new run and the base (both at seed 0, by override).
    store.insert_problems([Problem(id="t99", question="Question t99: 1?", answer="1", split="test", source="bundled")])
    evaluate(
        parse_config("[eval]\nseeds = [0]\n"),
        store,
        RecordingEvents(),
        project=project,
        runs=["late-s1"],
        job_cls=FakeJob,
    )
    out = collect(store, n_boot=200)
    assert (
        "acotd (R1) vs base: acotd answered 6 problems, base 7; compared on the 6 both answered at every seed"
        in out["notes"]
    )
    assert {c["label"]: c["n"] for c in out["configurations"]} == {"acotd": 6, "late": 7}


def test_cot_quality_rated_by_the_judge_with_one_repair(project, store, tmp_path):
    add_problems(store, 3)
    bodies = []

    def judge(request):
        body = json.loads(request.content)
        bodies.append(body)
        text = body["messages"][1]["content"]
        if len(body["messages"]) > 2:
            content = '{"coherence": 2, "completeness": 3, "factual": 4}'
        elif "Question t00" in text:
            content = "I think it is fine."
        else:
            content = '```json\n{"coherence": 5, "completeness": 4, "factual": 3, "rationale": "ok"}\n```'
        return httpx.Response(
            200,
            json={
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5},
            },
        )

    cfg = parse_config(JUDGE)
    res = evaluate(
        cfg,
        store,
        RecordingEvents(),
        project=project,
        tiers=True,
        job_cls=FakeJob,
        transport=httpx.MockTransport(judge),
        retry=FAST,
    )
    assert (res.rated, res.unrated) == (3, 0)  # the first tier only, by default
    assert len(bodies) == 4
    ratings = store.eval_ratings()
    assert sorted(r["cotqs"] for r in ratings.values()) == [3.0, 4.0, 4.0]
    assert {r["model"] for r in ratings.values()} == {"judge-1"}
    again = evaluate(
        cfg,
        store,
        RecordingEvents(),
        project=project,
        tiers=True,
        job_cls=FakeJob,
        transport=httpx.MockTransport(judge),
        retry=FAST,
    )
    assert (again.generated, again.rated, again.rating_skipped) == (0, 0, 3) and len(bodies) == 4
    (base,) = [t for t in collect(store)["tiers"] if t["tier"] == "R1"]
    assert base["label"] == "base"


def test_rules_judge_rates_nothing_and_says_so(project, store):
    add_problems(store, 2)
    res = evaluate(parse_config(""), store, RecordingEvents(), project=project, job_cls=FakeJob)
    assert res.rated == 0 and "rules judge" in res.notes[0]
    assert collect(store)["judge"].startswith("none")


@pytest.mark.parametrize(
    "text, ok",
    [
        ('{"coherence": 5, "completeness": 4, "factual": 3}', True),
        ('{"coherence": "4", "completeness": 4.0, "factual": 1}', True),
        ('{"coherence": 6, "completeness": 4, "factual": 3}', False),
        ('{"coherence": 4.5, "completeness": 4, "factual": 3}', False),
        ('{"coherence": true, "completeness": 4, "factual": 3}', False),
        ('{"coherence": 4}', False),
        ("no json here", False),
    ],
)
def test_parse_rating(text, ok):
    if ok:
        r = parse_rating(text)
        assert r.cotqs == pytest.approx((r.coherence + r.completeness + r.factual) / 3)
    else:
        with pytest.raises(ValueError):
            parse_rating(text)


def test_a_budget_too_small_for_an_answer_is_a_wrong_answer(project, store, tiny_model_dir):
    pytest.importorskip("mlx.core")
    add_problems(store, 2)
    cfg = parse_config(f'[student]\nmodel = "{tiny_model_dir}"\nmax_tokens = 8\n[eval.tiers.R1]\nmax_tokens = 1\n')
    res = evaluate(cfg, store, RecordingEvents(), project=project)
    assert res.status == "done" and res.failed == 0
    attempts = store.eval_attempts()
    assert len(attempts) == 2
    assert all(a.correct is False and a.finish_reason == "length" and a.n_tokens == 1 for a in attempts)


def test_teacher_choice_compares_teachers_on_the_problems_they_all_had(store):
    from app.records import Trace
    from app.results import teachers

    add_problems(store, 10)
    for i in range(10):
        store.upsert_trace(
            Trace(problem_id=f"t{i:02d}", role="long", provider="openai", model="big", text="x", verified=i < 8)
        )
        if i < 9:  # the small teacher never got t09
            store.upsert_trace(
                Trace(problem_id=f"t{i:02d}", role="long", provider="openai", model="small", text="x", verified=i < 5)
            )
        store.upsert_trace(Trace(problem_id=f"t{i:02d}", role="short", provider="reference", text="x", verified=True))
    out = teachers(store)
    rows = {r["teacher"]: r for r in out["rows"]}
    assert set(rows) == {"openai big", "openai small"}
    assert (rows["openai big"]["verified"], rows["openai big"]["accuracy"]) == (8, 0.8)
    assert (rows["openai small"]["problems"], rows["openai small"]["verified"]) == (9, 5)
    choice = out["choice"]["long"]
    assert choice["shared_problems"] == 9 and choice["ratio"] == pytest.approx(8 / 5)
    assert choice["prefer_strongest"] and choice["strongest"] == "openai big"
    assert "short" not in out["choice"]


def test_report_json_statistics_recompute_from_its_own_per_seed_values(project, store, tmp_path):
    from app.report import write_report

    probs = add_problems(store, 10)
    runs = [add_run(store, project, tmp_path, s) for s in (0, 1, 2)]
    knows(None, probs[:5])
    for run, k in zip(runs, (3, 4, 4)):
        knows(run, probs[:k])
    evaluate(parse_config(""), store, RecordingEvents(), project=project, tiers=True, job_cls=FakeJob)
    files = write_report(store, tmp_path / "report")
    data = json.loads(files.json.read_text())
    assert set(files.skipped) == {"training_curves", "grades"}  # no metrics, no grades here
    assert len(data["configurations"]) == 6  # one configuration × six tiers
    for conf in data["configurations"]:
        recompute(conf)
        assert conf["exploratory"] == (conf["tier"] != "R1")
    recompute_family(data["configurations"], "R1")
    # ... and equal what the store holds.
    for run in runs:
        mine = [a for a in store.eval_attempts(run_id=run.id) if a.tier == "R1"]
        (r1,) = [c for c in data["configurations"] if c["tier"] == "R1"]
        assert r1["accuracy_by_seed"][str(run.seed)] == pytest.approx(statistics.fmean(bool(a.correct) for a in mine))
    assert "Benjamini–Hochberg" in files.markdown.read_text()


def test_runs_command_lists_runs(project, store, tmp_path, capsys):
    from app.cli import main

    assert main(["--project", str(project), "runs"]) == 0
    assert "no training runs yet" in capsys.readouterr().out
    add_run(store, project, tmp_path, 3, label="acotd")
    assert main(["--project", str(project), "runs"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.split()[:4] == ["acotd-s3", "acotd", "3", "done"]
    add_problems(store, 1)
    with pytest.raises(EvalError, match="no run 'zzz' \\(see `tailor runs`\\)"):
        evaluate(parse_config(""), store, RecordingEvents(), project=project, runs=["zzz"], job_cls=FakeJob)
