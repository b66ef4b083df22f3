"""Column widths: fit the terminal, drop the least useful first, never cut ids to look alike."""

from app.tui.widgets.columns import PAD, Col, middle, shorten, widths

COLS = (
    Col("id", min=6, max=24),
    Col("category", min=6, max=20, drop=1),
    Col("section", min=5, max=12, drop=2),
    Col("question", min=16, max=400, flex=True, cut="end"),
)
ROWS = [["013f035846c1f1b2", "fractions_percent", "speed", "What is 1/3 + 1/6? " * 5]]


def test_wide_terminal_shows_everything_and_gives_the_question_the_rest():
    w = widths(COLS, ROWS, 160)
    assert w[:3] == [16, 17, 7] and sum(w) + PAD * 4 == 160


def test_narrow_terminal_drops_section_then_category():
    assert widths(COLS, ROWS, 72) == [16, 17, None, 72 - 16 - 17 - 3 * PAD]
    # the question is owed twice its minimum first; the category comes back in what is left
    assert widths(COLS, ROWS, 60) == [16, 6, None, 2 * 16]
    assert widths(COLS, ROWS, 50) == [16, None, None, 50 - 16 - 2 * PAD]


def test_a_dropped_column_comes_back_narrower_when_the_question_keeps_twice_its_minimum():
    cols = (Col("id", min=6, max=24), Col("label", min=6, max=60, drop=1), Col("q", min=16, max=400, flex=True))
    rows = [["abcdef", "l" * 60, "q" * 100]]
    w = widths(cols, rows, 70)  # 60-wide label does not fit; a narrower one does
    assert w[1] is not None and w[1] < 60 and w[2] == 2 * 16 and sum(w) + 3 * PAD == 70


def test_without_a_flexible_column_the_widest_is_squeezed_to_its_minimum_at_most():
    cols = (Col("a", min=4, max=30), Col("b", min=4, max=30))
    assert widths(cols, [["x" * 30, "y" * 10]], 30) == [16, 10]
    assert widths(cols, [["x" * 30, "y" * 30]], 4) == [4, 4]


def test_ids_are_shortened_in_the_middle_and_prose_at_the_end():
    a, b = "demo-only-long-s0-20261201-230531", "demo-only-long-s1-20261201-230548"
    assert middle(a, 12) != middle(b, 12) and len(middle(a, 12)) == 12
    assert shorten("What is the answer to this?", 10, "end") == "What is t…"


def test_short_text_in_the_flexible_column_leaves_its_room_to_the_others():
    cols = (Col("id", min=6, max=24), Col("label", min=6, max=60, drop=1), Col("q", min=16, max=400, flex=True))
    assert widths(cols, [["abcdef", "l" * 30, "short q"]], 50) == [6, 22, 16]  # no owed 32 for 7 characters
