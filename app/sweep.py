"""Sweep files for `tailor --batch`: which stages to run and the grid of cells.

```toml
[sweep]
name = "acotd"                       # runs are tagged with it; reports/<name>/ holds its report
stages = ["diagnose", "grade", "sample", "teach", "verify", "export", "train", "eval", "report"]
seeds = [0, 1, 2, 3, 4]              # training seeds: every cell trains one run per seed
tiers = false                        # evaluate the response-length tiers too
main = "acotd"                       # the cell the others are ablations of (default: the first)

[config]                             # overrides of tailor.toml for this sweep (same keys)
student.max_tokens = 512

[defaults]                           # cell keys every cell starts from
strategy = "adaptive"
k = 200

[grid]                               # every combination of these values ...
k = [100, 200]

[[cell]]                             # ... for each of these cells (or for one default cell)
label = "acotd"
[[cell]]
label = "random"
strategy = "random"
```

Everything is validated before anything runs; an error names the file and the key.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app import stages
from app.config import STRATEGIES, Config, format_validation_error
from app.dmc import METHODS
from app.errors import ConfigError

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CellKeys(_Strict):
    """What may differ between cells."""

    label: str | None = None
    strategy: Literal[STRATEGIES] | None = None
    k: int | None = Field(None, ge=1)
    ratio: str | None = None
    sample_seed: int | None = None
    # adaptive: graded routes (Easy/Medium short, Hard long); blind: routes drawn without
    # grades (the random-sampling ablation); short / long: one teacher style for every item.
    routing: Literal["adaptive", "blind", "short", "long"] = "adaptive"
    # Export's selection (app/dmc.py): the top `top` % by quality, difficulty, CAR or DMC
    # for the base student, scored by the score stage; "full" (or unset) keeps every trace.
    select: Literal[METHODS] | None = None
    top: float | None = Field(None, gt=0, le=100)
    rescore_pool: float | None = Field(None, gt=0, le=100, description="dmc-dynamic: re-score the top Q % by quality")
    profile: Literal["acotd", "obryan"] | None = None
    iters: int | None = Field(None, ge=1)
    max_iters: int | None = Field(None, ge=1)
    find_stop: bool = False
    patience: int | None = Field(None, ge=0)
    set: dict[str, Any] = Field(default_factory=dict, description="[train] overrides, as `tailor train --set`")
    teachers: dict[str, Any] | None = Field(None, description="this cell's [teachers] tables (teacher comparisons)")

    @model_validator(mode="after")
    def _lengths(self):
        if self.iters is not None and (self.max_iters is not None or self.find_stop):
            raise ValueError(
                "iters (a fixed length) cannot go with max_iters or find_stop (find_stop trains the found length)"
            )
        return self


class SweepSection(_Strict):
    name: str
    stages: list[str] = Field(default_factory=lambda: list(stages.sweep_stages()), min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    tiers: bool = False
    main: str | None = Field(None, description="the cell every other cell is also compared with (default: the first)")
    split: Literal["train", "valid", "test", "placement"] | None = None
    benchmark: str | None = None
    diagnose_limit: int | None = Field(
        None, ge=1, description="diagnose only N train problems (a seeded draw stratified over categories)"
    )
    eval_limit: int | None = Field(
        None, ge=1, description="evaluate only N problems (a seeded draw stratified over categories)"
    )
    valid_fraction: float = Field(0.1, gt=0, lt=1)
    refill: bool = Field(True, description="replace rejected traces' problems within their stratum (verify --refill)")

    @field_validator("stages")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        known = stages.sweep_stages()
        for name in names:
            if name not in known:
                raise ValueError(f"unknown stage {name!r} (expected one of {', '.join(known)})")
        return names

    @model_validator(mode="after")
    def _check(self):
        if not _LABEL.match(self.name):
            raise ValueError(f"name {self.name!r}: use letters, digits, '.', '_', '+' or '-'")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: repeated seed in {self.seeds}")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("stages: a stage is listed twice")
        return self


class SweepFile(_Strict):
    sweep: SweepSection
    config: dict[str, Any] = Field(default_factory=dict)
    defaults: CellKeys = Field(default_factory=CellKeys)
    grid: dict[str, list] = Field(default_factory=dict)
    cell: list[dict[str, Any]] = Field(default_factory=list)


class Cell(BaseModel):
    """One configuration of the sweep: its keys and its (unique) label."""

    label: str
    keys: CellKeys

    @property
    def dataset(self) -> str:
        return self.label


class Sweep(BaseModel):
    path: str
    section: SweepSection
    config: Config
    cells: list[Cell]
    cell_configs: dict[str, Config] = Field(default_factory=dict)  # cells with their own teachers

    @property
    def name(self) -> str:
        return self.section.name

    @property
    def main(self) -> str:
        return self.section.main or self.cells[0].label

    def config_for(self, cell: Cell) -> Config:
        return self.cell_configs.get(cell.label, self.config)

    def dataset_name(self, cell: Cell) -> str:
        return f"{self.name}-{cell.label}"


def _fail(path: Path, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {msg}")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _value_label(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def expand(path: Path, doc: SweepFile) -> list[Cell]:
    """The cells: each explicit [[cell]] (or one default cell) × every grid combination."""
    bases = doc.cell or [{}]
    axes = list(doc.grid.items())
    for key, values in axes:
        if key == "label" or key not in CellKeys.model_fields:
            raise _fail(path, f"grid.{key}", "unknown key" if key != "label" else "labels cannot be a grid axis")
        if not values:
            raise _fail(path, f"grid.{key}", "an empty list makes an empty grid")
    defaults = doc.defaults.model_dump(exclude_unset=True)
    cells: list[Cell] = []
    for i, base in enumerate(bases):
        for combo in itertools.product(*(values for _, values in axes)) if axes else [()]:
            raw = {**defaults, **base, **{k: v for (k, _), v in zip(axes, combo)}}
            try:
                keys = CellKeys.model_validate(raw)
            except ValidationError as e:
                raise ConfigError(
                    format_validation_error(path, e).replace(f"{path}: ", f"{path}: cell[{i}].", 1)
                    if doc.cell
                    else format_validation_error(path, e)
                ) from None
            stem = base.get("label") or (doc.sweep.name if not axes else "")
            suffix = "-".join(f"{k}{_value_label(v)}" for (k, _), v in zip(axes, combo))
            label = "-".join(x for x in (stem, suffix) if x)
            if not _LABEL.match(label):
                raise _fail(path, f"cell[{i}].label", f"{label!r}: use letters, digits, '.', '_', '+' or '-'")
            cells.append(Cell(label=label, keys=keys.model_copy(update={"label": label})))
    labels = [c.label for c in cells]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise _fail(path, "cell", f"two cells are both labelled {dupes[0]!r}; give each [[cell]] its own label")
    return cells


def load_sweep(path: Path | str, project_config: dict) -> Sweep:
    """Parse and validate a sweep file against the project's tailor.toml (as a dict)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    try:
        doc = SweepFile.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e)) from None
    try:
        config = Config.model_validate(_merge(project_config, doc.config))
    except ValidationError as e:
        msg = format_validation_error(path, e)
        raise ConfigError(msg.replace(f"{path}: ", f"{path}: config.", 1)) from None
    cells = expand(path, doc)
    if doc.sweep.main is not None and doc.sweep.main not in {c.label for c in cells}:
        raise _fail(path, "sweep.main", f"{doc.sweep.main!r} is not a cell; cells: {', '.join(c.label for c in cells)}")
    cell_configs = {}
    for cell in cells:
        if cell.keys.teachers is not None:
            try:
                cell_configs[cell.label] = Config.model_validate(
                    _merge(_merge(project_config, doc.config), {"teachers": cell.keys.teachers})
                )
            except ValidationError as e:
                msg = format_validation_error(path, e)
                raise ConfigError(msg.replace(f"{path}: ", f"{path}: {cell.label}.", 1)) from None
        try:
            config.train.model_validate({**config.train.model_dump(exclude_unset=True), **cell.keys.set})
        except ValidationError as e:
            raise ConfigError(
                format_validation_error(path, e).replace(f"{path}: ", f"{path}: {cell.label}.set.", 1)
            ) from None
        if cell.keys.strategy == "fixed" or (cell.keys.strategy is None and config.sampling.strategy == "fixed"):
            from app.pipeline.sample import parse_ratio

            try:
                parse_ratio(cell.keys.ratio or config.sampling.ratio)
            except Exception as e:  # noqa: BLE001 - the sampler's own message is the clearest
                raise _fail(path, f"{cell.label}.ratio", str(e)) from None
    return Sweep(path=str(path), section=doc.sweep, config=config, cells=cells, cell_configs=cell_configs)
