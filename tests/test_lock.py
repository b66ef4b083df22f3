"""The lock is current: requirements.lock (what `make` installs, for macOS arm64 and Linux
x86_64 together) is what uv resolves from pyproject.toml, keeping the pins it already has."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import REPO_ROOT

UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
# The one command that writes the lock (README, "The lock"); -o names the file to keep pins from.
COMPILE = [
    "pip",
    "compile",
    "pyproject.toml",
    "--universal",
    "--all-extras",
    "--generate-hashes",
    "--no-header",
    "--quiet",
]


@pytest.mark.skipif(not Path(UV).exists(), reason="uv is not installed (pip install '.[dev]')")
def test_requirements_lock_is_what_pyproject_resolves_to(tmp_path):
    lock = REPO_ROOT / "requirements.lock"
    again = tmp_path / "requirements.lock"
    shutil.copy(lock, again)  # uv keeps the versions an existing output file pins, where they still fit
    done = subprocess.run([UV, *COMPILE, "-o", str(again)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    assert again.read_text() == lock.read_text(), (
        "requirements.lock is stale: run `uv pip compile pyproject.toml --universal --all-extras "
        "--generate-hashes --no-header -o requirements.lock`"
    )
