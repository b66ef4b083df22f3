"""`tailor ping`: one cheap, uncached call per endpoint; offline providers need none."""

import json

import httpx
import pytest

from app.config import parse_config
from app.errors import ConfigError
from app.pipeline.ping import format_ping, ping
from app.remote import RetryPolicy

SECRET = "sk-ping-SECRET-abcdef123456"

CONFIG = """
[judge]
provider = "openai"
base_url = "https://judge.test/v1"
model = "judge-model"
api_key_env = "PING_JUDGE_KEY"

[teachers.short]
provider = "reference"

[teachers.long]
provider = "openai"
base_url = "https://teacher.test/v1"
model = "teacher-model"
api_key_env = "PING_TEACHER_KEY"
"""


def handler_factory(calls):
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append((request.url.host, body, request.headers.get("authorization")))
        if request.headers.get("authorization") != f"Bearer {SECRET}":
            return httpx.Response(401, json={"error": {"message": "Authentication Fails"}})
        if body["model"] == "missing-model":
            return httpx.Response(404, json={"error": {"message": "model not found"}})
        return httpx.Response(
            200,
            json={
                "model": body["model"] + "-2025",
                "choices": [{"message": {"content": "OK"}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1},
            },
        )

    return handler


def test_ping_reports_each_role(monkeypatch):
    monkeypatch.setenv("PING_JUDGE_KEY", SECRET)
    monkeypatch.setenv("PING_TEACHER_KEY", "wrong-key")
    calls = []
    results = ping(parse_config(CONFIG), transport=httpx.MockTransport(handler_factory(calls)))
    by = {r.role: r for r in results}
    assert [r.role for r in results] == ["judge", "teachers.short", "teachers.long"]
    j = by["judge"]
    assert j.ok and j.provider == "openai" and j.model == "judge-model" and j.latency_s is not None
    assert "key accepted" in j.detail and "judge-model-2025" in j.detail
    s = by["teachers.short"]
    assert s.ok and s.provider == "reference" and "offline provider" in s.detail
    t = by["teachers.long"]
    assert not t.ok and "HTTP 401" in t.detail and "PING_TEACHER_KEY" in t.detail
    # One cheap call per endpoint, never retried on 401.
    assert [c[0] for c in calls] == ["judge.test", "teacher.test"]
    assert all(c[1]["max_tokens"] == 1 for c in calls)
    text = format_ping(results)
    assert SECRET not in text and "FAIL" in text and "reference" in text


def test_ping_missing_env_var_is_reported_not_raised(monkeypatch):
    monkeypatch.delenv("PING_JUDGE_KEY", raising=False)
    calls = []
    (r,) = ping(parse_config(CONFIG), ["judge"], transport=httpx.MockTransport(handler_factory(calls)))
    assert not r.ok and "PING_JUDGE_KEY is not set" in r.detail and calls == []


def test_ping_bad_model_and_shared_endpoint(monkeypatch):
    monkeypatch.setenv("K", SECRET)
    cfg = parse_config(
        '[judge]\nprovider = "openai"\nbase_url = "https://x.test/v1"\nmodel = "missing-model"\napi_key_env = "K"\n'
        '[teachers.short]\nprovider = "openai"\nbase_url = "https://x.test/v1"\nmodel = "missing-model"\napi_key_env = "K"\n'
    )
    calls = []
    results = ping(cfg, ["judge", "teachers.short"], transport=httpx.MockTransport(handler_factory(calls)))
    assert len(calls) == 1
    assert not results[0].ok and "HTTP 404" in results[0].detail and "missing-model" in results[0].detail
    assert results[1].detail == "same endpoint as judge" and not results[1].ok


def test_default_config_pings_offline_providers_only():
    cfg = parse_config("")
    results = ping(cfg)
    assert all(r.ok for r in results)
    assert {r.provider for r in results} == {"rules", "reference"}
    with pytest.raises(ConfigError, match="unknown role"):
        ping(cfg, ["student"])


def test_ping_server_errors_are_reported(monkeypatch):
    monkeypatch.setenv("PING_JUDGE_KEY", SECRET)
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(503, json={"error": {"message": "overloaded"}})

    (r,) = ping(
        parse_config(CONFIG),
        ["judge"],
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_retries=1, backoff_base=0.001),
    )
    assert not r.ok and "HTTP 503: overloaded" in r.detail and len(calls) == 2
