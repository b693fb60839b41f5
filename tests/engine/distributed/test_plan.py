"""The split of every tensor across ranks: a partition where it must be, refused where it cannot."""

from __future__ import annotations

import itertools
import math

import pytest

from engine.checkpoint import expected_tensors
from engine.config import ModelArgs
from engine.distributed.plan import ShardPlan, split_problem
from engine.errors import ModelLoadError
from engine.testing.synthetic import hf_config

ARGS_120B = ModelArgs.from_dict(hf_config(num_hidden_layers=2, num_local_experts=128))


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_ranks_partition_heads_and_experts_of_120b(size: int) -> None:
    plans = [ShardPlan.for_rank(ARGS_120B, r, size) for r in range(size)]
    full = expected_tensors(ARGS_120B)
    for name, (shape, _) in full.items():
        parts = [p.slice_of(name) for p in plans]
        if parts[0] is None:
            continue
        axis = parts[0].axis
        covered = sorted((s.start, s.stop) for s in parts if s is not None)
        # consecutive, no gap, no overlap, ending at the tensor's size
        assert covered[0][0] == 0 and covered[-1][1] == shape[axis], name
        assert all(a[1] == b[0] for a, b in itertools.pairwise(covered)), name


def test_rank_bytes_add_up_to_the_checkpoint_plus_replicated_parts() -> None:
    size = 4
    plans = [ShardPlan.for_rank(ARGS_120B, r, size) for r in range(size)]
    full = expected_tensors(ARGS_120B)

    def nbytes(shape: tuple[int, ...], kind: str) -> int:
        return math.prod(shape) * (1 if kind == "U8" else 2)

    sliced = {n for n in full if plans[0].slice_of(n) is not None}
    whole = sum(nbytes(*v) for n, v in full.items() if n not in sliced)
    split = sum(nbytes(*v) for n, v in full.items() if n in sliced)
    unembedding = nbytes(*full["lm_head.weight"])
    total = sum(p.weight_bytes(ARGS_120B, "bfloat16") for p in plans)
    # every rank holds the unsliced tensors but the unembedding, which only rank 0 holds
    assert total == split + size * whole - (size - 1) * unembedding
    # 8 kv heads over 4 ranks: two each, the experts 32 each
    assert plans[3].kv_heads == (6, 8) and plans[3].experts == (96, 128)


def test_more_ranks_than_kv_heads_copy_the_kv_head_their_queries_read() -> None:
    args = ModelArgs(num_attention_heads=8, num_key_value_heads=2, num_local_experts=8)
    plans = [ShardPlan.for_rank(args, r, 4) for r in range(4)]
    # query heads 0-1 and 2-3 read kv head 0; 4-5 and 6-7 read kv head 1
    assert [p.q_heads for p in plans] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert [p.kv_heads for p in plans] == [(0, 1), (0, 1), (1, 2), (1, 2)]


@pytest.mark.parametrize(
    ("size", "words"),
    [(3, "64 attention heads do not divide by 3"), (256, "attention heads do not divide")],
)
def test_a_split_that_cannot_work_is_refused_with_the_reason(size: int, words: str) -> None:
    assert split_problem(ARGS_120B, size) is not None
    with pytest.raises(ModelLoadError, match="cannot be split across") as e:
        ShardPlan.for_rank(ARGS_120B, 0, size)
    assert words in str(e.value)
    assert "divides 64" in str(e.value)  # what to use instead: gcd(64 heads, 128 experts)


def test_experts_that_do_not_divide_are_refused() -> None:
    args = ModelArgs(num_attention_heads=8, num_key_value_heads=2, num_local_experts=6)
    assert split_problem(args, 4) == "its 6 experts do not divide by 4"
