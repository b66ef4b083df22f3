"""`verify --refill`: rejected problems are replaced within their stratum until K and E:M:H hold."""

import httpx
from test_teach import CFG_TEXT, Teachers, add_dataset, completion, question

from app.config import parse_config
from app.events import RecordingEvents
from app.pipeline.refill import refill
from app.pipeline.teach import teach
from app.pipeline.verify import verify
from app.records import GradeRecord, Problem
from app.remote import RetryPolicy

NO_RETRY = RetryPolicy(max_retries=0)
GRADES = [("easy", "short"), ("medium", "short"), ("hard", "long")]
ITEMS = [(f"p{i:02d}", i, 10 + i, *GRADES[i % 3]) for i in range(12)]
WRONG = {question(5, 15), question(10, 20), question(2, 12)}  # a hard, a medium, a hard: planted rejections


def pool(store, extra: int):
    """The dataset's 12 problems plus `extra` more graded train problems, graded by index like them."""
    add_dataset(store, items=ITEMS)
    more = [
        Problem(id=f"x{i:02d}", question=question(100 + i, i), answer=str(100 + 2 * i), split="train")
        for i in range(extra)
    ]
    store.insert_problems(more)
    with store.transaction():
        for pid, *_rest, g, _r in ITEMS:
            store.insert_grade(GradeRecord(problem_id=pid, grade=g, provider="rules", model="rules"))
        for i, p in enumerate(more):
            store.insert_grade(GradeRecord(problem_id=p.id, grade=GRADES[i % 3][0], provider="rules", model="rules"))


def run(store, extra):
    cfg = parse_config(CFG_TEXT)
    pool(store, extra)
    srv = Teachers(lambda m, s, q, n: httpx.Response(200, json=completion("\\boxed{0}")) if q in WRONG else None)
    teach(cfg, store, RecordingEvents(), dataset="ds", transport=srv.transport, retry=NO_RETRY)
    verify(cfg, store, RecordingEvents(), dataset="ds", transport=srv.transport, retry=NO_RETRY)
    return refill(cfg, store, RecordingEvents(), dataset="ds", transport=srv.transport, retry=NO_RETRY)


def test_refill_restores_k_and_the_ratio(store):
    res = run(store, extra=9)
    assert res.target == {"easy/short": 4, "hard/long": 4, "medium/short": 4}
    assert res.before == {"easy/short": 4, "hard/long": 2, "medium/short": 3}
    assert res.after == res.target and res.added == 3 and not res.exhausted
    ds = store.get_dataset("ds")
    added = [i for i in ds.items if i.problem_id.startswith("x")]
    assert sorted((i.grade, i.route) for i in added) == [("hard", "long"), ("hard", "long"), ("medium", "short")]
    assert ds.params["refill"]["after"] == res.target  # recorded with the dataset


def test_a_stratum_that_runs_out_is_reported_not_hidden(store):
    res = run(store, extra=2)  # one easy and one medium left over, no hard
    assert res.after["hard/long"] == 2 and "hard/long" in res.exhausted
    assert res.after["medium/short"] == 4
    assert "ran out of problems in hard/long" in res.summary()
