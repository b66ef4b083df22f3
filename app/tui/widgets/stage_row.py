"""One pipeline stage as a list row: name, counts, status, progress bar, run/cancel button."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Label, ListItem, ProgressBar

STATUS_STYLE = {
    "running": "bold $accent",
    "cancelling": "bold $warning",
    "done": "$success",
    "cancelled": "$warning",
    "failed": "bold $error",
}


class StageRow(ListItem):
    class Pressed(Message):
        """The row's run/cancel button was clicked."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, key: str, title: str, runnable: bool) -> None:
        super().__init__(id=f"stage-{key}")
        self.key, self.title, self.runnable = key, title, runnable

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.title, classes="stage-name")
            yield Label("", classes="stage-counts")
            yield Label("", classes="stage-status")
            yield ProgressBar(total=None, show_eta=True, classes="stage-bar")
            button = Button(
                "run" if self.runnable else "—", classes="stage-button", compact=True, disabled=not self.runnable
            )
            button.can_focus = False  # the list owns the keyboard; the button is for the mouse
            yield button

    def show(self, counts: str, status: str, total: int | None = None, n: int = 0, active: bool = False) -> None:
        self.query_one(".stage-counts", Label).update(counts)
        running = status in ("running", "cancelling")
        label = status
        if active and not running and total:  # where a finished stage got to
            label += f" {n:,}/{total:,}"
        style = STATUS_STYLE.get(status)
        self.query_one(".stage-status", Label).update(f"[{style}]{label}[/]" if style else label)
        bar = self.query_one(".stage-bar", ProgressBar)
        # Only a running stage has a bar: a finished one's would animate or count down its ETA.
        bar.display = active and running
        if bar.display:
            bar.update(total=total, progress=n)
        button = self.query_one(".stage-button", Button)
        if self.runnable:
            button.label = "cancel" if status in ("running", "cancelling") else "run"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.Pressed(self.key))
