"""The synthetic checkpoint writer, read back with the `safetensors` library as the oracle."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

from engine import HarmonyTokenizer
from engine.testing.synthetic import (
    BYTES_PER_BLOCK,
    GPT_OSS_20B,
    GPT_OSS_120B,
    OUTPUT_GAIN,
    VALUES_PER_BLOCK,
    TensorSpec,
    bf16_to_float32,
    checkpoint_nbytes,
    dequantize_mxfp4,
    float32_to_bf16_bits,
    hf_config,
    main,
    tensor_chunks,
    tensor_specs,
    tiny_config,
    write_checkpoint,
)
from engine.tokenizer import N_VOCAB

SHARDED_FILES = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]


def load_tensors(directory: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                assert name not in tensors, f"{name} is in two files"
                tensors[name] = f.get_tensor(name)
    return tensors


def raw_bytes(tensors: dict[str, torch.Tensor]) -> dict[str, bytes]:
    return {name: t.contiguous().view(torch.uint8).numpy().tobytes() for name, t in tensors.items()}


def as_float(t: torch.Tensor) -> np.ndarray:
    return t.float().numpy()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("tiny"), tiny_config(), seed=0)


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> dict[str, torch.Tensor]:
    return load_tensors(tiny_dir)


@pytest.fixture(scope="module")
def sharded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A different chunk size too: neither may change a single byte.
    path = tmp_path_factory.mktemp("sharded")
    return write_checkpoint(path, tiny_config(), seed=0, num_shards=3, chunk_bytes=256)


def test_hf_config_has_the_real_20b_values() -> None:
    c = hf_config()
    assert (c["num_hidden_layers"], c["num_local_experts"], c["vocab_size"]) == (24, 32, 201088)
    assert c["num_experts_per_tok"] == c["experts_per_token"] == 4
    assert c["layer_types"] == ["sliding_attention", "full_attention"] * 12
    assert c["rope_scaling"]["factor"] == 32.0 and c["rope_scaling"]["truncate"] is False
    assert "model.layers.*.mlp.router" in c["quantization_config"]["modules_to_not_convert"]
    assert GPT_OSS_120B["layer_types"] == ["sliding_attention", "full_attention"] * 18
    assert json.loads(json.dumps(c)) == c


def test_overrides_keep_derived_keys_consistent() -> None:
    assert len(tiny_config(num_hidden_layers=3)["layer_types"]) == 3
    assert tiny_config(layer_types=["full_attention"] * 4)["layer_types"] == ["full_attention"] * 4
    for key in ("num_experts_per_tok", "experts_per_token"):
        c = tiny_config(**{key: 2})
        assert c["num_experts_per_tok"] == c["experts_per_token"] == 2
    with pytest.raises(ValueError, match="differ"):
        hf_config(num_experts_per_tok=2, experts_per_token=3)


def test_presets_are_independent_copies() -> None:
    a, b = hf_config(), hf_config()
    a["rope_scaling"]["factor"] = 1.0
    assert b["rope_scaling"]["factor"] == GPT_OSS_20B["rope_scaling"]["factor"] == 32.0


def test_total_bytes_equal_the_published_checkpoints() -> None:
    assert checkpoint_nbytes(GPT_OSS_20B) == 13_761_264_768
    assert checkpoint_nbytes(GPT_OSS_120B) == 65_248_815_744


def test_20b_shapes_match_the_spec_table() -> None:
    specs = {s.name: s for s in tensor_specs(GPT_OSS_20B)}
    expected = {
        "model.embed_tokens.weight": ((201088, 2880), "BF16"),
        "model.layers.0.self_attn.q_proj.weight": ((4096, 2880), "BF16"),
        "model.layers.5.self_attn.k_proj.bias": ((512,), "BF16"),
        "model.layers.23.self_attn.o_proj.weight": ((2880, 4096), "BF16"),
        "model.layers.23.self_attn.sinks": ((64,), "BF16"),
        "model.layers.1.mlp.router.weight": ((32, 2880), "BF16"),
        "model.layers.1.mlp.experts.gate_up_proj_blocks": ((32, 5760, 90, 16), "U8"),
        "model.layers.1.mlp.experts.gate_up_proj_scales": ((32, 5760, 90), "U8"),
        "model.layers.1.mlp.experts.down_proj_blocks": ((32, 2880, 90, 16), "U8"),
        "model.layers.1.mlp.experts.down_proj_bias": ((32, 2880), "BF16"),
        "lm_head.weight": ((201088, 2880), "BF16"),
    }
    assert {n: (specs[n].shape, specs[n].dtype) for n in expected} == expected
    assert len(specs) == 3 + 24 * 19


def test_names_follow_the_hf_layout_in_order() -> None:
    names = [s.name for s in tensor_specs(tiny_config(num_hidden_layers=1))]
    attn = [f"self_attn.{p}_proj.{k}" for p in "qkvo" for k in ("weight", "bias")]
    experts = [
        f"mlp.experts.{m}_{k}"
        for m in ("gate_up_proj", "down_proj")
        for k in ("blocks", "scales", "bias")
    ]
    layer = [
        "input_layernorm.weight",
        *attn,
        "self_attn.sinks",
        "post_attention_layernorm.weight",
        "mlp.router.weight",
        "mlp.router.bias",
        *experts,
    ]
    expected = [
        "model.embed_tokens.weight",
        *(f"model.layers.0.{n}" for n in layer),
        "model.norm.weight",
        "lm_head.weight",
    ]
    assert names == expected


def test_sizes_must_allow_whole_mxfp4_blocks() -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        tensor_specs(tiny_config(intermediate_size=48))


def test_tiny_checkpoint_files_and_headers(tiny_dir: Path) -> None:
    assert sorted(p.name for p in tiny_dir.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((tiny_dir / "config.json").read_text()) == tiny_config()
    specs = tensor_specs(tiny_config())
    with safe_open(str(tiny_dir / "model.safetensors"), framework="np") as f:
        assert set(f.keys()) == {s.name for s in specs}
        assert f.metadata() == {"format": "pt"}
        found = [
            TensorSpec(
                s.name, tuple(f.get_slice(s.name).get_shape()), f.get_slice(s.name).get_dtype()
            )
            for s in specs
        ]
    assert found == specs
    data = checkpoint_nbytes(tiny_config())
    assert data < (tiny_dir / "model.safetensors").stat().st_size < data + 2**16


def test_sharded_checkpoint_has_a_complete_index(sharded_dir: Path) -> None:
    index = json.loads((sharded_dir / "model.safetensors.index.json").read_text())
    specs = tensor_specs(tiny_config())
    assert index["metadata"]["total_size"] == sum(s.nbytes for s in specs)
    assert list(index["weight_map"]) == [s.name for s in specs]
    assert sorted(set(index["weight_map"].values())) == SHARDED_FILES
    for file in SHARDED_FILES:
        with safe_open(str(sharded_dir / file), framework="np") as f:
            assert set(f.keys()) == {n for n, v in index["weight_map"].items() if v == file}
    sizes = [(sharded_dir / file).stat().st_size for file in SHARDED_FILES]
    assert max(sizes) < 1.5 * min(sizes)


def test_sharding_and_chunk_size_do_not_change_bytes(
    tiny: dict[str, torch.Tensor], sharded_dir: Path
) -> None:
    assert raw_bytes(load_tensors(sharded_dir)) == raw_bytes(tiny)


def test_same_seed_same_bytes_other_seed_other_bytes(
    tiny: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    again = raw_bytes(load_tensors(write_checkpoint(tmp_path / "a", tiny_config(), seed=0)))
    other = raw_bytes(load_tensors(write_checkpoint(tmp_path / "b", tiny_config(), seed=1)))
    first = raw_bytes(tiny)
    assert again == first
    assert [n for n in first if first[n] == other[n]] == []


def test_shard_limits(tmp_path: Path) -> None:
    config = tiny_config(num_hidden_layers=1)
    with pytest.raises(ValueError, match="num_shards"):
        write_checkpoint(tmp_path / "a", config, num_shards=len(tensor_specs(config)) + 1)
    limit = 40_000
    out = write_checkpoint(tmp_path / "b", config, max_shard_bytes=limit)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    per_file: dict[str, list[int]] = {}
    for spec in tensor_specs(config):
        per_file.setdefault(index["weight_map"][spec.name], []).append(spec.nbytes)
    assert len(per_file) > 2
    # a tensor over the limit gets a file of its own, as in Hugging Face's sharding
    assert all(sum(sizes) <= limit or len(sizes) == 1 for sizes in per_file.values())
    with pytest.raises(FileExistsError):
        write_checkpoint(out, config)


def test_e8m0_scales_are_valid_and_near_the_target(tiny: dict[str, torch.Tensor]) -> None:
    for name, t in tiny.items():
        if name.endswith("_scales"):
            values = set(np.unique(t.numpy()).tolist())
            # blocks of RMS 2.93 times 2^(s-127) ≈ 1/8 or 1/16 (K = 64): s near 122
            assert values <= {120, 121, 122, 123}, name
            assert len(values) == 2, name


@pytest.mark.parametrize(("proj", "gain"), [("gate_up_proj", 1.0), ("down_proj", OUTPUT_GAIN)])
def test_dequantized_experts_have_the_intended_std(
    tiny: dict[str, torch.Tensor], proj: str, gain: float
) -> None:
    prefix = f"model.layers.2.mlp.experts.{proj}"
    w = dequantize_mxfp4(tiny[prefix + "_blocks"].numpy(), tiny[prefix + "_scales"].numpy())
    k = tiny[prefix + "_scales"].shape[-1] * VALUES_PER_BLOCK
    assert w.shape[-1] == k
    assert w.std() == pytest.approx(gain / math.sqrt(k), rel=0.1)
    assert abs(w.mean()) < 0.05 * w.std()


def test_bf16_tensors_have_sensible_scales(tiny: dict[str, torch.Tensor]) -> None:
    hidden = tiny_config()["hidden_size"]
    q = as_float(tiny["model.layers.0.self_attn.q_proj.weight"])
    assert q.std() == pytest.approx(1 / math.sqrt(hidden), rel=0.1)
    assert as_float(tiny["model.embed_tokens.weight"]).std() == pytest.approx(1.0, rel=0.1)
    for name, t in tiny.items():
        values = as_float(t)
        if name.endswith(("layernorm.weight", "norm.weight")):
            assert values.min() > 0 and abs(values.mean() - 1) < 0.1, name
        elif name.endswith("bias"):
            assert 0 < values.std() < 0.1, name


def test_bf16_conversion_matches_torch() -> None:
    rng = np.random.default_rng(0)
    wide = rng.standard_normal(10_000) * 10.0 ** rng.integers(-30, 30, 10_000)
    edges = [0.0, -0.0, 1 + 2**-8, 1 + 3 * 2**-8, 3.4e38, -3.4e38, np.inf, -np.inf]
    any_bits = rng.integers(0, 2**32, 10_000, dtype=np.uint32).view(np.float32)  # NaNs, subnormals
    x = np.concatenate([wide.astype(np.float32), np.array(edges, np.float32), any_bits])
    ours = float32_to_bf16_bits(x)
    theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(ours[finite], theirs[finite])
    assert np.isnan(bf16_to_float32(ours[np.isnan(x)])).all()
    rounded = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(bf16_to_float32(ours)[finite], rounded[finite])
    assert float32_to_bf16_bits([1 + 2**-8, np.inf]).tolist() == [0x3F80, 0x7F80]


def test_dequantize_mxfp4_follows_the_spec_formula() -> None:
    blocks = np.zeros((2, BYTES_PER_BLOCK), np.uint8)
    blocks[0, 0], blocks[1, 15] = 0x72, 0xF9  # low nibble = even element
    w = dequantize_mxfp4(blocks, np.array([127, 128], np.uint8))
    assert w.shape == (64,)
    assert w[:2].tolist() == [1.0, 6.0]
    assert w[62:].tolist() == [-1.0, -12.0]
    assert np.isnan(dequantize_mxfp4(blocks[:1], np.array([255], np.uint8))).all()


def test_large_tensors_are_streamed_in_bounded_memory(tmp_path: Path) -> None:
    """Peak traced memory while writing a 2880-wide, 8192-token checkpoint (~200 MB)."""
    config: dict[str, Any] = hf_config(num_hidden_layers=1, num_local_experts=2, vocab_size=8192)
    chunk = 1 << 20
    largest = max(tensor_specs(config), key=lambda s: s.nbytes)

    def peak_bytes(action: Any) -> int:
        tracemalloc.start()
        try:
            action()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # The measurement notices a materialised tensor; then the writer must not materialise any.
    whole = peak_bytes(lambda: list(tensor_chunks(largest, 0, chunk_bytes=1 << 40)))
    assert whole > largest.nbytes
    streamed = peak_bytes(lambda: write_checkpoint(tmp_path, config, chunk_bytes=chunk))
    assert streamed < 8 * chunk < largest.nbytes / 4
    assert (tmp_path / "model.safetensors").stat().st_size > checkpoint_nbytes(config)


def test_cli_writes_a_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path), "--preset", "tiny", "--layers", "2", "--shards", "2", "--seed", "5"])
    assert "GiB" in capsys.readouterr().out
    config = json.loads((tmp_path / "config.json").read_text())
    # With its tokenizer (the default) the tiny model keeps the real vocabulary: the special
    # tokens sit at the real ids, up to 201087.
    assert config == tiny_config(num_hidden_layers=2, vocab_size=N_VOCAB)
    assert len(load_tensors(tmp_path)) == len(tensor_specs(config))
    tok = HarmonyTokenizer.from_model_dir(tmp_path)
    assert tok.decode(tok.encode_ordinary("hello there")) == "hello there"


def test_cli_can_leave_the_tokenizer_out(tmp_path: Path) -> None:
    main([str(tmp_path), "--preset", "tiny", "--layers", "1", "--no-tokenizer"])
    assert json.loads((tmp_path / "config.json").read_text()) == tiny_config(num_hidden_layers=1)
    assert not (tmp_path / "tokenizer.json").exists()
