"""The planner's arithmetic against what MLX really allocates, and its verdicts."""

from __future__ import annotations

import mlx.core as mx
import pytest

from engine import GREEDY, ModelArgs, ModelLoadError, load_model
from engine.memory import PROFILES, MachineBudget, plan_memory, recommend
from engine.memory.planner import KV_STEP, MIN_USEFUL_CONTEXT, GiB, context_limit, max_context
from engine.testing.synthetic import GPT_OSS_20B, GPT_OSS_120B, tiny_config
from tests.conftest import CheckpointFactory, param_bytes

SMALL = dict(hidden_size=256, intermediate_size=256, head_dim=64, num_attention_heads=8,
             num_key_value_heads=2, num_hidden_layers=4, vocab_size=4096)  # fmt: skip


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_weights_and_kv_are_predicted_to_the_byte(
    profile: str, dtype: str, make_checkpoint: CheckpointFactory
) -> None:
    path = make_checkpoint(seed=4, **SMALL)
    model = load_model(path, dtype=dtype, profile=profile)
    args = model.args
    plan = plan_memory(args, profile, dtype, context=1000)
    held = param_bytes(model._model)
    assert held == plan.weights

    cache = model.new_cache(capacity=1000)
    for _ in model.generate(list(range(1, 40)), settings=GREEDY, max_tokens=3, cache=cache):
        pass
    kv = sum(c.nbytes for c in cache)  # type: ignore[attr-defined]
    assert kv == plan.components["kv_full_layers"] + plan.components["kv_sliding_layers"]


def test_embedding_of_lean_profiles_is_outside_mlx(make_checkpoint: CheckpointFactory) -> None:
    path = make_checkpoint(seed=4, **SMALL)
    mx.clear_cache()
    before = mx.get_active_memory()
    full = load_model(path, dtype="bfloat16", profile="full")
    full_bytes = mx.get_active_memory() - before
    del full
    mx.clear_cache()
    before = mx.get_active_memory()
    lean = load_model(path, dtype="bfloat16", profile="16gb")
    lean_bytes = mx.get_active_memory() - before
    # beyond the parameters MLX holds only RoPE's frequency table and similar crumbs
    assert lean_bytes == pytest.approx(plan_memory(lean.args, "16gb", "bfloat16").weights, abs=4096)
    embedding = 4096 * 256 * 2
    assert full_bytes - lean_bytes > embedding


def test_20b_components_match_the_published_sizes() -> None:
    plan = plan_memory(ModelArgs.from_dict(GPT_OSS_20B), "full", "bfloat16", context=8192)
    c = plan.components
    assert c["experts"] / GiB == pytest.approx(9.47, abs=0.01)
    assert c["attention"] / GiB == pytest.approx(1.187, abs=0.001)
    assert c["embedding"] == c["unembedding"] == 201088 * 2880 * 2
    # every bf16 tensor of the checkpoint counted once: 13,761,264,768 bytes in all
    assert plan.weights == 13_761_264_768
    # 12 full layers x 8 kv heads x 64 x (k, v) x 2 bytes: 24 KiB per token in all
    assert c["kv_full_layers"] == 8192 * 24 * 1024


def test_16gb_profile_fits_the_budget_of_a_16gb_mac() -> None:
    args = ModelArgs.from_dict(GPT_OSS_20B)
    plan = plan_memory(args, "16gb", "bfloat16", context=8192)
    assert plan.total <= 10.5 * GiB
    mac16 = MachineBudget(16 * 10**9, 16 * 10**9, int(10.67 * GiB), reserve=0)
    verdict = recommend(args, mac16)
    assert verdict.fits and verdict.profile == "16gb"
    assert verdict.max_context >= 8192
    assert "16 GB Mac" in verdict.message


def test_full_profile_is_chosen_when_memory_allows() -> None:
    big = MachineBudget(64 * GiB, 64 * GiB, int(48 * GiB), reserve=0)
    verdict = recommend(ModelArgs.from_dict(GPT_OSS_20B), big)
    assert verdict.fits and verdict.profile == "full"
    assert verdict.max_context == 131072


def test_120b_on_a_16gb_mac_is_refused_honestly() -> None:
    mac16 = MachineBudget(16 * 10**9, 16 * 10**9, int(10.67 * GiB), reserve=0)
    verdict = recommend(ModelArgs.from_dict(GPT_OSS_120B), mac16)
    assert not verdict.fits and verdict.max_context == 0
    assert "does not fit" in verdict.message


def test_max_context_is_the_largest_that_fits() -> None:
    args = ModelArgs.from_dict(GPT_OSS_20B)
    budget = int(10.6 * GiB)
    n = max_context(args, "16gb", "bfloat16", budget)
    assert plan_memory(args, "16gb", "bfloat16", n).total <= budget
    assert plan_memory(args, "16gb", "bfloat16", n + 256).total > budget


def _budget(usable_gib: float) -> MachineBudget:
    return MachineBudget(16 * 10**9, 16 * 10**9, int(usable_gib * GiB), reserve=0)


def test_a_model_that_holds_barely_a_prompt_does_not_fit() -> None:
    """Room for the weights and 256 tokens once counted as "fits"; a conversation needs more."""
    args = ModelArgs.from_dict(GPT_OSS_20B)
    floor = plan_memory(args, "compact", "bfloat16", KV_STEP).total
    needed = plan_memory(args, "compact", "bfloat16", MIN_USEFUL_CONTEXT).total
    budget = MachineBudget(16 * 10**9, 16 * 10**9, (floor + needed) // 2, reserve=0)
    verdict = recommend(args, budget)
    assert 0 < verdict.max_context < MIN_USEFUL_CONTEXT
    assert not verdict.fits
    assert verdict.message.startswith(
        f"This model needs at least {needed / GiB:.1f} GiB for 4,096 tokens of context"
    )
    with pytest.raises(ModelLoadError, match="does not fit, even with the smallest settings"):
        verdict.require_fit()


def test_the_shortfall_is_measured_on_the_leanest_profile() -> None:
    """The message once quoted the full profile's 13 GiB to a Mac 0.1 GiB short of compact."""
    args = ModelArgs.from_dict(GPT_OSS_20B)
    verdict = recommend(args, _budget(10.2))
    least = plan_memory(args, "compact", "bfloat16", MIN_USEFUL_CONTEXT).total
    assert not verdict.fits
    assert f"needs at least {least / GiB:.1f} GiB" in verdict.message
    assert least < plan_memory(args, "full", "bfloat16", MIN_USEFUL_CONTEXT).total


def test_a_short_but_useful_context_still_fits() -> None:
    args = ModelArgs.from_dict(GPT_OSS_20B)
    verdict = recommend(args, _budget(10.3))
    assert verdict.fits and MIN_USEFUL_CONTEXT <= verdict.max_context < 8192
    assert "tokens of context fit" in verdict.message
    verdict.require_fit()  # no error


def test_a_model_with_a_short_position_range_needs_only_that_much() -> None:
    """A model whose positions end before MIN_USEFUL_CONTEXT fits once all of them fit."""
    args = ModelArgs.from_dict(tiny_config(rope_scaling=None))  # 4,096 positions
    assert context_limit(args) == 4096
    verdict = recommend(args, _budget(1.0), wanted_context=8192)
    assert verdict.fits and verdict.max_context == 4096
    short = ModelArgs.from_dict(
        tiny_config(
            rope_scaling={
                "rope_type": "yarn",
                "factor": 1.0,
                "original_max_position_embeddings": 100,
            }
        )
    )
    assert max_context(short, "full", "bfloat16", GiB) == 100  # never more than its positions
    assert recommend(short, _budget(1.0)).fits
