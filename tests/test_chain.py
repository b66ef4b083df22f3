"""The whole data pipeline on the tiny model: rules judge, reference teachers, CLI only."""

import json

import pytest

pytest.importorskip("mlx.core")


from app.cli import BUNDLED, main


def test_diagnose_grade_sample_teach_verify_export(project, tiny_model_dir, capsys):
    cfg = project / "tailor.toml"
    text = cfg.read_text().replace('model = "mlx-community/Qwen2.5-1.5B-Instruct-4bit"', f'model = "{tiny_model_dir}"')
    cfg.write_text(text.replace("max_tokens = 1024", "max_tokens = 8"))

    def run(*a):
        return main(["--project", str(project), *a])

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
    said = "".join(capsys.readouterr())
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

    # Lengths in the student's tokens: max_seq_length fitted to the longest example; the
    # 8-token generation budget cannot hold the trained responses, and export says so.
    tokens = manifest["tokens"]
    assert tokens["fitted"] and tokens["examples"] == 20
    assert tokens["max_seq_length"] == tokens["longest"] > tokens["longest_response"] > 8
    assert tokens["over_max_seq_length"] == 0 and tokens["over_generation_budget"] == 20
    assert f"max_seq_length {tokens['longest']} (fitted to the longest" in said
    assert "20 responses are longer than the student's generation budget" in said
    # ... and training uses that value (the profile leaves max_seq_length unset).
    assert (
        run(
            "train",
            "--dataset",
            "d1",
            "--iters",
            "2",
            "--set",
            "batch_size=2",
            "--set",
            "steps_per_eval=2",
            "--set",
            "steps_per_report=1",
            "--set",
            "save_every=2",
        )
        == 0
    )
    from app.store import Store

    (trained,) = Store(project / "tailor.db").runs()
    assert trained.config["params"]["max_seq_length"] is None
    assert trained.config["fitted"] == {"max_seq_length": tokens["longest"]}
