"""tailor: student-centred chain-of-thought distillation on MLX."""

from pathlib import Path

# The checkout tailor runs from (an editable install): the bundled data, examples and the
# mlx_backend package that MLX child processes import.
REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED = REPO_ROOT / "data" / "problems.jsonl"
