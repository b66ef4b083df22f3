"""RemoteClient against a real HTTP server on 127.0.0.1 (started per test in a thread)."""

import asyncio
import json
import logging
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.config import OpenAIProvider
from app.errors import TailorError
from app.events import RecordingEvents
from app.remote import ChatRequest, RemoteClient, RemoteFatalError, RetryPolicy
from app.store import Store

SECRET = "sk-loopback-SECRET-9f8e7d6c5b4a"
FAST = RetryPolicy(max_retries=3, backoff_base=0.005, backoff_max=0.02, retry_after_max=0.05)


def completion(content="4", finish="stop", reasoning=None):
    msg = {"role": "assistant", "content": content}
    if reasoning:
        msg["reasoning_content"] = reasoning
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "loop-model",
        "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


# Actions: what the server does with one request.
def ok(**kw):
    return ("json", 200, completion(**kw), {})


def status(code, body=None, headers=None):
    return ("json", code, body if body is not None else {"error": {"message": f"status {code}"}}, headers or {})


def sleep_then(seconds, action):
    return ("sleep", seconds, action)


DROP = ("drop",)
MALFORMED = ("raw", 200, b'{"choices": [{"message": {"content": "tru')


class Loopback:
    def __init__(self):
        self.script: deque = deque()
        self.default = ok()
        self.log: list[dict] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        loop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                with loop.lock:
                    loop.log.append(body)
                    loop.auth.append(self.headers.get("Authorization"))
                    action = loop.script.popleft() if loop.script else loop.default
                self.act(action)

            def act(self, action):
                kind = action[0]
                if kind == "sleep":
                    time.sleep(action[1])
                    return self.act(action[2])
                if kind == "drop":
                    self.close_connection = True
                    return
                if kind == "raw":
                    data = action[2]
                    code, headers = action[1], {}
                else:
                    _, code, obj, headers = action
                    data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def calls_for(self, content: str) -> int:
        return sum(1 for b in self.log if b["messages"][-1]["content"] == content)


@pytest.fixture
def server():
    srv = Loopback()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def prov(url, **kw):
    return OpenAIProvider(
        provider="openai",
        base_url=url,
        model="loop-model",
        api_key_env="LOOP_KEY",
        concurrency=kw.pop("concurrency", 4),
        timeout=kw.pop("timeout", 5.0),
        max_tokens=32,
        **kw,
    )


def q(text):
    return [{"role": "user", "content": text}]


async def chat(store, server, text="2+2?", retry=FAST, **kw):
    cfg = prov(
        server.url, **{k: kw.pop(k) for k in list(kw) if k in ("timeout", "concurrency", "price_in", "price_out")}
    )
    async with RemoteClient(cfg, "judge", store, SECRET, retry=retry) as c:
        return await c.chat(q(text), stage="grade", **kw)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "t.db") as s:
        yield s


def test_ok_over_http_with_key_header(server, store):
    server.script.append(ok(content="<think>2 and 2</think>4", reasoning=None))
    res = asyncio.run(chat(store, server))
    assert res.ok and res.content == "4" and res.reasoning == "2 and 2"
    assert (res.prompt_tokens, res.completion_tokens) == (7, 3) and res.latency_s > 0
    assert server.auth == [f"Bearer {SECRET}"]
    assert store.get_api_call(res.key).status == "ok"


def test_retry_after_over_http(server, store):
    server.script.extend([status(429, headers={"Retry-After": "0.03"}), status(502), ok()])
    t0 = time.perf_counter()
    res = asyncio.run(chat(store, server))
    assert res.ok and res.retries == 2 and len(server.log) == 3
    assert time.perf_counter() - t0 >= 0.03  # waited as the server asked


def test_timeout_over_http_then_success(server, store):
    server.script.extend([sleep_then(0.6, ok(content="late")), ok(content="fast")])
    res = asyncio.run(chat(store, server, timeout=0.2))
    assert res.ok and res.content == "fast" and res.retries == 1


def test_dropped_connection_and_malformed_body_over_http(server, store):
    server.script.extend([DROP, MALFORMED, ok(content="fine")])
    res = asyncio.run(chat(store, server))
    assert res.ok and res.content == "fine" and res.retries == 2


def test_gives_up_and_records_the_reason(server, store):
    server.default = DROP
    res = asyncio.run(chat(store, server))
    assert not res.ok and "connection error" in res.error and "gave up after 3 retries" in res.error
    row = store.get_api_call(res.key)
    assert row.status == "error" and row.retries == 3


def test_empty_choices_and_truncation_over_http(server, store):
    server.script.extend([status(200, {"id": "e", "choices": []}), ok(content="cut sho", finish="length")])
    r1 = asyncio.run(chat(store, server, text="a"))
    r2 = asyncio.run(chat(store, server, text="b"))
    assert r1.error.startswith("empty choices")
    assert r2.ok and r2.truncated and store.get_api_call(r2.key).finish_reason == "length"


def test_401_stops_the_stage_and_the_rest_is_cancelled(server, store):
    # q0..q2 answer at once; q3 gets 401 after a moment; the others would take 3 s each.
    def pick(text):
        if text in ("q0", "q1", "q2"):
            return ok(content="a-" + text)
        if text == "q3":
            return sleep_then(0.1, status(401, {"error": {"message": f"Invalid key {SECRET}"}}))
        return sleep_then(3, ok())

    class Scripted:  # choose the action by the question, not by arrival order
        def popleft(self):
            return pick(server.log[-1]["messages"][-1]["content"])

        def __bool__(self):
            return True

    server.script = Scripted()
    cfg = prov(server.url, concurrency=8)
    reqs = [ChatRequest(q(f"q{i}"), "grade") for i in range(8)]

    async def go():
        async with RemoteClient(cfg, "judge", store, SECRET, retry=FAST) as c:
            return await c.chat_many(reqs, RecordingEvents())

    t0 = time.perf_counter()
    with pytest.raises(RemoteFatalError) as ei:
        asyncio.run(go())
    assert time.perf_counter() - t0 < 2.5  # the slow requests were cancelled, not awaited
    assert isinstance(ei.value, TailorError) and "HTTP 401" in str(ei.value) and SECRET not in str(ei.value)
    assert store.count("api_calls", status="ok") == 3 and store.count("api_calls") == 3


def test_cache_hit_after_restart_over_http(server, tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as s:
        first = asyncio.run(chat(s, server, text="once"))
    with Store(db) as s:
        again = asyncio.run(chat(s, server, text="once"))
    assert first.ok and again.cached and again.content == first.content
    assert server.calls_for("once") == 1


def test_secret_not_in_db_or_logs_over_http(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    server.script.extend(
        [
            status(500, {"error": {"message": f"bad {SECRET}"}}),
            ok(),
            status(400, {"error": {"message": f"echo {SECRET}"}}),
        ]
    )
    with Store(tmp_path / "s.db") as s:
        r1 = asyncio.run(chat(s, server, text="a"))
        r2 = asyncio.run(chat(s, server, text="b"))
    assert r1.ok and r2.error == "HTTP 400: echo ***"
    assert server.auth and all(a == f"Bearer {SECRET}" for a in server.auth)
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text
