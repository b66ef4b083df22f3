"""Training throughput: plain `mlx_lm lora` vs `tailor train`'s job, and packed vs padded.

Same model (the ~20M Qwen2-style tiny model, float32 weights), same data (export format:
the student_solve prompt + the reference CoT, prompt masked), same hyperparameters (LoRA
rank 8, scale 20, all layers, Adam lr 1e-5, batch 4, two evaluations on the whole
validation set, prompt masked), same child environment (OpenBLAS preloaded when found).
Runs alternate (mlx_lm, tailor, mlx_lm, tailor, ...) so background load hits both alike.

tokens/s is what mlx_lm's train() reports (trained tokens over the time spent in training
steps, the same code in both), averaged over the reports after the first (warm-up);
wall is the whole process, model load and evaluations included. Peak memory is
mx.get_peak_memory() at the end of each process, plus the maximum RSS.

Then packed vs padded `tailor train` on a mixed export (every other example's CoT cut to
its final answer line, as short and long CoT mix in ACoTD), both with max_seq_length
fitted to the longest example: trained (assistant, non-pad) tokens/s, the validation loss
each reaches (the same padded validation in both), and the updates each takes per epoch.

    python benchmarks/training.py [--iters 60] [--repeats 2] [--data DIR] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from generation import MODEL_20M  # noqa: E402

from app.blas import child_env, find_blas  # noqa: E402
from app.jobs import MlxJob  # noqa: E402

PLAIN_LORA = r"""
import resource, sys
import mlx.core as mx
from mlx_lm.lora import main
sys.argv = ["mlx_lm.lora", *sys.argv[1:]]
main()
print("TAILOR-BENCH-PEAK", mx.get_peak_memory() / 1e9, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

TO_FLOAT32 = r"""
import sys, mlx.core as mx
from pathlib import Path
d = Path(sys.argv[1])
w = mx.load(str(d / "model.safetensors"))
mx.save_safetensors(str(d / "model.safetensors"), {k: v.astype(mx.float32) for k, v in w.items()}, metadata={"format": "mlx"})
"""

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
REPORT = re.compile(r"^\s*(\d+)\s+([0-9.]+)\s+[▼▲]\s+([0-9,]+)\s+([0-9.]+)k\s*$")


def write_data(dest: Path, n_train: int, n_valid: int, mixed: bool = False) -> None:
    """train/valid JSONL exactly as `tailor export` writes them (bundled train-split problems);
    `mixed`: every other example keeps only its final answer line (a short CoT)."""
    from app.pipeline.export import format_cot
    from app.prompts import load_prompt

    rows = [json.loads(line) for line in (ROOT / "data" / "problems.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == "train"]
    prompt = load_prompt("student_solve")
    dest.mkdir(parents=True, exist_ok=True)
    for name, chunk in (("train", rows[:n_train]), ("valid", rows[n_train : n_train + n_valid])):
        with open(dest / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for i, r in enumerate(chunk):
                messages = prompt.render(question=r["question"])
                cot = "" if mixed and i % 2 else r["solution"]
                messages.append({"role": "assistant", "content": format_cot(cot, r["answer"])})
                f.write(json.dumps({"messages": messages}) + "\n")


HP = dict(
    rank=8,
    scale=20.0,
    dropout=0.0,
    learning_rate=1e-5,
    batch_size=4,
    num_layers=-1,
    max_seq_length=2048,
    steps_per_report=10,
    seed=0,
)


def plain(model: str, data: Path, iters: int, env: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "lora.yaml"
    cfg.write_text(
        json.dumps({"lora_parameters": {"rank": HP["rank"], "scale": HP["scale"], "dropout": HP["dropout"]}})
    )
    cmd = [
        sys.executable,
        "-c",
        PLAIN_LORA,
        "--train",
        "--model",
        model,
        "--data",
        str(data),
        "--config",
        str(cfg),
        "--fine-tune-type",
        "lora",
        "--optimizer",
        "adam",
        "--mask-prompt",
        "--num-layers",
        str(HP["num_layers"]),
        "--batch-size",
        str(HP["batch_size"]),
        "--iters",
        str(iters),
        "--learning-rate",
        str(HP["learning_rate"]),
        "--steps-per-report",
        str(HP["steps_per_report"]),
        "--steps-per-eval",
        str(iters),
        "--val-batches",
        "-1",
        "--save-every",
        str(iters),
        "--max-seq-length",
        str(HP["max_seq_length"]),
        "--seed",
        str(HP["seed"]),
        "--adapter-path",
        str(out / "adapters"),
    ]
    tic = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - tic
    text = ANSI.sub("", proc.stdout + proc.stderr)
    reports = [
        (int(m[1]), float(m[2]), float(m[3].replace(",", ""))) for m in map(REPORT.match, text.splitlines()) if m
    ]
    peak = re.search(r"TAILOR-BENCH-PEAK ([0-9.e+-]+) (\d+)", text)
    if proc.returncode != 0 or not reports or not peak:
        sys.exit(f"mlx_lm lora failed: {text.strip().splitlines()[-3:]}")
    rss = int(peak[2]) / (1e9 if sys.platform == "darwin" else 1e6)
    return {"reports": reports, "peak_gb": float(peak[1]), "rss_gb": rss, "wall": wall}


def tailor(model: str, data: Path, iters: int, blas: str | None, out: Path, **params) -> dict:
    spec = {
        "kind": "train",
        "model": model,
        "dtype": "auto",
        "run_dir": str(out / "run"),
        "train": str(data / "train.jsonl"),
        "valid": str(data / "valid.jsonl"),
        "params": {
            **HP,
            "iters": iters,
            "steps_per_eval": iters,
            "save_every": iters,
            "schedule": "constant",
            "warmup": 0,
            "weight_decay": 0.0,
            "val_batches": -1,
            "keep": "best",
            **params,
        },
    }
    reports = []

    def on_event(ev):
        if ev.get("event") == "metric" and "train_loss" in ev:
            reports.append((ev["iter"], ev["train_loss"], ev["tokens_per_s"]))

    tic = time.perf_counter()
    outcome = MlxJob(spec, blas=blas).run(on_event)
    wall = time.perf_counter() - tic
    if outcome.status != "done":
        sys.exit(f"tailor train job failed: {outcome.error}")
    return {
        "reports": reports,
        "peak_gb": outcome.stats["peak_memory_gb"],
        "rss_gb": outcome.stats["max_rss_gb"],
        "wall": wall,
        "stats": outcome.stats,
    }


TRAIN_CONTEXT = 256  # tokens a trained row attends over, for the roofline's attention term


def roofline(model: str, blas: str | None) -> float:
    """The LoRA training tokens/s this machine allows the model (app/roofline.py), with the
    matmul rate measured now at the model's prefill shape, as `tailor doctor` measures it."""
    from app.doctor import PREFILL_ROWS, limits_of, probe_mlx
    from app.roofline import Shape, train_tps

    shape = Shape.from_config(json.loads((Path(model) / "config.json").read_text()))
    lim = limits_of(probe_mlx(blas, 1.0, [[PREFILL_ROWS, shape.hidden, shape.intermediate]]))
    roof = train_tps(shape, lim, TRAIN_CONTEXT)
    print(
        f"limits measured now: {lim.flops / 1e9:.1f} GFLOPS at the model's shape; LoRA training roofline {roof:.0f} tok/s"
    )
    return roof


def trained_share(model: str, data: Path, blas: str | None) -> float:
    """The fraction of an example's tokens that are trained (the assistant turn): the
    reported tokens/s counts only those, while every token costs the forward and backward."""
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    spec = {
        "kind": "lengths",
        "model": model,
        "items": [{"id": str(i), "messages": r["messages"]} for i, r in enumerate(rows)],
    }
    got = []
    MlxJob(spec, blas=blas).run(lambda ev: got.append(ev) if ev.get("event") == "result" and "tokens" in ev else None)
    return sum(e["response_tokens"] for e in got) / sum(e["tokens"] for e in got)


def of(tps: float, roof: float, share: float) -> str:
    """Trained tokens/s against the roofline for them: every processed token counts at the line."""
    return f"{100 * tps / (roof * share):.0f} % of the roofline"


def steady_tps(reports: list) -> float:
    rates = [r[2] for r in reports[1:]] or [r[2] for r in reports]
    return statistics.mean(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model dir (default: build the ~20M tiny model, float32)")
    p.add_argument("--data", type=Path, help="an export dir with train.jsonl / valid.jsonl (default: bundled set)")
    p.add_argument("--iters", type=int, default=60)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--train-examples", type=int, default=64)
    p.add_argument("--valid-examples", type=int, default=16)
    p.add_argument("--epochs", type=float, default=2.0, help="epochs of the packed / padded comparison")
    p.add_argument("--packing-only", action="store_true", help="only the packed / padded comparison")
    a = p.parse_args()

    blas = find_blas()
    env = child_env(blas)
    tmp = Path(tempfile.mkdtemp(prefix="tailor-train-bench-"))
    model = a.model
    if not model:
        from mlx_backend.tiny import build_tiny_model, n_parameters

        model = str(build_tiny_model(tmp / "model", seed=0, **MODEL_20M))
        subprocess.run([sys.executable, "-c", TO_FLOAT32, model], check=True, env=env)
        size = n_parameters(json.loads((Path(model) / "config.json").read_text())) / 1e6
        print(f"model: Qwen2-style {size:.1f}M parameters, float32 ({model})")
    data = a.data
    if data is None:
        data = tmp / "data"
        write_data(data, a.train_examples, a.valid_examples)
    print(
        f"data: {data} ({sum(1 for _ in open(data / 'train.jsonl'))} train, "
        f"{sum(1 for _ in open(data / 'valid.jsonl'))} valid); BLAS preloaded: {blas or 'none'}"
    )
    roof = roofline(model, blas)
    share = trained_share(model, data, blas)
    print(
        f"trained tokens: {100 * share:.0f} % of every example's (the prompt is masked); the roofline counts them all"
    )
    if a.packing_only:
        packed_vs_padded(model, tmp, a, blas, roof)
        return
    print(f"hyperparameters: {HP}, iters {a.iters}, prompt masked, 2 evaluations on the whole validation set")
    results = {"mlx_lm": [], "tailor": []}
    for i in range(a.repeats):
        results["mlx_lm"].append(plain(model, data, a.iters, env, tmp / f"plain{i}"))
        results["tailor"].append(tailor(model, data, a.iters, blas, tmp / f"tailor{i}"))
        for name in ("mlx_lm", "tailor"):
            r = results[name][-1]
            print(
                f"  run {i + 1} {name:7s} {steady_tps(r['reports']):8.1f} tok/s  wall {r['wall']:6.1f} s  "
                f"peak {r['peak_gb']:.3f} GB  rss {r['rss_gb']:.3f} GB  final loss {r['reports'][-1][1]:.4f}"
            )

    def med(name, key):
        vals = [steady_tps(r["reports"]) if key == "tps" else r[key] for r in results[name]]
        return statistics.median(vals)

    t_plain, t_ours = med("mlx_lm", "tps"), med("tailor", "tps")
    print(
        f"mlx_lm lora   {t_plain:8.1f} tok/s ({of(t_plain, roof, share)})   peak {med('mlx_lm', 'peak_gb'):.3f} GB   "
        f"max RSS {med('mlx_lm', 'rss_gb'):.3f} GB   wall {med('mlx_lm', 'wall'):.1f} s"
    )
    print(
        f"tailor train  {t_ours:8.1f} tok/s ({of(t_ours, roof, share)})   peak {med('tailor', 'peak_gb'):.3f} GB   "
        f"max RSS {med('tailor', 'rss_gb'):.3f} GB   wall {med('tailor', 'wall'):.1f} s"
    )
    print(
        f"tailor / mlx_lm tokens/s: {t_ours / t_plain:.3f} (target >= 0.95); "
        f"wall-clock ratio (mlx_lm / tailor): {med('mlx_lm', 'wall') / med('tailor', 'wall'):.3f}"
    )
    packed_vs_padded(model, tmp, a, blas, roof)


def packed_vs_padded(model: str, tmp: Path, a, blas: str | None, roof: float) -> None:
    data = tmp / "mixed"
    write_data(data, a.train_examples, a.valid_examples, mixed=True)
    share = trained_share(model, data, blas)
    fitted = {"max_seq_length": None, "epochs": a.epochs, "steps_per_eval": 10**6, "save_every": 10**6}
    print(f"packed vs padded: {HP}, but max_seq_length fitted, {a.epochs:g} epochs, validation at start and end")
    runs = {"padded": [], "packed": []}
    for i in range(a.repeats):
        for name in runs:
            r = tailor(model, data, None, blas, tmp / f"{name}{i}", **fitted, packing=name == "packed")
            runs[name].append(r)
            st = r["stats"]
            print(
                f"  run {i + 1} {name:7s} {st['tokens_per_s']:8.1f} trained tok/s  {st['updates']} updates "
                f"({st['tokens_per_update']:.0f} tokens each)  val loss {st['last_val_loss']:.4f}  wall {r['wall']:6.1f} s"
            )
    # the whole run's trained tokens over its training time (the job's own count): packed
    # batches carry unequal numbers of trained tokens, so a mean of per-report rates is biased
    tps = {n: statistics.median(r["stats"]["tokens_per_s"] for r in rs) for n, rs in runs.items()}
    wall = {n: statistics.median(r["wall"] for r in rs) for n, rs in runs.items()}
    val = {n: statistics.median(r["stats"]["last_val_loss"] for r in rs) for n, rs in runs.items()}
    print(
        f"trained tokens/s: padded {tps['padded']:.1f} ({of(tps['padded'], roof, share)}), "
        f"packed {tps['packed']:.1f} ({of(tps['packed'], roof, share)}); "
        f"{100 * share:.0f} % of the mixed export's tokens are trained"
    )
    print(
        f"packed / padded trained tokens/s on the mixed export: {tps['packed'] / tps['padded']:.3f} "
        f"(target >= 1.3); wall time padded / packed {wall['padded'] / wall['packed']:.3f}; "
        f"validation loss after {a.epochs:g} epochs: padded {val['padded']:.4f}, "
        f"packed {val['packed']:.4f} (packed takes fewer, fuller updates per epoch)"
    )


if __name__ == "__main__":
    main()
