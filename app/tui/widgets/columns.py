"""Table columns sized to the terminal and the content.

Each column asks for the width of its widest cell (within its bounds); one column may
be the flexible one that takes what is left (a question's text). When the terminal is
too narrow, columns marked droppable are hidden, least important first, before any
other column is squeezed. Text that still does not fit is shortened in the middle, so
two run ids that differ only at the end never look alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

PAD = 2  # DataTable's cell padding, one space either side


@dataclass(frozen=True)
class Col:
    label: str
    min: int = 3
    max: int = 40
    flex: bool = False  # takes the width the others leave
    drop: int = 0  # hidden when short of space: higher first; 0 = always shown
    cut: str = "middle"  # where too long a cell is shortened: "middle" (ids) or "end" (prose)


def shorten(text: str, width: int, cut: str = "middle") -> str:
    if len(text) <= width:
        return text
    if cut == "end":
        return text[: max(width - 1, 0)] + "…"[: max(width, 0)]
    return middle(text, width)


def middle(text: str, width: int) -> str:
    """`text` in at most `width` characters, shortened in the middle with an ellipsis."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def plain(cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def widths(cols: Sequence[Col], rows: Sequence[Sequence], available: int) -> list[int | None]:
    """Each column's width, or None where it is hidden, to fit `available` terminal cells."""
    want = []
    for i, c in enumerate(cols):
        content = max((len(plain(r[i])) for r in rows), default=0)
        want.append(max(c.min, min(c.max, max(content, len(c.label)))))
    shown = list(range(len(cols)))

    # the flexible column is owed twice its minimum (or all its text, if shorter) before
    # any droppable one is shown: the question text is what a row is read for
    owed = {i: min(2 * c.min, want[i]) for i, c in enumerate(cols) if c.flex}

    def used(idx, owing: bool = False) -> int:
        return sum(((owed[i] if owing else cols[i].min) if cols[i].flex else want[i]) + PAD for i in idx)

    dropped = []
    for i in sorted((i for i, c in enumerate(cols) if c.drop), key=lambda i: -cols[i].drop):
        if used(shown, owing=True) <= available:
            break
        shown.remove(i)
        dropped.append(i)
    out: list[int | None] = [want[i] if i in shown else None for i in range(len(cols))]
    spare = available - used(shown)
    # the most useful of them back, narrower, where room is left once the flexible column
    # has what it is owed
    keep = next((owed[i] - cols[i].min for i in shown if cols[i].flex), 0)
    for i in reversed(dropped):
        if cols[i].min + PAD <= spare - keep:
            out[i] = min(want[i], spare - keep - PAD)
            spare -= out[i] + PAD
    flex = [i for i in shown if cols[i].flex]
    if flex:
        out[flex[0]] = max(cols[flex[0]].min, cols[flex[0]].min + spare)
    else:  # squeeze the widest column a cell at a time, never below its minimum
        while spare < 0:
            room = [i for i in shown if out[i] > cols[i].min]
            if not room:
                break
            widest = max(room, key=lambda i: out[i])
            out[widest] -= 1
            spare += 1
    return out


def fill(
    table: DataTable,
    cols: Sequence[Col],
    rows: Sequence[Sequence],
    keys: Sequence | None = None,
    scrollbar: bool = True,
) -> None:
    """Replace the table's columns and rows, sized to the table's current width, less
    the vertical scrollbar's when the rows may not fit its height."""
    available = (table.size.width or table.app.size.width) - (2 if scrollbar else 0)
    ws = widths(cols, rows, available)
    table.clear(columns=True)
    for c, w in zip(cols, ws, strict=True):
        if w is not None:
            table.add_column(c.label, width=w)
    for n, r in enumerate(rows):
        cells = []
        for c, cell, w in zip(cols, r, ws, strict=True):
            if w is None:
                continue
            if isinstance(cell, Text):
                cells.append(cell if len(cell.plain) <= w else Text(shorten(cell.plain, w, c.cut), style=cell.style))
            else:
                cells.append(shorten(str(cell), w, c.cut))
        table.add_row(*cells, key=None if keys is None else keys[n])
