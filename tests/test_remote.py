"""RemoteClient against httpx.MockTransport: parsing, cache, retries, faults, secrets."""

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from app.config import MlxServerProvider, OpenAIProvider, parse_config
from app.errors import ConfigError, TailorError
from app.events import RecordingEvents
from app.records import Problem
from app.remote import (
    ChatRequest,
    RemoteClient,
    RemoteFatalError,
    RetryPolicy,
    open_client,
    parse_retry_after,
    reference_result,
    rules_grade,
    split_think,
)
from app.store import Store

SECRET = "sk-test-SECRET-0123456789abcdef"
FAST = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_max=0.004, retry_after_max=0.05)
MSGS = [{"role": "user", "content": "What is 2+2?"}]


def run(coro):
    return asyncio.run(coro)


def prov(**kw) -> OpenAIProvider:
    base = dict(
        provider="openai",
        base_url="https://api.example.test/v1",
        model="m-1",
        api_key_env="TEST_KEY",
        concurrency=4,
        timeout=5.0,
        max_tokens=64,
        temperature=0.6,
        top_p=0.95,
    )
    base.update(kw)
    return OpenAIProvider(**base)


def completion(content="The answer is 4.", finish="stop", reasoning=None, pt=10, ct=5, model="m-1"):
    msg = {"role": "assistant", "content": content}
    if reasoning is not None:
        msg["reasoning_content"] = reasoning
    return {
        "id": "x",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
    }


class Server:
    """A scripted MockTransport handler: each call pops the next action (default: ok)."""

    def __init__(self, *actions, default=None):
        self.actions = list(actions)
        self.default = default or (lambda req: httpx.Response(200, json=completion()))
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(json.loads(request.content))
        action = self.actions.pop(0) if self.actions else self.default
        if isinstance(action, Exception):
            raise action
        if isinstance(action, httpx.Response):
            return action
        return action(request)

    @property
    def transport(self):
        return httpx.MockTransport(self)


class SleepRecorder:
    def __init__(self):
        self.delays: list[float] = []

    async def __call__(self, d: float) -> None:
        self.delays.append(d)


def client(store, server, *, cfg=None, retry=FAST, key=SECRET, sleep=None, **kw):
    return RemoteClient(
        cfg or prov(), "judge", store, key, transport=server.transport, retry=retry, sleep=sleep, seed=0, **kw
    )


async def one(store, server, **kw):
    opts = {k: kw.pop(k) for k in list(kw) if k in ("cfg", "retry", "key", "sleep")}
    async with client(store, server, **opts) as c:
        return await c.chat(MSGS, stage="grade", prompt_hash="ph1", **kw)


@pytest.fixture
def mem_store(tmp_path):
    with Store(tmp_path / "t.db") as s:
        yield s


# -- pure helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, content, reasoning",
    [
        ("plain", "plain", None),
        ("<think>a b</think>\n\nThe answer is 4.", "The answer is 4.", "a b"),
        ("a b</think>The answer is 4.", "The answer is 4.", "a b"),  # template opened <think>
        ("<think>still thinking when cut", "", "still thinking when cut"),
        ("<think>x</think>mid<think>y</think>end", "midend", "x\n\ny"),
        (None, None, None),
    ],
)
def test_split_think(text, content, reasoning):
    assert split_think(text) == (content, reasoning)


def test_parse_retry_after_forms():
    assert parse_retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "0.2"})) == 0.2
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "150", "Retry-After": "9"})) == 0.15
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < parse_retry_after(httpx.Headers({"Retry-After": when})) <= 30
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


# -- success path ---------------------------------------------------------------------


def test_success_records_everything_and_sends_the_right_body(mem_store):
    srv = Server(httpx.Response(200, json=completion(reasoning="let me think", pt=100, ct=50)))
    cfg = prov(price_in=1.0, price_out=2.0)
    res = run(one(mem_store, srv, cfg=cfg, temperature=0.2, max_tokens=32, json_mode=True))
    assert res.ok and not res.cached and not res.truncated
    assert (res.content, res.reasoning, res.finish_reason) == ("The answer is 4.", "let me think", "stop")
    assert (res.prompt_tokens, res.completion_tokens) == (100, 50)
    assert res.cost == pytest.approx((100 * 1.0 + 50 * 2.0) / 1e6)
    assert res.latency_s is not None and res.provider == "openai" and res.served_model == "m-1"
    req = srv.requests[0]
    assert req.url == "https://api.example.test/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {SECRET}"
    body = srv.bodies[0]
    assert body == {
        "model": "m-1",
        "messages": MSGS,
        "temperature": 0.2,
        "top_p": 0.95,
        "max_tokens": 32,
        "stream": False,
        "response_format": {"type": "json_object"},
    }
    row = mem_store.get_api_call(res.key)
    assert row.status == "ok" and row.stage == "grade" and row.role == "judge"
    assert row.content == "The answer is 4." and row.reasoning == "let me think"
    assert row.prompt_hash == "ph1" and row.base_url == "https://api.example.test/v1"
    assert row.request["messages"] == MSGS and row.request["temperature"] == 0.2


def test_think_blocks_and_reasoning_field_are_kept_apart(mem_store):
    body = completion(content="<think>step 1, step 2</think>\nFinal: 4")
    body["choices"][0]["message"]["reasoning"] = "field reasoning"  # OpenRouter / mlx_lm name
    res = run(one(mem_store, Server(httpx.Response(200, json=body))))
    assert res.content == "Final: 4"
    assert res.reasoning == "field reasoning\n\nstep 1, step 2"


def test_no_prices_means_no_cost_and_usage_is_per_stage(mem_store):
    async def go():
        async with client(mem_store, Server()) as c:
            await c.chat(MSGS, stage="grade")
            await c.chat([{"role": "user", "content": "other"}], stage="teach")

    run(go())
    usage = {u["stage"]: u for u in mem_store.usage()}
    assert usage["grade"]["calls"] == 1 and usage["grade"]["prompt_tokens"] == 10
    assert usage["teach"]["completion_tokens"] == 5 and usage["teach"]["cost"] is None


def test_truncated_output_is_flagged_and_reported(mem_store):
    srv = Server(httpx.Response(200, json=completion(content="half an ans", finish="length")))
    ev = RecordingEvents()

    async def go():
        async with client(mem_store, srv) as c:
            return await c.chat_many([ChatRequest(MSGS, "teach")], ev, title="teach"), c.totals

    (res,), totals = run(go())
    assert res.truncated and res.finish_reason == "length" and res.ok
    assert mem_store.get_api_call(res.key).finish_reason == "length"
    assert totals.truncated == 1
    assert any(e[0] == "message" and "finish_reason=length" in e[1] for e in ev.log)
    assert ev.log[0] == ("start", "teach", 1) and ev.log[-1][0] == "done" and "1 truncated" in ev.log[-1][1]


# -- faults ---------------------------------------------------------------------------


def test_retries_on_429_and_5xx_with_growing_backoff(mem_store):
    srv = Server(httpx.Response(429), httpx.Response(500), httpx.Response(503))
    sleep = SleepRecorder()
    retry = RetryPolicy(max_retries=5, backoff_base=0.001, backoff_max=1.0)
    res = run(one(mem_store, srv, sleep=sleep, retry=retry))
    assert res.ok and res.retries == 3 and len(srv.requests) == 4
    assert len(sleep.delays) == 3
    # Equal jitter: between half and all of base * 2**n; a 500 (one bad backend, not load)
    # starts from a quarter of the base, a 429 or 503 (load) from the full base.
    for n, (d, factor) in enumerate(zip(sleep.delays, (1.0, 0.25, 1.0))):
        assert 0.001 * factor * 2**n / 2 <= d <= 0.001 * factor * 2**n
    assert mem_store.get_api_call(res.key).retries == 3


def test_retry_after_is_honoured_and_capped(mem_store):
    srv = Server(
        httpx.Response(429, headers={"Retry-After": "0.02"}), httpx.Response(503, headers={"Retry-After": "3600"})
    )
    sleep = SleepRecorder()
    res = run(one(mem_store, srv, sleep=sleep))
    assert res.ok and res.retries == 2
    assert 0.02 <= sleep.delays[0] <= 0.022
    assert 0.05 <= sleep.delays[1] <= 0.055  # capped at retry_after_max


def test_timeouts_and_dropped_connections_are_retried(mem_store):
    srv = Server(
        httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("Server disconnected"), httpx.ConnectError("refused")
    )

    async def go():
        async with client(mem_store, srv) as c:
            return await c.chat(MSGS, stage="grade"), c.totals

    res, totals = run(go())
    assert res.ok and res.retries == 3
    assert totals.retries == {"timeout": 1, "connection": 2}


def test_request_that_keeps_failing_is_recorded_and_retried_next_run(mem_store):
    srv = Server(default=lambda r: httpx.Response(500, json={"error": {"message": "overloaded"}}))
    res = run(one(mem_store, srv))
    assert not res.ok and "HTTP 500: overloaded" in res.error and "3 retries" in res.error
    assert len(srv.requests) == 4
    row = mem_store.get_api_call(res.key)
    assert row.status == "error" and row.error == res.error
    # Next run: the error row is tried again and replaced by the good answer.
    res2 = run(one(mem_store, Server()))
    assert res2.ok and not res2.cached and res2.key == res.key
    assert mem_store.get_api_call(res.key).status == "ok"


def test_malformed_json_body_is_retried_then_recorded(mem_store):
    def bad(r):
        return httpx.Response(200, content=b'{"choices": [ {"mess', headers={"content-type": "application/json"})

    srv = Server(bad, default=lambda r: httpx.Response(200, json=completion()))
    assert run(one(mem_store, srv)).ok and len(srv.requests) == 2
    srv = Server(default=bad)
    res = run(one(mem_store, srv, max_tokens=7))
    assert "malformed JSON body" in res.error and mem_store.get_api_call(res.key).status == "error"


def test_empty_choices_is_an_error_without_retries(mem_store):
    srv = Server(httpx.Response(200, json={"id": "x", "choices": []}))
    res = run(one(mem_store, srv))
    assert res.error.startswith("empty choices") and len(srv.requests) == 1
    assert mem_store.get_api_call(res.key).status == "error"


def test_other_4xx_is_recorded_and_the_stage_goes_on(mem_store):
    srv = Server(httpx.Response(400, json={"error": {"message": "context length exceeded"}}))

    async def go():
        async with client(mem_store, srv) as c:
            return await c.chat_many(
                [ChatRequest(MSGS, "grade"), ChatRequest([{"role": "user", "content": "b"}], "grade")]
            )

    r1, r2 = run(go())
    assert r1.error == "HTTP 400: context length exceeded" and r2.ok
    assert len(srv.requests) == 2


@pytest.mark.parametrize(
    "status, words", [(401, "was rejected"), (403, "may not use model"), (404, "check base_url"), (402, "no credit")]
)
def test_fatal_statuses_raise_one_line_without_the_key(mem_store, status, words):
    srv = Server(httpx.Response(status, json={"error": {"message": f"Incorrect API key provided: {SECRET}"}}))
    with pytest.raises(RemoteFatalError) as ei:
        run(one(mem_store, srv))
    msg = str(ei.value)
    assert isinstance(ei.value, TailorError) and ei.value.status == status
    assert words in msg and f"HTTP {status}" in msg and "judge" in msg and "m-1" in msg
    assert SECRET not in msg and "\n" not in msg
    assert len(srv.requests) == 1  # not retried
    assert mem_store.count("api_calls") == 0


def test_insufficient_quota_429_is_fatal(mem_store):
    srv = Server(httpx.Response(429, json={"error": {"code": "insufficient_quota", "message": "quota"}}))
    with pytest.raises(RemoteFatalError, match="no credit"):
        run(one(mem_store, srv))


def test_401_stops_chat_many_and_keeps_finished_calls(tmp_path):
    db = tmp_path / "t.db"
    reqs = [ChatRequest([{"role": "user", "content": f"q{i}"}], "grade") for i in range(10)]

    async def handler(request):
        q = json.loads(request.content)["messages"][0]["content"]
        if q == "q5":
            await asyncio.sleep(0.05)  # q0..q3 finish first
            return httpx.Response(401, json={"error": {"message": "bad key"}})
        if q in ("q0", "q1", "q2", "q3"):
            return httpx.Response(200, json=completion(content=f"a-{q}"))
        await asyncio.sleep(5)  # would hang the test if not cancelled
        return httpx.Response(200, json=completion())

    srv = Server(default=handler)

    async def go(store):
        async with client(store, srv, concurrency=10) as c:
            return await c.chat_many(reqs, RecordingEvents())

    with Store(db) as store:
        with pytest.raises(RemoteFatalError, match="HTTP 401"):
            run(go(store))
        assert store.count("api_calls", status="ok") == 4
    # A re-run (key fixed) pays only for what did not finish.
    srv2 = Server()
    with Store(db) as store:

        async def go2():
            async with client(store, srv2, concurrency=10) as c:
                return await c.chat_many(reqs)

        results = run(go2())
    assert all(r.ok for r in results)
    assert sum(r.cached for r in results) == 4 and len(srv2.requests) == 6
    assert [r.content for r in results[:4]] == ["a-q0", "a-q1", "a-q2", "a-q3"]


# -- cache -------------------------------------------------------------------------------


def test_cache_hit_after_restart_makes_no_request(tmp_path):
    db = tmp_path / "t.db"
    with Store(db) as store:
        first = run(one(store, Server(httpx.Response(200, json=completion(reasoning="r")))))
    never = Server(default=lambda r: pytest.fail("a cached call was sent again"))
    with Store(db) as store:
        again = run(one(store, never))
    assert again.cached and again.ok and again.key == first.key
    assert (again.content, again.reasoning, again.prompt_tokens) == (first.content, "r", 10)
    assert never.requests == []


def test_key_depends_on_what_determines_the_answer(mem_store):
    c = RemoteClient(prov(), "judge", mem_store, SECRET)
    base = ChatRequest(MSGS, "grade", "ph")
    k = c.prepare(base)[0]
    assert c.prepare(ChatRequest(MSGS, "teach", "ph"))[0] == k  # the stage is not part of it
    for other in (
        ChatRequest(MSGS, "grade", "ph2"),
        ChatRequest(MSGS, "grade", "ph", temperature=0.0),
        ChatRequest(MSGS, "grade", "ph", top_p=0.5),
        ChatRequest(MSGS, "grade", "ph", max_tokens=9),
        ChatRequest(MSGS, "grade", "ph", json_mode=True),
        ChatRequest(MSGS, "grade", "ph", variant="s1"),
        ChatRequest([{"role": "user", "content": "x"}], "grade", "ph"),
    ):
        assert c.prepare(other)[0] != k
    assert RemoteClient(prov(model="m-2"), "judge", mem_store).prepare(base)[0] != k
    assert RemoteClient(prov(base_url="https://other.test/v1"), "judge", mem_store).prepare(base)[0] != k
    # The key (and the stored request) never depends on the key value itself.
    assert RemoteClient(prov(), "judge", mem_store, "another-key").prepare(base)[0] == k


def test_mlx_server_key_ignores_the_port_and_sends_default_model(mem_store):
    cfg = MlxServerProvider(provider="mlx-server", model="/models/tiny", adapter="/runs/a")
    a = RemoteClient(cfg, "teachers.long", mem_store, base_url="http://127.0.0.1:5001/v1")
    b = RemoteClient(cfg, "teachers.long", mem_store, base_url="http://127.0.0.1:6002/v1")
    req = ChatRequest(MSGS, "teach")
    assert a.prepare(req)[0] == b.prepare(req)[0]
    assert a.prepare(req)[2]["model"] == "default_model"
    assert a.endpoint == "mlx-server:/models/tiny+/runs/a"
    with pytest.raises(ValueError):
        RemoteClient(cfg, "teachers.long", mem_store)


def test_duplicate_requests_in_one_batch_are_sent_once(mem_store):
    async def slow(request):
        await asyncio.sleep(0.02)
        return httpx.Response(200, json=completion())

    srv = Server(default=slow)

    async def go():
        async with client(mem_store, srv) as c:
            return await c.chat_many([ChatRequest(MSGS, "grade") for _ in range(5)])

    results = run(go())
    assert len(srv.requests) == 1 and all(r.ok for r in results)
    assert sum(not r.cached for r in results) == 1


def test_chat_many_keeps_order_respects_concurrency_and_reports_progress(mem_store):
    live = {"now": 0, "max": 0}

    async def handler(request):
        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        q = json.loads(request.content)["messages"][0]["content"]
        await asyncio.sleep(0.01 if int(q) % 2 else 0.002)
        live["now"] -= 1
        return httpx.Response(200, json=completion(content=f"a{q}"))

    ev = RecordingEvents()

    async def go():
        async with client(mem_store, Server(default=handler), cfg=prov(concurrency=3)) as c:
            return await c.chat_many(
                [ChatRequest([{"role": "user", "content": str(i)}], "grade") for i in range(20)], ev
            )

    results = run(go())
    assert [r.content for r in results] == [f"a{i}" for i in range(20)]
    assert live["max"] == 3
    assert sum(e[1] for e in ev.log if e[0] == "advance") == 20
    assert not any(e[0] in ("start", "done") for e in ev.log)  # no title: the caller owns them


# -- secrets -----------------------------------------------------------------------------


def test_secret_is_never_written_to_store_logs_or_errors(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "t.db"
    echo = {"error": {"message": f"upstream rejected Bearer {SECRET} (key {SECRET})"}}
    seen = []

    def handler(request):
        q = json.loads(request.content)["messages"][0]["content"]
        if q == "x":
            return httpx.Response(400, json=echo)
        seen.append(q)
        return httpx.Response(500 if len(seen) == 1 else 200, json=echo if len(seen) == 1 else completion())

    srv = Server(default=handler)
    msgs = []
    with Store(db) as store:

        async def go():
            async with client(store, srv) as c:
                msgs.append(repr(c))
                return await c.chat_many(
                    [ChatRequest(MSGS, "grade"), ChatRequest([{"role": "user", "content": "x"}], "grade")]
                )

        ok, bad = run(go())
        assert ok.ok and bad.error and "***" in bad.error
        msgs += [bad.error, repr(ok), repr(bad)]
        with pytest.raises(RemoteFatalError) as ei:
            run(one(store, Server(httpx.Response(401, json=echo))))
        msgs.append(str(ei.value))
        msgs.append(repr(ei.value))
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in srv.requests)  # it was used
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text and "retry" in caplog.text
    for m in msgs:
        assert SECRET not in m


# -- providers -------------------------------------------------------------------------


def test_reference_and_rules_are_labelled():
    p = Problem(id="p1", question="q", answer="4", solution="2+2=4, so \\boxed{4}")
    r = reference_result(p, "teachers.short")
    assert r.ok and r.provider == "reference" and r.content == p.solution and r.role == "teachers.short"
    none = reference_result(Problem(id="p2", question="q", answer="4"))
    assert not none.ok and "no reference solution" in none.error
    assert rules_grade(True).grade == "easy" and rules_grade(True).provider == "rules"
    assert rules_grade(False).grade == "hard" and rules_grade(None).grade == "hard"


def test_open_client_refuses_offline_providers_and_missing_keys(mem_store, monkeypatch):
    cfg = parse_config(
        '[judge]\nprovider = "openai"\nbase_url = "https://x.test/v1"\n'
        'model = "m"\napi_key_env = "TAILOR_TEST_ABSENT_KEY"\n'
    )
    monkeypatch.delenv("TAILOR_TEST_ABSENT_KEY", raising=False)

    async def go(role):
        async with open_client(cfg, role, mem_store):
            pass

    with pytest.raises(ConfigError, match="TAILOR_TEST_ABSENT_KEY is not set"):
        run(go("judge"))
    with pytest.raises(ConfigError, match="offline provider 'reference'"):
        run(go("teachers.short"))


def test_open_client_uses_the_env_key(mem_store, monkeypatch):
    monkeypatch.setenv("TAILOR_TEST_KEY", SECRET)
    cfg = parse_config(
        '[judge]\nprovider = "openai"\nbase_url = "https://x.test/v1"\nmodel = "m"\napi_key_env = "TAILOR_TEST_KEY"\n'
    )
    srv = Server()

    async def go():
        async with open_client(cfg, "judge", mem_store, transport=srv.transport, retry=FAST) as c:
            return await c.chat(MSGS, stage="grade")

    assert run(go()).ok
    assert srv.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_the_window_serves_waiting_retries_before_first_attempts():
    from app.remote import _Window

    async def go():
        window, order = _Window(1), []

        async def req(name, first):
            async with window.slot(first=first):
                order.append(name)

        async with window.slot():
            tasks = [asyncio.ensure_future(req("a", True)), asyncio.ensure_future(req("b", True))]
            await asyncio.sleep(0)
            tasks.append(asyncio.ensure_future(req("retry", False)))
            await asyncio.sleep(0)
            doomed = asyncio.ensure_future(req("cancelled", True))
            await asyncio.sleep(0)
            doomed.cancel()
        await asyncio.gather(*tasks)
        assert order == ["retry", "a", "b"] and window.free == 1

    asyncio.run(go())
