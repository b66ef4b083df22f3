"""Every number the report and the TUI show, gathered from the store in one JSON-safe dict.

A *configuration* is the set of finished runs of one sweep sharing a label (they differ
only by seed). For each configuration and tier it is compared with the base model on the
same problems (`configurations`), and — for a sweep's cells other than its main one —
with the main cell (`ablations`), through `app.comparison.compare`: a problem-level
permutation test (the headline p), the seed-level t-test beside it, a BCa bootstrap
interval of Δ over seeds and problems, flips and the minimum detectable effect.

Multiplicity: at the first tier, the configurations of one sweep compared with the same
reference are a family, Holm-adjusted; every other tier's comparisons are exploratory,
Benjamini–Hochberg-adjusted within the sweep. Verdicts use the adjusted p.

Which attempts count: the evaluation attempts of the newest student model evaluated,
the latest one per (target, tier, eval seed, problem). A run is represented by the
attempts at its own training seed when it was evaluated there, else at its lowest eval
seed; sides pair up by eval seed when each run has its own. The comparison is limited
to the problems both sides answered, and `notes` says so whenever that drops any. An
attempt that failed (error) or ran out of budget counts as wrong.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from app.comparison import Comparison, compare
from app.config import is_offline
from app.records import Attempt, Problem, Run
from app.stats import StatsError, benjamini_hochberg, holm
from app.store import Store
from app.verdicts import BETTER, DEGRADED, NO_DIFFERENCE

N_BOOT = 2000
ALPHA = 0.05

# A side of a comparison: one entry per run, (run, the eval seed it was evaluated at, {problem id: attempt}).
Seeded = list[tuple[Run, int, dict[str, Attempt]]]


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


def collect(
    store: Store,
    *,
    split: str | None = "test",
    benchmark: str | None = None,
    n_boot: int = N_BOOT,
    alpha: float = ALPHA,
) -> dict:
    # Only the evaluated problems are loaded: a 100,000-problem set is counted in SQL.
    where = {"source": benchmark} if benchmark else {"split": split}
    if benchmark:
        split = None
    attempts = store.eval_attempts(**where)
    by_id: dict[str, Problem] = {p.id: p for p in store.problems_by_id({a.problem_id for a in attempts})}
    base_model = attempts[-1].model if attempts else None
    attempts = [a for a in attempts if a.model == base_model]
    latest = _latest(attempts)
    ratings = store.eval_ratings(a.id for a in latest.values())

    # groups[(run_id, tier, eval_seed)] = {problem_id: attempt}
    groups: dict[tuple, dict[str, Attempt]] = defaultdict(dict)
    for (run_id, tier, s, pid), a in latest.items():
        groups[(run_id, tier, s)][pid] = a
    tiers = sorted({k[1] for k in groups}, key=_tier_order)
    all_runs = store.runs()
    runs = {r.id: r for r in all_runs if any(k[0] == r.id for k in groups)}
    labels: dict[tuple, list[Run]] = defaultdict(list)  # (sweep, label) -> runs
    for r in sorted(runs.values(), key=lambda r: (r.seed is None, r.seed, r.id)):
        labels[(r.sweep, r.configuration)].append(r)
    notes = [
        f"run {r.id} ({r.configuration}) finished but has no evaluations on this problem set; "
        "run `tailor eval` to include it"
        for r in all_runs
        if attempts and r.status == "done" and r.id not in runs and not r.config.get("find_stop")
    ]

    def run_group(run: Run, tier: str):
        seeds = sorted(s for (rid, t, s) in groups if rid == run.id and t == tier)
        if not seeds:
            return None
        s = run.seed if run.seed in seeds else seeds[0]
        return run, s, groups[(run.id, tier, s)]

    mains = store.sweep_mains()
    vs_base, vs_main, out_tiers, out_cats = [], [], [], []
    for tier in tiers:
        base = dict(
            sorted(
                ((s, g) for (rid, tt, s), g in groups.items() if rid is None and tt == tier),
                key=lambda sg: (sg[0] is None, sg[0] or 0),
            )
        )
        if base:
            out_tiers.append(_tier_row("base", tier, list(base.values())))
            out_cats += _category_rows("base", tier, list(base.values()), by_id)
        sides: dict[tuple, Seeded] = {}
        for key, members in labels.items():
            seeded = [g for r in members if (g := run_group(r, tier))]
            if seeded:
                sides[key] = seeded
                out_tiers.append(_tier_row(key[1], tier, [g for _, _, g in seeded]))
                out_cats += _category_rows(key[1], tier, [g for _, _, g in seeded], by_id)
        for (sweep, label), seeded in sides.items():
            if not base:
                notes.append(f"{label} ({tier}): the base was not evaluated at tier {tier}; not compared")
                continue
            ref = {str(s): g for s, g in base.items()}
            if row := _comparison(label, "base", tier, seeded, ref, ratings, n_boot, alpha, notes):
                vs_base.append(row)
            main = mains.get(sweep) if sweep else None
            if main is None or main == label:
                continue
            if (sweep, main) not in sides:
                notes.append(
                    f"{label} ({tier}): the main cell {main!r} of sweep {sweep} has no evaluations "
                    f"at tier {tier}; not compared with it"
                )
                continue
            main_side = sides[(sweep, main)]
            if row := _comparison(label, main, tier, seeded, _keyed(main_side), ratings, n_boot, alpha, notes):
                row["reference_runs"] = [r.id for r, _, _ in main_side]
                vs_main.append(row)
    primary = tiers[0] if tiers else None
    adjust(vs_base, primary, alpha)
    adjust(vs_main, primary, alpha)

    evals = list(ratings.values())
    judge = f"{evals[-1]['provider']} {evals[-1]['model']}" if evals else "none (CoT quality not rated)"
    return {
        "problem_set": {
            "split": split,
            "benchmark": benchmark,
            "n": store.count("problems", **where),
            "evaluated": len({a.problem_id for a in latest.values()}),
        },
        "base_model": base_model,
        "judge": judge,
        "alpha": alpha,
        "grades": store.grade_distribution(split="train"),
        "configurations": vs_base,
        "ablations": vs_main,
        "notes": notes,
        "tiers": out_tiers,
        "categories": out_cats,
        "teachers": teachers(store),
        "runs": [
            {
                "id": r.id,
                "label": r.configuration,
                "sweep": r.sweep,
                "seed": r.seed,
                "status": r.status,
                "best_iter": r.best_iter,
                "best_val_loss": r.best_val_loss,
                "stop_reason": r.stop_reason,
                "valid_disjoint_from_test": r.valid_disjoint_from_test,
            }
            for rs in labels.values()
            for r in rs
        ],
    }


def _tier_order(name: str):
    digits = name.lstrip("Rr")
    return (0, int(digits), name) if digits.isdigit() else (1, 0, name)


def _tier_row(label: str, tier: str, groups: list[dict[str, Attempt]]) -> dict:
    accs = [statistics.fmean(bool(a.correct) for a in g.values()) for g in groups]
    every = [a for g in groups for a in g.values()]
    answered = [a for a in every if not a.error]
    return {
        "label": label,
        "tier": tier,
        "accuracy": statistics.fmean(accs),
        "std": statistics.stdev(accs) if len(accs) > 1 else None,
        "mean_words": statistics.fmean(_words(a.text) for a in every),
        "mean_tokens": _mean(a.n_tokens for a in every) or 0.0,
        # Scored wrong for want of an explicit final answer, or cut off by the budget:
        # the short tiers live or die on these, not on the reasoning.
        "no_answer": _share(a.extracted is None for a in answered),
        "truncated": _share(a.finish_reason == "length" for a in answered),
        "failed": _share(bool(a.error) for a in every),
        "n": len(groups[0]),
        "seeds": len(groups),
    }


def _share(flags) -> float | None:
    flags = list(flags)
    return statistics.fmean(flags) if flags else None


def _category_rows(label: str, tier: str, groups: list[dict[str, Attempt]], by_id: dict[str, Problem]) -> list:
    cells: dict[tuple, list[bool]] = defaultdict(list)
    for g in groups:
        for pid, a in g.items():
            p = by_id[pid]
            cells[(p.category, p.section)].append(bool(a.correct))
    return [
        {
            "label": label,
            "tier": tier,
            "category": c,
            "section": s,
            "accuracy": statistics.fmean(v),
            "n": len(v) // len(groups),
        }
        for (c, s), v in sorted(cells.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))
    ]


def _keyed(seeded: Seeded) -> dict[str, dict]:
    """A configuration's groups keyed by eval seed, so they pair with another side's same
    sampling seed. When two runs share an eval seed (an `[eval] seeds` override) they are
    keyed by run seed instead and nothing pairs: one base draw reused for two runs would
    break the sign-flip test's symmetry."""
    eval_seeds = [s for _, s, _ in seeded]
    if len(set(eval_seeds)) == len(eval_seeds):
        return {str(s): g for _, s, g in seeded}
    return {f"run seed {r.seed}": g for r, _, g in seeded}


def _comparison(
    label: str,
    against: str,
    tier: str,
    seeded: Seeded,
    ref: dict[str, dict],
    ratings: dict[int, dict],
    n_boot: int,
    alpha: float,
    notes: list[str],
) -> dict | None:
    mine = _keyed(seeded)
    if set(mine) <= set(ref):  # paired: the reference's other seeds play no part
        ref = {k: ref[k] for k in mine}
    own, theirs = set.union(*(set(g) for g in mine.values())), set.union(*(set(g) for g in ref.values()))
    common = set.intersection(*(set(g) for g in [*mine.values(), *ref.values()]))
    where = f"{label} ({tier}) vs {against}"
    if not common:
        notes.append(f"{where}: no problems in common; not compared")
        return None
    if own != common or theirs != common:
        notes.append(
            f"{where}: {label} answered {len(own)} problems, {against} {len(theirs)}; "
            f"compared on the {len(common)} both answered at every seed"
        )
    pids = sorted(common)
    other = {k: [bool(g[p].correct) for p in pids] for k, g in mine.items()}
    reference = {k: [bool(g[p].correct) for p in pids] for k, g in ref.items()}
    try:
        c = compare(reference, other, reference_label=against, label=label, n_boot=n_boot, alpha=alpha)
    except StatsError as e:
        notes.append(f"{where}: not compared: {e}")
        return None
    if c.seeds_note:
        hint = (
            "; the base follows [eval] seeds when it is set: remove it from tailor.toml (or list every "
            "training seed) and run `tailor eval` again"
            if against == "base" and not c.paired
            else ""
        )
        notes.append(f"{where}: {c.seeds_note}{hint}")
    cot = _mean(ratings[g[p].id]["cotqs"] for g in mine.values() for p in pids if g[p].id in ratings)
    ref_cot = _mean(
        ratings[g[p].id]["cotqs"] for k in c.reference.seeds for g in [ref[k]] for p in pids if g[p].id in ratings
    )
    return comparison_row(
        c,
        sweep=seeded[0][0].sweep,
        tier=tier,
        runs=[r.id for r, _, _ in seeded],
        seeds=[r.seed for r, _, _ in seeded],
        eval_seeds=[s for _, s, _ in seeded],
        cotqs=cot,
        reference_cotqs=ref_cot,
    )


def comparison_row(
    c: Comparison,
    *,
    sweep: str | None,
    tier: str,
    runs: list[str],
    seeds: list,
    eval_seeds: list | None = None,
    cotqs: float | None = None,
    reference_cotqs: float | None = None,
) -> dict:
    """One row of `configurations` / `ablations` from a comparison (`adjust` adds the
    family's adjusted p and the verdict). seeds: the training seeds, in c.other's order."""
    summ, against = c.other.summary, c.reference.label
    row = {
        "label": c.other.label,
        "against": against,
        "sweep": sweep,
        "tier": tier,
        "n": c.n_problems,
        "runs": runs,
        "seeds": seeds,
        "eval_seeds": eval_seeds,
        "accuracy_by_seed": {str(s): acc for s, acc in zip(seeds, c.other.accuracies)},
        "reference_by_seed": dict(zip(c.reference.seeds, c.reference.accuracies)),
        "paired": c.paired,
        "seeds_note": c.seeds_note,
        "mean": summ.mean,
        "std": summ.std,
        "zero_spread": summ.zero_spread,
        # An accuracy's t interval from two or three seeds can run past 0 and 100 %.
        "ci": [max(summ.ci_low, 0.0), min(summ.ci_high, 1.0)] if summ.ci_low is not None else None,
        "reference_mean": c.reference.summary.mean,
        "delta": c.delta,
        "delta_ci": [c.delta_ci.low, c.delta_ci.high],
        "delta_ci_method": c.delta_ci.method,
        "p": c.test.p,
        "test": c.test.test,
        "p_note": c.test.note,
        "seed_p": c.seed_test.p,
        "seed_test": c.seed_test.test,
        "seed_test_note": c.seed_test.note,
        "flips": c.flips,
        "mde": c.mde,
        "cotqs": cotqs,
        "reference_cotqs": reference_cotqs,
        "comparison": c.to_dict(),
    }
    if against == "base":
        row.update(base_mean=row["reference_mean"], base_cotqs=reference_cotqs)
    return row


def adjust(rows: list[dict], primary: str | None, alpha: float = ALPHA) -> None:
    """Adjusted p and a verdict on every row, in place. Families: (sweep, reference) at the
    primary tier, Holm; (sweep, reference) over the other tiers, Benjamini–Hochberg."""
    families: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        families[(r["sweep"], r["against"], r["tier"] == primary)].append(r)
    for (_sweep, _against, is_primary), fam in families.items():
        ps = [r["p"] for r in fam]
        adjusted = (holm if is_primary else benjamini_hochberg)(ps)
        size = sum(p is not None for p in ps)
        how = f"Holm over {size} comparisons" if is_primary else f"Benjamini–Hochberg over {size} tier comparisons"
        for r, a in zip(fam, adjusted):
            r["p_adjusted"], r["family_size"], r["exploratory"] = a, size, not is_primary
            r["adjustment"] = how if size > 1 else "none (one comparison)"
            r["verdict"] = verdict_of(r["delta"], a, alpha)
            r["degraded"] = r["verdict"] == DEGRADED


def verdict_of(delta: float, p_adjusted: float | None, alpha: float) -> str:
    if p_adjusted is None or p_adjusted >= alpha or delta == 0:
        return NO_DIFFERENCE
    return BETTER if delta > 0 else DEGRADED


def teachers(store: Store) -> dict:
    """Each teacher's verified examples and accuracy on the problems it was given, and the
    capacity-gap protocol's choice between the teachers of a role (on the problems they all had)."""
    from app.pipeline.gap import teacher_choice

    given: dict[tuple, set[str]] = defaultdict(set)
    solved: dict[tuple, set[str]] = defaultdict(set)
    for t in store.traces():
        if is_offline(t.provider):
            continue  # a stand-in (the reference solutions) is not a teacher to choose
        key = (t.role, f"{t.provider} {t.model}".strip())
        given[key].add(t.problem_id)
        if t.verified:
            solved[key].add(t.problem_id)
    rows = [
        {
            "role": role,
            "teacher": name,
            "problems": len(given[(role, name)]),
            "verified": len(solved[(role, name)]),
            "accuracy": len(solved[(role, name)]) / len(given[(role, name)]),
        }
        for role, name in sorted(given)
    ]
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
