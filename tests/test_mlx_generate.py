"""Generation jobs through the child process: events, seeds, limits, cancellation."""

import json
import signal
import subprocess

import pytest

pytest.importorskip("mlx.core")

from mlx_fixtures import REPO, job_command, job_env, results, run_job, user, write_job

QUESTIONS = [
    "What is 12 times 7?",
    "Maria has 12 apples and buys 3 more. How many apples does she have now?",
    "Solve for n: 3n + 7 = 22.",
    "Is 91 a prime number?",
]


def gen_job(model_dir, items, **params):
    return {
        "kind": "generate",
        "model": str(model_dir),
        "adapter": None,
        "dtype": "auto",
        "params": {"temperature": 1.0, "top_p": 0.95, **params},
        "items": items,
    }


def item(i, seed, max_tokens=24, question=None):
    return {
        "id": f"q{i}",
        "messages": user(question or QUESTIONS[i % len(QUESTIONS)]),
        "max_tokens": max_tokens,
        "seed": seed,
    }


def test_generate_job_end_to_end(tmp_path, tiny_model_dir):
    items = [item(0, 1, max_tokens=1), item(1, 2, max_tokens=20), item(2, 3, max_tokens=9)]
    events, rc, stderr = run_job(tmp_path, gen_job(tiny_model_dir, items, max_batch=2))
    assert rc == 0, stderr
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds[1:-1] == ["result", "progress"] * 3
    start = events[0]
    assert (start["kind"], start["total"], start["dtype"], start["device"]) == ("generate", 3, "bfloat16", "cpu")
    res = results(events)
    assert set(res) == {"q0", "q1", "q2"}
    for it in items:
        r = res[it["id"]]
        assert r["finish_reason"] in ("stop", "length")
        assert 0 <= r["n_tokens"] <= it["max_tokens"] and r["prompt_tokens"] > 0
        assert isinstance(r["text"], str) and r["seed"] == it["seed"]
    assert res["q0"]["finish_reason"] == "length" or res["q0"]["n_tokens"] == 0
    assert [e["done"] for e in events if e["event"] == "progress"] == [1, 2, 3]
    stats = events[-1]["stats"]
    assert stats["generated_tokens"] == sum(r["n_tokens"] for r in res.values())
    assert stats["tokens_per_s"] > 0 and stats["seconds"] > 0 and stats["peak_memory_gb"] > 0


def test_same_seed_same_text_whatever_shares_the_batch(tmp_path, tiny_model_dir):
    a = [item(0, 11, 30), item(1, 12, 30), item(2, 13, 30)]
    b = [item(3, 5, 40), item(0, 11, 30), item(2, 99, 30), item(1, 7, 12)]
    ev_a, rc_a, _ = run_job(tmp_path, gen_job(tiny_model_dir, a, max_batch=16))
    ev_b, rc_b, _ = run_job(tmp_path, gen_job(tiny_model_dir, b, max_batch=2))
    assert rc_a == rc_b == 0
    ra, rb = results(ev_a), results(ev_b)
    assert ra["q0"]["text"] == rb["q0"]["text"]  # same prompt and seed, other companions
    assert ra["q2"]["text"] != rb["q2"]["text"]  # same prompt, another seed


def test_batch_composition_does_not_change_logits(tiny):
    """The exact reason texts match on this backend: rows are bit-identical alone or batched."""
    import mlx.core as mx
    from mlx_lm.generate import BatchGenerator

    from mlx_backend.model import chat_prompt

    model, tokenizer, _ = tiny
    prompts = [chat_prompt(tokenizer, user(q)) for q in QUESTIONS]

    def logprobs(batch):
        gen = BatchGenerator(model, completion_batch_size=8, prefill_batch_size=8)
        uids = gen.insert(batch, [6] * len(batch))
        rows = {u: [] for u in uids}
        while responses := gen.next_generated():
            for r in responses:
                rows[r.uid].append(r.logprobs)
        gen.close()
        return [mx.stack(rows[u]) for u in uids]

    alone = logprobs([prompts[1]])[0]
    batched = logprobs(prompts)[1]
    assert mx.array_equal(alone, batched).item()


def test_eos_gives_stop_and_max_tokens_gives_length(tiny):
    import mlx.core as mx

    from mlx_backend.generate import generate

    model, tokenizer, _ = tiny
    eos = tokenizer.eos_token_ids
    bias = mx.zeros((model.args.vocab_size,)).at[mx.array(list(eos))].add(100.0)

    class AlwaysEos:
        """The tiny model with EOS made certain, to exercise the stop path."""

        def __getattr__(self, name):
            return getattr(model, name)

        def __call__(self, inputs, cache=None, **kw):
            return model(inputs, cache=cache, **kw) + bias

    out = list(generate(AlwaysEos(), tokenizer, [item(0, 1, 5)]))
    assert (out[0]["finish_reason"], out[0]["n_tokens"], out[0]["text"]) == ("stop", 0, "")
    out = list(generate(model, tokenizer, [item(0, 1, 3)], temperature=0.0))
    assert (out[0]["finish_reason"], out[0]["n_tokens"]) == ("length", 3)


def test_prompt_longer_than_context_is_an_error_result(tmp_path, tiny_model_dir):
    long = "1 " * 1100  # > 2048 tokens: the tiny model's max_position_embeddings
    items = [item(0, 1, 8), item(1, 2, 8, question=long), item(2, 3, 8)]
    events, rc, _ = run_job(tmp_path, gen_job(tiny_model_dir, items))
    assert rc == 0
    res = results(events)
    assert "context" in res["q1"]["error"] and res["q1"]["prompt_tokens"] > 2048
    assert "text" in res["q0"] and "text" in res["q2"]
    assert events[-1]["event"] == "done"


def test_max_prompt_tokens_limits_prompts(tiny):
    from mlx_backend.generate import generate

    model, tokenizer, _ = tiny
    out = {r["id"]: r for r in generate(model, tokenizer, [item(0, 1, 4), item(1, 1, 4)], max_prompt_tokens=30)}
    assert "max_prompt_tokens" in out["q1"]["error"]
    assert out["q0"]["n_tokens"] == 4


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_job_cancels_and_keeps_emitted_results(tmp_path, tiny_model_dir, signum):
    items = [item(0, 0, max_tokens=1)] + [item(i, i, max_tokens=1800) for i in range(1, 8)]
    path = write_job(tmp_path, gen_job(tiny_model_dir, items, max_batch=8))
    proc = subprocess.Popen(
        job_command(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=job_env()
    )
    try:
        seen = []
        for line in proc.stdout:
            seen.append(json.loads(line))
            if seen[-1]["event"] == "result":
                break
        proc.send_signal(signum)
        rest, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    events = seen + [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 130, stderr
    assert events[-1]["event"] == "cancelled"
    emitted = [e for e in events if e["event"] == "result"]
    assert events[-1]["done"] == len(emitted) < len(items)
    assert emitted[0] == seen[-1] and "text" in emitted[0]
    assert "Traceback" not in stderr


def test_bad_model_path_is_an_error_event(tmp_path):
    events, rc, stderr = run_job(tmp_path, gen_job(tmp_path / "no-such-model", [item(0, 1)]))
    assert rc == 2
    assert events == [{"event": "error", "message": f"model path does not exist: {tmp_path / 'no-such-model'}"}]
    assert "Traceback" not in stderr


def test_bad_job_file_is_an_error_event(tmp_path):
    path = tmp_path / "job.json"
    path.write_text('{"kind": "generate", "model": ', encoding="utf-8")
    proc = subprocess.run(job_command(path), capture_output=True, text=True, cwd=REPO, env=job_env())
    assert proc.returncode == 2
    (event,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert event["event"] == "error" and "not valid JSON" in event["message"]


def test_shared_prefix_is_the_common_start_leaving_each_prompt_a_token():
    from mlx_backend.generate import MIN_SHARED_PREFIX, shared_prefix

    head = list(range(40))
    assert shared_prefix([head + [1, 2], head + [3], head + [1, 5, 6]]) == 40
    assert shared_prefix([head, head + [7]]) == 39  # the shorter keeps its last token to prefill
    assert shared_prefix([head + [1]]) == 0  # one prompt: nothing to share
    short = list(range(MIN_SHARED_PREFIX - 1))
    assert shared_prefix([short + [1], short + [2]]) == 0  # too short to pay for the copies
    assert shared_prefix([[9] + head, head]) == 0


def test_sharing_the_prompt_prefix_changes_no_text(tiny):
    """The instructions every diagnose prompt starts with are prefilled once; on this BLAS
    the texts are then exactly those of prefilling each prompt whole."""
    from app.prompts import load_prompt
    from mlx_backend.generate import generate

    model, tokenizer, _ = tiny
    prompt = load_prompt("student_solve")
    items = [
        {"id": f"q{i}", "messages": prompt.render(question=q), "max_tokens": 12, "seed": i}
        for i, q in enumerate(QUESTIONS)
    ]
    runs = {}
    for share in (True, False):
        stats: dict = {}
        out = generate(
            model, tokenizer, items, temperature=1.0, top_p=0.95, max_batch=4, stats=stats, share_prefix=share
        )
        runs[share] = ({r["id"]: r["text"] for r in out}, stats)
    (shared_texts, shared_stats), (whole_texts, whole_stats) = runs[True], runs[False]
    assert shared_texts == whole_texts
    assert shared_stats["shared_prefix_tokens"] >= 16 and whole_stats["shared_prefix_tokens"] == 0
    # the prefix was prefilled once, not once per prompt
    assert shared_stats["prompt_tokens"] == whole_stats["prompt_tokens"] - 4 * shared_stats["shared_prefix_tokens"]
