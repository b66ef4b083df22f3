"""Run one pipeline stage in a thread and report its progress to the app by messages.

The stage functions are the ones the CLI calls; this module only adapts their Events
protocol to Textual messages and adds cancellation. A sqlite connection may only be used
by the thread that opened it, so the worker opens its own Store and config.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from textual.message import Message


class StageCancelled(Exception):
    """Raised inside a running stage (from an Events call) once Cancel was pressed."""


class StageUpdate(Message):
    """Progress of the running stage. kind: start | advance | message | done | finished."""

    def __init__(
        self, key: str, kind: str, *, total: int | None = None, n: int = 0, text: str = "", status: str = ""
    ) -> None:
        super().__init__()
        self.key, self.kind, self.total, self.n, self.text, self.status = key, kind, total, n, text, status


class TuiEvents:
    """app.events.Events for a stage running in a worker thread.

    Advances are coalesced (at most one message per `interval` seconds) so a stage that
    advances per item cannot flood the UI's message queue."""

    def __init__(self, post: Callable[[Message], object], key: str, cancelled: threading.Event, interval: float = 0.1):
        self.post, self.key, self.cancelled, self.interval = post, key, cancelled, interval
        self._pending = 0
        self._last = 0.0

    def _check(self) -> None:
        if self.cancelled.is_set():
            self._flush()
            raise StageCancelled()

    def _flush(self) -> None:
        if self._pending:
            self.post(StageUpdate(self.key, "advance", n=self._pending))
            self._pending = 0
        self._last = time.monotonic()

    def start(self, stage: str, total: int | None = None) -> None:
        self._check()
        self.post(StageUpdate(self.key, "start", total=total, text=stage))

    def advance(self, n: int = 1) -> None:
        self._pending += n
        if time.monotonic() - self._last >= self.interval:
            self._flush()
        self._check()

    def message(self, text: str) -> None:
        self._flush()
        self.post(StageUpdate(self.key, "message", text=text))
        self._check()

    def done(self, summary: str = "") -> None:
        self._flush()
        self.post(StageUpdate(self.key, "done", text=summary))


@dataclass
class StageRun:
    """One started stage: its cancel flag and the MLX jobs it launched."""

    key: str
    cancelled: threading.Event = field(default_factory=threading.Event)
    jobs: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def job_factory(self, base_cls):
        """A `job_cls` for MLX stages that remembers each job so cancel() can stop it."""

        def make(spec, blas=None):
            job = base_cls(spec, blas=blas)
            with self._lock:
                self.jobs.append(job)
                stop = self.cancelled.is_set()
            if stop:  # cancel pressed before the job existed
                job.cancel()
            return job

        return make

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            jobs = list(self.jobs)
        for job in jobs:
            job.cancel()  # thread-safe: sets a flag and signals the child


def run_stage(
    project: Path, run: StageRun, call: Callable, post: Callable[[Message], object], base_job_cls=None
) -> None:
    """The body of the worker thread: open config and store, run `call`, report the outcome."""
    from app.config import DB_NAME, load_config
    from app.errors import TailorError
    from app.store import Store, failure

    if base_job_cls is None:
        from app.jobs import MlxJob as base_job_cls
    events = TuiEvents(post, run.key, run.cancelled)
    status, text = "done", ""
    try:
        cfg = load_config(project)
        with Store(Path(project) / DB_NAME) as store:
            result = call(cfg, store, events, project=Path(project), job_cls=run.job_factory(base_job_cls))
        # MLX stages return normally after their job was stopped: say so.
        if getattr(result, "status", None) in ("cancelled", "interrupted") or run.cancelled.is_set():
            status = "cancelled"
        summary = getattr(result, "summary", None)
        text = summary() if callable(summary) else ""
    except StageCancelled:
        status = "cancelled"
    except TailorError as e:
        status, text = "failed", str(e)
    except sqlite3.Error as e:  # a full disk, a lock held too long, a read-only project
        status, text = "failed", failure(e, Path(project) / DB_NAME)
    except Exception as e:  # noqa: BLE001 -- a bug in a stage must not take the interface down
        status, text = "failed", f"{type(e).__name__}: {e}"
    post(StageUpdate(run.key, "finished", status=status, text=text))
