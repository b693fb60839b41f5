"""Rotary position embedding with YaRN context extension, as gpt-oss computes it.

YaRN: https://arxiv.org/abs/2309.00071 ("NTK-by-parts" interpolation plus attention concentration).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from engine.config import YarnScaling


def yarn_correction_range(head_dim: int, theta: float, scaling: YarnScaling) -> tuple[float, float]:
    """The dimension-pair range over which YaRN blends from extrapolation to interpolation.

    Pairs below `low` rotate more than beta_fast times within the original context and keep their
    frequency; pairs above `high` rotate less than beta_slow times and are interpolated.
    """
    d_half = head_dim / 2
    ctx = scaling.original_max_position_embeddings

    def pair_for_rotations(rotations: float) -> float:
        return d_half * math.log(ctx / (rotations * 2 * math.pi)) / math.log(theta)

    low, high = pair_for_rotations(scaling.beta_fast), pair_for_rotations(scaling.beta_slow)
    if scaling.truncate:
        # What mlx-lm always does; gpt-oss's config says not to (vLLM #27722 is the same bug).
        low, high = math.floor(low), math.ceil(high)
    return low, high


def rope_inv_freq(
    head_dim: int, theta: float, scaling: YarnScaling | None
) -> tuple[np.ndarray, float]:
    """Inverse frequencies (head_dim/2,) in float64 and the YaRN concentration factor.

    Shapes: returns (D/2,) angular speed per position for each rotated pair.
    """
    exponents = np.arange(0, head_dim, 2, dtype=np.float64) / head_dim
    extrapolation = 1.0 / theta**exponents
    if scaling is None or scaling.factor <= 1.0:
        return extrapolation, 1.0
    interpolation = extrapolation / scaling.factor
    low, high = yarn_correction_range(head_dim, theta, scaling)
    ramp = np.clip((np.arange(head_dim // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    inv_freq = interpolation * ramp + extrapolation * (1.0 - ramp)
    concentration = 0.1 * math.log(scaling.factor) + 1.0
    return inv_freq, concentration


class YarnRope:
    """Applies gpt-oss's half-split ("NeoX") RoPE with YaRN frequencies to (B, H, L, D) arrays.

    The concentration factor multiplies cos and sin for both q and k in the reference, so it scales
    every attention logit by concentration**2; `logit_scale` hands that to the attention instead.
    """

    def __init__(self, head_dim: int, theta: float, scaling: YarnScaling | None) -> None:
        inv_freq, concentration = rope_inv_freq(head_dim, theta, scaling)
        self.head_dim = head_dim
        # mx.fast.rope takes periods: the reciprocal of the angular speed.
        self._periods = mx.array((1.0 / inv_freq).astype(np.float32))
        self.logit_scale = concentration * concentration

    def __call__(self, x: mx.array, offset: int) -> mx.array:
        return mx.fast.rope(
            x,
            self.head_dim,
            traditional=False,
            base=None,
            scale=1.0,
            offset=offset,
            freqs=self._periods,
        )
