"""Two tailor processes writing one store at once, as the TUI and a CLI stage do every day:
both finish, and every reply the judge was paid for is in the store."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.records import Attempt, Problem
from app.store import Store

VERDICT = {
    "answer_correct": True,
    "logical": True,
    "complete": True,
    "minor_error": False,
    "grade": "easy",
    "rationale": "fine",
}


class Judge:
    """A loopback OpenAI-compatible judge that counts the replies it sent (what was paid)."""

    def __init__(self, delay: float = 0.01):
        self.paid = 0
        self.lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                data = json.dumps(
                    {
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": json.dumps(VERDICT)},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 5},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with judge.lock:
                    judge.paid += 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()


def diagnosed(store: Store, n: int) -> None:
    """n train problems, each with a diagnosis attempt to grade."""
    store.insert_problems(
        [Problem(id=f"p{i:04d}", question=f"Q{i:04d}: what is {i} + 1?", answer=str(i + 1)) for i in range(n)]
    )
    with store.transaction():
        for i in range(n):
            store.insert_attempt(
                Attempt(
                    key=f"k{i}",
                    problem_id=f"p{i:04d}",
                    purpose="diagnose",
                    model="student",
                    prompt_hash="sp",
                    params={},
                    text=f"The answer is \\boxed{{{i + 1}}}.",
                    extracted=str(i + 1),
                )
            )


def tailor(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--project", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "JUDGE_KEY": "sk-loop"},
        cwd=Path(__file__).resolve().parent.parent,
    )


@pytest.fixture
def judge():
    j = Judge()
    yield j
    j.httpd.shutdown()
    j.httpd.server_close()


def test_grade_beside_imports_loses_nothing(project, judge, tmp_path):
    cfg = project / "tailor.toml"
    text = cfg.read_text()
    start = text.index("[judge]")
    end = text.index("\n[", start + 1)
    cfg.write_text(
        text[:start] + f'[judge]\nprovider = "openai"\nbase_url = "{judge.url}"\nmodel = "j"\n'
        f'api_key_env = "JUDGE_KEY"\nconcurrency = 16\n' + text[end:]
    )
    n = 240
    with Store(project / "tailor.db") as store:
        diagnosed(store, n)
    files = []
    for f in range(4):
        path = tmp_path / f"more{f}.jsonl"
        path.write_text(
            "".join(
                json.dumps(
                    {
                        "id": f"m{f}-{i}",
                        "question": f"Import {f}, question {i}: {i} * 7?",
                        "answer": str(7 * i),
                        "split": "train",
                    }
                )
                + "\n"
                for i in range(3000)
            )
        )
        files.append(path)

    grading = tailor(project, "grade")
    importing = [tailor(project, "import", str(f)) for f in files[:2]]
    for p in importing:
        p.wait(timeout=300)
    importing += [tailor(project, "import", str(f)) for f in files[2:]]
    outs = [(p, *p.communicate(timeout=300)) for p in [grading, *importing]]
    for p, out, err in outs:
        assert p.returncode == 0, err
        assert "Traceback" not in err
    with Store(project / "tailor.db") as store:
        assert store.problem_counts()["train"] == n + 4 * 3000
        ok = store.db.execute("SELECT count(*) FROM api_calls WHERE status = 'ok'").fetchone()[0]
        graded = store.db.execute("SELECT count(DISTINCT problem_id) FROM grades WHERE grade IS NOT NULL").fetchone()[0]
    assert ok == judge.paid == n  # every paid reply stored, none bought twice
    assert graded == n


def test_one_slow_request_does_not_hold_up_the_others(store):
    """A sliding window: the judge holds one request until it has answered every other one.
    With fixed batches the others behind the slow one would never be sent, and it times out."""
    import httpx

    from app.config import parse_config
    from app.events import RecordingEvents
    from app.pipeline.grade import grade
    from app.remote import RetryPolicy

    n = 60
    diagnosed(store, n)
    others_done = threading.Event()
    answered = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        slow = "Q0000:" in body["messages"][-1]["content"]
        if slow:
            assert others_done.wait(timeout=20), "the other requests were not sent while one was slow"
        with lock:
            answered.append(slow)
            if len(answered) == n - 1 and not slow:
                others_done.set()
        return httpx.Response(
            200,
            json={
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": json.dumps(VERDICT)},
                        "finish_reason": "stop",
                    }
                ]
            },
        )

    class Threaded(httpx.AsyncBaseTransport):
        """The handler runs in a thread, as a real server's would, so one can wait."""

        async def handle_async_request(self, request):
            import asyncio

            await request.aread()
            return await asyncio.to_thread(handler, request)

    cfg = parse_config(
        '[judge]\nprovider = "openai"\nbase_url = "https://judge.test/v1"\nmodel = "j"\nconcurrency = 4\n'
    )
    res = grade(cfg, store, RecordingEvents(), transport=Threaded(), retry=RetryPolicy(max_retries=0))
    assert res.graded == n and answered[-1] is True  # the slow one last; nobody waited for it
