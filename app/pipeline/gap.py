"""`tailor gap`: the capacity-gap paper's cheap proxy for where distillation will pay.

Input: a CSV with the header ``task,model,role,accuracy`` (any order, any case; extra
columns are ignored), one row per (task, model, role), role ``student`` or ``teacher``.
For each task: the teachers' average accuracy, the students' average, and
gap = teacher average − student average in points. Tasks whose gap is *strictly*
greater than the threshold (default 30 points) are where distillation is likely to pay;
a gap exactly at the threshold does not count. Averages and the comparison use the
values exactly as written in decimal (fractions.Fraction), so 80 − 50 is exactly 30 and
a file of 0.8 / 0.5 gives the same tie, with no float rounding either way.

Scale: the whole file is read as fractions (0–1, multiplied by 100) when every value is
at most 1 and none ends in ``%``; otherwise as percent (0–100). A percent file must not
hold bare values strictly between 0 and 1 (0.65 next to 72 is almost surely a fraction
among percentages): that is an error; write ``0.5%`` for a real half-percent score.

Also `teacher_choice`, the protocol's other rule: keep every teacher's verified
examples unless the strongest teacher has at least 1.3× as many as the next one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from app.errors import TailorError

COLUMNS = ("task", "model", "role", "accuracy")
ROLES = ("student", "teacher")
DEFAULT_THRESHOLD = 30.0
TEACHER_RATIO = 1.3
# A plain decimal, optionally with an exponent and a trailing %; no "1/2", "nan", "inf".
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class GapError(TailorError):
    """A bad scores file or argument; the message starts with FILE:LINE when there is one."""


@dataclass(frozen=True)
class ScoreRow:
    task: str
    model: str
    role: str  # "student" | "teacher"
    accuracy: float  # points, 0–100
    line: int | None = None
    # The value as written, in points; gap_table compares this so ties are exact.
    exact: Fraction | None = field(default=None, compare=False, repr=False)
    scale: str | None = None  # "percent" | "fraction" as read from the file


# -- reading ---------------------------------------------------------------------------


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GapError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return data.decode("utf-8-sig")  # -sig: spreadsheet exports often start with a BOM
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise GapError(f"{path}:{line}: not valid UTF-8") from None


def _header(path: Path, line: int, cells: list[str]) -> dict[str, int]:
    names = [c.strip().lower() for c in cells]
    for name in COLUMNS:
        if names.count(name) > 1:
            raise GapError(f"{path}:{line}: column {name!r} appears twice in the header")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise GapError(
            f"{path}:{line}: missing column(s) {', '.join(missing)}; the header must name {','.join(COLUMNS)}"
        )
    return {name: names.index(name) for name in COLUMNS}


def _accuracy(path: Path, line: int, text: str) -> tuple[Fraction, bool]:
    """(value as written, has a % sign); range-checked against 0–100."""
    percent = text.endswith("%")
    body = text[:-1].strip() if percent else text
    if not _NUMBER.fullmatch(body):
        raise GapError(f"{path}:{line}: accuracy {text!r} is not a number")
    value = Fraction(body)
    if value < 0 or value > 100:
        raise GapError(f"{path}:{line}: accuracy {text!r} is out of range (0–100 percent or 0–1 fraction)")
    return value, percent


def read_scores(path: Path | str) -> list[ScoreRow]:
    """Parse and validate a scores CSV; raises GapError naming FILE:LINE."""
    path = Path(path)
    reader = csv.reader(io.StringIO(_decode(path), newline=""))
    header, parsed, seen = None, [], {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines
            if header is None:
                header, header_line, width = _header(path, line, cells), line, len(cells)
                continue
            if any(c.strip() for c in cells[width:]):  # trailing empty cells are harmless
                raise GapError(f"{path}:{line}: more values than header columns")
            values = {}
            for name, i in header.items():
                v = cells[i].strip() if i < len(cells) else ""
                if not v:
                    raise GapError(f"{path}:{line}: empty {name}")
                values[name] = v
            role = values["role"].lower()
            if role not in ROLES:
                raise GapError(f"{path}:{line}: role {values['role']!r} must be student or teacher")
            key = (values["task"], values["model"], role)
            if key in seen:
                raise GapError(
                    f"{path}:{line}: duplicate row for task {key[0]!r}, model {key[1]!r}, "
                    f"role {role} (first at line {seen[key]})"
                )
            seen[key] = line
            value, percent = _accuracy(path, line, values["accuracy"])
            parsed.append((line, key, values["accuracy"], value, percent))
    except csv.Error as e:
        raise GapError(f"{path}:{reader.line_num}: {e}") from None
    if header is None:
        raise GapError(f"{path}:1: empty file; expected the header {','.join(COLUMNS)}")
    if not parsed:
        raise GapError(f"{path}:{header_line}: no score rows after the header")

    percent_file = any(pct or value > 1 for _, _, _, value, pct in parsed)
    rows = []
    for line, (task, model, role), text, value, pct in parsed:
        if percent_file and not pct and 0 < value < 1:
            example = next(ln for ln, _, _, v, p in parsed if p or v > 1)
            raise GapError(
                f"{path}:{line}: accuracy {text!r} looks like a fraction, but the file is in percent "
                f"(e.g. line {example}); use one scale, or write {text}% for a real percentage"
            )
        points = value if percent_file else value * 100
        rows.append(ScoreRow(task, model, role, float(points), line, points, "percent" if percent_file else "fraction"))
    return rows


# -- the table -------------------------------------------------------------------------


@dataclass
class ModelScore:
    model: str
    accuracy: float


@dataclass
class TaskGap:
    task: str
    n_teachers: int
    n_students: int
    teacher_avg: float
    student_avg: float
    gap: float  # points
    above_threshold: bool
    teachers: list[ModelScore]
    students: list[ModelScore]


@dataclass
class SkippedTask:
    task: str
    reason: str
    n_teachers: int
    n_students: int


@dataclass
class GapResult:
    threshold: float
    tasks: list[TaskGap]  # tasks with both roles, gap descending (ties: task name)
    skipped: list[SkippedTask]
    scale: str | None = None  # the file's scale, when the rows came from read_scores

    @property
    def selected(self) -> list[TaskGap]:
        return [t for t in self.tasks if t.above_threshold]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unit"] = "points"
        d["rule"] = "gap > threshold (strictly; a gap equal to the threshold is not selected)"
        d["selected"] = [t.task for t in self.selected]
        return d


def _exact(x) -> Fraction:
    if isinstance(x, float):
        # repr() is the shortest decimal that round-trips, i.e. what a person typed:
        # 30.1 -> 301/10, where Fraction(30.1) would be the binary 30.10000000000000142...
        return Fraction(repr(x))
    return Fraction(x)  # Fraction, int, or a decimal string


def _threshold(threshold, name: str = "--threshold", unit: str = "points") -> Fraction:
    try:
        ok = math.isfinite(float(threshold))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise GapError(f"{name} {threshold!r}: expected a finite number of {unit}")
    return _exact(threshold)


def gap_table(rows: list[ScoreRow], threshold: float = DEFAULT_THRESHOLD) -> GapResult:
    limit = _threshold(threshold)
    by_task: dict[str, dict[str, list[tuple[str, Fraction]]]] = {}
    seen = set()
    for r in rows:
        where = f"line {r.line}" if r.line else f"task {r.task!r}, model {r.model!r}"
        value = r.exact if r.exact is not None else _exact(r.accuracy)
        if r.role not in ROLES:
            raise GapError(f"{where}: role {r.role!r} must be student or teacher")
        if not 0 <= value <= 100:
            raise GapError(f"{where}: accuracy {r.accuracy} is outside 0–100 points")
        if (r.task, r.model, r.role) in seen:
            raise GapError(f"{where}: duplicate row for task {r.task!r}, model {r.model!r}, role {r.role}")
        seen.add((r.task, r.model, r.role))
        by_task.setdefault(r.task, {"teacher": [], "student": []})[r.role].append((r.model, value))

    tasks, skipped = [], []
    for task, roles in by_task.items():
        t, s = roles["teacher"], roles["student"]
        if not t or not s:
            reason = "no teacher rows" if not t else "no student rows"
            skipped.append(SkippedTask(task, reason, len(t), len(s)))
            continue
        t_avg = sum(v for _, v in t) / len(t)
        s_avg = sum(v for _, v in s) / len(s)
        gap = t_avg - s_avg
        tasks.append(
            (
                gap,
                TaskGap(
                    task,
                    len(t),
                    len(s),
                    float(t_avg),
                    float(s_avg),
                    float(gap),
                    gap > limit,
                    [ModelScore(m, float(v)) for m, v in t],
                    [ModelScore(m, float(v)) for m, v in s],
                ),
            )
        )
    tasks.sort(key=lambda p: (-p[0], p[1].task))
    scales = {r.scale for r in rows}
    return GapResult(float(threshold), [t for _, t in tasks], skipped, scales.pop() if len(scales) == 1 else None)


def format_gap(result: GapResult) -> str:
    thr = f"{result.threshold:g}"
    lines = []
    if result.tasks:
        head = ["task", "teachers", "teacher avg", "students", "student avg", "gap", f"gap > {thr}"]
        body = [
            [
                t.task,
                str(t.n_teachers),
                f"{t.teacher_avg:.2f}",
                str(t.n_students),
                f"{t.student_avg:.2f}",
                f"{t.gap:.2f}",
                "yes" if t.above_threshold else "no",
            ]
            for t in result.tasks
        ]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        for r in [head, *body]:
            cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:-1], widths[1:-1])] + [r[-1]]
            lines.append("  ".join(cells).rstrip())
    else:
        lines.append("no task has both a teacher and a student score")
    for s in result.skipped:
        lines.append(f"skipped {s.task}: {s.reason}")
    chosen = [t.task for t in result.selected]
    if chosen:
        lines.append(
            f"{len(chosen)} of {len(result.tasks)} tasks have a teacher−student gap above {thr} points "
            f"(distillation likely to pay): {', '.join(chosen)}"
        )
    elif result.tasks:
        lines.append(f"no task has a teacher−student gap above {thr} points (a gap equal to it does not count)")
    return "\n".join(lines)


def gap_command(
    scores: Path | str | None, threshold: float = DEFAULT_THRESHOLD, as_json: bool = False, store=None
) -> str:
    """What `tailor gap` prints: from a scores file, or from the store's few-shot answers
    (`tailor eval --shots N --teachers`) when no file is given."""
    notes: list[str] = []
    if scores is not None:
        rows = read_scores(scores)
    else:
        from app.pipeline.fewshot import fewshot_rows

        rows, notes = fewshot_rows(store)
    result = gap_table(rows, threshold)
    if as_json:
        return json.dumps({**result.to_dict(), "notes": notes}, indent=2, allow_nan=False)
    return "\n".join([*notes, format_gap(result)])


# -- teacher choice --------------------------------------------------------------------


def teacher_choice(
    verified_counts: dict[str, int], accuracies: dict[str, float] | None = None, ratio_threshold: float = TEACHER_RATIO
) -> dict:
    """Keep every teacher's examples, or prefer the strongest when it has ≥ ratio× more.

    Compare teachers that were given the same problems (e.g. two short-CoT teachers):
    the verified-example count is then their accuracy on those problems. Teachers rank by
    count, ties broken by accuracy (when given) and then name; ratio = strongest's count /
    the next one's. A tie at the top gives ratio 1: keep every teacher's examples. A next
    teacher with 0 verified examples makes the ratio infinite (reported as None): prefer.
    """
    if not verified_counts:
        raise GapError("teacher choice needs at least one teacher")
    limit = _threshold(ratio_threshold, "ratio_threshold", "times")
    for name, n in verified_counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise GapError(f"teacher {name!r}: verified count must be a non-negative integer, got {n!r}")
    acc = dict(accuracies or {})
    missing = sorted(set(verified_counts) - set(acc)) if accuracies is not None else []
    if missing:
        raise GapError(f"accuracies missing for teacher(s) {', '.join(missing)}")
    ranked = sorted(verified_counts, key=lambda k: (-verified_counts[k], -acc.get(k, 0.0), k))
    teachers = [{"name": k, "verified": verified_counts[k], "accuracy": acc.get(k)} for k in ranked]
    best = ranked[0]
    out = {
        "teachers": teachers,
        "strongest": best,
        "next": None,
        "ratio": None,
        "ratio_threshold": float(ratio_threshold),
        "prefer_strongest": False,
        "recommendation": "keep every teacher's examples",
        "reason": "",
    }
    if len(ranked) == 1:
        out["reason"] = f"only one teacher ({best})"
        return out
    nxt = ranked[1]
    out["next"] = nxt
    top, second = verified_counts[best], verified_counts[nxt]
    if top == 0:
        out["reason"] = "no teacher has verified examples"
        return out
    ratio = Fraction(top, second) if second else None  # None: infinitely many times more
    if ratio is not None:
        out["ratio"] = float(ratio)
    if ratio is None or ratio >= limit:
        out["prefer_strongest"] = True
        out["recommendation"] = f"prefer the stronger teacher ({best})"
        out["reason"] = f"{best} has {top} verified examples vs {second} for {nxt}" + (
            f" ({float(ratio):.2f}× ≥ {ratio_threshold:g}×)" if ratio is not None else ""
        )
    else:
        out["reason"] = (
            f"{best} has {top} verified examples vs {second} for {nxt} ({float(ratio):.2f}× < {ratio_threshold:g}×)"
        )
    return out
