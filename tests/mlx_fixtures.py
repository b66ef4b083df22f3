"""Shared fixtures and helpers for the MLX tests (tests/test_mlx_*.py).

tests/conftest.py loads this module as a plugin (pytest_plugins), so every test can use
the fixtures; nothing here imports mlx until a fixture runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The default tiny model (seed 0), built once per test session."""
    from mlx_backend.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    """(model, tokenizer, info) of the tiny model, loaded once."""
    from mlx_backend.model import load_model

    return load_model(str(tiny_model_dir))


def job_command(job_path: Path) -> list[str]:
    return [sys.executable, "-m", "mlx_backend", str(job_path)]


def job_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TAILOR_FAST_BLAS", None)
    return env


def write_job(tmp_path: Path, job: dict, name: str = "job.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(job), encoding="utf-8")
    return path


def run_job(tmp_path: Path, job: dict, timeout: float = 60) -> tuple[list[dict], int, str]:
    """Run ``python -m mlx_backend`` on ``job``; return (events, exit code, stderr)."""
    proc = subprocess.run(
        job_command(write_job(tmp_path, job)), capture_output=True, text=True,
        timeout=timeout, cwd=REPO, env=job_env(),
    )
    # Every stdout line must be one JSON event.
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return events, proc.returncode, proc.stderr


def results(events: list[dict]) -> dict[str, dict]:
    return {e["id"]: e for e in events if e["event"] == "result"}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]
