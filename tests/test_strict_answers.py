"""Strict scoring: a truncated answer is wrong, a number that is not an explicit final
answer is no answer, and stores scored the old, lenient way are re-scored on open."""

import types

from app.pipeline.diagnose import answer_fields
from app.records import Attempt, Problem
from app.store import Store

PROBLEM = Problem(id="p1", question="What is 3 * 4?", answer="12", split="test")


def fields(text: str, finish: str = "stop", error: str | None = None) -> dict:
    tally = types.SimpleNamespace(generated=0, failed=0, correct=0)
    return answer_fields({"id": "k", "text": text, "finish_reason": finish, "error": error}, PROBLEM, tally)


def test_an_explicit_right_answer_is_right():
    assert fields("3*4 = 12. The answer is \\boxed{12}.")["correct"] is True


def test_a_truncated_answer_is_wrong_even_when_a_boxed_answer_came_before():
    f = fields("First \\boxed{12}, but let me double-check: 3*4 = 1", finish="length")
    assert f["correct"] is False and f["extracted"] == "12"


def test_a_number_in_the_reasoning_is_not_an_answer():
    for text in ("3*4 = 12. Then we subtract", "The question asks for 3 * 4"):
        f = fields(text)
        assert f["extracted"] is None and f["correct"] is False


def test_a_failed_item_has_no_verdict():
    assert fields(None, error="prompt longer than the context")["correct"] is None


def test_an_old_store_is_rescored_strictly_on_open(tmp_path):
    path = tmp_path / "tailor.db"
    with Store(path) as s:
        s.insert_problems([PROBLEM])
        base = dict(problem_id="p1", purpose="eval", model="m", prompt_hash="h", params={})
        rows = {
            "boxed": ("so \\boxed{12}.", "12", True, "stop"),
            "last number": ("3*4 = 12. Then we subtract", "12", True, "stop"),
            "truncated": ("\\boxed{12} and then 3*4 = 1", "12", True, "length"),
            "wrong": ("The answer is 7.", "7", False, "stop"),
        }
        for key, (text, extracted, correct, finish) in rows.items():
            s.insert_attempt(
                Attempt(key=key, text=text, extracted=extracted, correct=correct, finish_reason=finish, **base)
            )
        s.db.execute("PRAGMA user_version = 5")  # as a store written before strict scoring
    with Store(path) as s:
        got = {a.key: (a.extracted, a.correct) for a in s.eval_attempts()}
    assert got == {
        "boxed": ("12", True),
        "last number": (None, False),
        "truncated": ("12", False),
        "wrong": ("7", False),
    }
