"""Train/valid problems that also appear, exactly or nearly, in a test split or a benchmark.

Two checks, as the decontamination literature does them: a normalised exact match of the
question (case, whitespace and punctuation folded), and word 13-gram overlap — the
share of a training question's 13-grams that occur in one held-out question. A question
shorter than 13 words is compared whole (the exact check). Pure functions on problems;
`tailor contamination`, `export` and `report` call `find_contamination`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from app.records import Problem

NGRAM = 13
THRESHOLD = 0.5  # a pair at or above this overlap counts as contaminated
_WORD = re.compile(r"[a-z0-9]+")
TRAINING_SPLITS = ("train", "valid")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def normalised(text: str) -> str:
    return " ".join(words(text))


def ngrams(ws: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)}


@dataclass(frozen=True)
class Pair:
    train_id: str
    train_split: str
    held_id: str
    held_where: str  # "test" or "benchmark SOURCE"
    kind: str  # exact | 13-gram
    score: float  # 1.0 for exact; the share of the training question's 13-grams in the held one

    def line(self) -> str:
        return f"{self.train_split} {self.train_id} ~ {self.held_where} {self.held_id}: {self.kind} {self.score:.2f}"


def held_out(problems: list[Problem]) -> list[tuple[Problem, str]]:
    """What training data must not overlap: the test split, named "benchmark SOURCE" for a
    source the training data does not come from (`import --source math500 --split test`)."""
    train_sources = {p.source for p in problems if p.split in TRAINING_SPLITS}
    return [
        (p, "test" if p.source in train_sources else f"benchmark {p.source}") for p in problems if p.split == "test"
    ]


def find_contamination(problems: list[Problem], threshold: float = THRESHOLD) -> list[Pair]:
    """Every (training problem, held-out problem) pair that matches exactly or shares at
    least `threshold` of the training question's 13-grams, best first."""
    held = held_out(problems)
    exact: dict[str, list[tuple[Problem, str]]] = defaultdict(list)
    index: dict[tuple, set[int]] = defaultdict(set)
    for i, (p, _) in enumerate(held):
        ws = words(p.question)
        exact[" ".join(ws)].append(held[i])
        for g in ngrams(ws):
            index[g].add(i)
    pairs = []
    for t in problems:
        if t.split not in TRAINING_SPLITS:
            continue
        ws = words(t.question)
        found = {h.id: (h, where) for h, where in exact.get(" ".join(ws), []) if h.id != t.id}
        pairs += [Pair(t.id, t.split, h.id, where, "exact", 1.0) for h, where in found.values()]
        grams = ngrams(ws)
        if not grams:
            continue
        hits: dict[int, int] = defaultdict(int)
        for g in grams:
            for i in index.get(g, ()):
                hits[i] += 1
        for i, n in hits.items():
            h, where = held[i]
            score = n / len(grams)
            if h.id not in found and h.id != t.id and score >= threshold:
                pairs.append(Pair(t.id, t.split, h.id, where, f"{NGRAM}-gram", score))
    return sorted(pairs, key=lambda p: (-p.score, p.train_id, p.held_id))


def contaminated_ids(pairs: list[Pair]) -> set[str]:
    return {p.train_id for p in pairs}
