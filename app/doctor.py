"""`tailor doctor`: the facts a user needs before a long run, and what to fix.

Every MLX fact comes from a child process started exactly like a real job, so the
BLAS and GFLOPS shown are the ones jobs get.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app.blas import INSTALL_HINT, child_env, find_blas
from app.config import Config
from app.errors import TailorError
from app.memory import memory_bytes
from app.models import FETCHABLE, converted_dir, fetched_path
from app.roofline import DTYPE_BYTES, Limits, Shape, decode_tps, prefill_tps, train_tps, weight_bytes


@dataclass
class Report:
    facts: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # blocking
    advice: list[str] = field(default_factory=list)  # worth fixing, not blocking
    probe: dict = field(default_factory=dict)  # what the MLX probe measured, for the store

    @property
    def limits(self) -> Limits | None:
        return limits_of(self.probe)

    def fact(self, name: str, value: str) -> None:
        self.facts.append((name, value))

    def render(self) -> str:
        width = max((len(n) for n, _ in self.facts), default=0)
        lines = [f"{n:<{width}}  {v}" for n, v in self.facts]
        lines += [f"FIX   {p}" for p in self.problems]
        lines += [f"hint  {a}" for a in self.advice]
        lines.append("ok: ready for a long run" if not self.problems else f"{len(self.problems)} blocking problem(s)")
        return "\n".join(lines)


def probe_mlx(
    blas: str | None, seconds: float = 1.0, shapes: list[list[int]] | None = None, student: dict | None = None
) -> dict:
    """Run mlx_backend.probe in a child with the given BLAS preloaded; with `student`
    ({"model", "dtype"}) it also loads the student and times its decode."""
    env = child_env(blas)
    args = [str(seconds), json.dumps(shapes or [])] + ([json.dumps(student)] if student else [])
    proc = subprocess.run(
        [sys.executable, "-m", "mlx_backend.probe", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600 if student else 120,  # a student of a few GB takes a while to load
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TailorError(f"MLX probe failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def student_shape(model: str) -> tuple[Shape, dict] | None:
    """The student's shape and config.json, when it is a local model directory."""
    path = Path(model).expanduser() / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        return Shape.from_config(config), config
    except (ValueError, KeyError):
        return None


PREFILL_ROWS = 512  # a prompt's rows through the student's MLP: the shape prefill and training run
DECODE_BATCHES = (1, 8, 16)
CONTEXT = 256  # tokens of context a decode step attends to, for the roofline line
PROBE_CONTEXT = 64  # about the prompt + tokens of the probe's own decode (mlx_backend/probe.py)
FAR_BELOW = 0.3  # of the roofline: below this, a configuration problem rather than noise


def bytes_per_weight(config: dict, dtype: str, scale_bytes: float = 2.0) -> float:
    """What one weight costs a decode step: quantized layers stay quantized whatever the
    dtype (mlx_backend/model.py), with half-precision scales unless told; dense ones take
    the planned dtype, else the model's own."""
    q = config.get("quantization") or {}
    if q.get("bits"):
        return weight_bytes("float32", q["bits"], q.get("group_size", 64), scale_bytes)
    return DTYPE_BYTES.get(dtype.split()[0]) or DTYPE_BYTES.get(config.get("torch_dtype"), 4.0)


def roofline_line(shape: Shape, config: dict, dtype: str, lim: Limits) -> str:
    """The best tokens/s these limits allow the student: the benchmarks' denominators."""
    per = bytes_per_weight(config, dtype)
    decode = " / ".join(f"{decode_tps(shape, lim, b, CONTEXT, per):.0f}" for b in DECODE_BATCHES)
    return (
        f"decode {decode} tok/s at batch {' / '.join(map(str, DECODE_BATCHES))} (context {CONTEXT}, "
        f"{per:g} bytes a weight); prefill {prefill_tps(shape, lim, PREFILL_ROWS):.0f} tok/s; "
        f"LoRA training {train_tps(shape, lim, PREFILL_ROWS):.0f} tok/s"
    )


def measured_bytes_per_weight(config: dict, decode: dict) -> float:
    """What one weight cost the probe's decode, in the form the student was loaded in."""
    if decode.get("quantized"):
        scales = 4.0 if decode.get("quantized_path") == "float32 scales" else 2.0
        return bytes_per_weight(config, decode["dtype"], scales)
    return DTYPE_BYTES.get(decode.get("dtype"), 4.0)  # dense, dequantized or not


def decode_check(r: Report, shape: Shape, config: dict, lim: Limits, decode: dict, fast_blas: bool) -> None:
    """The student's measured decode against its roofline; advice when far below it."""
    per = measured_bytes_per_weight(config, decode)
    roof = decode_tps(shape, lim, 1, PROBE_CONTEXT, per)
    form = decode["dtype"] + (f", quantized ({decode['quantized_path'] or 'as stored'})" if decode["quantized"] else "")
    share = decode["tps"] / roof
    r.fact(
        "decode", f"{decode['tps']:.1f} tok/s at batch 1, {100 * share:.0f} % of its {roof:.1f} tok/s roofline ({form})"
    )
    if share >= FAR_BELOW:
        return
    if decode["quantized"] and r.probe.get("device") == "cpu":
        why = 'quantized matmul bypasses BLAS on a CPU: dtype = "auto" dequantizes when that is faster and fits'
    elif decode["dtype"] in ("bfloat16", "float16") and r.probe.get("device") == "cpu":
        why = f'{decode["dtype"]} never goes through BLAS on a CPU: use dtype = "auto" or "float32"'
    elif not fast_blas and platform.system() == "Linux":
        why = "no fast BLAS (see the BLAS hint)"
    else:
        why = "another process may be using the cores; run doctor again on a quiet machine"
    r.advice.append(f"the student decodes at {100 * share:.0f} % of this machine's limit: {why}")


def limits_of(info: dict) -> Limits | None:
    """The roofline's two limits from a probe: the student-shape rate where measured."""
    rates = [row[3] for row in info.get("shapes") or []] or [info.get("gflops_f32")]
    if not (rates[0] and info.get("bandwidth_gbs")):
        return None
    return Limits(flops=rates[0] * 1e9, bandwidth=info["bandwidth_gbs"] * 1e9)


def model_bytes(model: str) -> int | None:
    """Size of a model's weights on disk: a local dir, or a copy in the HF cache."""
    path = Path(model).expanduser()
    if not path.exists():
        hub = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
        path = hub / ("models--" + model.replace("/", "--"))
        if not path.exists():
            return None
    return sum(f.stat().st_size for f in path.rglob("*.safetensors")) or None


def planned_dtype(setting: str, device: str, fast_blas: bool) -> str:
    """Mirror of the child's dtype policy (mlx_backend/model.py), for display."""
    if setting != "auto":
        return setting
    if device == "cpu" and fast_blas:
        return "float32 (auto: CPU with a fast BLAS; a quantized model: the faster of float32 scales and dense)"
    return "model's own (auto)"


def _gguf_student(r: Report, model: str, dtype: str) -> str:
    """A fetchable name or GGUF file: what the first job will do, and its converted
    directory when it exists (for the size check)."""
    gguf = fetched_path(model) if model in FETCHABLE else Path(model).expanduser()
    if not gguf.is_file():
        if model in FETCHABLE:
            r.advice.append(
                f"student.model {model} is not fetched yet: the first job fetches it (or `tailor model fetch {model}`)"
            )
            return str(gguf)
        r.problems.append(f"student.model: GGUF file {gguf} does not exist")
        return model
    out = converted_dir(gguf, dtype)
    if not (out / "config.json").is_file():
        r.advice.append(
            f"student.model {model} is not converted yet: the first job converts it (or `tailor model import {gguf}`)"
        )
        return str(gguf)
    return str(out)


def _gb(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 1e9:.1f} GB"


def run_doctor(
    cfg: Config | None, project: Path, config_error: str | None = None, ping=None, probe=probe_mlx
) -> Report:
    r = Report()
    r.fact("platform", f"{platform.system()} {platform.machine()}, Python {platform.python_version()}")
    r.fact("project", str(Path(project).resolve()))
    if config_error:
        r.problems.append(config_error)
    try:
        blas = find_blas(cfg.student.blas if cfg else None)
    except TailorError as e:
        r.problems.append(str(e))
        blas = None
    if platform.system() == "Linux":
        r.fact("BLAS", blas or "bundled reference BLAS (slow)")
        if not blas:
            r.advice.append(INSTALL_HINT)
    else:
        r.fact("BLAS", "system (Accelerate / Metal)")
    model = shape = None
    gguf = False
    if cfg:
        model = cfg.student.model
        local = Path(project) / model
        if local.exists():
            model = str(local)
        gguf = model.lower().endswith(".gguf") or model in FETCHABLE
        model = _gguf_student(r, model, cfg.student.dtype) if gguf else model
        shape = student_shape(model)
    shapes = [[PREFILL_ROWS, shape[0].hidden, shape[0].intermediate]] if shape else []
    student = {"model": model, "dtype": cfg.student.dtype} if shape else None
    try:
        info = probe(blas, shapes=shapes, **({"student": student} if student else {}))
        r.fact(
            "MLX", f"{info['mlx_version']} on {info['device']}" + (" (Metal available)" if info.get("metal") else "")
        )
        r.fact("matmul", f"{info['gflops_f32']} GFLOPS (1024x1024 float32, 1 s probe)")
        if info.get("bandwidth_gbs"):
            r.fact("bandwidth", f"{info['bandwidth_gbs']} GB/s (a vector times a 256 MB float32 matrix)")
        for m, k, n, rate in info.get("shapes") or []:
            r.fact("matmul", f"{rate} GFLOPS at the student's shape ({m}x{k} @ {k}x{n})")
        device = info["device"]
    except (TailorError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as e:
        r.problems.append(f"MLX does not run here: {e}")
        device, info = "unknown", {}
    r.probe = {**info, "blas": blas} if info else {}
    if cfg:
        r.fact("student", model)
        dtype = planned_dtype(cfg.student.dtype, device, bool(blas))
        r.fact("dtype", dtype)
        if shape and r.limits:
            r.fact("roofline", roofline_line(*shape, dtype, r.limits))
            if info.get("decode"):
                decode_check(r, *shape, r.limits, info["decode"], bool(blas))
        total, avail = memory_bytes()
        size = model_bytes(model)
        r.fact("memory", f"{_gb(avail)} available of {_gb(total)}; student weights {_gb(size)} on disk")
        if size and avail and size * 1.3 > avail:
            r.problems.append(f"student weights ({_gb(size)}) do not fit in available memory ({_gb(avail)})")
        if size is None and not gguf and not Path(model).expanduser().exists():
            if "/" in model:
                r.advice.append(f"student.model {model} is not downloaded yet: the first job downloads it")
            else:
                r.problems.append(f"student.model: {model} is neither a local path nor an HF repo id")
        for res in ping(cfg) if ping else []:
            r.fact(
                f"ping {res.role}",
                f"{res.provider} {res.model or ''} {'ok' if res.ok else 'FAILED'} {res.detail or ''}".strip(),
            )
            if not res.ok:
                r.problems.append(f"{res.role}: {res.detail}")
    return r
