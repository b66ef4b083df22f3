"""The ``train`` job: LoRA SFT through mlx_lm.tuner with early stopping, checkpoints and resume.

mlx_lm's own ``train()`` runs the optimisation (LoRA layers from ``linear_to_lora_layers``,
its compiled step, ``TrainingArgs``, ``TrainingCallback`` for the loss reports) and the
loss is mlx_lm's, on the assistant turn only (``ChatDataset(mask_prompt=True)``: the same
chat template as generation, see model.chat_prompt). What tailor adds sits in the
``iterate_batches`` hook ``train()`` accepts, which runs between two steps, when the
model and optimizer state are evaluated:

* validation at iteration 0, every ``steps_per_eval`` and at the end (mlx_lm's
  ``evaluate``, on the same batches every time, the whole set by default); the best
  adapter is written whenever the validation loss improves; ``patience`` evaluations
  without an improvement of more than ``min_delta`` stop the run;
* checkpoints (adapter, optimizer state, iteration, data position, early-stopping state)
  every ``save_every`` iterations and when a stop is requested (SIGINT / SIGTERM, or the
  parent going away), so ``resume`` continues exactly where the run stopped: the data
  order is replayed from the seed, dropout is seeded per iteration from (seed, iteration);
* one ``progress`` event per iteration.

Job file::

    {"kind": "train", "model": path or repo, "dtype": "auto" | ..., "run_dir": DIR,
     "train": "train.jsonl", "valid": "valid.jsonl", "resume": false,
     "params": {rank, scale, dropout, learning_rate, schedule ("cosine" | "constant"), warmup,
                weight_decay, batch_size, grad_accumulation, iters | epochs, max_seq_length (null = the longest example, capped by the context),
                steps_per_report, steps_per_eval, val_batches (-1 = all), num_layers (-1 = all),
                grad_checkpoint, save_every, keep_checkpoints (0 = all), patience (0 = off),
                min_delta, keep ("best" | "last"), seed},
     "launch": null | {"hostfile": path | null, "processes": N | null, "backend": "ring" | ...}}

With ``launch`` the job re-runs itself under ``mlx.launch`` (data parallel over
``mx.distributed``, as mlx_lm does): this process relays rank 0's events and turns a
stop request into the file ``RUN_DIR/stop``, which every rank sees through an all-reduce
at the next iteration boundary.

Events (stdout, one JSON object per line)::

    {"event": "start", "kind": "train", "model", "dtype", "device", "iters", "start_iter",
     "n_train", "n_valid", "batch_size", "trainable_params", "world_size", ...}
    {"event": "message", "text"}
    {"event": "progress", "done": iteration, "total": iters}
    {"event": "metric", "iter", "train_loss", "lr", "tokens_per_s", "peak_memory_gb", "trained_tokens"}
    {"event": "metric", "iter", "val_loss", "val_time"}
    {"event": "best", "iter", "val_loss", "path"}
    {"event": "checkpoint", "iter", "path"}
    {"event": "done", "stats": {"best_iter", "best_val_loss", "stop_reason" (patience | max_iters),
                                "final_iter", "adapter_path", "tokens_per_s", "peak_memory_gb", ...}}
    {"event": "cancelled", "done": iteration, "iter", "checkpoint", "stats": {..., "stop_reason": "interrupted"}}

Files in RUN_DIR: ``adapters/`` (best adapter: adapter_config.json + adapters.safetensors),
``last/`` (the last weights), ``checkpoints/NNNNNNN/`` (adapters.safetensors,
optimizer.safetensors, state.json) and ``checkpoints/latest.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .errors import BadJobError

EXIT_OK, EXIT_CANCELLED = 0, 130

PARAMS: dict[str, tuple[type | tuple, object]] = {
    # name: (type(s), default)
    "rank": (int, 8),
    "scale": ((int, float), 20.0),
    "dropout": ((int, float), 0.0),
    "learning_rate": ((int, float), 1e-5),
    "schedule": (str, "constant"),
    "warmup": ((int, float), 0.0),
    "weight_decay": ((int, float), 0.0),
    "batch_size": (int, 4),
    "grad_accumulation": (int, 1),
    "iters": ((int, type(None)), None),
    "epochs": ((int, float, type(None)), None),
    "max_seq_length": ((int, type(None)), None),
    "steps_per_report": (int, 10),
    "steps_per_eval": (int, 50),
    "val_batches": (int, -1),
    "num_layers": (int, -1),
    "grad_checkpoint": (bool, False),
    "save_every": (int, 100),
    "keep_checkpoints": (int, 2),
    "patience": (int, 0),
    "min_delta": ((int, float), 0.0),
    "keep": (str, "best"),
    "seed": (int, 0),
    "truncate": (bool, False),
    "packing": (bool, False),  # examples packed into max_seq_length rows (mlx_backend/packing.py)
}
# Above this share of examples longer than max_seq_length, training refuses unless told to
# truncate: cut examples lose their final answer line, the thing the student must learn.
MAX_TRUNCATED_SHARE = 0.01
# The ones that change the trajectory: a resume must use the same values.
TRAJECTORY = (
    "rank",
    "scale",
    "dropout",
    "learning_rate",
    "schedule",
    "warmup",
    "weight_decay",
    "batch_size",
    "grad_accumulation",
    "max_seq_length",
    "num_layers",
    "seed",
    "packing",
)


def fit_length(lengths: list[int], context: int | None) -> int:
    """The max_seq_length that holds every example, but never more than the model's context."""
    longest = max(lengths)
    return min(longest, context) if context else longest


# -- the job file ---------------------------------------------------------------


def is_train_job(path: str) -> bool:
    """True when the job file at ``path`` is a train job (anything unreadable is left to read_job)."""
    try:
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(job, dict) and job.get("kind") == "train"


def read_train_job(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        job = json.load(f)
    for key in ("model", "run_dir", "train", "valid"):
        if not isinstance(job.get(key), str) or not job[key]:
            raise BadJobError(f"job file {path}: {key} must be a non-empty string")
    if not isinstance(job.get("params", {}), dict):
        raise BadJobError(f"job file {path}: params must be an object")
    job["params"] = check_params(job.get("params") or {})
    launch = job.get("launch")
    if launch is not None and not isinstance(launch, dict):
        raise BadJobError(f"job file {path}: launch must be an object or null")
    return job


def check_params(params: dict) -> dict:
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise BadJobError(f"unknown train params: {', '.join(unknown)}")
    out = {}
    for name, (types, default) in PARAMS.items():
        v = params.get(name, default)
        bad = not isinstance(v, types) or (isinstance(v, bool) and types is not bool)
        if bad:
            raise BadJobError(f"bad value for params.{name}: {v!r}")
        out[name] = v
    positive = (
        "rank",
        "batch_size",
        "grad_accumulation",
        "max_seq_length",
        "steps_per_report",
        "steps_per_eval",
        "save_every",
    )
    for name in positive:
        if out[name] is not None and out[name] < 1:
            raise BadJobError(f"params.{name} must be at least 1, got {out[name]}")
    if out["iters"] is None and out["epochs"] is None:
        raise BadJobError("params: give iters or epochs")
    if out["iters"] is not None and out["iters"] < 1 or out["epochs"] is not None and out["epochs"] <= 0:
        raise BadJobError("params.iters / params.epochs must be positive")
    if out["schedule"] not in ("cosine", "constant"):
        raise BadJobError(f"params.schedule must be cosine or constant, got {out['schedule']!r}")
    if out["keep"] not in ("best", "last"):
        raise BadJobError(f"params.keep must be best or last, got {out['keep']!r}")
    if out["val_batches"] == 0 or out["val_batches"] < -1:
        raise BadJobError("params.val_batches must be -1 (all) or at least 1")
    if not 0 <= out["dropout"] < 1:
        raise BadJobError("params.dropout must be in [0, 1)")
    if out["save_every"] % out["grad_accumulation"]:
        raise BadJobError("params.save_every must be a multiple of params.grad_accumulation")
    return out


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps({k: params[k] for k in TRAJECTORY}, sort_keys=True).encode()).hexdigest()[:16]


def read_chat_jsonl(path: str) -> list[dict]:
    """Rows of an mlx_lm chat JSONL file; each must end with an assistant turn."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise BadJobError(f"{path}:{n}: not valid JSON ({e.msg})") from None
                msgs = row.get("messages") if isinstance(row, dict) else None
                if (
                    not isinstance(msgs, list)
                    or len(msgs) < 2
                    or not all(
                        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                        for m in msgs
                    )
                    or msgs[-1]["role"] != "assistant"
                ):
                    raise BadJobError(f'{path}:{n}: expected {{"messages": [..., {{"role": "assistant", ...}}]}}')
                rows.append({"messages": msgs})
    except FileNotFoundError:
        raise BadJobError(f"data file not found: {path}") from None
    except UnicodeDecodeError:
        raise BadJobError(f"{path}: not valid UTF-8") from None
    return rows


# -- small helpers ----------------------------------------------------------------


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _save_arrays(path: Path, arrays: dict) -> None:
    import mlx.core as mx

    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.safetensors")
    mx.save_safetensors(str(tmp), arrays)
    os.replace(tmp, path)


def dropout_seed(seed: int, iteration: int) -> int:
    """The mx.random seed for the step that makes iteration ``iteration`` (dropout masks)."""
    return int(hashlib.sha256(f"tailor-train:{seed}:{iteration}".encode()).hexdigest()[:8], 16)


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / "checkpoints" / "latest.json"
    try:
        path = run_dir / "checkpoints" / json.loads(pointer.read_text("utf-8"))["dir"]
    except (OSError, ValueError, KeyError):
        return None
    return path if (path / "state.json").is_file() else None


class _Quiet:
    """Events of the ranks other than 0: nothing is written."""

    broken = False

    def emit(self, event: str, **fields) -> None:
        pass


class _StopEval(Exception):
    pass


class _NumpyRng:
    """A private numpy global-RNG state, swapped in around each next() of a batch generator.

    mlx_lm's iterate_batches shuffles with numpy's global RNG; keeping the training order's
    state apart means evaluations (which shuffle too) never change the training order, so
    a resumed run can replay it from the seed.
    """

    def __init__(self) -> None:
        self.state = None

    def next(self, gen):
        import numpy as np

        outer = np.random.get_state()
        if self.state is not None:
            np.random.set_state(self.state)
        try:
            return next(gen)
        finally:
            self.state = np.random.get_state()
            np.random.set_state(outer)


class _Subset:
    """Some items of a (Cache)Dataset, for the last, smaller validation batch."""

    def __init__(self, data, idx: list[int]):
        self._data, self._idx = data, idx

    def __getitem__(self, i: int):
        return self._data[self._idx[i]]

    def __len__(self) -> int:
        return len(self._idx)

    def itemlen(self, i: int) -> int:
        return self._data.itemlen(self._idx[i])


# -- the controller: mlx_lm TrainingCallback + the iterate_batches hook -------------


class Controller:
    def __init__(
        self,
        *,
        model,
        optimizer,
        valid_set,
        p: dict,
        iters: int,
        start_iter: int,
        run_dir: Path,
        events,
        state: dict,
        world,
        resume_state: dict | None,
        phash: str,
        dynamic=None,
        tokenizer=None,
        train_rows: list[dict] | None = None,
    ):
        import mlx.core as mx

        self.mx = mx
        self.model, self.optimizer, self.valid_set = model, optimizer, valid_set
        self.p, self.iters, self.start_iter = p, iters, start_iter
        self.run_dir, self.events, self.state, self.world = run_dir, events, state, world
        self.rank, self.size = world.rank(), world.size()
        self.phash = phash
        self.dynamic, self.tokenizer, self.train_rows = dynamic, tokenizer, train_rows
        self.stop_file = run_dir / "stop"
        rs = resume_state or {}
        self.best_val = rs.get("best_val_loss")
        self.best_iter = rs.get("best_iter")
        self.bad_evals = rs.get("bad_evals", 0)
        self.ref_val = rs.get("ref_val_loss")  # the loss the next improvement must beat by min_delta
        self.last_eval_iter = rs.get("last_eval_iter")
        self.last_val = rs.get("last_val_loss")
        self.trained_tokens = rs.get("trained_tokens", 0)
        self._tokens_at_start = self.trained_tokens  # train() counts from 0 again after a resume
        self.train_seconds = rs.get("train_seconds", 0.0)
        self.done_iter = start_iter
        self.stop_reason: str | None = None
        self.last_checkpoint: str | None = None
        self.peak_memory = 0.0
        n_valid = len(valid_set) - len(valid_set) % self.size
        if n_valid < 1:
            raise BadJobError(f"{len(valid_set)} validation examples for {self.size} distributed processes")
        self.eval_batch = min(p["batch_size"], n_valid)
        self.eval_rng = _NumpyRng()

    # mlx_lm TrainingCallback --------------------------------------------------

    def on_train_loss_report(self, info: dict) -> None:
        it = self.start_iter + info["iteration"]
        tps = float(info["tokens_per_second"])
        new_tokens = int(info["trained_tokens"]) - (self.trained_tokens - self._tokens_at_start)
        if tps > 0:
            self.train_seconds += new_tokens / tps
        self.trained_tokens = self._tokens_at_start + int(info["trained_tokens"])
        self.peak_memory = max(self.peak_memory, float(info["peak_memory"]))
        self.events.emit(
            "metric",
            iter=it,
            train_loss=_finite(info["train_loss"]),
            lr=_finite(info["learning_rate"]),
            tokens_per_s=round(tps, 3),
            peak_memory_gb=round(float(info["peak_memory"]), 4),
            trained_tokens=self.trained_tokens,
        )

    def on_val_loss_report(self, info: dict) -> None:
        self.events.emit(
            "metric", iter=info["iteration"], val_loss=_finite(info["val_loss"]), val_time=round(info["val_time"], 4)
        )

    # the iterate_batches hook ---------------------------------------------------

    def batches(self, dataset, batch_size, max_seq_length, loop=False, seed=None, comm_group=None):
        """What mlx_lm's train() iterates: its own batches, replayed to the resume point."""
        if self.dynamic is not None:
            yield from self._dynamic_batches(batch_size, max_seq_length, comm_group)
            return
        base = self._iterate(dataset, batch_size, max_seq_length, self.p["seed"], comm_group)
        rng = _NumpyRng()
        for _ in range(self.start_iter):  # same seed, same order: skip what was trained
            rng.next(base)
        it = self.start_iter
        while self.boundary(it):
            self.mx.random.seed(dropout_seed(self.p["seed"], it + 1))
            batch = rng.next(base)
            yield batch
            it += 1

    def _dynamic_batches(self, batch_size, max_seq_length, comm_group):
        """Dynamic DMC (mlx_backend/reselect.py): each epoch its own selection and order."""
        from mlx_lm.tuner.datasets import CacheDataset, ChatDataset

        it, epoch, rng, base = self.start_iter, None, None, None
        while self.boundary(it):
            e = self.dynamic.epoch_of(it)
            if e != epoch:
                rows = self.dynamic.rows_for(e, self.model, self.tokenizer, self.events, it, self.train_rows)
                data = CacheDataset(ChatDataset(rows, self.tokenizer, mask_prompt=True))
                base = self._iterate(data, batch_size, max_seq_length, self.p["seed"] + e, comm_group)
                rng, epoch = _NumpyRng(), e
                for _ in range(it - e * self.dynamic.epoch_iters):  # resumed mid-epoch: skip what was trained
                    rng.next(base)
            self.mx.random.seed(dropout_seed(self.p["seed"], it + 1))
            yield rng.next(base)
            it += 1

    def _iterate(self, dataset, batch_size, max_seq_length, seed, comm_group):
        """The training batches of one order: packed rows, or mlx_lm's padded batches."""
        if self.p["packing"]:
            from .packing import packed_batches

            return packed_batches(dataset, batch_size, max_seq_length, loop=True, seed=seed)
        from mlx_lm.tuner.trainer import iterate_batches

        return iterate_batches(
            dataset=dataset,
            batch_size=batch_size,
            max_seq_length=max_seq_length,
            loop=True,
            seed=seed,
            comm_group=comm_group,
        )

    def stop_requested(self) -> bool:
        flag = bool(self.state.get("stop")) or self.events.broken or self.stop_file.exists()
        if self.size > 1:  # every rank must leave the loop at the same iteration
            mx = self.mx
            flag = mx.distributed.all_sum(mx.array(int(flag)), stream=mx.cpu).item() > 0
        return flag

    def boundary(self, it: int) -> bool:
        """Called when ``it`` iterations are done (before the next one); False ends training."""
        self.done_iter = it
        self.events.emit("progress", done=it, total=self.iters)
        if self.stop_requested() and it % self.p["grad_accumulation"] == 0:
            return self._interrupt(it)
        if self._eval_due(it):
            try:
                self.evaluate(it)
            except _StopEval:
                return self._interrupt(it)
            if self.p["patience"] and self.bad_evals >= self.p["patience"]:
                self.stop_reason = "patience"
                return False
        if it > self.start_iter and it % self.p["save_every"] == 0 and it < self.iters:
            self.checkpoint(it)
        return True

    def _eval_due(self, it: int) -> bool:
        return (it % self.p["steps_per_eval"] == 0 or it == self.iters) and it != self.last_eval_iter

    def _interrupt(self, it: int) -> bool:
        self.stop_reason = "interrupted"
        self.checkpoint(it)
        return False

    def finish(self) -> None:
        """After train() returned: the final evaluation when the run went the distance."""
        if self.stop_reason is None:
            self.done_iter = self.iters
            self.events.emit("progress", done=self.iters, total=self.iters)
            if self._eval_due(self.iters):
                try:
                    self.evaluate(self.iters)
                except _StopEval:
                    pass  # the weights are final: nothing to resume
            self.stop_reason = "max_iters"

    # validation, best adapter, checkpoints ----------------------------------------

    def eval_batches(self, dataset, batch_size, max_seq_length, loop=False, seed=None, comm_group=None):
        """mlx_lm's batches in a fixed order, plus one smaller batch for the remainder (all = all)."""
        from mlx_lm.tuner.trainer import iterate_batches

        n, bs = len(dataset), batch_size
        full = n // bs
        if full:
            self.eval_rng.state = None  # the same batch order at every evaluation
            gen = iterate_batches(
                dataset=dataset, batch_size=bs, max_seq_length=max_seq_length, seed=1234, comm_group=comm_group
            )
            while True:
                try:
                    yield self.eval_rng.next(gen)
                except StopIteration:
                    break
        rest = n - full * bs
        rest -= rest % self.size
        if rest and self.p["val_batches"] == -1:
            len_fn = getattr(dataset, "itemlen", None) or (lambda i: len(dataset[i][0]))
            idx = sorted(range(n), key=len_fn)[n - rest :]
            yield from iterate_batches(
                dataset=_Subset(dataset, idx), batch_size=rest, max_seq_length=max_seq_length, comm_group=comm_group
            )

    def evaluate(self, it: int) -> None:
        from mlx_lm.tuner.trainer import evaluate

        from .packing import padded_loss

        mx = self.mx

        def check():
            if self.size == 1 and (self.state.get("stop") or self.events.broken or self.stop_file.exists()):
                raise _StopEval()

        tic = time.perf_counter()
        val = evaluate(
            model=self.model,
            dataset=self.valid_set,
            batch_size=self.eval_batch,
            num_batches=self.p["val_batches"],
            max_seq_length=self.p["max_seq_length"],
            iterate_batches=self.eval_batches,
            loss=padded_loss,  # packed or not, validation is padded and counts the same targets
            progress_callback=check,
        )
        self.model.train()
        self.peak_memory = max(self.peak_memory, mx.get_peak_memory() / 1e9)
        self.last_eval_iter, self.last_val = it, _finite(val)
        self.on_val_loss_report({"iteration": it, "val_loss": val, "val_time": time.perf_counter() - tic})
        finite = _finite(val) is not None  # a NaN / inf loss is never an improvement
        if finite and (self.best_val is None or val < self.best_val):
            self.best_val, self.best_iter = val, it
            self.save_adapter(self.run_dir / "adapters")
            self.events.emit("best", iter=it, val_loss=val, path=str(self.run_dir / "adapters"))
        if finite and (self.ref_val is None or val < self.ref_val - self.p["min_delta"]):
            self.ref_val, self.bad_evals = val, 0
        else:
            self.bad_evals += 1

    def adapter_weights(self) -> dict:
        from mlx.utils import tree_flatten

        return dict(tree_flatten(self.model.trainable_parameters()))

    def save_adapter(self, directory: Path) -> None:
        if self.rank == 0:
            directory.mkdir(parents=True, exist_ok=True)
            _save_arrays(directory / "adapters.safetensors", self.adapter_weights())

    def checkpoint(self, it: int) -> None:
        from mlx.utils import tree_flatten

        if self.rank != 0:
            return
        root = self.run_dir / "checkpoints"
        root.mkdir(parents=True, exist_ok=True)
        name = f"{it:07d}"
        tmp = root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.mx.save_safetensors(str(tmp / "adapters.safetensors"), self.adapter_weights())
        self.mx.save_safetensors(str(tmp / "optimizer.safetensors"), dict(tree_flatten(self.optimizer.state)))
        _write_json(
            tmp / "state.json",
            {
                "iter": it,
                "seed": self.p["seed"],
                "params_hash": self.phash,
                "iters": self.iters,
                "best_val_loss": self.best_val,
                "best_iter": self.best_iter,
                "bad_evals": self.bad_evals,
                "ref_val_loss": self.ref_val,
                "last_eval_iter": self.last_eval_iter,
                "last_val_loss": self.last_val,
                "trained_tokens": self.trained_tokens,
                "train_seconds": self.train_seconds,
                "data_position": it,
                "dmc": self.dynamic.current if self.dynamic is not None else None,
                "dropout_seed": f"dropout_seed(seed, iteration) for iteration > {it}",
            },
        )
        final = root / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _write_json(root / "latest.json", {"dir": name, "iter": it})
        self.last_checkpoint = str(final)
        keep = self.p["keep_checkpoints"]
        if keep:
            olds = sorted(d for d in root.iterdir() if d.is_dir() and d.name.isdigit() and d.name != name)
            for d in olds[: max(0, len(olds) - (keep - 1))]:
                shutil.rmtree(d, ignore_errors=True)
        self.events.emit("checkpoint", iter=it, path=str(final))


def _finite(x) -> float | None:
    import math

    x = float(x)
    return x if math.isfinite(x) else None


def _write_adapter_config(directory: Path, p: dict, num_layers: int, model: str, iters: int, data: str) -> None:
    """The argument record `mlx_lm lora` writes (the same keys, tailor's values), so mlx_lm's
    generate, fuse and lora --resume-adapter-file read it as one of their own; "tailor"
    keeps tailor's own parameters besides."""
    directory.mkdir(parents=True, exist_ok=True)
    optimizer = "adamw"  # AdamW with weight_decay 0 is Adam
    _write_json(
        directory / "adapter_config.json",
        {
            "model": model,
            "train": True,
            "fine_tune_type": "lora",
            "optimizer": optimizer,
            "optimizer_config": {optimizer: {"weight_decay": p["weight_decay"]}},
            "data": data,
            "seed": p["seed"],
            "num_layers": num_layers,
            "batch_size": p["batch_size"],
            "iters": iters,
            "val_batches": p["val_batches"],
            "learning_rate": p["learning_rate"],
            "steps_per_report": p["steps_per_report"],
            "steps_per_eval": p["steps_per_eval"],
            "resume_adapter_file": None,
            "adapter_path": str(directory),
            "save_every": p["save_every"],
            "test": False,
            "test_batches": 500,
            "max_seq_length": p["max_seq_length"],
            "config": None,
            "grad_checkpoint": p["grad_checkpoint"],
            "grad_accumulation_steps": p["grad_accumulation"],
            "clear_cache_threshold": 0,
            "lr_schedule": lr_schedule(p, iters),
            "lora_parameters": {"rank": p["rank"], "scale": p["scale"], "dropout": p["dropout"]},
            "mask_prompt": True,
            "report_to": None,
            "project_name": None,
            "trust_remote_code": False,
            "trained_by": "tailor",
            "tailor": dict(sorted(p.items())),
        },
    )


def plan_iters(p: dict, n_train: int, batch_size: int, keep_last: bool = False) -> int:
    """Iterations for `epochs` over `n_train` units. mlx_lm's padded batches drop a last
    partial batch; packed ones keep it (`keep_last`), so an epoch takes it too."""
    if p["iters"] is not None:
        return p["iters"]
    per_epoch = max(1, -(-n_train // batch_size) if keep_last else n_train // batch_size)
    return max(1, int(round(p["epochs"] * per_epoch)))


def lr_schedule(p: dict, iters: int) -> dict | None:
    """The learning-rate schedule as mlx_lm's config describes one (None = constant)."""
    updates = max(1, iters // p["grad_accumulation"])
    warmup = p["warmup"]
    warmup_steps = int(round(warmup * updates)) if warmup < 1 else int(warmup)
    warmup_steps = min(warmup_steps, max(0, updates - 1))
    if p["schedule"] == "cosine":
        return {
            "name": "cosine_decay",
            "arguments": [p["learning_rate"], max(1, updates - warmup_steps), 0.0],
            "warmup": warmup_steps,
        }
    if warmup_steps:
        return {
            "name": "linear_schedule",
            "arguments": [p["learning_rate"], p["learning_rate"], 1],
            "warmup": warmup_steps,
        }
    return None


def build_optimizer(p: dict, iters: int):
    import mlx.optimizers as optim
    from mlx_lm.tuner.utils import build_schedule

    schedule = lr_schedule(p, iters)
    lr = build_schedule(schedule) if schedule else p["learning_rate"]
    return optim.AdamW(learning_rate=lr, weight_decay=p["weight_decay"])


# -- the job ----------------------------------------------------------------------


COALESCE_S = 2.0


def _coalesce_signals(state: dict) -> None:
    """Count a SIGINT and a SIGTERM that arrive together as one stop request.

    Ctrl-C in a terminal reaches this process (same process group) and the parent's
    MlxJob forwards it as SIGTERM a moment later; the job runner treats a second signal as
    "stop now", which would skip the checkpoint. A signal within COALESCE_S of the first is
    dropped; a later one still means "now" (the runner's own handlers decide).
    """
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    first = {"at": None}

    def handler(signum, frame):
        now = time.monotonic()
        if state.get("stop") and first["at"] is not None and now - first["at"] < COALESCE_S:
            return
        if not state.get("stop"):
            first["at"] = now
        prev = previous[signum]
        if callable(prev):
            prev(signum, frame)
        else:
            state["stop"] = True

    if all(callable(h) for h in previous.values()):
        for sig in previous:
            signal.signal(sig, handler)


def run_train(path: str, events, state: dict) -> int:
    try:
        job = read_train_job(path)
    except FileNotFoundError:
        raise BadJobError(f"job file not found: {path}") from None
    _coalesce_signals(state)
    if job.get("launch") and "MLX_RANK" not in os.environ:
        return _relay(job, events, state)
    return _train(job, events, state)


def _train(job: dict, events, state: dict) -> int:
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm.tuner.datasets import CacheDataset, ChatDataset
    from mlx_lm.tuner.trainer import TrainingArgs, train
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from .model import load_model
    from .packing import packed_loss, padded_loss

    world = mx.distributed.init()
    rank, size = world.rank(), world.size()
    ev = events if rank == 0 else _Quiet()
    p = dict(job["params"])
    run_dir = Path(job["run_dir"])
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "stop").unlink(missing_ok=True)

    train_rows, valid_rows = read_chat_jsonl(job["train"]), read_chat_jsonl(job["valid"])
    if not train_rows:
        raise BadJobError(f"{job['train']}: no training examples")
    if not valid_rows:
        raise BadJobError(f"{job['valid']}: no validation examples (early stopping needs a validation set)")

    model, tokenizer, info = load_model(job["model"], None, job.get("dtype") or "auto", job.get("thinking"))
    train_set = CacheDataset(ChatDataset(train_rows, tokenizer, mask_prompt=True))
    valid_set = CacheDataset(ChatDataset(valid_rows, tokenizer, mask_prompt=True))
    lengths = [len(ds[i][0]) for ds in (train_set, valid_set) for i in range(len(ds))]
    if job.get("dmc"):  # a later epoch may train on any pool trace: fit and check them too
        from .reselect import pool_rows

        pool_set = CacheDataset(ChatDataset(pool_rows(job["dmc"]), tokenizer, mask_prompt=True))
        lengths += [len(pool_set[i][0]) for i in range(len(pool_set))]
    if p["max_seq_length"] is None:
        p["max_seq_length"] = fit_length(lengths, info.get("context"))  # reported in the start event
    too_long = sum(n > p["max_seq_length"] for n in lengths)
    if too_long > MAX_TRUNCATED_SHARE * len(lengths) and not p["truncate"]:
        context = info.get("context")
        fit = f" (the model's context is {context})" if context else ""
        raise BadJobError(
            f"{too_long} of {len(lengths)} examples ({100 * too_long / len(lengths):.1f} %) are longer "
            f"than max_seq_length {p['max_seq_length']} tokens; the longest is {max(lengths)}{fit}. "
            f"Set [train] max_seq_length = {max(lengths)}, or truncate = true to train on cut examples"
        )
    if too_long:
        ev.emit(
            "message",
            text=f"{too_long} examples are longer than max_seq_length {p['max_seq_length']} "
            f"tokens and are truncated (longest {max(lengths)})",
        )

    batch_size = p["batch_size"]
    units = len(train_set)  # what a batch is made of: examples, or packed rows
    unpacked = "dynamic DMC (its epochs count examples)" if job.get("dmc") else None
    unpacked = unpacked or (f"{size} distributed processes" if size > 1 else None)
    if p["packing"] and unpacked:
        p["packing"] = False
        ev.emit("message", text=f"packing is off for this run: not supported yet with {unpacked}")
    if p["packing"]:
        from .packing import rows_per_epoch

        units = rows_per_epoch(train_set, p["max_seq_length"])
    if units < batch_size:
        batch_size = units - units % size or size
        what = "packed rows" if p["packing"] else "training examples"
        ev.emit("message", text=f"only {units} {what}: batch size {p['batch_size']} -> {batch_size}")
    if batch_size % size:
        raise BadJobError(f"batch size {batch_size} is not divisible by the {size} distributed processes")
    p["batch_size"] = batch_size
    iters = plan_iters(p, units, batch_size, keep_last=p["packing"])
    n_layers = len(model.layers)
    num_layers = n_layers if p["num_layers"] < 0 else min(p["num_layers"], n_layers)
    phash = params_hash(p)

    resume_state, start_iter = None, 0
    ckpt = latest_checkpoint(run_dir) if job.get("resume") else None
    if ckpt is not None:
        resume_state = json.loads((ckpt / "state.json").read_text("utf-8"))
        if resume_state.get("params_hash") != phash:
            raise BadJobError(f"{ckpt}: checkpoint was made with other hyperparameters; cannot resume")
        start_iter = int(resume_state["iter"])
        iters = int(resume_state.get("iters", iters))
    elif job.get("resume"):
        ev.emit("message", text=f"no checkpoint in {run_dir / 'checkpoints'}: starting from iteration 0")

    mx.random.seed(p["seed"])
    model.freeze()
    linear_to_lora_layers(model, num_layers, {"rank": p["rank"], "scale": p["scale"], "dropout": p["dropout"]})
    optimizer = build_optimizer(p, iters)
    if ckpt is not None:
        model.load_weights(str(ckpt / "adapters.safetensors"), strict=False)
        optimizer.state = tree_unflatten(list(mx.load(str(ckpt / "optimizer.safetensors")).items()))
        mx.eval(model.parameters(), optimizer.state)
    if rank == 0:
        for d in ("adapters", "last"):
            _write_adapter_config(run_dir / d, p, num_layers, info["model"], iters, str(Path(job["train"]).parent))
    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))

    dynamic = None
    if job.get("dmc"):
        from .reselect import DynamicSelection

        if size > 1:
            raise BadJobError("dynamic DMC re-selects in one process; it cannot run under mlx.launch")
        dynamic = DynamicSelection(job["dmc"], len(train_set), batch_size, (resume_state or {}).get("dmc"))
    ctl = Controller(
        dynamic=dynamic,
        tokenizer=tokenizer,
        train_rows=train_rows,
        model=model,
        optimizer=optimizer,
        valid_set=valid_set,
        p=p,
        iters=iters,
        start_iter=start_iter,
        run_dir=run_dir,
        events=ev,
        state=state,
        world=world,
        resume_state=resume_state,
        phash=phash,
    )
    ev.emit(
        "start",
        kind="train",
        total=iters,
        iters=iters,
        start_iter=start_iter,
        n_train=len(train_set),
        n_valid=len(valid_set),
        batch_size=batch_size,
        eval_batch_size=ctl.eval_batch,
        num_layers=num_layers,
        max_seq_length=p["max_seq_length"],
        trainable_params=int(trainable),
        world_size=size,
        params_hash=phash,
        resumed_from=str(ckpt) if ckpt else None,
        **info,
    )
    args = TrainingArgs(
        batch_size=batch_size,
        iters=iters - start_iter,
        val_batches=p["val_batches"],
        steps_per_report=p["steps_per_report"],
        steps_per_eval=iters + 1,
        steps_per_save=10**12,
        max_seq_length=p["max_seq_length"],
        adapter_file=str(run_dir / "last" / "adapters.safetensors"),
        grad_checkpoint=p["grad_checkpoint"],
        grad_accumulation_steps=p["grad_accumulation"],
    )
    mx.reset_peak_memory()
    state["loading"] = False
    tic = time.perf_counter()
    if iters > start_iter:
        train(
            model=model,
            optimizer=optimizer,
            train_dataset=train_set,
            val_dataset=None,
            args=args,
            iterate_batches=ctl.batches,
            training_callback=ctl,
            loss=packed_loss if p["packing"] else padded_loss,
        )
    ctl.finish()

    ctl.save_adapter(run_dir / "last")
    keep_dir = run_dir / ("last" if p["keep"] == "last" or ctl.best_iter is None else "adapters")
    seconds = time.perf_counter() - tic
    stats = {
        "stop_reason": ctl.stop_reason,
        "final_iter": ctl.done_iter,
        "iters": iters,
        "start_iter": start_iter,
        "best_iter": ctl.best_iter,
        "best_val_loss": _finite(ctl.best_val) if ctl.best_val is not None else None,
        "last_val_loss": _finite(ctl.last_val) if ctl.last_val is not None else None,
        "adapter_path": str(keep_dir),
        "keep": p["keep"],
        "trained_tokens": ctl.trained_tokens,
        # for comparing ablations at equal updates: what one optimizer step saw
        "updates": (updates := ctl.done_iter // p["grad_accumulation"]),
        "tokens_per_update": round(ctl.trained_tokens / updates, 1) if updates else None,
        "packing": p["packing"],
        "tokens_per_s": round(ctl.trained_tokens / ctl.train_seconds, 3) if ctl.train_seconds else 0.0,
        "peak_memory_gb": round(max(ctl.peak_memory, mx.get_peak_memory() / 1e9), 4),
        "max_rss_gb": _max_rss_gb(),
        "seconds": round(seconds, 3),
        "world_size": size,
    }
    if ctl.stop_reason == "interrupted":
        ev.emit("cancelled", done=ctl.done_iter, iter=ctl.done_iter, checkpoint=ctl.last_checkpoint, stats=stats)
        return EXIT_CANCELLED
    ev.emit("done", stats=stats)
    return EXIT_OK


def _max_rss_gb() -> float:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1e9 if sys.platform == "darwin" else 1e6), 4)


# -- data parallel: relay rank 0 of an mlx.launch run ---------------------------------


def launch_command(job_path: Path, launch: dict, python: str | None = None) -> list[str]:
    """``mlx.launch`` running this job on every host / process of ``launch``."""
    py = python or sys.executable
    cmd = [
        py,
        "-c",
        "import sys; from mlx._distributed_utils.launch import main; sys.argv[0] = 'mlx.launch'; sys.exit(main())",
    ]
    if launch.get("hostfile"):
        cmd += ["--hostfile", str(launch["hostfile"])]
    if launch.get("processes"):
        cmd += ["-n", str(int(launch["processes"]))]
    if launch.get("backend"):
        cmd += ["--backend", str(launch["backend"])]
    # Local ranks inherit this environment (PYTHONPATH, a preloaded BLAS); remote hosts use
    # their own: the same python path must have tailor installed there. Several processes
    # on one host share its cores.
    n = int(launch.get("processes") or 1)
    if n > 1 and os.environ.get("TAILOR_FAST_BLAS") == "1" and "OPENBLAS_NUM_THREADS" not in os.environ:
        cmd += ["--env", f"OPENBLAS_NUM_THREADS={max(1, (os.cpu_count() or 1) // n)}"]
    return cmd + ["--", py, "-m", "mlx_backend", str(job_path)]


def _relay(job: dict, events, state: dict) -> int:
    """Start ``mlx.launch``, pass rank 0's events through, turn a stop request into RUN_DIR/stop."""
    import threading

    run_dir = Path(job["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    stop_file = run_dir / "stop"
    stop_file.unlink(missing_ok=True)
    job_path = run_dir / "job.json"
    _write_json(job_path, job)
    cmd = launch_command(job_path, job["launch"])
    events.emit("message", text="mlx.launch " + " ".join(cmd[3:]))
    # stdin: a pipe that stays open and empty (mlx.launch forwards stdin to every rank and
    # would spin on an EOF); its own session, so a second signal can end every rank at once.
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, start_new_session=True
    )
    state["loading"] = False
    finished = {"status": None}

    def watch():  # a stop request (signal) becomes the stop file every rank will see
        while proc.poll() is None:
            if state.get("stop") or events.broken:
                stop_file.touch()
                return
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    try:
        for line in proc.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = ev.pop("event", None)
            if kind in ("done", "cancelled", "error"):
                finished["status"] = kind
            if kind:
                events.emit(kind, **ev)
        rc = proc.wait()
    except BaseException:  # a second signal: every rank now (each checkpoints on its first SIGTERM)
        stop_file.touch()
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        raise
    if finished["status"] == "done" and rc == 0:
        return EXIT_OK
    if finished["status"] == "cancelled":
        return EXIT_CANCELLED
    if finished["status"] != "error":
        events.emit("error", message=f"mlx.launch exited with code {rc} (see stderr)")
    return 1
