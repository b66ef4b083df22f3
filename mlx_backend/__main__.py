"""Job entry point: ``python -m mlx_backend JOB.json``.

JOB.json::

    {"kind": "generate" | "score" | "lengths", "model": path or hub repo id, "adapter": LoRA dir | null,
     "dtype": "auto" | "float32" | "bfloat16" | "float16", "params": {...}, "items": [...]}

    generate items  {"id", "messages": [{"role", "content"}], "max_tokens", "seed"}
    generate params temperature (0 = greedy), top_p, max_batch (16), max_prompt_tokens,
                    max_batch_tokens (KV budget, 32768), seed (for items without one)
    score items     {"id", "messages": [...prompt...], "response": str}
    score params    max_batch (rows per forward pass, 16), max_batch_tokens
    lengths items   {"id", "messages": [...whole example...]}; only the tokenizer is loaded
                    ("offline": true: never download it)

Writes one JSON object per line to stdout (flushed), nothing else:

    {"event": "start", "kind", "total", "model", "model_path", "adapter", "dtype",
     "native_dtype", "device", "quantized", "context"}
    {"event": "result", "id", ...}            one per item, in completion order; final once written
        generate: text, n_tokens, prompt_tokens, finish_reason ("stop" | "length"), seed
        score:    cond_logprob, uncond_logprob (mean per token), n_tokens, prompt_tokens,
                  ppl, cppl, ifd
        lengths:  tokens, response_tokens (as mlx_lm's ChatDataset with the prompt masked)
        failed:   error (+ prompt_tokens when known); the other items continue
    {"event": "progress", "done", "total"}    after every result
    {"event": "done", "stats": {seconds, tokens_per_s, generated_tokens, peak_memory_gb,
                                items_per_s, prompt_tokens | scored_tokens}}   exit 0
    {"event": "error", "message"}             bad job / model / adapter: exit 2; internal error: exit 1
    {"event": "cancelled", "done"}            SIGINT / SIGTERM: exit 130 (a second signal
                                              abandons the current step at once)

Anything else that is printed (mlx_lm, transformers) goes to stderr.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from .errors import BadJobError, ModelLoadError
from .errors import one_line as _one_line

KINDS = ("generate", "score", "lengths")  # and "train": see train.py
EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_CANCELLED = 0, 1, 2, 130


class _Interrupted(Exception):
    pass


class EventStream:
    """JSON lines on a private copy of the real stdout; fd 1 itself is pointed at stderr."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)
        self.broken = False

    def emit(self, event: str, **fields) -> None:
        if self.broken:
            return
        try:
            self._out.write(json.dumps({"event": event, **fields}, allow_nan=False) + "\n")
            self._out.flush()
        except BrokenPipeError:
            self.broken = True  # the parent is gone: stop working, exit quietly


def read_job(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
    except FileNotFoundError:
        raise BadJobError(f"job file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadJobError(f"cannot read job file {path}: {_one_line(e)}") from None
    except json.JSONDecodeError as e:
        raise BadJobError(f"job file {path} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(job, dict):
        raise BadJobError(f"job file {path}: top level must be an object")
    if job.get("kind") not in KINDS:
        raise BadJobError(f"job file {path}: kind must be one of {', '.join(KINDS)}, got {job.get('kind')!r}")
    if not isinstance(job.get("model"), str) or not job["model"]:
        raise BadJobError(f"job file {path}: model must be a non-empty string")
    if job.get("adapter") is not None and not isinstance(job["adapter"], str):
        raise BadJobError(f"job file {path}: adapter must be a string or null")
    if not isinstance(job.get("params", {}), dict):
        raise BadJobError(f"job file {path}: params must be an object")
    items = job.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
        raise BadJobError(f"job file {path}: items must be a list of objects with an id")
    ids = [str(i["id"]) for i in items]
    if len(set(ids)) != len(ids):
        raise BadJobError(f"job file {path}: item ids must be unique")
    return job


def _params(job: dict) -> dict:
    p = dict(job.get("params") or {})
    kind = job["kind"]
    allowed = {
        "generate": {"temperature", "top_p", "max_batch", "max_prompt_tokens", "max_batch_tokens", "seed"},
        "score": {"max_batch", "max_batch_tokens"},
        "lengths": set(),
    }[kind]
    unknown = sorted(set(p) - allowed)
    if unknown:
        raise BadJobError(f"unknown {kind} params: {', '.join(unknown)}")
    checks = {
        "temperature": lambda v: isinstance(v, (int, float)) and v >= 0,
        "top_p": lambda v: isinstance(v, (int, float)) and 0 < v <= 1,
        "seed": lambda v: isinstance(v, int),
    }
    for k, v in p.items():
        ok = checks.get(k, lambda v: v is None or isinstance(v, int) and v >= 1)(v)
        if not ok or isinstance(v, bool):
            raise BadJobError(f"bad value for params.{k}: {v!r}")
    return {k: v for k, v in p.items() if v is not None}


def run(job: dict, events: EventStream, state: dict) -> int:
    import mlx.core as mx

    from .generate import Cancelled, generate
    from .model import load_model
    from .score import score

    params = _params(job)
    if job["kind"] == "lengths":
        from .lengths import lengths
        from .model import load_tokenizer

        tokenizer, info = load_tokenizer(job["model"], job.get("thinking"), bool(job.get("offline")))
        produce = lengths
        args: tuple = (tokenizer,)
    else:
        model, tokenizer, info = load_model(
            job["model"], job.get("adapter"), job.get("dtype") or "auto", job.get("thinking")
        )
        produce = generate if job["kind"] == "generate" else score
        args = (model, tokenizer)
    state["loading"] = False
    items = job["items"]
    events.emit("start", kind=job["kind"], total=len(items), **info)

    mx.reset_peak_memory()
    stats: dict = {}
    tic = time.perf_counter()
    generated = 0
    try:
        for result in produce(*args, items, should_stop=lambda: state["stop"] or events.broken, stats=stats, **params):
            events.emit("result", **result)
            state["done"] += 1
            generated += result.get("n_tokens", 0) if "error" not in result else 0
            events.emit("progress", done=state["done"], total=len(items))
    except Cancelled:
        events.emit("cancelled", done=state["done"])
        return EXIT_CANCELLED
    done = state["done"]
    seconds = time.perf_counter() - tic

    def per_s(n):
        return round(n / seconds, 3) if seconds > 0 else 0.0

    out = {
        "seconds": round(seconds, 4),
        "peak_memory_gb": round(mx.get_peak_memory() / 1e9, 4),
        "items_per_s": per_s(done),
    }
    if job["kind"] == "generate":
        out.update(
            generated_tokens=generated, tokens_per_s=per_s(generated), prompt_tokens=stats.get("prompt_tokens", 0)
        )
    elif job["kind"] == "lengths":
        out.update(generated_tokens=0, tokens_per_s=per_s(stats.get("tokens", 0)))
    else:
        scored = stats.get("scored_tokens", 0)
        out.update(generated_tokens=0, scored_tokens=scored, tokens_per_s=per_s(scored))
    events.emit("done", stats=out)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    events = EventStream()
    state = {"stop": False, "loading": True, "done": 0}

    def on_signal(signum, frame):
        # Loading has no step boundary to stop at, and a second signal means "now".
        if state["loading"] or state["stop"]:
            state["stop"] = True
            raise _Interrupted()
        state["stop"] = True  # honoured between decode steps / scoring batches

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if len(argv) != 1:
        events.emit("error", message="usage: python -m mlx_backend JOB.json")
        return EXIT_USER
    try:
        from .train import is_train_job, run_train  # the "train" kind: see train.py

        if is_train_job(argv[0]):
            return run_train(argv[0], events, state)
        return run(read_job(argv[0]), events, state)
    except _Interrupted:
        events.emit("cancelled", done=state["done"])
        return EXIT_CANCELLED
    except (BadJobError, ModelLoadError) as e:
        events.emit("error", message=_one_line(e))
        return EXIT_USER
    except Exception as e:
        import traceback

        traceback.print_exc()
        events.emit("error", message=f"internal error: {type(e).__name__}: {_one_line(e)}")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
