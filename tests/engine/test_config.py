"""config.json -> ModelArgs: the real values, derived fields, and clear errors."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import pytest

from engine import ModelArgs, ModelLoadError
from engine.config import FULL, INT_LIMITS, MAX_CONFIG_BYTES, SLIDING, read_json_file
from engine.testing.synthetic import GPT_OSS_20B, GPT_OSS_120B, tiny_config


def test_20b_and_120b() -> None:
    a = ModelArgs.from_dict(GPT_OSS_20B)
    assert (a.num_hidden_layers, a.num_local_experts, a.num_experts_per_tok) == (24, 32, 4)
    assert (a.num_attention_heads, a.num_key_value_heads, a.head_dim) == (64, 8, 64)
    assert a.layer_types[:2] == (SLIDING, FULL) and len(a.layer_types) == 24
    assert a.rope_scaling is not None and a.rope_scaling.factor == 32.0
    assert a.rope_scaling.truncate is False
    assert a.swiglu_limit == 7.0 and a.sliding_window == 128
    b = ModelArgs.from_dict(GPT_OSS_120B)
    assert (b.num_hidden_layers, b.num_local_experts) == (36, 128)
    assert a == ModelArgs()  # the dataclass defaults are gpt-oss-20b


def test_layer_types_are_derived_when_absent() -> None:
    cfg = tiny_config(num_hidden_layers=3)
    del cfg["layer_types"]
    assert ModelArgs.from_dict(cfg).layer_types == (SLIDING, FULL, SLIDING)


def test_unknown_keys_are_ignored() -> None:
    assert ModelArgs.from_dict(tiny_config(some_future_key=1)).hidden_size == 64


def test_other_model_type() -> None:
    with pytest.raises(ModelLoadError, match="'llama' model; OSS Desk runs gpt-oss models only"):
        ModelArgs.from_dict(tiny_config(model_type="llama"))


@pytest.mark.parametrize("field", ["hidden_size", "rope_scaling", "swiglu_limit", "sliding_window"])
def test_missing_field(field: str) -> None:
    cfg = tiny_config()
    del cfg[field]
    with pytest.raises(ModelLoadError, match=f"lacks required fields: {field}"):
        ModelArgs.from_dict(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": 80}, "multiple of the MXFP4 block size"),
        ({"num_key_value_heads": 3}, "multiple of num_key_value_heads"),
        ({"layer_types": ["sliding_attention"]}, "layer_types has 1 entries for 4 layers"),
        ({"quantization_config": None}, "does not describe MXFP4 experts"),
        ({"tie_word_embeddings": True}, "tied embeddings"),
        ({"num_experts_per_tok": 9, "experts_per_token": 9}, "num_experts_per_tok must be"),
    ],
)
def test_inconsistent_config(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        ModelArgs.from_dict(tiny_config(**overrides))


def test_unreadable_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match=r"config\.json is not valid JSON \(line 1\)"):
        ModelArgs.from_model_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ModelLoadError, match="does not hold a JSON object"):
        ModelArgs.from_model_dir(tmp_path)


# -- hostile values: every one refused by name and value, before anything is derived ------------


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("num_hidden_layers", 1e9, "1000000000.0"),
        ("num_hidden_layers", 0, "0"),
        ("num_hidden_layers", True, "true"),
        ("num_hidden_layers", "4", "'4'"),
        ("num_local_experts", -8, "-8"),
        ("vocab_size", 10**40, "1" + "0" * 40),
        ("hidden_size", 2**20, "1048576"),
        ("intermediate_size", None, "null"),
        ("head_dim", 4096, "4096"),
        ("num_attention_heads", 0, "0"),
        ("num_key_value_heads", 0, "0"),
        ("sliding_window", -1, "-1"),
        ("max_position_embeddings", 2**40, "1099511627776"),
    ],
)
def test_whole_numbers_out_of_range_are_named(key: str, value: object, shown: str) -> None:
    cfg = tiny_config(layer_types=[], **{key: value})  # []: derived from the layer count
    with pytest.raises(
        ModelLoadError, match=rf"{key} is {re.escape(shown)}, but it must be a whole"
    ):
        ModelArgs.from_dict(cfg)


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("rope_theta", math.inf, "Infinity"),
        ("rope_theta", math.nan, "NaN"),
        ("rope_theta", 1.0, "1.0"),  # log(theta) = 0 divides RoPE's correction range
        ("swiglu_limit", -7.0, "-7.0"),
        ("swiglu_limit", "7", "'7'"),
        ("rms_norm_eps", 0, "0"),
    ],
)
def test_reals_that_are_not_finite_and_positive_are_named(
    key: str, value: object, shown: str
) -> None:
    with pytest.raises(ModelLoadError, match=rf"{key} is {re.escape(shown)}, but it must be above"):
        ModelArgs.from_dict(tiny_config(**{key: value}))


@pytest.mark.parametrize(
    ("scaling", "message"),
    [
        ("yarn", "rope_scaling is 'yarn', but it must be an object"),
        ([32.0], "rope_scaling is a list, but it must be an object"),
        ({"rope_type": "yarn", "factor": -1.0}, "factor is -1.0"),
        ({"rope_type": "yarn", "factor": 1e300}, r"factor is 1e\+300"),
        ({"rope_type": "yarn", "beta_fast": 1.0, "beta_slow": 1.0}, "beta_fast must be larger"),
        ({"rope_type": "yarn", "truncate": "no"}, "truncate is 'no', not true or false"),
        (
            {"rope_type": "yarn", "factor": 1000.0, "original_max_position_embeddings": 2**20},
            "rope_scaling covers 1,048,576,000 positions",
        ),
    ],
)
def test_a_wrong_rope_scaling_is_a_clear_error(scaling: object, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        ModelArgs.from_dict(tiny_config(rope_scaling=scaling))


def test_zero_experts_per_token_is_named_not_a_key_error() -> None:
    cfg = tiny_config(num_experts_per_tok=0)
    del cfg["experts_per_token"]  # a falsy 0 once made the loader look for this key instead
    with pytest.raises(ModelLoadError, match="num_experts_per_tok is 0"):
        ModelArgs.from_dict(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"layer_types": "sliding_attention"}, "layer_types is 'sliding_attention', not a list"),
        ({"layer_types": [1, 2, 3, 4]}, "layer_types is a list, not a list of layer names"),
        ({"eos_token_id": {"id": 1}}, "eos_token_id is an object"),
        ({"eos_token_id": [-1]}, "eos_token_id is a list"),
        ({"eos_token_id": list(range(100))}, "eos_token_id is a list"),
        ({"quantization_config": "mxfp4"}, "does not describe MXFP4 experts"),
        ({"model_type": ["gpt_oss"]}, "describes a a list model"),
    ],
)
def test_other_fields_of_the_wrong_type(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        ModelArgs.from_dict(tiny_config(**overrides))


def test_a_billion_layers_fail_before_any_layer_is_derived() -> None:
    cfg = tiny_config(num_hidden_layers=10**9, layer_types=[])
    del cfg["layer_types"]  # derived per layer when absent: once a 61 s, 5.7 GB freeze
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError, match="num_hidden_layers is 1000000000,"):
        ModelArgs.from_dict(cfg)
    with pytest.raises(ModelLoadError, match="num_hidden_layers is 1000000000,"):
        ModelArgs(num_hidden_layers=10**9)  # built in code: the same bounds
    assert time.perf_counter() - t0 < 0.5


def test_the_bounds_admit_both_real_models() -> None:
    for config in (GPT_OSS_20B, GPT_OSS_120B):
        args = ModelArgs.from_dict(config)
        for key, (lo, hi) in INT_LIMITS.items():
            value = config.get(key, config["rope_scaling"].get(key))
            assert lo <= value <= hi // 8, key  # generous: room far beyond the real values
        assert args.rope_scaling is not None and args.rope_scaling.context == 131072


# -- the file itself: a small regular file, or a clear refusal -----------------------------------


def _config_dir(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(tiny_config()))
    return tmp_path


@pytest.mark.timeout(30)  # opening a FIFO without O_NONBLOCK would block here for good
def test_a_config_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "config.json")
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError, match=r"config\.json is a named pipe, not an ordinary file"):
        ModelArgs.from_model_dir(tmp_path)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.timeout(30)
def test_a_config_that_is_dev_zero_is_refused_without_reading(tmp_path: Path) -> None:
    (tmp_path / "config.json").symlink_to("/dev/zero")
    with pytest.raises(ModelLoadError, match=r"config\.json is a device, not an ordinary file"):
        ModelArgs.from_model_dir(tmp_path)


def test_a_config_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ModelLoadError, match=r"config\.json is a folder"):
        ModelArgs.from_model_dir(tmp_path)


def test_a_huge_config_is_refused_by_its_size(tmp_path: Path) -> None:
    path = _config_dir(tmp_path) / "config.json"
    with path.open("a") as f:
        f.write(" " * MAX_CONFIG_BYTES)
    with pytest.raises(ModelLoadError, match=r"larger than 1,048,576 bytes"):
        ModelArgs.from_model_dir(tmp_path)
    path.write_text(json.dumps(tiny_config()) + " " * 1000)  # spaces within the cap are fine
    assert ModelArgs.from_model_dir(tmp_path).hidden_size == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests its JSON too deeply"),
        ('{"num_hidden_layers": 1' + "0" * 5000 + "}", "is not valid JSON"),
        (b"\xff\xfe\x00{".decode("latin-1"), "is not valid JSON"),
    ],
    ids=["nested", "5000-digits", "bad-encoding"],
)
def test_json_that_python_chokes_on_is_a_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "config.json").write_text(text, encoding="latin-1")
    with pytest.raises(ModelLoadError, match=message):
        ModelArgs.from_model_dir(tmp_path)


def test_read_json_file_leaves_a_missing_file_to_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_json_file(tmp_path / "nothing.json", 100)
    with pytest.raises(
        ModelLoadError, match=r"nothing\.json/config\.json is missing: this is not a model"
    ):
        ModelArgs.from_model_dir(tmp_path / "nothing.json")
