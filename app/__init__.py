"""tailor: student-centred chain-of-thought distillation on MLX."""

import importlib.util
from pathlib import Path

# The directory that holds the app and mlx_backend packages: a checkout (and an editable
# install), or site-packages for a wheel. MLX child processes import mlx_backend from it.
REPO_ROOT = Path(__file__).resolve().parent.parent


def resource_dir(name: str) -> Path:
    """tailor's own files: "prompts", "data" (the bundled problems) or "examples" (sweeps).

    A checkout keeps them at the top of the repository; a wheel ships the same
    directories inside the package as app._prompts, app._data and app._examples
    (pyproject.toml maps those packages onto them), found through the import system."""
    checkout = REPO_ROOT / name
    if (REPO_ROOT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    # A directory without __init__.py is a namespace package: its one search location.
    spec = importlib.util.find_spec(f"app._{name}")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"tailor's {name} directory is missing from this installation")
    return Path(list(spec.submodule_search_locations)[0])


BUNDLED = resource_dir("data") / "problems.jsonl"
