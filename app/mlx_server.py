"""Serve a local MLX model with mlx_lm.server on a free loopback port, for the life of a stage.

    with mlx_server("mlx-community/Qwen2.5-7B-Instruct-4bit") as base_url:
        ...  # RemoteClient(provider_cfg, role, store, base_url=base_url)

The child is ``python -m mlx_lm server --model M [--adapter-path A] --host 127.0.0.1
--port P`` (this interpreter). We wait until GET /health answers and then send one
1-token chat request, because mlx_lm.server answers HTTP while its generation thread is
still loading the weights; only a completed request shows the model is really usable.
If the child exits or the model fails to load, `MlxServerError` carries the tail of its
log. The child is terminated (then killed) at exit. Nothing here imports mlx.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.blas import child_env, find_blas
from app.errors import TailorError

HOST = "127.0.0.1"
_ACCESS_LOG = re.compile(r'^\S+ - - \[[^\]]*\] "')


class MlxServerError(TailorError):
    pass


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class MlxServer:
    """One mlx_lm.server child process. `start()` blocks until it serves the model."""

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        *,
        startup_timeout: float = 300.0,
        warmup: bool = True,
        env: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        command: Sequence[str] | None = None,
    ):
        self.model = model
        self.adapter = adapter
        self.startup_timeout = startup_timeout
        self.warmup = warmup
        self.env = env
        self.extra_args = list(extra_args)
        self._command = list(command) if command is not None else None  # tests: a fake server
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._log_path: Path | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        return f"http://{HOST}:{self.port}/v1"

    def argv(self) -> list[str]:
        if self._command is not None:
            return [a.replace("{port}", str(self.port)) for a in self._command]
        from app.models import resolve_student  # a GGUF file or a fetchable name is converted first

        argv = [
            sys.executable,
            "-m",
            "mlx_lm",
            "server",
            "--model",
            resolve_student(self.model),
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        if self.adapter:
            argv += ["--adapter-path", self.adapter]
        return argv + self.extra_args

    def start(self) -> str:
        self.port = free_port()
        fd, name = tempfile.mkstemp(prefix="tailor-mlx-server-", suffix=".log")
        self._log_path = Path(name)
        self._log = os.fdopen(fd, "wb")
        # The same BLAS preload as our own MLX jobs: without it float32 matmuls on a Linux
        # CPU run at reference-BLAS speed (a 540-token prefill took minutes).
        env = {**child_env(find_blas()), **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop(keep_log=False)
            raise
        return self.base_url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        label = f"mlx_lm.server for {self.model}"
        with httpx.Client(base_url=self.base_url + "/", timeout=httpx.Timeout(5.0)) as http:
            while True:
                self._check_alive(label)
                # /health answers 200 while the weights load and 503 once loading failed.
                # (/v1/models is not used: it scans the Hugging Face cache and fails
                # half-way when there is none.) Servers without /health answer 404.
                code = _get_status(http, f"http://{HOST}:{self.port}/health")
                if code == 503:
                    raise MlxServerError(f"{label} failed to load the model{self._tail()}")
                if code is not None:
                    break
                if time.monotonic() > deadline:
                    raise MlxServerError(f"{label} did not answer within {self.startup_timeout:g}s{self._tail()}")
                time.sleep(0.2)
            if not self.warmup:
                return
            body = {
                "model": "default_model",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 1,
                "temperature": 0.0,
            }
            while True:
                self._check_alive(label)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MlxServerError(
                        f"{label} did not load the model within {self.startup_timeout:g}s{self._tail()}"
                    )
                try:
                    r = http.post("chat/completions", json=body, timeout=httpx.Timeout(remaining))
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                if r.status_code == 200:
                    return
                health = _get_status(http, f"http://{HOST}:{self.port}/health")
                if health == 503 or self.proc.poll() is not None:
                    raise MlxServerError(f"{label} failed to load the model{self._tail()}")
                raise MlxServerError(f"{label}: warm-up request answered HTTP {r.status_code}{self._tail()}")

    def _check_alive(self, label: str) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            raise MlxServerError(f"{label} exited with code {code} while starting{self._tail()}")

    def _tail(self, lines: int = 12) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        if self._log is not None:
            self._log.flush()
        text = self._log_path.read_bytes()[-8000:].decode("utf-8", "replace")
        # Access-log lines ("127.0.0.1 - - [date] "GET ...") say nothing about a failure.
        tail = [ln for ln in text.splitlines() if ln.strip() and not _ACCESS_LOG.match(ln)][-lines:]
        return (":\n  " + "\n  ".join(tail)) if tail else ""

    def stop(self, keep_log: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._log_path is not None and not keep_log:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _get_status(http: httpx.Client, path: str) -> int | None:
    try:
        return http.get(path).status_code
    except httpx.HTTPError:
        return None


@contextmanager
def mlx_server(model: str, adapter: str | None = None, **kwargs) -> Iterator[str]:
    """Start mlx_lm.server, yield its base_url (http://127.0.0.1:PORT/v1), stop it at exit."""
    server = MlxServer(model, adapter, **kwargs)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()
