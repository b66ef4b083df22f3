"""mlx-server provider: child-process lifecycle, and a smoke test with the tiny model."""

import asyncio
import sys

import pytest

from app.config import parse_config
from app.mlx_server import MlxServer, MlxServerError
from app.remote import ChatRequest, open_client
from app.store import Store


def test_server_that_dies_reports_the_tail_of_its_log():
    fake = [
        sys.executable,
        "-c",
        "import sys; print('loading weights'); sys.stderr.write('boom: no such model\\n'); sys.exit(3)",
    ]
    server = MlxServer("some/model", command=fake, startup_timeout=10)
    with pytest.raises(MlxServerError) as ei:
        server.start()
    msg = str(ei.value)
    assert "exited with code 3" in msg and "boom: no such model" in msg and "some/model" in msg
    assert server.proc is None


def test_server_that_never_answers_times_out_and_is_stopped():
    fake = [sys.executable, "-c", "import time; time.sleep(60)"]
    server = MlxServer("m", command=fake, startup_timeout=0.5)
    with pytest.raises(MlxServerError, match="did not answer within 0.5s"):
        server.start()
    assert server.proc is None


def test_fake_server_on_the_given_port_is_used_and_stopped():
    # A stand-in for mlx_lm.server that answers /v1/models and chat completions.
    code = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _send(self, obj):
        data = json.dumps(obj).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def do_GET(self): self._send({"data": []})
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send({"model": "default_model", "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""
    server = MlxServer("m", command=[sys.executable, "-c", code, "{port}"], startup_timeout=20)
    with server as base_url:
        assert base_url == f"http://127.0.0.1:{server.port}/v1"
        proc = server.proc
        assert proc.poll() is None
    assert proc.poll() is not None and server.proc is None


try:
    from mlx_backend.tiny import build_tiny_model
except Exception:  # mlx (or the tiny builder) not installed
    build_tiny_model = None


@pytest.mark.skipif(build_tiny_model is None, reason="mlx_backend.tiny cannot be imported")
def test_mlx_server_smoke_with_tiny_model(tmp_path):
    model = build_tiny_model(tmp_path / "tiny", seed=0)
    cfg = parse_config(f'[judge]\nprovider = "mlx-server"\nmodel = "{model}"\nmax_tokens = 8\n')
    reqs = [ChatRequest([{"role": "user", "content": f"What is {i} + {i}?"}], "grade", "ph") for i in range(3)]

    async def go(store):
        async with open_client(cfg, "judge", store) as c:
            assert c.base_url.startswith("http://127.0.0.1:")
            first = await c.chat_many(reqs)
            again = await c.chat(reqs[0].messages, stage="grade", prompt_hash="ph")
            return first, again

    with Store(tmp_path / "t.db") as store:
        first, again = asyncio.run(go(store))
        assert all(r.ok and r.provider == "mlx-server" for r in first)
        assert all(isinstance(r.content, str) and r.finish_reason in ("stop", "length") for r in first)
        assert all(r.completion_tokens and r.completion_tokens <= 8 for r in first)
        assert all(r.truncated == (r.finish_reason == "length") for r in first)
        assert again.cached and again.content == first[0].content
        rows = list(store.db.query("SELECT provider, base_url, status FROM api_calls"))
        assert len(rows) == 3 and {r["base_url"] for r in rows} == {f"mlx-server:{model}"}

    from app.pipeline.ping import ping

    (p,) = ping(cfg, ["judge"])
    assert p.ok and p.provider == "mlx-server" and "local server" in p.detail, p.detail


@pytest.mark.skipif(build_tiny_model is None, reason="mlx_backend.tiny cannot be imported")
def test_real_mlx_server_with_a_bad_model_path_fails_clearly(tmp_path):
    server = MlxServer(str(tmp_path / "no-such-model"), startup_timeout=60, env={"HF_HUB_OFFLINE": "1"})
    with pytest.raises(MlxServerError) as ei:
        server.start()
    assert "failed to load the model" in str(ei.value) or "exited with code" in str(ei.value)
    assert "no-such-model" in str(ei.value) and server.proc is None
