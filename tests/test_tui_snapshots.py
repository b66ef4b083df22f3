"""Snapshots of every screen on the fixed demo project (tests/test_tui_demo.py): 120x36,
and every screen again at 80x24 (the smallest terminal tailor promises to fit) and 160x48.

Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs in tests/__snapshots__/ before accepting them."""

from __future__ import annotations

import pytest
from test_tui_demo import DEMO_RESULTS, build_demo

from app.tui.app import TailorApp

SIZE = (120, 36)


@pytest.fixture
def demo_app(tmp_path):
    # The project directory's name shows in the header: keep it fixed.
    project = build_demo(tmp_path / "demo")
    return TailorApp(project, collect_results=lambda store, split=None: DEMO_RESULTS)


def test_pipeline_screen(snap_compare, demo_app):
    assert snap_compare(demo_app, terminal_size=SIZE)


def test_problems_screen(snap_compare, demo_app):
    assert snap_compare(demo_app, press=["2"], terminal_size=SIZE)


def test_problem_detail_screen(snap_compare, demo_app):
    assert snap_compare(demo_app, press=["2", "enter"], terminal_size=SIZE)


def test_runs_screen(snap_compare, demo_app):
    assert snap_compare(demo_app, press=["3"], terminal_size=SIZE)


def test_results_screen(snap_compare, demo_app):
    assert snap_compare(demo_app, press=["4"], terminal_size=SIZE)


def test_settings_screen(snap_compare, demo_app):
    assert snap_compare(demo_app, press=["5"], terminal_size=SIZE)


def test_problems_screen_light_theme(snap_compare, demo_app):
    assert snap_compare(demo_app, press=["t", "2"], terminal_size=SIZE)


SCREEN_KEYS = {"pipeline": [], "problems": ["2"], "runs": ["3"], "results": ["4"], "settings": ["5"]}


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("screen", SCREEN_KEYS)
def test_every_screen_fits(snap_compare, demo_app, screen, size):
    async def show(pilot):  # the keys, then every data worker, before the picture
        await pilot.press(*SCREEN_KEYS[screen])
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(demo_app, run_before=show, terminal_size=size)
