"""The OpenBLAS preload changes speed, not results; the bundled-BLAS path keeps working."""

import platform

import pytest

pytest.importorskip("mlx.core")


from app.blas import find_blas
from app.jobs import MlxJob


def _greedy(model, blas):
    spec = {
        "kind": "generate",
        "model": str(model),
        "adapter": None,
        "dtype": "float32",
        "params": {"temperature": 0.0, "top_p": 1.0, "max_batch": 4},
        "items": [
            {
                "id": str(i),
                "messages": [{"role": "user", "content": f"What is {i} plus {i + 3}?"}],
                "max_tokens": 24,
                "seed": i,
            }
            for i in range(6)
        ],
    }
    results, starts = {}, []

    def on_event(ev):
        if ev["event"] == "result":
            results[ev["id"]] = ev["text"]
        elif ev["event"] == "start":
            starts.append(ev)

    outcome = MlxJob(spec, blas=blas).run(on_event)
    assert outcome.status == "done", outcome.error
    assert starts[0]["dtype"] == "float32"
    return results


def test_bundled_blas_path_runs(tiny_model_dir):
    texts = _greedy(tiny_model_dir, None)
    assert len(texts) == 6 and all(isinstance(t, str) for t in texts.values())


@pytest.mark.skipif(platform.system() != "Linux" or not find_blas(), reason="needs a system OpenBLAS on Linux")
def test_greedy_generation_identical_with_and_without_preload(tiny_model_dir):
    assert _greedy(tiny_model_dir, find_blas()) == _greedy(tiny_model_dir, None)


@pytest.mark.skipif(platform.system() != "Linux" or not find_blas(), reason="needs a system OpenBLAS on Linux")
def test_auto_dtype_follows_the_preload(tiny_model_dir):
    def start_dtype(blas):
        spec = {
            "kind": "generate",
            "model": str(tiny_model_dir),
            "adapter": None,
            "dtype": "auto",
            "params": {"temperature": 0.0, "top_p": 1.0, "max_batch": 1},
            "items": [{"id": "a", "messages": [{"role": "user", "content": "1+1?"}], "max_tokens": 2, "seed": 0}],
        }
        seen = []
        MlxJob(spec, blas=blas).run(lambda ev: seen.append(ev) if ev["event"] == "start" else None)
        return seen[0]["dtype"]

    assert start_dtype(find_blas()) == "float32"  # fast BLAS: float32 is the fast CPU path
    assert start_dtype(None) == "bfloat16"  # the checkpoint's own dtype
