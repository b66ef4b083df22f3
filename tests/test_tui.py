"""Pilot tests of the TUI: navigation, filtering, paging, opening a problem, overriding its
grade, running and cancelling stages, the command palette and the settings screen."""

from __future__ import annotations

import asyncio
import threading

import pytest
from test_tui_demo import DEMO_RESULTS, FakeJob, build_demo
from textual.widgets import DataTable, Input, Label, Select

from app.config import DB_NAME
from app.records import Problem
from app.store import Store
from app.tui.app import TailorApp
from app.tui.runner import StageCancelled, TuiEvents

SIZE = (120, 36)

# anyio's pytest plugin (installed with httpx) runs the async tests on asyncio.
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def demo(tmp_path):
    return build_demo(tmp_path / "proj")


def make_app(project, **kw):
    kw.setdefault("collect_results", lambda store, split=None: DEMO_RESULTS)
    return TailorApp(project, **kw)


def by_label(table: DataTable, row: int) -> dict:
    """One row of a table as {column label: cell}: columns are sized and dropped to fit."""
    labels = [str(c.label) for c in table.columns.values()]
    return dict(zip(labels, table.get_row_at(row), strict=True))


def table_ids(app) -> list[str]:
    table = app.screen.query_one("#problem-table", DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_navigation_between_screens(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "PipelineScreen"
        for key, name in (
            ("2", "ProblemsScreen"),
            ("3", "RunsScreen"),
            ("4", "ResultsScreen"),
            ("5", "SettingsScreen"),
            ("1", "PipelineScreen"),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert type(app.screen).__name__ == name


async def test_pipeline_shows_counts(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        counts = {row.key: str(row.query_one(".stage-counts", Label).render()) for row in app.screen.query("StageRow")}
        assert counts["import"] == "12 problems"
        assert counts["diagnose"] == "8 diagnosed"
        assert counts["grade"] == "E 3 / M 3 / H 2"
        assert counts["train"] == "1 of 1 runs done"
        assert app.screen.query_one("#dataset", Input).value == "demo"


async def test_filter_by_grade_split_and_search(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        assert len(table_ids(app)) == 12
        app.screen.query_one("#f-grade", Select).value = "hard"
        await pilot.pause()
        assert table_ids(app) == ["p003", "p007"]
        app.screen.query_one("#f-grade", Select).value = "ungraded"
        app.screen.query_one("#f-split", Select).value = "test"
        await pilot.pause()
        assert table_ids(app) == ["p002", "p005", "p008", "p011"]
        await pilot.press("x")
        await pilot.pause()
        assert len(table_ids(app)) == 12
        app.screen.query_one("#f-correct", Select).value = False
        await pilot.pause()
        assert table_ids(app) == ["p001", "p009"]
        await pilot.press("x", "slash")
        await pilot.press(*"p010", "enter")
        await pilot.pause()
        assert table_ids(app) == ["p010"]


async def test_paging_keeps_one_page_in_memory(tmp_path):
    d = build_demo(tmp_path / "proj")
    with Store(d / DB_NAME) as s:
        s.insert_problems(Problem(id=f"z{i:04d}", question=f"q {i}", answer="1") for i in range(240))
    app = make_app(d)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        assert len(table_ids(app)) == 100
        info = app.screen.query_one("#page-info", Label)
        assert "rows 1–100 of 252" in str(info.render())
        await pilot.press("n", "n")
        await pilot.pause()
        assert len(table_ids(app)) == 52
        assert "page 3/3" in str(info.render())
        await pilot.press("n")  # past the end: stays
        await pilot.press("p")
        await pilot.pause()
        assert table_ids(app)[0] == "z0088"


async def test_open_problem_and_override_grade(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("enter")  # p000: easy
        await pilot.pause()
        assert type(app.screen).__name__ == "ProblemScreen"

        def text(wid):
            return str(app.screen.query_one(wid).render())

        assert "What is 0 times 3" in text("#question")
        assert "EASY" in text("#grade-box") and "steps checked for p000" in text("#grade-box")
        assert "verified" in str(app.screen.query_one("#traces-short").query(".trace").first().render())
        assert "answer 1 != reference 0" in str(app.screen.query_one("#traces-long").query(".trace").first().render())
        await pilot.press("h")
        await pilot.pause()
        assert "HARD" in text("#grade-box") and "manual override" in text("#grade-box")
        with Store(demo / DB_NAME) as s:
            g = s.current_grades()["p000"]
        assert g.grade == "hard" and g.is_override
        await pilot.press("escape")
        await pilot.pause()
        table = app.screen.query_one("#problem-table", DataTable)
        assert str(table.get_row_at(0)[4]) == "hard ✎"


async def test_run_grade_stage_to_completion(demo):
    with Store(demo / DB_NAME) as s:  # drop the demo grades so the rules judge has work
        s.db.execute("DELETE FROM grades")
        s.db.conn.commit()
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "r")  # import, diagnose, grade
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.job.key == "grade" and app.job.status == "done", app.job.log
        row = app.screen.query_one("#stage-grade")
        assert "done" in str(row.query_one(".stage-status", Label).render())
        assert str(row.query_one(".stage-counts", Label).render()) == "E 6 / M 0 / H 2"


async def test_start_and_cancel_a_stage(demo):
    FakeJob.reached = threading.Event()
    with Store(demo / DB_NAME) as s:
        s.db.execute("DELETE FROM grades")
        s.db.execute("DELETE FROM attempts")
        s.db.conn.commit()
    app = make_app(demo, job_cls=FakeJob)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "r")  # diagnose
        assert await asyncio.to_thread(FakeJob.reached.wait, 10)
        await pilot.pause()
        assert app.job.running
        await pilot.press("r")  # a second stage is refused while one runs
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.job.status == "cancelled"
        row = app.screen.query_one("#stage-diagnose")
        assert "cancelled" in str(row.query_one(".stage-status", Label).render())
        assert str(row.query_one(".stage-counts", Label).render()) == "2 diagnosed"
        assert not app.screen.query_one("#progress-row").display  # no ETA counting down after the cancel
        log = list(app.job.log)
        assert not any(": done" in line for line in log), log  # it was stopped, not done
        assert any("cancelled — kept" in line and "run it again" in line for line in log), log
    with Store(demo / DB_NAME) as s:  # the attempts that finished were kept, whole
        assert s.count("attempts", purpose="diagnose") == 2


async def test_events_adapter_raises_once_cancelled():
    posted, flag = [], threading.Event()
    ev = TuiEvents(posted.append, "grade", flag, interval=0)
    ev.start("grade", 3)
    ev.advance()
    flag.set()
    with pytest.raises(StageCancelled):
        ev.advance()
    with pytest.raises(StageCancelled):
        ev.message("x")
    assert [m.kind for m in posted][:2] == ["start", "advance"]
    assert sum(m.n for m in posted if m.kind == "advance") == 2


async def test_runs_screen_plots_selected_run(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        stats = str(app.screen.query_one("#run-stats", Label).render())
        assert "best iteration 30" in stats and "peak 1.50 GB" in stats and "6 train / 6 val points" in stats


async def test_results_marks_degraded_configuration(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await pilot.pause()
        table = app.screen.query_one("#configs", DataTable)
        row = by_label(table, 1)
        assert str(row["configuration"]) == "random/acotd" and "red" in str(row["configuration"].style)
        assert [str(row[c]) for c in ("p", "adj p", "verdict")] == ["0.001", "0.002", "DEGRADED"]
        assert str(by_label(table, 0)["accuracy"]) == "72.5 ± 3.5"
        assert "green" in str(by_label(table, 0)["configuration"].style)
        ablation = by_label(table, 2)
        assert str(ablation["vs"]) == "demo/acotd" and str(ablation["Δ"]) == "-50.0"


async def test_settings_shows_validation_error_in_place(demo):
    (demo / "tailor.toml").write_text(
        '[student]\nmodel = "m"\n\n[judge]\nprovider = "openai"\nbase_url = "ftp://x"\nmodel = "j"\n', encoding="utf-8"
    )
    pings = []
    app = make_app(demo, ping=lambda cfg: pings.append(cfg) or [])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        status = str(app.screen.query_one("#config-status").render())
        assert "line 6" in status and "judge.base_url" in status
        await pilot.press("p")  # refused: nothing to ping with a broken config
        await pilot.pause()
        assert pings == []


async def test_ping_runs_in_a_worker(demo):
    from app.pipeline.ping import PingResult

    app = make_app(demo, ping=lambda cfg: [PingResult("judge", "openai", "m", False, None, "HTTP 401")])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "p")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#ping-table", DataTable)
        assert [str(c) for c in table.get_row_at(0)][:2] == ["FAIL", "judge"]


async def test_command_palette_has_every_action_and_theme_toggles(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        commands = list(app.get_system_commands(app.screen))
        titles = [c.title for c in commands]
        assert {"Run stage", "Cancel stage", "Go to problems", "Go to results", "Run stage: evaluate"} <= set(titles)
        assert len(titles) == len(set(titles)), titles  # nothing twice
        assert all("_" not in c.help and "app." not in c.help for c in commands)  # no raw action names
        await pilot.press("2")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Clear filters" in titles and "Cancel stage" in titles  # cancel works from any screen
        assert not any("cursor" in t.lower() for t in titles)  # the table's own keys are not commands
        theme = app.theme
        await pilot.press("t")
        assert app.theme != theme


async def test_a_failing_stage_reports_its_error(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#stages").index = 3  # sample, into the existing dataset name "demo"
        app.screen.query_one("#sample-name", Input).value = "demo"
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.job.status == "failed"
        assert "already exists" in str(app.screen.query_one("#errors").render())
        row = app.screen.query_one("#stage-sample")
        assert "failed" in str(row.query_one(".stage-status", Label).render())
        assert not app.screen.query_one("#progress-row").display  # no bar animating after the stage ended


async def test_problem_page_query_filters_by_tier_and_escapes_search(demo):
    from app.records import Attempt

    with Store(demo / DB_NAME) as s:
        for pid, tier, ok in (("p002", "R1", True), ("p005", "R1", False), ("p005", "R6", True)):
            s.insert_attempt(
                Attempt(
                    key=f"e-{pid}-{tier}",
                    problem_id=pid,
                    purpose="eval",
                    model="tiny",
                    prompt_hash="h",
                    params={"eval_seed": 0},
                    tier=tier,
                    correct=ok,
                )
            )
        rows, total = s.tui_problem_page(tier="R1")
        assert total == 2 and [r["correct"] for r in rows] == [1, 0]
        assert s.tui_problem_page(tier="R1", correct=True)[1] == 1
        assert s.tui_problem_page(tier="R6")[0][0]["id"] == "p005"
        assert s.tui_problem_page(search="%")[1] == 0  # a literal percent sign, not a wildcard
        assert s.tui_problem_page(search="times 3, plus 4")[1] == 2
        assert s.tui_eval_tiers() == ["R1", "R6"]


class SolveJob:
    """A generate job that answers "What is I times 3, plus J?" correctly for even I."""

    def __init__(self, spec, blas=None):
        self.spec = spec

    def cancel(self) -> None:
        pass

    def run(self, on_event):
        import re

        from app.jobs import JobOutcome

        on_event({"event": "start", "model": "fake", "device": "cpu", "dtype": "float32"})
        for item in self.spec["items"]:
            i, j = map(int, re.search(r"What is (\d+) times 3, plus (\d+)", item["messages"][-1]["content"]).groups())
            answer = 3 * i + j if i % 2 == 0 else -1
            on_event(
                {
                    "event": "result",
                    "id": item["id"],
                    "text": f"So \\boxed{{{answer}}}",
                    "n_tokens": 4,
                    "finish_reason": "stop",
                }
            )
        return JobOutcome(status="done", returncode=0)


async def test_evaluate_from_the_pipeline_then_read_the_results(demo):
    """Start an evaluation from the Pipeline screen, let it finish, read it on Results
    (the real app.results.collect, not the fixed demo dict)."""
    with Store(demo / DB_NAME) as s:  # the fixture's run has no adapter: evaluate the base model only
        s.db.execute("UPDATE runs SET status = 'interrupted'")
        s.db.conn.commit()
    app = TailorApp(demo, job_cls=SolveJob)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        from app.tui.stages import STAGES

        await pilot.press(*["down"] * [st.key for st in STAGES].index("eval"), "r")  # the rows are the registry's
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.job.key == "eval" and app.job.status == "done", app.job.log
        await pilot.press("4")
        await pilot.pause()
        tiers = app.screen.query_one("#tiers", DataTable)
        row = [str(c) for c in tiers.get_row_at(0)]
        assert row[:2] == ["base", "R1"] and row[2] == "50.0"  # test problems p002, p005, p008, p011
    with Store(demo / DB_NAME) as s:
        assert s.count("attempts", purpose="eval") == 4


async def test_control_characters_in_model_output_never_reach_the_terminal(demo):
    from app.tui.widgets.labels import one_line, printable

    assert printable("a\x1b[2Jb\x07\r\n\tc\x7f\x9b") == "a\u241b[2Jb\u2407\u240d\n\tc\u2421\ufffd"
    assert one_line("x\x1b]0;owned\x07 y", 40) == "x\u241b]0;owned\u2407 y"
    with Store(demo / DB_NAME) as s:
        s.db.execute("UPDATE attempts SET text = ? WHERE problem_id = 'p000'", ["think \x1b[2J\x1b]0;owned\x07 done"])
        s.db.execute("UPDATE problems SET question = ? WHERE id = 'p000'", ["What is 0 times 3?\x1b[31m"])
        s.db.conn.commit()
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        shown = str(app.screen.query_one("#attempts").render()) + str(app.screen.query_one("#question").render())
        assert "\x1b" not in shown and "\x07" not in shown
        assert "\u241b[2J" in shown and "\u241b[31m" in shown


async def test_escape_leaves_the_search_box(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("slash", *"p01", "escape")
        await pilot.pause()
        search = app.screen.query_one("#search", Input)
        assert search.value == "p01" and not search.has_focus
        assert app.screen.query_one("#problem-table", DataTable).has_focus
        assert table_ids(app) == ["p010", "p011"]
        await pilot.press("x")  # a key for the table again, not a letter in the box
        await pilot.pause()
        assert search.value == "" and len(table_ids(app)) == 12


async def test_sample_has_its_own_inputs_and_a_fresh_name(demo):
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        name, dataset = screen.query_one("#sample-name", Input), screen.query_one("#dataset", Input)
        assert (name.value, dataset.value) == ("set-2", "demo")  # the demo holds one set, "demo"
        screen.query_one("#sample-strategy", Select).value = "all"
        screen.query_one("#stages").index = 3
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.job.status == "done", app.job.log
        with Store(demo / DB_NAME) as s:
            assert s.get_dataset("set-2").strategy == "all"
        assert (dataset.value, name.value) == ("set-2", "set-3")  # later stages use the new set


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_runs_follows_a_run_that_starts_training_and_resumes_an_interrupted_one(demo):
    from app.records import Run

    app = make_app(demo)
    started = []
    # as the real one: the job is running when it returns
    app.start_stage = lambda key, opts: started.append((key, opts)) or app.job.begin(key, {}, "") or True
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        assert app.screen.selected == "run-demo-s0"
        with Store(demo / DB_NAME) as s:  # a training process starts a run and reports one point
            s.insert_run(Run(id="run-demo-s1", seed=1, config={}, status="running", started_at="2099-01-01"))
            s.add_metrics("run-demo-s1", 10, {"train_loss": 2.5})
        app.screen.reload()
        await settle(app, pilot)
        table = app.screen.query_one("#runs-table", DataTable)
        assert app.screen.selected == "run-demo-s1" and table.cursor_row == 1
        assert "1 train / 0 val points" in str(app.screen.query_one("#run-stats", Label).render())
        with Store(demo / DB_NAME) as s:  # the next report arrives: the followed run's plot moves
            s.add_metrics("run-demo-s1", 20, {"train_loss": 2.1})
        app.screen.reload()
        await settle(app, pilot)
        assert "2 train / 0 val points" in str(app.screen.query_one("#run-stats", Label).render())
        await pilot.press("c")  # no stage of this app is training it: said, nothing breaks
        with Store(demo / DB_NAME) as s:  # the process dies; the run is left interrupted
            s.update_run("run-demo-s1", status="interrupted", stop_reason="interrupted")
        app.screen.reload()
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert app.screen._timer._active.is_set()  # noqa: SLF001 -- polls again: the resumed run moves on screen
    assert started == [("train", {"resume": "run-demo-s1"})]


async def test_runs_shows_the_iteration_of_the_run_training_and_that_a_cancel_waits_for_it(demo):
    from app.records import Run

    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        with Store(demo / DB_NAME) as s:
            s.insert_run(Run(id="run-demo-s1", seed=1, config={}, status="running", started_at="2099-01-01"))
        app.job.begin("train", {}, "")
        app.job.apply("start", total=6, n=0, text="train run-demo-s1", status="")
        app.job.apply("advance", total=None, n=2, text="", status="")
        await pilot.press("3")
        await settle(app, pilot)
        stats = lambda: str(app.screen.query_one("#run-stats", Label).render())  # noqa: E731
        assert "iteration 2/6" in stats() and "c: cancel" in stats()
        app.job.status = "cancelling"  # as cancel_stage leaves it until the process stops
        app.screen.reload()
        await settle(app, pilot)
        assert "stopping after this iteration" in stats()
        await pilot.press("r")  # said why not yet, nothing started
        await settle(app, pilot)
        assert app.job.status == "cancelling"


async def test_resume_reaches_train_from_the_tui_options():
    from app.tui.stages import BY_KEY

    seen = {}

    def fake_train(cfg, store, events, *, resume=None, dataset=None, project=None, job_cls=None):
        seen.update(resume=resume, dataset=dataset)

    import app.pipeline.train as train_module

    real, train_module.train = train_module.train, fake_train
    try:
        BY_KEY["train"].make({"resume": "run-x"})(None, None, None, project=None, job_cls=None)
    finally:
        train_module.train = real
    assert seen == {"resume": "run-x", "dataset": None}


async def test_a_broken_config_opens_at_settings_with_every_problem_at_its_line(demo):
    (demo / "tailor.toml").write_text(
        '[student]\nmodel = 3\ntemperature = "hot"\n\n[judge]\nprovider = "rules"\ncolour = 1\n', encoding="utf-8"
    )
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert type(app.screen).__name__ == "SettingsScreen"
        status = str(app.screen.query_one("#config-status").render())
        assert "3 problems" in status
        assert "line 2: student.model" in status and "line 3: student.temperature" in status
        assert "line 7: judge.colour: unknown key" in status
    (demo / "tailor.toml").write_text('[student]\nmodel = "m"\ntemperature = \n', encoding="utf-8")
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        status = str(app.screen.query_one("#config-status").render())
        assert "line 3: TOML syntax" in status, status


def test_the_tui_command_opens_on_a_broken_config(demo, monkeypatch):
    import app.tui
    from app.cli import main

    opened = []
    monkeypatch.setattr(app.tui, "run_app", lambda project: opened.append(project) or 0)
    (demo / "tailor.toml").write_text("[student]\nmodel = 3\n", encoding="utf-8")
    assert main(["--project", str(demo)]) == 0 and opened
    (demo / "tailor.toml").unlink()
    assert main(["--project", str(demo)]) == 1  # no project here: one line, no app
