"""Run one MLX job in a child process (`python -m mlx_backend JOB.json`) and stream its events.

Why a child: MLX streams are thread-local, model memory is only returned when the
process ends, and a crash in MLX must not take the TUI or a batch run down. The child
writes one JSON object per line on stdout; see mlx_backend/__main__.py for the events.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app import REPO_ROOT
from app.blas import child_env
from app.errors import TailorError


class JobError(TailorError):
    pass


@dataclass
class JobOutcome:
    status: str  # done | cancelled | error
    returncode: int
    stats: dict = field(default_factory=dict)
    start: dict = field(default_factory=dict)
    error: str | None = None
    blas: str | None = None


JOB_DIR_PREFIX = "tailor-job-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_orphan_dirs(tmpdir: str | None = None) -> list[Path]:
    """Delete job directories whose owning tailor process is gone (killed with -9, say:
    nothing ran its cleanup). Each directory names its owner in owner.pid."""
    removed = []
    for d in Path(tmpdir or tempfile.gettempdir()).glob(JOB_DIR_PREFIX + "*"):
        try:
            pid = int((d / "owner.pid").read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue  # being created, or not ours to judge
        if not _alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


class MlxJob:
    """One child process running one job spec. `cancel()` may be called from another thread."""

    def __init__(self, spec: dict, *, blas: str | None = None, python: str | None = None):
        self.spec = spec
        self.blas = blas
        self.python = python or sys.executable
        self.proc: subprocess.Popen | None = None
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def _stop_child(self) -> None:
        self.cancel()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def run(self, on_event: Callable[[dict], None]) -> JobOutcome:
        """Start the child, call `on_event` for every event line, wait for it to end.

        Ctrl-C in a terminal reaches the child too (same process group); we keep reading
        so every result it finished is handed to `on_event` before we return.
        """
        remove_orphan_dirs()
        with tempfile.TemporaryDirectory(prefix=JOB_DIR_PREFIX) as tmp:
            (Path(tmp) / "owner.pid").write_text(str(os.getpid()), encoding="ascii")
            spec_path = Path(tmp) / "job.json"
            spec_path.write_text(json.dumps(self.spec), encoding="utf-8")
            stderr_path = Path(tmp) / "stderr.log"
            with open(stderr_path, "w+b") as stderr:
                env = child_env(self.blas)
                # The child must import mlx_backend even when tailor is not installed.
                env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
                self.proc = subprocess.Popen(
                    [self.python, "-m", "mlx_backend", str(spec_path)],
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=env,
                    text=True,
                    bufsize=1,
                )
                outcome = JobOutcome(status="error", returncode=-1, blas=self.blas)
                interrupted = False
                try:
                    while True:
                        try:
                            line = self.proc.stdout.readline()
                        except KeyboardInterrupt:
                            interrupted = True
                            self.cancel()
                            continue
                        if not line:
                            break
                        event = _parse(line)
                        if event is None:
                            continue
                        kind = event.get("event")
                        if kind == "start":
                            outcome.start = event
                        elif kind == "done":
                            outcome.status, outcome.stats = "done", event.get("stats", {})
                        elif kind == "cancelled":
                            outcome.status = "cancelled"
                        elif kind == "error":
                            outcome.error = event.get("message")
                        on_event(event)
                except BaseException:
                    # on_event failed (or the caller cancels by raising): the child must not
                    # outlive us, writing into a temp dir that is about to disappear.
                    self._stop_child()
                    raise
                outcome.returncode = self.proc.wait()
                if outcome.returncode != 0 and outcome.status == "done":
                    outcome.status = "error"
                if outcome.status == "error" and not outcome.error:
                    stderr.seek(0)
                    tail = stderr.read().decode("utf-8", "replace").strip().splitlines()
                    outcome.error = f"MLX job exited with code {outcome.returncode}" + (f": {tail[-1]}" if tail else "")
                if self._cancelled and outcome.status != "done":
                    outcome.status = "cancelled"
        if interrupted:
            raise KeyboardInterrupt
        return outcome


def _parse(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
