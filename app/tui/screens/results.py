"""Results: base vs distilled per configuration, accuracy by tier vs mean words, grades, categories.

The numbers come from app.results.collect (the same dict `tailor report` renders); this
screen only lays them out: each configuration vs the base, then each ablation vs its
sweep's main cell, with the headline p and the multiplicity-adjusted p the verdict uses.
DEGRADED rows (adjusted p < α, below the reference) are red, better ones green.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static
from textual_plotext import PlotextPlot

from app.identity import shown
from app.tui.widgets.columns import Col, fill, middle
from app.tui.widgets.labels import GRADE_STYLE
from app.verdicts import BETTER, DEGRADED, NO_DIFFERENCE

MAX_ROWS = 14  # a results table's height (max-height 16, less the header) before it scrolls
# At 80 columns the verdict and its p stay; the reference and CoTQS columns go first.
CONFIG_COLUMNS = (
    Col("configuration", min=10, max=40),
    Col("vs", min=4, max=24),
    Col("tier", min=4, max=6),
    Col("seeds", min=5, max=5, drop=5),
    Col("accuracy", min=8, max=12),
    Col("ref", min=4, max=5, drop=6),
    Col("Δ", min=5, max=6),
    Col("Δ 95% CI", min=8, max=15, drop=7),
    Col("p", min=5, max=7, drop=4),  # the verdict follows the adjusted p, kept
    Col("adj p", min=5, max=7),
    Col("verdict", min=7, max=26, cut="end"),
    Col("CoTQS", min=5, max=5, drop=8),
    Col("ref CoTQS", min=5, max=9, drop=9),
)
TIER_COLUMNS = (
    Col("model", min=6, max=30),
    Col("tier", min=4, max=6),
    Col("acc %", min=5, max=5),
    Col("± std", min=5, max=5, drop=1),
    Col("words", min=5, max=5),
    Col("n", min=3, max=6),
)
CATEGORY_COLUMNS = (
    Col("model", min=6, max=30),
    Col("tier", min=4, max=6),
    Col("category", min=8, max=24),
    Col("section", min=7, max=16, drop=1),
    Col("acc %", min=5, max=5),
    Col("n", min=3, max=6),
)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def interval(ci) -> str:
    return "—" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def p_value(p: float | None) -> str:
    # no p: the test is undefined for these data (no pair differs), as the CLI says it
    return "undef" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


class ResultsScreen(Screen):
    BINDINGS: ClassVar = [Binding("f5", "reload", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="results"):
            yield Static(id="results-head", classes="block")
            yield Label(
                "Distilled vs base, ablations vs main (accuracy %, mean ± std over seeds)", classes="block-title"
            )
            yield DataTable(id="configs", cursor_type="row")
            yield Label("Accuracy by response-length tier", classes="block-title")
            with Horizontal(id="tiers-row"):
                yield DataTable(id="tiers", cursor_type="row")
                yield PlotextPlot(id="tier-plot")
            yield Label("Grade distribution", classes="block-title")
            yield Static(id="grade-bars")
            yield Label("By category / section", classes="block-title")
            yield DataTable(id="categories", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.reload()

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        given = self.app.collect_results

        def fetch(store) -> dict:
            collect = given
            if collect is None:  # imported here, in the worker: app.results brings scipy (~1 s)
                from app.results import collect
            return collect(store, split="test")

        if not self.app.load(self, ("results",), fetch, self._loaded, self._failed):
            if getattr(self, "_data", None) is None:
                self.query_one("#results-head", Static).update(Text("loading results…", style="dim"))

    def _failed(self, e: Exception) -> None:
        # an empty or half-evaluated project must not break the screen
        self.query_one("#results-head", Static).update(Text(f"no results: {e}", style="yellow"))

    def _loaded(self, data: dict) -> None:
        if data is not getattr(self, "_data", None):  # the cache's answer, unchanged: nothing to redraw
            self.show(data)

    def on_resize(self, event: events.Resize) -> None:
        if getattr(self, "_data", None) is not None:
            self.show(self._data)

    def show(self, data: dict) -> None:
        self._data = data
        ps = data.get("problem_set", {})
        room = max(self.size.width - 4, 30)
        head = Text()
        for part in (
            Text.assemble(
                ("Problem set: ", "bold"),
                f"split {ps.get('split') or '—'}",
                f", benchmark {ps['benchmark']}" if ps.get("benchmark") else "",
                f", {ps.get('n', 0):,} problems, {ps.get('evaluated', 0):,} evaluated",
            ),
            # shortened in the middle to fit: two bases that differ only in their
            # fingerprint still read apart
            Text.assemble(("Base model: ", "bold"), middle(shown(data.get("base_model")) or "—", room - 12)),
            Text.assemble(("Judge: ", "bold"), data.get("judge") or "—"),
        ):  # side by side where they fit, else a line each
            line = len(head.plain) - (head.plain.rfind("\n") + 1)
            head.append("" if not head else "   " if line + 3 + len(part) <= room else "\n")
            head.append_text(part)
        if not data.get("configurations"):
            head.append("\nNo evaluated configuration yet: run evaluate after training.", style="dim")
        self.query_one("#results-head", Static).update(head)
        self._configs(data.get("configurations", []) + data.get("ablations", []))
        self._tiers(data.get("tiers", []))
        self._grades(data.get("grades", {}))
        self._categories(data.get("categories", []))

    def _configs(self, configs: list[dict]) -> None:
        rows = []
        for c in configs:
            verdict = c.get("verdict") or "—"
            style = {DEGRADED: "bold red", BETTER: "green"}.get(verdict, "")
            verdict = "not significant" if verdict == NO_DIFFERENCE else verdict  # the same, in fewer cells
            mean = f"{pct(c['mean'])} ± {pct(c['std'])}" if c.get("std") is not None else pct(c.get("mean"))
            delta = f"{100 * c['delta']:+.1f}" if c.get("delta") is not None else "—"
            cells = [
                c.get("label", ""),
                c.get("against", "base"),
                c.get("tier") or "",
                str(len(c.get("seeds", []))),
                mean,
                pct(c.get("reference_mean")),
                delta,
                interval(c.get("delta_ci")),
                p_value(c.get("p")),
                p_value(c.get("p_adjusted")),
                verdict + (" (expl.)" if c.get("exploratory") else ""),
                _num(c.get("cotqs")),
                _num(c.get("reference_cotqs")),
            ]
            rows.append([Text(str(x), style=style) for x in cells])
        fill(self.query_one("#configs", DataTable), CONFIG_COLUMNS, rows, scrollbar=len(rows) > MAX_ROWS)

    def _tiers(self, tiers: list[dict]) -> None:
        fill(
            self.query_one("#tiers", DataTable),
            TIER_COLUMNS,
            scrollbar=len(tiers) > MAX_ROWS,
            rows=[
                [t["label"], t["tier"], pct(t["accuracy"]), pct(t.get("std")), f"{t['mean_words']:.0f}", str(t["n"])]
                for t in tiers
            ],
        )
        plt = self.query_one("#tier-plot", PlotextPlot).plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("accuracy % vs mean words")
        plt.xlabel("mean words")
        for label in dict.fromkeys(t["label"] for t in tiers):
            pts = sorted((t["mean_words"], 100 * t["accuracy"]) for t in tiers if t["label"] == label)
            plt.plot([w for w, _ in pts], [a for _, a in pts], label=label, marker="braille")
        self.query_one("#tier-plot", PlotextPlot).refresh()

    def _grades(self, grades: dict) -> None:
        total = sum(grades.values()) or 1
        text = Text()
        for g in ("easy", "medium", "hard", "ungraded"):
            n = grades.get(g, 0)
            text.append(f"{g:<9}", style="bold")
            text.append("█" * round(40 * n / total), style=GRADE_STYLE.get(g, "dim"))
            text.append(f" {n:,} ({100 * n / total:.0f}%)\n")
        self.query_one("#grade-bars", Static).update(text)

    def _categories(self, rows: list[dict]) -> None:
        fill(
            self.query_one("#categories", DataTable),
            CATEGORY_COLUMNS,
            scrollbar=len(rows) > MAX_ROWS,
            rows=[
                [
                    r["label"],
                    r.get("tier") or "",
                    r.get("category") or "—",
                    r.get("section") or "—",
                    pct(r["accuracy"]),
                    str(r["n"]),
                ]
                for r in rows
            ],
        )


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"
