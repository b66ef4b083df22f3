"""`tailor import`: read a problem file, validate every row, store all of it or nothing.

Formats: GSM8K (question, answer ending in `#### x`), MATH (problem, solution with
\\boxed{}, level, type), MATH-500 (problem, answer, solution, subject, level), AIME
(problem/Problem, answer/Answer, year/Year) and plain JSONL/CSV (question, answer, optional
solution, category, section, year, difficulty, split), as JSONL, a JSON array, CSV or
Parquet (how Hugging Face datasets ship). A directory (a Hugging Face dataset download)
imports every such file in it, each file's split from its name (train-…, test-…,
validation-…) unless --split says otherwise, all in one transaction. A problem's id is a
hash of its content, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from app.errors import ImportFileError
from app.events import Events, RecordingEvents
from app.records import SPLITS, Problem
from app.store import Store

FORMATS = ("jsonl", "csv", "gsm8k", "math", "math500", "aime")
MAX_FIELD_CHARS = 100_000
IMPORT_CHUNK = 5_000  # problems per insert between progress reports
_CALC = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations: 48/2=<<48/2=24>>24
BOM = "\ufeff"
# Columns of a plain CSV (header names, case-insensitive), as `to_problem` reads them:
# each entry is a column and the other names it may go by.
CSV_REQUIRED = (("question", "problem"), ("answer",))
CSV_OPTIONAL = (
    ("solution",),
    ("category", "subject", "type"),
    ("section",),
    ("year",),
    ("difficulty", "level"),
    ("split",),
)


@dataclass
class ImportResult:
    path: Path
    format: str
    rows: int
    new: int
    moved: int = 0  # existing problems moved to this file's split (--resplit)

    @property
    def present(self) -> int:
        return self.rows - self.new


def problem_id(question: str, answer: str) -> str:
    digest = hashlib.sha256(f"{question.strip()}\n{answer.strip()}".encode()).hexdigest()
    return digest[:16]


class RowError(Exception):
    pass


def _lower_keys(row: dict) -> dict:
    return {str(k).strip().lower(): v for k, v in row.items()}


def _text(row: dict, *keys: str, required: bool = True) -> str | None:
    for k in keys:
        v = row.get(k)
        if v is None or (isinstance(v, str) and v == ""):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise RowError(f"field {k!r} must be text, got {type(v).__name__}")
        v = v.strip()
        if not v:
            continue
        if len(v) > MAX_FIELD_CHARS:
            raise RowError(f"field {k!r} is {len(v)} characters (limit {MAX_FIELD_CHARS})")
        return v
    if required:
        raise RowError(f"missing or empty {keys[0]!r}")
    return None


def _int(value, key: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowError(f"field {key!r} must be an integer")
    if isinstance(value, int):
        return value
    m = re.search(r"-?\d+", str(value))  # "Level 3" -> 3
    if not m:
        raise RowError(f"field {key!r} must be an integer, got {value!r}")
    return int(m.group())


def _last_boxed(text: str) -> str | None:
    # Deferred import: answers pulls in math-verify, which is slow to import.
    from app.answers import extract_answer

    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    return extract_answer(text)


def _split(row: dict, default: str | None, override: str | None) -> str:
    split = override or row.get("split") or default or "train"
    if split not in SPLITS:
        raise RowError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    return split


def to_problem(
    raw: dict, fmt: str, source: str, split_override: str | None, default_split: str | None = None
) -> Problem:
    row = _lower_keys(raw)
    if fmt == "gsm8k":
        question = _text(row, "question")
        full = _text(row, "answer")
        if "####" not in full:
            raise RowError("GSM8K answer has no '#### <answer>' line")
        solution, answer = full.rsplit("####", 1)
        answer = answer.strip().replace(",", "")
        if not answer:
            raise RowError("GSM8K answer is empty after '####'")
        solution = _CALC.sub("", solution).strip() + f"\nThe answer is \\boxed{{{answer}}}."
        fields = dict(question=question, answer=answer, solution=solution)
    elif fmt == "math":
        question = _text(row, "problem")
        solution = _text(row, "solution")
        answer = _text(row, "answer", required=False) or _last_boxed(solution)
        if not answer:
            raise RowError("MATH solution has no \\boxed{...} answer")
        fields = dict(
            question=question,
            answer=answer,
            solution=solution,
            category=_text(row, "type", "subject", required=False),
            difficulty=_int(row.get("level"), "level"),
        )
    elif fmt == "math500":
        fields = dict(
            question=_text(row, "problem"),
            answer=_text(row, "answer"),
            solution=_text(row, "solution", required=False),
            category=_text(row, "subject", "type", required=False),
            difficulty=_int(row.get("level"), "level"),
        )
    elif fmt == "aime":
        fields = dict(
            question=_text(row, "problem", "question"),
            answer=_text(row, "answer"),
            solution=_text(row, "solution", required=False),
            category="aime",
            year=_int(row.get("year"), "year"),
        )
    else:  # jsonl / csv
        fields = dict(
            question=_text(row, "question", "problem"),
            answer=_text(row, "answer"),
            solution=_text(row, "solution", required=False),
            category=_text(row, "category", "subject", "type", required=False),
            section=_text(row, "section", required=False),
            year=_int(row.get("year"), "year"),
            difficulty=_int(row.get("difficulty", row.get("level")), "difficulty"),
        )
    split = _split(row, default_split, split_override)
    return Problem(
        id=problem_id(fields["question"], fields["answer"]),
        split=split,
        source=source,
        **fields,
    )


def detect_format(path: Path, first: dict | None) -> str:
    if path.suffix.lower() == ".csv":
        return "csv"
    if first is None:
        return "jsonl"
    row = _lower_keys(first)
    if "question" in row and isinstance(row.get("answer"), str) and "####" in row["answer"]:
        return "gsm8k"
    if "problem" in row and "solution" in row and "answer" not in row:
        return "math"
    if "problem" in row and "answer" in row and ("subject" in row or "unique_id" in row):
        return "math500"
    if "problem" in row and "answer" in row and "year" in row:
        return "aime"
    if "question" in row and "answer" in row:
        return "jsonl"
    raise ImportFileError(
        f"{path}:1: cannot tell the format from keys {sorted(row)}; pass --format {{{','.join(FORMATS)}}}"
    )


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImportFileError(f"{path}: cannot read ({e.strerror})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError(f"{path}:1: UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    lines = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise ImportFileError(f"{path}:{n}: not valid UTF-8 (byte {e.start})") from None
        if n == 1:
            line = line.removeprefix(BOM)  # Excel and Notepad write one; it is not part of the first field
        lines.append((n, line))
    return lines


def _jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for n, line in _read_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ImportFileError(f"{path}:{n}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise ImportFileError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
        rows.append((n, obj))
    return rows


def _json_array_rows(path: Path) -> list[tuple[int, dict]]:
    text = "\n".join(line for _, line in _read_lines(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportFileError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise ImportFileError(f"{path}:1: expected a JSON array of objects")
    rows = []
    for i, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise ImportFileError(f"{path}: item {i}: expected a JSON object")
        rows.append((i, obj))
    return rows


def _columns(spec: tuple[tuple[str, ...], ...]) -> str:
    return ", ".join(names[0] + (f" (or {', '.join(names[1:])})" if names[1:] else "") for names in spec)


def _check_csv_header(path: Path, fieldnames: list[str]) -> None:
    """The header row (line 1) must name every required column, each once; unknown columns are
    ignored, as unknown JSONL keys are. One error saying what is wrong and what is expected."""
    found = [str(k).strip().lower() for k in fieldnames]
    missing = [names[0] for names in CSV_REQUIRED if not any(n in found for n in names)]
    twice = sorted({k for k in found if k and found.count(k) > 1})
    if not missing and not twice:
        return
    if missing:
        what = f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
    else:
        what = f"column{'s' if len(twice) > 1 else ''} {', '.join(map(repr, twice))} given more than once"
    shown = ", ".join(map(repr, fieldnames)) if any(found) else "no column names"
    hint = ""
    if len(fieldnames) == 1 and (sep := next((c for c in ";\t|" if c in fieldnames[0]), None)):
        hint = f"; the columns look separated by {sep!r}, but tailor reads comma-separated CSV"
    raise ImportFileError(
        f"{path}:1: bad CSV header: {what} (found {shown}{hint}); expected required columns "
        f"{_columns(CSV_REQUIRED)} and optional columns {_columns(CSV_OPTIONAL)}"
    )


def _csv_rows(path: Path) -> list[tuple[int, dict]]:
    text = "\n".join(line for _, line in _read_lines(path))
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    try:
        if reader.fieldnames is None:  # an empty file
            return rows
        _check_csv_header(path, reader.fieldnames)
        for obj in reader:
            if None in obj:  # more cells than header columns
                raise ImportFileError(f"{path}:{reader.line_num}: more values than header columns")
            if not any((v or "").strip() for v in obj.values()):
                continue
            rows.append((reader.line_num, obj))
    except csv.Error as e:
        raise ImportFileError(f"{path}:{reader.line_num}: {e}") from None
    return rows


def _parquet_rows(path: Path) -> list[tuple[int, dict]]:
    """Rows of a Parquet file (how Hugging Face datasets ship), numbered from 1."""
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except ImportError:
        raise ImportFileError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as e:  # pyarrow's errors for a truncated or non-Parquet file
        raise ImportFileError(f"{path}: not a readable Parquet file ({' '.join(str(e).split())[:200]})") from None
    return list(enumerate(table.to_pylist(), start=1))


def split_of_file(path: Path) -> str | None:
    """The split a Hugging Face dataset file's name gives ("train-00000-of-00001.parquet",
    "test.jsonl", "validation-…"), else None."""
    stem = path.name.lower()
    for prefix, split in (
        ("train", "train"),
        ("test", "test"),
        ("validation", "valid"),
        ("valid", "valid"),
        ("dev", "valid"),
    ):
        if stem.startswith(prefix) and (len(stem) == len(prefix) or not stem[len(prefix)].isalpha()):
            return split
    return None


DATASET_FILES = ("*.parquet", "*.jsonl", "*.json", "*.csv")


def dataset_files(directory: Path) -> list[Path]:
    """The problem files of a dataset directory (a Hugging Face dataset download), recursively."""
    files = sorted({f for pattern in DATASET_FILES for f in directory.rglob(pattern) if not f.name.startswith(".")})
    if not files:
        raise ImportFileError(f"{directory}: no {', '.join(DATASET_FILES)} files in this directory")
    return files


def read_problems(
    path: Path,
    fmt: str | None = None,
    split: str | None = None,
    source: str | None = None,
    default_split: str | None = None,
) -> tuple[str, list[Problem]]:
    """Parse and validate a whole file. Raises ImportFileError naming FILE:LINE (a row
    number for Parquet)."""
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise ImportFileError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if split is not None and split not in SPLITS:
        raise ImportFileError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")
    if path.suffix.lower() == ".parquet":
        rows = _parquet_rows(path)
    elif fmt == "csv" or (fmt is None and path.suffix.lower() == ".csv"):
        rows = _csv_rows(path)
    elif path.suffix.lower() == ".json":
        rows = _json_array_rows(path)
    else:
        rows = _jsonl_rows(path)
    if not rows:
        raise ImportFileError(f"{path}: no problems in file")
    fmt = fmt or detect_format(path, rows[0][1])
    source = source or path.stem
    problems = []
    for n, row in rows:
        try:
            problems.append(to_problem(row, fmt, source, split, default_split))
        except RowError as e:
            raise ImportFileError(f"{path}:{n}: {e}") from None
    return fmt, problems


def import_file(
    store: Store,
    path: Path,
    fmt: str | None = None,
    split: str | None = None,
    source: str | None = None,
    resplit: bool = False,
    events: Events | None = None,
) -> ImportResult:
    path = Path(path)
    events = events or RecordingEvents()
    if path.is_dir():  # every file of a dataset directory, each split from its file name; one transaction
        formats, problems = set(), []
        for f in dataset_files(path):
            got_fmt, got = read_problems(f, fmt, split, source or path.name, default_split=split_of_file(f))
            formats.add(got_fmt)
            problems += got
        fmt = "+".join(sorted(formats))
    else:
        fmt, problems = read_problems(path, fmt, split, source)
    events.message(f"{path}: {len(problems):,} problems read ({fmt}); checking them against the store")
    moves = cross_split(store.problems(), problems, path, resplit)
    events.start("import", len(problems))
    new = 0
    with store.transaction():  # chunked for progress, one transaction: all or nothing
        for old_id, new_split in moves.items():
            store.set_split(old_id, new_split)
        for i in range(0, len(problems), IMPORT_CHUNK):
            new += store.insert_problems(problems[i : i + IMPORT_CHUNK])
            events.advance(min(IMPORT_CHUNK, len(problems) - i))
    result = ImportResult(path=Path(path), format=fmt, rows=len(problems), new=new, moved=len(moves))
    events.done(f"{new:,} new")
    return result


def cross_split(existing: list[Problem], incoming: list[Problem], path: Path, resplit: bool) -> dict[str, str]:
    """{existing problem id: the split it moves to}. A question (normalised) may live in one
    split only: otherwise a benchmark imported as test would silently stay train (same id,
    "already present") or sit in both. Refused unless `resplit` moves it explicitly."""
    from app.contamination import normalised

    where: dict[str, Problem] = {}
    for p in existing:
        where.setdefault(normalised(p.question), p)
    stored = {p.id for p in existing}
    moves: dict[str, str] = {}
    for p in incoming:
        key = normalised(p.question)
        q = where.get(key)
        if q is None:
            where[key] = p
        elif q.split != p.split:
            if not resplit or q.id not in stored:
                raise ImportFileError(
                    f"{path}: problem {p.id} ({p.split}) has the question of problem {q.id}, already in split "
                    f"{q.split!r}; a question lives in one split only — remove one, or import with --resplit "
                    f"to move it to {p.split!r}"
                )
            moves[q.id] = p.split
    return moves
