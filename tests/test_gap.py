"""`tailor gap` (app/pipeline/gap.py): the teacher–student accuracy-gap proxy, and teacher choice."""

import json

import pytest

from app.errors import TailorError
from app.pipeline.gap import (
    GapError,
    ScoreRow,
    format_gap,
    gap_command,
    gap_table,
    read_scores,
    teacher_choice,
)

# gsm8k: teachers (90 + 80) / 2 = 85, students (50 + 40) / 2 = 45 -> gap 40.
# math:  80 - 50 = 30, exactly the threshold -> not selected (strictly greater).
# mbpp:  82.5 - 52 = 30.5 -> selected.
# logic: 60 - 55 = 5; code: 70 - 35 = 35.
# aime has no student, trivia no teacher -> skipped.
PERCENT = """\
task,model,role,accuracy
gsm8k,qwen-0.5b,student,50
gsm8k,qwen-1.5b,student,40
gsm8k,deepseek-r1,teacher,90
gsm8k,gpt-4o,teacher,80
math,qwen-0.5b,student,50
math,deepseek-r1,teacher,80
mbpp,qwen-0.5b,student,52
mbpp,deepseek-r1,teacher,82.5
logic,qwen-0.5b,student,55
logic,deepseek-r1,teacher,60
code,qwen-0.5b,student,35
code,deepseek-r1,teacher,70
aime,deepseek-r1,teacher,20
trivia,qwen-0.5b,student,30
"""


# The same scores as fractions.
FRACTION = """\
task,model,role,accuracy
gsm8k,qwen-0.5b,student,0.5
gsm8k,qwen-1.5b,student,0.4
gsm8k,deepseek-r1,teacher,0.9
gsm8k,gpt-4o,teacher,0.8
math,qwen-0.5b,student,0.5
math,deepseek-r1,teacher,0.8
mbpp,qwen-0.5b,student,0.52
mbpp,deepseek-r1,teacher,0.825
logic,qwen-0.5b,student,0.55
logic,deepseek-r1,teacher,0.6
code,qwen-0.5b,student,0.35
code,deepseek-r1,teacher,0.7
aime,deepseek-r1,teacher,0.2
trivia,qwen-0.5b,student,0.3
"""


@pytest.fixture
def write(tmp_path):
    def _write(text: str, name: str = "scores.csv"):
        p = tmp_path / name
        p.write_text(text, encoding="utf-8") if isinstance(text, str) else p.write_bytes(text)
        return p

    return _write


def test_gap_table_threshold_tie_skips_and_order(write):
    res = gap_table(read_scores(write(PERCENT)))
    assert [(t.task, t.gap) for t in res.tasks] == [
        ("gsm8k", 40.0),
        ("code", 35.0),
        ("mbpp", 30.5),
        ("math", 30.0),
        ("logic", 5.0),
    ]
    assert [t.task for t in res.selected] == ["gsm8k", "code", "mbpp"]
    math_row = next(t for t in res.tasks if t.task == "math")
    assert not math_row.above_threshold  # a tie at the threshold does not count
    g = res.tasks[0]
    assert (g.teacher_avg, g.student_avg, g.n_teachers, g.n_students) == (85.0, 45.0, 2, 2)
    assert [(s.task, s.reason) for s in res.skipped] == [("aime", "no student rows"), ("trivia", "no teacher rows")]
    assert res.scale == "percent"


def test_threshold_is_compared_exactly():
    rows = [ScoreRow("t", "s", "student", 40.0), ScoreRow("t", "T", "teacher", 70.1)]
    # 70.1 - 40.0 is 30.099999999999994 in floats; as written it is 30.1, equal to the threshold.
    assert not gap_table(rows, 30.1).tasks[0].above_threshold
    assert gap_table(rows, 30.09).tasks[0].above_threshold
    assert gap_table(rows, "30.1").threshold == 30.1


def test_gap_ties_sort_by_name():
    rows = [ScoreRow(t, m, r, a) for t in ("b", "a") for m, r, a in (("s", "student", 10), ("T", "teacher", 50))]
    assert [t.task for t in gap_table(rows).tasks] == ["a", "b"]


def test_percent_and_fraction_files_agree(write):
    frac = gap_table(read_scores(write(FRACTION, "f.csv")))
    pct = gap_table(read_scores(write(PERCENT, "p.csv")))
    assert frac.scale == "fraction"
    assert [(t.task, t.gap, t.above_threshold) for t in frac.tasks] == [
        (t.task, t.gap, t.above_threshold) for t in pct.tasks
    ]
    assert next(t for t in frac.tasks if t.task == "math").gap == 30.0


def test_fraction_tie_is_exact(write):
    # In floats 0.55 * 100 - 0.25 * 100 is 30.000000000000007 (> 30); as written it is a tie.
    res = gap_table(read_scores(write("task,model,role,accuracy\nt,s,student,0.25\nt,T,teacher,0.55\n")))
    assert res.tasks[0].gap == 30.0 and not res.tasks[0].above_threshold


def test_scale_rules(write):
    # Every value <= 1 -> fractions, even 1 and 0.
    rows = read_scores(write("task,model,role,accuracy\nt,s,student,0\nt,T,teacher,1\n"))
    assert [r.accuracy for r in rows] == [0.0, 100.0] and rows[0].scale == "fraction"
    # A % sign makes the file percent; a bare 0 or 1 is then 0 or 1 percent.
    rows = read_scores(write("task,model,role,accuracy\nt,s,student,0.5%\nt,T,teacher,1\n"))
    assert [r.accuracy for r in rows] == [0.5, 1.0] and rows[0].scale == "percent"
    # A bare fraction among percentages is ambiguous.
    p = write("task,model,role,accuracy\nt,s,student,0.65\nt,T,teacher,72\n")
    with pytest.raises(GapError, match=r":2: accuracy '0.65' looks like a fraction.*line 3"):
        read_scores(p)


def test_header_any_order_case_and_extra_columns(write):
    rows = read_scores(write("\ufeffModel, Accuracy ,notes,TASK,Role\nqwen,40,few-shot,gsm8k,Student\n"))
    assert rows == [ScoreRow("gsm8k", "qwen", "student", 40.0, 2, scale="percent")]


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("", 1, "empty file"),
        ("\n\n", 1, "empty file"),
        ("task,model,role,accuracy\n", 1, "no score rows after the header"),
        ("task,model,accuracy\nt,m,50\n", 1, "missing column(s) role"),
        ("task,model,role,role,accuracy\n", 1, "column 'role' appears twice"),
        ("task,model,role,accuracy\nt,m,student,50\nt,m,techer,80\n", 3, "role 'techer' must be student or teacher"),
        ("task,model,role,accuracy\nt,m,student,fifty\n", 2, "accuracy 'fifty' is not a number"),
        ("task,model,role,accuracy\nt,m,student,nan\n", 2, "accuracy 'nan' is not a number"),
        ("task,model,role,accuracy\nt,m,student,1/2\n", 2, "accuracy '1/2' is not a number"),
        ("task,model,role,accuracy\nt,m,student,101\n", 2, "accuracy '101' is out of range"),
        ("task,model,role,accuracy\nt,m,student,-0.1\n", 2, "accuracy '-0.1' is out of range"),
        ("task,model,role,accuracy\nt,m,student,\n", 2, "empty accuracy"),
        ("task,model,role,accuracy\nt,m,student\n", 2, "empty accuracy"),
        ("task,model,role,accuracy\nt,m,student,50,extra\n", 2, "more values than header columns"),
        (
            "task,model,role,accuracy\n\nt,m,student,50\nt,T,teacher,90\nt,m,Student,60\n",
            5,
            "duplicate row for task 't', model 'm', role student (first at line 3)",
        ),
    ],
)
def test_bad_input_names_file_and_line(write, text, line, reason):
    p = write(text)
    with pytest.raises(GapError) as e:
        read_scores(p)
    assert str(e.value).startswith(f"{p}:{line}: ")
    assert reason in str(e.value)
    assert "\n" not in str(e.value) and isinstance(e.value, TailorError)


def test_unreadable_and_non_utf8(write, tmp_path):
    with pytest.raises(GapError, match="cannot read"):
        read_scores(tmp_path / "missing.csv")
    p = write(b"task,model,role,accuracy\nt,m\xff,student,50\n")
    with pytest.raises(GapError, match=rf"^{p}:2: not valid UTF-8"):
        read_scores(p)


def test_gap_table_validates_rows_built_in_code():
    with pytest.raises(GapError, match="role 'judge'"):
        gap_table([ScoreRow("t", "m", "judge", 50.0)])
    with pytest.raises(GapError, match="outside 0–100"):
        gap_table([ScoreRow("t", "m", "student", 0.5 * 300)])
    with pytest.raises(GapError, match="duplicate"):
        gap_table([ScoreRow("t", "m", "student", 5.0)] * 2)
    with pytest.raises(GapError, match="threshold"):
        gap_table([], float("nan"))


def test_format_gap_table(write):
    out = format_gap(gap_table(read_scores(write(PERCENT))))
    lines = out.splitlines()
    head, first = lines[0], lines[1]
    assert head.split()[:2] == ["task", "teachers"] and head.endswith("gap > 30")
    assert first.split() == ["gsm8k", "2", "85.00", "2", "45.00", "40.00", "yes"]
    # Numbers are right-aligned under their headers.
    for name in ("teachers", "teacher avg", "students", "student avg", " gap "):
        end = head.index(name) + len(name.rstrip())
        assert all(line[end - 1].isdigit() and line[end] == " " for line in lines[1:6]), name
    assert lines[4].split()[-1] == "no" and lines[4].startswith("math")
    assert "skipped aime: no student rows" in out and "skipped trivia: no teacher rows" in out
    assert out.splitlines()[-1].endswith(": gsm8k, code, mbpp")


def test_format_gap_nothing_selected_or_nothing_comparable():
    rows = [ScoreRow("t", "s", "student", 50.0), ScoreRow("t", "T", "teacher", 80.0)]
    assert "no task has a teacher−student gap above 30 points" in format_gap(gap_table(rows))
    assert format_gap(gap_table(rows[:1])).startswith("no task has both")


def test_json_output_has_every_number(write):
    d = json.loads(gap_command(write(PERCENT), threshold=30, as_json=True))
    assert d["threshold"] == 30.0 and d["unit"] == "points" and d["scale"] == "percent"
    assert d["selected"] == ["gsm8k", "code", "mbpp"]
    g = d["tasks"][0]
    assert {
        k: g[k] for k in ("task", "teacher_avg", "student_avg", "gap", "n_teachers", "n_students", "above_threshold")
    } == {
        "task": "gsm8k",
        "teacher_avg": 85.0,
        "student_avg": 45.0,
        "gap": 40.0,
        "n_teachers": 2,
        "n_students": 2,
        "above_threshold": True,
    }
    assert g["teachers"] == [{"model": "deepseek-r1", "accuracy": 90.0}, {"model": "gpt-4o", "accuracy": 80.0}]
    assert d["skipped"][0] == {"task": "aime", "reason": "no student rows", "n_teachers": 1, "n_students": 0}
    assert gap_command(write(PERCENT), as_json=False).startswith("task")


# -- teacher choice --------------------------------------------------------------------


def test_teacher_choice_ratio_at_threshold_prefers_stronger():
    r = teacher_choice({"gpt-4o": 100, "deepseek-r1": 130})
    assert r["strongest"] == "deepseek-r1" and r["next"] == "gpt-4o"
    assert r["ratio"] == 1.3 and r["prefer_strongest"]
    assert r["recommendation"] == "prefer the stronger teacher (deepseek-r1)"
    json.dumps(r, allow_nan=False)


def test_teacher_choice_below_threshold_keeps_all():
    r = teacher_choice({"a": 129, "b": 100, "c": 40})
    assert r["ratio"] == 1.29 and not r["prefer_strongest"]
    assert r["recommendation"] == "keep every teacher's examples"
    assert [t["name"] for t in r["teachers"]] == ["a", "b", "c"]


def test_teacher_choice_ties_and_single_teacher():
    tie = teacher_choice({"b": 100, "a": 100}, accuracies={"a": 0.7, "b": 0.8})
    assert tie["ratio"] == 1.0 and not tie["prefer_strongest"]
    assert tie["strongest"] == "b"  # tie on count broken by accuracy
    assert teacher_choice({"b": 100, "a": 100})["strongest"] == "a"  # then by name
    one = teacher_choice({"deepseek-r1": 300})
    assert one["ratio"] is None and one["next"] is None and not one["prefer_strongest"]
    assert one["recommendation"] == "keep every teacher's examples"


def test_teacher_choice_zero_counts_and_errors():
    r = teacher_choice({"a": 10, "b": 0})
    assert r["prefer_strongest"] and r["ratio"] is None
    assert not teacher_choice({"a": 0, "b": 0})["prefer_strongest"]
    assert teacher_choice({"a": 14, "b": 10}, ratio_threshold=1.5)["ratio_threshold"] == 1.5
    with pytest.raises(GapError):
        teacher_choice({})
    with pytest.raises(GapError, match="non-negative integer"):
        teacher_choice({"a": -1})
    with pytest.raises(GapError, match="accuracies missing"):
        teacher_choice({"a": 1, "b": 2}, accuracies={"a": 0.5})
