"""The memory planner for N equal machines: which Macs can run gpt-oss-120b, with per-rank bytes."""

from __future__ import annotations

import pytest

from engine.config import ModelArgs
from engine.memory.budget import MachineBudget
from engine.memory.planner import GiB, plan_distributed, plan_memory, recommend_split
from engine.testing.synthetic import GPT_OSS_120B

ARGS = ModelArgs.from_dict(GPT_OSS_120B)


def _mac(usable_gib: float) -> MachineBudget:
    return MachineBudget(128 * GiB, 128 * GiB, int(usable_gib * GiB), reserve=0)


def test_one_process_plans_what_the_single_machine_planner_plans() -> None:
    alone = plan_distributed(ARGS, 1, "bfloat16", 8192)
    assert len(alone) == 1
    assert alone[0].components == plan_memory(ARGS, "full", "bfloat16", 8192).components


def test_two_ranks_split_heads_experts_and_cache_and_rank_0_keeps_the_unembedding() -> None:
    one = plan_memory(ARGS, "full", "bfloat16", 8192).components
    first, second = (p.components for p in plan_distributed(ARGS, 2, "bfloat16", 8192))
    for part in ("experts", "kv_full_layers", "kv_sliding_layers"):
        assert first[part] == second[part] == one[part] // 2, part
    # attention too, but for o_proj's bias, which every rank holds (zero but on rank 0)
    o_bias = ARGS.num_hidden_layers * ARGS.hidden_size * 2
    assert first["attention"] == second["attention"] == (one["attention"] - o_bias) // 2 + o_bias
    for part in ("router", "norms", "embedding"):
        assert first[part] == second[part] == one[part], part
    assert first["unembedding"] == one["unembedding"] and second["unembedding"] == 0


@pytest.mark.parametrize(
    ("usable_gib", "machines"),
    [
        (10.67, 8),  # 16 GB Macs: eight of them, 9.7 GiB each
        (21.3, 4),  # 32 GB
        (32.0, 2),  # 48 GB
        (72.0, 1),  # 96 GB
    ],
)
def test_120b_needs_fewer_machines_as_each_has_more_memory(
    usable_gib: float, machines: int
) -> None:
    verdict = recommend_split(ARGS, _mac(usable_gib))
    assert verdict.machines == machines
    assert len(verdict.plans) == machines
    assert max(p.total for p in verdict.plans) <= usable_gib * GiB
    if machines > 1:  # and one machine fewer would not do
        fewer = plan_distributed(ARGS, machines // 2, "bfloat16", 8192)
        assert max(p.total for p in fewer) > usable_gib * GiB
    assert verdict.message.startswith("Fits on")


def test_a_model_too_big_for_eight_small_machines_says_so() -> None:
    verdict = recommend_split(ARGS, _mac(6.0))
    assert verdict.machines == 0
    assert verdict.message.startswith("Does not fit on up to 8 machines")
    assert "Use machines with more memory" in verdict.message
