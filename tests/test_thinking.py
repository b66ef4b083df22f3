"""[student] thinking reaches the chat template (enable_thinking) in generation and training,
and asking for it on a template without the switch is an error, not a silent no-op."""

import json
import shutil

import pytest

from app.config import parse_config, thinking_params

pytest.importorskip("mlx.core")

# Qwen3's switch, reduced: with thinking off, an empty think block opens the assistant turn,
# in the generation prompt and in a rendered assistant message alike.
_OFF = "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
QWEN3_LIKE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}" + _OFF + "{% endif %}"
    "{{ message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" + _OFF + "{% endif %}"
)
MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def switch_model(tiny_model_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("qwen3like") / "model"
    shutil.copytree(tiny_model_dir, d)
    cfg_path = d / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = QWEN3_LIKE
    cfg_path.write_text(json.dumps(cfg))
    return d


def rendered(model_dir, thinking):
    from mlx_backend.model import chat_prompt, load_model

    _, tok, _ = load_model(str(model_dir), None, "float32", thinking)
    return tok.decode(chat_prompt(tok, MESSAGES)), tok


def test_off_and_on_reach_the_template_the_same_way_in_generation_and_training(switch_model):
    off, tok_off = rendered(switch_model, "off")
    on, _ = rendered(switch_model, "on")
    default, _ = rendered(switch_model, "model-default")
    assert off.endswith("<think>\n\n</think>\n\n") and not on.endswith("</think>\n\n")
    # mlx_lm's own default: thinking on only when the vocabulary has think tokens (this one has not).
    assert default == off
    # Training tokenises through mlx_lm's ChatDataset with the same tokenizer object: same switch.
    from mlx_lm.tuner.datasets import ChatDataset

    tokens, offset = ChatDataset(
        [{"messages": MESSAGES + [{"role": "assistant", "content": "4"}]}], tok_off, mask_prompt=True
    ).process({"messages": MESSAGES + [{"role": "assistant", "content": "4"}]})
    # The loss starts right after the empty think block, exactly where generation starts.
    assert tok_off.decode(tokens[:offset]) == off
    assert tok_off.decode(tokens[offset:]).startswith("4")


def test_a_template_without_the_switch_is_an_error_only_when_asked(tiny_model_dir):
    from mlx_backend.model import ModelLoadError

    rendered(tiny_model_dir, "model-default")
    with pytest.raises(ModelLoadError, match="no enable_thinking switch"):
        rendered(tiny_model_dir, "off")


def test_the_switch_is_recorded_with_attempts_only_when_set():
    assert thinking_params(parse_config("")) == {}
    assert thinking_params(parse_config('[student]\nthinking = "off"\n')) == {"thinking": "off"}
