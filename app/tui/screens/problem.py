"""One problem: question, reference, the student's attempts, the grade (with override) and
the teachers' traces side by side."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from app.tui.widgets.labels import GRADE_STYLE, correct_text, printable


class ProblemScreen(Screen):
    BINDINGS: ClassVar = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("e", "override('easy')", "Grade easy"),
        Binding("m", "override('medium')", "Grade medium"),
        Binding("h", "override('hard')", "Grade hard"),
    ]

    def __init__(self, problem_id: str) -> None:
        super().__init__()
        self.problem_id = problem_id

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static(id="problem-head", classes="block")
            yield Static(id="question", classes="block")
            yield Static(id="reference", classes="block")
            yield Static(id="grade-box")
            yield Static(id="attempts", classes="block")
            with Horizontal(id="traces"):
                yield Vertical(id="traces-short", classes="trace-column")
                yield Vertical(id="traces-long", classes="trace-column")
        yield Footer()

    def on_mount(self) -> None:
        self.render_problem()
        self.query_one("#detail").focus()

    def render_problem(self) -> None:
        store = self.app.store
        p = store.get_problem(self.problem_id)
        if p is None:
            self.query_one("#problem-head", Static).update(f"no problem {self.problem_id}")
            return
        self.split = p.split
        where = " / ".join(x for x in (p.category, p.section) if x)
        head = Text.assemble(
            (p.id, "bold"),
            f"  · {p.split}",
            f"  · {where}" if where else "",
            f"  · difficulty {p.difficulty}" if p.difficulty is not None else "",
        )
        self.query_one("#problem-head", Static).update(head)
        self.query_one("#question", Static).update(_titled("Question", printable(p.question)))
        ref = Text.assemble(("Reference answer: ", "bold"), (printable(p.answer), "bold green"))
        if p.solution:
            ref.append("\n" + printable(p.solution))
        self.query_one("#reference", Static).update(ref)
        self._render_grade(store.tui_grade_history(p.id))
        self._render_attempts(store.attempts(problem_id=p.id))
        self._render_traces(store.tui_problem_traces(p.id))

    def _render_grade(self, history) -> None:
        text = Text()
        in_force = max(history, key=lambda g: (g.is_override, g.id or 0)) if history else None
        judged = [g for g in history if not g.is_override]
        if in_force is None:
            text.append("Grade: not graded yet", style="dim")
        else:
            text.append("Grade: ", style="bold")
            text.append((in_force.grade or "ungraded").upper(), style="bold " + GRADE_STYLE.get(in_force.grade, ""))
            if in_force.is_override:
                text.append("  ✎ manual override", style="bold")
        if judged:
            j = judged[-1]
            text.append(f"\nJudge ({j.provider}{' ' + j.model if j.model else ''}): ")
            text.append(j.grade or "ungraded", style=GRADE_STYLE.get(j.grade, ""))
            if j.judge_grade and j.judge_grade != j.grade:
                text.append(f" (judge said {j.judge_grade}; combined by the rules)")
            if j.disagreement:
                text.append("  ! judge and answer checker disagree", style="bold yellow")
            if j.rationale:
                text.append(f"\nRationale: {printable(j.rationale)}")
            if j.error:
                text.append(f"\nError: {printable(j.error)}", style="red")
        text.append("\n[e] easy  [m] medium  [h] hard — record a manual grade (it wins over the judge)", style="dim")
        self.query_one("#grade-box", Static).update(text)

    def _render_attempts(self, attempts) -> None:
        text = Text()
        text.append("Student attempts", style="bold")
        if not attempts:
            text.append("\nnone yet (run diagnose)", style="dim")
        for a in attempts:
            where = a.purpose + (f" {a.tier}" if a.tier else "") + (f" run {a.run_id}" if a.run_id else "")
            text.append(f"\n— {where} · seed {a.seed} · {a.n_tokens or 0} tokens · extracted: ")
            text.append(printable(a.extracted) if a.extracted is not None else "none", style="bold")
            text.append(" ")
            text.append_text(correct_text(a.correct))
            if a.error:
                text.append(f"\n  error: {printable(a.error)}", style="red")
            if a.text:
                text.append("\n" + printable(a.text.strip()) + "\n")
        self.query_one("#attempts", Static).update(text)

    def _render_traces(self, traces) -> None:
        for role in ("short", "long"):
            column = self.query_one(f"#traces-{role}", Vertical)
            column.remove_children()
            mine = [t for t in traces if t.role == role]
            widgets = [Static(Text(f"{role} CoT ({len(mine)})", style="bold"))]
            for t in mine:
                head = Text(f"{t.provider}{' ' + t.model if t.model else ''} · ")
                if t.verified is None:
                    head.append("not verified", style="dim")
                    cls = "trace"
                elif t.verified:
                    head.append("verified ✓", style="green")
                    cls = "trace verified"
                else:
                    head.append(f"rejected: {printable(t.reject_reason) or 'no reason'}", style="red")
                    cls = "trace rejected"
                if t.extracted is not None:
                    head.append(f" · answer {printable(t.extracted)}")
                widgets.append(Static(Text.assemble(head, "\n", printable(t.text).strip()), classes=cls))
            if not mine:
                widgets.append(Static(Text("none", style="dim")))
            column.mount(*widgets)

    def action_override(self, grade: str) -> None:
        """Record a manual grade through the same function as `tailor grade --override`."""
        from app.config import load_config
        from app.errors import TailorError
        from app.events import RecordingEvents
        from app.pipeline.grade import record_overrides

        try:
            cfg = load_config(self.app.project)
            record_overrides(cfg, self.app.store, RecordingEvents(), [f"{self.problem_id}={grade}"], split=self.split)
        except TailorError as e:
            self.notify(str(e), severity="error")
            return
        self.notify(f"{self.problem_id}: grade set to {grade} (override)")
        self.render_problem()


def _titled(title: str, body: str) -> Text:
    return Text.assemble((title, "bold"), "\n", body.strip())
