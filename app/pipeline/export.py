"""`tailor export`: mlx_lm chat JSONL of a dataset's verified traces, plus a manifest.

Each example is exactly what the student sees at evaluation: the messages of
prompts/student_solve.md for the problem, then the teacher's CoT as the assistant turn,
normalised so its last line is ``The answer is \\boxed{ANSWER}.``. A teacher's reasoning
(reasoning_content or ``<think>`` blocks, stored as the trace's ``reasoning``) leads the
CoT when the teacher keeps it (``keep_reasoning``: "as-cot", the default for the long-CoT
teacher — the long CoT a reasoning model's distillation trains on), else it is dropped. Every teacher's accepted trace of a problem is kept, at
most one per teacher (the lowest accepted variant); ``intersect=True`` (the ablation)
keeps only the problems every teacher of the style solved.

The validation split is by problem (all of a problem's examples are in one file),
deterministic by a hash of the problem id: ``valid_fraction`` of the problems, at least
one when there are two or more. Only train-split problems can be exported: a dataset
holding a valid/test/placement problem is refused, and a problem whose question text is
also a held-out problem's is left out (with a message).

The examples are measured in the student's tokens (app/pipeline/token_lengths.py): the
manifest records the longest example and response, the max_seq_length training will use
(fitted to the longest unless [train] sets one) and how many examples exceed it or the
student's generation budget; export says so.

Files: ``train.jsonl``, ``valid.jsonl``, ``manifest.json`` (counts by grade and style,
prompt hashes, teachers, token lengths, sha256 of both JSONL files), each written to a temporary file
and renamed into place, so nothing is ever half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.answers import extract_answer, is_equivalent
from app.config import Config
from app.contamination import normalised
from app.dmc import DEFAULT_TOP
from app.errors import TailorError
from app.events import Events
from app.jobs import MlxJob
from app.pipeline import token_lengths
from app.pipeline.diagnose import student_model
from app.pipeline.teach import (
    STYLES,
    Teacher,
    check_only,
    configured_teachers,
    load_dataset,
    plan,
    slot_traces,
    teachers_in,
)
from app.prompts import load_prompt
from app.records import Trace
from app.remote import split_think
from app.store import Store, now

DEFAULT_VALID_FRACTION = 0.1
FINAL_LINE = "The answer is \\boxed{%s}."
_CANONICAL_RE = re.compile(r"The answer is \\boxed\{(?P<ans>.+)\}\.")
# A line that is only a final answer: "**Final Answer:** $\boxed{3}$", "Answer: \boxed{3}", "\boxed{3}"
_ANSWER_LINE_RE = re.compile(
    r"(?i)^[\s*#>]*(?:(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:：]?)?[\s*]*"
    r"\$*\s*\\boxed\{.*\}\s*\$*[\s*.]*$"
)


class ExportError(TailorError):
    """The dataset cannot be exported as asked."""


def format_cot(text: str, reference: str) -> str:
    """The assistant turn for a verified trace: the CoT, last line ``The answer is \\boxed{REF}.``

    A trace that already ends with that line for an equivalent answer is kept as it is; a
    last line that is only a final answer in another form is replaced; otherwise the line
    is appended. ``<think>`` content is dropped.
    """
    content, _ = split_think(text)
    lines = (content or "").strip().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if lines:
        last = lines[-1].strip()
        m = _CANONICAL_RE.fullmatch(last)
        if m and is_equivalent(extract_answer(last), reference):
            lines[-1] = last
            return "\n".join(lines)
        if _ANSWER_LINE_RE.match(last) and is_equivalent(extract_answer(last), reference):
            lines.pop()
            while lines and not lines[-1].strip():
                lines.pop()
    body = "\n".join(lines).rstrip()
    final = FINAL_LINE % reference.strip()
    return f"{body}\n\n{final}" if body else final


def _valid_rank(problem_id: str) -> str:
    return hashlib.sha256(f"tailor-valid:{problem_id}".encode()).hexdigest()


def split_problems(problem_ids: Sequence[str], valid_fraction: float) -> tuple[list[str], list[str]]:
    """(train, valid) problem ids: the valid ones are those with the lowest id hash."""
    ids = sorted(set(problem_ids))
    n = len(ids)
    n_valid = 0 if n < 2 else min(n - 1, max(1, int(n * valid_fraction + 0.5)))  # half rounds up
    ranked = sorted(ids, key=_valid_rank)
    valid = set(ranked[:n_valid])
    return [p for p in ids if p not in valid], [p for p in ids if p in valid]


def _write_atomic(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary sibling first, then rename each into place."""
    tmps: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmps.append((tmp, path))
        for tmp, path in tmps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in tmps:
            tmp.unlink(missing_ok=True)


@dataclass
class ExportResult:
    out_dir: Path
    train_path: Path
    valid_path: Path
    manifest_path: Path
    train_examples: int
    valid_examples: int
    train_problems: int
    valid_problems: int
    manifest: dict = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.train_examples} train examples ({self.train_problems} problems), "
            f"{self.valid_examples} valid ({self.valid_problems} problems) -> {self.out_dir}"
        )


def read_manifest(data_dir: Path | str) -> dict | None:
    """An export directory's manifest.json, or None when it is missing or unreadable."""
    try:
        manifest = json.loads((Path(data_dir) / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def default_out_dir(
    project: Path | str,
    dataset: str,
    only: str | None = None,
    intersect: bool = False,
    select: str | None = None,
    top: float | None = None,
) -> Path:
    name = re.sub(r"[^\w.+-]", "_", dataset) + (f"-only-{only}" if only else "") + ("-intersect" if intersect else "")
    if select:
        name += f"-{select}" + (f"{top:g}" if select != "full" else "")
    return Path(project) / "runs" / "datasets" / name


def export(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    dataset: str,
    project: Path | str = ".",
    out: Path | str | None = None,
    only: str | None = None,
    intersect: bool = False,
    valid_fraction: float = DEFAULT_VALID_FRACTION,
    teachers: dict[str, Sequence[Teacher]] | None = None,
    decontaminate: bool = False,
    select: str | None = None,
    top: float = DEFAULT_TOP,
    adapter: str | None = None,
    rescore_pool: float | None = None,
    measure_tokens: bool = True,
    job_cls=MlxJob,
) -> ExportResult:
    """Write train/valid/test JSONL and manifest.json for a dataset; see the module docstring.

    The steps: choose one verified trace per slot, filter (the intersect ablation, held-out
    duplicates, contamination, the placement test), select (``select``: the top ``top`` %
    by quality, difficulty, CAR or DMC; app/dmc.py), split by problem, render, measure in
    tokens, write the manifest and the files."""
    check_only(only)
    if not 0 < valid_fraction < 1:
        raise ExportError(f"--valid-fraction must be between 0 and 1 (exclusive), not {valid_fraction}")
    ds = load_dataset(store, dataset)
    slots = plan(store, ds, teachers if teachers is not None else configured_teachers(cfg), only)
    chosen = choose_traces(store, events, ds, slots, only)
    kept = _filter(store, events, ds, slots, chosen, intersect=intersect, decontaminate=decontaminate)
    pool = kept.chosen
    if select is not None:
        from app.pipeline.select import select_traces

        kept.chosen, kept.selection = select_traces(
            cfg, store, events, ds.name, pool, select, top, adapter=adapter, project=project, rescore_pool=rescore_pool
        )
    train_ids, valid_ids = split_problems([slots[i].problem.id for i in kept.chosen], valid_fraction)
    if not valid_ids:
        events.message("only one problem to export: valid.jsonl is empty (mlx_lm training needs a validation set)")
    student = load_prompt("student_solve")
    r = _render(student, slots, kept.chosen, set(valid_ids))
    r.lines["test"] = _test_lines(student, store)
    for part, ids in (("train", train_ids), ("valid", valid_ids)):
        r.counts[part]["problems"] = len(ids)

    tokens = None
    if measure_tokens:
        try:
            tokens = token_lengths.measure(cfg, r.examples, student_model(cfg, project), job_cls=job_cls)
        except TailorError as e:
            events.message(f"token lengths not measured ({e}); training fits max_seq_length itself")
        else:
            for line in token_lengths.messages(tokens):
                events.message(line)
    data = {part: "".join(line + "\n" for line in lines).encode("utf-8") for part, lines in r.lines.items()}
    extra: dict[str, bytes] = {}
    if kept.selection and "dynamic" in kept.selection:
        from app.pipeline.select import dynamic_files

        extra = dynamic_files(cfg, store, student, slots, pool, kept.selection, valid_ids)
        kept.selection["dynamic"]["files"] = {n: hashlib.sha256(b).hexdigest() for n, b in extra.items()}
    manifest = _manifest(
        ds,
        slots,
        student,
        kept,
        r,
        data,
        train_ids,
        valid_ids,
        tokens,
        only=only,
        intersect=intersect,
        valid_fraction=valid_fraction,
        decontaminate=decontaminate,
    )
    out_dir = Path(out) if out is not None else default_out_dir(project, ds.name, only, intersect, select, top)
    paths = {part: out_dir / f"{part}.jsonl" for part in data}
    manifest_path = out_dir / "manifest.json"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        files = {**{paths[part]: data[part] for part in data}, **{out_dir / n: b for n, b in extra.items()}}
        _write_atomic({**files, manifest_path: manifest_bytes})
    except OSError as e:
        raise ExportError(f"{out_dir}: cannot write the export ({e.strerror or e})") from None
    if kept.selection:
        from app.pipeline.select import store_selection

        store_selection(store, kept.selection)
    result = ExportResult(
        out_dir=out_dir,
        train_path=paths["train"],
        valid_path=paths["valid"],
        manifest_path=manifest_path,
        train_examples=r.counts["train"]["examples"],
        valid_examples=r.counts["valid"]["examples"],
        train_problems=len(train_ids),
        valid_problems=len(valid_ids),
        manifest=manifest,
    )
    events.message(f"export: {result.summary()}")
    return result


def choose_traces(store: Store, events: Events, ds, slots, only: str | None) -> dict[int, Trace]:
    """{slot index: its trace}: the lowest accepted variant of each slot's teacher."""
    held_out = sorted({(s.problem.id, s.problem.split) for s in slots if s.problem.split != "train"})
    if held_out:
        shown = ", ".join(f"{pid} ({split})" for pid, split in held_out[:3])
        raise ExportError(
            f"dataset {ds.name!r} holds {len(held_out)} problem(s) outside the train split "
            f"({shown}{', ...' if len(held_out) > 3 else ''}); refusing to export them for training"
        )
    traces = slot_traces(store, slots)
    only_flag = f" --only {only}" if only else ""
    unverified = sum(1 for v in traces.values() for t in v.values() if t.verified is None)
    if unverified:
        raise ExportError(
            f"dataset {ds.name!r}: {unverified} teacher traces are not verified yet: "
            f"run `tailor verify --dataset {ds.name}{only_flag}` first"
        )
    untaught = sum(1 for v in traces.values() if not v)
    if untaught and any(traces.values()):
        events.message(
            f"{untaught} of {len(slots)} problem-teacher pairs have no trace "
            f"(run `tailor teach --dataset {ds.name}{only_flag}` to fill them)"
        )
    chosen: dict[int, Trace] = {}
    for i in range(len(slots)):
        ok = sorted(v for v, t in traces[i].items() if t.verified and t.text)
        if ok:
            chosen[i] = traces[i][ok[0]]
    if not chosen:
        hint = "none was accepted (see `tailor verify`)"
        if not any(traces.values()):
            hint = f"run `tailor teach --dataset {ds.name}{only_flag}` and `tailor verify` first"
        raise ExportError(
            f"dataset {ds.name!r}" + (f" (only {only})" if only else "") + f" has no verified traces to export: {hint}"
        )
    return chosen


@dataclass
class _Kept:
    """What the filters left, and what they took out (for the manifest)."""

    chosen: dict[int, Trace]
    verified_problems: set[str]
    leaked: set[str]
    near: set[str]
    by_intersect: int = 0
    placement: set[str] = field(default_factory=set)
    selection: dict | None = None


def _filter(
    store: Store, events: Events, ds, slots, chosen: dict[int, Trace], *, intersect: bool, decontaminate: bool
) -> _Kept:
    """The filters in turn, each dropping slots with one message; none may leave nothing."""

    def drop(out: set[int], said: str, empty: str) -> dict[int, Trace]:
        if out:
            events.message(said)
        kept = {i: t for i, t in chosen.items() if i not in out}
        if not kept:
            raise ExportError(f"dataset {ds.name!r}: {empty}")
        return kept

    def slots_of(problem_ids: set[str]) -> set[int]:
        return {i for i in chosen if slots[i].problem.id in problem_ids}

    verified_problems = {slots[i].problem.id for i in chosen}
    if intersect:
        team = {style: {t.key for t in teachers_in(slots) if t.style == style} for style in STYLES}
        solved: dict[tuple[str, str], set] = {}
        for i in chosen:
            solved.setdefault((slots[i].style, slots[i].problem.id), set()).add(slots[i].teacher.key)
        out = {i for i in chosen if solved[(slots[i].style, slots[i].problem.id)] != team[slots[i].style]}
        chosen = drop(
            out,
            f"--intersect: {len(out)} traces left out (problems not solved by every teacher)",
            "no problem was solved by every teacher (--intersect)",
        )
    by_intersect = len(verified_problems) - len({slots[i].problem.id for i in chosen})

    held_questions = {
        normalised(p.question) for split in ("valid", "test", "placement") for p in store.problems(split=split)
    }
    leaked = {slots[i].problem.id for i in chosen if normalised(slots[i].problem.question) in held_questions}
    chosen = drop(
        slots_of(leaked),
        f"{len(leaked)} problems left out: their question is also a valid/test/placement "
        f"problem's (e.g. {min(leaked, default='')})",
        "every verified problem duplicates a held-out question",
    )

    from app.contamination import contaminated_ids, find_contamination

    near = contaminated_ids(find_contamination(store.problems())) & {slots[i].problem.id for i in chosen}
    if decontaminate:
        chosen = drop(
            slots_of(near),
            f"--decontaminate: {len(near)} problems left out: they overlap a test or "
            "benchmark question (exact or 13-gram; `tailor contamination` lists the pairs)",
            "every verified problem overlaps a test or benchmark question",
        )
    elif near:
        events.message(
            f"warning: {len(near)} exported problems overlap a test or benchmark question (exact or "
            f"13-gram); `tailor contamination` lists them, `export --decontaminate` leaves them out"
        )
    placement = {r["problem_id"] for r in store.placement().values()}
    out = slots_of(placement)
    chosen = drop(
        out,
        f"{len({slots[i].problem.id for i in out})} problems left out: they hold the placement test "
        "(`tailor score`), which is never trained on",
        "every verified problem holds the placement test",
    )
    return _Kept(chosen, verified_problems, leaked, near, by_intersect, placement & verified_problems)


@dataclass
class _Rendered:
    lines: dict[str, list[str]]
    examples: list[dict]  # train and valid, as chat rows (what the token count measures)
    counts: dict[str, dict]
    by_teacher: Counter
    with_reasoning: Counter  # examples whose teacher's reasoning leads the CoT
    trace_ids: list[int]
    consistency_checked: bool


def example_messages(student, problem, trace: Trace, keeps_reasoning: bool) -> list[dict]:
    """One trace as the chat example the student is trained on (and `tailor score` scores):
    the student prompt, then the normalised CoT as the assistant turn."""
    messages = student.render(question=problem.question)
    cot = trace.text or ""
    if keeps_reasoning and (trace.reasoning or "").strip():
        cot = f"{trace.reasoning.strip()}\n\n{split_think(cot)[0] or ''}"
    messages.append({"role": "assistant", "content": format_cot(cot, problem.answer)})
    return messages


def _render(student, slots, chosen: dict[int, Trace], valid_set: set[str]) -> _Rendered:
    """Each chosen trace as the chat example the student is trained on."""
    r = _Rendered(
        lines={"train": [], "valid": []},
        examples=[],
        counts={
            p: {"examples": 0, "problems": 0, "by_grade": Counter(), "by_style": Counter()} for p in ("train", "valid")
        },
        by_teacher=Counter(),
        with_reasoning=Counter(),
        trace_ids=[],
        consistency_checked=False,
    )
    for i in sorted(chosen, key=lambda i: (slots[i].problem.id, slots[i].teacher.label)):
        s, trace = slots[i], chosen[i]
        part = "valid" if s.problem.id in valid_set else "train"
        messages = example_messages(student, s.problem, trace, s.teacher.keeps_reasoning)
        if s.teacher.keeps_reasoning and (trace.reasoning or "").strip():
            r.with_reasoning[s.teacher.label] += 1
        r.examples.append({"messages": messages})
        r.lines[part].append(json.dumps(r.examples[-1], ensure_ascii=False))
        c = r.counts[part]
        c["examples"] += 1
        c["by_grade"][s.grade or "ungraded"] += 1
        c["by_style"][s.style] += 1
        r.by_teacher[(s.style, s.teacher.label)] += 1
        if trace.id is not None:
            r.trace_ids.append(trace.id)
        r.consistency_checked |= trace.consistent is not None
    return r


def _test_lines(student, store: Store) -> list[str]:
    """The test split in the same chat format, the reference solution as the answer, so that
    `mlx_lm lora --test --data DIR` reports a test loss. Never used for training."""
    out = []
    for p in sorted(store.problems(split="test"), key=lambda p: p.id):
        messages = student.render(question=p.question)
        messages.append({"role": "assistant", "content": format_cot(p.solution or "", p.answer)})
        out.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return out


def _manifest(
    ds,
    slots,
    student,
    kept: _Kept,
    r: _Rendered,
    data: dict[str, bytes],
    train_ids,
    valid_ids,
    tokens,
    *,
    only,
    intersect,
    valid_fraction,
    decontaminate,
) -> dict:
    prompts = {"student_solve": student.hash}
    for t in teachers_in(slots):
        if t.prompt is not None:
            prompts[f"teach_{t.style}"] = t.prompt_hash
    if r.consistency_checked:
        prompts["verify"] = load_prompt("verify").hash
    counts = r.counts
    return {
        "dataset": ds.name,
        "strategy": ds.strategy,
        "k": ds.k,
        "seed": ds.seed,
        "only": only,
        "intersect": intersect,
        "valid_fraction": valid_fraction,
        "contamination": {"decontaminated": decontaminate, "overlapping_problems": sorted(kept.near)},
        "placement_problems_left_out": sorted(kept.placement),
        "selection": kept.selection,
        # Per stratum: what was sampled (with refills), and what verification let through.
        "sampled_by_grade": dict(Counter(item.grade or "ungraded" for item in ds.items)),
        "refill": ds.params.get("refill"),
        "created_at": now(),
        "format": "mlx_lm chat JSONL: {messages: [system, user, assistant]}",
        "counts": {
            "items": len(ds.items),
            "items_by_grade": dict(Counter(item.grade or "ungraded" for item in ds.items)),
            "items_by_route": dict(Counter(item.route for item in ds.items)),
            "problems_exported": len(train_ids) + len(valid_ids),
            "items_without_verified_trace": len(ds.items) - len(kept.verified_problems),
            "left_out_by_intersect": kept.by_intersect,
            "left_out_duplicate_of_held_out": len(kept.leaked),
            "examples": counts["train"]["examples"] + counts["valid"]["examples"],
            "by_grade": dict(counts["train"]["by_grade"] + counts["valid"]["by_grade"]),
            "by_style": dict(counts["train"]["by_style"] + counts["valid"]["by_style"]),
            **{part: {k: dict(v) if isinstance(v, Counter) else v for k, v in c.items()} for part, c in counts.items()},
        },
        "tokens": tokens,  # in the student's tokens; see app/pipeline/token_lengths.py
        "prompts": prompts,
        "teachers": [
            {
                "style": t.style,
                "provider": t.name,
                "model": t.model,
                "role": t.role,
                "prompt_hash": t.prompt_hash or None,
                "examples": r.by_teacher[(t.style, t.label)],
                "keep_reasoning": "as-cot" if t.keeps_reasoning else "drop",
                "examples_with_reasoning": r.with_reasoning[t.label],
            }
            for t in teachers_in(slots)
        ],
        "valid_problem_ids": valid_ids,
        "trace_ids": sorted(r.trace_ids),
        "files": {
            f"{part}.jsonl": {"examples": len(r.lines[part]), "sha256": hashlib.sha256(data[part]).hexdigest()}
            for part in data
        },
    }
