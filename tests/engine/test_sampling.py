"""Samplers on hand-written distributions."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from engine.sampling import GREEDY, SamplingSettings, make_sampler

PROBS = [0.5, 0.3, 0.15, 0.05]


def _logprobs(probs: list[float]) -> mx.array:
    return mx.array([[math.log(p) for p in probs]])


def _draw(settings: SamplingSettings, n: int = 2000) -> np.ndarray:
    sampler = make_sampler(settings)
    lp = _logprobs(PROBS)
    return np.array([int(sampler(lp).item()) for _ in range(n)])  # type: ignore[arg-type]


def test_temperature_zero_is_argmax() -> None:
    assert set(_draw(GREEDY, 20).tolist()) == {0}


def test_temperature_one_follows_the_distribution() -> None:
    draws = _draw(SamplingSettings(seed=0), n=10_000)
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, PROBS, atol=0.025)


def test_top_p_cuts_the_tail() -> None:
    # 0.5 + 0.3 reaches 0.8: tokens 2 and 3 are outside a 0.75 nucleus
    draws = _draw(SamplingSettings(top_p=0.75, seed=0))
    assert set(draws.tolist()) == {0, 1}
    assert abs((draws == 0).mean() - 0.5 / 0.8) < 0.05


def test_seed_reproducibility() -> None:
    a = _draw(SamplingSettings(seed=42), 50)
    b = _draw(SamplingSettings(seed=42), 50)
    assert (a == b).all()


@pytest.mark.parametrize(
    "kwargs", [{"temperature": -1.0}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": -1}]
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SamplingSettings(**kwargs)  # type: ignore[arg-type]
