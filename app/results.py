"""Every number the report and the TUI show, gathered from the store in one JSON-safe dict.

A *configuration* is the set of finished runs sharing a label (they differ only by
seed). For each configuration and tier it is compared with the base model on the same
problems through `app.stats.compare`: per-seed accuracies, mean ± std with a t CI, a
one-sample t-test against the base accuracy (or a paired t-test when the base was
evaluated at the same seeds), McNemar per seed and a bootstrap CI of the difference.

Which attempts count: the evaluation attempts of the newest student model evaluated,
the latest one per (target, tier, eval seed, problem). A run is represented by the
attempts at its own training seed when it was evaluated there, else at its lowest eval
seed; the comparison is limited to the problems both sides answered. An attempt that
failed (error) or ran out of budget counts as wrong.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from app.records import Attempt, Problem, Run
from app.stats import StatsError, compare, seed_summary
from app.store import Store

N_BOOT = 2000


def _words(text: str | None) -> int:
    return len((text or "").split())


def _latest(attempts: list[Attempt]) -> dict[tuple, Attempt]:
    """{(run_id, tier, eval_seed, problem_id): attempt}; later ids replace earlier ones."""
    out = {}
    for a in attempts:
        out[(a.run_id, a.tier, a.params.get("eval_seed"), a.problem_id)] = a
    return out


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def collect(store: Store, *, split: str | None = "test", benchmark: str | None = None,
            n_boot: int = N_BOOT) -> dict:
    if benchmark:
        problems = store.problems(source=benchmark)
        split = None
    else:
        problems = store.problems(split=split)
    by_id: dict[str, Problem] = {p.id: p for p in problems}
    attempts = [a for a in store.eval_attempts() if a.problem_id in by_id]
    base_model = attempts[-1].model if attempts else None
    attempts = [a for a in attempts if a.model == base_model]
    latest = _latest(attempts)
    ratings = store.eval_ratings(a.id for a in latest.values())

    # groups[(run_id, tier, eval_seed)] = {problem_id: attempt}
    groups: dict[tuple, dict[str, Attempt]] = defaultdict(dict)
    for (run_id, tier, s, pid), a in latest.items():
        groups[(run_id, tier, s)][pid] = a
    tiers = sorted({k[1] for k in groups}, key=_tier_order)
    runs = {r.id: r for r in store.runs() if any(k[0] == r.id for k in groups)}
    labels: dict[str, list[Run]] = defaultdict(list)
    for r in sorted(runs.values(), key=lambda r: (r.seed is None, r.seed, r.id)):
        labels[r.configuration].append(r)

    def run_group(run: Run, tier: str) -> dict[str, Attempt] | None:
        seeds = sorted(s for (rid, t, s) in groups if rid == run.id and t == tier)
        if not seeds:
            return None
        return groups[(run.id, tier, run.seed if run.seed in seeds else seeds[0])]

    base_groups = {t: {s: g for (rid, tt, s), g in groups.items() if rid is None and tt == t} for t in tiers}
    out_configs, out_tiers, out_cats = [], [], []
    for tier in tiers:
        base = base_groups[tier]
        if base:
            out_tiers.append(_tier_row("base", tier, list(base.values())))
            out_cats += _category_rows("base", tier, list(base.values()), by_id)
        for label, members in labels.items():
            seeded = [(r, run_group(r, tier)) for r in members]
            seeded = [(r, g) for r, g in seeded if g]
            if not seeded:
                continue
            out_tiers.append(_tier_row(label, tier, [g for _, g in seeded]))
            out_cats += _category_rows(label, tier, [g for _, g in seeded], by_id)
            if base:
                row = _comparison(label, tier, seeded, base, ratings, n_boot)
                if row:
                    out_configs.append(row)

    grades = store.current_grades(split="train")
    evals = list(ratings.values())
    judge = f"{evals[-1]['provider']} {evals[-1]['model']}" if evals else "none (CoT quality not rated)"
    return {
        "problem_set": {"split": split, "benchmark": benchmark, "n": len(problems)},
        "base_model": base_model,
        "judge": judge,
        "grades": {"easy": sum(g.grade == "easy" for g in grades.values()),
                   "medium": sum(g.grade == "medium" for g in grades.values()),
                   "hard": sum(g.grade == "hard" for g in grades.values()),
                   "ungraded": sum(g.grade is None for g in grades.values())},
        "configurations": out_configs,
        "tiers": out_tiers,
        "categories": out_cats,
        "teachers": teachers(store),
        "runs": [{"id": r.id, "label": r.configuration, "seed": r.seed, "status": r.status, "best_iter": r.best_iter,
                  "best_val_loss": r.best_val_loss, "stop_reason": r.stop_reason,
                  "valid_disjoint_from_test": r.valid_disjoint_from_test}
                 for rs in labels.values() for r in rs],
    }


def _tier_order(name: str):
    digits = name.lstrip("Rr")
    return (0, int(digits), name) if digits.isdigit() else (1, 0, name)


def _tier_row(label: str, tier: str, groups: list[dict[str, Attempt]]) -> dict:
    accs = [statistics.fmean(bool(a.correct) for a in g.values()) for g in groups]
    every = [a for g in groups for a in g.values()]
    return {"label": label, "tier": tier, "accuracy": statistics.fmean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else None,
            "mean_words": statistics.fmean(_words(a.text) for a in every),
            "mean_tokens": _mean(a.n_tokens for a in every) or 0.0,
            "n": len(groups[0]), "seeds": len(groups)}


def _category_rows(label: str, tier: str, groups: list[dict[str, Attempt]], by_id: dict[str, Problem]) -> list:
    cells: dict[tuple, list[bool]] = defaultdict(list)
    for g in groups:
        for pid, a in g.items():
            p = by_id[pid]
            cells[(p.category, p.section)].append(bool(a.correct))
    return [{"label": label, "tier": tier, "category": c, "section": s, "accuracy": statistics.fmean(v),
             "n": len(v) // len(groups)}
            for (c, s), v in sorted(cells.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))]


def _comparison(label: str, tier: str, seeded: list[tuple[Run, dict]], base: dict[int, dict],
                ratings: dict[int, dict], n_boot: int) -> dict | None:
    common = set.intersection(*(set(g) for _, g in seeded), *(set(g) for g in base.values()))
    if not common:
        return None
    pids = sorted(common)
    dist = {str(r.seed): [bool(g[p].correct) for p in pids] for r, g in seeded}
    run_seeds = {r.seed for r, _ in seeded}
    # Pair by seed only when the base was evaluated at exactly the runs' seeds.
    if len(base) > 1 and run_seeds <= set(base) and len(run_seeds) > 1:
        base_in = {str(s): [bool(base[s][p].correct) for p in pids] for s in sorted(run_seeds)}
        base_groups = [base[s] for s in sorted(run_seeds)]
    else:
        s0 = min(base)
        base_in = [bool(base[s0][p].correct) for p in pids]
        base_groups = [base[s0]]
    try:
        c = compare(base_in, dist, label=label, n_boot=n_boot)
    except StatsError:
        return None
    comp = c.to_dict()
    summ = seed_summary(c.distilled.accuracies)
    cot = _mean(ratings[g[p].id]["cotqs"] for _, g in seeded for p in pids if g[p].id in ratings)
    base_cot = _mean(ratings[g[p].id]["cotqs"] for g in base_groups for p in pids if g[p].id in ratings)
    return {
        "label": label, "sweep": seeded[0][0].sweep, "tier": tier, "n": len(pids),
        "runs": [r.id for r, _ in seeded], "seeds": [r.seed for r, _ in seeded],
        "accuracy_by_seed": {str(r.seed): acc for (r, _), acc in zip(seeded, c.distilled.accuracies)},
        "base_by_seed": {k: statistics.fmean(v) for k, v in base_in.items()} if isinstance(base_in, dict)
        else {str(min(base)): statistics.fmean(base_in)},
        "mean": summ.mean, "std": summ.std, "ci": [summ.ci_low, summ.ci_high] if summ.ci_low is not None else None,
        "base_mean": c.base.summary.mean, "delta": c.delta, "delta_ci": list(c.delta_ci),
        "p": c.p_value, "test": c.p_source, "worse": c.worse, "degraded": c.degraded,
        "cotqs": cot, "base_cotqs": base_cot, "comparison": comp,
    }


def teachers(store: Store) -> dict:
    """Each teacher's verified examples and accuracy on the problems it was given, and the
    capacity-gap protocol's choice between the teachers of a role (on the problems they all had)."""
    from app.pipeline.gap import teacher_choice

    given: dict[tuple, set[str]] = defaultdict(set)
    solved: dict[tuple, set[str]] = defaultdict(set)
    for t in store.traces():
        if t.provider == "reference":
            continue  # reference solutions are not a teacher to choose
        key = (t.role, f"{t.provider} {t.model}".strip())
        given[key].add(t.problem_id)
        if t.verified:
            solved[key].add(t.problem_id)
    rows = [{"role": role, "teacher": name, "problems": len(given[(role, name)]),
             "verified": len(solved[(role, name)]),
             "accuracy": len(solved[(role, name)]) / len(given[(role, name)])}
            for role, name in sorted(given)]
    choice = {}
    for role in sorted({r for r, _ in given}):
        team = [k for k in given if k[0] == role]
        if len(team) < 2:
            continue
        shared = set.intersection(*(given[k] for k in team))
        counts = {k[1]: len(solved[k] & shared) for k in team}
        acc = {k[1]: (counts[k[1]] / len(shared) if shared else 0.0) for k in team}
        choice[role] = {"shared_problems": len(shared), **teacher_choice(counts, acc)}
    return {"rows": rows, "choice": choice}
