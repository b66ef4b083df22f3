"""Snapshots of every screen on the fixed demo project (tests/test_tui_demo.py), 120x36.

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
