import pytest

from app.config import ConfigError, default_config_text, load_config, parse_config


def test_default_config_parses_and_has_every_section():
    cfg = parse_config(default_config_text())
    assert cfg.judge.provider == "rules"
    assert cfg.teachers.short.provider == "reference"
    assert cfg.teachers.long.provider == "reference"
    assert cfg.sampling.strategy == "adaptive"
    assert cfg.student.dtype == "auto"


def test_openai_provider_roundtrip():
    cfg = parse_config(
        '[judge]\nprovider = "openai"\nbase_url = "https://example.test/v1/"\n'
        'model = "m"\napi_key_env = "X_KEY"\nconcurrency = 4\n'
    )
    assert cfg.judge.base_url == "https://example.test/v1"
    assert cfg.judge.concurrency == 4


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[student]\nfoo = 1\n", "tailor.toml: student.foo: unknown key"),
        ("[student]\nmax_batch = 'a'\n", "tailor.toml: student.max_batch:"),
        ("[judge]\nprovider = 'openai'\nmodel = 'm'\n", "tailor.toml: judge.base_url: required key is missing"),
        ("[judge]\nprovider = 'reference'\n", "tailor.toml: judge: unknown provider 'reference'"),
        ("[teachers.long]\nprovider = 'rules'\n", "tailor.toml: teachers.long: unknown provider 'rules'"),
        ("[sampling]\nratio = '1:2'\n", "tailor.toml: sampling.ratio: must look like E:M:H"),
        ("[student]\ndtype = 'int3'\n", "tailor.toml: student.dtype:"),
        ("[bogus]\n", "tailor.toml: bogus: unknown key"),
        ("[student\n", "tailor.toml: "),
    ],
)
def test_config_errors_name_the_key(text, expected):
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    msg = str(e.value)
    assert msg.startswith(expected)
    assert "\n" not in msg


def test_api_key_only_from_named_env_var(monkeypatch):
    cfg = parse_config(
        '[judge]\nprovider = "openai"\nbase_url = "http://x"\nmodel = "m"\napi_key_env = "TAILOR_TEST_KEY"\n'
    )
    monkeypatch.delenv("TAILOR_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="judge.api_key_env: environment variable TAILOR_TEST_KEY is not set"):
        cfg.api_key("judge")
    monkeypatch.setenv("TAILOR_TEST_KEY", "sk-secret")
    assert cfg.api_key("judge") == "sk-secret"
    assert cfg.api_key("teachers.short") is None  # reference teacher needs no key


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="tailor.toml: not found"):
        load_config(tmp_path)
