"""Clean splits: a question lives in one split (import refuses, or --resplit moves it), and
train/valid problems near a test or benchmark question are found, listed and left out."""

import json

import pytest

from app.cli import main
from app.config import DB_NAME
from app.contamination import find_contamination
from app.errors import ImportFileError
from app.pipeline.importing import import_file
from app.records import Problem
from app.store import Store

LONG_Q = (
    "A train leaves the station at nine in the morning travelling at sixty miles per hour "
    "towards a city that is three hundred miles away; how many hours does the journey take"
)


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_question_already_in_another_split_is_refused_naming_both(store, tmp_path):
    import_file(store, write(tmp_path / "a.jsonl", [{"question": "What is 2+2?", "answer": "4", "split": "train"}]))
    bench = write(tmp_path / "bench.jsonl", [{"question": "what is  2+2 ?", "answer": "4"}])
    msg = r"bench.jsonl: problem \w+ \(test\) has the question of problem \w+, already in split 'train'"
    with pytest.raises(ImportFileError, match=msg):
        import_file(store, bench, split="test", source="bench")
    assert {p.split for p in store.problems()} == {"train"} and len(store.problems()) == 1  # nothing written
    res = import_file(store, bench, split="test", source="bench", resplit=True)
    assert res.moved == 1 and {p.split for p in store.problems()} == {"test"}


def test_the_same_question_twice_in_one_file_with_two_splits_is_refused(store, tmp_path):
    rows = [
        {"question": "What is 3+3?", "answer": "6", "split": "train"},
        {"question": "What is 3+3?", "answer": "6.0", "split": "test"},
    ]
    with pytest.raises(ImportFileError, match="a question lives in one split only"):
        import_file(store, write(tmp_path / "b.jsonl", rows))
    assert store.problems() == []


def p(pid, question, split, source="bundled"):
    return Problem(id=pid, question=question, answer="1", split=split, source=source)


def test_a_planted_near_duplicate_is_found_and_an_unrelated_question_is_not():
    problems = [
        p("t1", LONG_Q, "test"),
        p("b1", "Compute the sum of the first hundred positive odd integers and explain each step", "test", "math500"),
        p("tr-exact", LONG_Q.upper() + "!", "train"),
        p("tr-near", LONG_Q.replace("nine", "ten"), "valid"),
        p("tr-bench", "compute the sum of the first hundred positive odd integers and explain each step.", "train"),
        p(
            "tr-other",
            "A farmer has seventeen sheep and all but nine run away; how many sheep are left "
            "standing in the field at the end of the long and tiring day",
            "train",
        ),
    ]
    pairs = find_contamination(problems)
    got = {(x.train_id, x.held_id, x.kind) for x in pairs}
    assert ("tr-exact", "t1", "exact") in got and ("tr-bench", "b1", "exact") in got
    near = next(x for x in pairs if x.train_id == "tr-near")
    assert near.kind == "13-gram" and 0.5 <= near.score < 1 and near.held_where == "test"
    assert next(x for x in pairs if x.train_id == "tr-bench").held_where == "benchmark math500"
    assert all(x.train_id != "tr-other" for x in pairs)


def test_contamination_command_lists_pairs(project, tmp_path, capsys):
    with Store(project / DB_NAME) as store:
        store.insert_problems([p("t1", LONG_Q, "test"), p("tr", LONG_Q.replace("nine", "ten"), "train")])
    assert main(["--project", str(project), "contamination"]) == 0
    out = capsys.readouterr().out
    assert "train tr ~ test t1: 13-gram" in out and "1 train/valid problems overlap" in out
    assert main(["--project", str(project), "contamination", "--threshold", "2"]) != 0
