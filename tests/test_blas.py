import pytest

from app import blas
from app.errors import ConfigError


def test_no_preload_off_linux():
    assert blas.find_blas(system="Darwin") is None


def test_env_override_and_disable(monkeypatch, tmp_path):
    lib = tmp_path / "libfake.so"
    lib.write_bytes(b"")
    monkeypatch.setenv(blas.ENV_OVERRIDE, str(lib))
    assert blas.find_blas(system="Linux") == str(lib)
    monkeypatch.setenv(blas.ENV_OVERRIDE, "none")
    assert blas.find_blas("/also/ignored", system="Linux") is None


def test_config_override_missing_path_names_the_key(monkeypatch):
    monkeypatch.delenv(blas.ENV_OVERRIDE, raising=False)
    with pytest.raises(ConfigError, match="student.blas: BLAS library /nope/libopenblas.so does not exist"):
        blas.find_blas("/nope/libopenblas.so", system="Linux")


def test_nothing_found(monkeypatch):
    monkeypatch.delenv(blas.ENV_OVERRIDE, raising=False)
    monkeypatch.setattr(blas, "_CANDIDATES", ())
    monkeypatch.setattr(blas.ctypes.util, "find_library", lambda name: None)
    assert blas.find_blas(system="Linux") is None


def test_child_env_preloads_only_when_found():
    env = blas.child_env("/lib/libopenblas.so.0", base={"LD_PRELOAD": "/x.so", "PATH": "/bin"})
    assert env["LD_PRELOAD"] == "/lib/libopenblas.so.0:/x.so"
    assert env[blas.FAST_BLAS_FLAG] == "1"
    env = blas.child_env(None, base={"PATH": "/bin", blas.FAST_BLAS_FLAG: "1"})
    assert "LD_PRELOAD" not in env and blas.FAST_BLAS_FLAG not in env


def test_hint_once(monkeypatch):
    monkeypatch.setattr(blas, "_hinted", False)
    monkeypatch.setattr(blas.platform, "system", lambda: "Linux")
    said = []
    blas.hint_once(None, said.append)
    blas.hint_once(None, said.append)
    assert said == [blas.INSTALL_HINT]
    monkeypatch.setattr(blas, "_hinted", False)
    blas.hint_once("/lib/libopenblas.so.0", said.append)
    assert len(said) == 1
