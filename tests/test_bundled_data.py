"""The bundled problem set (data/problems.jsonl) is up to date, well-formed and consistent."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
FILE = DATA / "problems.jsonl"
KEYS = {"question", "answer", "solution", "category", "section", "difficulty", "split"}
SPLITS = ("train", "valid", "test", "placement")
FINAL = re.compile(r"The answer is \\boxed\{(.*)\}\.\Z")
FRAC = re.compile(r"\\frac\{(-?\d+)\}\{(\d+)\}")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in FILE.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("bundled_generate", DATA / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while it loads
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_file_is_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(DATA / "generate.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr or proc.stdout


def test_rows_and_keys(rows):
    assert len(rows) >= 400
    for row in rows:
        assert set(row) == KEYS, row
        assert all(isinstance(row[k], str) and row[k] for k in KEYS - {"difficulty"}), row
        assert isinstance(row["difficulty"], int) and 1 <= row["difficulty"] <= 6, row
        assert row["section"] in ("main", "speed") and row["split"] in SPLITS, row


def test_categories_sections_and_splits(rows):
    categories = {row["category"] for row in rows}
    assert len(categories) >= 6
    assert sum(row["section"] == "speed" for row in rows) >= 60
    present = {(row["split"], row["category"]) for row in rows}
    for split in SPLITS:
        for category in categories:
            assert (split, category) in present, (split, category)


def test_final_boxed_answer_matches_answer(rows):
    for row in rows:
        last = row["solution"].splitlines()[-1]
        m = FINAL.match(last)
        assert m, last
        boxed = FRAC.sub(r"\1/\2", m.group(1))  # "-\frac{3}{4}" -> "-3/4"
        assert boxed == row["answer"], (boxed, row["answer"])


def test_questions_unique(rows):
    dupes = [q for q, n in Counter(row["question"] for row in rows).items() if n > 1]
    assert not dupes


def test_readme_tables_match_file(rows, generator):
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert generator.split_table(rows) in readme
    assert generator.difficulty_table(rows) in readme
