"""`tailor grade`: the grading rules, judge-output parsing, the rules and remote judges
(httpx.MockTransport), repair retry, resumability, disagreement and manual overrides."""

import itertools
import json

import httpx
import pytest

from app.config import parse_config
from app.errors import TailorError
from app.events import RecordingEvents
from app.pipeline import grade as grade_mod
from app.pipeline.grade import (
    GradeError,
    JudgeOutputError,
    combine_grade,
    format_ratio,
    grade,
    is_disagreement,
    parse_judge_output,
    parse_override,
    record_overrides,
)
from app.prompts import fence, load_prompt, parse_prompt
from app.records import Attempt, Problem
from app.remote import RemoteFatalError, RetryPolicy

FAST = RetryPolicy(max_retries=1, backoff_base=0.0, backoff_max=0.0, retry_after_max=0.0)
RULES_CFG = parse_config("")
JUDGE_TOML = """
[judge]
provider = "openai"
base_url = "https://judge.test/v1"
model = "judge-1"
concurrency = {concurrency}
"""


def judge_cfg(concurrency=4):
    return parse_config(JUDGE_TOML.format(concurrency=concurrency))


# -- the grading rules --------------------------------------------------------------

# (answer_correct, logical, complete, minor_error) -> grade
TRUTH_TABLE = {
    # answer correct: Easy iff logical and complete; otherwise "answer right, reasoning
    # flawed" -> Medium (the documented decision)
    (True, True, True, False): "easy",
    (True, True, True, True): "easy",
    (True, True, False, False): "medium",
    (True, True, False, True): "medium",
    (True, False, True, False): "medium",
    (True, False, True, True): "medium",
    (True, False, False, False): "medium",
    (True, False, False, True): "medium",
    # answer wrong: Medium iff complete and (logical or only minor errors)
    (False, True, True, False): "medium",
    (False, True, True, True): "medium",
    (False, False, True, True): "medium",
    # answer wrong: Hard iff incomplete, or illogical beyond a minor error
    (False, False, True, False): "hard",
    (False, True, False, False): "hard",
    (False, True, False, True): "hard",
    (False, False, False, False): "hard",
    (False, False, False, True): "hard",
}


def test_truth_table_covers_every_case():
    assert set(TRUTH_TABLE) == set(itertools.product([True, False], repeat=4))


@pytest.mark.parametrize("case, expected", sorted(TRUTH_TABLE.items()))
def test_combine_grade_truth_table(case, expected):
    assert combine_grade(*case) == expected


def test_easy_needs_a_correct_answer_and_hard_a_wrong_one():
    for case in itertools.product([True, False], repeat=4):
        g = combine_grade(*case)
        if g == "easy":
            assert case[0] and case[1] and case[2]
        if g == "hard":
            assert not case[0]


def test_disagreement():
    assert not is_disagreement("easy", "easy", True, True)
    assert not is_disagreement("easy", "easy", True, None)
    assert is_disagreement("medium", "easy", True, True)  # grades differ
    assert is_disagreement("hard", "hard", False, True)  # judge thinks the answer is right
    assert is_disagreement("easy", "easy", True, False)


@pytest.mark.parametrize(
    "counts, ratio",
    [
        ((53, 10, 31), "5.3:1:3.1"),
        ((0, 0, 0), "0:0:0"),
        ((10, 0, 5), "2:0:1"),
        ((3, 3, 3), "1:1:1"),
        ((0, 7, 0), "0:1:0"),
        ((2, 3, 4), "1:1.5:2"),
    ],
)
def test_format_ratio(counts, ratio):
    assert format_ratio(*counts) == ratio


# -- judge output parsing -------------------------------------------------------------

VERDICT = {
    "answer_correct": True,
    "logical": True,
    "complete": True,
    "minor_error": False,
    "grade": "easy",
    "rationale": "Sound and complete.",
}


def test_parse_plain_json():
    v = parse_judge_output(json.dumps(VERDICT))
    assert (v.logical, v.complete, v.minor_error, v.grade, v.answer_correct) == (True, True, False, "easy", True)
    assert v.rationale == "Sound and complete."


def test_parse_fenced_block_and_prose_around_it():
    fenced = "Here is my grading:\n```json\n" + json.dumps(VERDICT, indent=2) + "\n```\nHope this helps."
    assert parse_judge_output(fenced).grade == "easy"
    bare_fence = "```\n" + json.dumps(VERDICT) + "\n```"
    assert parse_judge_output(bare_fence).grade == "easy"
    inline = "My verdict: " + json.dumps({**VERDICT, "grade": "hard"}) + " (end)"
    assert parse_judge_output(inline).grade == "hard"


def test_parse_ignores_extra_keys_and_optional_fields():
    v = parse_judge_output(
        json.dumps(
            {
                "logical": False,
                "complete": True,
                "minor_error": True,
                "grade": "medium",
                "confidence": 0.9,
                "notes": ["x"],
            }
        )
    )
    assert v.grade == "medium" and v.answer_correct is None and v.rationale == ""


@pytest.mark.parametrize("raw, norm", [("Easy", "easy"), ("EASY", "easy"), (" Hard. ", "hard"), ("mEdIuM", "medium")])
def test_parse_normalises_grade_case(raw, norm):
    assert parse_judge_output(json.dumps({**VERDICT, "grade": raw})).grade == norm


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("The student's reasoning is sound, so I would call this easy.", "not a JSON object"),
        ("", "empty"),
        (None, "empty"),
        ("[1, 2, 3]", "not a JSON object"),
        (json.dumps({**VERDICT, "grade": "trivial"}), "'trivial' is not one of easy, medium, hard"),
        (json.dumps({**VERDICT, "grade": 3}), "grade"),
        (json.dumps({"grade": "easy", "rationale": "ok"}), "lacks logical, complete, minor_error"),
        (json.dumps({**VERDICT, "logical": None}), "logical"),
        (json.dumps({**VERDICT, "complete": "maybe"}), "complete"),
        ('{"logical": true, "complete": tru', "not a JSON object"),  # cut off mid-object
    ],
)
def test_parse_rejects_malformed(text, fragment):
    with pytest.raises(JudgeOutputError) as e:
        parse_judge_output(text)
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg


def test_parse_override():
    assert parse_override("p1=hard") == ("p1", "hard")
    assert parse_override(" p1 = Medium ") == ("p1", "medium")
    for bad in ("p1", "p1=", "=hard", "p1=trivial"):
        with pytest.raises(GradeError):
            parse_override(bad)


def test_grade_prompt_has_the_placeholders():
    p = load_prompt("grade")
    msgs = p.render(question="Q", reference_answer="R", student_answer="A", student_cot="C $x$ {y}")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "C $x$ {y}" in msgs[1]["content"] and "R" in msgs[1]["content"]


# -- fixtures -------------------------------------------------------------------------


def add(store, pid, *, answer="4", extracted="4", text=None, error=None, split="train", key=None):
    store.insert_problems([Problem(id=pid, question=f"Question {pid}: what is 2+2?", answer=answer, split=split)])
    return store.insert_attempt(
        Attempt(
            key=key or f"k-{pid}",
            problem_id=pid,
            purpose="diagnose",
            model="student",
            prompt_hash="sp",
            params={},
            text=text if text is not None else f"2+2 = {extracted}. The answer is \\boxed{{{extracted}}}.",
            extracted=None if error else extracted,
            error=error,
        )
    )


def grades_of(store, pid):
    return [r for r in store.db.query("SELECT * FROM grades WHERE problem_id = ? ORDER BY id", [pid])]


# -- the rules judge ------------------------------------------------------------------


def test_rules_judge_grades_resumes_and_reports_the_ratio(store):
    add(store, "p1")
    add(store, "p2", extracted="5")
    add(store, "p3", extracted="4")
    add(store, "p4", error="generation failed: out of memory")
    add(store, "v1", split="valid")  # other splits are not graded by default
    store.insert_problems([Problem(id="p5", question="never diagnosed", answer="1")])
    ev = RecordingEvents()
    res = grade(RULES_CFG, store, ev)
    assert (res.total, res.graded, res.ungraded, res.skipped) == (4, 2 + 1, 1, 0)
    assert res.reasons == {"p4": "diagnosis failed: generation failed: out of memory"}
    assert (res.easy, res.medium, res.hard, res.ratio) == (2, 0, 1, "2:0:1")
    cur = store.current_grades(split="train")
    assert set(cur) == {"p1", "p2", "p3", "p4"}
    assert cur["p1"].grade == "easy" and cur["p1"].provider == "rules" and cur["p1"].prompt_hash is None
    assert "CoT not assessed" in cur["p1"].rationale and cur["p1"].judge_grade == "easy"
    assert cur["p2"].grade == "hard" and cur["p2"].answer_correct is False
    assert cur["p4"].grade is None and cur["p4"].error.startswith("diagnosis failed")
    assert ev.log[-1][0] == "done" and "E:M:H = 2:0:1" in ev.log[-1][1]

    again = grade(RULES_CFG, store, RecordingEvents())
    assert (again.graded, again.ungraded, again.skipped, again.ratio) == (0, 0, 4, "2:0:1")
    assert store.count("grades") == 4  # nothing re-written


def test_latest_diagnosis_is_graded_and_a_new_attempt_is_regraded(store):
    add(store, "p1", extracted="5")
    grade(RULES_CFG, store, RecordingEvents())
    assert store.current_grades()["p1"].grade == "hard"
    newer = store.insert_attempt(
        Attempt(
            key="k-p1-b",
            problem_id="p1",
            purpose="diagnose",
            model="student",
            prompt_hash="sp",
            params={},
            text="The answer is 4",
            extracted="4",
        )
    )
    res = grade(RULES_CFG, store, RecordingEvents())
    assert res.graded == 1
    cur = store.current_grades()["p1"]
    assert cur.grade == "easy" and cur.attempt_id == newer


def test_nothing_diagnosed_is_a_clear_error(store):
    store.insert_problems([Problem(id="p1", question="q", answer="1")])
    with pytest.raises(GradeError, match="no diagnosed problems in split 'train'"):
        grade(RULES_CFG, store, RecordingEvents())
    assert store.count("grades") == 0


def test_answer_check_is_recomputed_not_taken_from_the_attempt(store):
    add(store, "p1", answer="\\frac{1}{2}", extracted="0.5")
    grade(RULES_CFG, store, RecordingEvents())
    assert store.current_grades()["p1"].answer_correct is True


# -- a remote judge over MockTransport ---------------------------------------------------


def reply(content, status=200):
    if status != 200:
        return httpx.Response(status, json={"error": {"message": "bad request: prompt too long"}})
    return httpx.Response(
        200,
        json={
            "id": "x",
            "object": "chat.completion",
            "model": "judge-1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20},
        },
    )


def verdict(**kw):
    return json.dumps({**VERDICT, **kw})


class Judge:
    """Answers by the problem id found in the prompt; `repairs[pid]` answers a repair call."""

    def __init__(self, first: dict, repairs: dict | None = None, default=None):
        self.first, self.repairs = first, repairs or {}
        self.default = default
        self.bodies: list[dict] = []

    def pid(self, body):
        text = body["messages"][1]["content"]
        return text.split("Question ", 1)[1].split(":", 1)[0]

    def __call__(self, request):
        body = json.loads(request.content)
        self.bodies.append(body)
        pid = self.pid(body)
        repair = len(body["messages"]) > 2
        table = self.repairs if repair else self.first
        action = table.get(pid, self.default)
        if action is None:
            raise AssertionError(f"unexpected {'repair ' if repair else ''}call for {pid}")
        if isinstance(action, httpx.Response):
            return action
        if isinstance(action, int):
            return reply(None, status=action)
        return reply(action)

    def calls(self, pid, repair=False):
        return [b for b in self.bodies if self.pid(b) == pid and (len(b["messages"]) > 2) == repair]

    @property
    def transport(self):
        return httpx.MockTransport(self)


def test_remote_judge_end_to_end(store):
    add(store, "p1")  # correct; judge: easy
    add(store, "p2", extracted="5")  # wrong; judge in a fenced block: medium
    add(store, "p3")  # correct but the judge finds the CoT illogical (and says easy): medium + disagreement
    add(store, "p4", extracted="5")  # prose first, valid after the repair
    add(store, "p5", extracted="5")  # prose twice -> ungraded
    add(store, "p6")  # grade outside the set twice -> ungraded
    add(store, "p7")  # HTTP 400 -> ungraded, no repair
    add(store, "p8", error="generation failed")  # never sent to the judge
    add(store, "p9", extracted="5")  # wrong; judge claims the answer is right: hard + disagreement
    judge = Judge(
        first={
            "p1": verdict(),
            "p2": "```json\n" + verdict(answer_correct=False, minor_error=True, grade="Medium") + "\n```",
            "p3": verdict(logical=False, grade="easy"),
            "p4": "The reasoning looks fine to me.",
            "p5": "I think it is hard.",
            "p6": verdict(grade="trivial"),
            "p7": 400,
            "p9": verdict(answer_correct=True, logical=False, complete=False, grade="hard"),
        },
        repairs={
            "p4": verdict(answer_correct=False, logical=False, complete=False, grade="HARD"),
            "p5": "Still prose, sorry.",
            "p6": verdict(grade="extreme"),
        },
    )
    ev = RecordingEvents()
    res = grade(judge_cfg(), store, ev, transport=judge.transport, retry=FAST)
    ph = load_prompt("grade").hash
    cur = store.current_grades(split="train")

    assert (res.total, res.graded, res.ungraded, res.skipped) == (9, 5, 4, 0)
    assert [cur[p].grade for p in ("p1", "p2", "p3", "p4", "p9")] == ["easy", "medium", "medium", "hard", "hard"]
    assert (res.easy, res.medium, res.hard, res.ratio) == (1, 2, 2, "1:2:2")
    assert res.disagreements == res.new_disagreements == 2
    assert cur["p3"].disagreement and cur["p3"].judge_grade == "easy"
    assert cur["p9"].disagreement and cur["p9"].answer_correct is False
    assert not cur["p1"].disagreement and not cur["p2"].disagreement and cur["p2"].judge_grade == "medium"

    g1 = cur["p1"]
    assert (g1.provider, g1.model, g1.prompt_hash) == ("openai", "judge-1", ph)
    assert (g1.logical, g1.complete, g1.minor_error, g1.answer_correct) == (True, True, False, True)
    assert g1.rationale == "Sound and complete." and store.get_api_call(g1.api_call_key).stage == "grade"

    # the repair: the bad reply and an instruction appended, a different cache key, JSON mode
    rep = judge.calls("p4", repair=True)[0]
    assert [m["role"] for m in rep["messages"]] == ["system", "user", "assistant", "user"]
    assert rep["messages"][2]["content"] == "The reasoning looks fine to me."
    assert "only the JSON object" in rep["messages"][3]["content"]
    assert rep["response_format"] == {"type": "json_object"}
    assert cur["p4"].api_call_key != store.current_grades()["p1"].api_call_key
    assert store.get_api_call(cur["p4"].api_call_key).request["variant"] == "repair"

    assert res.reasons["p5"].startswith("unreadable even after one repair call: judge output is not a JSON object")
    assert "'extreme' is not one of easy, medium, hard" in res.reasons["p6"]
    assert res.reasons["p7"].startswith("judge call failed: HTTP 400") and not judge.calls("p7", repair=True)
    assert res.reasons["p8"] == "diagnosis failed: generation failed" and not judge.calls("p8")
    for p in ("p5", "p6", "p7", "p8"):
        assert cur[p].grade is None and cur[p].error == res.reasons[p]
    # the user sees the student's answer and CoT and the reference answer
    sent = judge.calls("p2")[0]["messages"][1]["content"]
    assert f"Reference answer:\n{fence('4')}" in sent
    assert f"final answer (as extracted from the response):\n{fence('5')}" in sent
    assert "\\boxed{5}" in sent
    done = ev.log[-1]
    assert done[0] == "done" and "E:M:H = 1:2:2" in done[1] and "2 judge/checker disagreements" in done[1]
    assert any(e[0] == "message" and "ungraded p5" in e[1] for e in ev.log)

    # Re-run: graded problems (and the unchanged failed diagnosis) are skipped; ungraded
    # ones are asked again with a new request (the unreadable replies are cached: asking the
    # same request would change nothing), and each keeps its one grade row.
    rows = store.count("grades")
    n_before = len(judge.bodies)
    judge.first["p7"] = verdict()
    again = grade(judge_cfg(), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    sent = [b["messages"][1]["content"] for b in judge.bodies[n_before:]]
    assert len(sent) == 5  # p5 and p6 with their repairs, p7
    assert (again.skipped, again.graded, again.ungraded) == (6, 1, 2)
    assert set(again.reasons) == {"p5", "p6"}
    cur = store.current_grades()
    assert cur["p7"].grade == "easy" and (cur["p5"].tries, cur["p6"].tries, cur["p7"].tries) == (2, 2, 2)
    assert store.count("grades") == rows
    # A third try, then no more: `grade_tries` (3) askings in all, and the exit code says so.
    grade(judge_cfg(), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    n_before = len(judge.bodies)
    last = grade(judge_cfg(), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    assert len(judge.bodies) == n_before and last.given_up == 2 and last.ungraded == 0
    assert store.count("grades") == rows and store.current_grades()["p5"].tries == 3
    assert "2 left ungraded after every try" in last.summary()


def test_a_changed_prompt_grades_again(store, monkeypatch):
    add(store, "p1")
    judge = Judge(first={}, default=verdict())
    grade(judge_cfg(), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    assert len(judge.bodies) == 1
    grade(judge_cfg(), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    assert len(judge.bodies) == 1  # same judge, same prompt: skipped

    real = load_prompt("grade")
    raw = (real.sections[0][1] + " Be brief.").encode()
    changed = parse_prompt("grade", b"## system\n" + raw + b"\n## user\n" + real.sections[1][1].encode())
    assert changed.hash != real.hash
    monkeypatch.setattr(grade_mod, "load_prompt", lambda name: changed)
    res = grade(judge_cfg(), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    assert res.graded == 1 and len(judge.bodies) == 2
    assert store.current_grades()["p1"].prompt_hash == changed.hash
    assert judge.bodies[1]["messages"][0]["content"].endswith("Be brief.")


def test_switching_from_rules_to_a_remote_judge_grades_again(store):
    add(store, "p1")
    grade(RULES_CFG, store, RecordingEvents())
    judge = Judge(first={}, default=verdict(logical=False, grade="medium"))
    res = grade(judge_cfg(), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    assert res.graded == 1 and store.current_grades()["p1"].grade == "medium"


def test_fatal_error_stops_the_stage_and_keeps_finished_verdicts(store):
    # concurrency 1: one request at a time, each verdict stored as it arrives
    ids = [f"p{i:02d}" for i in range(40)]
    for pid in ids:
        add(store, pid)
    judge = Judge(first={"p35": httpx.Response(401, json={"error": {"message": "bad key"}})}, default=verdict())
    with pytest.raises(RemoteFatalError, match="HTTP 401"):
        grade(judge_cfg(concurrency=1), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    cur = store.current_grades()
    assert set(ids[:35]) <= set(cur) and "p35" not in cur and all(g.grade == "easy" for g in cur.values())


def test_limit_grades_only_the_first_n(store):
    for pid in ("p1", "p2", "p3"):
        add(store, pid)
    res = grade(RULES_CFG, store, RecordingEvents(), limit=2)
    assert res.total == 2 and set(store.current_grades()) == {"p1", "p2"}


# -- overrides ---------------------------------------------------------------------------


def test_override_wins_is_marked_and_is_not_regraded(store):
    add(store, "p1")
    add(store, "p2", extracted="5")
    grade(RULES_CFG, store, RecordingEvents())
    ev = RecordingEvents()
    res = record_overrides(RULES_CFG, store, ev, ["p1=HARD", "p2=medium"])
    assert res.overrides == 2 and (res.easy, res.medium, res.hard) == (0, 1, 1) and res.ratio == "0:1:1"
    cur = store.current_grades()
    assert cur["p1"].grade == "hard" and cur["p1"].is_override and cur["p1"].provider == "manual"
    assert cur["p1"].answer_correct is True and cur["p1"].attempt_id is not None
    assert ev.log[-1][0] == "done" and "E:M:H = 0:1:1" in ev.log[-1][1]

    judge = Judge(first={})  # any call would fail the test
    again = grade(judge_cfg(), store, RecordingEvents(), transport=judge.transport, retry=FAST)
    assert again.skipped == 2 and not judge.bodies
    assert store.current_grades()["p1"].grade == "hard"


@pytest.mark.parametrize(
    "specs, fragment",
    [
        (["p1=hard", "nope=easy"], "no problem with id 'nope'"),
        (["p1=extreme"], "not one of easy, medium, hard"),
        (["p1"], "expected PROBLEM_ID=GRADE"),
        (["p1=hard", "p1=easy"], "two grades"),
        ([], "no PROBLEM_ID=GRADE"),
    ],
)
def test_bad_overrides_write_nothing(store, specs, fragment):
    add(store, "p1")
    with pytest.raises(GradeError, match=fragment):
        record_overrides(RULES_CFG, store, RecordingEvents(), specs)
    assert store.count("grades") == 0


def test_override_without_a_diagnosis(store):
    store.insert_problems([Problem(id="p1", question="q", answer="1")])
    record_overrides(RULES_CFG, store, RecordingEvents(), ["p1=easy"])
    g = store.current_grades()["p1"]
    assert g.grade == "easy" and g.attempt_id is None and g.answer_correct is None


def test_a_judge_that_cannot_start_writes_nothing(store, monkeypatch):
    add(store, "p1")
    add(store, "p2", error="generation failed")
    monkeypatch.delenv("JUDGE_KEY_FOR_TEST", raising=False)
    cfg = parse_config(JUDGE_TOML.format(concurrency=2) + 'api_key_env = "JUDGE_KEY_FOR_TEST"\n')
    with pytest.raises(TailorError, match="JUDGE_KEY_FOR_TEST is not set"):
        grade(cfg, store, RecordingEvents())
    assert store.count("grades") == 0
