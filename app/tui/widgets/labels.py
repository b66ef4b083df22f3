"""Small shared renderings of grades and correctness (Rich markup, theme-independent colours)."""

from __future__ import annotations

from rich.text import Text

GRADE_STYLE = {"easy": "green", "medium": "yellow", "hard": "red"}


def grade_text(grade: str | None, override: bool = False) -> Text:
    if grade is None:
        return Text("—", style="dim")
    return Text(grade + (" ✎" if override else ""), style=GRADE_STYLE.get(grade, ""))


def correct_text(correct) -> Text:
    if correct is None:
        return Text("—", style="dim")
    return Text("✓", style="green") if correct else Text("✗", style="red")


# Text from problems, students, teachers and judges is data: a control character in it
# (ESC above all) must not reach the terminal. Each is shown as its Unicode control picture
# (ESC as ␛); newlines and tabs stay. C1 controls have no pictures: the replacement char.
_CONTROL = {c: chr(0x2400 + c) for c in range(0x20) if c not in (0x09, 0x0A)}
_CONTROL[0x7F] = "\u2421"
_CONTROL.update({c: "\ufffd" for c in range(0x80, 0xA0)})


def printable(text: str | None) -> str:
    return (text or "").translate(_CONTROL)


def one_line(text: str | None, width: int) -> str:
    text = " ".join(printable(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
