import sqlite3

import pytest

from app.errors import StoreError
from app.records import ApiCall, Attempt, Problem
from app.store import SCHEMA_VERSION, Store


def _problem(i: int, split: str = "train") -> Problem:
    return Problem(id=f"p{i}", question=f"q{i}", answer=str(i), split=split)


def test_migrations_on_empty_db(tmp_path):
    with Store(tmp_path / "t.db") as s:
        assert s.user_version == SCHEMA_VERSION
        tables = set(s.db.table_names())
        for t in (
            "problems",
            "attempts",
            "grades",
            "traces",
            "datasets",
            "dataset_items",
            "runs",
            "metrics",
            "evals",
            "api_calls",
        ):
            assert t in tables
        assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopen_existing_db_keeps_rows_and_version(tmp_path):
    path = tmp_path / "t.db"
    with Store(path) as s:
        s.insert_problems([_problem(1)])
    with Store(path) as s:
        assert s.user_version == SCHEMA_VERSION
        assert s.count("problems") == 1


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "t.db"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this tailor"):
        Store(path)


def test_not_a_database(tmp_path):
    path = tmp_path / "t.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(path)


def test_insert_problems_counts_new_only(store):
    assert store.insert_problems([_problem(1), _problem(2, "test")]) == 2
    assert store.insert_problems([_problem(2, "test"), _problem(3)]) == 1
    assert store.problem_counts() == {"train": 2, "test": 1}
    assert store.get_problem("p2").split == "test"
    assert [p.id for p in store.problems(split="train")] == ["p1", "p3"]


def test_transaction_rolls_back_everything(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.insert_problems([_problem(1)])
            raise RuntimeError("boom")
    assert store.count("problems") == 0


def test_foreign_keys_enforced(store):
    a = Attempt(key="k", problem_id="missing", purpose="diagnose", model="m", prompt_hash="h", params={})
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_attempt(a)


def test_attempt_roundtrip_and_keys(store):
    store.insert_problems([_problem(1)])
    a = Attempt(
        key="k1",
        problem_id="p1",
        purpose="diagnose",
        model="m",
        prompt_hash="h",
        params={"temperature": 0.6},
        text="2",
        extracted="2",
        correct=False,
    )
    store.insert_attempt(a)
    assert store.attempt_keys(["k1", "k2"]) == {"k1"}
    got = store.attempts(purpose="diagnose")[0]
    assert got.params == {"temperature": 0.6} and got.correct is False


def test_api_call_ok_is_final_error_is_replaced(store):
    base = dict(key="c1", stage="grade", role="judge", provider="openai", model="m", request={"a": 1})
    store.put_api_call(ApiCall(**base, status="error", error="timeout"))
    assert store.get_api_call("c1").status == "error"
    store.put_api_call(ApiCall(**base, status="ok", content="yes", prompt_tokens=3, completion_tokens=2))
    store.put_api_call(ApiCall(**base, status="ok", content="overwritten?"))
    got = store.get_api_call("c1")
    assert got.status == "ok" and got.content == "yes" and got.request == {"a": 1}
    usage = store.usage()
    assert usage[0]["calls"] == 1 and usage[0]["prompt_tokens"] == 3


def test_current_grade_latest_and_override_wins(store):
    from app.records import GradeRecord

    store.insert_problems([_problem(1), _problem(2, "test")])
    store.insert_grade(GradeRecord(problem_id="p1", grade="hard", provider="rules"))
    store.insert_grade(GradeRecord(problem_id="p1", grade="easy", is_override=True, provider="manual"))
    store.insert_grade(GradeRecord(problem_id="p1", grade="medium", provider="rules"))  # a later re-grade
    store.insert_grade(GradeRecord(problem_id="p2", grade=None, error="judge said prose", provider="openai"))
    cur = store.current_grades()
    assert cur["p1"].grade == "easy" and cur["p1"].is_override
    assert cur["p2"].grade is None and cur["p2"].error
    assert set(store.current_grades(split="train")) == {"p1"}


def test_dataset_create_get_and_no_silent_overwrite(store):
    from app.records import Dataset, DatasetItem

    store.insert_problems([_problem(1), _problem(2)])
    ds = Dataset(
        name="d",
        strategy="all",
        k=2,
        seed=0,
        params={"x": 1},
        items=[
            DatasetItem(problem_id="p2", grade="hard", route="long"),
            DatasetItem(problem_id="p1", grade="easy", route="short"),
        ],
    )
    store.create_dataset(ds)
    got = store.get_dataset("d")
    assert [i.problem_id for i in got.items] == ["p1", "p2"] and got.params == {"x": 1}
    with pytest.raises(StoreError, match="dataset 'd' already exists"):
        store.create_dataset(ds)
    bad = Dataset(name="e", strategy="all", params={}, items=[DatasetItem(problem_id="nope", route="short")])
    with pytest.raises(sqlite3.IntegrityError):
        store.create_dataset(bad)
    assert store.dataset_names() == ["d"]  # nothing half-written


def test_trace_upsert_updates_same_identity(store):
    from app.records import Trace

    store.insert_problems([_problem(1)])
    t = Trace(problem_id="p1", role="short", provider="reference", model="reference", text="so 1")
    first = store.upsert_trace(t)
    again = store.upsert_trace(t.model_copy(update={"verified": True, "extracted": "1"}))
    assert first == again and store.count("traces") == 1
    assert store.traces(role="short")[0].verified is True
    store.upsert_trace(t.model_copy(update={"variant": 1}))
    assert len(store.traces(["p1"])) == 2


def test_failed_attempt_is_retried_and_replaced(store):
    store.insert_problems([_problem(1)])
    failed = Attempt(
        key="k",
        problem_id="p1",
        purpose="diagnose",
        model="m",
        prompt_hash="h",
        params={},
        error="prompt longer than the context",
    )
    first_id = store.insert_attempt(failed)
    assert store.attempt_keys(["k"]) == set()
    ok = failed.model_copy(update={"error": None, "text": "4", "extracted": "4", "correct": False})
    assert store.insert_attempt(ok) == first_id
    assert store.attempt_keys(["k"]) == {"k"}
    assert store.count("attempts") == 1 and store.attempts()[0].error is None


def test_migration_7_collapses_the_rows_earlier_retries_added(tmp_path):
    import sqlite3

    import sqlite_utils

    from app.store import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    for m in MIGRATIONS[:6]:
        m(db)
    db.execute("PRAGMA user_version = 6")
    db["problems"].insert_all(
        [{"id": p, "question": p, "answer": "1", "split": "train", "created_at": "t"} for p in ("a", "b")]
    )
    rows = [
        ("a", None, "x"),
        ("a", None, "x"),
        ("a", None, "x"),  # asked three times, never readable
        ("b", None, "x"),
        ("b", "easy", None),
    ]  # ungraded once, then graded
    for pid, grade, err in rows:
        db["grades"].insert(
            {
                "problem_id": pid,
                "grade": grade,
                "error": err,
                "provider": "openai",
                "model": "j",
                "prompt_hash": "h",
                "is_override": 0,
                "disagreement": 0,
                "created_at": "t",
            }
        )
    db.close()
    with Store(path) as store:
        got = [(r["problem_id"], r["grade"], r["tries"]) for r in store.db.query("SELECT * FROM grades ORDER BY id")]
        assert got == [("a", None, 3), ("b", "easy", 1)]


def test_batched_writes_every_n_and_what_is_left_even_on_an_error():
    import pytest as _pytest

    from app.store import Batched

    written = []
    with _pytest.raises(RuntimeError):
        with Batched(written.append, every=3) as b:
            for i in range(7):
                b.add(i)
            raise RuntimeError("a fatal error mid-stage")
    assert written == [[0, 1, 2], [3, 4, 5], [6]]
