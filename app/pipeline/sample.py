"""`tailor sample`: draw a named distillation set of size K from the graded training pool.

Strategies (ACoTD and its ablations):

* ``adaptive`` — proportional stratified sampling: stratum d gets K·N_d/N problems,
  rounded by the largest-remainder method so the sizes sum to exactly K and each is
  within 1 of its exact share.
* ``random``   — K problems uniformly from all graded ones, whatever their grade.
* ``fixed``    — the strata follow a given ratio E:M:H (default 6:3:1), largest remainder.
* ``all``      — every graded problem (K is ignored; the dataset's k is the pool size).

The pool is the grades in force (`Store.current_grades`, overrides win) of the *train*
split with a grade; ungraded problems and problems of the valid / test / placement
splits are never sampled. A stratum smaller than its quota is an error, unless
``allow_short`` fills the missing places from the other strata (by the same ratio among
those that still have problems), which is recorded in the dataset's params.

Deterministic: each stratum's ids are sorted, shuffled by ``random.Random`` seeded from
(seed, stratum) and the first n taken, so the same pool, strategy, K and seed give the
same dataset (and a larger K a superset within each stratum).

Routes (``routing``): ``graded`` (the default) sends easy / medium -> "short" (teacher A)
and hard -> "long" (teacher B). ``blind`` ignores the grades: the pool's overall short
share (E + M) / N of the K problems, by largest remainder, are picked at random (seeded)
for "short" and the rest go "long". That is ACoTD's random-sampling ablation — the
student's diagnosis removed from both the draw and the routing, with the same mix of
short and long CoT as the main method; ``random`` sampling with graded routing is nearly
the main method (proportional stratified sampling is simple random sampling with less
variance). A dataset is stored once under its name with its strategy and parameters; an
existing name is an error, never overwritten.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from app.config import STRATEGIES, Config
from app.errors import TailorError
from app.events import Events
from app.records import Dataset, DatasetItem, GradeRecord
from app.store import Store

STRATA: tuple[str, ...] = ("easy", "medium", "hard")
ROUTINGS: tuple[str, ...] = ("graded", "blind")
ROUTES = {"easy": "short", "medium": "short", "hard": "long"}


class SampleError(TailorError):
    """A user-facing problem with sampling (empty pool, bad K or ratio, name taken, short stratum)."""


# -- pure helpers ----------------------------------------------------------------------


def parse_ratio(text: str) -> tuple[Fraction, Fraction, Fraction]:
    """``"6:3:1"`` -> exact weights; three non-negative numbers, not all zero."""
    parts = str(text).split(":")
    try:
        nums = tuple(Fraction(p.strip()) for p in parts)
    except (ValueError, ZeroDivisionError):
        nums = ()
    if len(nums) != 3 or any(n < 0 for n in nums) or sum(nums) <= 0:
        raise SampleError(f"--ratio {text!r}: expected E:M:H with three non-negative numbers, e.g. 6:3:1")
    return nums  # type: ignore[return-value]


def largest_remainder(k: int, weights) -> list[int]:
    """Split k into integers proportional to weights that sum to exactly k.

    Each part is floor(k·w/W) or one more; the extra units go to the largest fractional
    parts (ties: the larger weight, then the earlier position). Exact (Fraction) arithmetic.
    """
    ws = [Fraction(w) for w in weights]
    total = sum(ws)
    if k < 0 or any(w < 0 for w in ws):
        raise ValueError("k and weights must be non-negative")
    if k == 0:
        return [0] * len(ws)
    if total <= 0:
        raise ValueError("weights sum to zero")
    shares = [k * w / total for w in ws]
    parts = [int(s) for s in shares]  # floor: shares are non-negative
    left = k - sum(parts)
    order = sorted(range(len(ws)), key=lambda i: (-(shares[i] - parts[i]), -ws[i], i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def allocate(k: int, weights, available, allow_short: bool) -> tuple[list[int], list[int], dict]:
    """Quotas for the strata, then (with allow_short) refill any shortfall from the others.

    Returns (counts, quotas, shortfall) where shortfall maps a stratum index to
    {"quota", "available", "missing"}; raises `SampleError` when the pool cannot supply
    k at all, or when a stratum is short and ``allow_short`` is off.
    """
    if k > sum(available):
        raise SampleError(f"K = {k} but the pool holds only {sum(available)} graded train problems")
    quotas = largest_remainder(k, weights)
    short = {
        i: {"quota": q, "available": n, "missing": q - n} for i, (q, n) in enumerate(zip(quotas, available)) if q > n
    }
    if short and not allow_short:
        i, s = next(iter(short.items()))
        more = f" (and {len(short) - 1} more strata)" if len(short) > 1 else ""
        raise SampleError(
            f"stratum {STRATA[i]} has {s['available']} graded problems but its quota is {s['quota']}"
            f"{more}; lower --k, change the ratio, or pass --allow-short to fill from the other strata"
        )
    counts = [min(q, n) for q, n in zip(quotas, available)]
    while sum(counts) < k:  # only with allow_short: share the missing places by weight
        missing = k - sum(counts)
        spare = [n - c for n, c in zip(available, counts)]
        w = [weights[i] if spare[i] > 0 else 0 for i in range(len(counts))]
        if sum(w) == 0:  # the strata with room all have weight 0: fill by room instead
            w = spare
        extra = largest_remainder(missing, w)
        counts = [c + min(e, s) for c, e, s in zip(counts, extra, spare)]
    return counts, quotas, short


def pick(ids, n: int, seed: int, stratum: str) -> list[str]:
    """n ids chosen deterministically: sorted, shuffled with Random((seed, stratum)), first n."""
    pool = sorted(ids)
    random.Random(f"{seed}:{stratum}").shuffle(pool)
    return pool[:n]


def blind_routes(ids: list[str], pool_counts: dict[str, int], seed: int) -> dict[str, str]:
    """{problem id: route} without looking at any problem's grade: the pool's short share,
    by largest remainder, drawn at random (seeded) from `ids`."""
    short_w = pool_counts["easy"] + pool_counts["medium"]
    n_short, _ = largest_remainder(len(ids), [short_w, pool_counts["hard"]])
    shorts = set(pick(ids, n_short, seed, "blind-routing"))
    return {pid: "short" if pid in shorts else "long" for pid in ids}


def _snapshot(pool: dict[str, GradeRecord], ungraded: int) -> dict:
    """What the sample was drawn from: counts, graders, and a hash of (id, grade) pairs."""
    pairs = sorted((pid, g.grade) for pid, g in pool.items())
    digest = hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]
    graders = Counter(
        "manual" if g.is_override else f"{g.provider}:{g.model}:{g.prompt_hash or '-'}" for g in pool.values()
    )
    counts = Counter(g.grade for g in pool.values())
    return {
        "counts": {s: counts.get(s, 0) for s in STRATA},
        "ungraded_excluded": ungraded,
        "graders": dict(sorted(graders.items())),
        "sha256": digest,
        "latest_grade_id": max((g.id or 0 for g in pool.values()), default=0),
    }


# -- the stage ------------------------------------------------------------------------


@dataclass
class SampleResult:
    name: str
    dataset_id: int
    strategy: str
    k: int
    seed: int
    counts: dict[str, int]  # sampled per stratum
    routes: dict[str, int]  # short / long
    pool: dict[str, int]  # graded train problems per stratum
    shortfall: dict = field(default_factory=dict)  # short stratum -> {quota, available, missing}
    filled: dict = field(default_factory=dict)  # stratum -> places it took over from short strata
    ratio: str | None = None  # the fixed ratio, when strategy = fixed
    routing: str = "graded"

    def summary(self) -> str:
        c = self.counts
        blind = ", routed without grades" if self.routing == "blind" else ""
        s = (
            f"dataset {self.name!r} ({self.strategy}{blind}, seed {self.seed}): {self.k} problems — "
            f"{c['easy']} easy / {c['medium']} medium / {c['hard']} hard; "
            f"{self.routes['short']} short + {self.routes['long']} long CoT to teach"
        )
        if self.shortfall:
            s += "; short strata (have/quota) " + ", ".join(
                f"{k} {v['available']}/{v['quota']}" for k, v in self.shortfall.items()
            )
            s += " filled with " + ", ".join(f"{n} more {k}" for k, n in self.filled.items())
        return s


def sample(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    name: str,
    strategy: str | None = None,
    k: int | None = None,
    seed: int | None = None,
    ratio: str | None = None,
    allow_short: bool = False,
    routing: str = "graded",
) -> SampleResult:
    """Draw and store a dataset; None values come from the config's [sampling] section."""
    sc = cfg.sampling
    strategy = strategy or sc.strategy
    k = sc.k if k is None else k
    seed = sc.seed if seed is None else seed
    ratio_text = ratio or sc.ratio
    name = (name or "").strip()
    if not name:
        raise SampleError("--name: a dataset needs a non-empty name")
    if strategy not in STRATEGIES:
        raise SampleError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if routing not in ROUTINGS:
        raise SampleError(f"--routing {routing!r}: expected one of {', '.join(ROUTINGS)}")
    if store.get_dataset(name) is not None:
        raise SampleError(f"dataset {name!r} already exists; choose another --name")
    if strategy != "all" and k < 1:
        raise SampleError(f"--k {k}: K must be at least 1")
    weights = parse_ratio(ratio_text) if strategy == "fixed" else None

    graded_all = store.current_grades(split="train")
    train = {p.id for p in store.problems(split="train")}  # belt and braces: train only
    pool = {pid: g for pid, g in graded_all.items() if g.grade is not None and pid in train}
    ungraded = sum(1 for g in graded_all.values() if g.grade is None)
    if not pool:
        raise SampleError("no graded train problems to sample from; run `tailor grade` first")
    by = {s: sorted(pid for pid, g in pool.items() if g.grade == s) for s in STRATA}
    available = [len(by[s]) for s in STRATA]

    shortfall: dict = {}
    filled: dict = {}
    if strategy == "all":
        k = len(pool)
        chosen = {s: list(by[s]) for s in STRATA}
    elif strategy == "random":
        if k > len(pool):
            raise SampleError(f"K = {k} but the pool holds only {len(pool)} graded train problems")
        ids = set(pick(pool, k, seed, "random"))
        chosen = {s: [pid for pid in by[s] if pid in ids] for s in STRATA}
    else:
        w = available if strategy == "adaptive" else list(weights)
        counts, quotas, short = allocate(k, w, available, allow_short)
        chosen = {s: pick(by[s], n, seed, s) for s, n in zip(STRATA, counts)}
        shortfall = {STRATA[i]: info for i, info in short.items()}
        filled = {s: counts[i] - quotas[i] for i, s in enumerate(STRATA) if counts[i] > quotas[i]}

    counts_out = {s: len(chosen[s]) for s in STRATA}
    if routing == "blind":
        route_of = blind_routes(sorted(pid for s in STRATA for pid in chosen[s]), dict(zip(STRATA, available)), seed)
    else:
        route_of = {pid: ROUTES[s] for s in STRATA for pid in chosen[s]}
    items = [DatasetItem(problem_id=pid, grade=s, route=route_of[pid]) for s in STRATA for pid in chosen[s]]
    routes = {r: sum(1 for i in items if i.route == r) for r in ("short", "long")}
    params = {
        "routing": routing,
        "ratio": ratio_text if strategy == "fixed" else None,
        "allow_short": allow_short,
        "counts": counts_out,
        "routes": routes,
        "shortfall": shortfall,
        "filled": filled,
        "pool": _snapshot(pool, ungraded),
    }
    if strategy in ("adaptive", "fixed"):
        params["quotas"] = dict(zip(STRATA, quotas))
    events.start("sample", None)  # after every check: a refused sample prints only its error
    if shortfall:
        events.message(
            "--allow-short: "
            + ", ".join(f"{s} has {v['available']} < quota {v['quota']}" for s, v in shortfall.items())
            + "; filled with "
            + ", ".join(f"{n} more {s}" for s, n in filled.items())
        )
    ds_id = store.create_dataset(Dataset(name=name, strategy=strategy, k=k, seed=seed, params=params, items=items))
    result = SampleResult(
        name=name,
        dataset_id=ds_id,
        strategy=strategy,
        k=k,
        seed=seed,
        counts=counts_out,
        routes=routes,
        pool=dict(zip(STRATA, available)),
        shortfall=shortfall,
        filled=filled,
        ratio=ratio_text if strategy == "fixed" else None,
        routing=routing,
    )
    events.done(result.summary())
    return result
