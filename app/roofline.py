"""The machine's limit for a model: how many tokens/s a decoder could reach at best.

Two measured limits bound every step (`tailor doctor` measures both): the matmul rate
(FLOP/s) and the memory bandwidth (bytes/s). For a decoder-only transformer of the
llama / qwen2 shape (grouped-query attention, a SwiGLU MLP) and a batch of B sequences
at context c:

- FLOPs per token (forward) = 2·(weights in the layers) + 2·d·V (the output projection)
  + 4·L·c·d (attention scores and the weighted sum, over the c tokens before it);
- bytes per decode step = every weight once (shared by the batch) + each sequence's KV
  cache: B·2·L·c·n_kv·head_dim values;
- decode tokens/s = B / max(bytes / bandwidth, B·FLOPs / rate): memory-bound at small
  batches, compute-bound at large ones;
- prefill and training are compute-bound: rate / FLOPs per token, training with LoRA at
  2x the forward (the backward pass to the inputs; frozen weights get no gradient).

Weights in float32 take 4 bytes, float16/bfloat16 2; a quantized weight bits/8 plus its
group's scale and bias (two values of `scale_bytes` per `group_size` weights).
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0}
LORA_TRAIN_FACTOR = 2.0  # forward + backward to the activations, per token


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int

    @classmethod
    def from_config(cls, c: dict) -> Shape:
        """From an mlx_lm / Hugging Face config.json."""
        heads = c["num_attention_heads"]
        return cls(
            layers=c["num_hidden_layers"],
            hidden=c["hidden_size"],
            intermediate=c["intermediate_size"],
            heads=heads,
            kv_heads=c.get("num_key_value_heads") or heads,
            vocab=c["vocab_size"],
        )

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def layer_weights(self) -> int:
        """Weights of the attention and MLP projections of all layers (norms are noise)."""
        d, kv = self.hidden, self.kv_heads * self.head_dim
        attention = 2 * d * d + 2 * d * kv  # q and o; k and v
        return self.layers * (attention + 3 * d * self.intermediate)

    @property
    def output_weights(self) -> int:
        return self.hidden * self.vocab


def weight_bytes(dtype: str, bits: int | None = None, group_size: int = 32, scale_bytes: float = 4.0) -> float:
    """Bytes per weight: a dense dtype, or quantized to `bits` with a scale and bias per group."""
    if bits is None:
        return DTYPE_BYTES[dtype]
    return bits / 8 + 2 * scale_bytes / group_size


def flops_per_token(s: Shape, context: int) -> float:
    return 2.0 * (s.layer_weights + s.output_weights) + 4.0 * s.layers * context * s.hidden


def decode_bytes(s: Shape, batch: int, context: int, per_weight: float, kv_bytes: float = 4.0) -> float:
    kv = batch * 2 * s.layers * context * s.kv_heads * s.head_dim * kv_bytes
    return (s.layer_weights + s.output_weights) * per_weight + kv


@dataclass(frozen=True)
class Limits:
    flops: float  # measured matmul rate, FLOP/s
    bandwidth: float  # measured memory bandwidth, bytes/s


def decode_tps(s: Shape, lim: Limits, batch: int, context: int, per_weight: float, kv_bytes: float = 4.0) -> float:
    """The best decode tokens/s (summed over the batch) these limits allow."""
    memory = decode_bytes(s, batch, context, per_weight, kv_bytes) / lim.bandwidth
    compute = batch * flops_per_token(s, context) / lim.flops
    return batch / max(memory, compute)


def prefill_tps(s: Shape, lim: Limits, prompt_tokens: int) -> float:
    """The best prompt tokens/s: compute-bound, attention at the prompt's mean context."""
    return lim.flops / flops_per_token(s, prompt_tokens // 2)


def train_tps(s: Shape, lim: Limits, seq_len: int) -> float:
    """The best LoRA training tokens/s."""
    return lim.flops / (LORA_TRAIN_FACTOR * flops_per_token(s, seq_len // 2))
