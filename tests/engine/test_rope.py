"""YaRN frequencies against the spec's values, the reference's own code, and mlx-lm's rounding."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from engine.config import YarnScaling
from engine.rope import YarnRope, rope_inv_freq, yarn_correction_range

# gpt-oss-20b's inv_freq as OpenAI's reference computes it (../shared/spec/gpt-oss-model.md §4)
SPEC_INV_FREQ = [1, .6890443, .4747821, .3271459, .2254180, .1553230, .1070244, .07374457,
                 .05081327, .03170570, .01933500, .01159205, .006794959, .003860359, .002093792,
                 .001052602, 4.564839e-4, 1.293187e-4, 3.830881e-5, 2.639647e-5, 1.818834e-5,
                 1.253257e-5, 8.635496e-6, 5.950239e-6, 4.099978e-6, 2.825067e-6, 1.946596e-6,
                 1.341291e-6, 9.242090e-7, 6.368209e-7, 4.387978e-7, 3.023511e-7]  # fmt: skip


def test_correction_range_is_not_rounded() -> None:
    low, high = yarn_correction_range(64, 150000.0, YarnScaling())
    assert low == pytest.approx(8.092779115512402, abs=1e-12)
    assert high == pytest.approx(17.39802450158856, abs=1e-12)
    assert yarn_correction_range(64, 150000.0, YarnScaling(truncate=True)) == (8, 18)


def test_inv_freq_and_concentration_match_the_spec() -> None:
    inv_freq, concentration = rope_inv_freq(64, 150000.0, YarnScaling())
    np.testing.assert_allclose(inv_freq, SPEC_INV_FREQ, rtol=2e-6)
    assert concentration == pytest.approx(0.1 * math.log(32) + 1)


def test_inv_freq_matches_openai_reference_code() -> None:
    from gpt_oss.torch.model import RotaryEmbedding

    rope = RotaryEmbedding(64, 150000, None, 4096, 32.0, 1.0, 32.0)
    concentration, inv_freq = rope._compute_concentration_and_inv_freq()
    ours, our_concentration = rope_inv_freq(64, 150000.0, YarnScaling())
    np.testing.assert_allclose(ours, inv_freq.numpy(), rtol=1e-6)
    assert our_concentration == pytest.approx(concentration)


def test_mlx_lm_rounds_the_range() -> None:
    """mlx-lm's YaRN equals ours only when ours rounds too (the bug the issue describes)."""
    from mlx_lm.models.rope_utils import initialize_rope

    scaling = {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
               "original_max_position_embeddings": 4096, "truncate": False}  # fmt: skip
    theirs = 1.0 / np.array(initialize_rope(64, 150000, False, scaling)._freqs)
    exact, _ = rope_inv_freq(64, 150000.0, YarnScaling())
    rounded, _ = rope_inv_freq(64, 150000.0, YarnScaling(truncate=True))
    np.testing.assert_allclose(theirs, rounded, rtol=1e-5)
    wrong = np.flatnonzero(np.abs(theirs / exact - 1) > 1e-3)
    assert wrong.tolist() == list(range(9, 18))


def test_rope_rotates_half_split_pairs() -> None:
    """Position p rotates pair (i, i + D/2) by p * inv_freq[i]: the reference's NeoX layout."""
    D = 16
    rope = YarnRope(D, 10000.0, None)
    x = np.random.default_rng(0).standard_normal((1, 1, 3, D)).astype(np.float32)
    out = np.array(rope(mx.array(x), offset=5))
    inv_freq, _ = rope_inv_freq(D, 10000.0, None)
    angle = (5 + np.arange(3))[:, None] * inv_freq[None]
    x1, x2 = x[0, 0, :, : D // 2], x[0, 0, :, D // 2 :]
    expected = np.concatenate(
        [x1 * np.cos(angle) - x2 * np.sin(angle), x2 * np.cos(angle) + x1 * np.sin(angle)], -1
    )
    np.testing.assert_allclose(out[0, 0], expected, atol=1e-5)
