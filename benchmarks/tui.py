"""How fast the TUI opens on a large project: first screen on 100,000 problems vs an empty one.

    .venv/bin/python benchmarks/tui.py [--n 100000] [--repeat 3]

Builds two projects in a temporary directory (empty; N synthetic problems, half of them
graded, inserted in one transaction), then for each, side by side, times the app from
construction until the Pipeline screen has drawn its counts (headless, 120x36), and the
Problems screen's first page. Prints the medians and the 100k / empty ratio; the issue's
budget is < 1 s for the first screen on 100,000 problems.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli import main
from app.config import DB_NAME
from app.records import Problem
from app.store import Store

CATS = ["arithmetic", "algebra", "geometry", "number_theory", "probability"]


def build(d: Path, n: int) -> Path:
    main(["init", str(d)])
    with Store(d / DB_NAME) as s:
        if n:
            s.insert_problems(
                Problem(
                    id=f"p{i:07d}",
                    question=f"What is {i} + {i % 97}?",
                    answer=str(i + i % 97),
                    category=CATS[i % 5],
                    section="main" if i % 3 else "speed",
                    split=("train", "valid", "test")[i % 3],
                )
                for i in range(n)
            )
            with s.transaction():
                s.db["grades"].insert_all(
                    {
                        "problem_id": f"p{i:07d}",
                        "grade": ("easy", "medium", "hard")[i % 3],
                        "disagreement": int(i % 7 == 0),
                        "is_override": 0,
                        "provider": "rules",
                        "created_at": "2025-01-01T00:00:00+00:00",
                    }
                    for i in range(0, n, 2)
                )
    return d


async def open_app(project: Path) -> tuple[float, float]:
    """Seconds to the first drawn screen, and then to the Problems screen's first page."""
    from app.tui.app import TailorApp

    t0 = time.perf_counter()
    app = TailorApp(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "PipelineScreen"
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        await pilot.press("2")
        await pilot.pause()
        assert app.screen.query_one("#problem-table").row_count > 0 or not app.store.count("problems")
        problems = time.perf_counter() - t1
    return first, problems


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t = time.perf_counter()
    import app.tui.app  # noqa: F401  (import cost, paid once per process)

    print(f"import app.tui.app: {time.perf_counter() - t:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        empty = build(Path(tmp) / "empty", 0)
        t = time.perf_counter()
        big = build(Path(tmp) / "big", args.n)
        print(f"built {args.n:,} problems in {time.perf_counter() - t:.1f} s")
        asyncio.run(open_app(empty))  # warm-up: Textual's first run compiles CSS, imports widgets
        times: dict[str, list[tuple[float, float]]] = {"empty": [], "big": []}
        for _ in range(args.repeat):  # interleaved, so drift affects both alike
            times["empty"].append(asyncio.run(open_app(empty)))
            times["big"].append(asyncio.run(open_app(big)))
    med = {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for k, v in times.items()}
    print(
        f"first screen:  empty {med['empty'][0]:.3f} s   {args.n:,} problems {med['big'][0]:.3f} s   "
        f"ratio {med['big'][0] / med['empty'][0]:.2f}x"
    )
    print(
        f"problems page: empty {med['empty'][1]:.3f} s   {args.n:,} problems {med['big'][1]:.3f} s   "
        f"ratio {med['big'][1] / med['empty'][1]:.2f}x"
    )
    verdict = "within" if med["big"][0] < 1.0 else "OVER"
    print(f"first screen on {args.n:,} problems: {med['big'][0]:.3f} s ({verdict} the 1 s budget)")


if __name__ == "__main__":
    main_()
