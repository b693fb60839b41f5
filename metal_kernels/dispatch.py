"""Which kernel factory this machine has, and a record of the last expert-backend decision.

The decision itself (self-test, timing, cache) belongs to the engine (engine.expert_backends): this
package knows no model. The record stays here so that code holding only this package, such as the
bundle's self-test, can name the backend in use without importing the engine's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx

from metal_kernels.mxfp4_moe import MakeKernel


@dataclass(frozen=True)
class BackendChoice:
    name: str  # "metal", "emulated-metal", "mlx", or "<decode> decode, <prefill> prefill"
    backend: Callable[..., Any]
    reason: str  # one sentence for logs and the About window
    # seconds per launch by phase ("decode", "prefill") and path ("custom", "mlx"), when timed
    timings: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    timed: bool = False  # auto mode, self-test passed: the engine should time both paths


_last_choice: BackendChoice | None = None


def record_choice(choice: BackendChoice) -> None:
    global _last_choice
    _last_choice = choice


def last_choice() -> BackendChoice | None:
    """The most recent decision, for diagnostics."""
    return _last_choice


def metal_available() -> bool:
    return bool(mx.metal.is_available())


def emulator_kernel() -> MakeKernel:
    from metal_kernels.emulator import metal_kernel

    return metal_kernel
