"""One list of stages (app/stages.py): a stage added there is a subcommand with its own
options and help, a sweep stage the batch runner runs per cell, and a TUI row that runs."""

import dataclasses

import pytest

from app import cli, stages
from app.config import DB_NAME, load_config
from app.events import RecordingEvents
from app.pipeline.batch import open_sweep, run_sweep
from app.store import Store
from app.sweep import SweepSection
from app.tui import stages as tui_stages

CALLS: list[dict] = []


@dataclasses.dataclass
class ProbeResult:
    dataset: str

    def summary(self) -> str:
        return f"probed {self.dataset}"


def probe(cfg, store, events, *, dataset, project, loud=False):
    CALLS.append({"dataset": dataset, "project": project, "loud": loud})
    return ProbeResult(dataset)


def _options(p):
    p.add_argument("--dataset", required=True)
    p.add_argument("--loud", action="store_true", help="probe loudly")


PROBE = stages.Stage(
    "probe",
    "a stage only this test knows",
    f"{__name__}:probe",
    _options,
    sweep="cell",
    counts=lambda c: f"{c['problems']} problems probed",
    tui=("dataset",),
    needs_dataset=True,
)


@pytest.fixture
def with_probe(monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, PROBE))


def test_every_stage_is_everywhere():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    assert {s.name for s in stages.STAGES} <= set(sub)
    assert SweepSection(name="x").stages == [s.name for s in stages.STAGES if s.sweep]
    assert [s.key for s in tui_stages.tui_stages()] == [s.name for s in stages.STAGES if s.counts]
    assert all(sub[s.name].description == s.help for s in stages.STAGES)
    assert all(p.description for p in sub.values())  # every --help page says what the command does


def test_a_new_stage_appears_in_the_cli(with_probe, tmp_path, capsys):
    assert cli.main(["init", str(tmp_path)]) == 0
    parser = cli.build_parser()
    args = parser.parse_args(["probe", "--dataset", "d", "--loud"])
    assert args.loud and args.dataset == "d"
    assert cli.main(["--project", str(tmp_path), "probe", "--dataset", "d", "--loud"]) == 0
    assert CALLS == [{"dataset": "d", "project": tmp_path, "loud": True}]
    assert "probe: probed d" in capsys.readouterr().out


def test_a_new_stage_runs_per_cell_in_a_sweep(with_probe, tmp_path):
    assert cli.main(["init", str(tmp_path)]) == 0
    (tmp_path / "s.toml").write_text(
        '[sweep]\nname = "sw"\nstages = ["probe"]\n[[cell]]\nlabel = "a"\n[[cell]]\nlabel = "b"\n'
    )
    sweep = open_sweep(tmp_path, tmp_path / "s.toml")
    with Store(tmp_path / DB_NAME) as store:
        res = run_sweep(sweep, store, RecordingEvents(), project=tmp_path)
    assert res.cells == {"a": "done", "b": "done"}
    assert [c["dataset"] for c in CALLS] == ["sw-a", "sw-b"]


def test_a_new_stage_is_a_tui_row_that_runs(with_probe, tmp_path):
    assert cli.main(["init", str(tmp_path)]) == 0
    row = next(s for s in tui_stages.tui_stages() if s.key == "probe")
    assert row.needs_dataset and row.counts({"problems": 3}) == "3 problems probed"
    with Store(tmp_path / DB_NAME) as store:
        call = row.make({"split": "train", "dataset": "d", "tiers": True})
        res = call(load_config(tmp_path), store, RecordingEvents(), project=tmp_path, job_cls=None)
    assert res.dataset == "d" and CALLS == [{"dataset": "d", "project": tmp_path, "loud": False}]
