"""The only module that touches SQLite.

One file per project (tailor.db) in WAL mode with foreign keys on. The schema grows by
append-only migrations counted in PRAGMA user_version: never edit a released migration,
add a new one. Accessors return pydantic records (app/records.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from app.errors import StoreError
from app.records import ApiCall, Attempt, Dataset, DatasetItem, GradeRecord, Metric, Problem, Run, Trace


def _is_read_only(e: sqlite3.Error) -> bool:
    msg = str(e).lower()
    return "readonly" in msg or "read-only" in msg or "unable to open" in msg


class Batched:
    """Rows stored as they arrive, a few per call of ``write`` (one transaction each), so a
    crash keeps what finished without a commit per row; what is left is written when the
    block ends, error or not."""

    EVERY = 16

    def __init__(self, write: Callable[[list], None], every: int = EVERY):
        self.write, self.every, self.rows = write, every, []

    def add(self, row) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            rows, self.rows = self.rows, []
            self.write(rows)

    def __enter__(self) -> "Batched":
        return self

    def __exit__(self, *exc) -> None:
        self.flush()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE problems (
            id TEXT PRIMARY KEY,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            solution TEXT,
            category TEXT,
            section TEXT,
            difficulty INTEGER,
            year INTEGER,
            split TEXT NOT NULL CHECK (split IN ('train','valid','test','placement')),
            source TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX problems_split ON problems(split, category)")
    # A student's output. `key` hashes everything that determines the output (problem,
    # model, adapter, prompt hash, sampling params, seed, tier) so re-runs skip it.
    db.execute(
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            problem_id TEXT NOT NULL REFERENCES problems(id),
            purpose TEXT NOT NULL,
            model TEXT NOT NULL,
            adapter TEXT,
            run_id TEXT REFERENCES runs(id),
            prompt_hash TEXT NOT NULL,
            params TEXT NOT NULL,
            seed INTEGER,
            tier TEXT,
            text TEXT,
            extracted TEXT,
            correct INTEGER,
            n_tokens INTEGER,
            finish_reason TEXT,
            error TEXT,
            dtype TEXT,
            blas TEXT,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX attempts_problem ON attempts(problem_id, purpose)")
    db.execute(
        """CREATE TABLE grades (
            id INTEGER PRIMARY KEY,
            problem_id TEXT NOT NULL REFERENCES problems(id),
            attempt_id INTEGER REFERENCES attempts(id),
            grade TEXT CHECK (grade IN ('easy','medium','hard')),
            answer_correct INTEGER,
            logical INTEGER,
            complete INTEGER,
            minor_error INTEGER,
            judge_grade TEXT,
            disagreement INTEGER NOT NULL DEFAULT 0,
            rationale TEXT,
            is_override INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            provider TEXT NOT NULL,
            model TEXT,
            prompt_hash TEXT,
            api_call_key TEXT REFERENCES api_calls(key),
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX grades_problem ON grades(problem_id)")
    db.execute(
        """CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            strategy TEXT NOT NULL,
            k INTEGER,
            seed INTEGER,
            params TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE dataset_items (
            dataset_id INTEGER NOT NULL REFERENCES datasets(id),
            problem_id TEXT NOT NULL REFERENCES problems(id),
            grade TEXT,
            route TEXT NOT NULL CHECK (route IN ('short','long')),
            PRIMARY KEY (dataset_id, problem_id)
        )"""
    )
    db.execute(
        """CREATE TABLE traces (
            id INTEGER PRIMARY KEY,
            problem_id TEXT NOT NULL REFERENCES problems(id),
            role TEXT NOT NULL CHECK (role IN ('short','long')),
            variant INTEGER NOT NULL DEFAULT 0,
            provider TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            prompt_hash TEXT NOT NULL DEFAULT '',
            api_call_key TEXT REFERENCES api_calls(key),
            text TEXT,
            reasoning TEXT,
            finish_reason TEXT,
            extracted TEXT,
            verified INTEGER,
            consistent INTEGER,
            reject_reason TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (problem_id, role, variant, provider, model, prompt_hash)
        )"""
    )
    db.execute("CREATE INDEX traces_problem ON traces(problem_id, role)")
    db.execute(
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            dataset_id INTEGER REFERENCES datasets(id),
            seed INTEGER,
            profile TEXT,
            config TEXT NOT NULL,
            status TEXT NOT NULL,
            best_iter INTEGER,
            best_val_loss REAL,
            stop_reason TEXT,
            adapter_path TEXT,
            valid_disjoint_from_test INTEGER,
            dtype TEXT,
            blas TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE metrics (
            run_id TEXT NOT NULL REFERENCES runs(id),
            step INTEGER NOT NULL,
            kind TEXT NOT NULL,
            value REAL NOT NULL,
            extra TEXT,
            PRIMARY KEY (run_id, step, kind)
        )"""
    )
    db.execute(
        """CREATE TABLE evals (
            id INTEGER PRIMARY KEY,
            attempt_id INTEGER NOT NULL UNIQUE REFERENCES attempts(id),
            coherence REAL,
            completeness REAL,
            factual REAL,
            cotqs REAL,
            provider TEXT,
            model TEXT,
            prompt_hash TEXT,
            api_call_key TEXT REFERENCES api_calls(key),
            created_at TEXT NOT NULL
        )"""
    )
    # The remote request cache: a finished response is written here before it is used.
    db.execute(
        """CREATE TABLE api_calls (
            key TEXT PRIMARY KEY,
            stage TEXT NOT NULL,
            role TEXT NOT NULL,
            provider TEXT NOT NULL,
            base_url TEXT,
            model TEXT NOT NULL,
            prompt_hash TEXT,
            request TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok','error')),
            content TEXT,
            reasoning TEXT,
            finish_reason TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost REAL,
            latency_s REAL,
            retries INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX api_calls_stage ON api_calls(stage, role)")


def _m002_run_labels(db: sqlite_utils.Database) -> None:
    # A configuration is the set of runs that differ only by seed; `label` names it in
    # reports (a sweep cell, or dataset/profile by default) and `sweep` the sweep it ran in.
    db.execute("ALTER TABLE runs ADD COLUMN label TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN sweep TEXT")
    db.execute("CREATE INDEX attempts_eval ON attempts(purpose, run_id, tier)")


# Append only. Position i (0-based) takes the schema from user_version i to i + 1.
def _m003_tui_indexes(db: sqlite_utils.Database) -> None:
    # The TUI asks "which grade is in force for this problem" once per visible row (and per
    # row when filtering by grade): latest override, else latest grading. This index answers
    # it with one seek instead of reading all of a problem's grades.
    db.execute("CREATE INDEX grades_in_force ON grades(problem_id, is_override, id)")


def _m004_sweep_cells(db: sqlite_utils.Database) -> None:
    # One row per cell of a `tailor --batch` sweep: where it got to, so a re-run resumes.
    db.execute(
        """CREATE TABLE sweep_cells (
            sweep TEXT NOT NULL,
            label TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending','running','done','failed','interrupted')),
            stage TEXT,
            error TEXT,
            keys TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (sweep, label)
        )"""
    )


def _m005_sweep_main(db: sqlite_utils.Database) -> None:
    # Which cell of a sweep the others are ablations of: the report compares each with it.
    db.execute("CREATE TABLE sweep_main (sweep TEXT PRIMARY KEY, label TEXT NOT NULL, updated_at TEXT NOT NULL)")


def _m006_strict_answers(db: sqlite_utils.Database) -> None:
    # Answers are now scored strictly: an attempt cut off by its token budget is wrong, and
    # one without an explicit final answer (boxed, ####, "the answer is") has none — the
    # old last-number fallback is gone. Re-score what earlier versions stored, so one
    # project never mixes the two rules. Strict extraction finds what the old one found or
    # nothing, so no answer needs comparing again: a row only ever turns wrong.
    from app.answers import extract_answer

    rows = db.execute(
        "SELECT id, text, finish_reason FROM attempts WHERE error IS NULL AND (correct = 1 OR extracted IS NOT NULL)"
    ).fetchall()
    for rid, text, finish in rows:
        if extract_answer(text or "") is None:
            db.execute("UPDATE attempts SET extracted = NULL, correct = 0 WHERE id = ?", [rid])
        elif finish == "length":
            db.execute("UPDATE attempts SET correct = 0 WHERE id = ?", [rid])


def _m007_grade_tries(db: sqlite_utils.Database) -> None:
    """An ungraded problem is asked again up to a limit, in its one row (``tries`` counts the
    askings); the rows earlier runs added for each retry collapse into the latest one."""
    if "tries" in db["grades"].columns_dict:
        return  # a store whose version was set back (tests do): already collapsed
    db.execute("ALTER TABLE grades ADD COLUMN tries INTEGER NOT NULL DEFAULT 1")
    same = """g2.problem_id = g.problem_id AND g2.is_override = 0 AND g2.id > g.id
              AND g2.attempt_id IS g.attempt_id AND g2.provider IS g.provider AND g2.model IS g.model
              AND g2.prompt_hash IS g.prompt_hash"""
    db.execute("""UPDATE grades SET tries = 1 + (SELECT count(*) FROM grades g0 WHERE g0.problem_id = grades.problem_id
                   AND g0.grade IS NULL AND g0.is_override = 0 AND g0.id < grades.id
                   AND g0.attempt_id IS grades.attempt_id AND g0.provider IS grades.provider
                   AND g0.model IS grades.model AND g0.prompt_hash IS grades.prompt_hash)
                   WHERE grade IS NULL AND is_override = 0""")
    db.execute(
        f"DELETE FROM grades WHERE id IN (SELECT g.id FROM grades g WHERE g.grade IS NULL AND g.is_override = 0"
        f" AND EXISTS (SELECT 1 FROM grades g2 WHERE {same}))"
    )


def _m008_grades_in_force(db: sqlite_utils.Database) -> None:
    """The grade in force, defined once: each problem's latest override, else its latest
    grading. Correlated on problem_id, so a join for one page of problems looks up only
    those problems in the (problem_id, is_override, id) index (measured on 100k problems:
    0.1 ms a page, where a view grouping the whole table took 73 ms)."""
    db.create_view(
        "in_force_grades",
        """SELECT g.* FROM grades g
           WHERE g.id = (SELECT g2.id FROM grades g2 WHERE g2.problem_id = g.problem_id
                         ORDER BY g2.is_override DESC, g2.id DESC LIMIT 1)""",
        ignore=True,
    )


def _m009_dmc(db: sqlite_utils.Database) -> None:
    """Data-model compatibility: each trace's likelihood scores per student state, its
    quality per judge, the frozen placement test, and what each selection kept. Idempotent,
    like every migration here: a store whose user_version was lowered re-runs it."""
    db["trace_scores"].create(
        {
            "id": int,
            "trace_id": int,
            "state": str,  # the student: model, or model+adapter
            "prompt_hash": str,  # of the rendering the trace was scored in (student_solve)
            "cond_logprob": float,
            "uncond_logprob": float,
            "ppl": float,
            "cppl": float,
            "ifd": float,
            "n_tokens": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("trace_id", "traces", "id")],
        if_not_exists=True,
    )
    db["trace_scores"].create_index(["trace_id", "state", "prompt_hash"], unique=True, if_not_exists=True)
    db["trace_quality"].create(
        {
            "id": int,
            "trace_id": int,
            "provider": str,
            "model": str,
            "prompt_hash": str,
            "raw": float,  # as the judge gave it (1-10), or the stand-in's share of checks passed
            "quality": float,  # in [0, 1]
            "rationale": str,
            "api_call_key": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("trace_id", "traces", "id")],
        if_not_exists=True,
    )
    db["trace_quality"].create_index(["trace_id", "provider", "model", "prompt_hash"], unique=True, if_not_exists=True)
    db["placement"].create(
        {"trace_id": int, "problem_id": str, "quality": float, "created_at": str},
        pk="trace_id",
        foreign_keys=[("trace_id", "traces", "id")],
        if_not_exists=True,
    )
    db["selections"].create(
        {
            "id": int,
            "dataset": str,
            "method": str,
            "top": float,
            "epoch": int,
            "state": str,
            "trace_id": int,
            "value": float,
            "created_at": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["selections"].create_index(["dataset", "method", "top", "epoch", "state"], if_not_exists=True)


def _m010_model_names(db: sqlite_utils.Database) -> None:
    """Attempts, runs and likelihood scores name the student model and adapter as
    app.identity does (relative to the project where they live inside it), so a moved or
    copied project redoes nothing. The project is the directory holding this store. An
    attempt's key is re-derived only where its old key is reproduced exactly from its row;
    any other row keeps its key (and would be redone, never mis-matched). Idempotent."""
    from app.identity import identity
    from app.pipeline.diagnose import attempt_key

    file = next((r[2] for r in db.execute("PRAGMA database_list") if r[1] == "main"), "")
    if not file:  # an in-memory store has no project
        return
    project = Path(file).parent
    names: dict[str | None, str | None] = {}

    def name(value: str | None) -> str | None:
        if value not in names:
            names[value] = identity(value, project)
        return names[value]

    taken = {r[0] for r in db.execute("SELECT key FROM attempts")}
    rows = db.execute(
        "SELECT id, key, problem_id, purpose, model, adapter, prompt_hash, params, seed, tier FROM attempts"
    ).fetchall()
    for rid, key, pid, purpose, model, adapter, prompt_hash, params, seed, tier in rows:
        new_model, new_adapter = name(model), name(adapter)
        if (new_model, new_adapter) == (model, adapter):
            continue
        p = json.loads(params)
        if attempt_key(pid, purpose, model, adapter, prompt_hash, p, seed, tier) != key:
            continue
        new_key = attempt_key(pid, purpose, new_model, new_adapter, prompt_hash, p, seed, tier)
        if new_key in taken:
            continue
        db.execute(
            "UPDATE attempts SET key = ?, model = ?, adapter = ? WHERE id = ?", [new_key, new_model, new_adapter, rid]
        )
        taken.add(new_key)
    for rid, config, adapter_path in db.execute("SELECT id, config, adapter_path FROM runs").fetchall():
        c = json.loads(config)
        new_config = {**c, "model": name(c.get("model"))} if "model" in c else c
        if new_config != c or name(adapter_path) != adapter_path:
            db.execute(
                "UPDATE runs SET config = ?, adapter_path = ? WHERE id = ?",
                [json.dumps(new_config, sort_keys=True), name(adapter_path), rid],
            )
    for table in ("trace_scores", "selections"):
        for (state,) in db.execute(f"SELECT DISTINCT state FROM [{table}]").fetchall():
            model, sep, run = state.partition("+run:")
            new_state = name(model) + sep + run
            if new_state != state:
                db.execute(f"UPDATE OR IGNORE [{table}] SET state = ? WHERE state = ?", [new_state, state])


def _m011_machine_limits(db: sqlite_utils.Database) -> None:
    """What `tailor doctor` measured: the matmul rate and memory bandwidth a roofline
    divides by (app/roofline.py), one row per measurement."""
    db["machine_limits"].create(
        {
            "id": int,
            "measured_at": str,
            "host": str,
            "device": str,
            "blas": str,
            "gflops": float,  # 1024x1024 float32
            "student_gflops": float,  # at the student's prefill shape, when known
            "bandwidth_gbs": float,
            "probe": str,  # the probe's whole answer, JSON
        },
        pk="id",
        if_not_exists=True,
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m001_initial,
    _m002_run_labels,
    _m003_tui_indexes,
    _m004_sweep_cells,
    _m005_sweep_main,
    _m006_strict_answers,
    _m007_grade_tries,
    _m008_grades_in_force,
    _m009_dmc,
    _m010_model_names,
    _m011_machine_limits,
]
SCHEMA_VERSION = len(MIGRATIONS)


# How long a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_S = 60.0


class _Database(sqlite_utils.Database):
    """Every outermost write transaction begins IMMEDIATE: it takes the write lock first,
    waiting up to the busy timeout. A deferred one that read first cannot wait for the
    lock (SQLite answers "database is locked" at once, to keep its snapshot consistent),
    which is what crashed one stage running beside another."""

    @contextmanager
    def atomic(self):
        if self.conn.in_transaction:
            with super().atomic():  # a savepoint inside the open transaction
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise


def failure(e: sqlite3.Error, path: Path | str) -> str:
    """One line for a SQLite error that ended a command: what happened, and that every
    transaction committed before it is kept (each is atomic, so nothing is half-written)."""
    msg = str(e).lower()
    kept = "everything committed before it is kept"
    if "locked" in msg or "busy" in msg:
        return (
            f"{path}: another tailor process held the store's write lock for over {BUSY_TIMEOUT_S:.0f} s; "
            f"{kept}: run the command again when it is done"
        )
    if "full" in msg:
        return f"{path}: the disk is full; {kept}: free some space and run the command again"
    if "readonly" in msg or "read-only" in msg:
        return f"{path}: the project is read-only and this command writes to its store"
    return f"{path}: {e} ({kept})"


class Store:
    """A project's SQLite store. Use one per thread.

    A read-only project (file or directory not writable) opens read-only: reading
    commands work, and a write ends with a "read-only" line (`failure`)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.read_only = False
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            self.db = _Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.enable_wal()
            self.migrate()
            return
        except sqlite3.OperationalError as e:
            if not _is_read_only(e) or not self.path.exists():
                raise StoreError(failure(e, self.path)) from None
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: cannot open as a tailor database ({e})") from None
        self._open_read_only()

    def _open_read_only(self) -> None:
        self.db.close()
        self.read_only = True
        last: sqlite3.Error | None = None
        # mode=ro needs the WAL index (-shm) to be creatable or present; immutable=1 does not.
        for mode in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?{mode}", uri=True, timeout=BUSY_TIMEOUT_S)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                break
            except sqlite3.Error as e:
                last = e
        else:
            raise StoreError(f"{self.path}: read-only and cannot be read ({last})") from None
        self.db = _Database(conn)
        if self.user_version != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: read-only, and at schema version {self.user_version} where this "
                f"tailor needs {SCHEMA_VERSION}: make it writable once to upgrade it"
            )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------

    @property
    def user_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        version = self.user_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this tailor ({SCHEMA_VERSION}); upgrade tailor"
            )
        for i in range(version, SCHEMA_VERSION):
            with self.db.atomic():
                MIGRATIONS[i](self.db)
                self.db.execute(f"PRAGMA user_version = {i + 1}")

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """All writes inside either land together or not at all (nested = savepoint)."""
        with self.db.atomic():
            yield self

    # -- problems -------------------------------------------------------------

    def existing_problem_ids(self, ids: Iterable[str]) -> set[str]:
        return self._present("SELECT id FROM problems WHERE id IN ({marks})", ids)

    def _present(self, sql: str, values: Iterable[str]) -> set[str]:
        """The values that `sql` (with an `IN ({marks})` hole) finds, asked in chunks."""
        return {next(iter(r.values())) for r in self._rows_in(sql, values)}

    def insert_problems(self, problems: Iterable[Problem]) -> int:
        """Insert problems not yet present; returns how many were new. Atomic."""
        rows = [{**p.model_dump(), "created_at": now()} for p in problems]
        with self.transaction():
            before = self.count("problems")
            self.db["problems"].insert_all(rows, ignore=True)
            return self.count("problems") - before

    def set_split(self, problem_id: str, split: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE problems SET split = ? WHERE id = ?", [split, problem_id])

    def get_problem(self, problem_id: str) -> Problem | None:
        rows = list(self.db.query("SELECT * FROM problems WHERE id = ?", [problem_id]))
        return Problem.model_validate(rows[0]) if rows else None

    def problems_by_id(self, ids: Iterable[str]) -> list[Problem]:
        return [Problem.model_validate(r) for r in self._rows_in("SELECT * FROM problems WHERE id IN ({marks})", ids)]

    def problems(
        self,
        split: str | None = None,
        category: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        source: str | None = None,
    ) -> list[Problem]:
        where, args = _where(split=split, category=category, source=source)
        sql = f"SELECT * FROM problems {where} ORDER BY split, category, id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return [Problem.model_validate(r) for r in self.db.query(sql, args)]

    def count(self, table: str, **filters) -> int:
        where, args = _where(**filters)
        return self.db.execute(f"SELECT count(*) FROM [{table}] {where}", args).fetchone()[0]

    def problem_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT split, count(*) FROM problems GROUP BY split")
        return dict(rows.fetchall())

    # -- attempts -------------------------------------------------------------

    def attempt_keys(self, keys: Iterable[str]) -> set[str]:
        """Keys among `keys` with a finished attempt; failed ones are left to be retried."""
        return self._present("SELECT key FROM attempts WHERE error IS NULL AND key IN ({marks})", keys)

    def insert_attempt(self, attempt: Attempt) -> int:
        """Store an attempt; a retried one replaces its failed predecessor (same key, same id)."""
        row = attempt.model_dump(exclude={"id"})
        row["params"] = json.dumps(row["params"], sort_keys=True)
        row["created_at"] = row["created_at"] or now()
        with self.transaction():
            found = self.db.execute("SELECT id FROM attempts WHERE key = ?", [row["key"]]).fetchone()
            if found:
                self.db["attempts"].update(found[0], row)
                return found[0]
            return self.db["attempts"].insert(row).last_pk

    def insert_attempts(self, attempts: Iterable[Attempt]) -> None:
        """Several attempts in one transaction."""
        with self.transaction():
            for a in attempts:
                self.insert_attempt(a)

    def attempts(self, purpose: str | None = None, problem_id: str | None = None) -> list[Attempt]:
        where, args = _where(purpose=purpose, problem_id=problem_id)
        rows = self.db.query(f"SELECT * FROM attempts {where} ORDER BY id", args)
        return [_attempt(r) for r in rows]

    def eval_attempts(
        self, run_id: str | None = None, base_only: bool = False, *, split: str | None = None, source: str | None = None
    ) -> list[Attempt]:
        """Evaluation attempts (purpose "eval"), oldest first; `base_only` = no adapter;
        `split` / `source` keep those of problems in that split or from that source."""
        sql = "SELECT a.* FROM attempts a WHERE a.purpose = 'eval'"
        args: list = []
        if base_only:
            sql += " AND a.run_id IS NULL"
        elif run_id is not None:
            sql += " AND a.run_id = ?"
            args.append(run_id)
        where, problem_args = _where(split=split, source=source)
        if problem_args:
            sql += f" AND a.problem_id IN (SELECT id FROM problems {where})"
            args += problem_args
        return [_attempt(r) for r in self.db.query(sql + " ORDER BY a.id", args)]

    def attempts_by_key(self, keys: Iterable[str]) -> dict[str, Attempt]:
        return {r["key"]: _attempt(r) for r in self._rows_in("SELECT * FROM attempts WHERE key IN ({marks})", keys)}

    def _rows_in(self, sql: str, values: Iterable, args: Sequence = ()) -> Iterator[dict]:
        """Rows of `sql` (``args`` for its other holes, then an `IN ({marks})` hole) for
        many values, asked in chunks."""
        values = list(values)
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            yield from self.db.query(sql.format(marks=",".join("?" * len(chunk))), [*args, *chunk])

    # -- CoT quality ratings of evaluated attempts --------------------------------

    def eval_ratings(self, attempt_ids: Iterable[int] | None = None) -> dict[int, dict]:
        """{attempt_id: evals row}; all rows when no ids are given."""
        if attempt_ids is None:
            return {r["attempt_id"]: r for r in self.db.query("SELECT * FROM evals")}
        return {
            r["attempt_id"]: r for r in self._rows_in("SELECT * FROM evals WHERE attempt_id IN ({marks})", attempt_ids)
        }

    def put_eval_ratings(self, rows: Iterable[dict]) -> None:
        """One rating per attempt: a new judge's rating replaces the old one."""
        rows = [{**r, "created_at": r.get("created_at") or now()} for r in rows]
        if rows:
            with self.transaction():
                self.db["evals"].upsert_all(rows, pk="attempt_id", alter=False)

    # -- data-model compatibility (app/dmc.py, app/pipeline/score.py) ----------

    def trace_scores(self, state: str, prompt_hash: str, trace_ids: Iterable[int] | None = None) -> dict[int, dict]:
        """{trace_id: trace_scores row} for one student state and rendering."""
        sql, args = "SELECT * FROM trace_scores WHERE state = ? AND prompt_hash = ?", [state, prompt_hash]
        if trace_ids is None:
            return {r["trace_id"]: r for r in self.db.query(sql, args)}
        return {r["trace_id"]: r for r in self._rows_in(sql + " AND trace_id IN ({marks})", trace_ids, args)}

    def put_trace_scores(self, rows: Iterable[dict]) -> None:
        rows = [{**r, "created_at": now()} for r in rows]
        if rows:
            with self.transaction():
                self.db["trace_scores"].insert_all(rows, replace=True, alter=False)

    def score_states(self, prompt_hash: str) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT state FROM trace_scores WHERE prompt_hash = ? ORDER BY 1", [prompt_hash]
        )
        return [r[0] for r in rows]

    def trace_quality(self, provider: str, model: str, prompt_hash: str) -> dict[int, dict]:
        """{trace_id: trace_quality row} from one judge (provider, model, prompt)."""
        rows = self.db.query(
            "SELECT * FROM trace_quality WHERE provider = ? AND model = ? AND prompt_hash = ?",
            [provider, model, prompt_hash],
        )
        return {r["trace_id"]: r for r in rows}

    def put_trace_quality(self, rows: Iterable[dict]) -> None:
        rows = [{**r, "created_at": now()} for r in rows]
        if rows:
            with self.transaction():
                self.db["trace_quality"].insert_all(rows, replace=True, alter=False)

    def placement(self) -> dict[int, dict]:
        """The placement test: {trace_id: row}. Frozen once drawn; never exported."""
        return {r["trace_id"]: r for r in self.db.query("SELECT * FROM placement ORDER BY trace_id")}

    def set_placement(self, rows: Iterable[dict]) -> None:
        rows = [{**r, "created_at": now()} for r in rows]
        with self.transaction():
            if self.count("placement"):
                raise StoreError("the placement test is already drawn; it never changes")
            self.db["placement"].insert_all(rows, alter=False)

    def put_selection(self, dataset: str, method: str, top: float, epoch: int, state: str, chosen: dict) -> None:
        """What one selection kept: {trace_id: its value}; replaces the same selection's rows."""
        key = [dataset, method, top, epoch, state]
        with self.transaction():
            self.db.execute(
                "DELETE FROM selections WHERE dataset = ? AND method = ? AND top = ? AND epoch = ? AND state = ?", key
            )
            self.db["selections"].insert_all(
                [
                    dict(
                        zip(("dataset", "method", "top", "epoch", "state"), key), trace_id=t, value=v, created_at=now()
                    )
                    for t, v in chosen.items()
                ],
                alter=False,
            )

    def selections(self, dataset: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM selections", []
        if dataset is not None:
            sql, args = sql + " WHERE dataset = ?", [dataset]
        return list(self.db.query(sql + " ORDER BY id", args))

    # -- grades ---------------------------------------------------------------

    def insert_grade(self, grade: GradeRecord) -> int:
        """A new grade row, or (``grade.id`` set) that row replaced: a retried ungraded problem
        keeps one row rather than adding one per try."""
        row = grade.model_dump(exclude={"id"})
        row["created_at"] = row["created_at"] or now()
        with self.transaction():
            if grade.id is not None:
                self.db["grades"].update(grade.id, row)
                return grade.id
            return self.db["grades"].insert(row).last_pk

    def grade_distribution(self, split: str | None = None) -> dict[str, int]:
        """How many problems (of `split`) have each grade in force; "ungraded" counts those
        whose grading failed. Every grade is a key, zero if none."""
        where, args = ("WHERE p.split = ?", [split]) if split else ("", [])
        rows = self.db.execute(
            f"SELECT g.grade, count(*) FROM in_force_grades g JOIN problems p ON p.id = g.problem_id {where} "
            "GROUP BY g.grade",
            args,
        )
        out = dict.fromkeys(("easy", "medium", "hard", "ungraded"), 0)
        for grade, n in rows:
            out[grade or "ungraded"] += n
        return out

    def current_grades(self, split: str | None = None) -> dict[str, GradeRecord]:
        """Each problem's grade in force: its latest override, else its latest grading."""
        where, args = ("WHERE p.split = ?", [split]) if split else ("", [])
        rows = self.db.query(f"SELECT g.* FROM in_force_grades g JOIN problems p ON p.id = g.problem_id {where}", args)
        return {r["problem_id"]: GradeRecord.model_validate(r) for r in rows}

    # -- datasets -------------------------------------------------------------

    def create_dataset(self, dataset: Dataset) -> int:
        """Store a dataset and its items atomically; an existing name is an error."""
        if self.db.execute("SELECT 1 FROM datasets WHERE name = ?", [dataset.name]).fetchone():
            raise StoreError(f"dataset {dataset.name!r} already exists; choose another --name")
        with self.transaction():
            ds_id = (
                self.db["datasets"]
                .insert(
                    {
                        "name": dataset.name,
                        "strategy": dataset.strategy,
                        "k": dataset.k,
                        "seed": dataset.seed,
                        "params": json.dumps(dataset.params, sort_keys=True),
                        "created_at": dataset.created_at or now(),
                    }
                )
                .last_pk
            )
            self.db["dataset_items"].insert_all({"dataset_id": ds_id, **item.model_dump()} for item in dataset.items)
        return ds_id

    def get_dataset(self, name: str) -> Dataset | None:
        rows = list(self.db.query("SELECT * FROM datasets WHERE name = ?", [name]))
        if not rows:
            return None
        row = rows[0]
        items = [
            DatasetItem.model_validate(r)
            for r in self.db.query(
                "SELECT problem_id, grade, route FROM dataset_items WHERE dataset_id = ? ORDER BY problem_id",
                [row["id"]],
            )
        ]
        return Dataset.model_validate({**row, "params": json.loads(row["params"]), "items": items})

    def add_dataset_items(self, dataset_id: int, items: list[DatasetItem]) -> None:
        """Append items (replacements drawn by a refill); one transaction."""
        with self.transaction():
            self.db["dataset_items"].insert_all({"dataset_id": dataset_id, **i.model_dump()} for i in items)

    def update_dataset_params(self, dataset_id: int, changes: dict) -> None:
        with self.transaction():
            row = self.db.execute("SELECT params FROM datasets WHERE id = ?", [dataset_id]).fetchone()
            params = {**json.loads(row[0]), **changes}
            self.db.execute(
                "UPDATE datasets SET params = ? WHERE id = ?", [json.dumps(params, sort_keys=True), dataset_id]
            )

    def dataset_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM datasets ORDER BY id")]

    # -- traces ---------------------------------------------------------------

    def upsert_trace(self, trace: Trace) -> int:
        """Insert a teacher trace, or update the one with the same identity (verification)."""
        row = trace.model_dump(exclude={"id"})
        row["created_at"] = row["created_at"] or now()
        ident = [row[c] for c in _TRACE_IDENTITY]
        with self.transaction():
            found = self.db.execute(
                f"SELECT id FROM traces WHERE {' AND '.join(f'{c} = ?' for c in _TRACE_IDENTITY)}", ident
            ).fetchone()
            if found:
                row.pop("created_at")
                self.db["traces"].update(found[0], row)
                return found[0]
            return self.db["traces"].insert(row).last_pk

    def traces(self, problem_ids: Iterable[str] | None = None, role: str | None = None) -> list[Trace]:
        where, args = _where(role=role)
        rows = list(self.db.query(f"SELECT * FROM traces {where} ORDER BY problem_id, role, id", args))
        if problem_ids is not None:
            wanted = set(problem_ids)
            rows = [r for r in rows if r["problem_id"] in wanted]
        return [Trace.model_validate(r) for r in rows]

    # -- remote call cache ----------------------------------------------------

    def get_api_call(self, key: str) -> ApiCall | None:
        rows = list(self.db.query("SELECT * FROM api_calls WHERE key = ?", [key]))
        if not rows:
            return None
        return ApiCall.model_validate({**rows[0], "request": json.loads(rows[0]["request"])})

    def put_api_call(self, call: ApiCall) -> None:
        """Record a finished call. An 'ok' row is final; an 'error' row may be replaced."""
        row = call.model_dump()
        row["request"] = json.dumps(row["request"], sort_keys=True)
        row["created_at"] = row["created_at"] or now()
        with self.transaction():
            existing = self.db.execute("SELECT status FROM api_calls WHERE key = ?", [call.key]).fetchone()
            if existing and existing[0] == "ok":
                return
            self.db["api_calls"].upsert(row, pk="key")

    def usage(self) -> list[dict]:
        """Tokens, cost and call counts per stage and provider/model."""
        return list(
            self.db.query(
                """SELECT stage, role, provider, model,
                          count(*) AS calls,
                          sum(status = 'error') AS errors,
                          coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
                          coalesce(sum(completion_tokens), 0) AS completion_tokens,
                          sum(cost) AS cost
                   FROM api_calls GROUP BY stage, role, provider, model ORDER BY stage, role"""
            )
        )

    # -- training runs and their metrics ----------------------------------------

    def insert_run(self, run: Run) -> None:
        row = run.model_dump()
        row["config"] = json.dumps(row["config"], sort_keys=True)
        row["started_at"] = row["started_at"] or now()
        with self.transaction():
            if self.db.execute("SELECT 1 FROM runs WHERE id = ?", [run.id]).fetchone():
                raise StoreError(f"run {run.id!r} already exists")
            self.db["runs"].insert(row)

    def update_run(self, run_id: str, **fields) -> None:
        """Set some columns of a run (config is JSON-encoded). Atomic."""
        if "config" in fields:
            fields["config"] = json.dumps(fields["config"], sort_keys=True)
        with self.transaction():
            self.db["runs"].update(run_id, fields)

    def get_run(self, run_id: str) -> Run | None:
        rows = list(self.db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
        return _run(rows[0]) if rows else None

    def runs(self, status: str | None = None, dataset_id: int | None = None) -> list[Run]:
        where, args = _where(status=status, dataset_id=dataset_id)
        return [_run(r) for r in self.db.query(f"SELECT * FROM runs {where} ORDER BY started_at, id", args)]

    def find_runs(self, prefix: str) -> list[Run]:
        """Runs whose id is `prefix` exactly, else those starting with it."""
        exact = self.get_run(prefix)
        if exact:
            return [exact]
        rows = self.db.query("SELECT * FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id", [len(prefix), prefix])
        return [_run(r) for r in rows]

    def add_metrics(self, run_id: str, step: int, values: dict[str, float], extra: dict | None = None) -> None:
        """Record one report (several kinds at one step) in one transaction; a re-report replaces."""
        rows = [
            {
                "run_id": run_id,
                "step": step,
                "kind": k,
                "value": float(v),
                "extra": json.dumps(extra, sort_keys=True) if extra else None,
            }
            for k, v in values.items()
            if v is not None
        ]
        if rows:
            with self.transaction():
                self.db["metrics"].upsert_all(rows, pk=("run_id", "step", "kind"))

    def metrics(self, run_id: str, kind: str | None = None) -> list[Metric]:
        where, args = _where(run_id=run_id, kind=kind)
        rows = self.db.query(f"SELECT * FROM metrics {where} ORDER BY kind, step", args)
        return [Metric.model_validate({**r, "extra": json.loads(r["extra"]) if r["extra"] else None}) for r in rows]

    def curve(self, run_id: str, kind: str) -> list[tuple[int, float]]:
        """(step, value) points of one metric of a run, by step."""
        rows = self.db.execute(
            "SELECT step, value FROM metrics WHERE run_id = ? AND kind = ? ORDER BY step", [run_id, kind]
        )
        return [(r[0], r[1]) for r in rows]

    def delete_metrics_after(self, run_id: str, step: int) -> int:
        """Drop a run's points past `step` (the abandoned tail before a resume). Returns how many."""
        with self.transaction():
            cur = self.db.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", [run_id, step])
            return cur.rowcount

    # -- sweep cells ------------------------------------------------------------

    def set_cell(
        self,
        sweep: str,
        label: str,
        status: str,
        *,
        stage: str | None = None,
        error: str | None = None,
        keys: dict | None = None,
    ) -> None:
        row = {"sweep": sweep, "label": label, "status": status, "stage": stage, "error": error, "updated_at": now()}
        if keys is not None:
            row["keys"] = json.dumps(keys, sort_keys=True)
        with self.transaction():
            if self.db.execute("SELECT 1 FROM sweep_cells WHERE sweep = ? AND label = ?", [sweep, label]).fetchone():
                self.db["sweep_cells"].update((sweep, label), row)
            else:
                self.db["sweep_cells"].insert({"keys": "{}", **row})

    def set_sweep_main(self, sweep: str, label: str) -> None:
        with self.transaction():
            self.db["sweep_main"].upsert({"sweep": sweep, "label": label, "updated_at": now()}, pk="sweep")

    def sweep_mains(self) -> dict[str, str]:
        """{sweep: its main cell's label}."""
        return {r[0]: r[1] for r in self.db.execute("SELECT sweep, label FROM sweep_main")}

    def sweeps(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT sweep FROM sweep_cells ORDER BY sweep")]

    def cells(self, sweep: str) -> dict[str, dict]:
        rows = self.db.query("SELECT * FROM sweep_cells WHERE sweep = ? ORDER BY rowid", [sweep])
        return {r["label"]: {**r, "keys": json.loads(r["keys"])} for r in rows}

    # -- the machine ----------------------------------------------------------

    def put_machine_limits(self, row: dict) -> None:
        with self.transaction():
            self.db["machine_limits"].insert({**row, "measured_at": row.get("measured_at") or now()})

    def machine_limits(self) -> dict | None:
        """The latest measurement `tailor doctor` stored, if any."""
        rows = list(self.db.query("SELECT * FROM machine_limits ORDER BY id DESC LIMIT 1"))
        return rows[0] if rows else None

    # -- TUI queries ----------------------------------------------------------
    # Read-only queries for app/tui. Each answers one screen's question in SQL and returns
    # at most a page of rows, so the TUI stays fast on 100,000 problems.

    def tui_problem_page(
        self,
        *,
        split: str | None = None,
        category: str | None = None,
        section: str | None = None,
        grade: str | None = None,
        correct: bool | None = None,
        disagreement: bool | None = None,
        tier: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict], int]:
        """One page of problems (by id) with their grade in force and correctness, and the
        number of problems matching the filters. grade "ungraded" = no grade in force.
        Correctness is the latest diagnosis attempt's, or with `tier` the latest eval
        attempt's at that tier (and only problems evaluated at that tier match)."""
        where, args = [], []
        for col, val in (("split", split), ("category", category), ("section", section)):
            if val is not None:
                where.append(f"p.[{col}] = ?")
                args.append(val)
        if search:
            like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(p.question LIKE ? ESCAPE '\\' OR p.id LIKE ? ESCAPE '\\')")
            args += [like, like]
        purpose, tier_sql, tier_args = "diagnose", "", []
        if tier is not None:
            purpose, tier_sql, tier_args = "eval", " AND a.tier = ?", [tier]
            where.append(
                "EXISTS (SELECT 1 FROM attempts a WHERE a.problem_id = p.id AND a.purpose = 'eval' AND a.tier = ?)"
            )
            args.append(tier)
        base = f"""SELECT p.id, p.split, p.category, p.section, p.question,
                      (SELECT a.correct FROM attempts a WHERE a.problem_id = p.id AND a.purpose = ?{tier_sql}
                       ORDER BY a.id DESC LIMIT 1) AS correct
                   FROM problems p {("WHERE " + " AND ".join(where)) if where else ""}"""
        outer, outer_args = [], []
        if grade == "ungraded":
            outer.append("g.grade IS NULL")
        elif grade is not None:
            outer.append("g.grade = ?")
            outer_args.append(grade)
        if correct is not None:
            outer.append("b.correct = ?")
            outer_args.append(int(correct))
        if disagreement is not None:
            outer.append("coalesce(g.disagreement, 0) = ?")
            outer_args.append(int(disagreement))
        sql = f"""SELECT b.id, b.split, b.category, b.section, b.question, b.correct,
                         g.grade, g.disagreement, g.is_override
                  FROM ({base}) b LEFT JOIN in_force_grades g ON g.problem_id = b.id
                  {("WHERE " + " AND ".join(outer)) if outer else ""}"""
        all_args = [purpose, *tier_args, *args, *outer_args]
        if outer:  # the per-row filters cost a pass over the matches: count in the same one
            rows = list(
                self.db.query(
                    f"SELECT *, count(*) OVER () AS _total FROM ({sql}) ORDER BY id LIMIT ? OFFSET ?",
                    [*all_args, limit, offset],
                )
            )
            if rows or not offset:
                total = rows[0]["_total"] if rows else 0
                for r in rows:
                    del r["_total"]
                return rows, total
            total = self.db.execute(f"SELECT count(*) FROM ({sql})", all_args).fetchone()[0]
        elif not where:
            total = self.count("problems")
        else:  # no per-row subquery needed to count
            total = self.db.execute(f"SELECT count(*) FROM problems p WHERE {' AND '.join(where)}", args).fetchone()[0]
        rows = list(self.db.query(f"{sql} ORDER BY b.id LIMIT ? OFFSET ?", [*all_args, limit, offset]))
        return rows, total

    def tui_distinct(self, column: str) -> list[str]:
        """The distinct non-empty values of problems.category or problems.section."""
        if column not in ("category", "section"):
            raise ValueError(column)
        rows = self.db.execute(f"SELECT DISTINCT [{column}] FROM problems WHERE [{column}] IS NOT NULL ORDER BY 1")
        return [r[0] for r in rows]

    def tui_eval_tiers(self) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT tier FROM attempts WHERE purpose = 'eval' AND tier IS NOT NULL ORDER BY 1"
        )
        return [r[0] for r in rows]

    def tui_stage_counts(self) -> dict[str, int]:
        """What each pipeline stage has produced so far, in a handful of aggregate queries."""

        def one(sql):
            return self.db.execute(sql).fetchone()[0] or 0

        counts = {
            "problems": self.count("problems"),
            "diagnosed": one(
                "SELECT count(DISTINCT problem_id) FROM attempts WHERE purpose = 'diagnose' AND error IS NULL"
            ),
            "datasets": self.count("datasets"),
            "sampled": self.count("dataset_items"),
            "taught": self.count("traces"),
            "verified": one("SELECT count(*) FROM traces WHERE verified = 1"),
            "rejected": one("SELECT count(*) FROM traces WHERE verified = 0"),
            "runs": self.count("runs"),
            "runs_done": self.count("runs", status="done"),
            "evaluated": one("SELECT count(*) FROM attempts WHERE purpose = 'eval'"),
            "rated": self.count("evals"),
            "scored": self.count("trace_scores"),
            "rated_traces": self.count("trace_quality"),
        }
        rows = self.db.execute("SELECT grade, count(*) FROM in_force_grades GROUP BY grade")
        for g, n in rows:
            counts[g or "ungraded"] = n
        for g in ("easy", "medium", "hard", "ungraded"):
            counts.setdefault(g, 0)
        return counts

    def tui_runs(self) -> list[tuple[Run, float | None, float | None]]:
        """Every run, oldest first, with its last tokens/s and its peak memory (GB)."""
        rows = self.db.query(
            """SELECT r.*,
                      (SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.kind = 'tokens_per_s'
                       ORDER BY m.step DESC LIMIT 1) AS _tps,
                      (SELECT max(m.value) FROM metrics m WHERE m.run_id = r.id AND m.kind = 'peak_memory_gb') AS _peak
               FROM runs r ORDER BY r.started_at, r.id"""
        )
        out = []
        for r in rows:
            tps, peak = r.pop("_tps"), r.pop("_peak")
            out.append((_run(r), tps, peak))
        return out

    def tui_run_detail(self, run_id: str) -> dict | None:
        """One run and its curves, as the Runs screen plots them."""
        run = self.get_run(run_id)
        if run is None:
            return None
        kinds = ("train_loss", "val_loss", "tokens_per_s", "peak_memory_gb")
        return {"run": run, **{k: self.curve(run_id, k) for k in kinds}}

    def tui_grade_history(self, problem_id: str) -> list[GradeRecord]:
        """Every grading of one problem, oldest first (the one in force is the last override, else the last)."""
        rows = self.db.query("SELECT * FROM grades WHERE problem_id = ? ORDER BY is_override, id", [problem_id])
        return [GradeRecord.model_validate(r) for r in rows]

    def tui_problem_traces(self, problem_id: str) -> list[Trace]:
        rows = self.db.query("SELECT * FROM traces WHERE problem_id = ? ORDER BY role, id", [problem_id])
        return [Trace.model_validate(r) for r in rows]

    def tui_usage_totals(self) -> dict[str, float]:
        """Remote calls, errors, tokens and cost summed over the whole project."""
        rows = self.usage()
        return {
            k: sum(r[k] or 0 for r in rows) for k in ("calls", "errors", "prompt_tokens", "completion_tokens", "cost")
        }


def _attempt(row: dict) -> Attempt:
    return Attempt.model_validate({**row, "params": json.loads(row["params"])})


def _run(row: dict) -> Run:
    return Run.model_validate({**row, "config": json.loads(row["config"])})


_TRACE_IDENTITY = ("problem_id", "role", "variant", "provider", "model", "prompt_hash")


def _where(**filters) -> tuple[str, list]:
    parts, args = [], []
    for col, val in filters.items():
        if val is not None:
            parts.append(f"[{col}] = ?")
            args.append(val)
    return ("WHERE " + " AND ".join(parts)) if parts else "", args
