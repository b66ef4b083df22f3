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

    python benchmarks/remote.py [--n 500] [--concurrency 16] [--delay 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
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


def serve(delay: float, p429: float, p500: float, pdrop: float, seed: int) -> None:
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
                return self._send(429, {"error": {"message": "rate limited"}}, [("Retry-After", "0.2")])
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
            self._send(200, {
                "id": rid, "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer to {rid}"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
            })

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # listen backlog; the default 5 drops bursts of connects

    httpd = Server(("127.0.0.1", 0), Handler)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever(poll_interval=0.05)


class ServerProcess:
    def __init__(self, delay: float, p429=0.0, p500=0.0, pdrop=0.0, seed=0):
        self.args = [sys.executable, __file__, "--serve", str(delay), str(p429), str(p500), str(pdrop), str(seed)]

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


# -- the client ------------------------------------------------------------------------


async def run_client(url: str, db: Path, n: int, concurrency: int, retry: RetryPolicy):
    cfg = OpenAIProvider(provider="openai", base_url=url, model="bench", concurrency=concurrency,
                         timeout=10.0, max_tokens=16, price_in=0.27, price_out=1.10)
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
    print(f"  {label}: {ok}/{n} ok, {len(rows)} cache rows ({len(keys)} distinct keys), "
          f"200s served per request: {sorted(Counter(served.values()).items())} -> {verdict}")
    return not problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--serve", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        d, p429, p500, pdrop, seed = a.serve
        serve(float(d), float(p429), float(p500), float(pdrop), int(seed))
        return 0

    ideal = a.n * a.delay / a.concurrency
    waves = -(-a.n // a.concurrency) * a.delay
    retry = RetryPolicy(max_retries=8, backoff_base=0.1, backoff_max=2.0, retry_after_max=5.0)
    print(f"{a.n} requests, concurrency {a.concurrency}, server delay {a.delay * 1000:.0f} ms")
    print(f"ideal {a.n} x {a.delay} s / {a.concurrency} = {ideal:.3f} s "
          f"(whole waves of {a.concurrency}: {waves:.3f} s)")
    print(f"retry policy: {retry}")
    good = True
    with tempfile.TemporaryDirectory() as tmp:
        with ServerProcess(a.delay) as srv:
            wall, results, totals, rows = asyncio.run(run_client(srv.url, Path(tmp) / "clean.db", a.n, a.concurrency, retry))
            stats = srv.stats()
        clean = wall / ideal
        print(f"\nclean run:  {wall:.3f} s   ratio to ideal {clean:.3f}x  (limit 1.25x: "
              f"{'OK' if clean <= 1.25 else 'FAIL'})")
        good &= clean <= 1.25
        good &= check("clean", results, rows, stats, a.n)
        print(f"  totals: {totals.summary()}")

        with ServerProcess(a.delay, p429=0.10, p500=0.05, pdrop=0.02, seed=1) as srv:
            wall, results, totals, rows = asyncio.run(run_client(srv.url, Path(tmp) / "faulty.db", a.n, a.concurrency, retry))
            stats = srv.stats()
        faulty = wall / ideal
        print(f"\nfaulty run: {wall:.3f} s   ratio to ideal {faulty:.3f}x  "
              f"(10 % 429 + Retry-After 0.2 s, 5 % 500, 2 % dropped connections)")
        print(f"  faults injected by the server: {dict(sorted(stats['faults'].items()))}")
        print(f"  retries by the client:         {dict(sorted(totals.retries.items()))} "
              f"(total {sum(totals.retries.values())}); max retries of one request: "
              f"{max(r.retries for r in results)}")
        good &= check("faulty", results, rows, stats, a.n)
        print(f"  totals: {totals.summary()}")

    print(f"\nratios: clean {clean:.3f}x, faulty {faulty:.3f}x of the ideal {ideal:.3f} s")
    return 0 if good else 1


if __name__ == "__main__":
    raise SystemExit(main())
