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


def one_line(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def fill_table(table, columns: list[str], rows: list[list]) -> None:
    """Replace a DataTable's columns and rows, each column as wide as its widest cell
    (DataTable's auto width does not grow when rows arrive after a column reset)."""
    table.clear(columns=True)
    for i, col in enumerate(columns):
        width = max([len(col)] + [len(str(r[i])) for r in rows])
        table.add_column(col, width=width)
    for r in rows:
        table.add_row(*r)
