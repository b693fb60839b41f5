"""OSS Desk's engine: gpt-oss in MLX. Qt-free; the app uses only what this module exports.

No mx.array crosses this boundary: callers pass and receive ints, strings, numpy arrays and frozen
dataclasses.
"""

from engine.config import ModelArgs
from engine.errors import (
    CacheTrimError,
    ContextOverflowError,
    EngineError,
    KernelUnavailableError,
    ModelLoadError,
    TokenizerError,
)
from engine.generate import Finished, GenerationStats, Token
from engine.inference import LoadedModel, load_model
from engine.sampling import GREEDY, SamplingSettings

__all__ = [
    "GREEDY",
    "CacheTrimError",
    "ContextOverflowError",
    "EngineError",
    "Finished",
    "GenerationStats",
    "KernelUnavailableError",
    "LoadedModel",
    "ModelArgs",
    "ModelLoadError",
    "SamplingSettings",
    "Token",
    "TokenizerError",
    "load_model",
]
