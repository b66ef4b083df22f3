"""What the interface knows about the stage that runs (or ran last) — UI thread only."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

# A message from a stage that reports a failure; shown under "last errors".
_ERROR_WORDS = ("error", "failed", "ungraded", "rejected", "unreachable")


@dataclass
class JobState:
    key: str | None = None
    status: str = "idle"  # idle | running | cancelling | done | cancelled | failed
    phase: str = ""
    total: int | None = None
    n: int = 0
    summary: str = ""
    started: float = 0.0
    usage_start: dict = field(default_factory=dict)
    log: deque = field(default_factory=lambda: deque(maxlen=200))
    errors: deque = field(default_factory=lambda: deque(maxlen=5))
    logged: int = 0  # lines ever logged, so a view can append only the new ones
    on_cancel: str = ""

    def _log(self, text: str) -> None:
        self.log.append(text)
        self.logged += 1

    @property
    def running(self) -> bool:
        return self.status in ("running", "cancelling")

    def begin(self, key: str, usage: dict, on_cancel: str) -> None:
        self.key, self.status, self.phase, self.total, self.n, self.summary = key, "running", key, None, 0, ""
        self.started, self.usage_start, self.on_cancel = time.monotonic(), dict(usage), on_cancel

    def apply(self, kind: str, *, total: int | None, n: int, text: str, status: str) -> None:
        """Fold one StageUpdate into the state."""
        if kind == "start":
            self.phase, self.total, self.n = text, total, 0
            self._log(f"{text}: start" + (f" ({total:,} items)" if total else ""))
        elif kind == "advance":
            self.n += n
        elif kind == "message":
            self._log(text)
            if any(w in text.lower() for w in _ERROR_WORDS):
                self.errors.append(f"{self.key}: {text}")
        elif kind == "done":
            self.summary = text
            if self.status != "cancelling":  # a stopped stage's summary is what it kept, said below
                self._log(f"{self.phase}: done" + (f" — {text}" if text else ""))
        elif kind == "finished":
            self.status = status
            if status == "cancelled":
                kept = text or self.summary
                self._log(
                    f"{self.key}: cancelled"
                    + (f" — kept {kept}" if kept else "; finished work is kept")
                    + f"; {self.on_cancel}"
                )
            elif status == "failed":
                self._log(f"{self.key}: failed: {text}")
                self.errors.append(f"{self.key}: {text}")
            elif text:
                self.summary = text
