"""One pipeline stage as a list row: name, counts, status, run/cancel button. The running
stage's progress bar is the screen's (one bar, not one per row: the screen opens faster)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Label, ListItem

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
            button = Button(
                "run" if self.runnable else "—", classes="stage-button", compact=True, disabled=not self.runnable
            )
            button.can_focus = False  # the list owns the keyboard; the button is for the mouse
            yield button

    def show(self, counts: str, status: str, total: int | None = None, n: int = 0, active: bool = False) -> None:
        self.query_one(".stage-counts", Label).update(counts)
        label = status
        if active and total:  # how far it is, or where a finished stage got to
            label += f" {n:,}/{total:,}"
        style = STATUS_STYLE.get(status)
        self.query_one(".stage-status", Label).update(f"[{style}]{label}[/]" if style else label)
        button = self.query_one(".stage-button", Button)
        if self.runnable:
            button.label = "cancel" if status in ("running", "cancelling") else "run"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.Pressed(self.key))
