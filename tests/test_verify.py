"""`tailor verify`: answer check, consistency judge, rejection sampling, the report."""

import json

import httpx
import pytest
from test_teach import CFG_TEXT, ITEMS, Teachers, add_dataset, completion, question

from app.config import OpenAIProvider, parse_config
from app.events import RecordingEvents
from app.pipeline.teach import DatasetError, Teacher, teach
from app.pipeline.verify import check_answer, parse_consistency, reason_kind, verify
from app.prompts import load_prompt
from app.records import Problem, Trace
from app.remote import RetryPolicy

NO_RETRY = RetryPolicy(max_retries=0)
JUDGE = """
[judge]
provider = "openai"
base_url = "https://judge.test/v1"
model = "judge-m"
"""


@pytest.fixture
def cfg():
    return parse_config(CFG_TEXT)


def teach_with(cfg, store, server, **kw):
    return teach(cfg, store, RecordingEvents(), dataset="ds", transport=server.transport, retry=NO_RETRY, **kw)


def verify_with(cfg, store, handler, **kw):
    return verify(
        cfg,
        store,
        kw.pop("events", RecordingEvents()),
        dataset="ds",
        transport=httpx.MockTransport(handler),
        retry=NO_RETRY,
        **kw,
    )


def by_problem(store):
    return {t.problem_id: t for t in store.traces()}


def test_accepts_right_answers_and_rejects_wrong_missing_truncated_and_failed(cfg, store):
    items = ITEMS + [
        ("p-none", 1, 1, "hard", "long"),
        ("p-cut", 2, 2, "easy", "short"),
        ("p-fail", 3, 3, "medium", "short"),
    ]
    add_dataset(store, items=items)

    def reply(model, style, q, n):
        return {
            question(4, 5): httpx.Response(200, json=completion("4 + 5 = 8.\nThe answer is \\boxed{8}.")),
            question(1, 1): httpx.Response(200, json=completion("I cannot finish this one.")),
            question(2, 2): httpx.Response(200, json=completion("Two plus two is \\boxed{4", finish="length")),
            question(3, 3): httpx.Response(400, json={"error": {"message": "bad request"}}),
        }.get(q)

    srv = Teachers(reply)
    teach_with(cfg, store, srv)
    res = verify_with(cfg, store, srv)
    t = by_problem(store)
    assert (t["p-easy"].verified, t["p-easy"].extracted, t["p-easy"].reject_reason) == (True, "5", None)
    assert t["p-hard"].verified is True
    assert (t["p-med"].verified, t["p-med"].extracted, t["p-med"].reject_reason) == (False, "8", "wrong answer (got 8)")
    assert (t["p-none"].verified, t["p-none"].reject_reason) == (False, "no final answer")
    assert (t["p-cut"].verified, t["p-cut"].reject_reason) == (False, "truncated")
    assert t["p-fail"].verified is False and t["p-fail"].reject_reason == "teacher call failed: HTTP 400: bad request"
    assert (res.taught, res.accepted, res.traces_checked) == (6, 2, 6)
    short, long_ = res.by_style["short"], res.by_style["long"]
    assert (short.taught, short.accepted) == (4, 1)
    assert (long_.taught, long_.accepted) == (2, 1)
    assert short.reasons == {"wrong answer": 1, "truncated": 1, "teacher call failed": 1}
    assert res.by_teacher["openai/teacher-a"].accepted == 1 and res.by_teacher["openai/teacher-b"].accepted == 1
    assert res.size_ratio == 1.0 and res.consistency == "off"
    assert len(srv.calls) == 6  # verify alone made no teacher call


def test_check_answer_strips_think_and_reasons():
    p = Problem(id="x", question="q", answer="1/2")
    ok = check_answer(Trace(problem_id="x", role="short", provider="openai", text="so \\boxed{0.5}"), p)
    assert ok.verified and ok.extracted == "0.5"
    think = Trace(problem_id="x", role="short", provider="openai", text="<think>\\boxed{1/2}</think>no idea")
    assert check_answer(think, p).reject_reason == "no final answer"
    assert reason_kind("wrong answer (got 3)") == "wrong answer"
    assert reason_kind("teacher call failed: HTTP 500") == "teacher call failed"


def test_size_ratio_between_teachers(cfg, store):
    add_dataset(store)  # teacher A: 2 short problems, teacher B: 1 long problem; all right
    srv = Teachers()
    teach_with(cfg, store, srv)
    res = verify_with(cfg, store, srv)
    assert res.verified_by_teacher == {"openai/teacher-a": 2, "openai/teacher-b": 1}
    assert res.size_ratio == 2.0 and res.size_ratio_teachers == ("openai/teacher-a", "openai/teacher-b")
    text = "\n".join(res.lines())
    assert "data-size ratio openai/teacher-a / openai/teacher-b = 2.00x" in text
    assert "teacher openai/teacher-a: 2/2 accepted (100.0 %" in text


def test_several_teachers_of_one_style_ratio_and_solved_by_all(cfg, store):
    add_dataset(
        store,
        items=[
            ("p1", 1, 2, "easy", "short"),
            ("p2", 2, 2, "easy", "short"),
            ("p3", 3, 2, "medium", "short"),
            ("p4", 4, 2, "hard", "long"),
        ],
    )
    prov = lambda m: OpenAIProvider(provider="openai", base_url="https://teach.test/v1", model=m)  # noqa: E731
    team = {
        "short": [Teacher("short", prov("strong")), Teacher("short", prov("weak"))],
        "long": [Teacher("long", prov("strong"))],
    }
    # "weak" gets only p1 right
    srv = Teachers(
        lambda m, s, q, n: (
            httpx.Response(200, json=completion("\\boxed{0}")) if m == "weak" and q != question(1, 2) else None
        )
    )
    teach_with(cfg, store, srv, teachers=team)
    ev = RecordingEvents()
    res = verify_with(cfg, store, srv, teachers=team, events=ev)
    assert res.verified_by_teacher == {"openai/strong": 4, "openai/weak": 1}
    assert res.size_ratio == 4.0
    assert res.size_ratio_by_style == {"short": 3.0}
    assert res.solved_by_all == {"short": 1, "long": 1}
    assert any("consider keeping only the stronger one" in e[1] for e in ev.log if e[0] == "message")


class Judge:
    """The judge endpoint: {"consistent": false} for the questions in `bad`, else true."""

    def __init__(self, teachers, bad=(), garbled=()):
        self.teachers, self.bad, self.garbled = teachers, set(bad), set(garbled)
        self.bodies: list[dict] = []

    def __call__(self, request):
        body = json.loads(request.content)
        if body["model"] != "judge-m":
            return self.teachers(request)
        self.bodies.append(body)
        user = body["messages"][-1]["content"]
        q = user.split("Problem:\n", 1)[1].split("\n")[1]  # inside its fence
        if q in self.garbled:
            return httpx.Response(200, json=completion("Looks fine to me."))
        verdict = {"consistent": q not in self.bad, "reason": "step 2 contradicts step 1" if q in self.bad else "ok"}
        return httpx.Response(200, json=completion("```json\n" + json.dumps(verdict) + "\n```"))


def test_consistency_check_with_a_mocked_judge(store):
    cfg = parse_config(CFG_TEXT + JUDGE)
    add_dataset(store)
    srv = Teachers(
        lambda m, s, q, n: httpx.Response(200, json=completion("\\boxed{0}")) if q == question(6, 7) else None
    )
    teach_with(cfg, store, srv)
    judge = Judge(srv, bad={question(2, 3)})
    res = verify_with(cfg, store, judge, consistency=True)
    # only the two answer-verified traces go to the judge, with the verify prompt
    assert len(judge.bodies) == 2 and res.judge_calls == 2 and res.consistency == "on"
    t = by_problem(store)
    assert judge.bodies[0]["messages"] == load_prompt("verify").render(
        question=question(2, 3), reference_answer="5", solution=t["p-easy"].text
    )
    assert (t["p-easy"].verified, t["p-easy"].consistent) == (False, False)
    assert t["p-easy"].reject_reason == "inconsistent (step 2 contradicts step 1)"
    assert (t["p-med"].verified, t["p-med"].consistent) == (True, True)
    assert (t["p-hard"].verified, t["p-hard"].consistent) == (False, None)
    assert res.by_style["short"].reasons == {"inconsistent": 1}
    assert store.get_api_call(judge_key(store)).prompt_hash == load_prompt("verify").hash

    # re-running asks the judge nothing new; without --consistency the answer check rules again
    again = verify_with(cfg, store, judge, consistency=True)
    assert len(judge.bodies) == 2 and again.judge_calls == 0
    verify_with(cfg, store, judge)
    assert by_problem(store)["p-easy"].verified is True


def judge_key(store):
    return next(r[0] for r in store.db.execute("SELECT key FROM api_calls WHERE stage = 'verify'"))


def test_unreadable_judge_reply_rejects_with_reason(store):
    cfg = parse_config(CFG_TEXT + JUDGE)
    add_dataset(store)
    srv = Teachers()
    teach_with(cfg, store, srv)
    verify_with(cfg, store, Judge(srv, garbled={question(4, 5)}), consistency=True)
    t = by_problem(store)["p-med"]
    assert t.verified is False and t.reject_reason == "consistency check failed: judge reply is not a JSON object"
    assert parse_consistency('{"consistent": "true", "reason": "x"}') == (True, "x")
    assert parse_consistency('{"reason": "x"}')[0] is None


def test_consistency_is_skipped_with_the_rules_judge(cfg, store):
    add_dataset(store)
    srv = Teachers()
    teach_with(cfg, store, srv)
    ev = RecordingEvents()
    res = verify_with(cfg, store, srv, consistency=True, events=ev)
    assert res.consistency == "skipped (rules judge)" and res.accepted == 3
    assert any("consistency check skipped" in e[1] for e in ev.log if e[0] == "message")


def test_rejection_sampling_asks_only_rejected_problems_at_most_n_more_times(cfg, store):
    add_dataset(store)

    # p-easy: wrong first, right the second time; p-hard: always wrong; p-med: right at once
    def reply(model, style, q, n):
        if q == question(6, 7) or (q == question(2, 3) and n == 1):
            return httpx.Response(200, json=completion("The answer is \\boxed{99}."))
        return None

    srv = Teachers(reply)
    teach_with(cfg, store, srv)
    assert len(srv.calls) == 3
    res = verify_with(cfg, store, srv, resample=3)
    more = srv.calls[3:]
    assert more.count(("teacher-a", "short", question(2, 3))) == 1  # stopped at the first accepted
    assert more.count(("teacher-b", "long", question(6, 7))) == 3  # N more, then gave up
    assert len(more) == 4 and res.resample_calls == 4 and res.resample_accepted == 1
    easy = sorted((t.variant, t.verified) for t in store.traces() if t.problem_id == "p-easy")
    assert easy == [(0, False), (1, True)]
    hard = sorted((t.variant, t.reject_reason) for t in store.traces() if t.problem_id == "p-hard")
    assert hard == [(v, "wrong answer (got 99)") for v in range(4)]
    assert res.by_teacher["openai/teacher-a"].accepted == 2 and res.by_teacher["openai/teacher-a"].first_try == 1
    assert res.by_style["long"].reasons == {"wrong answer": 1}

    again = verify_with(cfg, store, srv, resample=3)  # everything is already stored or cached
    assert len(srv.calls) == 7 and again.resample_calls == 0 and again.accepted == 2


def test_reference_teacher_is_not_resampled(store):
    cfg = parse_config("")
    add_dataset(store)
    store.db.execute("UPDATE problems SET answer = '0' WHERE id = 'p-hard'")
    teach(cfg, store, RecordingEvents(), dataset="ds")
    ev = RecordingEvents()
    res = verify(cfg, store, ev, dataset="ds", resample=2)
    assert res.accepted == 2 and res.resample_calls == 0 and store.count("traces") == 3
    assert any("not asked again" in e[1] for e in ev.log if e[0] == "message")


def test_verify_before_teach_and_unknown_dataset(cfg, store):
    add_dataset(store)
    with pytest.raises(DatasetError, match=r"no teacher traces .*run `tailor teach --dataset ds` first"):
        verify(cfg, store, RecordingEvents(), dataset="ds")
    with pytest.raises(DatasetError, match="unknown dataset 'other'"):
        verify(cfg, store, RecordingEvents(), dataset="other")
    srv = Teachers()
    teach_with(cfg, store, srv, only="short")
    with pytest.raises(DatasetError, match="pass the --only you taught with"):
        verify(cfg, store, RecordingEvents(), dataset="ds", only="long")
    assert verify(cfg, store, RecordingEvents(), dataset="ds", only="short").accepted == 3
