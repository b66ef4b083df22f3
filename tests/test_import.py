import json

import pytest

from app.cli import main
from app.config import DB_NAME
from app.errors import ImportFileError
from app.pipeline.importing import import_file, read_problems
from app.store import Store


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_gsm8k(tmp_path):
    f = _jsonl(
        tmp_path / "gsm.jsonl",
        [
            {"question": "Natalia sold 48 clips...", "answer": "She sold 48/2 = <<48/2=24>>24 clips.\n#### 1,072"},
        ],
    )
    fmt, [p] = read_problems(f)
    assert fmt == "gsm8k"
    assert p.answer == "1072"
    assert "<<" not in p.solution and p.solution.endswith("\\boxed{1072}.")
    assert p.split == "train" and p.source == "gsm"


def test_math(tmp_path):
    f = _jsonl(
        tmp_path / "math.jsonl",
        [
            {
                "problem": "Compute $\\frac{1}{2}+\\frac{1}{4}$.",
                "solution": "We get $\\boxed{\\frac{3}{4}}$.",
                "level": "Level 2",
                "type": "Prealgebra",
            },
        ],
    )
    fmt, [p] = read_problems(f)
    assert fmt == "math"
    assert p.answer == "\\frac{3}{4}"
    assert p.difficulty == 2 and p.category == "Prealgebra"


def test_math500(tmp_path):
    f = _jsonl(
        tmp_path / "m500.jsonl",
        [
            {
                "problem": "P?",
                "answer": "\\pi",
                "solution": "so \\boxed{\\pi}",
                "subject": "Geometry",
                "level": 5,
                "unique_id": "test/geometry/1.json",
            },
        ],
    )
    fmt, [p] = read_problems(f, split="test", source="math500")
    assert fmt == "math500"
    assert (p.answer, p.category, p.difficulty, p.split, p.source) == ("\\pi", "Geometry", 5, "test", "math500")


def test_aime_capitalised_keys(tmp_path):
    f = _jsonl(tmp_path / "aime.jsonl", [{"ID": "2024-I-1", "Year": 2024, "Problem": "Find x.", "Answer": 204}])
    fmt, [p] = read_problems(f, fmt="aime")
    assert (p.answer, p.year, p.category) == ("204", 2024, "aime")


def test_plain_jsonl_and_row_split(tmp_path):
    f = _jsonl(
        tmp_path / "plain.jsonl",
        [
            {
                "question": "a",
                "answer": "1",
                "category": "algebra",
                "section": "speed",
                "split": "valid",
                "difficulty": 2,
            },
            {"question": "b", "answer": "2"},
        ],
    )
    fmt, (p1, p2) = read_problems(f)
    assert fmt == "jsonl"
    assert (p1.split, p1.category, p1.section, p1.difficulty) == ("valid", "algebra", "speed", 2)
    assert p2.split == "train"
    _, (q1, _) = read_problems(f, split="test")
    assert q1.split == "test"  # --split overrides the row


def test_csv(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text('question,answer,category\nWhat is 1+1?,2,arithmetic\n"Say, what is 2+2?",4,\n', encoding="utf-8")
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


BOM = b"\xef\xbb\xbf"


def test_csv_with_byte_order_mark(store, tmp_path):
    # Excel's "CSV UTF-8" starts the file with a BOM; it must not end up in the first column's name.
    f = tmp_path / "excel.csv"
    f.write_bytes(BOM + "Question,Answer,Category\r\nWhat is 1+1?,2,arithmetic\r\n".encode())
    fmt, [p] = read_problems(f)
    assert fmt == "csv"
    assert (p.question, p.answer, p.category) == ("What is 1+1?", "2", "arithmetic")
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"Question,Answer,Category\nWhat is 1+1?,2,arithmetic\n")
    assert read_problems(plain)[1][0].id == p.id  # same content, same problem
    assert import_file(store, f).new == 1


def test_jsonl_and_json_with_byte_order_mark(tmp_path):
    f = tmp_path / "bom.jsonl"
    f.write_bytes(BOM + b'{"question": "a", "answer": "1"}\n{"question": "b", "answer": "2"}\n')
    fmt, ps = read_problems(f)
    assert fmt == "jsonl" and [p.question for p in ps] == ["a", "b"]
    g = tmp_path / "bom.json"
    g.write_bytes(BOM + b'[{"question": "a", "answer": "1"}]')
    assert [p.answer for p in read_problems(g)[1]] == ["1"]


def test_utf16_file_is_refused_clearly(tmp_path):
    f = tmp_path / "u16.csv"
    f.write_bytes("question,answer\nq,1\n".encode("utf-16"))
    with pytest.raises(ImportFileError, match=r"u16.csv:1: UTF-16 text .* save it as UTF-8"):
        read_problems(f)


EXPECTED_COLUMNS = (
    "expected required columns question (or problem), answer and optional columns solution, "
    "category (or subject, type), section, year, difficulty (or level), split"
)


@pytest.mark.parametrize(
    "header, what",
    [
        ("question,reply", "missing required column 'answer' (found 'question', 'reply')"),
        ("prompt,completion", "missing required columns 'question', 'answer' (found 'prompt', 'completion')"),
        (
            "question;answer",
            "missing required columns 'question', 'answer' (found 'question;answer'; the columns "
            "look separated by ';', but tailor reads comma-separated CSV)",
        ),
        ("Question,answer,question", "column 'question' given more than once"),
        ("", "missing required columns 'question', 'answer' (found no column names)"),
    ],
)
def test_csv_with_wrong_header_is_one_error_naming_line_1(store, tmp_path, header, what):
    f = tmp_path / "bad.csv"
    f.write_text(f"{header}\nWhat is 1+1?,2\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as e:
        import_file(store, f)
    assert str(e.value).startswith(f"{f}:1: bad CSV header: {what}")
    assert str(e.value).endswith(EXPECTED_COLUMNS)
    assert "\n" not in str(e.value)
    assert store.count("problems") == 0


def test_csv_header_alternatives_and_unknown_columns_are_accepted(tmp_path):
    f = tmp_path / "ok.csv"
    f.write_text("id,Problem,ANSWER,level,notes\n7,What is 1+1?,2,Level 1,easy one\n", encoding="utf-8")
    [p] = read_problems(f)[1]
    assert (p.question, p.answer, p.difficulty) == ("What is 1+1?", "2", 1)


def test_csv_with_header_only_wrong_header_wins(tmp_path):
    f = tmp_path / "h.csv"
    f.write_text("prompt,completion\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"h.csv:1: bad CSV header"):
        read_problems(f)
    f.write_text("question,answer\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"h.csv: no problems in file"):
        read_problems(f)


def test_cli_wrong_csv_header_exits_nonzero_and_stores_nothing(project, tmp_path, capsys):
    good = _jsonl(tmp_path / "good.jsonl", [{"question": "kept", "answer": "1"}])
    assert main(["--project", str(project), "import", str(good)]) == 0
    f = tmp_path / "wrong.csv"
    f.write_bytes(BOM + b"Question,Reply\nWhat is 1+1?,2\nWhat is 2+2?,4\n")
    capsys.readouterr()
    assert main(["--project", str(project), "import", str(f)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err == (
        f"tailor: error: {f}:1: bad CSV header: missing required column 'answer' "
        f"(found 'Question', 'Reply'); {EXPECTED_COLUMNS}"
    )
    with Store(project / DB_NAME) as store:
        assert [p.question for p in store.problems()] == ["kept"]  # nothing of the bad file
    f.write_bytes(BOM + b"Question,Answer\nWhat is 1+1?,2\nWhat is 2+2?,4\n")  # fixed: imports
    assert main(["--project", str(project), "import", str(f)]) == 0
    assert "2 problems (csv): 2 new" in capsys.readouterr().out


def test_init_with_bundled_imports_the_bundled_set(tmp_path, capsys):
    from app.cli import main

    assert main(["init", "--with-bundled", "--project", str(tmp_path / "p")]) == 0
    assert "600 new" in capsys.readouterr().out


def _parquet(path, rows):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_parquet_imports_with_format_detection_and_row_errors(tmp_path, store):
    from app.pipeline.importing import import_file

    gsm = [
        {"question": f"Tom has {i} apples and gets 2 more. How many?", "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"}
        for i in range(3)
    ]
    res = import_file(store, _parquet(tmp_path / "gsm.parquet", gsm))
    assert (res.format, res.rows, res.new) == ("gsm8k", 3, 3)
    assert sorted(p.answer for p in store.problems()) == ["2", "3", "4"]
    bad = _parquet(tmp_path / "bad.parquet", [{"question": "Fine?", "answer": "1"}, {"question": "", "answer": "2"}])
    with pytest.raises(ImportFileError, match=r"bad.parquet:2: "):
        import_file(store, bad)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(ImportFileError, match="junk.parquet: not a readable Parquet file"):
        import_file(store, junk)
    assert store.count("problems") == 3


def test_a_dataset_directory_imports_each_file_with_the_split_its_name_gives(tmp_path, store):
    from app.pipeline.importing import import_file

    root = tmp_path / "hf-dataset"

    def rows(tag, n):
        return [
            {
                "problem": f"{tag} problem {i}: what is {i} + {i}?",
                "answer": str(2 * i),
                "subject": "Algebra",
                "level": 1,
            }
            for i in range(n)
        ]

    _parquet(root / "data" / "train-00000-of-00001.parquet", rows("train", 4))
    _parquet(root / "data" / "test-00000-of-00001.parquet", rows("test", 2))
    (root / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows("valid", 1)))
    (root / "README.md").write_text("a dataset card is not a problem file")
    res = import_file(store, root)
    assert res.rows == res.new == 7 and res.format == "math500"
    assert store.problem_counts() == {"train": 4, "test": 2, "valid": 1}
    assert {p.source for p in store.problems()} == {"hf-dataset"}
    # One bad file: nothing of the directory is written.
    (root / "test-extra.jsonl").write_text('{"problem": "no answer here"}\n')
    with pytest.raises(ImportFileError, match="test-extra.jsonl:1"):
        import_file(store, tmp_path / "hf-dataset", resplit=False)
    assert store.count("problems") == 7


def test_a_large_import_reports_progress_and_stays_one_transaction(store, tmp_path, monkeypatch):
    import app.pipeline.importing as importing
    from app.events import RecordingEvents

    monkeypatch.setattr(importing, "IMPORT_CHUNK", 7)
    f = tmp_path / "many.jsonl"
    f.write_text("".join(json.dumps({"question": f"q{i}?", "answer": str(i)}) + "\n" for i in range(30)))
    events = RecordingEvents()
    res = import_file(store, f, events=events)
    assert res.new == 30 and ("start", "import", 30) in events.log
    assert [e[1] for e in events.log if e[0] == "advance"] == [7, 7, 7, 7, 2]
    assert events.log[-1] == ("done", "30 new")

    def fail_late(problems, _real=store.insert_problems):  # the disk fills on the third chunk
        if problems[0].question == "r14?":
            raise RuntimeError("disk full")
        return _real(problems)

    monkeypatch.setattr(store, "insert_problems", fail_late)
    g = tmp_path / "more.jsonl"
    g.write_text("".join(json.dumps({"question": f"r{i}?", "answer": str(i)}) + "\n" for i in range(30)))
    with pytest.raises(RuntimeError):
        import_file(store, g)
    assert store.count("problems") == 30  # the chunks before the failure were rolled back
