import platform
from types import SimpleNamespace

from app.cli import main
from app.config import parse_config
from app.doctor import planned_dtype, run_doctor


def FAKE_PROBE(blas):
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
