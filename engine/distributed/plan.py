"""Which part of every checkpoint tensor one rank of a tensor-parallel group holds.

Pure arithmetic on the config (no MLX), so the loader, the model and the memory planner agree on
the split. Rank r of N holds query heads [r H/N, (r+1) H/N), the key/value heads those read, and
experts [r E/N, (r+1) E/N); everything else is whole on every rank, except the unembedding (rank
0 only: it alone turns hidden states into logits) and o_proj's bias (rank 0 only, zero elsewhere,
so the all-sum adds it once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.checkpoint import expected_tensors
from engine.config import ModelArgs
from engine.errors import ModelLoadError

UNEMBEDDING = "lm_head.weight"
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Slice:
    """Elements start .. stop - 1 along one axis of a tensor."""

    axis: int
    start: int
    stop: int


@dataclass(frozen=True)
class ShardPlan:
    rank: int
    size: int
    q_heads: tuple[int, int]  # first, stop
    kv_heads: tuple[int, int]
    experts: tuple[int, int]
    head_dim: int

    @classmethod
    def for_rank(cls, args: ModelArgs, rank: int, size: int) -> ShardPlan:
        """The plan of `rank` in a group of `size`; ModelLoadError if the model cannot split so."""
        if not 0 <= rank < size:
            raise ValueError(f"rank {rank} is outside a group of {size}")
        H, Hk, E = args.num_attention_heads, args.num_key_value_heads, args.num_local_experts
        problem = split_problem(args, size)
        if problem:
            raise ModelLoadError(
                f"This model cannot be split across {size} processes: {problem}. "
                f"Use a number of processes that divides {math.gcd(H, E)}."
            )
        per_q, per_e = H // size, E // size
        q0 = rank * per_q
        if Hk >= size:
            per_kv = Hk // size
            kv = (rank * per_kv, (rank + 1) * per_kv)
        else:  # fewer kv heads than ranks: each rank keeps a copy of the one its heads read
            group = H // Hk
            kv = (q0 // group, q0 // group + 1)
        return cls(
            rank, size, (q0, q0 + per_q), kv, (rank * per_e, (rank + 1) * per_e), args.head_dim
        )

    def slice_of(self, name: str) -> Slice | None:
        """This rank's part of tensor `name`, or None when the rank holds it whole."""
        D = self.head_dim
        if name.endswith(("q_proj.weight", "q_proj.bias")):
            return Slice(0, self.q_heads[0] * D, self.q_heads[1] * D)
        if name.endswith(("k_proj.weight", "k_proj.bias", "v_proj.weight", "v_proj.bias")):
            return Slice(0, self.kv_heads[0] * D, self.kv_heads[1] * D)
        if name.endswith("o_proj.weight"):
            return Slice(1, self.q_heads[0] * D, self.q_heads[1] * D)
        if name.endswith("self_attn.sinks"):
            return Slice(0, *self.q_heads)
        if ".mlp.experts." in name:
            return Slice(0, *self.experts)
        return None

    def holds(self, name: str) -> bool:
        """False for tensors this rank never reads."""
        return self.rank == 0 or name != UNEMBEDDING

    def zeroed(self, name: str) -> bool:
        """Tensors whose values this rank must not add: o_proj's bias is added by rank 0 alone."""
        return self.rank != 0 and name.endswith("o_proj.bias")

    def shapes(self, args: ModelArgs) -> dict[str, tuple[tuple[int, ...], str]]:
        """Name -> (shape on this rank, safetensors dtype) of every tensor the rank holds."""
        out = {}
        for name, (shape, dtype) in expected_tensors(args).items():
            if not self.holds(name):
                continue
            part = self.slice_of(name)
            if part is not None:
                shape = (*shape[: part.axis], part.stop - part.start, *shape[part.axis + 1 :])
            out[name] = (shape, dtype)
        return out

    def weight_bytes(self, args: ModelArgs, dtype: str) -> int:
        """Bytes of this rank's weights once loaded: MXFP4 bytes as stored, the rest in `dtype`."""
        b = _DTYPE_BYTES[dtype]
        return sum(
            math.prod(shape) * (1 if kind == "U8" else b)
            for shape, kind in self.shapes(args).values()
        )


def split_problem(args: ModelArgs, size: int) -> str | None:
    """Why `args` cannot be split `size` ways (None: it can)."""
    H, Hk, E = args.num_attention_heads, args.num_key_value_heads, args.num_local_experts
    if size < 1:
        return f"{size} is not a number of processes"
    if H % size:
        return f"its {H} attention heads do not divide by {size}"
    if E % size:
        return f"its {E} experts do not divide by {size}"
    if Hk >= size and Hk % size:
        return f"its {Hk} key/value heads do not divide by {size}"
    if Hk < size and size % Hk:
        return f"{size} is not a multiple of its {Hk} key/value heads"
    return None
