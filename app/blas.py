"""Find a fast system BLAS for MLX's Linux CPU backend and build the child's environment.

The `mlx[cpu]` wheel links a reference BLAS (~5 GFLOPS for a 1024² float32 matmul on a
2-core x86 box); preloading the system OpenBLAS gives ~190. Only MLX child processes get
the preload, so the parent (TUI, batch runner) is never affected. macOS uses Accelerate
and Metal: nothing to do there.
"""

from __future__ import annotations

import ctypes.util
import os
import platform
import sys
from pathlib import Path

from app.errors import ConfigError

ENV_OVERRIDE = "TAILOR_BLAS"  # a path, or "none" to disable the preload
FAST_BLAS_FLAG = "TAILOR_FAST_BLAS"  # tells the child its float32 path is fast

INSTALL_HINT = (
    "no fast BLAS found: MLX float32 matmuls run ~30x slower on this CPU without one; "
    "install it with `sudo apt-get install libopenblas0-pthread` (Debian/Ubuntu) or "
    "`sudo dnf install openblas` (Fedora)"
)

_CANDIDATES = (
    "/usr/lib/{arch}-linux-gnu/openblas-pthread/libopenblas.so.0",  # Debian / Ubuntu
    "/usr/lib/{arch}-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblasp.so.0",  # Fedora (pthread build)
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",  # Arch
)


def find_blas(configured: str | None = None, *, system: str | None = None) -> str | None:
    """Path (or soname) of a fast BLAS to preload, or None.

    Order: $TAILOR_BLAS, then `[student] blas` in tailor.toml, then well-known paths,
    then the dynamic linker's search. "none" in either override disables the preload.
    """
    if (system or platform.system()) != "Linux":
        return None
    for source, value in ((ENV_OVERRIDE, os.environ.get(ENV_OVERRIDE)), ("student.blas", configured)):
        if not value:
            continue
        if value.lower() in ("none", "off", "0"):
            return None
        if not Path(value).exists():
            raise ConfigError(f"{source}: BLAS library {value} does not exist")
        return value
    arch = platform.machine()
    for pattern in _CANDIDATES:
        path = pattern.format(arch=arch)
        if Path(path).exists():
            return path
    return ctypes.util.find_library("openblas")


def child_env(blas: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an MLX child process, with `blas` preloaded when given."""
    env = dict(os.environ if base is None else base)
    env.pop(FAST_BLAS_FLAG, None)
    if blas:
        env["LD_PRELOAD"] = ":".join(p for p in (blas, env.get("LD_PRELOAD")) if p)
        env[FAST_BLAS_FLAG] = "1"
    return env


_hinted = False


def hint_once(blas: str | None, say=None) -> None:
    """Tell the user once per process that a fast BLAS is missing on Linux."""
    global _hinted
    if blas or _hinted or platform.system() != "Linux":
        return
    _hinted = True
    (say or (lambda m: print(f"tailor: note: {m}", file=sys.stderr)))(INSTALL_HINT)
