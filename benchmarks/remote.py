"""Remote client throughput and fault tolerance against a loopback server (not run by CI).

A child process serves OpenAI-style chat completions on 127.0.0.1, answering each request
after 100 ms. We send 500 distinct requests at concurrency 16 through `RemoteClient`
(cache in a temporary tailor.db) and compare the wall time with the ideal
500 x 0.1 s / 16 = 3.125 s:

  1. clean run: must finish within 1.25x the ideal;
  2. faulty run: 10 % 429 (Retry-After: 0.2), 5 % 500 and 2 % dropped connections,
     rolled independently for every attempt. All 500 must complete, each exactly once
     in the cache, and the server must have answered each request with 200 exactly
     once (nothing paid twice). Retry counts by reason are printed.

  3. end to end: `tailor grade` and then `tailor teach` (CLI, store, cache) on 500
     problems against the same server, each answer taking 0.5 s, under 10 % 429 with
     Retry-After 1 s, 5 % 500 and 2 % dropped connections: wall time / ideal
     (500 x 0.5 s / 16) for each, limit 1.3x; every reply stored, none paid twice.

    python benchmarks/remote.py [--n 500] [--concurrency 16] [--delay 0.1] [--stages-only]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import OpenAIProvider  # noqa: E402
from app.remote import ChatRequest, RemoteClient, RetryPolicy  # noqa: E402
from app.store import Store  # noqa: E402

# -- the server (child process) --------------------------------------------------------


VERDICT = json.dumps(
    {
        "answer_correct": True,
        "logical": True,
        "complete": True,
        "minor_error": False,
        "grade": "easy",
        "rationale": "benchmark",
    }
)


def serve(delay: float, p429: float, p500: float, pdrop: float, seed: int, retry_after: str = "0.2") -> None:
    rng = random.Random(seed)
    lock = threading.Lock()
    served: Counter = Counter()  # request id -> number of 200 answers
    faults: Counter = Counter()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle on, delayed ACKs add
        # ~40 ms to every keep-alive response (real servers set TCP_NODELAY too).
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def _send(self, code: int, obj, headers=()):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with lock:
                self._send(200, {"served": served, "faults": faults})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rid = body["messages"][-1]["content"]
            with lock:
                roll = rng.random()
            if roll < p429:
                with lock:
                    faults["429"] += 1
                return self._send(429, {"error": {"message": "rate limited"}}, [("Retry-After", retry_after)])
            if roll < p429 + p500:
                with lock:
                    faults["500"] += 1
                return self._send(500, {"error": {"message": "internal error"}})
            if roll < p429 + p500 + pdrop:
                with lock:
                    faults["drop"] += 1
                self.close_connection = True
                return  # no response at all: the client sees a dropped connection
            time.sleep(delay)
            with lock:
                served[rid] += 1
            self._send(
                200,
                {
                    "id": rid,
                    "object": "chat.completion",
                    "model": body["model"],
                    # A grade request (JSON mode) gets a verdict, anything else a worked answer.
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": VERDICT
                                if body.get("response_format")
                                else f"Steps for {rid[:20]}. The answer is \\boxed{{1}}.",
                            },
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
                },
            )

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # listen backlog; the default 5 drops bursts of connects

    httpd = Server(("127.0.0.1", 0), Handler)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever(poll_interval=0.05)


class ServerProcess:
    def __init__(self, delay: float, p429=0.0, p500=0.0, pdrop=0.0, seed=0, retry_after="0.2"):
        self.args = [
            sys.executable,
            __file__,
            "--serve",
            str(delay),
            str(p429),
            str(p500),
            str(pdrop),
            str(seed),
            retry_after,
        ]

    def __enter__(self) -> "ServerProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def stats(self) -> dict:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=5).json()

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# -- the stages end to end: the CLI, the store, the cache ------------------------------

STAGE_DELAY = 0.5  # seconds per answer: a judge or teacher, not an echo
LIMIT = 1.3


def _project(root: Path, url: str, n: int, concurrency: int) -> Path:
    """A project with n diagnosed train problems, judge and both teachers on the server."""
    from app.cli import main as tailor
    from app.records import Attempt, Problem

    project = root / "project"
    with contextlib.redirect_stdout(io.StringIO()):
        assert tailor(["init", "--project", str(project)]) == 0
    text = (project / "tailor.toml").read_text()
    endpoint = f'provider = "openai"\nbase_url = "{url}"\nmodel = "bench"\nconcurrency = {concurrency}\n'
    for section in ("[judge]", "[teachers.short]", "[teachers.long]"):
        start = text.index(section)
        end = text.find("\n[", start + 1)
        text = text[:start] + f"{section}\n{endpoint}" + (text[end:] if end != -1 else "")
    (project / "tailor.toml").write_text(text)
    with Store(project / "tailor.db") as store:
        store.insert_problems(
            [Problem(id=f"b{i:04d}", question=f"Benchmark question {i}: {i} + 1?", answer=str(i + 1)) for i in range(n)]
        )
        with store.transaction():
            for i in range(n):
                store.insert_attempt(
                    Attempt(
                        key=f"bench-{i}",
                        problem_id=f"b{i:04d}",
                        purpose="diagnose",
                        model="student",
                        prompt_hash="bench",
                        params={},
                        text=f"{i} + 1 = {i + 1}. The answer is \\boxed{{{i + 1}}}.",
                        extracted=str(i + 1),
                    )
                )
    return project


def _timed(project: Path, *args: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--project", str(project), *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"tailor {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return wall


def stages(n: int, concurrency: int) -> bool:
    """`tailor grade` and `tailor teach` under 10 % 429 (Retry-After 1 s), 5 % 500 and 2 %
    dropped connections, each answer taking STAGE_DELAY: wall time / (n * delay / concurrency)."""
    ideal = n * STAGE_DELAY / concurrency
    print(
        f"\nend to end (CLI + store + cache): {n} problems, concurrency {concurrency}, "
        f"{STAGE_DELAY * 1000:.0f} ms per answer, ideal {ideal:.2f} s per stage"
    )
    print("  faults: 10 % 429 with Retry-After 1 s, 5 % 500, 2 % dropped connections")
    good = True
    with (
        tempfile.TemporaryDirectory() as tmp,
        ServerProcess(STAGE_DELAY, p429=0.10, p500=0.05, pdrop=0.02, seed=2, retry_after="1") as srv,
    ):
        project = _project(Path(tmp), srv.url, n, concurrency)
        walls = {"grade": _timed(project, "grade")}
        assert (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "--project",
                    str(project),
                    "sample",
                    "--name",
                    "b",
                    "--k",
                    str(n),
                    "--strategy",
                    "random",
                ],
                capture_output=True,
                cwd=Path(__file__).resolve().parent.parent,
            ).returncode
            == 0
        )
        walls["teach"] = _timed(project, "teach", "--dataset", "b")
        stats = srv.stats()
        with Store(project / "tailor.db") as store:
            ok = {
                stage: store.db.execute(
                    "SELECT count(*) FROM api_calls WHERE status = 'ok' AND stage = ?", [stage]
                ).fetchone()[0]
                for stage in walls
            }
    twice = sum(1 for c in stats["served"].values() if c > 1)
    for stage, wall in walls.items():
        ratio = wall / ideal
        good &= ratio <= LIMIT and ok[stage] == n
        print(
            f"  tailor {stage}: {wall:.2f} s = {ratio:.2f}x the ideal (limit {LIMIT}x: "
            f"{'OK' if ratio <= LIMIT else 'OVER'}); {ok[stage]}/{n} replies stored"
        )
    print(f"  faults injected: {dict(sorted(stats['faults'].items()))}; replies paid twice: {twice}")
    return good and twice == 0


# -- the client ------------------------------------------------------------------------


async def run_client(url: str, db: Path, n: int, concurrency: int, retry: RetryPolicy):
    cfg = OpenAIProvider(
        provider="openai",
        base_url=url,
        model="bench",
        concurrency=concurrency,
        timeout=10.0,
        max_tokens=16,
        price_in=0.27,
        price_out=1.10,
    )
    reqs = [ChatRequest([{"role": "user", "content": f"req-{i:04d}"}], "bench") for i in range(n)]
    with Store(db) as store:
        async with RemoteClient(cfg, "judge", store, "sk-bench-not-a-real-key", retry=retry, seed=0) as client:
            t0 = time.perf_counter()
            results = await client.chat_many(reqs)
            wall = time.perf_counter() - t0
            totals = client.totals
        rows = list(store.db.query("SELECT key, status FROM api_calls"))
    return wall, results, totals, rows


def check(label, results, rows, stats, n):
    ok = sum(r.ok for r in results)
    keys = Counter(r["key"] for r in rows)
    served = stats["served"]
    problems = []
    if ok != n:
        problems.append(f"{n - ok} requests failed: {Counter(r.error for r in results if r.error).most_common(3)}")
    if len(rows) != n or any(c != 1 for c in keys.values()) or any(r["status"] != "ok" for r in rows):
        problems.append(f"cache holds {len(rows)} rows for {n} requests")
    if len(served) != n or any(c != 1 for c in served.values()):
        twice = sum(1 for c in served.values() if c > 1)
        problems.append(f"server answered {len(served)} distinct requests with 200, {twice} more than once")
    verdict = "OK" if not problems else "FAIL: " + "; ".join(problems)
    print(
        f"  {label}: {ok}/{n} ok, {len(rows)} cache rows ({len(keys)} distinct keys), "
        f"200s served per request: {sorted(Counter(served.values()).items())} -> {verdict}"
    )
    return not problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--serve", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument(
        "--stages-only", action="store_true", help="only the end-to-end `tailor grade` / `tailor teach` runs"
    )
    a = ap.parse_args(argv)
    if a.serve:
        d, p429, p500, pdrop, seed, retry_after = a.serve
        serve(float(d), float(p429), float(p500), float(pdrop), int(seed), retry_after)
        return 0
    if a.stages_only:
        return 0 if stages(a.n, a.concurrency) else 1

    ideal = a.n * a.delay / a.concurrency
    waves = -(-a.n // a.concurrency) * a.delay
    retry = RetryPolicy(max_retries=8, backoff_base=0.1, backoff_max=2.0, retry_after_max=5.0)
    print(f"{a.n} requests, concurrency {a.concurrency}, server delay {a.delay * 1000:.0f} ms")
    print(
        f"ideal {a.n} x {a.delay} s / {a.concurrency} = {ideal:.3f} s (whole waves of {a.concurrency}: {waves:.3f} s)"
    )
    print(f"retry policy: {retry}")
    good = True
    with tempfile.TemporaryDirectory() as tmp:
        with ServerProcess(a.delay) as srv:
            wall, results, totals, rows = asyncio.run(
                run_client(srv.url, Path(tmp) / "clean.db", a.n, a.concurrency, retry)
            )
            stats = srv.stats()
        clean = wall / ideal
        print(
            f"\nclean run:  {wall:.3f} s   ratio to ideal {clean:.3f}x  (limit 1.25x: "
            f"{'OK' if clean <= 1.25 else 'FAIL'})"
        )
        good &= clean <= 1.25
        good &= check("clean", results, rows, stats, a.n)
        print(f"  totals: {totals.summary()}")

        with ServerProcess(a.delay, p429=0.10, p500=0.05, pdrop=0.02, seed=1) as srv:
            wall, results, totals, rows = asyncio.run(
                run_client(srv.url, Path(tmp) / "faulty.db", a.n, a.concurrency, retry)
            )
            stats = srv.stats()
        faulty = wall / ideal
        print(
            f"\nfaulty run: {wall:.3f} s   ratio to ideal {faulty:.3f}x  "
            f"(10 % 429 + Retry-After 0.2 s, 5 % 500, 2 % dropped connections)"
        )
        print(f"  faults injected by the server: {dict(sorted(stats['faults'].items()))}")
        print(
            f"  retries by the client:         {dict(sorted(totals.retries.items()))} "
            f"(total {sum(totals.retries.values())}); max retries of one request: "
            f"{max(r.retries for r in results)}"
        )
        good &= check("faulty", results, rows, stats, a.n)
        print(f"  totals: {totals.summary()}")

    print(f"\nratios: clean {clean:.3f}x, faulty {faulty:.3f}x of the ideal {ideal:.3f} s")
    good &= stages(a.n, a.concurrency)
    return 0 if good else 1


if __name__ == "__main__":
    raise SystemExit(main())
