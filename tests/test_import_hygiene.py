"""The headless core stays light: importing the CLI, the store and every pipeline stage
loads no MLX, Textual or matplotlib (those load only in the stage, job or screen that uses
them), so `tailor status` and a remote stage start fast and run where those are absent."""

import subprocess
import sys

from app import REPO_ROOT

HEAVY = ("mlx", "mlx_lm", "textual", "matplotlib")


def test_the_headless_core_imports_no_heavy_library():
    stages = sorted(p.stem for p in (REPO_ROOT / "app" / "pipeline").glob("*.py") if p.stem != "__init__")
    code = "\n".join(
        [
            "import sys",
            "import app.cli, app.store, app.pipeline",
            *[f"import app.pipeline.{s}" for s in stages],
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))",
        ]
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert done.stdout.strip() == "[]", f"the headless core imports {done.stdout.strip()}"
    assert len(stages) >= 10
