"""The three verdicts a comparison ends in, in a module light enough for the TUI to import
(app.results brings scipy, which the TUI loads off its UI thread)."""

BETTER, DEGRADED, NO_DIFFERENCE = "better", "DEGRADED", "no significant difference"
