"""`tailor export`: mlx_lm chat JSONL in the student's own template, split by problem, manifest."""

import hashlib
import json

import httpx
import pytest
from test_teach import CFG_TEXT, Teachers, add_dataset, completion, question

from app.config import OpenAIProvider, parse_config
from app.events import RecordingEvents
from app.pipeline.export import ExportError, default_out_dir, export, format_cot, split_problems
from app.pipeline.teach import Teacher, teach
from app.pipeline.verify import verify
from app.prompts import load_prompt
from app.records import Dataset, DatasetItem, Problem
from app.remote import RetryPolicy

NO_RETRY = RetryPolicy(max_retries=0)
GRADES = [("easy", "short"), ("medium", "short"), ("hard", "long")]
# 12 training problems p00..p11 (grade by index), p05 and p10 answered wrongly by the teacher
ITEMS = [(f"p{i:02d}", i, 10 + i, *GRADES[i % 3]) for i in range(12)]
WRONG = {question(5, 15), question(10, 20)}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def cfg():
    return parse_config(CFG_TEXT)


@pytest.fixture
def taught(cfg, store):
    """A dataset taught and verified by mocked openai teachers, plus held-out problems in the store."""
    add_dataset(store, items=ITEMS)
    store.insert_problems(
        [
            Problem(id=f"t{i}", question=f"Test question {i}?", answer=str(i), split=s)
            for i, s in enumerate(["test", "test", "valid", "placement"])
        ]
    )
    srv = Teachers(lambda m, s, q, n: httpx.Response(200, json=completion("\\boxed{0}")) if q in WRONG else None)
    teach(cfg, store, RecordingEvents(), dataset="ds", transport=srv.transport, retry=NO_RETRY)
    verify(cfg, store, RecordingEvents(), dataset="ds", transport=srv.transport, retry=NO_RETRY)
    return srv


def test_export_writes_the_student_template_split_by_problem_with_a_matching_manifest(cfg, store, taught, project):
    res = export(cfg, store, RecordingEvents(), dataset="ds", project=project)
    assert res.out_dir == project / "runs" / "datasets" / "ds"
    train, valid = read_jsonl(res.train_path), read_jsonl(res.valid_path)
    by_question = {p.question: p for p in store.problems()}
    student = load_prompt("student_solve")

    def problems_of(rows):
        out = []
        for row in rows:
            msgs = row["messages"]
            assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
            q = msgs[1]["content"].split("Problem: ", 1)[1]
            p = by_question[q]
            assert msgs[:-1] == student.render(question=p.question)  # the evaluation template, exactly
            assert msgs[-1]["content"].splitlines()[-1] == f"The answer is \\boxed{{{p.answer}}}."
            out.append(p)
        return out

    train_p, valid_p = problems_of(train), problems_of(valid)
    assert all(p.split == "train" for p in train_p + valid_p)  # no test / valid / placement problem
    assert {p.id for p in train_p}.isdisjoint({p.id for p in valid_p})  # split by problem
    exported = {p.id for p in train_p + valid_p}
    assert exported == {pid for pid, *_ in ITEMS} - {"p05", "p10"}  # rejected traces stay out
    assert len(valid_p) == 1  # 10 % of 10 problems

    m = json.loads(res.manifest_path.read_text())
    c = m["counts"]
    assert (m["dataset"], m["strategy"], m["only"], m["intersect"]) == ("ds", "adaptive", None, False)
    assert c["items"] == 12 and c["problems_exported"] == 10 and c["items_without_verified_trace"] == 2
    assert c["train"]["examples"] == len(train) == res.train_examples and c["valid"]["examples"] == len(valid)
    assert c["train"]["problems"] + c["valid"]["problems"] == 10 and m["valid_problem_ids"] == [valid_p[0].id]
    grade_of = {pid: g for pid, _, _, g, _ in ITEMS}
    style_of = {pid: r for pid, _, _, _, r in ITEMS}
    for part, rows in (("train", train_p), ("valid", valid_p)):
        assert c[part]["by_grade"] == _count(grade_of[p.id] for p in rows)
        assert c[part]["by_style"] == _count(style_of[p.id] for p in rows)
    assert c["by_grade"] == _count(grade_of[p] for p in exported)
    assert c["by_style"] == {"short": 7, "long": 3}
    assert m["prompts"] == {
        "student_solve": student.hash,
        "teach_short": load_prompt("teach_short").hash,
        "teach_long": load_prompt("teach_long").hash,
    }
    assert [(t["style"], t["provider"], t["model"], t["examples"]) for t in m["teachers"]] == [
        ("short", "openai", "teacher-a", 7),
        ("long", "openai", "teacher-b", 3),
    ]
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl"):
        assert m["files"][name]["sha256"] == hashlib.sha256((res.out_dir / name).read_bytes()).hexdigest()
    assert sorted(p.name for p in res.out_dir.iterdir()) == [
        "manifest.json",
        "test.jsonl",
        "train.jsonl",
        "valid.jsonl",
    ]
    # test.jsonl: the test split in the same format (for `mlx_lm lora --test`), reference answers last
    tests = [json.loads(line)["messages"] for line in (res.out_dir / "test.jsonl").read_text().splitlines()]
    test_split = {p.question: p for p in store.problems(split="test")}
    assert len(tests) == len(test_split) == m["files"]["test.jsonl"]["examples"] > 0
    for msgs in tests:
        p = test_split[msgs[1]["content"].split("Problem: ", 1)[1]]
        assert msgs[:-1] == student.render(question=p.question)
        assert msgs[-1]["content"].endswith(f"The answer is \\boxed{{{p.answer}}}.")

    again = export(cfg, store, RecordingEvents(), dataset="ds", project=project)  # deterministic
    assert again.train_path.read_bytes() == res.train_path.read_bytes()
    assert again.manifest["valid_problem_ids"] == m["valid_problem_ids"]


def _count(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def test_only_ablation_exports_its_own_traces_to_its_own_dir(cfg, store, taught, project, tmp_path):
    teach(cfg, store, RecordingEvents(), dataset="ds", only="long", transport=taught.transport, retry=NO_RETRY)
    with pytest.raises(
        ExportError, match=r"8 teacher traces are not verified yet: run `tailor verify --dataset ds --only long`"
    ):
        export(cfg, store, RecordingEvents(), dataset="ds", project=project, only="long")
    verify(cfg, store, RecordingEvents(), dataset="ds", only="long", transport=taught.transport, retry=NO_RETRY)
    res = export(
        cfg,
        store,
        RecordingEvents(),
        dataset="ds",
        project=project,
        only="long",
        out=tmp_path / "long",
        valid_fraction=0.25,
    )
    assert res.out_dir == tmp_path / "long" and res.manifest["only"] == "long"
    assert res.manifest["counts"]["by_style"] == {"long": 10}
    assert res.valid_problems == 3 and res.train_problems == 7
    assert default_out_dir(project, "ds", "long") == project / "runs" / "datasets" / "ds-only-long"


def test_every_teacher_kept_one_example_each_and_intersect_ablation(cfg, store, project):
    items = [(f"p{i}", i, 1, "easy", "short") for i in range(4)]
    add_dataset(store, items=items)
    prov = lambda m: OpenAIProvider(provider="openai", base_url="https://teach.test/v1", model=m)  # noqa: E731
    team = {"short": [Teacher("short", prov("a")), Teacher("short", prov("b"))], "long": []}

    # teacher b is wrong on p0 at first, right on resampling; wrong on p1 always
    def reply(m, s, q, n):
        if m == "b" and (q == question(1, 1) or (q == question(0, 1) and n == 1)):
            return httpx.Response(200, json=completion("\\boxed{77}"))
        return None

    srv = Teachers(reply)
    kw = dict(dataset="ds", teachers=team, transport=srv.transport, retry=NO_RETRY)
    teach(cfg, store, RecordingEvents(), **kw)
    verify(cfg, store, RecordingEvents(), resample=1, **kw)
    res = export(cfg, store, RecordingEvents(), dataset="ds", project=project, teachers=team)
    rows = read_jsonl(res.train_path) + read_jsonl(res.valid_path)
    assert len(rows) == 7  # p0: a and b (b's variant 1), p1: a only, p2, p3: a and b
    assert res.manifest["counts"]["examples"] == 7
    assert {t["model"]: t["examples"] for t in res.manifest["teachers"]} == {"a": 4, "b": 3}
    # one problem's examples are all in one file
    valid_qs = {r["messages"][1]["content"] for r in read_jsonl(res.valid_path)}
    train_qs = {r["messages"][1]["content"] for r in read_jsonl(res.train_path)}
    assert valid_qs and valid_qs.isdisjoint(train_qs)

    inter = export(cfg, store, RecordingEvents(), dataset="ds", project=project, teachers=team, intersect=True)
    assert inter.out_dir.name == "ds-intersect"
    assert inter.manifest["counts"]["examples"] == 6 and inter.manifest["counts"]["problems_exported"] == 3
    assert inter.manifest["counts"]["left_out_by_intersect"] == 1


def test_refuses_held_out_problems_and_writes_nothing(cfg, store, project):
    add_dataset(store, items=[("p1", 1, 2, "easy", "short")])
    store.insert_problems([Problem(id="t1", question="Held out?", answer="1", solution="\\boxed{1}", split="test")])
    store.create_dataset(
        Dataset(
            name="leaky",
            strategy="random",
            params={},
            items=[
                DatasetItem(problem_id="p1", grade="easy", route="short"),
                DatasetItem(problem_id="t1", grade="easy", route="short"),
            ],
        )
    )
    ref = parse_config("")
    teach(ref, store, RecordingEvents(), dataset="leaky")
    verify(ref, store, RecordingEvents(), dataset="leaky")
    with pytest.raises(ExportError, match=r"holds 1 problem\(s\) outside the train split \(t1 \(test\)\)"):
        export(ref, store, RecordingEvents(), dataset="leaky", project=project)
    assert not (project / "runs").exists()


def test_duplicate_of_a_held_out_question_is_left_out(store, project):
    add_dataset(
        store, items=[("p1", 1, 2, "easy", "short"), ("p2", 2, 2, "easy", "short"), ("p3", 3, 2, "hard", "long")]
    )
    store.insert_problems([Problem(id="t1", question="  what is 2+2? ", answer="4", split="test")])
    ref = parse_config("")
    teach(ref, store, RecordingEvents(), dataset="ds")
    verify(ref, store, RecordingEvents(), dataset="ds")
    ev = RecordingEvents()
    res = export(ref, store, ev, dataset="ds", project=project)
    assert res.manifest["counts"]["problems_exported"] == 2
    assert res.manifest["counts"]["left_out_duplicate_of_held_out"] == 1
    assert any("also a valid/test/placement" in e[1] for e in ev.log if e[0] == "message")
    # reference traces: the reference teacher used no teach prompt
    assert res.manifest["prompts"] == {"student_solve": load_prompt("student_solve").hash}
    assert res.manifest["teachers"][0]["provider"] == "reference"


def test_bad_input_is_a_clear_error_and_writes_nothing(cfg, store, project):
    with pytest.raises(ExportError, match="--valid-fraction must be between 0 and 1"):
        export(cfg, store, RecordingEvents(), dataset="ds", project=project, valid_fraction=0)
    with pytest.raises(Exception, match="unknown dataset 'ds'"):
        export(cfg, store, RecordingEvents(), dataset="ds", project=project)
    add_dataset(store)
    with pytest.raises(ExportError, match=r"no verified traces to export: run `tailor teach --dataset ds`"):
        export(cfg, store, RecordingEvents(), dataset="ds", project=project)
    assert not (project / "runs").exists()


def test_format_cot_ends_with_the_final_answer_line():
    kept = "Add.\nThe answer is \\boxed{0.5}."
    assert format_cot(kept, "1/2") == kept  # an equivalent canonical line is kept
    assert format_cot("x = 80.\n\n**Final Answer:** $\\boxed{80}$\n", "80") == "x = 80.\n\nThe answer is \\boxed{80}."
    assert format_cot("<think>hmm, 79?</think>So the total is $\\boxed{80}$.", "80") == (
        "So the total is $\\boxed{80}$.\n\nThe answer is \\boxed{80}."
    )
    assert format_cot("Add.\nThe answer is \\boxed{7}.", "8").endswith("\n\nThe answer is \\boxed{8}.")


def test_split_problems_is_deterministic_and_by_problem():
    ids = [f"q{i}" for i in range(50)]
    train, valid = split_problems(ids, 0.1)
    assert len(valid) == 5 and set(train).isdisjoint(valid) and sorted(train + valid) == sorted(ids)
    assert split_problems(list(reversed(ids)), 0.1) == (train, valid)
    assert split_problems(["a", "b"], 0.01)[1] and split_problems(["a"], 0.5) == (["a"], [])


def reasoning_reply(m, s, q, n):
    """Both teachers think first (DeepSeek-R1 style reasoning_content), then answer right."""
    a, b = (int(x) for x in q.removeprefix("What is ").removesuffix("?").split("+"))
    body = completion(f"Add them.\nThe answer is \\boxed{{{a + b}}}.")
    body["choices"][0]["message"]["reasoning_content"] = f"THINKING about {a}+{b}: carry nothing."
    return httpx.Response(200, json=body)


@pytest.mark.parametrize("long_mode, short_mode", [(None, None), ("drop", "as-cot")])
def test_the_long_teachers_reasoning_is_the_long_cot_unless_dropped(store, project, long_mode, short_mode):
    text = CFG_TEXT
    if long_mode:
        text = text.replace('model = "teacher-b"', f'model = "teacher-b"\nkeep_reasoning = "{long_mode}"')
        text = text.replace('model = "teacher-a"', f'model = "teacher-a"\nkeep_reasoning = "{short_mode}"')
    cfg = parse_config(text)
    add_dataset(store, items=ITEMS)
    srv = Teachers(reasoning_reply)
    teach(cfg, store, RecordingEvents(), dataset="ds", transport=srv.transport, retry=NO_RETRY)
    verify(cfg, store, RecordingEvents(), dataset="ds", transport=srv.transport, retry=NO_RETRY)
    res = export(cfg, store, RecordingEvents(), dataset="ds", project=project)
    rows = read_jsonl(res.train_path) + read_jsonl(res.valid_path)
    grade_of = {question(a, b): g for _, a, b, g, _ in ITEMS}
    for row in rows:
        q = row["messages"][1]["content"].split("Problem: ", 1)[1]
        cot = row["messages"][-1]["content"]
        hard = grade_of[q] == "hard"  # Hard problems went to the long teacher
        kept = hard if long_mode is None else not hard
        assert cot.startswith("THINKING about") == kept, cot
        assert cot.splitlines()[-1].startswith("The answer is \\boxed{")  # the evaluated format
    m = json.loads(res.manifest_path.read_text())
    modes = {t["style"]: (t["keep_reasoning"], t["examples_with_reasoning"] > 0) for t in m["teachers"]}
    assert modes == (
        {"long": ("as-cot", True), "short": ("drop", False)}
        if long_mode is None
        else {"long": ("drop", False), "short": ("as-cot", True)}
    )


def test_contaminated_problems_are_named_and_left_out_on_request(store, project):
    from app.records import Dataset, DatasetItem

    # Long questions (13-gram overlap needs 13 words); reference teachers, so no calls.
    long_q = (
        "A train leaves the station at {} in the morning travelling at sixty miles per hour towards a "
        "city that is three hundred miles away; how many hours does the journey take"
    )
    others = [
        "A farmer plants five rows of apple trees with one tree in each row; how many trees",
        "Count the apples: five baskets hold one apple each in this orchard; how many apples",
        "Five friends each bring one book to the club meeting on Friday evening; how many books",
    ]
    problems = [
        Problem(
            id=f"p{i}",
            question=q + " (variant 0)?",
            answer="5",
            split="train",
            solution="300 / 60 = 5.\nThe answer is \\boxed{5}.",
        )
        for i, q in enumerate([long_q.format("nine")] + others)
    ]
    # A benchmark question one word away from p0's: not the same text, but 13-gram overlap catches it.
    bench = Problem(
        id="bench1", question=long_q.format("seven") + " (variant 0)?", answer="5", split="test", source="bench"
    )
    store.insert_problems(problems + [bench])
    store.create_dataset(
        Dataset(
            name="ds",
            strategy="adaptive",
            k=4,
            seed=0,
            params={},
            items=[DatasetItem(problem_id=p.id, grade="hard", route="long") for p in problems],
        )
    )
    cfg = parse_config("")
    teach(cfg, store, RecordingEvents(), dataset="ds")
    verify(cfg, store, RecordingEvents(), dataset="ds")
    ev = RecordingEvents()
    res = export(cfg, store, ev, dataset="ds", project=project)
    assert any(e[0] == "message" and "warning: " in e[1] and "overlap a test or benchmark" in e[1] for e in ev.log)
    m = json.loads(res.manifest_path.read_text())
    assert m["contamination"]["decontaminated"] is False and "p0" in m["contamination"]["overlapping_problems"]
    clean = export(cfg, store, RecordingEvents(), dataset="ds", project=project, decontaminate=True)
    m = json.loads(clean.manifest_path.read_text())
    assert m["contamination"]["decontaminated"] is True
    assert m["contamination"]["overlapping_problems"] == ["p0"] and m["counts"]["problems_exported"] == 3


def test_a_held_out_question_written_differently_is_still_left_out(cfg, store, taught, project):
    # "What is 1 + 11 ?" is p01's "What is 1+11?" with other spacing: the same question.
    store.insert_problems(
        [Problem(id="bench1", question="What is 1 + 11 ?", answer="12", split="test", source="bench")]
    )
    res = export(cfg, store, RecordingEvents(), dataset="ds", project=project)
    exported = {row["messages"][1]["content"] for row in read_jsonl(res.train_path) + read_jsonl(res.valid_path)}
    assert not any(question(1, 11) in q for q in exported)
