"""The names attempts, runs and likelihood scores record a student model or adapter under.

A local directory's absolute path changes when a project is moved or copied, and work
keyed on it would be redone. So a directory inside the project is named by its path
relative to the project ("./models/tiny", "./runs/ID/adapters"), and one elsewhere by
its resolved path plus a fingerprint of its config and weights index, which changes
when different weights land at the same path. Anything else (a hub repo id) is its own
name. `located` turns a name back into what an MLX job loads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

RELATIVE = "./"
_MARK = "#"
_DESCRIBING = ("config.json", "adapter_config.json", "model.safetensors.index.json")


def fingerprint(directory: Path) -> str:
    """A short hash of a model or adapter directory's config files and weight files' sizes."""
    h = hashlib.sha256()
    for name in _DESCRIBING:
        f = directory / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    for f in sorted(directory.glob("*.safetensors")):
        h.update(f"{f.name}:{f.stat().st_size}\0".encode())
    return h.hexdigest()[:12]


def identity(model: str | None, project: Path | str) -> str | None:
    """The stable name of `model` (a path, absolute or relative to the project, or a repo id)."""
    if model is None:
        return None
    path = Path(model).expanduser()
    if not path.is_absolute():
        path = Path(project) / path
    if not path.exists():
        return model  # a repo id, a recorded name, or a path that is gone: as given
    path, root = path.resolve(), Path(project).resolve()
    if path.is_relative_to(root):
        return RELATIVE + path.relative_to(root).as_posix()
    return f"{path}{_MARK}{fingerprint(path) if path.is_dir() else 'file'}"


def shown(name: str | None) -> str | None:
    """A recorded name as a person reads it: a directory outside the project by its last
    component and fingerprint (the full path is in the store and in reports)."""
    if name is None:
        return None
    path, mark, tag = name.rpartition(_MARK)
    return f"{Path(path).name}{_MARK}{tag}" if mark and Path(path).is_absolute() else name


def located(name: str | None, project: Path | str) -> str | None:
    """What a recorded name loads from in this project."""
    if name is None:
        return None
    if name.startswith(RELATIVE):
        return str(Path(project).resolve() / name[len(RELATIVE) :])
    path, mark, _ = name.rpartition(_MARK)
    return path if mark and Path(path).is_absolute() else name
