"""Reading structured answers out of model replies (judges return JSON, often wrapped)."""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.S)
_MAX_BRACES = 50  # how many '{' of a prose reply are tried as the start of an object


def json_objects(text: str | None) -> list[dict]:
    """Non-empty JSON objects in a reply: the whole reply or a fenced block first, else
    every object that starts at one of the first '{' characters of the prose."""
    if not text or not text.strip():
        return []
    s = text.strip()
    for candidate in [m.group(1) for m in _FENCE.finditer(s)] + [s]:
        try:
            obj = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return [obj]
    found: list[dict] = []
    decoder = json.JSONDecoder()
    for m in list(re.finditer(r"\{", s))[:_MAX_BRACES]:
        try:
            obj, _ = decoder.raw_decode(s, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict) and obj:
            found.append(obj)
    return found


def json_object(text: str | None, prefer_key: str | None = None) -> dict | None:
    """The reply's object: the first one holding `prefer_key` if any, else the first."""
    found = json_objects(text)
    if prefer_key:
        for obj in found:
            if prefer_key in obj:
                return obj
    return found[0] if found else None


def integer_score(v, low: int, high: int) -> int:
    """A rating field: an integer from low to high (2, 2.0 and "2" count; 2.5 and true do not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"expected an integer {low}-{high}, got {v!r}")
    try:
        x = float(v)
    except ValueError:
        raise ValueError(f"expected an integer {low}-{high}, got {v!r}") from None
    if not x.is_integer() or not low <= x <= high:
        raise ValueError(f"expected an integer {low}-{high}, got {v!r}")
    return int(x)


def parse_reply(text: str | None, model, prefer_key: str):
    """A judge's JSON reply validated as a pydantic ``model``; ValueError with a one-line reason."""
    from pydantic import ValidationError

    obj = json_object(text or "", prefer_key=prefer_key)
    if obj is None:
        raise ValueError("reply is not a JSON object")
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None
