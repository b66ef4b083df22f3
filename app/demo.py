"""`tailor demo [DIR]`: the whole loop offline, through the same sweep runner as `--batch`.

It prepares a project (tailor.toml with the rules judge and the reference teachers, a
tiny random-weight student built in DIR/model, the bundled problems) and then runs
examples/demo.toml. Running it again resumes and redoes nothing already done.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app import BUNDLED, REPO_ROOT
from app.config import CONFIG_NAME, DB_NAME, default_config_text
from app.errors import TailorError

DEMO_SWEEP = REPO_ROOT / "examples" / "demo.toml"
MODEL_DIR = "model"
BANNER = ("OFFLINE DEMO — student: a tiny random-weight model built here (it cannot really solve problems; "
          "accuracies near 0 are expected); judge: rules (answer check only); teachers: reference solutions")


# Small sizes, so the loop fits in minutes on a laptop CPU. They live in the project's
# tailor.toml (not the sweep file) so that stages started from the TUI match the demo's.
DEMO_EDITS = {
    'model = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"':
        f'# The demo\'s tiny random-weight model (built by `tailor demo`).\nmodel = "{MODEL_DIR}"',
    "max_tokens = 1024": "max_tokens = 64",
    "max_batch = 16": "max_batch = 32",
    "k = 200": "k = 64",
}
DEMO_TIERS = """
# The demo's response-length tiers: the same instructions, budgets scaled to max_tokens = 64.
[eval.tiers]
R2 = { max_tokens = 48 }
R3 = { max_tokens = 36 }
R4 = { max_tokens = 28 }
R5 = { max_tokens = 20 }
R6 = { max_tokens = 12 }
"""


def demo_config_text() -> str:
    text = default_config_text()
    for old, new in DEMO_EDITS.items():
        if old not in text:
            raise TailorError(f"demo: the default tailor.toml has no line {old!r} to replace")
        text = text.replace(old, new, 1)
    return text + DEMO_TIERS


def prepare(directory: Path, say) -> None:
    """Create the demo project in `directory` (what exists is kept)."""
    from app.pipeline.importing import import_file
    from app.store import Store

    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / CONFIG_NAME
    if not cfg.exists():
        cfg.write_text(demo_config_text(), encoding="utf-8")
        say(f"wrote {cfg}")
    model = directory / MODEL_DIR
    if not (model / "config.json").exists():
        # A child process: app/ never imports mlx itself.
        proc = subprocess.run([sys.executable, "-m", "mlx_backend.tiny", str(model)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise TailorError(f"demo: building the tiny model failed: {proc.stderr.strip().splitlines()[-1:]}")
        say(f"built the tiny student model in {model}")
    with Store(directory / DB_NAME) as store:
        if store.count("problems") == 0:
            n = import_file(store, BUNDLED, source="bundled").new
            say(f"imported {n} bundled problems")
