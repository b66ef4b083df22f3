"""`tailor teach`: routing by difficulty, the --only ablations, several teachers, resumability."""

import json
import re

import httpx
import pytest

from app.config import OpenAIProvider, parse_config
from app.events import RecordingEvents
from app.pipeline.teach import DatasetError, Teacher, configured_teachers, teach
from app.prompts import load_prompt
from app.records import Dataset, DatasetItem, Problem
from app.remote import RemoteFatalError, RetryPolicy

NO_RETRY = RetryPolicy(max_retries=0)
CFG_TEXT = """
[teachers.short]
provider = "openai"
base_url = "https://teach.test/v1"
model = "teacher-a"

[teachers.long]
provider = "openai"
base_url = "https://teach.test/v1"
model = "teacher-b"
"""
# (id, a, b, grade, route): "What is a+b?"
ITEMS = [("p-easy", 2, 3, "easy", "short"), ("p-med", 4, 5, "medium", "short"), ("p-hard", 6, 7, "hard", "long")]


def question(a, b):
    return f"What is {a}+{b}?"


def add_dataset(store, name="ds", items=ITEMS):
    store.insert_problems(
        Problem(
            id=pid,
            question=question(a, b),
            answer=str(a + b),
            split="train",
            solution=f"Add: {a} + {b} = {a + b}.\nThe answer is \\boxed{{{a + b}}}.",
        )
        for pid, a, b, _, _ in items
    )
    store.create_dataset(
        Dataset(
            name=name,
            strategy="adaptive",
            k=len(items),
            seed=0,
            params={},
            items=[DatasetItem(problem_id=pid, grade=g, route=r) for pid, _, _, g, r in items],
        )
    )


def completion(content, finish="stop"):
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


class Teachers:
    """MockTransport handler playing every teacher: records (model, style, question) per call."""

    def __init__(self, reply=None):
        self.calls: list[tuple[str, str, str]] = []
        self.reply = reply  # (model, style, question, n-th call for it) -> httpx.Response | None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        q = body["messages"][-1]["content"].split("Problem:\n", 1)[1].split("\n")[1]  # inside its fence
        style = next(s for s in ("short", "long") if body["messages"] == load_prompt(f"teach_{s}").render(question=q))
        self.calls.append((body["model"], style, q))
        n = sum(1 for c in self.calls if c == (body["model"], style, q))
        if self.reply is not None:
            resp = self.reply(body["model"], style, q, n)
            if resp is not None:
                return resp
        a, b = map(int, re.findall(r"\d+", q))
        return httpx.Response(200, json=completion(f"{a} + {b} = {a + b}.\nThe answer is \\boxed{{{a + b}}}."))

    @property
    def transport(self):
        return httpx.MockTransport(self)


@pytest.fixture
def cfg():
    return parse_config(CFG_TEXT)


def run_teach(cfg, store, server, **kw):
    return teach(cfg, store, RecordingEvents(), dataset="ds", transport=server.transport, retry=NO_RETRY, **kw)


def test_routes_easy_and_medium_to_teacher_a_short_and_hard_to_teacher_b_long(cfg, store):
    add_dataset(store)
    srv = Teachers()
    res = run_teach(cfg, store, srv)
    assert sorted(srv.calls) == sorted(
        [
            ("teacher-a", "short", question(2, 3)),
            ("teacher-a", "short", question(4, 5)),
            ("teacher-b", "long", question(6, 7)),
        ]
    )
    assert (res.slots, res.new, res.calls, res.failed) == (3, 3, 3, 0)
    traces = {t.problem_id: t for t in store.traces()}
    assert {pid: (t.role, t.model) for pid, t in traces.items()} == {
        "p-easy": ("short", "teacher-a"),
        "p-med": ("short", "teacher-a"),
        "p-hard": ("long", "teacher-b"),
    }
    t = traces["p-hard"]
    assert t.provider == "openai" and t.variant == 0 and t.finish_reason == "stop"
    assert t.prompt_hash == load_prompt("teach_long").hash
    assert traces["p-easy"].prompt_hash == load_prompt("teach_short").hash
    assert t.text.endswith("The answer is \\boxed{13}.") and t.verified is None
    call = store.get_api_call(t.api_call_key)
    assert call.stage == "teach" and call.role == "teachers.long" and call.prompt_hash == t.prompt_hash


@pytest.mark.parametrize("only, model", [("short", "teacher-a"), ("long", "teacher-b")])
def test_only_ablations_send_every_item_to_one_teacher_and_prompt(cfg, store, only, model):
    add_dataset(store)
    srv = Teachers()
    res = run_teach(cfg, store, srv, only=only)
    assert sorted(srv.calls) == sorted((model, only, question(a, b)) for _, a, b, _, _ in ITEMS)
    assert res.by_style == {only: 3}
    traces = store.traces()
    assert len(traces) == 3
    assert {(t.role, t.model, t.prompt_hash) for t in traces} == {(only, model, load_prompt(f"teach_{only}").hash)}


def test_second_run_makes_zero_http_calls_and_keeps_traces(cfg, store):
    add_dataset(store)
    srv = Teachers()
    run_teach(cfg, store, srv)
    assert len(srv.calls) == 3
    first = {t.id: t for t in store.traces()}
    again = run_teach(cfg, store, srv)
    assert len(srv.calls) == 3  # nothing went over the wire
    assert (again.calls, again.new, sum(t.unchanged for t in again.by_teacher)) == (0, 0, 3)
    assert {t.id: t for t in store.traces()} == first


def test_reference_teacher_uses_solutions_without_calls(store):
    add_dataset(store)
    cfg = parse_config("")  # defaults: reference teachers
    res = teach(cfg, store, RecordingEvents(), dataset="ds")
    assert (res.new, res.calls) == (3, 0)
    t = {t.problem_id: t for t in store.traces()}["p-hard"]
    assert (t.provider, t.model, t.prompt_hash, t.api_call_key, t.role) == ("reference", "reference", "", None, "long")
    assert t.text == store.get_problem("p-hard").solution
    assert store.count("api_calls") == 0


def test_several_teachers_per_style_each_answer_every_problem(cfg, store):
    add_dataset(store)
    prov = lambda m: OpenAIProvider(provider="openai", base_url="https://teach.test/v1", model=m)  # noqa: E731
    team = {
        "short": [Teacher("short", prov("teacher-a")), Teacher("short", prov("teacher-c"))],
        "long": [Teacher("long", prov("teacher-b"))],
    }
    srv = Teachers()
    res = run_teach(cfg, store, srv, teachers=team)
    assert sorted(c[0] for c in srv.calls) == ["teacher-a", "teacher-a", "teacher-b", "teacher-c", "teacher-c"]
    assert [t.label for t in res.by_teacher] == ["openai/teacher-a", "openai/teacher-c", "openai/teacher-b"]
    assert sorted((t.problem_id, t.model) for t in store.traces(role="short")) == [
        ("p-easy", "teacher-a"),
        ("p-easy", "teacher-c"),
        ("p-med", "teacher-a"),
        ("p-med", "teacher-c"),
    ]


def test_failed_and_truncated_outputs_are_stored_and_failures_retried(cfg, store):
    add_dataset(store)

    def reply(model, style, q, n):
        if q == question(2, 3):
            return httpx.Response(400, json={"error": {"message": "prompt too long"}})
        if q == question(6, 7):
            return httpx.Response(200, json=completion("6 + 7 is thirt", finish="length"))
        return None

    ev = RecordingEvents()
    res = teach(cfg, store, ev, dataset="ds", transport=Teachers(reply).transport, retry=NO_RETRY)
    assert (res.failed, res.new) == (1, 3)
    traces = {t.problem_id: t for t in store.traces()}
    assert traces["p-easy"].text is None
    assert traces["p-easy"].reject_reason == "teacher call failed: HTTP 400: prompt too long"
    assert traces["p-hard"].finish_reason == "length" and traces["p-hard"].text == "6 + 7 is thirt"
    assert any("run `tailor teach` again" in e[1] for e in ev.log if e[0] == "message")

    srv = Teachers()  # the endpoint works again: only the failed call is made
    again = run_teach(cfg, store, srv)
    assert srv.calls == [("teacher-a", "short", question(2, 3))]
    assert (again.calls, again.new) == (1, 1)
    t = {t.problem_id: t for t in store.traces()}["p-easy"]
    assert t.text.endswith("\\boxed{5}.") and t.reject_reason is None


def test_unknown_and_empty_datasets_are_clear_errors(cfg, store):
    with pytest.raises(DatasetError, match=r"unknown dataset 'nope' \(no datasets yet: run `tailor sample` first\)"):
        teach(cfg, store, RecordingEvents(), dataset="nope")
    store.create_dataset(Dataset(name="empty", strategy="adaptive", params={}, items=[]))
    with pytest.raises(DatasetError, match="dataset 'empty' has no items"):
        teach(cfg, store, RecordingEvents(), dataset="empty")
    with pytest.raises(DatasetError, match=r"unknown dataset 'nope' \(known: empty\)"):
        teach(cfg, store, RecordingEvents(), dataset="nope")
    with pytest.raises(DatasetError, match="--only must be short or long"):
        teach(cfg, store, RecordingEvents(), dataset="empty", only="medium")
    assert store.count("traces") == 0 and store.count("api_calls") == 0


def test_fatal_endpoint_error_stops_with_one_line(cfg, store):
    add_dataset(store)
    # One failing request (several at once make asyncio log "exception never retrieved").
    srv = Teachers(
        lambda m, s, q, n: httpx.Response(401, json={"error": {"message": "bad key"}}) if q == question(2, 3) else None
    )
    with pytest.raises(RemoteFatalError, match="HTTP 401"):
        run_teach(cfg, store, srv)
    # What finished before the 401 is stored as it arrived; the failing problem has nothing.
    stored = store.traces()
    assert all(question(2, 3) != store.get_problem(t.problem_id).question for t in stored)
    assert len(stored) < len(ITEMS)


def test_configured_teachers_one_per_style(cfg):
    team = configured_teachers(cfg)
    assert [(t.style, t.role, t.label) for s in ("short", "long") for t in team[s]] == [
        ("short", "teachers.short", "openai/teacher-a"),
        ("long", "teachers.long", "openai/teacher-b"),
    ]
