"""Linux CPU speed: MLX out of the box vs MLX the way tailor starts it.

Out of the box = the `mlx[cpu]` wheel's bundled reference BLAS and the checkpoint's own
bf16 weights. The tailor way = the system OpenBLAS preloaded into the MLX child and
float32 compute (app/blas.py, mlx_backend/model.py). Same model, same data, one run;
prints matmul GFLOPS both ways, then two ratios:

  generation: a loop of plain mlx_lm.generate (out of the box) vs a tailor generate job
  training:   plain `mlx_lm lora` (out of the box) vs `mlx_lm lora` in tailor's child
              environment (preload + float32 weights) — the path tailor's training job uses

    python benchmarks/cpu_blas.py [--prompts 32] [--max-tokens 64] [--iters 15]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from generation import MODEL_20M, prompts  # noqa: E402

from app.blas import child_env, find_blas  # noqa: E402
from app.jobs import MlxJob  # noqa: E402

PLAIN_GENERATE = r"""
import json, sys, time
import mlx_lm
model, tok = mlx_lm.load(sys.argv[1])
qs = json.loads(sys.argv[2]); max_tokens = int(sys.argv[3])
n_tokens, tic = 0, time.perf_counter()
for q in qs:
    p = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
    text = mlx_lm.generate(model, tok, prompt=p, max_tokens=max_tokens)
    n_tokens += len(tok.encode(text, add_special_tokens=False))
print(json.dumps({"tokens": n_tokens, "seconds": time.perf_counter() - tic}))
"""

TO_FLOAT32 = r"""
import sys, mlx.core as mx
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
w = mx.load(str(src / "model.safetensors"))
mx.save_safetensors(str(dst / "model.safetensors"), {k: v.astype(mx.float32) for k, v in w.items()})
"""


def run_py(code: str, args: list[str], env: dict) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"benchmark step failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def gflops(blas: str | None) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "mlx_backend.probe", "1"],
        capture_output=True,
        text=True,
        env=child_env(blas),
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["gflops_f32"]


def plain_generate(model: str, qs: list[str], max_tokens: int) -> float:
    out = json.loads(run_py(PLAIN_GENERATE, [model, json.dumps(qs), str(max_tokens)], child_env(None)))
    return out["tokens"] / out["seconds"]


def tailor_generate(model: str, qs: list[str], max_tokens: int, blas: str | None) -> float:
    spec = {
        "kind": "generate",
        "model": model,
        "adapter": None,
        "dtype": "auto",
        "params": {"temperature": 0.0, "top_p": 1.0, "max_batch": 16},
        "items": [
            {"id": str(i), "messages": [{"role": "user", "content": q}], "max_tokens": max_tokens, "seed": i}
            for i, q in enumerate(qs)
        ],
    }
    outcome = MlxJob(spec, blas=blas).run(lambda ev: None)
    if outcome.status != "done":
        sys.exit(f"tailor generate job failed: {outcome.error}")
    return outcome.stats["tokens_per_s"]


def write_data(dest: Path, n_train: int = 64, n_valid: int = 8) -> None:
    rows = [json.loads(line) for line in (ROOT / "data" / "problems.jsonl").read_text().splitlines()]
    dest.mkdir(parents=True, exist_ok=True)
    for name, chunk in (("train", rows[:n_train]), ("valid", rows[n_train : n_train + n_valid])):
        with open(dest / f"{name}.jsonl", "w") as f:
            for r in chunk:
                msgs = [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["solution"]}]
                f.write(json.dumps({"messages": msgs}) + "\n")


def lora_tokens_per_s(model: str, data: Path, iters: int, env: dict, adapter_dir: Path) -> float:
    cmd = [
        sys.executable,
        "-m",
        "mlx_lm",
        "lora",
        "--train",
        "--model",
        model,
        "--data",
        str(data),
        "--iters",
        str(iters),
        "--batch-size",
        "8",
        "--num-layers",
        "-1",
        "--steps-per-report",
        "5",
        "--steps-per-eval",
        "1000",
        "--val-batches",
        "1",
        "--adapter-path",
        str(adapter_dir),
        "--seed",
        "0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    # mlx_lm prints a coloured table: "iter  train_loss [▼▲]  tok/s  tokens"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    rows = re.findall(r"^\s*\d+\s+[0-9.]+\s*[▼▲]?\s+([\d,]+)\s+[\d.]+k?\s*$", plain, re.MULTILINE)
    rates = [float(x.replace(",", "")) for x in rows]
    if proc.returncode != 0 or not rates:
        sys.exit(f"mlx_lm lora failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return rates[-1]  # the last report: past the first steps' warm-up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--iters", type=int, default=15)
    a = p.parse_args()
    blas = find_blas()
    if not blas:
        sys.exit("no system OpenBLAS found: install libopenblas0-pthread to run this benchmark")

    from mlx_backend.tiny import build_tiny_model, n_parameters

    tmp = Path(tempfile.mkdtemp(prefix="tailor-blas-"))
    bf16 = build_tiny_model(tmp / "bf16", seed=0, **MODEL_20M)
    f32 = build_tiny_model(tmp / "f32", seed=0, **MODEL_20M)  # same files, then float32 weights
    run_py(TO_FLOAT32, [str(bf16), str(f32)], child_env(None))
    params = n_parameters(json.loads((bf16 / "config.json").read_text())) / 1e6
    print(f"model: Qwen2-style {params:.1f}M parameters; BLAS to preload: {blas}")

    g0, g1 = gflops(None), gflops(blas)
    print(f"matmul 1024x1024 float32: {g0:.1f} GFLOPS bundled BLAS, {g1:.1f} GFLOPS OpenBLAS ({g1 / g0:.1f}x)")

    qs = prompts(a.prompts)
    base = plain_generate(str(bf16), qs, a.max_tokens)
    ours = tailor_generate(str(bf16), qs, a.max_tokens, blas)
    print(
        f"generation: plain mlx_lm.generate loop {base:.1f} tok/s; tailor job {ours:.1f} tok/s"
        f" -> ratio {ours / base:.1f}x"
    )

    data = tmp / "data"
    write_data(data)
    base = lora_tokens_per_s(str(bf16), data, a.iters, child_env(None), tmp / "a0")
    ours = lora_tokens_per_s(str(f32), data, a.iters, child_env(blas), tmp / "a1")
    print(
        f"training: plain mlx_lm lora (bf16) {base:.1f} tok/s; tailor's child env (float32 + OpenBLAS)"
        f" {ours:.1f} tok/s -> ratio {ours / base:.1f}x"
    )


if __name__ == "__main__":
    main()
