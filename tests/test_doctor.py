import platform
from types import SimpleNamespace

import pytest
from test_roofline import SMOL_CONFIG

from app.cli import main
from app.config import parse_config
from app.doctor import planned_dtype, run_doctor


def FAKE_PROBE(blas, shapes=None):
    return {"mlx_version": "0.0", "device": "cpu", "metal": False, "gflops_f32": 1.0}


def test_planned_dtype_policy():
    assert planned_dtype("auto", "cpu", True).startswith("float32")
    assert planned_dtype("auto", "cpu", False) == "model's own (auto)"
    assert planned_dtype("auto", "gpu", True) == "model's own (auto)"
    assert planned_dtype("bfloat16", "cpu", True) == "bfloat16"


def test_config_error_and_failed_ping_are_blocking(tmp_path):
    report = run_doctor(None, tmp_path, "tailor.toml: judge.base_url: required key is missing", probe=FAKE_PROBE)
    assert report.problems == ["tailor.toml: judge.base_url: required key is missing"]
    cfg = parse_config('[student]\nmodel = "nosuchmodel"\n')
    bad = SimpleNamespace(
        role="judge",
        provider="openai",
        model="m",
        ok=False,
        latency_s=None,
        detail="401 unauthorized: check DEEPSEEK_API_KEY",
    )
    report = run_doctor(cfg, tmp_path, ping=lambda c: [bad], probe=FAKE_PROBE)
    assert "judge: 401 unauthorized: check DEEPSEEK_API_KEY" in report.problems
    assert any("student.model: nosuchmodel" in p for p in report.problems)
    assert report.render().endswith("blocking problem(s)")


def test_doctor_on_this_machine(tmp_path, capsys):
    main(["init", str(tmp_path)])
    capsys.readouterr()
    rc = main(["doctor", "--project", str(tmp_path), "--no-ping"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "GFLOPS" in out and "MLX" in out
    if platform.system() == "Linux":
        assert out.splitlines()[2].startswith("BLAS")


def test_doctor_measures_at_the_students_shape_and_prints_its_roofline(tmp_path):
    import json

    student = tmp_path / "student"
    student.mkdir()
    (student / "config.json").write_text(json.dumps(SMOL_CONFIG))
    asked = []

    def probe(blas, shapes=None):
        asked.append(shapes)
        return {**FAKE_PROBE(blas), "bandwidth_gbs": 8.0, "shapes": [[*shapes[0], 64.6]]}

    cfg = parse_config('[student]\nmodel = "student"\ndtype = "float32"\n')
    report = run_doctor(cfg, tmp_path, probe=probe)
    assert asked == [[[512, 576, 1536]]]  # a prompt's rows through the student's MLP
    facts = dict(report.facts)
    # batch 1 at context 256: 8 GB/s over 537.9 MB of float32 weights + 11.8 MB of KV cache
    assert facts["roofline"].startswith("decode 15 / ")
    assert "4 bytes a weight" in facts["roofline"]
    assert report.limits.flops == pytest.approx(64.6e9) and report.limits.bandwidth == 8e9


def test_doctor_stores_what_it_measured(tmp_path, capsys):
    from app.config import DB_NAME
    from app.store import Store

    main(["init", str(tmp_path)])
    assert main(["doctor", "--project", str(tmp_path), "--no-ping"]) == 0
    with Store(tmp_path / DB_NAME) as store:
        row = store.machine_limits()
    assert row["gflops"] > 0 and row["bandwidth_gbs"] > 0 and row["device"] in ("cpu", "gpu")
