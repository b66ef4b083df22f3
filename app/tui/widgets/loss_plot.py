"""Train and validation loss of one run, with the best (early-stop) iteration marked."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class LossPlot(PlotextPlot):
    def show_run(
        self, run_id: str | None, train: list[tuple[int, float]], val: list[tuple[int, float]], best_iter: int | None
    ) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not run_id or not (train or val):
            plt.title("no loss points yet" if run_id else "no run selected")
            self.refresh()
            return
        plt.title(f"run {run_id}: loss")
        plt.xlabel("iteration")
        if train:
            plt.plot([s for s, _ in train], [v for _, v in train], label="train", marker="braille")
        if val:
            plt.plot([s for s, _ in val], [v for _, v in val], label="val", marker="braille")
        # plotext spans -1..1 around a lone point or a flat line: give it a sensible window
        steps = [s for s, _ in train + val]
        values = [v for _, v in train + val]
        if min(steps) == max(steps):
            plt.xlim(min(steps) - 1, max(steps) + 1)
        if min(values) == max(values):
            pad = abs(values[0]) * 0.05 or 0.05
            plt.ylim(values[0] - pad, values[0] + pad)
        if best_iter is not None:
            plt.vertical_line(best_iter)
            best = [v for s, v in val if s == best_iter]
            if best:
                plt.scatter([best_iter], best, marker="x", label=f"best @ {best_iter}")
        self.refresh()
