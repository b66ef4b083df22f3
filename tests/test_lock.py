"""The lock is current: uv.lock matches pyproject.toml, and requirements.lock (what `make`
installs) is exactly uv.lock's export."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import REPO_ROOT

UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
EXPORT = ["export", "--frozen", "--all-extras", "--no-emit-project", "--quiet"]

pytestmark = pytest.mark.skipif(not Path(UV).exists(), reason="uv is not installed (pip install '.[dev]')")


def _uv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([UV, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_uv_lock_matches_pyproject():
    done = _uv("lock", "--check")
    assert done.returncode == 0, f"uv.lock is stale: run `uv lock` (README, The lock)\n{done.stderr[-1500:]}"


def test_requirements_lock_is_the_export_of_uv_lock():
    done = _uv(*EXPORT)
    assert done.returncode == 0, done.stderr[-1500:]
    body = lambda text: [line for line in text.splitlines() if not line.startswith("#")]  # noqa: E731
    assert body(done.stdout) == body((REPO_ROOT / "requirements.lock").read_text()), (
        "requirements.lock is stale: run `uv export --frozen --all-extras --no-emit-project -o requirements.lock`"
    )
