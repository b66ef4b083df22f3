"""`tailor sample`: proportional allocation (seeded property loop), strategies,
shortfall handling, determinism, naming, and that only graded train problems are drawn."""

import random
from fractions import Fraction

import pytest

from app.config import parse_config
from app.events import RecordingEvents
from app.pipeline.sample import (
    SampleError,
    allocate,
    largest_remainder,
    parse_ratio,
    pick,
    sample,
)
from app.records import GradeRecord, Problem

CFG = parse_config("")


# -- allocation -----------------------------------------------------------------------


def test_proportional_counts_sum_to_k_and_stay_within_one_of_the_share():
    rng = random.Random(1234)
    for _ in range(3000):
        pool = [rng.choice([0, rng.randint(0, 5), rng.randint(0, 500)]) for _ in range(3)]
        if sum(pool) == 0:
            pool[rng.randrange(3)] = rng.randint(1, 50)
        n = sum(pool)
        k = rng.randint(1, n)
        parts = largest_remainder(k, pool)
        assert sum(parts) == k, (pool, k, parts)
        for q, nd in zip(parts, pool):
            assert abs(q - Fraction(k * nd, n)) < 1, (pool, k, parts)
            assert 0 <= q <= nd  # proportional quotas never exceed a stratum when K <= N
        counts, quotas, short = allocate(k, pool, pool, allow_short=False)
        assert counts == quotas == parts and not short


def test_largest_remainder_with_fractional_weights():
    rng = random.Random(99)
    for _ in range(1000):
        w = [Fraction(rng.randint(0, 100), rng.randint(1, 10)) for _ in range(3)]
        if sum(w) == 0:
            w[0] = Fraction(1)
        k = rng.randint(0, 2000)
        parts = largest_remainder(k, w)
        assert sum(parts) == k
        assert all(abs(q - k * wi / sum(w)) < 1 for q, wi in zip(parts, w))


def test_paper_pool_profile():
    # A pool graded 5.3 : 1 : 3.1 and K = 1000 -> about 670 short + 330 long (the paper: 671 + 329).
    e, m, h = largest_remainder(1000, [5300, 1000, 3100])
    assert (e, m, h) == (564, 106, 330) and e + m + h == 1000


def test_fixed_ratio_quotas():
    assert largest_remainder(10, parse_ratio("6:3:1")) == [6, 3, 1]
    assert largest_remainder(7, parse_ratio("6:3:1")) == [4, 2, 1]
    assert largest_remainder(5, parse_ratio("1:0:0")) == [5, 0, 0]
    assert largest_remainder(9, parse_ratio("5.3:1:3.1")) == [5, 1, 3]  # shares 5.07, 0.96, 2.97


@pytest.mark.parametrize("bad", ["6:3", "a:b:c", "-1:2:3", "0:0:0", "1:2:3:4", ""])
def test_bad_ratio(bad):
    with pytest.raises(SampleError, match="E:M:H"):
        parse_ratio(bad)


def test_shortfall_is_an_error_unless_allowed():
    with pytest.raises(SampleError, match="stratum hard has 2 graded problems but its quota is 10.*--allow-short"):
        allocate(100, [6, 3, 1], [100, 100, 2], allow_short=False)
    counts, quotas, short = allocate(100, [6, 3, 1], [100, 100, 2], allow_short=True)
    assert quotas == [60, 30, 10] and sum(counts) == 100 and counts[2] == 2
    assert counts == [60 + 5, 30 + 3, 2]  # the 8 missing places shared 6:3 by easy and medium
    assert short == {2: {"quota": 10, "available": 2, "missing": 8}}
    # fill runs over several rounds when a filling stratum also runs out
    counts, _, _ = allocate(20, [6, 3, 1], [12, 3, 5], allow_short=True)
    assert counts == [12, 3, 5]
    with pytest.raises(SampleError, match="pool holds only 20"):
        allocate(21, [6, 3, 1], [12, 3, 5], allow_short=True)


def test_pick_is_deterministic_order_free_and_nested():
    ids = [f"p{i}" for i in range(50)]
    a = pick(ids, 10, 7, "easy")
    assert a == pick(list(reversed(ids)), 10, 7, "easy")
    assert pick(ids, 15, 7, "easy")[:10] == a
    assert pick(ids, 10, 8, "easy") != a


# -- the stage ------------------------------------------------------------------------


def pool(store, easy=0, medium=0, hard=0, ungraded=0, split="train", prefix=""):
    """Problems with grades in force; ids like e007 / m003 / h012 / u001."""
    problems, grades = [], []
    for tag, g, n in (("e", "easy", easy), ("m", "medium", medium), ("h", "hard", hard), ("u", None, ungraded)):
        for i in range(n):
            pid = f"{prefix}{tag}{i:03d}"
            problems.append(Problem(id=pid, question=f"q {pid}", answer="1", split=split))
            grades.append(
                GradeRecord(
                    problem_id=pid, grade=g, provider="rules", model="rules", error=None if g else "judge said prose"
                )
            )
    store.insert_problems(problems)
    with store.transaction():
        for g in grades:
            store.insert_grade(g)


def ids_of(store, name):
    return [i.problem_id for i in store.get_dataset(name).items]


def test_adaptive_sample_is_proportional_routed_and_stored(store):
    pool(store, easy=53, medium=10, hard=31, ungraded=4)
    ev = RecordingEvents()
    res = sample(CFG, store, ev, name="ad", strategy="adaptive", k=47, seed=3)
    assert sum(res.counts.values()) == 47 and res.k == 47
    for s, n in (("easy", 53), ("medium", 10), ("hard", 31)):
        assert abs(res.counts[s] - 47 * n / 94) < 1
    assert res.routes == {"short": res.counts["easy"] + res.counts["medium"], "long": res.counts["hard"]}
    ds = store.get_dataset("ad")
    assert (ds.strategy, ds.k, ds.seed) == ("adaptive", 47, 3) and len(ds.items) == 47
    assert ds.params["counts"] == res.counts and ds.params["quotas"] == res.counts
    assert ds.params["pool"]["counts"] == {"easy": 53, "medium": 10, "hard": 31}
    assert ds.params["pool"]["ungraded_excluded"] == 4 and ds.params["allow_short"] is False
    assert ds.params["pool"]["graders"] == {"rules:rules:-": 94}
    for item in ds.items:
        assert item.route == ("long" if item.grade == "hard" else "short")
        assert item.problem_id[0] == item.grade[0] and not item.problem_id.startswith("u")
    assert ev.log[-1][0] == "done" and "'ad'" in ev.log[-1][1]


def test_same_seed_same_dataset_other_seed_other_dataset(store):
    pool(store, easy=40, medium=20, hard=30)
    for strategy in ("adaptive", "random", "fixed"):
        sample(CFG, store, RecordingEvents(), name=f"{strategy}-a", strategy=strategy, k=25, seed=11)
        sample(CFG, store, RecordingEvents(), name=f"{strategy}-b", strategy=strategy, k=25, seed=11)
        sample(CFG, store, RecordingEvents(), name=f"{strategy}-c", strategy=strategy, k=25, seed=12)
        assert ids_of(store, f"{strategy}-a") == ids_of(store, f"{strategy}-b")
        assert ids_of(store, f"{strategy}-a") != ids_of(store, f"{strategy}-c")


def test_random_strategy(store):
    pool(store, easy=40, medium=20, hard=30)
    res = sample(CFG, store, RecordingEvents(), name="r", strategy="random", k=30, seed=0)
    assert res.k == 30 and len(set(ids_of(store, "r"))) == 30
    with pytest.raises(SampleError, match="pool holds only 90"):
        sample(CFG, store, RecordingEvents(), name="r2", strategy="random", k=91)


def test_fixed_strategy_uses_the_ratio(store):
    pool(store, easy=100, medium=100, hard=100)
    res = sample(CFG, store, RecordingEvents(), name="f", strategy="fixed", k=50, ratio="6:3:1")
    assert res.counts == {"easy": 30, "medium": 15, "hard": 5} and res.ratio == "6:3:1"
    assert store.get_dataset("f").params["ratio"] == "6:3:1"
    # the config's ratio is the default
    res = sample(
        parse_config('[sampling]\nratio = "1:1:2"'), store, RecordingEvents(), name="f2", strategy="fixed", k=40
    )
    assert res.counts == {"easy": 10, "medium": 10, "hard": 20}


def test_fixed_shortfall_errors_or_fills_with_allow_short(store):
    pool(store, easy=100, medium=50, hard=3)
    with pytest.raises(SampleError, match="stratum hard has 3 .* quota is 10"):
        sample(CFG, store, RecordingEvents(), name="f", strategy="fixed", k=100, ratio="6:3:1")
    assert store.dataset_names() == []
    ev = RecordingEvents()
    res = sample(CFG, store, ev, name="f", strategy="fixed", k=100, ratio="6:3:1", allow_short=True)
    assert res.k == 100 and sum(res.counts.values()) == 100 and res.counts["hard"] == 3
    assert res.shortfall == {"hard": {"quota": 10, "available": 3, "missing": 7}}
    assert sum(res.filled.values()) == 7
    params = store.get_dataset("f").params
    assert params["shortfall"] == res.shortfall and params["filled"] == res.filled and params["allow_short"]
    assert any(e[0] == "message" and "--allow-short" in e[1] for e in ev.log)
    assert "filled with" in ev.log[-1][1]


def test_all_strategy_takes_everything_and_ignores_k(store):
    pool(store, easy=5, medium=2, hard=3, ungraded=2)
    res = sample(CFG, store, RecordingEvents(), name="all", strategy="all", k=0)
    assert res.k == 10 and store.get_dataset("all").k == 10 and len(ids_of(store, "all")) == 10


def test_non_train_problems_are_never_sampled(store):
    pool(store, easy=6, medium=3, hard=4)
    for split in ("valid", "test", "placement"):
        pool(store, easy=20, medium=20, hard=20, split=split, prefix=split[0])
    for strategy in ("all", "adaptive", "random", "fixed"):
        sample(CFG, store, RecordingEvents(), name=strategy, strategy=strategy, k=10, allow_short=True)
        ids = ids_of(store, strategy)
        assert ids and all(store.get_problem(pid).split == "train" for pid in ids)
    assert len(ids_of(store, "all")) == 13


def test_overrides_decide_the_stratum(store):
    pool(store, easy=3, hard=1)
    store.insert_grade(GradeRecord(problem_id="e000", grade="hard", is_override=True, provider="manual"))
    res = sample(CFG, store, RecordingEvents(), name="o", strategy="all")
    assert res.counts == {"easy": 2, "medium": 0, "hard": 2}
    item = next(i for i in store.get_dataset("o").items if i.problem_id == "e000")
    assert (item.grade, item.route) == ("hard", "long")
    assert store.get_dataset("o").params["pool"]["graders"] == {"manual": 1, "rules:rules:-": 3}


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(k=0), "K must be at least 1"),
        (dict(k=-3, strategy="random"), "K must be at least 1"),
        (dict(k=11), "pool holds only 10"),
        (dict(strategy="fixed", ratio="1:2"), "E:M:H"),
        (dict(strategy="greedy"), "--strategy 'greedy'"),
        (dict(name="  "), "non-empty name"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(store, kw, fragment):
    pool(store, easy=5, medium=2, hard=3)
    args = dict(name="x", strategy="adaptive", k=5) | kw
    with pytest.raises(SampleError, match=fragment) as e:
        sample(CFG, store, RecordingEvents(), **args)
    assert "\n" not in str(e.value) and store.dataset_names() == []


def test_empty_pool_is_an_error(store):
    pool(store, ungraded=3)
    with pytest.raises(SampleError, match="no graded train problems"):
        sample(CFG, store, RecordingEvents(), name="x", strategy="all")
    assert store.dataset_names() == []


def test_an_existing_name_is_never_overwritten(store):
    pool(store, easy=5, medium=2, hard=3)
    sample(CFG, store, RecordingEvents(), name="d", strategy="adaptive", k=5, seed=1)
    before = store.get_dataset("d")
    with pytest.raises(SampleError, match="dataset 'd' already exists"):
        sample(CFG, store, RecordingEvents(), name="d", strategy="all")
    assert store.get_dataset("d") == before and store.dataset_names() == ["d"]


def test_config_defaults_are_used(store):
    pool(store, easy=30, medium=30, hard=30)
    cfg = parse_config('[sampling]\nstrategy = "random"\nk = 7\nseed = 5')
    res = sample(cfg, store, RecordingEvents(), name="c")
    assert (res.strategy, res.k, res.seed) == ("random", 7, 5)


# -- blind routing (ACoTD's random-sampling ablation) ---------------------------------


def graded_pool(store, grades: list[str]):
    problems = [Problem(id=f"p{i:03d}", question=f"q {i}", answer="1", split="train") for i in range(len(grades))]
    store.insert_problems(problems)
    with store.transaction():
        for p, g in zip(problems, grades):
            store.insert_grade(GradeRecord(problem_id=p.id, grade=g, provider="rules", model="rules"))


def routes_of(store, name):
    return {i.problem_id: i.route for i in store.get_dataset(name).items}


def test_blind_routing_does_not_depend_on_any_grade(tmp_path):
    from app.store import Store

    grades = ["easy"] * 40 + ["medium"] * 20 + ["hard"] * 30
    shuffled = list(grades)
    random.Random(5).shuffle(shuffled)
    got = []
    for i, gs in enumerate((grades, shuffled)):
        with Store(tmp_path / f"s{i}.db") as s:
            graded_pool(s, gs)
            res = sample(CFG, s, RecordingEvents(), name="r", strategy="random", k=30, seed=4, routing="blind")
            got.append((routes_of(s, "r"), res))
    (a, res_a), (b, _) = got
    # The same problems and the same routes, although every problem's grade moved.
    assert a == b
    # The pool's short share, (40 + 20) / 90 of K = 30 -> 20 short, 10 long.
    assert res_a.routes == {"short": 20, "long": 10} and res_a.routing == "blind"
    with Store(tmp_path / "s0.db") as s:
        items = s.get_dataset("r").items
        assert s.get_dataset("r").params["routing"] == "blind"
    assert {i.grade for i in items if i.route == "long"} != {"hard"}  # Hard is not what goes long


def test_graded_routing_follows_the_grades_for_every_strategy(store):
    graded_pool(store, ["easy"] * 40 + ["medium"] * 20 + ["hard"] * 30)
    sample(CFG, store, RecordingEvents(), name="r", strategy="random", k=30, seed=4)
    assert all(i.route == ("long" if i.grade == "hard" else "short") for i in store.get_dataset("r").items)
    with pytest.raises(SampleError, match="--routing 'sideways'"):
        sample(CFG, store, RecordingEvents(), name="x", strategy="random", k=3, routing="sideways")


def test_a_random_cell_draws_per_seed_and_the_others_share_one_dataset(tmp_path):
    from app.pipeline.batch import replicates
    from app.sweep import load_sweep

    path = tmp_path / "s.toml"
    path.write_text(
        '[sweep]\nname = "s"\nseeds = [0, 1, 2]\n[[cell]]\nlabel = "a"\n'
        '[[cell]]\nlabel = "r"\nstrategy = "random"\nrouting = "blind"\n'
        '[[cell]]\nlabel = "f"\nstrategy = "random"\nsample_seed = 7\n'
    )
    sw = load_sweep(path, {})
    a, r, f = sw.cells
    assert replicates(sw, a) == {None: "s-a"}
    assert replicates(sw, r) == {0: "s-r-s0", 1: "s-r-s1", 2: "s-r-s2"}
    assert replicates(sw, f) == {None: "s-f"}  # a fixed sample seed: one draw for every seed
