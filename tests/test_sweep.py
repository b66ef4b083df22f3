"""Sweep files (`tailor --batch`): parsing, expansion, errors, and an interrupted two-cell sweep that resumes."""

import pytest

from app import REPO_ROOT
from app.cli import BUNDLED, main
from app.config import DB_NAME
from app.errors import ConfigError
from app.pipeline import batch
from app.store import Store
from app.sweep import load_sweep


def write(tmp_path, text, name="sweep.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_cells_are_explicit_cells_times_the_grid(tmp_path):
    path = write(
        tmp_path,
        """
[sweep]
name = "abl"
seeds = [0, 1, 2]
[config.student]
max_tokens = 77
[defaults]
k = 100
profile = "acotd"
[grid]
k = [50, 100]
[[cell]]
label = "acotd"
[[cell]]
label = "random"
strategy = "random"
[[cell]]
label = "short"
routing = "short"
set = { rank = 8 }
""",
    )
    sw = load_sweep(path, {})
    assert [c.label for c in sw.cells] == [
        "acotd-k50",
        "acotd-k100",
        "random-k50",
        "random-k100",
        "short-k50",
        "short-k100",
    ]
    by = {c.label: c.keys for c in sw.cells}
    assert by["random-k50"].strategy == "random" and by["random-k50"].k == 50
    assert by["short-k100"].routing == "short" and by["short-k100"].set == {"rank": 8}
    assert all(k.profile == "acotd" for k in by.values())
    assert sw.config.student.max_tokens == 77 and sw.section.seeds == [0, 1, 2]
    assert sw.dataset_name(sw.cells[0]) == "abl-acotd-k50"


def test_one_default_cell_is_named_after_the_sweep(tmp_path):
    sw = load_sweep(write(tmp_path, '[sweep]\nname = "main"\n'), {"student": {"max_tokens": 9}})
    assert [c.label for c in sw.cells] == ["main"] and sw.config.student.max_tokens == 9
    assert sw.section.stages[0] == "diagnose" and sw.section.stages[-1] == "report"


@pytest.mark.parametrize(
    "text, message",
    [
        ('[sweep]\nname = "x"\nspeed = 1\n', "sweep.speed: unknown key"),
        ('[sweep]\nname = "x"\nstages = ["train", "dance"]\n', "sweep.stages: unknown stage 'dance'"),
        ('[sweep]\nname = "x"\nseeds = []\n', "sweep.seeds:"),
        ('[sweep]\nname = "x"\nseeds = [1, 1]\n', "repeated seed"),
        ('[sweep]\nname = "x"\n[grid]\nk = []\n', "grid.k: an empty list makes an empty grid"),
        ('[sweep]\nname = "x"\n[grid]\ncolour = ["red"]\n', "grid.colour: unknown key"),
        (
            '[sweep]\nname = "x"\n[[cell]]\nlabel = "a"\niters = 5\nfind_stop = true\n',
            "cannot go with max_iters or find_stop",
        ),
        ('[sweep]\nname = "x"\n[[cell]]\nlabel = "a"\n[[cell]]\nlabel = "a"\n', "both labelled 'a'"),
        ('[sweep]\nname = "x"\n[[cell]]\nlabel = "a"\nrouting = "sideways"\n', "cell[0].routing"),
        ('[sweep]\nname = "x"\n[config.student]\nmax_tokens = 0\n', "config.student.max_tokens"),
        (
            '[sweep]\nname = "x"\n[config.judge]\nprovider = "openai"\n',
            "config.judge.base_url: required key is missing",
        ),
        ('[sweep]\nname = "x"\n[defaults]\nset = { rnak = 8 }\n', "x.set.rnak: unknown key"),
        ('[sweep]\nname = "x"\n[defaults]\nstrategy = "fixed"\nratio = "6:3"\n', "x.ratio"),
        ('[sweep]\nname = "x y"\n', "name 'x y'"),
        ('[sweep\nname = "x"\n', "sweep.toml: "),
    ],
)
def test_a_bad_sweep_file_is_one_line_naming_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_sweep(path, {})
    assert message in str(e.value) and str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_an_error_in_tailor_toml_names_tailor_toml_not_the_sweep(project, tmp_path, capsys):
    (project / "tailor.toml").write_text("[student]\nmax_tokens = 0\n")
    path = write(tmp_path, '[sweep]\nname = "x"\n')
    assert main(["--project", str(project), "--batch", str(path)]) == 1
    err = capsys.readouterr().err
    assert "tailor.toml: student.max_tokens" in err and "sweep.toml" not in err


def test_bad_sweep_file_exits_before_anything_runs(project, tmp_path, capsys):
    path = write(tmp_path, '[sweep]\nname = "x"\nbogus = 1\n')
    assert main(["--project", str(project), "--batch", str(path)]) == 1
    assert "sweep.bogus: unknown key" in capsys.readouterr().err
    with Store(project / DB_NAME) as store:
        assert store.count("attempts") == 0 and store.cells("x") == {}


SMALL = """
[sweep]
name = "mini"
seeds = [0]
diagnose_limit = 12
eval_limit = 3
valid_fraction = 0.2
stages = ["diagnose", "grade", "sample", "teach", "verify", "export", "train", "eval"]
[config.student]
model = "{model}"
max_tokens = 8
[config.sampling]
k = 10
[defaults]
profile = "obryan"
iters = 2
set = {{ batch_size = 2, steps_per_eval = 2, steps_per_report = 1, save_every = 2, max_seq_length = 256, truncate = true }}
[[cell]]
label = "adaptive"
[[cell]]
label = "short"
routing = "short"
"""


def test_an_interrupted_two_cell_sweep_resumes_without_repeating_finished_cells(
    project, tmp_path, tiny_model_dir, monkeypatch, capsys
):
    pytest.importorskip("mlx.core")
    assert main(["--project", str(project), "import", str(BUNDLED)]) == 0
    path = write(tmp_path, SMALL.format(model=tiny_model_dir))
    real = batch._cell_stage

    def ctrl_c_in_second_training(stage, sweep, cell, *a, **kw):
        if cell.label == "short" and stage == "train":
            raise KeyboardInterrupt
        return real(stage, sweep, cell, *a, **kw)

    monkeypatch.setattr(batch, "_cell_stage", ctrl_c_in_second_training)
    assert main(["--project", str(project), "--batch", str(path)]) == 130
    assert "interrupted in cell short (train)" in capsys.readouterr().err
    with Store(project / DB_NAME) as store:
        cells = store.cells("mini")
        assert (cells["adaptive"]["status"], cells["short"]["status"]) == ("done", "interrupted")
        first_runs = {r.id for r in store.runs()}
        assert len(first_runs) == 1 and store.count("attempts") == 12  # diagnosis only: eval never ran
        assert {r.label for r in store.runs()} == {"adaptive"}

    monkeypatch.setattr(batch, "_cell_stage", real)
    assert main(["--project", str(project), "--batch", str(path)]) == 0
    out = capsys.readouterr().out
    assert "sweep mini: adaptive done, short done" in out and "exact McNemar" in out
    assert "vs main cell adaptive" in out  # short, an ablation, against the first cell
    with Store(project / DB_NAME) as store:
        runs = store.runs()
        assert len(runs) == 2 and first_runs < {r.id for r in runs}  # the finished run was not trained again
        assert {(r.label, r.sweep, r.status) for r in runs} == {("adaptive", "mini", "done"), ("short", "mini", "done")}
        assert {c["status"] for c in store.cells("mini").values()} == {"done"}
        evals = store.eval_attempts()
        assert len(evals) == 3 * 3  # base + two runs, three problems
        assert store.count("attempts") == 12 + 9
        # The "short" cell's routing reached teach: every item of its dataset has short CoT,
        # although the rules judge graded them all Hard (adaptive routing would say long).
        short = store.get_dataset("mini-short")
        assert {i.route for i in short.items} == {"long"}
        assert {i.problem_id for i in short.items} <= {t.problem_id for t in store.traces(role="short")}

    assert main(["--project", str(project), "status"]) == 0
    assert "sweep mini: adaptive done, short done" in capsys.readouterr().out
    # A third run does nothing new.
    assert main(["--project", str(project), "--batch", str(path)]) == 0
    with Store(project / DB_NAME) as store:
        assert store.count("attempts") == 21 and len(store.runs()) == 2

    # A seed added to the file trains and evaluates just that seed in every cell.
    path.write_text(path.read_text().replace("seeds = [0]", "seeds = [0, 1]"))
    assert main(["--project", str(project), "--batch", str(path)]) == 0
    with Store(project / DB_NAME) as store:
        runs = store.runs()
        assert sorted((r.label, r.seed) for r in runs) == [("adaptive", 0), ("adaptive", 1), ("short", 0), ("short", 1)]
        # The two seed-1 runs and the base at seed 1 (so both pair by seed); the rest came from the store.
        assert store.count("attempts") == 21 + 3 * 3
        assert sorted({a.params["eval_seed"] for a in store.eval_attempts(base_only=True)}) == [0, 1]


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO_ROOT / "examples").glob("*.toml")))
def test_example_sweeps_are_valid(name):
    sw = load_sweep(REPO_ROOT / "examples" / f"{name}.toml", {})
    assert sw.cells and sw.name == name


def test_a_cell_can_bring_its_own_teacher(tmp_path):
    sw = load_sweep(
        write(
            tmp_path,
            """
[sweep]
name = "t"
[[cell]]
label = "a"
[[cell]]
label = "b"
[cell.teachers.long]
provider = "openai"
base_url = "http://localhost:1/v1"
model = "big"
""",
        ),
        {},
    )
    a, b = sw.cells
    assert sw.config_for(a).teachers.long.provider == "reference"
    assert sw.config_for(b).teachers.long.model == "big" and sw.config_for(b).teachers.short.provider == "reference"


def test_main_cell_defaults_to_the_first_and_must_name_a_cell(tmp_path):
    cells = '[[cell]]\nlabel = "a"\n[[cell]]\nlabel = "b"\n'
    assert load_sweep(write(tmp_path, f'[sweep]\nname = "s"\n{cells}'), {}).main == "a"
    assert load_sweep(write(tmp_path, f'[sweep]\nname = "s"\nmain = "b"\n{cells}'), {}).main == "b"
    with pytest.raises(ConfigError, match=r"sweep\.main: 'c' is not a cell; cells: a, b"):
        load_sweep(write(tmp_path, f'[sweep]\nname = "s"\nmain = "c"\n{cells}'), {})


def test_results_table_marks_a_degraded_configuration_in_red(monkeypatch, tmp_path):
    sw = load_sweep(write(tmp_path, '[sweep]\nname = "s"\n'), {})
    conf = {
        "label": "s",
        "sweep": "s",
        "tier": "R1",
        "seeds": [0, 1],
        "mean": 0.4,
        "std": 0.05,
        "reference_mean": 0.6,
        "delta": -0.2,
        "delta_ci": [-0.3, -0.1],
        "p": 0.012,
        "p_adjusted": 0.024,
        "verdict": "DEGRADED",
        "degraded": True,
    }
    other = {
        **conf,
        "label": "t",
        "p": None,
        "p_adjusted": None,
        "verdict": "no significant difference",
        "degraded": False,
    }
    monkeypatch.setattr("app.results.collect", lambda store, split: {"configurations": [conf, other], "ablations": []})
    plain = batch.results_table(None, sw, split="test")
    assert "DEGRADED" in plain and "0.012" in plain and "0.024" in plain and "-20.0" in plain
    assert "[-30.0, -10.0]" in plain and "undef" in plain and "\033[" not in plain
    red = batch.results_table(None, sw, split="test", color=True)
    (line,) = [x for x in red.splitlines() if x.startswith("\033[31ms ")]
    assert "DEGRADED" in line


def test_a_failing_cell_is_listed_and_the_others_still_run(project, tmp_path, capsys):
    from app.records import GradeRecord, Problem

    with Store(project / DB_NAME) as store:
        store.insert_problems([Problem(id=f"p{i}", question=f"q{i}", answer="1", split="train") for i in range(4)])
        for i in range(4):
            store.insert_grade(GradeRecord(problem_id=f"p{i}", grade="hard", answer_correct=False, provider="rules"))
    path = write(
        tmp_path,
        """
[sweep]
name = "f"
stages = ["sample"]
[[cell]]
label = "big"
k = 50
[[cell]]
label = "small"
k = 2
""",
    )
    assert main(["--project", str(project), "--batch", str(path)]) == 1
    out = capsys.readouterr()
    assert "sweep f: big failed, small done" in out.out
    assert "1 cell(s) failed:" in out.err and "big: sample:" in out.err
    with Store(project / DB_NAME) as store:
        cells = store.cells("f")
        assert (cells["big"]["status"], cells["big"]["stage"]) == ("failed", "sample") and cells["big"]["error"]
        assert cells["small"]["status"] == "done"
        assert store.get_dataset("f-small") is not None and store.get_dataset("f-big") is None
