"""Loading one rank's slice reads that slice's bytes and no others."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from engine.checkpoint import scan_checkpoint
from engine.config import ModelArgs
from engine.distributed.loading import read_part
from engine.distributed.plan import ShardPlan, Slice
from engine.experts import ExpertWeights, local_routes, mlx_experts
from engine.testing.synthetic import read_safetensors
from tests.conftest import CheckpointFactory


@pytest.mark.parametrize("size", [2, 4])
def test_each_slice_equals_that_part_of_the_whole_tensor(
    make_checkpoint: CheckpointFactory, size: int
) -> None:
    folder = make_checkpoint(seed=5, num_shards=3)
    args = ModelArgs.from_model_dir(folder)
    whole: dict[str, np.ndarray] = {}
    for f in sorted(folder.glob("*.safetensors")):
        whole |= read_safetensors(f)
    infos = scan_checkpoint(folder, args)
    for rank in range(size):
        plan = ShardPlan.for_rank(args, rank, size)
        for name, (shape, _) in plan.shapes(args).items():
            part = plan.slice_of(name)
            expected = whole[name]
            if part is not None:
                index = [slice(None)] * expected.ndim
                index[part.axis] = slice(part.start, part.stop)
                expected = expected[tuple(index)]
            got = read_part(infos[name], part)
            assert got.shape == shape, name
            np.testing.assert_array_equal(got.view(expected.dtype), expected, err_msg=name)


def test_a_rank_never_reads_other_ranks_expert_bytes(
    make_checkpoint: CheckpointFactory, tmp_path: Path
) -> None:
    """Overwrite every byte rank 1 must not need with 0xFF: rank 1 still reads the same values."""
    clean = make_checkpoint(seed=6)
    spoiled = Path(shutil.copytree(clean, tmp_path / "spoiled"))
    args = ModelArgs.from_model_dir(clean)
    plan = ShardPlan.for_rank(args, 1, 2)
    infos = scan_checkpoint(spoiled, args)
    with open(spoiled / "model.safetensors", "r+b") as f:
        for name, info in infos.items():
            if ".mlp.experts." not in name:
                continue
            row = (info.end - info.start) // info.shape[0]
            first, stop = plan.experts
            f.seek(info.start)
            f.write(b"\xff" * (first * row))  # the experts before rank 1's
            f.seek(info.start + stop * row)
            f.write(b"\xff" * (info.end - info.start - stop * row))  # and after
    clean_infos = scan_checkpoint(clean, args)
    for name, info in infos.items():
        if ".mlp.experts." in name:
            part = plan.slice_of(name)
            np.testing.assert_array_equal(read_part(info, part), read_part(clean_infos[name], part))
            assert not np.array_equal(read_part(info, None), read_part(clean_infos[name], None))


def test_ranks_expert_outputs_sum_to_the_whole_layer(tiny_checkpoint: Path) -> None:
    """local_routes: each rank computes only its experts' share; the shares add up exactly."""
    args = ModelArgs.from_model_dir(tiny_checkpoint)
    infos = scan_checkpoint(tiny_checkpoint, args)
    p = "model.layers.1.mlp.experts."

    def weights(part: tuple[int, int] | None) -> ExpertWeights:
        def get(n: str) -> mx.array:
            raw = read_part(infos[p + n], None if part is None else Slice(0, *part))
            a = mx.array(raw)
            if n.endswith("blocks"):
                return a.view(mx.uint32).flatten(-2)
            return a if n.endswith("scales") else a.view(mx.bfloat16).astype(mx.float32)

        names = ("gate_up_proj_", "down_proj_")
        w = [get(k + s) for k in names for s in ("blocks", "scales", "bias")]
        return ExpertWeights(w[0], w[1], w[2], w[3], w[4], w[5], args.swiglu_limit)

    rng = np.random.default_rng(0)
    for tokens in (1, 40):  # the decode path and the sorted prefill path
        x = mx.array(rng.standard_normal((tokens, args.hidden_size)).astype(np.float32))
        idx = mx.array(rng.permuted(np.tile(np.arange(8), (tokens, 1)), axis=1)[:, :4])
        route = mx.softmax(mx.array(rng.standard_normal((tokens, 4)).astype(np.float32)), axis=-1)
        whole = mlx_experts(x, idx.astype(mx.uint32), route, weights(None))
        parts = []
        for first in (0, 2, 4, 6):
            local, w = local_routes(idx, route, first, 2)
            parts.append(mlx_experts(x, local.astype(mx.uint32), w, weights((first, first + 2))))
        np.testing.assert_allclose(np.array(sum(parts)), np.array(whole), rtol=1e-5, atol=1e-5)
