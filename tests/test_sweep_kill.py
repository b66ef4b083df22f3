"""A sweep killed with -9 while training resumes that run from its checkpoint on the next
start, and ends with the weights an uninterrupted sweep gets."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import BUNDLED, main
from app.config import DB_NAME
from app.identity import located
from app.store import Store

pytest.importorskip("mlx.core")

SWEEP = """
[sweep]
name = "k"
seeds = [0]
diagnose_limit = 8
valid_fraction = 0.25
stages = ["diagnose", "grade", "sample", "teach", "verify", "export", "train"]
[config.student]
model = "{model}"
max_tokens = 8
[config.sampling]
k = 8
[defaults]
profile = "obryan"
iters = 120
set = {{ batch_size = 2, steps_per_eval = 100, steps_per_report = 10, save_every = 5, truncate = true }}
[[cell]]
label = "c"
"""


def _setup(project: Path, sweep: Path, model) -> None:
    assert main(["--project", str(project), "import", str(BUNDLED)]) == 0
    sweep.write_text(SWEEP.format(model=model))


def _adapter(project: Path) -> bytes:
    with Store(project / DB_NAME) as store:
        (run,) = store.runs()
        assert run.status == "done"
        return (Path(located(run.adapter_path, project)) / "adapters.safetensors").read_bytes()


def test_a_sweep_killed_while_training_resumes_the_run(project, tmp_path, tiny_model_dir):
    sweep = tmp_path / "k.toml"
    _setup(project, sweep, tiny_model_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--project", str(project), "--batch", str(sweep)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    latest = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((project / "runs").glob("k-c-*/checkpoints/latest.json"))
        if found and json.loads(found[0].read_text())["iter"] >= 10:
            latest = found[0]
            break
        time.sleep(0.05)
    assert latest is not None, "training never reached a checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its training job, no chance to clean up
    proc.wait()
    with Store(project / DB_NAME) as store:
        (run,) = store.runs()
        assert run.status == "running"  # as the dead process left it
    killed_at = json.loads(latest.read_text())["iter"]
    assert killed_at < 120

    assert main(["--project", str(project), "--batch", str(sweep)]) == 0
    with Store(project / DB_NAME) as store:
        (again,) = store.runs()
        assert again.id == run.id and again.status == "done"
    log = [json.loads(line.split(" ", 1)[1]) for line in (latest.parent.parent / "log").read_text().splitlines()]
    starts = [e for e in log if e.get("event") == "start"]
    assert starts[-1]["start_iter"] == killed_at and starts[-1]["resumed_from"]

    other = tmp_path / "uninterrupted"
    assert main(["init", "--project", str(other)]) == 0
    _setup(other, tmp_path / "k2.toml", tiny_model_dir)
    assert main(["--project", str(other), "--batch", str(tmp_path / "k2.toml")]) == 0
    assert _adapter(project) == _adapter(other)


def test_job_directories_of_dead_processes_are_removed(tmp_path):
    from app.jobs import JOB_DIR_PREFIX, remove_orphan_dirs

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan, mine, unknown = (tmp_path / f"{JOB_DIR_PREFIX}{n}" for n in ("a", "b", "c"))
    for d, owner in ((orphan, dead.stdout.strip()), (mine, str(os.getpid())), (unknown, None)):
        d.mkdir()
        (d / "job.json").write_text("{}")
        if owner:
            (d / "owner.pid").write_text(owner)
    assert remove_orphan_dirs(str(tmp_path)) == [orphan]
    assert not orphan.exists() and mine.exists() and unknown.exists()
