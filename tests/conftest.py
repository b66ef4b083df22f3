import pytest

from app.cli import main
from app.config import DB_NAME
from app.store import Store

# The MLX fixtures (tiny model built once per session) for every test module.
pytest_plugins = ["mlx_fixtures"]


@pytest.fixture
def project(tmp_path):
    """An initialised, empty project directory."""
    d = tmp_path / "proj"
    assert main(["init", str(d)]) == 0
    return d


@pytest.fixture
def store(project):
    with Store(project / DB_NAME) as s:
        yield s
