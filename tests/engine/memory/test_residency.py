"""Precision profiles in effect: what changes, what must not, and by how much the logits move."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from engine import GREEDY, ModelLoadError, Token, load_model
from engine.memory.residency import MappedEmbedding
from engine.testing.synthetic import bf16_to_float32, read_safetensors
from tests.conftest import CheckpointFactory

SHAPE = dict(hidden_size=128, intermediate_size=128, head_dim=32, num_attention_heads=8,
             num_key_value_heads=2)  # fmt: skip


@pytest.fixture(scope="module")
def path(make_checkpoint: CheckpointFactory) -> Path:
    return make_checkpoint(seed=6, **SHAPE)


def _ids(n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(3).integers(0, 512, size=n)]


def test_mapped_embedding_reads_the_checkpoint_rows(path: Path) -> None:
    model = load_model(path, profile="16gb")
    table = model._model.model.embed_tokens
    assert isinstance(table, MappedEmbedding)
    raw = read_safetensors(path / "model.safetensors")["model.embed_tokens.weight"]
    rows = np.array(table(mx.array([7, 0, 511])))
    np.testing.assert_array_equal(rows, bf16_to_float32(raw[[7, 0, 511]]))


@pytest.mark.parametrize(("profile", "max_rel_error"), [("16gb", 0.15), ("compact", 0.25)])
def test_lean_profiles_stay_close_to_full(path: Path, profile: str, max_rel_error: float) -> None:
    ids = _ids(120)
    full = load_model(path).logits(ids)
    lean = load_model(path, profile=profile).logits(ids)
    rel = np.abs(lean - full).mean() / np.abs(full).mean()
    # random weights give flat logits, so this is a loose bound; the benchmark reports real numbers
    assert 0 < rel < max_rel_error
    assert (lean.argmax(-1) == full.argmax(-1)).mean() > 0.6


def test_experts_are_untouched_by_every_profile(path: Path) -> None:
    full = load_model(path)._model.model.layers[0].mlp.experts
    lean = load_model(path, profile="compact")._model.model.layers[0].mlp.experts
    for name in ("gate_up_proj_blocks", "gate_up_proj_scales", "down_proj_blocks"):
        assert mx.array_equal(getattr(full, name), getattr(lean, name))


def test_quantized_kv_cache_decodes_like_a_plain_one(path: Path) -> None:
    model = load_model(path, profile="compact")
    ids = _ids(40)
    cache = model.new_cache(capacity=64)
    tokens = [e.id for e in model.generate(ids, settings=GREEDY, max_tokens=6, cache=cache)
              if isinstance(e, Token)]  # fmt: skip
    # the same model with its logits computed without any cache
    seq = list(ids)
    for t in tokens:
        logits = model.logits(seq)[-1]
        top2 = np.sort(logits)[-2:]
        if top2[1] - top2[0] > 0.05:  # skip near-ties that 8-bit rounding may flip
            assert int(logits.argmax()) == t
        seq.append(t)


def test_reserved_cache_equals_a_growing_one(path: Path) -> None:
    model = load_model(path)
    ids = _ids(30)

    def run(capacity: int) -> list[int]:
        cache = model.new_cache(capacity=capacity)
        return [e.id for e in model.generate(ids, settings=GREEDY, max_tokens=8, cache=cache)
                if isinstance(e, Token)]  # fmt: skip

    assert run(0) == run(1000)


def test_kv_quantization_needs_a_head_dim_it_can_group(make_checkpoint: CheckpointFactory) -> None:
    with pytest.raises(ModelLoadError, match="head_dim 16"):
        load_model(make_checkpoint(), profile="16gb")


def test_quantizing_from_the_file_never_holds_the_full_precision_tensor(tmp_path: Path) -> None:
    from engine.checkpoint import read_header
    from engine.testing.synthetic import TensorSpec, tensor_chunks, write_safetensors
    from engine.weights import quantize_streamed

    spec = TensorSpec("lm_head.weight", (8192, 1024), "BF16")  # 16 MiB in bf16
    file = tmp_path / "t.safetensors"
    write_safetensors(file, [spec], lambda s: tensor_chunks(s, 0))
    info = read_header(file)["lm_head.weight"]
    mx.clear_cache()
    mx.reset_peak_memory()
    before = mx.get_active_memory()
    items = quantize_streamed(info, mx.bfloat16, bits=4, group=64, chunk_bytes=1 << 20)
    held = sum(v.nbytes for _, v in items)
    peak = mx.get_peak_memory() - before
    assert held < spec.nbytes / 3  # 4-bit plus scales and biases
    assert peak < held + 3 * (1 << 20)  # the quantized result plus about one 1 MiB block
    raw = read_safetensors(file)["lm_head.weight"]
    w, s, b = (v for _, v in items)
    back = np.array(mx.dequantize(w, s, b, group_size=64, bits=4).astype(mx.float32))
    exact = bf16_to_float32(raw)
    assert np.abs(back - exact).max() < np.abs(exact).max() / 7  # 4-bit: within one step of 15


def test_converted_weights_are_kept_and_reused(
    path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from engine.memory.conversion_cache import MANIFEST

    monkeypatch.setenv("OSS_DESK_CONVERTED_DIR", str(tmp_path / "conv"))
    ids = _ids(20)
    with caplog.at_level(logging.INFO, logger="engine.memory.conversion_cache"):
        first = load_model(path, profile="16gb").logits(ids)
        manifests = list((tmp_path / "conv").rglob(MANIFEST))
        assert len(manifests) == 1 and "converting and keeping" in caplog.text
        caplog.clear()
        second = load_model(path, profile="16gb").logits(ids)
        assert "using converted weights" in caplog.text
    np.testing.assert_array_equal(first, second)
    # a damaged cache file is noticed and converted again, with the same result
    victim = next(f for f in manifests[0].parent.glob("*.safetensors"))
    victim.write_bytes(victim.read_bytes()[:-10])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="engine.memory.conversion_cache"):
        third = load_model(path, profile="16gb").logits(ids)
    assert "converting again" in caplog.text
    np.testing.assert_array_equal(first, third)
