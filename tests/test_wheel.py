"""A non-editable install works: the wheel carries the prompts, the default config, the
stylesheet, the bundled problems and the example sweeps, and tailor runs from it in a
fresh environment outside the checkout."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from app import REPO_ROOT

pytest.importorskip("mlx.core")


def _build(out: Path) -> Path:
    # Without build isolation when this environment's setuptools can build the project
    # (>= 77, for the SPDX license field): offline and fast. Else pip fetches a build backend.
    import setuptools

    modern = int(setuptools.__version__.split(".")[0]) >= 77
    # From a copy: setuptools builds in the source tree (build/, *.egg-info).
    source = out.parent / "source"
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", "runs", "demo-*", "*.db*"
        ),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            *(["--no-build-isolation"] if modern else []),
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = out.glob("tailor-*.whl")
    return wheel


def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path, tiny_model_dir):
    wheel = _build(tmp_path / "dist")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "app/tailor.default.toml",
        "app/tui/app.tcss",
        "app/_prompts/grade.md",
        "app/_prompts/student_solve.md",
        "app/_data/problems.jsonl",
        "app/_examples/demo.toml",
    ):
        assert shipped in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies come from this environment (no downloads); tailor itself only from the wheel.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)

    project = tmp_path / "elsewhere" / "proj"
    project.mkdir(parents=True)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}

    def tailor(*args: str) -> str:
        done = subprocess.run(
            [str(venv / "bin" / "tailor"), *args], cwd=project, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"tailor {' '.join(args)}: {done.stderr[-1500:]}"
        return done.stdout

    where = subprocess.run(
        [str(py), "-c", "import app; print(app.__file__)"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(site) and str(REPO_ROOT) not in where
    assert "600 new" in tailor("init", "--with-bundled")
    cfg = project / "tailor.toml"
    cfg.write_text(
        cfg.read_text()
        .replace('model = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"', f'model = "{tiny_model_dir}"', 1)
        .replace("max_tokens = 1024", "max_tokens = 8", 1)
    )
    assert "ok" in tailor("doctor", "--no-ping")
    tailor("diagnose", "--limit", "8")
    tailor("grade")
    tailor("sample", "--name", "d", "--k", "6")
    tailor("teach", "--dataset", "d")
    tailor("verify", "--dataset", "d")
    assert "train examples" in tailor("export", "--dataset", "d")
    assert "adapter:" in tailor(
        "train",
        "--dataset",
        "d",
        "--iters",
        "2",
        "--set",
        "batch_size=2",
        "--set",
        "steps_per_eval=2",
        "--set",
        "save_every=2",
    )
    assert "R1" in tailor("eval", "--limit", "3")
