"""tailor.toml as pydantic models: load, validate, and name the key at fault on error.

No I/O happens at import; `load_config` reads the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import ConfigError

CONFIG_NAME = "tailor.toml"
DB_NAME = "tailor.db"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Provider(_Section):
    """What the rest of tailor asks of a judge or teacher, instead of comparing names."""

    offline: ClassVar[bool] = False  # a deterministic stand-in: no calls, no model
    stand_in: ClassVar[str | None] = None  # what an offline stand-in does, for labels and reports
    # What it can do: grade (judge), teach (teacher), rate (CoT quality, the consistency check).
    can: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def name(cls) -> str:
        return cls.model_fields["provider"].annotation.__args__[0]


class _RemoteModel(_Provider):
    """A model behind an OpenAI-compatible endpoint, as the judge or a teacher (each
    subclass names its `model` after where it is, so a missing URL is reported first)."""

    concurrency: int = Field(8, ge=1, le=512)
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    # As a teacher: what export does with the model's reasoning (reasoning_content or <think>):
    # "as-cot" puts it before the final solution, "drop" leaves it out. Unset: as-cot for the
    # long-CoT teacher (the long CoT ACoTD's teacher B and the O'Bryan study train on), drop for short.
    keep_reasoning: Literal["as-cot", "drop"] | None = None
    # As the judge: how many times in all a problem is asked (one per `tailor grade` run)
    # while its reply cannot be read even after the repair call; then it stays ungraded.
    grade_tries: int = Field(3, ge=1)

    can: ClassVar[frozenset[str]] = frozenset({"grade", "teach", "rate"})
    uses_key: ClassVar[bool] = False  # whether api_key_env names a key to send

    def endpoint_id(self) -> tuple:
        """What makes two roles the same endpoint (ping calls it once)."""
        raise NotImplementedError

    def cache_endpoint(self, base_url: str | None) -> str:
        """The endpoint as request-cache keys name it: stable across runs."""
        raise NotImplementedError

    def wire_model(self) -> str:
        """The model name sent in each request."""
        return self.model

    @asynccontextmanager
    async def connect(self, role: str, store, api_key: str | None, **client_kw):
        """A ready `app.remote.RemoteClient` for this endpoint (a local one is started first)."""
        from app.remote import RemoteClient

        async with RemoteClient(self, role, store, api_key, **client_kw) as client:
            yield client


class OpenAIProvider(_RemoteModel):
    """Any OpenAI-compatible chat-completions endpoint."""

    provider: Literal["openai"]
    base_url: str
    model: str
    # Local servers (Ollama, LM Studio, vLLM) often need no key, so it is optional.
    api_key_env: str | None = None
    timeout: float = Field(120.0, gt=0)
    price_in: float | None = Field(None, ge=0, description="USD per million prompt tokens")
    price_out: float | None = Field(None, ge=0, description="USD per million completion tokens")
    max_tokens: int = Field(4096, ge=1)
    uses_key: ClassVar[bool] = True

    def endpoint_id(self) -> tuple:
        return (self.name(), self.base_url, self.model, self.api_key_env)

    def cache_endpoint(self, base_url: str | None) -> str:
        return self.base_url

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class MlxServerProvider(_RemoteModel):
    """A local model served by mlx_lm.server on a free loopback port."""

    provider: Literal["mlx-server"]
    model: str
    adapter: str | None = None
    timeout: float = Field(600.0, gt=0)
    max_tokens: int = Field(2048, ge=1)

    def endpoint_id(self) -> tuple:
        return (self.name(), self.model, self.adapter)

    def cache_endpoint(self, base_url: str | None) -> str:
        if not base_url:
            raise ValueError("an mlx-server client needs the running server's base_url")
        # The server's port changes every run; the cache key must not.
        return f"mlx-server:{self.model}" + (f"+{self.adapter}" if self.adapter else "")

    def wire_model(self) -> str:
        return "default_model"  # mlx_lm.server maps it to its --model and --adapter-path

    @asynccontextmanager
    async def connect(self, role: str, store, api_key: str | None, **client_kw):
        import asyncio

        from app.mlx_server import MlxServer
        from app.remote import RemoteClient

        server = MlxServer(self.model, self.adapter)
        await asyncio.to_thread(server.start)
        try:
            async with RemoteClient(self, role, store, None, base_url=server.base_url, **client_kw) as client:
                yield client
        finally:
            server.stop()


# The offline providers are deterministic stand-ins: no calls, and they do not read
# reasoning, so CoT quality and the consistency check are skipped with them and every
# label says "stand-in". A new one is a class here, listed in PROVIDERS.


class ReferenceProvider(_Provider):
    """Teacher only: the problem's reference solution is the CoT."""

    provider: Literal["reference"]
    offline: ClassVar[bool] = True
    stand_in: ClassVar[str] = "the problem's reference solution"
    can: ClassVar[frozenset[str]] = frozenset({"teach"})

    def offline_teach(self, problem, role: str):
        from app.remote import reference_result

        return reference_result(problem, role)


class RulesProvider(_Provider):
    """Judge only: grades from answer correctness alone."""

    provider: Literal["rules"]
    offline: ClassVar[bool] = True
    stand_in: ClassVar[str] = "answer check only"
    can: ClassVar[frozenset[str]] = frozenset({"grade"})

    def offline_grade(self, problem, cot: str | None, answer_correct: bool | None):
        from app.remote import rules_grade

        return rules_grade(answer_correct)

    def quality_extras(self, problem, text: str) -> dict[str, float]:
        """What this stand-in adds to DMC's quality checks (app/pipeline/score.py): nothing."""
        return {}


class StepsProvider(_Provider):
    """Judge only: grades from answer correctness and the reference solution's steps the CoT reaches."""

    provider: Literal["steps"]
    offline: ClassVar[bool] = True
    stand_in: ClassVar[str] = "answer check + reference steps found in the CoT"
    can: ClassVar[frozenset[str]] = frozenset({"grade"})

    def offline_grade(self, problem, cot: str | None, answer_correct: bool | None):
        from app.remote import steps_grade

        return steps_grade(problem, cot, answer_correct)

    def quality_extras(self, problem, text: str) -> dict[str, float]:
        from app.answers import reference_steps, steps_reached

        steps = reference_steps(problem.solution, problem.answer, problem.question)
        return {"share of reference steps reached": sum(steps_reached(steps, text)) / len(steps)}


# Every provider by the name tailor.toml and stored rows use.
PROVIDERS: dict[str, type[_Provider]] = {
    cls.name(): cls for cls in (OpenAIProvider, MlxServerProvider, ReferenceProvider, RulesProvider, StepsProvider)
}
# The offline judges by name: what their stored rows are labelled with.
OFFLINE_JUDGES: dict[str, str] = {
    name: cls.stand_in for name, cls in PROVIDERS.items() if cls.offline and "grade" in cls.can
}


def is_offline(name: str) -> bool:
    """Whether stored rows labelled with this provider name came from an offline stand-in."""
    cls = PROVIDERS.get(name)
    return cls is not None and cls.offline


JudgeConfig = Annotated[
    Union[RulesProvider, StepsProvider, OpenAIProvider, MlxServerProvider], Field(discriminator="provider")
]
TeacherConfig = Annotated[Union[ReferenceProvider, OpenAIProvider, MlxServerProvider], Field(discriminator="provider")]


class StudentConfig(_Section):
    model: str = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"
    adapter: str | None = None
    # keep-quantized: a GGUF student keeps its own quantization (see app/models.py)
    dtype: Literal["auto", "float32", "bfloat16", "float16", "keep-quantized"] = "auto"
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    max_batch: int = Field(16, ge=1)
    blas: str | None = Field(None, description="path of a BLAS library to preload on Linux")
    # enable_thinking for chat templates that have the switch (Qwen3): the same in diagnosis,
    # training and evaluation; "on" / "off" with a template that lacks it is an error.
    # model-default: mlx_lm's choice (on when the vocabulary has think tokens).
    thinking: Literal["model-default", "on", "off"] = "model-default"


def thinking_params(cfg) -> dict:
    """The attempt params that record the thinking switch: none at the model's default, so
    attempts from before the switch existed keep their keys."""
    t = cfg.student.thinking
    return {} if t == "model-default" else {"thinking": t}


class TeachersConfig(_Section):
    short: TeacherConfig = Field(default_factory=lambda: ReferenceProvider(provider="reference"))
    long: TeacherConfig = Field(default_factory=lambda: ReferenceProvider(provider="reference"))


STRATEGIES = ("adaptive", "random", "fixed", "all")  # how `tailor sample` draws (app/pipeline/sample.py)


class SamplingConfig(_Section):
    strategy: Literal[STRATEGIES] = "adaptive"
    k: int = Field(200, ge=1)
    seed: int = 0
    ratio: str = "6:3:1"

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: str) -> str:
        parts = v.split(":")
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            nums = []
        if len(nums) != 3 or any(n < 0 for n in nums) or sum(nums) <= 0:
            raise ValueError("must look like E:M:H, e.g. 6:3:1")
        return v


# Named hyperparameter sets; a key set in [train] (or with `tailor train --set`) wins.
# acotd: the ACoTD paper (LoRA r 32, alpha 32, dropout 0.1, lr 1e-5, batch 16, 5 epochs,
#   cosine with 3 % warmup, weight decay 0.01, packing, validation every 16 steps,
#   checkpoint every 64) plus tailor's early stopping (patience 5 evaluations; the best
#   adapter is kept).
# obryan: the O'Bryan study's protocol, i.e. `mlx_lm lora`'s defaults (r 8, scale 20, no
#   dropout, lr 1e-5 constant, batch 4, 16 layers) for a fixed number of iterations (200)
#   with the last adapter kept and no early stopping; validation every 50 steps so that a
#   `--find-stop` run sees the curve.
TRAIN_PROFILES: dict[str, dict] = {
    "acotd": dict(
        rank=32,
        alpha=32.0,
        dropout=0.1,
        learning_rate=1e-5,
        schedule="cosine",
        warmup=0.03,
        weight_decay=0.01,
        batch_size=16,
        grad_accumulation=1,
        epochs=5.0,
        iters=None,
        max_seq_length=None,
        steps_per_report=8,
        steps_per_eval=16,
        val_batches=-1,
        num_layers=-1,
        grad_checkpoint=False,
        save_every=64,
        keep_checkpoints=2,
        patience=5,
        min_delta=0.0,
        keep="best",
        seeds=[0],
        truncate=False,
        packing=True,
    ),
    "obryan": dict(
        rank=8,
        scale=20.0,
        dropout=0.0,
        learning_rate=1e-5,
        schedule="constant",
        warmup=0.0,
        weight_decay=0.0,
        batch_size=4,
        grad_accumulation=1,
        epochs=None,
        iters=200,
        max_seq_length=None,
        steps_per_report=10,
        steps_per_eval=50,
        val_batches=-1,
        num_layers=16,
        grad_checkpoint=False,
        save_every=100,
        keep_checkpoints=2,
        patience=0,
        min_delta=0.0,
        keep="last",
        seeds=[0, 1, 2, 3, 4],
        truncate=False,
        packing=False,
    ),
}


class TrainConfig(_Section):
    """[train]: a profile plus any key that overrides it (None = the profile's value)."""

    profile: Literal["acotd", "obryan"] = "acotd"
    rank: int | None = Field(None, ge=1, description="LoRA rank")
    alpha: float | None = Field(None, gt=0, description="LoRA alpha (PEFT convention): scale = alpha / rank")
    scale: float | None = Field(None, gt=0, description="mlx_lm's LoRA scale, instead of alpha")
    dropout: float | None = Field(None, ge=0, lt=1)
    learning_rate: float | None = Field(None, gt=0)
    schedule: Literal["cosine", "constant"] | None = None
    warmup: float | None = Field(None, ge=0, description="fraction of the updates (< 1) or a number of updates")
    weight_decay: float | None = Field(None, ge=0, description="AdamW weight decay (0 = Adam)")
    batch_size: int | None = Field(None, ge=1)
    grad_accumulation: int | None = Field(None, ge=1, description="micro-batches per optimizer update")
    iters: int | None = Field(None, ge=1, description="iterations (micro-batches); wins over epochs")
    epochs: float | None = Field(None, gt=0)
    # Unset in both profiles: fitted to the export (its longest example, capped by the model's context).
    max_seq_length: int | None = Field(None, ge=8)
    truncate: bool | None = Field(
        None, description="train on examples cut at max_seq_length rather than refuse when more than 1 % are longer"
    )
    packing: bool | None = Field(
        None, description="pack examples into max_seq_length rows, attention confined to each (acotd: on)"
    )
    steps_per_report: int | None = Field(None, ge=1)
    steps_per_eval: int | None = Field(None, ge=1)
    val_batches: int | None = Field(None, ge=-1, description="-1 = the whole validation set")
    num_layers: int | None = Field(None, ge=-1, description="LoRA on the last N layers; -1 = all")
    grad_checkpoint: bool | None = None
    save_every: int | None = Field(None, ge=1, description="checkpoint every N iterations")
    keep_checkpoints: int | None = Field(None, ge=0, description="newest checkpoints kept; 0 = all")
    patience: int | None = Field(None, ge=0, description="evaluations without improvement before stopping; 0 = off")
    min_delta: float | None = Field(None, ge=0, description="a smaller validation-loss drop is not an improvement")
    keep: Literal["best", "last"] | None = Field(None, description="the run's adapter: best validation loss or last")
    seeds: list[int] | None = None
    hostfile: str | None = Field(None, description="mlx.launch hostfile for data-parallel training")
    processes: int | None = Field(None, ge=1, description="mlx.launch -n: processes per host")
    backend: str | None = Field(None, description="mlx.launch --backend (ring, mpi, jaccl, nccl)")

    @field_validator("val_batches")
    @classmethod
    def _val_batches(cls, v: int | None) -> int | None:
        if v == 0:
            raise ValueError("must be -1 (all) or at least 1")
        return v

    def resolved(self) -> dict:
        """Every hyperparameter, from the profile overlaid with the keys set here.

        ``scale`` is resolved from alpha / rank unless a scale is given; ``iters`` set here
        drops the profile's ``epochs`` and vice versa.
        """
        mine = {k: v for k, v in self.model_dump(exclude={"profile"}).items() if v is not None}
        if "alpha" in mine and "scale" in mine:
            raise ConfigError("train.alpha and train.scale are alternatives: set one of them")
        out = {**TRAIN_PROFILES[self.profile], **mine}
        if "iters" in mine:
            out["epochs"] = None
        elif "epochs" in mine:
            out["iters"] = None
        if "scale" in mine or ("alpha" not in mine and "alpha" not in TRAIN_PROFILES[self.profile]):
            out.pop("alpha", None)
        else:
            out["scale"] = out.pop("alpha") / out["rank"]
        for k in ("hostfile", "processes", "backend"):
            out.setdefault(k, None)
        if out["save_every"] % out["grad_accumulation"]:
            raise ConfigError(
                f"train.save_every ({out['save_every']}) must be a multiple of "
                f"train.grad_accumulation ({out['grad_accumulation']})"
            )
        if not out["seeds"]:
            raise ConfigError("train.seeds: give at least one seed")
        out["profile"] = self.profile
        return out


class TierConfig(_Section):
    """A response-length tier: an instruction appended to the student's prompt and a token budget."""

    instruction: str = ""
    max_tokens: int | None = Field(None, ge=1, description="token budget; None = student.max_tokens")


# The O'Bryan study's six tiers ran from unrestricted (~220 words) down to ~30 words. The
# budgets leave room for about two tokens a word plus the boxed answer; a budget too small
# for an answer is not an error, the attempt is simply wrong (finish_reason "length").
DEFAULT_TIERS: dict[str, dict] = {
    "R1": {},
    "R2": {"instruction": "Keep your whole response under about 150 words.", "max_tokens": 400},
    "R3": {"instruction": "Keep your whole response under about 100 words.", "max_tokens": 280},
    "R4": {"instruction": "Keep your whole response under about 70 words.", "max_tokens": 200},
    "R5": {"instruction": "Keep your whole response under about 50 words.", "max_tokens": 140},
    "R6": {"instruction": "Keep your whole response under about 30 words.", "max_tokens": 90},
}


class EvalConfig(_Section):
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    # Sampling seeds. Unset (the default): every run is evaluated at its own training seed
    # and the base at every seed of the runs evaluated with it, so each comparison pairs
    # by seed (the base's sampling noise is as large as the effects tested). Set: an
    # override — the base at these seeds, a run at its own seed when listed, else the first.
    seeds: list[int] | None = Field(None, min_length=1)
    split: Literal["train", "valid", "test", "placement"] = "test"
    # Which evaluated CoTs the judge rates for CoT quality: the first tier only, all, or none.
    cot_quality: Literal["first", "all", "none"] = "first"
    # [eval.tiers.NAME] tables add tiers or change the defaults; the first tier is the main one.
    tiers: dict[str, TierConfig] = Field(default_factory=lambda: {k: TierConfig(**v) for k, v in DEFAULT_TIERS.items()})

    @field_validator("tiers", mode="before")
    @classmethod
    def _merge_tiers(cls, v):
        if not isinstance(v, dict):
            return v
        merged = {k: dict(d) for k, d in DEFAULT_TIERS.items()}
        for name, table in v.items():
            if isinstance(table, dict):
                merged[name] = {**merged.get(name, {}), **table}
            else:
                merged[name] = table
        return merged


class DmcConfig(_Section):
    """Data-model compatibility (app/dmc.py): tailor's form of the metric. The paper's
    fitted functional forms are not in our copy of it; every constant here is tailor's."""

    # Relative difficulty D: which likelihood score, as a percentile rank in the pool (0 easy, 1 hard).
    difficulty: Literal["ifd", "cppl", "ppl"] = "ifd"
    quality_power: float = Field(1.0, gt=0, description="f_low and f_high weight quality as q**quality_power")
    moderate: float = Field(0.5, ge=0, le=1, description="the difficulty percentile where f_high peaks")
    width: float = Field(0.2, gt=0, description="how wide f_high's peak is (a Gaussian's sd, in percentiles)")
    phi_slope: float = Field(10.0, gt=0, description="steepness of phi(c), the shift from f_low to f_high")
    phi_mid: float = Field(0.5, ge=0, le=1, description="the capability where phi(c) = 1/2")
    # Capability C = mean log-likelihood per token of the placement traces. Mapped to [0, 1]:
    # linearly between capability_bounds when set; else "likelihood": exp(C), the per-token
    # likelihood; "states": linearly between the lowest and highest C of the student states
    # measured in the store (undefined until two states differ).
    capability_bounds: tuple[float, float] | None = None
    capability_scale: Literal["likelihood", "states"] = "likelihood"
    placement_size: int = Field(100, ge=1)
    placement_top: float = Field(10.0, gt=0, le=100, description="percent of the pool, by quality, it is drawn from")
    seed: int = 0
    # The offline judges' quality stand-in: a trace's words must fall within these bounds.
    min_words: int = Field(10, ge=0)
    max_words: int = Field(2000, ge=1)

    @field_validator("capability_bounds")
    @classmethod
    def _bounds(cls, v):
        if v is not None and not v[0] < v[1]:
            raise ValueError("must be [low, high] with low < high (mean log-likelihoods per token, <= 0)")
        return v


class Config(_Section):
    student: StudentConfig = Field(default_factory=StudentConfig)
    judge: JudgeConfig = Field(default_factory=lambda: RulesProvider(provider="rules"))
    teachers: TeachersConfig = Field(default_factory=TeachersConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    dmc: DmcConfig = Field(default_factory=DmcConfig)

    def role(self, name: str):
        """The provider config for a role name: judge, teachers.short, teachers.long."""
        if name == "judge":
            return self.judge
        if name in ("teachers.short", "teachers.long"):
            return getattr(self.teachers, name.split(".")[1])
        raise ConfigError(f"unknown role {name!r} (expected judge, teachers.short or teachers.long)")

    def api_key(self, role: str) -> str | None:
        """The API key for a role, read only from the environment variable the config names."""
        prov = self.role(role)
        env = getattr(prov, "api_key_env", None)
        if not env:
            return None
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{CONFIG_NAME}: {role}.api_key_env: environment variable {env} is not set")
        return value


def _loc(loc: tuple) -> str:
    # Discriminated unions put the tag ("openai") into the location; users never wrote it.
    tags = set(PROVIDERS)
    return ".".join(str(p) for p in loc if p not in tags)


def validation_messages(err: ValidationError) -> list[tuple[str, str]]:
    """(dotted key, what is wrong with it) for every error, in the file's terms."""
    out = []
    for e in err.errors():
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown provider {e['input'].get('provider')!r} (expected {e['ctx']['expected_tags']})"
        elif e["type"] == "union_tag_not_found":
            msg = "missing provider = ..."
        else:
            msg = e["msg"].removeprefix("Value error, ")
            msg = f"{msg} (got {e['input']!r})"
        out.append((_loc(e["loc"]), msg))
    return out


def format_validation_error(path: Path | str, err: ValidationError) -> str:
    (key, msg), *rest = validation_messages(err)
    tail = f" (+{len(rest)} more; `tailor` shows each at its line in Settings)" if rest else ""
    return f"{path}: {key}: {msg}{tail}"


def key_line(toml_text: str, dotted: str) -> int | None:
    """The 1-based line where a dotted key (as an error names it) is set, else where its
    table starts, if found."""
    table, best = "", None
    for i, line in enumerate(toml_text.splitlines(), 1):
        s = line.strip()
        if m := re.match(r"^\[([^\[\]]+)\]", s):
            table = m.group(1).strip()
            if (dotted == table or dotted.startswith(table + ".")) and best is None:
                best = i
        elif m := re.match(r"^([A-Za-z0-9_\-]+)\s*=", s):
            if (f"{table}.{m.group(1)}" if table else m.group(1)) == dotted:
                return i
    return best


def config_problems(text: str) -> list[tuple[int | None, str]]:
    """Every problem with a tailor.toml's text, as (1-based line or None, message); [] if valid."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        return [(int(m.group(1)) if m else None, f"TOML syntax: {e}")]
    try:
        Config.model_validate(data)
    except ValidationError as e:
        return [(key_line(text, key), f"{key}: {msg}") for key, msg in validation_messages(e)]
    return []


def parse_config(text: str, path: Path | str = CONFIG_NAME) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e)) from None


def default_config_text() -> str:
    return (Path(__file__).parent / "tailor.default.toml").read_text(encoding="utf-8")


def load_config(project: Path) -> Config:
    path = Path(project) / CONFIG_NAME
    if not path.exists():
        raise ConfigError(f"{path}: not found (run `tailor init {project}` first)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8") from None
    return parse_config(text, path)
