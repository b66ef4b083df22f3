"""`tailor train`: LoRA runs on an exported dataset, one per seed, with early stopping and resume.

Each run is one MLX child job (mlx_backend/train.py) that trains through mlx_lm's tuner;
its reports stream into the ``metrics`` table as they arrive (one small transaction per
report), so the TUI can plot a run while it trains. A run lives in ``runs/<run-id>/``:
``adapters/`` (the adapter with the lowest validation loss), ``last/`` (the last weights),
``checkpoints/`` and ``log`` (every event, one JSON line each).

* **Early stopping.** Validation at iteration 0, every ``steps_per_eval`` and at the end;
  ``patience`` evaluations without an improvement of more than ``min_delta`` stop the run.
  The run's adapter is the best one (``keep = "best"``) or the last (``keep = "last"``);
  the run records best iteration, best validation loss and why it stopped
  (``patience`` / ``max_iters`` / ``interrupted``).
* **The O'Bryan protocol.** ``find_stop=True`` trains once for ``max_iters`` (1000) with
  evaluations and reports where the validation loss is lowest; then fixed-length runs
  (``iters=N``, several seeds). The validation set is the export's ``valid.jsonl``: split by
  problem from train-split problems; each run checks it against the store's test split and
  records ``valid_disjoint_from_test``, plus the split sizes.
* **Interruption.** Ctrl-C / SIGTERM / a killed child mark the run ``interrupted`` (the child
  checkpoints first); a run whose ``tailor`` process died is found by its lock file and
  marked ``interrupted`` the next time. ``resume=RUN`` continues from the last checkpoint
  with the same hyperparameters and data (checked by hash).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import statistics
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from app.blas import find_blas, hint_once
from app.config import CONFIG_NAME, Config, TrainConfig, format_validation_error
from app.contamination import normalised
from app.errors import ConfigError, TailorError
from app.events import Events
from app.identity import identity, located
from app.jobs import JobOutcome, MlxJob
from app.pipeline.diagnose import student_model
from app.pipeline.export import read_manifest
from app.records import Run
from app.store import Store, now
from mlx_backend.train import PARAMS as TRAIN_PARAMS

DEFAULT_FIND_STOP_ITERS = 1000
TRAIN_METRICS = {
    "train_loss": "train_loss",
    "lr": "learning_rate",
    "tokens_per_s": "tokens_per_s",
    "peak_memory_gb": "peak_memory_gb",
    "trained_tokens": "trained_tokens",
}


class TrainError(TailorError):
    """A training run cannot start or failed."""


# -- configuration ------------------------------------------------------------------


def parse_overrides(items: Sequence[str]) -> dict:
    """``KEY=VALUE`` strings (``tailor train --set``) as a dict; values are JSON when they parse."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set rank=16")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value.strip()
    return out


def resolve_params(
    cfg: Config,
    *,
    profile: str | None = None,
    overrides: dict | None = None,
    iters: int | None = None,
    patience: int | None = None,
    min_delta: float | None = None,
) -> dict:
    """[train] of tailor.toml, then --profile, --set and the named flags, resolved against the profile."""
    data = cfg.train.model_dump(exclude_unset=True)
    named = {k: v for k, v in (("iters", iters), ("patience", patience), ("min_delta", min_delta)) if v is not None}
    if profile is not None:
        data["profile"] = profile
    data.update(overrides or {})
    data.update(named)
    try:
        tc = TrainConfig.model_validate(data)
    except ValidationError as e:
        where = "--set / flags" if overrides or named or profile else f"{CONFIG_NAME} [train]"
        raise ConfigError(format_validation_error(where, e).replace(": ", ": train.", 1)) from None
    return tc.resolved()


# -- data ---------------------------------------------------------------------------


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


@dataclass
class DataCheck:
    data_dir: Path
    train_path: Path
    valid_path: Path
    train_examples: int
    valid_examples: int
    dataset: str | None
    dataset_id: int | None
    train_problems: int | None
    valid_problems: int | None
    valid_disjoint_from_test: bool | None
    detail: str
    train_sha256: str | None
    valid_sha256: str | None
    test_problems: int = 0

    def record(self) -> dict:
        return {
            "dir": str(self.data_dir),
            "train": str(self.train_path),
            "valid": str(self.valid_path),
            "dataset": self.dataset,
            "train_sha256": self.train_sha256,
            "valid_sha256": self.valid_sha256,
            "split_sizes": {
                "train_examples": self.train_examples,
                "valid_examples": self.valid_examples,
                "train_problems": self.train_problems,
                "valid_problems": self.valid_problems,
                "test_problems": self.test_problems,
            },
            "valid_disjoint_from_test": self.valid_disjoint_from_test,
            "valid_check": self.detail,
        }


def dataset_dir(project: Path | str, name: str) -> Path:
    d = Path(project) / "runs" / "datasets" / re.sub(r"[^\w.+-]", "_", name)
    if not (d / "train.jsonl").is_file():
        root = Path(project) / "runs" / "datasets"
        have = sorted(p.name for p in root.iterdir() if (p / "train.jsonl").is_file()) if root.is_dir() else []
        hint = f" (exported: {', '.join(have)})" if have else f" (run `tailor export --dataset {name}` first)"
        raise TrainError(f"{d / 'train.jsonl'}: not found{hint}")
    return d


def check_data(store: Store, data_dir: Path) -> DataCheck:
    """Counts, hashes, and whether valid.jsonl's problems are disjoint from the test split.

    The proof is the export's manifest: its file hash must match valid.jsonl as it is now,
    and each of its ``valid_problem_ids`` must be a stored problem that is neither in the
    test split nor has a test problem's question. Without that evidence the answer is
    None (unknown), never yes.
    """
    train_path, valid_path = data_dir / "train.jsonl", data_dir / "valid.jsonl"
    if not valid_path.is_file() or _count_lines(valid_path) == 0:
        raise TrainError(
            f"{valid_path}: no validation examples; early stopping needs them "
            "(export more problems or a larger --valid-fraction)"
        )
    n_train, n_valid = _count_lines(train_path), _count_lines(valid_path)
    train_sha, valid_sha = _sha256(train_path), _sha256(valid_path)
    test = store.problems(split="test")
    base = dict(
        data_dir=data_dir,
        train_path=train_path,
        valid_path=valid_path,
        train_examples=n_train,
        valid_examples=n_valid,
        train_sha256=train_sha,
        valid_sha256=valid_sha,
        test_problems=len(test),
    )
    manifest = read_manifest(data_dir)
    if manifest is None:
        return DataCheck(
            **base,
            dataset=None,
            dataset_id=None,
            train_problems=None,
            valid_problems=None,
            valid_disjoint_from_test=None,
            detail="no manifest.json: cannot tell which problems are in valid.jsonl",
        )
    name = manifest.get("dataset")
    ds = store.get_dataset(name) if isinstance(name, str) else None
    counts = manifest.get("counts", {})
    sizes = dict(
        dataset=name,
        dataset_id=ds.id if ds else None,
        train_problems=counts.get("train", {}).get("problems"),
        valid_problems=counts.get("valid", {}).get("problems"),
    )

    def verdict(ok: bool | None, detail: str) -> DataCheck:
        return DataCheck(**base, **sizes, valid_disjoint_from_test=ok, detail=detail)

    files = manifest.get("files", {})
    if files.get("valid.jsonl", {}).get("sha256") != valid_sha:
        return verdict(None, "valid.jsonl differs from the file the manifest describes (edited after export?)")
    ids = manifest.get("valid_problem_ids")
    if not isinstance(ids, list):
        return verdict(None, "the manifest lists no valid_problem_ids")
    test_ids = {p.id for p in test}
    test_questions = {normalised(p.question) for p in test}
    found = {pid: store.get_problem(pid) for pid in ids}
    missing = [pid for pid, p in found.items() if p is None]
    if missing:
        return verdict(None, f"validation problem {missing[0]} is not in the store")
    clash = [
        pid
        for pid, p in found.items()
        if pid in test_ids or p.split == "test" or normalised(p.question) in test_questions
    ]
    if clash:
        return verdict(False, f"{len(clash)} validation problems are test problems (e.g. {clash[0]})")
    splits = sorted({p.split for p in found.values()})
    return verdict(
        True,
        f"{len(ids)} validation problems ({', '.join(splits)} split), none of them or their "
        f"questions among the {len(test_ids)} test problems",
    )


# -- runs -----------------------------------------------------------------------------


@dataclass
class RunOutcome:
    run_id: str
    seed: int
    status: str
    stop_reason: str | None = None
    best_iter: int | None = None
    best_val_loss: float | None = None
    final_iter: int | None = None
    adapter_path: str | None = None
    stats: dict = field(default_factory=dict)
    error: str | None = None


@dataclass
class TrainResult:
    runs: list[RunOutcome] = field(default_factory=list)
    find_stop: bool = False
    dataset: str | None = None
    valid_disjoint_from_test: bool | None = None
    valid_detail: str = ""
    profile: str = ""

    @property
    def status(self) -> str:
        if any(r.status == "interrupted" for r in self.runs):
            return "interrupted"
        return "failed" if any(r.status == "failed" for r in self.runs) else "done"


def _slug(text: str) -> str:
    return re.sub(r"[^\w.+-]", "_", text).strip("_") or "run"


def new_run_id(store: Store, project: Path, name: str, seed: int, find_stop: bool = False) -> str:
    base = f"{_slug(name)}-{'find-stop-' if find_stop else ''}s{seed}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run_id, n = base, 1
    while store.get_run(run_id) or (project / "runs" / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


class RunLock:
    """An flock on runs/<id>/lock held while a tailor process drives the run (POSIX)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "lock"
        self.fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def reconcile_stale_runs(store: Store, project: Path | str) -> list[str]:
    """Mark 'running' runs that no live process holds (tailor was killed) as interrupted."""
    stale = []
    for run in store.runs(status="running"):
        lock = RunLock(Path(project) / "runs" / run.id)
        if lock.acquire():
            lock.release()
            store.update_run(run.id, status="interrupted", stop_reason="interrupted", finished_at=now())
            stale.append(run.id)
    return stale


class _SigtermAsInterrupt:
    """While a run is driven from the main thread, SIGTERM behaves like Ctrl-C (the run is marked)."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():

            def handler(signum, frame):
                raise KeyboardInterrupt

            self.old = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


def _spec(run: Run, *, resume: bool, project: Path) -> dict:
    c = run.config
    # The child's parameter table is the one list: every key it checks is sent, a key an
    # older run lacks (truncate, say) gets the child's default.
    params = {k: c["params"].get(k, default) for k, (_, default) in TRAIN_PARAMS.items() if k != "seed"}
    params["seed"] = run.seed
    return {
        "kind": "train",
        "model": located(c["model"], project),
        "dtype": c.get("dtype", "auto"),
        "thinking": c.get("thinking"),
        "run_dir": c["run_dir"],
        "train": c["data"]["train"],
        "valid": c["data"]["valid"],
        "resume": resume,
        "params": params,
        "launch": c.get("launch"),
        "dmc": c.get("dmc"),
    }


def dynamic_dmc(data_dir: Path) -> dict | None:
    """The training child's dynamic-DMC job key, for an export made with --select dmc-dynamic."""
    from app.pipeline.export import read_manifest

    sel = (read_manifest(data_dir) or {}).get("selection") or {}
    dyn = sel.get("dynamic")
    if sel.get("method") != "dmc-dynamic" or not dyn:
        return None
    keys = ("rescore_pool", "difficulty", "constants", "capability_bounds")
    return {
        "pool": str(Path(data_dir).resolve() / "pool.jsonl"),
        "placement": str(Path(data_dir).resolve() / "placement.jsonl"),
        "top": sel["top"],
        "dataset": sel.get("dataset"),
        "capability_at_start": (sel.get("capability") or {}).get("relative"),
        **{k: dyn[k] for k in keys},
    }


def _drive(
    store: Store, events: Events, run: Run, *, resume: bool, blas: str | None, job_cls, project: Path
) -> RunOutcome:
    """Run one job for `run`, streaming its events into the store; the run never stays 'running'."""
    run_dir = Path(run.config["run_dir"])
    lock = RunLock(run_dir)
    if not lock.acquire():
        raise TrainError(f"run {run.id} is being trained by another tailor process ({lock.path})")
    log = open(run_dir / "log", "a", encoding="utf-8")
    outcome = RunOutcome(run_id=run.id, seed=run.seed or 0, status="running")
    progress = {"done": 0}
    last: dict = {}  # stats of the child's done / cancelled event

    def write_log(ev: dict) -> None:
        log.write(f"{now()} {json.dumps(ev, sort_keys=True)}\n")
        log.flush()

    def on_event(ev: dict) -> None:
        kind = ev.get("event")
        if kind != "progress":
            write_log(ev)
        if kind == "start":
            start_iter = int(ev.get("start_iter") or 0)
            store.update_run(run.id, dtype=ev.get("dtype"))
            if run.config["params"].get("max_seq_length") is None and ev.get("max_seq_length"):
                # fitted to the export by the job; kept apart from params, which name the run's recipe
                store.update_run(run.id, config={**run.config, "fitted": {"max_seq_length": ev["max_seq_length"]}})
            if resume:
                store.delete_metrics_after(run.id, start_iter)
            events.start(f"train {run.id}", ev.get("iters"))
            events.advance(start_iter)
            progress["done"] = start_iter
            events.message(
                f"{run.id}: {ev.get('n_train')} train / {ev.get('n_valid')} valid examples, "
                f"{ev.get('iters')} iterations of batch {ev.get('batch_size')}, "
                f"{ev.get('trainable_params'):,} LoRA parameters, {ev.get('device')} {ev.get('dtype')}"
                + (f", max_seq_length {ev['max_seq_length']}" if ev.get("max_seq_length") else "")
                + (f", resuming at iteration {start_iter}" if ev.get("resumed_from") else "")
            )
        elif kind == "progress":
            done = int(ev.get("done", 0))
            if done > progress["done"]:
                events.advance(done - progress["done"])
                progress["done"] = done
        elif kind == "metric":
            it = int(ev["iter"])
            if "val_loss" in ev:
                store.add_metrics(run.id, it, {"val_loss": ev["val_loss"]}, extra={"val_time": ev.get("val_time")})
            else:
                store.add_metrics(run.id, it, {kind_: ev.get(key) for key, kind_ in TRAIN_METRICS.items()})
        elif kind == "best":
            store.update_run(run.id, best_iter=ev["iter"], best_val_loss=ev["val_loss"])
        elif kind == "message":
            events.message(f"{run.id}: {ev.get('text')}")
        elif kind == "selection":
            _store_selection(store, events, run, ev)
        elif kind in ("done", "cancelled"):
            last["stats"] = ev.get("stats", {})

    def stop_child() -> None:
        if job.proc is not None and job.proc.poll() is None:  # the child checkpoints, then exits
            job.cancel()
            try:
                job.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                job.proc.kill()

    job = job_cls(_spec(run, resume=resume, project=project), blas=blas)
    result: JobOutcome | None = None
    try:
        with _SigtermAsInterrupt():
            result = job.run(on_event)
    except KeyboardInterrupt:  # Ctrl-C / SIGTERM of tailor: the run is marked, the caller goes on
        stop_child()
        result = JobOutcome(status="cancelled", returncode=130, stats=last.get("stats", {}))
    except BaseException:  # a failure while storing an event: stop the child, mark the run, re-raise
        stop_child()
        outcome.status = "interrupted"
        _finish(store, run, outcome, None, project)
        raise
    finally:
        log.close()
        lock.release()
    stats = result.stats or last.get("stats", {})
    if result.status == "done":
        outcome.status = "done"
    elif result.status == "cancelled" or result.returncode < 0:  # stopped, or killed by a signal
        outcome.status = "interrupted"
    else:
        outcome.status, outcome.error = "failed", result.error
    outcome.stats = stats
    _finish(store, run, outcome, stats, project)
    with open(run_dir / "log", "a", encoding="utf-8") as f:
        f.write(f"{now()} {json.dumps({'event': 'tailor', 'status': outcome.status, 'error': outcome.error})}\n")
    return outcome


def _store_selection(store: Store, events: Events, run: Run, ev: dict) -> None:
    """Dynamic DMC chose the next epoch's traces: kept per epoch, for the report."""
    dmc = run.config["dmc"]
    chosen = dict(zip(ev["trace_ids"], ev["values"]))
    store.put_selection(dmc["dataset"], "dmc-dynamic", dmc["top"], ev["epoch"], f"run:{run.id}", chosen)
    store.add_metrics(run.id, ev["iter"], {"dmc_capability": ev["relative"]}, extra={"epoch": ev["epoch"]})
    before = {
        s["trace_id"]
        for s in store.selections(dmc["dataset"])
        if s["method"] == "dmc-dynamic"
        and s["epoch"] == ev["epoch"] - 1
        and (s["epoch"] == 0 or s["state"] == f"run:{run.id}")
    }
    changed = f", {len(set(chosen) - before)} new" if before else ""
    events.message(
        f"{run.id}: epoch {ev['epoch']}: capability {ev['relative']:.3f} "
        f"({ev['capability']:.3f} nats/token); {len(chosen)} traces selected{changed}"
    )


def _finish(store: Store, run: Run, outcome: RunOutcome, stats: dict | None, project: Path) -> None:
    stats = stats or {}
    current = store.get_run(run.id)
    outcome.best_iter = stats.get("best_iter", current.best_iter)
    outcome.best_val_loss = stats.get("best_val_loss", current.best_val_loss)
    outcome.final_iter = stats.get("final_iter")
    if outcome.status == "done":
        outcome.stop_reason = stats.get("stop_reason")
        # recorded by name (app.identity): "./runs/ID/adapters" still finds it in a moved project
        outcome.adapter_path = identity(stats["adapter_path"], project) if stats.get("adapter_path") else None
    elif outcome.status == "interrupted":
        outcome.stop_reason = "interrupted"
    else:
        outcome.stop_reason = "error"
    if stats.get("updates"):  # what ablations are compared at: updates, and what each one saw
        step = outcome.final_iter or 0
        store.add_metrics(run.id, step, {k: stats[k] for k in ("updates", "tokens_per_update")})
    store.update_run(
        run.id,
        status=outcome.status,
        stop_reason=outcome.stop_reason,
        best_iter=outcome.best_iter,
        best_val_loss=outcome.best_val_loss,
        adapter_path=outcome.adapter_path,
        finished_at=now(),
    )


# -- the stage ---------------------------------------------------------------------------


def train(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    project: Path | str = ".",
    dataset: str | None = None,
    data_dir: Path | str | None = None,
    profile: str | None = None,
    iters: int | None = None,
    max_iters: int | None = None,
    find_stop: bool = False,
    seeds: Sequence[int] | None = None,
    patience: int | None = None,
    min_delta: float | None = None,
    overrides: dict | None = None,
    resume: str | None = None,
    label: str | None = None,
    sweep: str | None = None,
    job_cls=MlxJob,
) -> TrainResult:
    """Train one run per seed (or one find-stop run, or resume one run); see the module docstring.

    ``label`` names the configuration these runs are seeds of (default: dataset/profile);
    reports compare configurations by label."""
    project = Path(project)
    for run_id in reconcile_stale_runs(store, project):
        events.message(f"run {run_id} was left running by a tailor process that is gone: marked interrupted")
    blas = find_blas(cfg.student.blas)
    hint_once(blas, events.message)
    if resume:
        return _resume(store, events, project, resume, blas, job_cls)

    if iters is not None and max_iters is not None:
        raise ConfigError("give --iters (a fixed length) or --max-iters (an upper bound), not both")
    if find_stop:
        max_iters = max_iters or DEFAULT_FIND_STOP_ITERS
    length = iters if iters is not None else max_iters
    if find_stop and patience is None:
        patience = 0  # the whole curve, as in the study, unless asked otherwise
    params = resolve_params(
        cfg, profile=profile, overrides=overrides, iters=length, patience=patience, min_delta=min_delta
    )
    if find_stop:
        params["keep"] = "best"
    if dataset is None and data_dir is None:
        raise ConfigError("tailor train needs --dataset NAME (an export in runs/datasets/NAME)")
    ddir = Path(data_dir) if data_dir is not None else dataset_dir(project, dataset)
    check = check_data(store, ddir)
    name = dataset or check.dataset or ddir.name
    seed_list = list(seeds) if seeds else list(params["seeds"])
    if find_stop:
        seed_list = seed_list[:1]
    if len(set(seed_list)) != len(seed_list):
        raise ConfigError(f"--seeds: repeated seed in {seed_list}")
    events.message(
        f"validation set {ddir / 'valid.jsonl'}: disjoint from test = "
        f"{ {True: 'yes', False: 'NO', None: 'unknown'}[check.valid_disjoint_from_test] } ({check.detail})"
    )
    if check.valid_disjoint_from_test is False:
        events.message("warning: the stopping point would be chosen on test problems; re-export the dataset")

    hostfile = params.get("hostfile")
    launch = None
    if hostfile or params.get("processes"):
        hf = (project / hostfile).resolve() if hostfile and not Path(hostfile).is_absolute() else hostfile
        if hf and not Path(hf).is_file():
            raise ConfigError(f"train.hostfile: {hf} does not exist")
        launch = {
            "hostfile": str(hf) if hf else None,
            "processes": params.get("processes"),
            "backend": params.get("backend"),
        }
    from_find_stop = None
    if iters is not None and not find_stop:
        prior = [
            r
            for r in store.runs(status="done")
            if r.config.get("find_stop")
            and r.config.get("data", {}).get("valid_sha256") == check.valid_sha256
            and r.best_iter == iters
        ]
        from_find_stop = prior[-1].id if prior else None

    result = TrainResult(
        find_stop=find_stop,
        dataset=name,
        valid_disjoint_from_test=check.valid_disjoint_from_test,
        valid_detail=check.detail,
        profile=params["profile"],
    )
    model = student_model(cfg, project, events.message)
    for seed in seed_list:
        run_id = new_run_id(store, project, name, seed, find_stop)
        run_dir = (project / "runs" / run_id).resolve()
        run_dir.mkdir(parents=True)
        config = {
            "params": {**params, "seed": seed},
            "model": identity(model, project),
            "dtype": cfg.student.dtype,
            "thinking": cfg.student.thinking,
            "run_dir": str(run_dir),
            "data": check.record(),
            "dmc": dynamic_dmc(check.data_dir),
            "find_stop": find_stop,
            "iters_from_find_stop": from_find_stop,
            "launch": launch,
            "blas": blas,
        }
        run = Run(
            id=run_id,
            dataset_id=check.dataset_id,
            seed=seed,
            profile=params["profile"],
            config=config,
            status="running",
            valid_disjoint_from_test=check.valid_disjoint_from_test,
            blas=blas,
            label=label or f"{name}/{params['profile']}",
            sweep=sweep,
        )
        store.insert_run(run)
        (run_dir / "run.json").write_text(json.dumps(run.model_dump(), indent=2, sort_keys=True) + "\n", "utf-8")
        out = _drive(store, events, run, resume=False, blas=blas, job_cls=job_cls, project=project)
        result.runs.append(out)
        events.done(describe(out))
        if out.status == "interrupted":
            break
        if out.status == "failed":
            raise TrainError(f"run {run_id} failed: {out.error} (log: {run_dir / 'log'})")
    return result


def _resume(store: Store, events: Events, project: Path, ref: str, blas: str | None, job_cls) -> TrainResult:
    found = store.find_runs(ref)
    if not found:
        raise TrainError(f"--resume {ref}: no such run (see `tailor runs` / the runs table)")
    if len(found) > 1:
        raise TrainError(f"--resume {ref}: ambiguous, matches {', '.join(r.id for r in found[:5])}")
    run = found[0]
    if run.status == "done":
        raise TrainError(f"run {run.id} is finished ({run.stop_reason}); nothing to resume")
    if run.status == "running":
        raise TrainError(f"run {run.id} is being trained by another tailor process")
    data = run.config["data"]
    for part in ("train", "valid"):
        if _sha256(Path(data[part])) != data[f"{part}_sha256"]:
            raise TrainError(f"run {run.id}: {data[part]} changed since the run started; start a new run instead")
    store.update_run(run.id, status="running", stop_reason=None, finished_at=None)
    out = _drive(store, events, run, resume=True, blas=blas, job_cls=job_cls, project=project)
    events.done(describe(out))
    result = TrainResult(
        runs=[out],
        find_stop=bool(run.config.get("find_stop")),
        dataset=data.get("dataset"),
        valid_disjoint_from_test=run.valid_disjoint_from_test,
        valid_detail=data.get("valid_check", ""),
        profile=run.profile or "",
    )
    if out.status == "failed":
        raise TrainError(f"run {run.id} failed: {out.error} (log: {Path(run.config['run_dir']) / 'log'})")
    return result


# -- reporting -------------------------------------------------------------------------------


def _fmt_loss(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.4f}"


def describe(out: RunOutcome) -> str:
    best = (
        f"best val loss {_fmt_loss(out.best_val_loss)} at iteration {out.best_iter}"
        if out.best_iter is not None
        else "no evaluation"
    )
    what = {"done": f"stopped: {out.stop_reason}", "interrupted": "interrupted", "failed": "failed"}[out.status]
    tail = f"; resume with `tailor train --resume {out.run_id}`" if out.status == "interrupted" else ""
    tps = out.stats.get("tokens_per_s")
    speed = f", {tps:.0f} tok/s" if tps else ""
    if out.stats.get("updates"):
        packed = "packed" if out.stats.get("packing") else "padded"
        speed += f", {out.stats['updates']} updates of {out.stats['tokens_per_update']:.0f} tokens ({packed})"
    return f"{out.run_id}: {what} after {out.final_iter if out.final_iter is not None else '?'} iterations, {best}{speed}{tail}"


def format_result(result: TrainResult) -> str:
    lines = []
    for r in result.runs:
        lines.append(describe(r) + (f"\n  adapter: {r.adapter_path}" if r.adapter_path else ""))
    disjoint = {True: "yes", False: "NO", None: "unknown"}[result.valid_disjoint_from_test]
    lines.append(f"validation set disjoint from test: {disjoint} ({result.valid_detail})")
    done = [r for r in result.runs if r.status == "done" and r.best_iter is not None]
    if result.find_stop and done:
        r = done[0]
        name = result.dataset or "NAME"
        lines.append(
            f"validation loss is lowest at iteration {r.best_iter} ({_fmt_loss(r.best_val_loss)}); next: "
            f"tailor train --dataset {name} --profile obryan --iters {r.best_iter} --seeds 0,1,2,3,4"
        )
    elif len(done) > 1:
        its = [r.best_iter for r in done]
        losses = [r.best_val_loss for r in done if r.best_val_loss is not None]
        spread = f" ± {statistics.stdev(losses):.4f}" if len(losses) > 1 else ""
        lines.append(f"{len(done)} seeds: best iterations {its}; best val loss {statistics.mean(losses):.4f}{spread}")
    return "\n".join(lines)
