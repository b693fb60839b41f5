"""config.json -> ModelArgs: the real values, derived fields, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import ModelArgs, ModelLoadError
from engine.config import FULL, SLIDING
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
