"""`tailor verify --refill`: replace rejected problems within their stratum, so K and E:M:H hold.

Verification rejects traces (wrong answer, truncated, no final answer), and rejections
are not spread evenly: a weak teacher loses more Hard problems. Without a refill each
arm of an ablation trains on a different amount of data, with a different grade mix.
Here, for every (grade, route) of the dataset's original sample, the shortfall of items
with an accepted trace is drawn again from the same stratum's graded train problems the
dataset does not hold yet (seeded like the sample: the dataset's seed, the stratum and
the round), added to the dataset with the route of the items they replace, taught and
verified — round after round until every stratum is whole or has no problems left
(reported). The dataset's params record the counts before and after, and what ran out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from app.config import Config
from app.events import Events
from app.pipeline.sample import pick
from app.pipeline.teach import configured_teachers, load_dataset, plan, slot_traces, teach
from app.records import DatasetItem
from app.store import Store

MAX_ROUNDS = 5


@dataclass
class RefillResult:
    dataset: str
    target: dict[str, int]  # "grade/route" -> items the sample had
    before: dict[str, int]  # accepted before refilling
    after: dict[str, int] = field(default_factory=dict)
    added: int = 0
    rounds: int = 0
    exhausted: list[str] = field(default_factory=list)  # strata with no problems left to draw

    def summary(self) -> str:
        cells = ", ".join(f"{k} {self.before.get(k, 0)}→{self.after.get(k, 0)}/{n}" for k, n in self.target.items())
        out = f"refill {self.dataset}: {self.added} problems added in {self.rounds} rounds; accepted {cells}"
        if self.exhausted:
            out += f"; ran out of problems in {', '.join(self.exhausted)} (those strata stay short)"
        return out


def _accepted(store: Store, cfg: Config, dataset: str, only: str | None) -> Counter:
    """Items with at least one accepted trace, per "grade/route"."""
    ds = load_dataset(store, dataset)
    slots = plan(store, ds, configured_teachers(cfg), only)
    traces = slot_traces(store, slots)
    ok = {s.problem.id for i, s in enumerate(slots) if any(t.verified for t in traces[i].values())}
    return Counter(f"{item.grade}/{item.route}" for item in ds.items if item.problem_id in ok)


def refill(
    cfg: Config,
    store: Store,
    events: Events,
    *,
    dataset: str,
    only: str | None = None,
    verify_kw=None,
    transport=None,
    retry=None,
) -> RefillResult:
    from app.pipeline.verify import verify

    ds = load_dataset(store, dataset)
    original = ds.params.get("refill", {}).get("target")
    target = Counter(original) if original else Counter(f"{i.grade}/{i.route}" for i in ds.items)
    result = RefillResult(dataset, dict(sorted(target.items())), dict(_accepted(store, cfg, dataset, only)))
    pool = store.current_grades(split="train")
    train = {p.id for p in store.problems(split="train")}
    for rnd in range(1, MAX_ROUNDS + 1):
        have = _accepted(store, cfg, dataset, only)
        held = {i.problem_id for i in load_dataset(store, dataset).items}
        new_items = []
        for key, want in target.items():
            missing = want - have.get(key, 0)
            if missing <= 0:
                continue
            grade, route = key.split("/")
            free = [pid for pid, g in pool.items() if g.grade == grade and pid in train and pid not in held]
            drawn = pick(free, missing, ds.seed, f"refill:{grade}:{route}:{rnd}")
            if len(drawn) < missing and key not in result.exhausted:
                result.exhausted.append(key)
            new_items += [DatasetItem(problem_id=pid, grade=grade, route=route) for pid in drawn]
        if not new_items:
            break
        result.rounds, result.added = rnd, result.added + len(new_items)
        events.message(f"refill round {rnd}: {len(new_items)} replacement problems drawn within their strata")
        store.add_dataset_items(ds.id, new_items)
        teach(cfg, store, events, dataset=dataset, only=only, transport=transport, retry=retry)
        verify(cfg, store, events, dataset=dataset, only=only, transport=transport, retry=retry, **(verify_kw or {}))
    result.after = dict(_accepted(store, cfg, dataset, only))
    store.update_dataset_params(
        ds.id,
        {
            "refill": {
                "target": dict(target),
                "before": result.before,
                "after": result.after,
                "added": result.added,
                "exhausted": result.exhausted,
            }
        },
    )
    events.message(result.summary())
    return result
