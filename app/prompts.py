"""The only reader of prompts/. A prompt file is Markdown with `## system` / `## user`
sections whose text uses ${name} placeholders (string.Template: LaTeX braces stay as
they are). A prompt's version is the hash of its file's bytes, stored with every row
it produces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

from app.errors import TailorError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
_SECTION = re.compile(r"^## (system|user|assistant)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Prompt:
    name: str
    hash: str
    sections: tuple[tuple[str, str], ...]  # (role, template text)

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every ${placeholder} filled; a missing value is an error."""
        out = []
        for role, text in self.sections:
            try:
                content = Template(text).substitute(values)
            except KeyError as e:
                raise TailorError(f"prompts/{self.name}.md: no value for placeholder ${{{e.args[0]}}}") from None
            out.append({"role": role, "content": content})
        return out


def parse_prompt(name: str, raw: bytes) -> Prompt:
    text = raw.decode("utf-8")
    parts = _SECTION.split(text)
    if len(parts) < 3 or parts[0].strip():
        raise TailorError(f"prompts/{name}.md: expected '## system' / '## user' sections")
    sections = tuple((parts[i], parts[i + 1].strip("\n")) for i in range(1, len(parts), 2))
    return Prompt(name=name, hash=hashlib.sha256(raw).hexdigest()[:12], sections=sections)


@lru_cache(maxsize=None)
def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    path = directory / f"{name}.md"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TailorError(f"{path}: prompt file not found") from None
    return parse_prompt(name, raw)
