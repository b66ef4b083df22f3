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
        for t in ("problems", "attempts", "grades", "traces", "datasets", "dataset_items",
                  "runs", "metrics", "evals", "api_calls"):
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
    a = Attempt(key="k1", problem_id="p1", purpose="diagnose", model="m", prompt_hash="h",
                params={"temperature": 0.6}, text="2", extracted="2", correct=False)
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
