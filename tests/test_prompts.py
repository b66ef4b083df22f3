import pytest

from app.errors import TailorError
from app.prompts import load_prompt, parse_prompt


def test_student_solve_renders_and_keeps_latex():
    p = load_prompt("student_solve")
    msgs = p.render(question="Compute $\\frac{1}{2}$ of {x}.")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "Compute $\\frac{1}{2}$ of {x}." in msgs[1]["content"]
    assert "\\boxed{ANSWER}" in msgs[1]["content"]
    assert len(p.hash) == 12


def test_hash_changes_with_content():
    a = parse_prompt("t", b"## user\nSolve ${question}\n")
    b = parse_prompt("t", b"## user\nSolve ${question} carefully\n")
    assert a.hash != b.hash
    assert a.hash == parse_prompt("t", b"## user\nSolve ${question}\n").hash


def test_missing_placeholder_and_bad_file():
    p = parse_prompt("t", b"## user\nSolve ${question}\n")
    with pytest.raises(TailorError, match=r"prompts/t.md: no value for placeholder \$\{question\}"):
        p.render()
    with pytest.raises(TailorError, match="expected '## system'"):
        parse_prompt("t", b"no sections here")
    with pytest.raises(TailorError, match="prompt file not found"):
        load_prompt("does_not_exist")
