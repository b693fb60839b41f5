"""Token sampling settings and the sampler built from them (mlx-lm's samplers, seedable)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import mlx.core as mx

# The settings are plain data the app builds on its own thread; MLX is imported only when a
# sampler is made, on the engine thread.
Sampler: TypeAlias = "Callable[[mx.array], mx.array]"


@dataclass(frozen=True)
class SamplingSettings:
    """OpenAI recommends temperature 1.0 and top-p 1.0 for gpt-oss; temperature 0 means greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")


GREEDY = SamplingSettings(temperature=0.0)


def make_sampler(settings: SamplingSettings) -> Sampler:
    """A function from log-probabilities (B, V) to token ids (B,).

    Seeding happens here, once per generation, so two runs with the same seed draw the same tokens;
    this touches MLX's global generator, which is fine because one thread owns MLX.
    """
    import mlx.core as mx

    from engine.mlx_lm_parts import make_sampler as _mlx_lm_sampler

    if settings.seed is not None:
        mx.random.seed(settings.seed)
    return _mlx_lm_sampler(temp=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
