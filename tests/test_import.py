import json

import pytest

from app.cli import main
from app.errors import ImportFileError
from app.pipeline.importing import import_file, read_problems


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_gsm8k(tmp_path):
    f = _jsonl(tmp_path / "gsm.jsonl", [
        {"question": "Natalia sold 48 clips...", "answer": "She sold 48/2 = <<48/2=24>>24 clips.\n#### 1,072"},
    ])
    fmt, [p] = read_problems(f)
    assert fmt == "gsm8k"
    assert p.answer == "1072"
    assert "<<" not in p.solution and p.solution.endswith("\\boxed{1072}.")
    assert p.split == "train" and p.source == "gsm"


def test_math(tmp_path):
    f = _jsonl(tmp_path / "math.jsonl", [
        {"problem": "Compute $\\frac{1}{2}+\\frac{1}{4}$.", "solution": "We get $\\boxed{\\frac{3}{4}}$.",
         "level": "Level 2", "type": "Prealgebra"},
    ])
    fmt, [p] = read_problems(f)
    assert fmt == "math"
    assert p.answer == "\\frac{3}{4}"
    assert p.difficulty == 2 and p.category == "Prealgebra"


def test_math500(tmp_path):
    f = _jsonl(tmp_path / "m500.jsonl", [
        {"problem": "P?", "answer": "\\pi", "solution": "so \\boxed{\\pi}", "subject": "Geometry",
         "level": 5, "unique_id": "test/geometry/1.json"},
    ])
    fmt, [p] = read_problems(f, split="test", source="math500")
    assert fmt == "math500"
    assert (p.answer, p.category, p.difficulty, p.split, p.source) == ("\\pi", "Geometry", 5, "test", "math500")


def test_aime_capitalised_keys(tmp_path):
    f = _jsonl(tmp_path / "aime.jsonl", [{"ID": "2024-I-1", "Year": 2024, "Problem": "Find x.", "Answer": 204}])
    fmt, [p] = read_problems(f, fmt="aime")
    assert (p.answer, p.year, p.category) == ("204", 2024, "aime")


def test_plain_jsonl_and_row_split(tmp_path):
    f = _jsonl(tmp_path / "plain.jsonl", [
        {"question": "a", "answer": "1", "category": "algebra", "section": "speed", "split": "valid", "difficulty": 2},
        {"question": "b", "answer": "2"},
    ])
    fmt, (p1, p2) = read_problems(f)
    assert fmt == "jsonl"
    assert (p1.split, p1.category, p1.section, p1.difficulty) == ("valid", "algebra", "speed", 2)
    assert p2.split == "train"
    _, (q1, _) = read_problems(f, split="test")
    assert q1.split == "test"  # --split overrides the row


def test_csv(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("question,answer,category\nWhat is 1+1?,2,arithmetic\n\"Say, what is 2+2?\",4,\n", encoding="utf-8")
    fmt, ps = read_problems(f)
    assert fmt == "csv" and [p.answer for p in ps] == ["2", "4"]
    assert ps[1].question == "Say, what is 2+2?" and ps[1].category is None


def test_id_is_content_hash_and_reimport_adds_nothing(store, tmp_path):
    f = _jsonl(tmp_path / "a.jsonl", [{"question": "a", "answer": "1"}, {"question": "b", "answer": "2"}])
    r1 = import_file(store, f)
    r2 = import_file(store, f)
    assert (r1.new, r1.present) == (2, 0)
    assert (r2.new, r2.present) == (0, 2)
    g = _jsonl(tmp_path / "b.jsonl", [{"question": " a ", "answer": "1"}])
    assert import_file(store, g).new == 0  # same content, other file


@pytest.mark.parametrize(
    "content, line, reason",
    [
        (b'{"question": "a", "answer": "1"}\n{"question": "b", "answer": \n', 2, "invalid JSON"),
        (b'{"question": "a", "answer": "1"}\n{"question": "b"}\n', 2, "missing or empty 'answer'"),
        (b'{"question": "   ", "answer": "1"}\n', 1, "missing or empty 'question'"),
        (b'{"question": "a", "answer": "1"}\n\n{"question": "\xff\xfe", "answer": "1"}\n', 3, "not valid UTF-8"),
        (b'{"question": "a", "answer": "1"}\n[1, 2]\n', 2, "expected a JSON object"),
        (b'{"question": "a", "answer": "1", "split": "holdout"}\n', 1, "split 'holdout'"),
        (b'{"question": {"x": 1}, "answer": "1"}\n', 1, "must be text"),
        (('{"question": "' + "x" * 100_001 + '", "answer": "1"}\n').encode(), 1, "characters (limit"),
    ],
)
def test_bad_row_aborts_whole_import(store, tmp_path, content, line, reason):
    f = tmp_path / "bad.jsonl"
    f.write_bytes(content)
    with pytest.raises(ImportFileError) as e:
        import_file(store, f)
    assert str(e.value).startswith(f"{f}:{line}: ")
    assert reason in str(e.value)
    assert store.count("problems") == 0


def test_gsm8k_without_marker_is_refused(tmp_path):
    f = _jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "no marker"}])
    with pytest.raises(ImportFileError, match=r"g.jsonl:1: GSM8K answer has no"):
        read_problems(f, fmt="gsm8k")


def test_unknown_format_asks_for_flag(tmp_path):
    f = _jsonl(tmp_path / "x.jsonl", [{"prompt": "q", "completion": "a"}])
    with pytest.raises(ImportFileError, match=r"x.jsonl:1: cannot tell the format .* pass --format"):
        read_problems(f)


def test_cli_bad_file_exits_nonzero_and_stores_nothing(project, tmp_path, capsys):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"question": "a", "answer": "1"}\n{oops}\n', encoding="utf-8")
    assert main(["--project", str(project), "import", str(f)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"tailor: error: {f}:2: invalid JSON (Expecting property name enclosed in double quotes)"
    assert main(["status", "--project", str(project)]) == 0
    assert "problems: none" in capsys.readouterr().out


def test_cli_import_reports_new_and_present(project, tmp_path, capsys):
    f = _jsonl(tmp_path / "a.jsonl", [{"question": "a", "answer": "1"}])
    assert main(["import", str(f), "--project", str(project)]) == 0
    assert main(["import", str(f), "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert "1 new, 0 already present" in out and "0 new, 1 already present" in out


def test_cli_broken_config_stops_before_store(project, tmp_path, capsys):
    (project / "tailor.toml").write_text("[student]\nmodle = 'x'\n", encoding="utf-8")
    f = _jsonl(tmp_path / "a.jsonl", [{"question": "a", "answer": "1"}])
    assert main(["--project", str(project), "import", str(f)]) == 1
    assert "tailor.toml: student.modle: unknown key" in capsys.readouterr().err
