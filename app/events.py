"""One small progress interface every stage reports through.

The TUI implements it with progress bars, `--batch` and the CLI with ConsoleEvents,
tests with RecordingEvents.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Events(Protocol):
    def start(self, stage: str, total: int | None = None) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def message(self, text: str) -> None: ...
    def done(self, summary: str = "") -> None: ...


class ConsoleEvents:
    """A one-line progress bar on a terminal; plain, throttled log lines otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 30, summaries: bool = True):
        self.stream = stream or sys.stderr
        # A command that prints its own result turns summaries off so it is not said twice.
        self.summaries = summaries
        self.tty = self.stream.isatty()
        self.width = width
        self.stage, self.total, self.n = "", None, 0
        self._t0 = self._last = 0.0

    def start(self, stage: str, total: int | None = None) -> None:
        self.stage, self.total, self.n = stage, total, 0
        self._t0 = self._last = time.monotonic()
        if not self.tty:
            self._line(f"{stage}: start" + (f" ({total} items)" if total else ""))

    def advance(self, n: int = 1) -> None:
        self.n += n
        t = time.monotonic()
        # Non-TTY logs are for files and CI: one line every 10 s is plenty.
        if self.tty or t - self._last >= 10:
            self._last = t
            self._progress()

    def message(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self._line(text)
        if self.tty and self.total:
            self._progress()

    def done(self, summary: str = "") -> None:
        secs = time.monotonic() - self._t0
        if self.tty:
            self.stream.write("\r\033[K")
        self._line(f"{self.stage}: done in {secs:.1f}s" + (f" — {summary}" if summary and self.summaries else ""))

    def _progress(self) -> None:
        if self.total:
            frac = min(self.n / self.total, 1.0)
            bar = "█" * int(frac * self.width)
            text = f"{self.stage} [{bar:<{self.width}}] {self.n}/{self.total}"
        else:
            text = f"{self.stage}: {self.n}"
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
        else:
            self._line(text)

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


class RecordingEvents:
    """Keeps every event; for tests and for callers that summarise afterwards."""

    def __init__(self) -> None:
        self.log: list[tuple] = []

    def start(self, stage: str, total: int | None = None) -> None:
        self.log.append(("start", stage, total))

    def advance(self, n: int = 1) -> None:
        self.log.append(("advance", n))

    def message(self, text: str) -> None:
        self.log.append(("message", text))

    def done(self, summary: str = "") -> None:
        self.log.append(("done", summary))
