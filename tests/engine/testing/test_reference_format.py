"""The HF → original converter, checked by loading its output in OpenAI's reference model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

from engine.testing.reference_format import convert_to_original
from engine.testing.synthetic import (
    bf16_to_float32,
    dequantize_mxfp4,
    read_safetensors,
    tiny_config,
    write_checkpoint,
)

CONFIG = tiny_config(num_hidden_layers=2)


def reference_model() -> ModuleType:
    try:
        import gpt_oss.torch.model as model
    except ImportError as e:  # the oracle is part of the test setup: missing it is a failure
        pytest.fail(f"OpenAI's reference package gpt_oss is not installed ({e}); run `make pytest`")
    return model


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Sharded, so the converter has to follow the index.
    return write_checkpoint(tmp_path_factory.mktemp("hf"), CONFIG, seed=11, num_shards=2)


@pytest.fixture(scope="module")
def original_dir(hf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_to_original(hf_dir, tmp_path_factory.mktemp("original"))


@pytest.fixture(scope="module")
def reference(original_dir: Path) -> Any:
    return reference_model().Transformer.from_checkpoint(str(original_dir), device="cpu")


def hf_tensor(hf_dir: Path, name: str) -> np.ndarray:
    index = json.loads((hf_dir / "model.safetensors.index.json").read_text())
    return np.asarray(read_safetensors(hf_dir / index["weight_map"][name])[name])


def test_config_has_exactly_the_reference_keys(original_dir: Path) -> None:
    config = json.loads((original_dir / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(reference_model().ModelConfig)}
    assert set(config) == fields
    assert config["num_experts"] == CONFIG["num_local_experts"]
    assert (config["rope_scaling_factor"], config["rope_ntk_alpha"], config["rope_ntk_beta"]) == (
        32.0,
        1.0,
        32.0,
    )


def test_names_match_the_reference_parameters(original_dir: Path) -> None:
    with safe_open(str(original_dir / "model.safetensors"), framework="np") as f:
        names = set(f.keys())
    expected = {"embedding.weight", "norm.scale", "unembedding.weight"}
    for n in range(CONFIG["num_hidden_layers"]):
        expected |= {f"block.{n}.{s}" for s in (
            "attn.norm.scale", "attn.qkv.weight", "attn.qkv.bias", "attn.sinks", "attn.out.weight",
            "attn.out.bias", "mlp.norm.scale", "mlp.gate.weight", "mlp.gate.bias",
            "mlp.mlp1_weight.blocks", "mlp.mlp1_weight.scales", "mlp.mlp1_bias",
            "mlp.mlp2_weight.blocks", "mlp.mlp2_weight.scales", "mlp.mlp2_bias",
        )}  # fmt: skip
    assert names == expected


def test_reference_runs_a_forward_pass(reference: Any) -> None:
    tokens = torch.tensor([1, 7, 300, 42, 511, 0, 9, 9, 9, 12, 100], dtype=torch.int32)
    with torch.inference_mode():
        logits = reference(tokens)
    assert logits.shape == (len(tokens), CONFIG["vocab_size"])
    assert torch.isfinite(logits).all()
    # random weights that keep activations alive: logits neither vanish nor explode
    assert 0.1 < logits.float().std().item() < 100


def test_reference_dequantizes_experts_like_the_spec(reference: Any, hf_dir: Path) -> None:
    for n, block in enumerate(reference.block):
        pairs = [("gate_up_proj", block.mlp.mlp1_weight), ("down_proj", block.mlp.mlp2_weight)]
        for ours, theirs in pairs:
            prefix = f"model.layers.{n}.mlp.experts.{ours}"
            expected = dequantize_mxfp4(
                hf_tensor(hf_dir, prefix + "_blocks"), hf_tensor(hf_dir, prefix + "_scales")
            )
            np.testing.assert_array_equal(theirs.detach().float().numpy(), expected)


def test_qkv_rows_are_q_then_k_then_v(reference: Any, hf_dir: Path) -> None:
    attn = reference.block[1].attn
    parts = [hf_tensor(hf_dir, f"model.layers.1.self_attn.{p}_proj.weight") for p in "qkv"]
    expected = bf16_to_float32(np.concatenate(parts))
    np.testing.assert_array_equal(attn.qkv.weight.detach().float().numpy(), expected)
    sinks = bf16_to_float32(hf_tensor(hf_dir, "model.layers.1.self_attn.sinks"))
    np.testing.assert_array_equal(attn.sinks.detach().float().numpy(), sinks)
