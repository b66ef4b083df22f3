"""Scoring: finite PPL / CPPL / IFD through the job, batching-invariant, and CPPL < PPL when the prompt helps."""

import math

import pytest

pytest.importorskip("mlx.core")

from mlx_fixtures import results, run_job, user

PAIRS = [
    ("What is 12 times 7?", "12 * 7 = 84. The answer is 84."),
    ("Solve for n: 3n + 7 = 22.", "Subtract 7 from both sides: 3n = 15, so n = 5."),
    ("Is 91 prime?", "No: 91 = 7 * 13."),
]


def score_items():
    return [{"id": f"p{i}", "messages": user(q), "response": a} for i, (q, a) in enumerate(PAIRS)]


def test_score_job_returns_finite_values(tmp_path, tiny_model_dir):
    items = score_items() + [{"id": "empty", "messages": user("Hi"), "response": ""}]
    job = {
        "kind": "score",
        "model": str(tiny_model_dir),
        "adapter": None,
        "dtype": "auto",
        "params": {"max_batch": 4},
        "items": items,
    }
    events, rc, stderr = run_job(tmp_path, job)
    assert rc == 0, stderr
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    res = results(events)
    assert "empty response" in res.pop("empty")["error"]
    assert set(res) == {"p0", "p1", "p2"}
    for r in res.values():
        values = [r[k] for k in ("cond_logprob", "uncond_logprob", "ppl", "cppl", "ifd")]
        assert all(math.isfinite(v) for v in values) and r["n_tokens"] > 0
        assert r["cond_logprob"] < 0 and r["uncond_logprob"] < 0
        assert r["ppl"] == pytest.approx(math.exp(-r["uncond_logprob"]))
        assert r["cppl"] == pytest.approx(math.exp(-r["cond_logprob"]))
        assert r["ifd"] == pytest.approx(r["cppl"] / r["ppl"])


def test_batched_scores_equal_one_by_one(tiny):
    from mlx_backend.score import score

    model, tokenizer, _ = tiny
    batched = {r["id"]: r for r in score(model, tokenizer, score_items(), max_batch=16)}
    single = {r["id"]: r for r in score(model, tokenizer, score_items(), max_batch=1)}
    for key, r in single.items():
        assert batched[key]["cond_logprob"] == pytest.approx(r["cond_logprob"], rel=1e-5)
        assert batched[key]["uncond_logprob"] == pytest.approx(r["uncond_logprob"], rel=1e-5)


def test_scores_agree_with_a_plain_forward_pass(tiny):
    """Token alignment: the conditional score is the mean log-prob of exactly the response tokens."""
    import mlx.core as mx

    from mlx_backend.model import chat_prompt
    from mlx_backend.score import score

    model, tokenizer, _ = tiny
    q, a = PAIRS[0]
    prompt, answer = chat_prompt(tokenizer, user(q)), tokenizer.encode(a, add_special_tokens=False)
    logits = model(mx.array([prompt + answer])).astype(mx.float32)[0]
    logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    expected = sum(logprobs[len(prompt) - 1 + i, t].item() for i, t in enumerate(answer)) / len(answer)
    (r,) = score(model, tokenizer, [{"id": "x", "messages": user(q), "response": a}])
    assert r["cond_logprob"] == pytest.approx(expected, rel=1e-4)
    assert r["n_tokens"] == len(answer)


def copying_model(tmp_path):
    """A hand-set one-layer "copy head" in the Qwen2 architecture.

    Queries are zero, so attention averages over the whole context; values and the
    output projection are the identity, so the mean of the context's (normalised)
    embeddings is added to the residual stream; the tied head then raises the logit of
    every token already in the context. The MLPs and layer 2 are switched off. Such a
    model can only profit from a prompt by copying from it: exactly the effect IFD is
    meant to measure, without a training run the CPU budget cannot afford.
    """
    import mlx.core as mx

    from mlx_backend.model import load_model
    from mlx_backend.tiny import build_tiny_model

    path = build_tiny_model(tmp_path / "copy", seed=0, num_kv_heads=4)  # no GQA: v_proj is square
    model, tokenizer, _ = load_model(str(path), dtype="float32")
    inner, h = model.model, model.args.hidden_size
    inner.embed_tokens.weight = inner.embed_tokens.weight * 10
    for i, layer in enumerate(inner.layers):
        attn = layer.self_attn
        attn.q_proj.weight = mx.zeros_like(attn.q_proj.weight)
        attn.q_proj.bias = mx.zeros_like(attn.q_proj.bias)
        attn.v_proj.weight = mx.eye(h) * (4.0 if i == 0 else 0.0)
        attn.v_proj.bias = mx.zeros_like(attn.v_proj.bias)
        attn.o_proj.weight = mx.eye(h)
        layer.mlp.down_proj.weight = mx.zeros_like(layer.mlp.down_proj.weight)
    mx.eval(model.parameters())
    return model, tokenizer


def test_cppl_below_ppl_when_the_prompt_contains_the_response(tmp_path):
    from mlx_backend.score import score

    model, tokenizer = copying_model(tmp_path)
    # Few shared tokens between the sentences, so the control prompt has little to copy.
    texts = ["Maria buys apples and pencils.", "Tom sells marbles, stamps, coins.", "Kenji finds tickets or books"]
    same = [{"id": f"same{i}", "messages": user("Repeat exactly: " + t), "response": t} for i, t in enumerate(texts)]
    # Control: the same form quoting another sentence. Averaging attention makes short
    # contexts peakier, so a long prompt alone can move this model's CPPL; the control
    # carries that effect too, and the verbatim prompt must beat it by far.
    other = [
        {"id": f"other{i}", "messages": user("Repeat exactly: " + texts[i - 1]), "response": t}
        for i, t in enumerate(texts)
    ]
    res = {r["id"]: r for r in score(model, tokenizer, same + other)}
    for i in range(len(texts)):
        s, o = res[f"same{i}"], res[f"other{i}"]
        assert s["cppl"] < s["ppl"] and s["ifd"] < 1
        assert s["ifd"] < 0.5 * o["ifd"]
        assert s["uncond_logprob"] == o["uncond_logprob"]  # same response, same unconditional score
