"""Precision profiles: how the weights other than the experts are held in memory.

Experts always stay in the checkpoint's MXFP4 bytes. What a profile changes is the rest: the
attention projections and the unembedding (dense, 2.3 GiB in bf16 for 20b), and whether the
embedding table (1.08 GiB) lives in MLX memory at all: only the rows of the tokens being processed
are needed, so the lean profiles read them from the memory-mapped checkpoint instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrecisionProfile:
    name: str
    title: str
    attention_bits: int | None  # None: the activation dtype (bf16 on a GPU)
    unembedding_bits: int | None
    embedding_in_mlx: bool
    group_size: int = 64  # affine quantization groups, MLX's default
    kv_bits: int | None = None  # None: KV cache in the activation dtype

    def __post_init__(self) -> None:
        for bits in (self.attention_bits, self.unembedding_bits, self.kv_bits):
            if bits not in (None, 4, 5, 6, 8):
                raise ValueError(f"unsupported bit width {bits}")


PROFILES: dict[str, PrecisionProfile] = {
    p.name: p
    for p in (
        PrecisionProfile("full", "Full precision (bf16)", None, None, embedding_in_mlx=True),
        # 20b on a 16 GB Mac: experts take 9.47 GiB of a 10.5 GiB budget. 8-bit attention
        # (0.63 GiB) plus a 4-bit unembedding (0.30 GiB) would overshoot it; 6-bit attention
        # (0.48 GiB) and an 8-bit KV cache (0.10 GiB at 8k tokens instead of 0.19) leave room for
        # the activations: 9.47 + 0.48 + 0.30 + 0.10 + 0.14 = 10.49 GiB (see the planner).
        PrecisionProfile("16gb", "16 GB Mac", 6, 4, embedding_in_mlx=False, kv_bits=8),
        PrecisionProfile("compact", "Compact", 4, 4, embedding_in_mlx=False, kv_bits=8),
    )
}


def get_profile(name: str) -> PrecisionProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown precision profile {name!r}; known: {sorted(PROFILES)}") from None
