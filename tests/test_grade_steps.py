"""The offline ``steps`` judge: reference-step extraction on the bundled solutions, the
Easy / Medium / Hard rule on realistic student CoTs, the grade stage end to end, and the
stand-in label at every place an offline judge is special-cased."""

import json
import re

import httpx
import pytest
from test_teach import CFG_TEXT, Teachers, add_dataset

from app import BUNDLED
from app.answers import extract_answer, is_equivalent, reference_steps, steps_reached
from app.config import OFFLINE_JUDGES, parse_config
from app.events import RecordingEvents
from app.pipeline import evaluate as evaluate_mod
from app.pipeline.grade import grade
from app.pipeline.ping import ping
from app.pipeline.teach import teach
from app.pipeline.verify import verify
from app.records import Attempt, Problem
from app.remote import RetryPolicy, steps_grade
from app.report import _cotqs

STEPS_CFG = parse_config('[judge]\nprovider = "steps"\n')
RULES_CFG = parse_config("")


@pytest.fixture(scope="module")
def bundled() -> list[Problem]:
    rows = [json.loads(line) for line in BUNDLED.read_text(encoding="utf-8").splitlines()]
    return [
        Problem(id=f"b{i}", **{k: r[k] for k in ("question", "answer", "solution", "category", "section")})
        for i, r in enumerate(rows)
    ]


def find(bundled, text) -> Problem:
    return next(p for p in bundled if text in p.question)


FARID = "Farid has 78 trading cards"


# -- step extraction ------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, steps",
    [
        (FARID, ["49", "79"]),  # arithmetic, words after the result
        ("4 stamps cost $8.40", ["2.10", "29.4"]),  # money: "$2.10", the boxed 29.4 once
        ("5/7 of them are cars", ["40", "16"]),  # fractions_percentages
        ("Solve for x: -9x + 17 = 62", ["45", "-5"]),  # algebra: "= 45 ÷ (-9)" is no result
        ("786 × 944 + 166 is divided by 10", ["6", "4", "30", "0"]),  # number_theory: residues after "≡"
        (
            "rolled 3 times. What is the probability that at least one roll is a 5",
            ["125/216", "91/216"],
        ),  # counting_probability: fractions
        ("legs 40 and 42", ["3364", "58"]),  # geometry: "= 40^2 + 42^2" skipped
    ],
)
def test_steps_of_real_solutions(bundled, question, steps):
    p = find(bundled, question)
    assert reference_steps(p.solution, p.answer, p.question) == steps


def test_given_values_and_final_duplicates_are_not_extra_steps(bundled):
    # "A=139" restates the question; 26/24 = 13/12 (the answer) is one step however written.
    assert reference_steps(
        "L + S = 139, so 2L = 234.\nThe answer is \\boxed{117}.", "117", "L + S is 139 and L - S is 95."
    ) == ["234", "117"]
    assert reference_steps("26/24 = 13/12.\nThe answer is \\boxed{\\frac{13}{12}}.", "13/12") == ["13/12"]


def test_no_computed_result_leaves_the_final_answer_as_the_only_step(bundled):
    p = next(p for p in bundled if "=" not in p.solution and "≡" not in p.solution)
    assert reference_steps(p.solution, p.answer, p.question) == [p.answer]
    assert reference_steps(None, "7") == ["7"]


def test_reached_uses_numeric_equivalence():
    assert steps_reached(["29.40", "2.10", "3/4", "49"], "14 × $2.1 = 29.4; that is 0.75 of it") == [
        True,
        True,
        True,
        False,
    ]
    assert steps_reached(["3/4"], "\\frac{3}{4} of the cake") == [True]
    assert steps_reached(["5"], None) == [False]


# -- the rule ---------------------------------------------------------------------------


def judged(p: Problem, cot: str):
    return steps_grade(p, cot, is_equivalent(extract_answer(cot), p.answer))


def test_right_working_wrong_last_step_is_medium(bundled):
    cot = (
        "Farid starts with 78 cards. He gives 29 away, so he has 78 - 29 = 49 cards.\n"
        "Then he buys 30 more: 49 + 30 = 89.\nThe answer is 89."
    )
    g = judged(find(bundled, FARID), cot)
    assert g.grade == "medium" and not g.answer_correct
    assert g.rationale == (
        "steps judge: 1/2 reference steps reached; answer wrong or missing (stand-in, CoT not read by an LLM)"
    )


def test_no_matching_step_is_hard(bundled):
    cot = "Farid has 78 cards and buys 30 more, so 78 + 30 = 108 cards.\nThe answer is 108."
    g = judged(find(bundled, FARID), cot)
    assert g.grade == "hard" and "0/2 reference steps" in g.rationale


def test_right_answer_with_the_steps_is_easy(bundled):
    cot = (
        "First find the price of one stamp: $8.40 / 4 = $2.1.\n"
        "Then 14 stamps cost 14 × 2.1 = 29.4 dollars.\nThe answer is \\boxed{29.4}."
    )
    g = judged(find(bundled, "4 stamps cost $8.40"), cot)
    assert (g.grade, g.provider, g.model) == ("easy", "steps", "steps") and "2/2" in g.rationale


def test_right_answer_without_the_steps_is_medium(bundled):
    # README: "answer right, reasoning flawed" is Medium; here the residues are never shown.
    p = find(bundled, "786 × 944 + 166 is divided by 10")
    g = judged(p, "Big numbers usually leave no remainder by 10.\nThe answer is 0.")
    assert g.grade == "medium" and "1/4 reference steps reached; answer correct" in g.rationale


def test_a_one_step_reference_grades_by_the_answer(bundled):
    p = find(bundled, "What is 372 ÷ 12?")
    assert judged(p, "372 ÷ 12 = 31.\nThe answer is 31.").grade == "easy"
    assert judged(p, "372 ÷ 12 = 32.\nThe answer is 32.").grade == "hard"


def test_every_bundled_reference_is_easy_as_its_own_cot(bundled):
    # Catches extraction gaps: a step the reference computes but the matcher cannot find.
    for p in bundled:
        g = judged(p, p.solution)
        reached, total = re.search(r"(\d+)/(\d+) reference steps", g.rationale).groups()
        assert (g.grade, reached) == ("easy", total), (p.id, p.solution, g.rationale)


def test_all_the_steps_and_a_wrong_final_answer_is_medium(bundled):
    wrong = 0
    for p in bundled:
        steps = reference_steps(p.solution, p.answer, p.question)
        if len(steps) < 2:
            continue  # the final answer is the only step: a wrong answer reaches none
        cot = "\n".join(f"= {s}" for s in steps[:-1]) + "\nThe answer is \\boxed{123456789}."
        g = judged(p, cot)
        assert (g.grade, g.answer_correct) == ("medium", False), (p.id, steps, g.rationale)
        wrong += 1
    assert wrong > 300


# -- the stage --------------------------------------------------------------------------


def add(store, p: Problem, cot: str, *, key=None):
    store.insert_problems([p])
    return store.insert_attempt(
        Attempt(
            key=key or f"k-{p.id}",
            problem_id=p.id,
            purpose="diagnose",
            model="student",
            prompt_hash="sp",
            params={},
            text=cot,
            extracted=extract_answer(cot),
        )
    )


def farid(pid="p1"):
    return Problem(
        id=pid,
        question="Farid has 78 trading cards. Farid gives 29 of them to a friend and then "
        "buys 30 more. How many trading cards does Farid have now?",
        answer="79",
        solution="After giving away 29, Farid has 78 - 29 = 49 trading cards.\n"
        "After buying 30 more, Farid has 49 + 30 = 79 trading cards.\n"
        "The answer is \\boxed{79}.",
    )


def test_steps_judge_end_to_end_resumes_and_regrades_after_rules(store):
    add(store, farid("e"), "78 - 29 = 49, and 49 + 30 = 79.\nThe answer is \\boxed{79}.")
    add(store, farid("m"), "78 - 29 = 49, then 49 + 30 = 89.\nThe answer is 89.")
    add(store, farid("h"), "78 + 29 + 30 = 137.\nThe answer is 137.")
    add(store, farid("r"), "I just know it.\nThe answer is 79.")  # right, no working: 1/2 -> easy
    rules = grade(RULES_CFG, store, RecordingEvents())
    assert (rules.easy, rules.medium, rules.hard) == (2, 0, 2)  # rules never says medium

    ev = RecordingEvents()
    res = grade(STEPS_CFG, store, ev)  # another judge identity: everything is graded again
    assert (res.graded, res.skipped, res.easy, res.medium, res.hard) == (4, 0, 2, 1, 1)
    assert res.judge == "steps (answer check + reference steps found in the CoT; offline stand-in)"
    assert any(e[0] == "message" and "offline stand-in" in e[1] for e in ev.log)
    cur = store.current_grades()
    assert {pid: g.grade for pid, g in cur.items()} == {"e": "easy", "m": "medium", "h": "hard", "r": "easy"}
    m = cur["m"]
    assert (m.provider, m.model, m.prompt_hash, m.judge_grade, m.disagreement) == (
        "steps",
        "steps",
        None,
        "medium",
        False,
    )
    assert m.rationale.startswith("steps judge: 1/2 reference steps reached; answer wrong")
    assert "stand-in" in m.rationale and m.answer_correct is False

    n = store.count("grades")
    again = grade(STEPS_CFG, store, RecordingEvents())
    assert (again.graded, again.skipped, again.ratio) == (0, 4, res.ratio) and store.count("grades") == n
    assert grade(RULES_CFG, store, RecordingEvents()).graded == 4  # and back again


def test_steps_judge_without_a_reference_solution_falls_back_to_the_answer(store):
    add(store, Problem(id="p1", question="What is 2+2?", answer="4"), "2+2 = 4. The answer is 4.")
    add(store, Problem(id="p2", question="What is 2+3?", answer="5"), "2+3 = 6. The answer is 6.")
    grade(STEPS_CFG, store, RecordingEvents())
    cur = store.current_grades()
    assert (cur["p1"].grade, cur["p2"].grade) == ("easy", "hard")
    assert "1/1 reference steps" in cur["p1"].rationale


# -- the stand-in everywhere ------------------------------------------------------------


def test_steps_is_an_offline_judge_and_only_a_judge():
    assert STEPS_CFG.judge.provider == "steps" and set(OFFLINE_JUDGES) == {"rules", "steps"}
    with pytest.raises(Exception, match="teachers.short: unknown provider 'steps'"):
        parse_config('[teachers.short]\nprovider = "steps"\n')
    with pytest.raises(Exception, match="judge.model: unknown key"):
        parse_config('[judge]\nprovider = "steps"\nmodel = "x"\n')


def test_ping_evaluate_verify_and_report_treat_steps_as_a_stand_in(store):
    (judge,) = ping(STEPS_CFG, ["judge"])
    assert judge.ok and "offline provider" in judge.detail and "stand-in" in judge.detail

    result = evaluate_mod.EvalResult(problems=0, targets=[], tiers=[])
    evaluate_mod._rate(STEPS_CFG, store, RecordingEvents(), {}, {}, ["R1"], result, None, None)
    assert result.notes == [
        "CoT quality not rated: the steps judge is an offline stand-in "
        "(answer check + reference steps found in the CoT) that does not rate reasoning"
    ]

    cfg = parse_config(CFG_TEXT + '\n[judge]\nprovider = "steps"\n')
    add_dataset(store)
    srv, no_retry = Teachers(), RetryPolicy(max_retries=0)
    teach(cfg, store, RecordingEvents(), dataset="ds", transport=srv.transport, retry=no_retry)
    ev = RecordingEvents()
    res = verify(cfg, store, ev, dataset="ds", consistency=True, transport=httpx.MockTransport(srv), retry=no_retry)
    assert res.consistency == "skipped (steps judge)"
    assert any("offline stand-in 'steps'" in e[1] for e in ev.log if e[0] == "message")

    md = "\n".join(_cotqs({"judge": "steps (answer check + reference steps found in the CoT; offline stand-in)"}))
    assert "CoTQS not rated: the judge is the steps judge, an offline stand-in" in md
