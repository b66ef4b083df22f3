"""tailor.toml as pydantic models: load, validate, and name the key at fault on error.

No I/O happens at import; `load_config` reads the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import ConfigError

CONFIG_NAME = "tailor.toml"
DB_NAME = "tailor.db"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenAIProvider(_Section):
    """Any OpenAI-compatible chat-completions endpoint."""

    provider: Literal["openai"]
    base_url: str
    model: str
    # Local servers (Ollama, LM Studio, vLLM) often need no key, so it is optional.
    api_key_env: str | None = None
    concurrency: int = Field(8, ge=1, le=512)
    timeout: float = Field(120.0, gt=0)
    price_in: float | None = Field(None, ge=0, description="USD per million prompt tokens")
    price_out: float | None = Field(None, ge=0, description="USD per million completion tokens")
    max_tokens: int = Field(4096, ge=1)
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class MlxServerProvider(_Section):
    """A local model served by mlx_lm.server on a free loopback port."""

    provider: Literal["mlx-server"]
    model: str
    adapter: str | None = None
    concurrency: int = Field(8, ge=1, le=512)
    timeout: float = Field(600.0, gt=0)
    max_tokens: int = Field(2048, ge=1)
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)


class ReferenceProvider(_Section):
    """Teacher only: the problem's reference solution is the CoT."""

    provider: Literal["reference"]


class RulesProvider(_Section):
    """Judge only: grades from answer correctness alone."""

    provider: Literal["rules"]


JudgeConfig = Annotated[
    Union[RulesProvider, OpenAIProvider, MlxServerProvider], Field(discriminator="provider")
]
TeacherConfig = Annotated[
    Union[ReferenceProvider, OpenAIProvider, MlxServerProvider], Field(discriminator="provider")
]


class StudentConfig(_Section):
    model: str = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"
    adapter: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    max_batch: int = Field(16, ge=1)
    blas: str | None = Field(None, description="path of a BLAS library to preload on Linux")


class TeachersConfig(_Section):
    short: TeacherConfig = Field(default_factory=lambda: ReferenceProvider(provider="reference"))
    long: TeacherConfig = Field(default_factory=lambda: ReferenceProvider(provider="reference"))


class SamplingConfig(_Section):
    strategy: Literal["adaptive", "random", "fixed", "all"] = "adaptive"
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


class TrainConfig(_Section):
    profile: Literal["acotd", "obryan"] = "acotd"


class EvalConfig(_Section):
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    seeds: list[int] = Field(default_factory=lambda: [0])
    split: Literal["train", "valid", "test", "placement"] = "test"


class Config(_Section):
    student: StudentConfig = Field(default_factory=StudentConfig)
    judge: JudgeConfig = Field(default_factory=lambda: RulesProvider(provider="rules"))
    teachers: TeachersConfig = Field(default_factory=TeachersConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

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
    tags = {"openai", "mlx-server", "reference", "rules"}
    return ".".join(str(p) for p in loc if p not in tags)


def format_validation_error(path: Path | str, err: ValidationError) -> str:
    first = err.errors()[0]
    key = _loc(first["loc"])
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "required key is missing"
    elif first["type"] == "union_tag_invalid":
        msg = f"unknown provider {first['input'].get('provider')!r} (expected {first['ctx']['expected_tags']})"
    elif first["type"] == "union_tag_not_found":
        msg = "missing provider = ..."
    else:
        msg = first["msg"].removeprefix("Value error, ")
        msg = f"{msg} (got {first['input']!r})"
    more = len(err.errors()) - 1
    tail = f" (+{more} more)" if more else ""
    return f"{path}: {key}: {msg}{tail}"


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
