"""One provider interface: what a judge or teacher can do is asked of it, not read off its name."""

import re

import pytest

from app import REPO_ROOT
from app.config import OFFLINE_JUDGES, PROVIDERS, _RemoteModel, is_offline

NAME_TEST = re.compile(r"""provider\s*(==|!=|in)\s*\(?\s*["'](%s)["']""" % "|".join(map(re.escape, PROVIDERS)))


def test_no_module_compares_provider_names():
    hits = [
        f"{path.relative_to(REPO_ROOT)}:{i}: {line.strip()}"
        for path in sorted((REPO_ROOT / "app").rglob("*.py"))
        for i, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if NAME_TEST.search(line)
    ]
    assert not hits, "ask the provider (offline, can, connect, ...) instead:\n" + "\n".join(hits)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_provider_does_what_it_says(name):
    cls = PROVIDERS[name]
    assert cls.name() == name and cls.can
    if cls.offline:
        assert cls.stand_in and "rate" not in cls.can  # a stand-in does not read reasoning
        if "grade" in cls.can:
            assert callable(getattr(cls, "offline_grade", None))
        if "teach" in cls.can:
            assert callable(getattr(cls, "offline_teach", None))
    else:
        assert {"grade", "teach", "rate"} <= cls.can
        assert cls.endpoint_id is not _RemoteModel.endpoint_id  # each says what makes it one endpoint


def test_offline_judges_and_names():
    assert set(OFFLINE_JUDGES) == {"rules", "steps"}
    assert is_offline("reference") and not is_offline("openai") and not is_offline("manual")
