import json
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

    def probe(blas, shapes=None, student=None):
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


@pytest.mark.parametrize(
    ("decode", "share", "advice"),
    [
        ({"tps": 10.0, "dtype": "float32", "quantized": False, "quantized_path": None}, "68 %", None),
        ({"tps": 0.6, "dtype": "float32", "quantized": True, "quantized_path": "float32 scales"}, "%", "quantized"),
        ({"tps": 1.0, "dtype": "bfloat16", "quantized": False, "quantized_path": None}, "%", "bfloat16 never"),
    ],
)
def test_doctor_times_the_students_decode_against_its_roofline(tmp_path, decode, share, advice):
    student = tmp_path / "student"
    student.mkdir()
    config = dict(SMOL_CONFIG, quantization={"bits": 4, "group_size": 32}) if decode["quantized"] else SMOL_CONFIG
    (student / "config.json").write_text(json.dumps(config))
    loaded = []

    def probe(blas, shapes=None, student=None):
        loaded.append(student)
        return {**FAKE_PROBE(blas), "bandwidth_gbs": 8.0, "shapes": [[*shapes[0], 64.6]], "decode": decode}

    cfg = parse_config('[student]\nmodel = "student"\ndtype = "auto"\n')
    report = run_doctor(cfg, tmp_path, probe=probe)
    assert loaded == [{"model": str(tmp_path / "student"), "dtype": "auto"}]  # loaded as a job loads it
    fact = dict(report.facts)["decode"]
    # float32 at context 64: 8 GB/s over 537.9 MB of weights + 3 MB of KV cache = 14.8 tok/s
    assert fact.startswith(f"{decode['tps']:.1f} tok/s at batch 1, ") and share in fact
    far = [a for a in report.advice if "of this machine's limit" in a]
    assert (not far) if advice is None else (advice in far[0])
    assert not report.problems  # advice, never blocking
