"""The Textual interface: `tailor [--project DIR]` with no command opens it."""

from __future__ import annotations

from pathlib import Path


def run_app(project: Path | str) -> int:
    """Open the app on a project; a missing or broken store is reported, not raised."""
    from app.tui.app import TailorApp

    TailorApp(Path(project)).run()
    return 0
