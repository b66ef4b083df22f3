"""The whole data pipeline on the tiny model: rules judge, reference teachers, CLI only."""

import json

import pytest

pytest.importorskip("mlx.core")


from app.cli import BUNDLED, main


def test_diagnose_grade_sample_teach_verify_export(project, tiny_model_dir, capsys):
    cfg = project / "tailor.toml"
    text = cfg.read_text().replace('model = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"', f'model = "{tiny_model_dir}"')
    cfg.write_text(text.replace("max_tokens = 1024", "max_tokens = 8"))
    run = lambda *a: main(["--project", str(project), *a])
    assert run("import", str(BUNDLED)) == 0
    assert run("diagnose", "--limit", "40") == 0
    assert run("grade") == 0
    out = capsys.readouterr().out
    assert "E:M:H = " in out
    assert run("sample", "--name", "d1", "--strategy", "adaptive", "--k", "20", "--seed", "1") == 0
    assert "dataset 'd1': 20 problems" in capsys.readouterr().out
    assert run("sample", "--name", "d1", "--k", "20") == 1  # names are never overwritten
    assert "already exists" in capsys.readouterr().err
    assert run("teach", "--dataset", "d1") == 0
    assert run("verify", "--dataset", "d1") == 0
    assert run("export", "--dataset", "d1") == 0
    out_dir = project / "runs" / "datasets" / "d1"
    manifest = json.loads((out_dir / "manifest.json").read_text())
    train = (out_dir / "train.jsonl").read_text().splitlines()
    valid = (out_dir / "valid.jsonl").read_text().splitlines()
    # Reference traces are right by construction, so every item is exported.
    assert len(train) + len(valid) == 20 and valid
    ex = json.loads(train[0])["messages"]
    assert [m["role"] for m in ex] == ["system", "user", "assistant"]
    assert ex[-1]["content"].splitlines()[-1].startswith("The answer is \\boxed{")
    assert manifest["dataset"] == "d1" and manifest["counts"]["examples"] == 20
    assert manifest["counts"]["train"]["problems"] + manifest["counts"]["valid"]["problems"] == 20
