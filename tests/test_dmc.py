"""Data-model compatibility: tailor's metric, `tailor score` on the tiny model, and export's selection."""

import json
import math

import httpx
import pytest
from test_export import cfg, taught  # noqa: F401  (fixtures)

from app import dmc
from app.config import DmcConfig, parse_config
from app.events import RecordingEvents
from app.pipeline.export import export
from app.pipeline.score import ScoreError, capabilities, parse_quality, score
from app.pipeline.select import SelectError

D = DmcConfig()


def test_phi_runs_from_zero_to_one_and_rises():
    xs = [i / 20 for i in range(21)]
    ys = [dmc.phi(x, D.phi_slope, D.phi_mid) for x in xs]
    assert ys[0] == pytest.approx(0) and ys[-1] == pytest.approx(1) and ys[10] == pytest.approx(0.5)
    assert all(a < b for a, b in zip(ys, ys[1:]))


def test_low_capability_favours_hard_high_capability_moderate():
    hard, moderate, easy = 1.0, 0.5, 0.0
    low = [dmc.dmc(0.9, d, 0.0, D) for d in (hard, moderate, easy)]
    high = [dmc.dmc(0.9, d, 1.0, D) for d in (hard, moderate, easy)]
    assert low[0] > low[1] > low[2]
    assert high[1] > high[0] and high[1] > high[2]
    # quality always helps, at any capability and difficulty
    assert all(dmc.dmc(0.9, d, c, D) > dmc.dmc(0.3, d, c, D) for d in (0.1, 0.5, 0.9) for c in (0, 0.5, 1))


def test_at_zero_capability_dmc_ranks_like_the_car_product():
    q, d = [0.2, 0.9, 0.5, 0.7], [0.9, 0.1, 0.6, 0.4]
    car = dmc.values("car", q, d, None, D)
    low = dmc.values("dmc", q, d, 0.0, D)
    assert sorted(range(4), key=car.__getitem__) == sorted(range(4), key=low.__getitem__)


def test_ranks_and_top():
    assert dmc.percentile_ranks([3.0, 1.0, 2.0, 2.0]) == [1.0, 0.0, 0.5, 0.5]
    assert dmc.percentile_ranks([7.0]) == [0.5]
    assert dmc.top([10, 11, 12, 13, 14, 15, 16, 17], [1, 8, 3, 8, 5, 6, 7, 2], 12.5) == {11: 8}
    assert list(dmc.top([1, 2, 3], [0.1, 0.3, 0.2], 50)) == [2, 3]  # ceil(1.5) = 2
    assert dmc.relative_capability(math.log(0.25), None) == pytest.approx(0.25)
    assert dmc.relative_capability(-1.0, (-3.0, -0.5)) == pytest.approx(0.8)
    assert dmc.relative_capability(-9.0, (-3.0, -0.5)) == 0.0


def test_quality_replies():
    assert parse_quality('{"score": 8, "rationale": "fine"}').score == 8
    for bad in ('{"score": 11}', '{"score": 2.5}', "no json", '{"score": true}'):
        with pytest.raises(ValueError):
            parse_quality(bad)


@pytest.fixture
def tiny_cfg(cfg, tiny_model_dir):  # noqa: F811
    cfg.student.model = str(tiny_model_dir)
    cfg.student.max_batch = 8
    return cfg


def test_score_then_select_with_the_tiny_model(tiny_cfg, store, taught, project):  # noqa: F811
    with pytest.raises(SelectError, match="no quality rating; run `tailor score --dataset ds` first"):
        export(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project, select="dmc", measure_tokens=False)

    ev = RecordingEvents()
    res = score(tiny_cfg, store, ev, dataset="ds", project=project)
    assert res.pool == 10 and res.rated == 10 and res.failed == 0
    assert res.placement == 1 and res.placement_drawn  # the top 10 % of 10 rated traces
    assert res.scored == 10 and res.skipped == 0  # the placement trace is one of the pool's
    assert res.capability is not None and res.capability < 0 and 0 < res.relative < 1
    assert "rules judge's stand-in" in res.quality_by
    rows = store.trace_scores(res_state(store), student_hash())
    assert len(rows) == 10
    for r in rows.values():
        assert r["ifd"] == pytest.approx(r["cppl"] / r["ppl"]) and r["n_tokens"] > 0

    again = score(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project)
    assert (again.rated, again.scored, again.skipped, again.placement_drawn) == (0, 0, 10, False)
    assert again.capability == pytest.approx(res.capability)
    assert [c["traces"] for c in capabilities(tiny_cfg, store)] == [1]

    out = export(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project, select="dmc", top=50)
    m = json.loads(out.manifest_path.read_text())
    placed = {r["problem_id"] for r in store.placement().values()}
    assert m["placement_problems_left_out"] == sorted(placed)
    sel = m["selection"]
    assert (sel["method"], sel["top"], sel["of"], sel["kept"]) == ("dmc", 50, 9, 5)
    assert sel["trace_ids"] == m["trace_ids"] and 0 < sel["capability"]["relative"] < 1
    assert out.out_dir.name == "ds-dmc50"
    exported = {
        row["messages"][1]["content"] for part in ("train", "valid") for row in read(out.out_dir / f"{part}.jsonl")
    }
    assert not any(store.get_problem(p).question in q for p in placed for q in exported)
    assert {s["trace_id"] for s in store.selections("ds")} == set(sel["trace_ids"])

    full = export(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project, measure_tokens=False)
    assert full.manifest["counts"]["examples"] == 9  # the placement problem is never exported


def test_scoring_an_unknown_adapter_is_one_line(tiny_cfg, store, taught, project):  # noqa: F811
    with pytest.raises(ScoreError, match="--adapter 'nope': no run match"):
        score(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project, adapter="nope")


def test_a_remote_judge_rates_quality_through_the_client(tiny_cfg, store, taught, project):  # noqa: F811
    remote = parse_config(
        '[judge]\nprovider = "openai"\nbase_url = "https://judge.test/v1"\nmodel = "j"\n'
        + "\n".join(
            f'[teachers.{s}]\nprovider = "openai"\nbase_url = "https://teach.test/v1"\nmodel = "teacher-{x}"'
            for s, x in (("short", "a"), ("long", "b"))
        )
    )
    remote.student = tiny_cfg.student
    seen = []

    def reply(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body["messages"][-1]["content"])
        n = len(seen)
        content = "not json" if n == 1 else json.dumps({"score": 1 + n % 10, "rationale": "ok"})
        return httpx.Response(
            200,
            json={
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5},
            },
        )

    res = score(remote, store, RecordingEvents(), dataset="ds", project=project, transport=httpx.MockTransport(reply))
    assert res.rated == 10 and res.unrated == 0  # the unreadable first reply was repaired
    assert "openai j (prompt" in res.quality_by
    rated = store.trace_quality("openai", "j", load_hash("quality"))
    assert all(0 <= r["quality"] <= 1 and r["quality"] == pytest.approx((r["raw"] - 1) / 9) for r in rated.values())
    assert all("<<<DATA" in text for text in seen[:10])  # the trace is data inside a fence


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def load_hash(name):
    from app.prompts import load_prompt

    return load_prompt(name).hash


def student_hash():
    return load_hash("student_solve")


def res_state(store):
    return store.score_states(student_hash())[0]


def test_fit_ranks_each_feature_against_the_gain(tiny_cfg, store, taught, project, monkeypatch):  # noqa: F811
    import hashlib

    import app.results
    from app.pipeline.dmc_fit import fit, format_fit
    from app.records import Run

    score(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project)
    scores = store.trace_scores(res_state(store), student_hash())
    by_ifd = sorted(scores, key=lambda t: scores[t]["ifd"])
    rows = []
    # Four configurations trained on ever harder thirds of the pool, with gains that fall as IFD rises.
    for k, gain in enumerate((0.3, 0.2, 0.1, 0.0)):
        ids = by_ifd[k * 2 : k * 2 + 3]
        d = project / "runs" / "datasets" / f"c{k}"
        d.mkdir(parents=True)
        train = b"x\n" * (k + 1)
        (d / "train.jsonl").write_bytes(train)
        sha = hashlib.sha256(train).hexdigest()
        (d / "manifest.json").write_text(
            json.dumps({"trace_ids": ids, "files": {"train.jsonl": {"sha256": sha}}}), encoding="utf-8"
        )
        store.insert_run(
            Run(id=f"r{k}", label=f"c{k}", seed=0, status="done", config={"data": {"dir": str(d), "train_sha256": sha}})
        )
        rows.append({"label": f"c{k}", "tier": "R1", "runs": [f"r{k}"], "delta": gain})
    monkeypatch.setattr(app.results, "collect", lambda store, split, benchmark=None: {"configurations": rows})

    out = fit(tiny_cfg, store, split="test", project=project)
    assert [r["label"] for r in out["configurations"]] == ["c0", "c1", "c2", "c3"]
    assert out["spearman"]["ifd"]["rho"] == pytest.approx(-1.0) and out["spearman"]["ifd"]["n"] == 4
    assert out["spearman"]["quality"]["rho"] is None  # the rules stand-in rates every trace alike here
    assert out["capability"] is not None and out["spearman"]["dmc"]["n"] == 4
    text = format_fit(out)
    assert "ρ = -1.000" in text and "undefined" in text and "tailor's form of the metric" in text

    # A re-export rewrites the manifest: the run no longer knows what it trained on.
    (project / "runs" / "datasets" / "c0" / "manifest.json").write_text(
        json.dumps({"trace_ids": by_ifd, "files": {"train.jsonl": {"sha256": "another"}}}), encoding="utf-8"
    )
    again = fit(tiny_cfg, store, split="test", project=project)
    assert [r["label"] for r in again["configurations"]] == ["c1", "c2", "c3"]
    assert any("c0: run r0's export was rewritten" in n for n in again["notes"])


DMC_SWEEP = """
[sweep]
name = "dsel"
diagnose_limit = 24
stages = ["diagnose", "grade", "sample", "teach", "verify", "score", "export"]
[config.student]
model = "{model}"
max_tokens = 8
[defaults]
strategy = "all"
[[cell]]
label = "full"
[[cell]]
label = "dmc"
select = "dmc"
top = 25
"""


def test_a_sweep_scores_and_selects_per_cell(project, tmp_path, tiny_model_dir):
    pytest.importorskip("mlx.core")
    from app.cli import BUNDLED, main
    from app.config import DB_NAME
    from app.pipeline.export import read_manifest
    from app.store import Store

    assert main(["--project", str(project), "import", str(BUNDLED)]) == 0
    (tmp_path / "dsel.toml").write_text(DMC_SWEEP.format(model=tiny_model_dir))
    assert main(["--project", str(project), "--batch", str(tmp_path / "dsel.toml")]) == 0
    root = project / "runs" / "datasets"
    full, picked = read_manifest(root / "dsel-full"), read_manifest(root / "dsel-dmc")
    assert full["selection"] is None and picked["selection"]["method"] == "dmc"
    n = picked["selection"]["of"]
    assert picked["selection"]["kept"] == math.ceil(n * 0.25) == len(picked["trace_ids"])
    assert set(picked["trace_ids"]) < set(full["trace_ids"])
    with Store(project / DB_NAME) as store:
        placed = set(store.placement())
        assert store.count("trace_scores") >= n and placed
    assert placed.isdisjoint(full["trace_ids"])  # drawn before the first cell exported


def test_dynamic_dmc_reselects_every_epoch_and_resumes_exactly(tiny_cfg, store, taught, project):  # noqa: F811
    import mlx.core as mx
    from test_train import StopAfter

    from app.pipeline.train import train

    score(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project)
    out = export(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project, select="dmc-dynamic", top=50)
    m = out.manifest
    assert out.out_dir.name == "ds-dmc-dynamic50" and "quality" not in m["selection"]["dynamic"]
    pool = read(out.out_dir / "pool.jsonl")
    placed = read(out.out_dir / "placement.jsonl")
    valid_q = {row["messages"][1]["content"] for row in read(out.valid_path)}
    assert len(placed) == 1 and len(pool) == 9 - len(valid_q)  # the pool keeps the validation problems out
    assert not any(row["messages"][1]["content"] in valid_q for row in pool)
    n_train = m["counts"]["train"]["examples"]

    epoch = n_train  # iterations per epoch at batch 1
    kw = dict(
        project=project,
        data_dir=out.out_dir,
        profile="obryan",
        iters=3 * epoch,
        seeds=[0],
        overrides={
            "batch_size": 1,
            "steps_per_eval": 100,
            "save_every": 1,
            "keep_checkpoints": 0,
            "steps_per_report": 1,
            "patience": 0,
            "dropout": 0.1,
        },
    )
    whole = train(tiny_cfg, store, RecordingEvents(), **kw).runs[0]
    assert whole.status == "done"

    def picked(run_id):
        rows = [s for s in store.selections("ds") if s["state"] == f"run:{run_id}"]
        return {e: {s["trace_id"] for s in rows if s["epoch"] == e} for e in (1, 2)}

    by_epoch = picked(whole.run_id)
    assert all(len(ids) == n_train for ids in by_epoch.values())
    assert set().union(*by_epoch.values()) <= {row["id"] for row in pool}
    assert (project / "runs" / whole.run_id / "log").read_text().count('"event": "selection"') == 2

    jobs = []

    def stopping(spec, **k):
        jobs.append(StopAfter(spec, n=epoch + 3, **k))
        return jobs[-1]

    cut = train(tiny_cfg, store, RecordingEvents(), job_cls=stopping, **kw).runs[0]
    assert cut.status == "interrupted"
    # Resume from the middle of epoch 1, whatever iteration the stop reached: the checkpoint
    # holds the epoch's selection, so no re-scoring happens and the order is replayed.
    mid = epoch + epoch // 2
    ckpts = project / "runs" / cut.run_id / "checkpoints"
    assert (ckpts / f"{mid:07d}").is_dir()
    (ckpts / "latest.json").write_text(json.dumps({"dir": f"{mid:07d}", "iter": mid}))
    assert json.loads((ckpts / f"{mid:07d}" / "state.json").read_text())["dmc"]["epoch"] == 1
    again = train(tiny_cfg, store, RecordingEvents(), project=project, resume=cut.run_id).runs[0]
    assert again.status == "done"
    a = mx.load(str(project / "runs" / whole.run_id / "last" / "adapters.safetensors"))
    b = mx.load(str(project / "runs" / cut.run_id / "last" / "adapters.safetensors"))
    assert all(mx.allclose(a[key], b[key], rtol=1e-5, atol=1e-6) for key in a)
    assert picked(cut.run_id) == by_epoch

    from app.selection_report import selection_markdown, selection_summary

    rows = selection_summary(store, [{"id": whole.run_id, "label": "dyn"}])
    assert len(rows) == 1 and rows[0]["epochs"] == 3 and rows[0]["pool"] == len(pool)
    assert len(rows[0]["capability"]) == 3 and all(c is not None for c in rows[0]["capability"])
    assert rows[0]["core"] + rows[0]["electives"] + rows[0]["never"] == len(pool)
    assert "Dynamic DMC" in "\n".join(selection_markdown(rows))


def test_the_offline_stand_ins_for_quality():
    from app.pipeline.score import Item, stand_in_quality
    from app.records import Problem, Trace

    p = Problem(id="p", question="What is 6*7+1?", answer="43", split="train", solution="6*7 = 42. 42+1 = 43.")
    steps = parse_config('[judge]\nprovider = "steps"\n')
    rules = parse_config('[judge]\nprovider = "rules"\n')

    def q(judge, text, finish="stop", verified=True):
        t = Trace(problem_id="p", role="short", provider="x", text=text, finish_reason=finish, verified=verified)
        return stand_in_quality(judge, Item(t, p, False))

    worked = "First 6*7 = 42, then add one: 42 + 1 = 43. The answer is \\boxed{43}."
    bare = "I think the result is, after some thought about it all, \\boxed{43} here."
    assert q(rules, worked)[0] == q(rules, bare)[0] == 1.0  # verified, not cut off, 10+ words
    assert q(rules, worked, finish="length")[0] == pytest.approx(2 / 3)
    assert q(steps, worked)[0] > q(steps, bare)[0]  # steps also counts the reference steps reached
    assert "stand-in" in q(steps, bare)[1] and "reference steps" in q(steps, bare)[1]


def test_capability_between_the_measured_states(tiny_cfg, store, taught, project):  # noqa: F811
    from app.pipeline.score import capability_bounds

    score(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project)
    tiny_cfg.dmc.capability_scale = "states"
    with pytest.raises(ScoreError, match="1 student state.s. measured, so the range is undefined"):
        export(tiny_cfg, store, RecordingEvents(), dataset="ds", project=project, select="dmc", measure_tokens=False)
    base = res_state(store)
    (tid, row), *_ = store.trace_scores(base, student_hash(), store.placement()).items()
    better = {k: row[k] for k in ("cond_logprob", "uncond_logprob", "ppl", "cppl", "ifd", "n_tokens")}
    better["cond_logprob"] += 1.0
    store.put_trace_scores([{"trace_id": tid, "state": base + "+run:r1", "prompt_hash": student_hash(), **better}])
    assert capability_bounds(tiny_cfg, store) == pytest.approx((row["cond_logprob"], row["cond_logprob"] + 1.0))
    got = {c["state"]: c["relative"] for c in capabilities(tiny_cfg, store)}
    assert got == {base: 0.0, base + "+run:r1": 1.0}
