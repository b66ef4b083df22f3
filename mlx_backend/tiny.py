"""Build a tiny random-weight Qwen2-style model directory that ``mlx_lm.load`` accepts.

Used by the tests, the demo and the benchmarks: no download, a few seconds, and the
same seed always gives byte-identical files (weights come from numpy's PCG64, the
tokenizer is trained on a fixed built-in corpus, JSON is written with sorted keys).

    python -m mlx_backend.tiny OUT_DIR [--seed N] [--hidden-size 64] ...
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Qwen2's ChatML template (default system prompt included, as in Qwen2-Instruct).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Qwen2's pre-tokenizer: digits are split one by one, words keep a leading space.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_BASE_TEXT = """\
Let us solve the problem step by step. First, we read the question carefully.
The sum of two numbers is 15 and their difference is 3. Find the numbers.
Let x be the larger number and y the smaller one. Then x + y = 15 and x - y = 3.
Adding the equations gives 2x = 18, so x = 9 and y = 6. The answer is 9 and 6.
A rectangle has a length of 12 cm and a width of 5 cm. What is its area?
The area of a rectangle is length times width, so the area is 12 * 5 = 60 square cm.
If a train travels 240 kilometers in 3 hours, what is its average speed?
Average speed equals distance divided by time: 240 / 3 = 80 kilometers per hour.
Therefore, the final answer is 80. We check the result: 80 * 3 = 240, which is correct.
Compute the value of 7 squared minus 4 squared. We have 49 - 16 = 33.
The probability of rolling an even number on a fair die is 3/6 = 1/2.
Solve for n: 3n + 7 = 22. Subtract 7 from both sides to get 3n = 15, then n = 5.
A fraction is a ratio of two integers. The numerator is 3 and the denominator is 4.
The greatest common divisor of 18 and 24 is 6, and their least common multiple is 72.
Since the triangle is a right triangle, we use the Pythagorean theorem: a^2 + b^2 = c^2.
With a = 3 and b = 4 we find c = 5. Hence the hypotenuse has length 5.
Maria buys 4 apples at 2 dollars each and 3 pears at 1 dollar each. How much does she pay?
She pays 4 * 2 + 3 * 1 = 11 dollars. The answer is \\boxed{11}.
Every prime number greater than 2 is odd. The first few primes are 2, 3, 5, 7, 11 and 13.
We conclude that the equation has exactly two real solutions.
Note that the function f(x) = x^2 - 4x + 4 = (x - 2)^2 has its minimum at x = 2.
Repeat exactly the following text. Copy the sentence word for word.
"""

_NAMES = ["Maria", "Tom", "Aisha", "Kenji", "Lena", "Omar", "Sofia", "Ravi", "Chen", "Ana"]
_ITEMS = ["apples", "pencils", "books", "marbles", "cookies", "stamps", "coins", "tickets"]
_VERBS = ["buys", "sells", "finds", "gives away", "collects", "loses", "eats", "counts"]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ter",
    "zan",
    "qu",
    "ril",
    "so",
    "ven",
    "dra",
    "pol",
    "nex",
    "tu",
    "bar",
    "fi",
    "gom",
    "hel",
    "jas",
    "wex",
    "yor",
]


def _corpus(vocab_size: int) -> list[str]:
    """Fixed, seed-independent text; invented words let the BPE reach larger vocabularies."""
    rng = random.Random(1234)
    lines = _BASE_TEXT.splitlines()
    # Frequent enough that the ChatML role words and the default system prompt merge.
    lines += ["system", "You are a helpful assistant.", "user", "assistant"] * 40
    for _ in range(400):
        name, item, verb = rng.choice(_NAMES), rng.choice(_ITEMS), rng.choice(_VERBS)
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        lines.append(f"{name} has {a} {item} and {verb} {b} more. Now {name} has {a + b} {item}.")
        lines.append(f"What is {a} times {b}? The product is {a * b}. The answer is {a * b}.")
    # Made-up words (units, names) so that vocabularies of several thousand are reachable.
    n_words = max(0, vocab_size - 600)
    words = set()
    while len(words) < n_words:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    for w in sorted(words):
        lines.append(f"One {w} equals {rng.randint(2, 20)} units, so {w} counts twice.")
    return lines


def _train_tokenizer(vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        min_frequency=1,
    )
    tok.train_from_iterator(_corpus(vocab_size), trainer=trainer)
    # Special tokens go after the learned vocabulary, as in Qwen.
    tok.add_special_tokens(SPECIAL_TOKENS)
    return tok


def _weights(config: dict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    h, inter = config["hidden_size"], config["intermediate_size"]
    head_dim = h // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * head_dim

    def normal(*shape):
        return rng.normal(0.0, 0.02, size=shape).astype(np.float32)

    # Larger embeddings make the tied head echo the input token forever; HF's 0.02
    # gives near-uniform next-token distributions, so sampled text varies with the seed.
    w = {"model.embed_tokens.weight": normal(config["vocab_size"], h)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = normal(h, h)
        w[p + "self_attn.q_proj.bias"] = normal(h)
        w[p + "self_attn.k_proj.weight"] = normal(kv, h)
        w[p + "self_attn.k_proj.bias"] = normal(kv)
        w[p + "self_attn.v_proj.weight"] = normal(kv, h)
        w[p + "self_attn.v_proj.bias"] = normal(kv)
        w[p + "self_attn.o_proj.weight"] = normal(h, h)
        w[p + "mlp.gate_proj.weight"] = normal(inter, h)
        w[p + "mlp.up_proj.weight"] = normal(inter, h)
        w[p + "mlp.down_proj.weight"] = normal(h, inter)
        w[p + "input_layernorm.weight"] = np.ones(h, np.float32)
        w[p + "post_attention_layernorm.weight"] = np.ones(h, np.float32)
    w["model.norm.weight"] = np.ones(h, np.float32)
    return w


def _save_bf16(weights: dict[str, np.ndarray], path: Path) -> None:
    import mlx.core as mx

    arrays = {k: mx.array(weights[k]).astype(mx.bfloat16) for k in sorted(weights)}
    mx.save_safetensors(str(path), arrays, metadata={"format": "mlx"})


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def n_parameters(config: dict) -> int:
    h, inter, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = config["num_key_value_heads"] * (h // config["num_attention_heads"])
    per_layer = (h * h + h) + 2 * (kv * h + kv) + h * h + 3 * h * inter + 2 * h
    return v * h + config["num_hidden_layers"] * per_layer + h


def build_tiny_model(
    out_dir: str | os.PathLike,
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    vocab_size: int = 512,
    intermediate_size: int | None = None,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position_embeddings: int = 2048,
) -> Path:
    """Write config.json, model.safetensors (bf16) and tokenizer files to ``out_dir``.

    ``vocab_size`` is the size of the embedding and of the trained tokenizer
    (special tokens included); the corpus supports several thousand tokens.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tok = _train_tokenizer(vocab_size)
    # The trainer may stop short of the target on a small corpus; the model must not
    # be able to emit ids the tokenizer cannot decode.
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    tok.save(str(out / "tokenizer.json"))
    # Re-serialise with sorted keys so the file is byte-stable.
    _write_json(out / "tokenizer.json", json.loads((out / "tokenizer.json").read_text("utf-8")))

    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size or 4 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "vocab_size": vocab_size,
        "max_position_embeddings": max_position_embeddings,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "hidden_act": "silu",
        "tailor_tiny_seed": seed,
    }
    _write_json(out / "config.json", config)
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "chat_template": CHAT_TEMPLATE,
            "bos_token": None,
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "unk_token": None,
            "model_max_length": max_position_embeddings,
            "clean_up_tokenization_spaces": False,
            "added_tokens_decoder": {
                str(i): {
                    "content": t,
                    "special": True,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "single_word": False,
                }
                for t, i in ids.items()
            },
        },
    )
    _write_json(
        out / "special_tokens_map.json",
        {
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        },
    )
    _save_bf16(_weights(config, seed), out / "model.safetensors")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlx_backend.tiny", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--intermediate-size", type=int, default=None)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--num-kv-heads", type=int, default=2)
    p.add_argument("--max-position-embeddings", type=int, default=2048)
    a = p.parse_args(argv)
    out = build_tiny_model(
        a.out_dir,
        a.seed,
        hidden_size=a.hidden_size,
        num_layers=a.num_layers,
        vocab_size=a.vocab_size,
        intermediate_size=a.intermediate_size,
        num_heads=a.num_heads,
        num_kv_heads=a.num_kv_heads,
        max_position_embeddings=a.max_position_embeddings,
    )
    cfg = json.loads((out / "config.json").read_text())
    print(f"{out}  ({n_parameters(cfg) / 1e6:.2f}M parameters, vocab {cfg['vocab_size']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
