"""Problems: a paged, filtered table over the store (one page of rows in memory at a time)."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Select

from app.records import SPLITS
from app.tui.widgets.columns import Col, fill
from app.tui.widgets.labels import correct_text, grade_text, one_line

PAGE = 100
QUESTION_CHARS = 400  # more than any terminal shows on one line
COLUMNS = (
    Col("id", min=6, max=24),
    Col("split", min=5, max=9),  # "placement" (DMC's held-out test) whole
    Col("category", min=10, max=28, drop=1),  # narrower, "ari…etic" says less than no column
    Col("section", min=5, max=12, drop=2),  # goes first at 80 columns: the category says more
    Col("grade", min=5, max=8),
    Col("ok", min=2, max=2),
    Col("!", min=1, max=1),
    Col("question", min=16, max=QUESTION_CHARS, flex=True, cut="end"),
)
SEARCH_DELAY = 0.3  # seconds of no typing before the query runs

GRADES = [("easy", "easy"), ("medium", "medium"), ("hard", "hard"), ("ungraded", "ungraded")]
CORRECT = [("correct", True), ("wrong", False)]
DISAGREE = [("disagreement", True), ("agreement", False)]


class ProblemsScreen(Screen):
    BINDINGS: ClassVar = [
        Binding("n", "page(1)", "Next page"),
        Binding("p", "page(-1)", "Prev page"),
        Binding("slash", "focus_search", "Search"),
        Binding("x", "clear_filters", "Clear filters"),
        # Esc hands the keys back to the table, so n / p / x page and clear instead of typing
        Binding("escape", "leave_search", "Leave search", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="filters"):
            yield Input(placeholder="/ search question or id", id="search", compact=True)
            yield Select([(s, s) for s in SPLITS], prompt="split", id="f-split", compact=True)
            yield Select(GRADES, prompt="grade", id="f-grade", compact=True)
            yield Select(CORRECT, prompt="correctness", id="f-correct", compact=True)
        with Horizontal(classes="filters"):
            yield Select(DISAGREE, prompt="judge/checker", id="f-disagreement", compact=True)
            # their choices come from the store, loaded with the first page
            yield Select([], prompt="tier", id="f-tier", compact=True)
            yield Select([], prompt="category", id="f-category", compact=True)
            yield Select([], prompt="section", id="f-section", compact=True)
        yield DataTable(id="problem-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="page-info")
        yield Footer()

    def on_mount(self) -> None:
        self.row_offset, self.total = 0, 0
        self._search_timer = None
        self._choice_values: dict[str, list[str]] = {}
        self._choices()
        self.reload()
        self.query_one("#problem-table", DataTable).focus()

    def on_screen_resume(self) -> None:
        if hasattr(self, "row_offset"):
            self._choices()  # a new tier evaluated, new problems imported
            self.reload(keep_cursor=True)  # an override in the detail view changes a row

    def _choices(self) -> None:
        def fetch(store) -> dict[str, list[str]]:
            return {
                "tier": store.tui_eval_tiers(),
                "category": store.tui_distinct("category"),
                "section": store.tui_distinct("section"),
            }

        self.app.load(self, ("problem choices",), fetch, self._set_choices)

    def _set_choices(self, choices: dict[str, list[str]]) -> None:
        with self.prevent(Select.Changed):
            for name, values in choices.items():
                if self._choice_values.get(name) == values:
                    continue
                sel = self.query_one(f"#f-{name}", Select)
                keep = sel.value
                sel.set_options([(v, v) for v in values])
                self._choice_values[name] = values
                if keep in values:
                    sel.value = keep

    # -- filters --------------------------------------------------------------------

    def filters(self) -> dict:
        def val(sel_id: str):
            v = self.query_one(f"#f-{sel_id}", Select).value
            return None if v is Select.NULL else v

        search = self.query_one("#search", Input).value.strip()
        return {
            "split": val("split"),
            "grade": val("grade"),
            "correct": val("correct"),
            "disagreement": val("disagreement"),
            "tier": val("tier"),
            "category": val("category"),
            "section": val("section"),
            "search": search or None,
        }

    def on_select_changed(self, event: Select.Changed) -> None:
        self.row_offset = 0
        self.reload()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY, self._search_now)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._search_now()
        self.query_one("#problem-table", DataTable).focus()

    def _search_now(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        self.row_offset = 0
        self.reload()

    def action_leave_search(self) -> None:
        if self.query_one("#search", Input).has_focus:
            self._search_now()
            self.query_one("#problem-table", DataTable).focus()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_filters(self) -> None:
        with self.prevent(Select.Changed, Input.Changed):
            for sel in self.query(Select):
                sel.clear()
            self.query_one("#search", Input).value = ""
        self.row_offset = 0
        self.reload()

    def action_page(self, step: int) -> None:
        new = self.row_offset + step * PAGE
        if 0 <= new < max(self.total, 1):
            self.row_offset = new
            self.reload()

    # -- the table ------------------------------------------------------------------

    def reload(self, keep_cursor: bool = False) -> None:
        filters, offset = self.filters(), self.row_offset
        key = ("problems", tuple(filters.items()), offset)

        def fetch(store):
            return store.tui_problem_page(**filters, limit=PAGE, offset=offset)

        if not self.app.load(self, key, fetch, lambda page: self._fill(page, offset, keep_cursor)):
            self.query_one("#page-info", Label).update("loading…")

    def on_resize(self, event: events.Resize) -> None:
        if getattr(self, "_page", None):
            self._fill(*self._page, keep_cursor=True, force=True)

    def _fill(self, page: tuple[list[dict], int], offset: int, keep_cursor: bool, force: bool = False) -> None:
        shown = getattr(self, "_page", None)
        if not force and shown is not None and shown[0] is page and shown[1] == offset:
            self._show_info(offset)  # the cache's answer, unchanged
            return
        self._page = (page, offset)
        rows, self.total = page
        table = self.query_one("#problem-table", DataTable)
        cursor = table.cursor_row
        fill(
            table,
            COLUMNS,
            [
                [
                    r["id"],
                    r["split"],
                    r["category"] or "",
                    r["section"] or "",
                    grade_text(r["grade"], bool(r["is_override"])),
                    correct_text(r["correct"]),
                    "!" if r["disagreement"] else "",
                    one_line(r["question"], QUESTION_CHARS),
                ]
                for r in rows
            ],
            keys=[r["id"] for r in rows],
        )
        if keep_cursor and rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        self._show_info(offset)

    def _show_info(self, offset: int) -> None:
        last = min(offset + PAGE, self.total)
        pages = max(1, -(-self.total // PAGE))
        info = (
            f"rows {offset + 1:,}–{last:,} of {self.total:,} · page {offset // PAGE + 1:,}/{pages:,}"
            if self.total
            else "no problem matches these filters"
        )
        self.query_one("#page-info", Label).update(info + "   (enter: open · n/p: page · x: clear filters)")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from app.tui.screens.problem import ProblemScreen

        self.app.push_screen(ProblemScreen(event.row_key.value))
