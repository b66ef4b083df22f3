"""A full disk and a read-only project end a command with one line, and the store stays intact."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.cli import main
from app.store import Store


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir()
    try:
        return (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
            ).returncode
            == 0
        )
    except OSError:
        return False


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A project directory on a 1 MB tmpfs when this machine lets us mount one, else a
    store capped by SQLite's max_page_count (the same 'database or disk is full')."""
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mounted = _mount_tmpfs(where, "1m")
    if not mounted:
        real_migrate = Store.migrate

        def capped(self):
            real_migrate(self)
            self.db.execute("PRAGMA max_page_count = 200")  # 200 pages of 4 KB

        monkeypatch.setattr(Store, "migrate", capped)
    yield where, mounted
    if mounted:
        subprocess.run(["umount", str(where)], check=False)


def _tailor(project, *args):
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--project", str(project), *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _problems(path, n, tag):
    path.write_text(
        "".join(
            json.dumps({"id": f"{tag}{i}", "question": f"{tag} question {i}: " + "x" * 300, "answer": str(i)}) + "\n"
            for i in range(n)
        )
    )
    return path


def test_a_full_disk_is_one_line_and_keeps_what_was_committed(small_disk, tmp_path, capsys):
    where, _ = small_disk
    assert main(["init", "--project", str(where)]) == 0
    assert main(["--project", str(where), "import", str(_problems(tmp_path / "a.jsonl", 20, "a"))]) == 0
    capsys.readouterr()
    big = _problems(tmp_path / "b.jsonl", 8000, "b")  # ~2.6 MB of text: cannot fit
    assert main(["--project", str(where), "import", str(big)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the disk is full" in err and "Traceback" not in err
    with Store(where / "tailor.db") as store:
        assert store.problem_counts() == {"train": 20}  # the failed import left nothing behind


def test_a_read_only_project_reads_and_refuses_writes_in_one_line(tmp_path):
    where = tmp_path / f"ro-{uuid.uuid4().hex[:6]}"
    if not _mount_tmpfs(where, "8m"):
        pytest.skip("needs a tmpfs mount (root) to make a read-only file system")
    try:
        assert main(["init", "--project", str(where)]) == 0
        assert main(["--project", str(where), "import", str(_problems(tmp_path / "a.jsonl", 5, "a"))]) == 0
        assert subprocess.run(["mount", "-o", "remount,ro", str(where)]).returncode == 0
        # In child processes: SQLite's unix VFS may keep a read-only file descriptor open
        # after close(), which would keep the mount busy for this process.
        status = _tailor(where, "status")
        assert status.returncode == 0 and "train 5" in status.stdout
        refused = _tailor(where, "import", str(_problems(tmp_path / "b.jsonl", 5, "b")))
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and "read-only" in refused.stderr
        assert "cannot open" not in refused.stderr
    finally:
        subprocess.run(["umount", str(where)], check=False)
