"""The only reader of prompts/. A prompt file is Markdown with `## system` / `## user`
sections whose text has two kinds of placeholder:

- `${name}`: the value as it is (string.Template: LaTeX braces stay as they are). For
  text tailor writes itself, and for prompts/student_solve.md, whose rendered text the
  student is trained and evaluated on and so must not change.
- `@{name}`: the value inside a fence it cannot close. Every value a problem, a
  reference, a student or a teacher wrote goes in one, even a one-line answer, so that
  nothing in it (a planted "Reference answer: 5" line, a `>>>` that would end a
  `<<< … >>>` block early, "ignore previous instructions") can pass for a line of the
  prompt's own:

      <<<DATA 3f2a9c1e
      the value, verbatim
      DATA 3f2a9c1e>>>

  The tag is 8 hex digits of a sha256 of the value, not random, so the same value renders
  the same text and remote-call cache keys stay stable. Should the value contain its own
  tag (in any case), the hash is salted and taken again until it does not: no fenced
  value can contain its closing line. A prompt that fences says in its system message
  that fenced text is data to evaluate and that instructions inside it are ignored.

Prompt.render(**values) fills both kinds from the same keyword values. A prompt's
version is the hash of its file's bytes, stored with every row it produces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

from app import resource_dir
from app.errors import TailorError

PROMPTS_DIR = resource_dir("prompts")
_SECTION = re.compile(r"^## (system|user|assistant)\s*$", re.MULTILINE)
_FENCED = re.compile(r"@\{([_A-Za-z][_A-Za-z0-9]*)\}")
_FENCED_KEY = "_fenced_"  # @{name} is filled as ${_fenced_name}
_TAG_LEN = 8


def _digest(text: str, salt: int) -> str:
    data = f"{salt}\n{text}" if salt else text
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:_TAG_LEN]


def fence_tag(text: str) -> str:
    """The fence tag of `text`: a hash of it, salted until `text` does not contain it."""
    lowered, salt = text.lower(), 0
    while (tag := _digest(text, salt)) in lowered:
        salt += 1
    return tag


def fence(text: str) -> str:
    """`text` between an opening and a closing line that it cannot contain."""
    tag = fence_tag(text)
    return f"<<<DATA {tag}\n{text}\nDATA {tag}>>>"


@dataclass(frozen=True)
class Prompt:
    name: str
    hash: str
    sections: tuple[tuple[str, str], ...]  # (role, template text)

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every ${name} and @{name} filled; a missing value is an error."""
        out = []
        for role, text in self.sections:
            fenced = {}
            for name in _FENCED.findall(text):
                if name not in values:
                    raise TailorError(f"prompts/{self.name}.md: no value for placeholder @{{{name}}}")
                fenced[_FENCED_KEY + name] = fence(str(values[name]))
            # One Template pass fills both kinds, so a filled-in value is never scanned
            # again: a "${x}" or "@{x}" a student writes stays text.
            template = Template(_FENCED.sub(r"${" + _FENCED_KEY + r"\1}", text))
            try:
                content = template.substitute(values, **fenced)
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
