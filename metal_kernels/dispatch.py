"""Which expert backend runs: the custom Metal kernels after a self-test, or MLX's built-in ops.

OSS_DESK_EXPERTS=auto (default) uses the custom kernels on a Metal device if they compile and agree
with MLX's gather_qmm on a small problem, and MLX's ops otherwise; =mlx forces MLX's ops; =metal
forces the custom kernels without the self-test (through the CPU emulator where there is no Metal,
which is slow and meant for tests). Whatever happens is logged and kept for the app's diagnostics.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from engine.experts import ExpertBackend, ExpertWeights, mlx_experts
from metal_kernels.mxfp4_moe import DECODE_MAX_TOKENS, MakeKernel, MoeKernels

log = logging.getLogger(__name__)
ENV = "OSS_DESK_EXPERTS"
SELF_TEST_TOLERANCE = 1e-3  # relative to the output's largest magnitude, in float32


@dataclass(frozen=True)
class BackendChoice:
    name: str  # "metal", "emulated-metal" or "mlx"
    backend: ExpertBackend
    reason: str  # one sentence for logs and the About window


_last_choice: BackendChoice | None = None


def last_choice() -> BackendChoice | None:
    """The most recent decision, for diagnostics."""
    return _last_choice


def metal_available() -> bool:
    return bool(mx.metal.is_available())


def _emulator_kernel() -> MakeKernel:
    from metal_kernels.emulator import metal_kernel

    return metal_kernel


def choose_backend(mode: str | None = None, make_kernel: MakeKernel | None = None) -> BackendChoice:
    """Decides once per model load; `make_kernel` overrides the kernel factory (tests)."""
    global _last_choice
    mode = (mode or os.environ.get(ENV) or "auto").lower()
    if mode not in ("auto", "mlx", "metal"):
        raise ValueError(f"{ENV} must be auto, mlx or metal, not {mode!r}")
    choice = _decide(mode, make_kernel)
    log.info("expert backend: %s (%s)", choice.name, choice.reason)
    _last_choice = choice
    return choice


def _decide(mode: str, make_kernel: MakeKernel | None) -> BackendChoice:
    if mode == "mlx":
        return BackendChoice("mlx", mlx_experts, f"{ENV}=mlx asks for MLX's built-in kernels.")
    on_metal = make_kernel is None and metal_available()
    factory: MakeKernel | None = make_kernel or (mx.fast.metal_kernel if on_metal else None)
    if mode == "metal":
        factory = factory or _emulator_kernel()
        name = "metal" if on_metal else "emulated-metal"
        return BackendChoice(name, MoeKernels(factory), f"{ENV}=metal forces the custom kernels.")
    if factory is None:
        return BackendChoice("mlx", mlx_experts, "No Metal device: MLX's CPU kernels are used.")
    try:
        kernels = MoeKernels(factory)
        error = self_test(kernels)
    except Exception as e:  # a compile failure surfaces here, whatever its type
        error = f"the custom kernels failed to build or run ({type(e).__name__}: {e})"
    if error:
        log.warning("custom Metal kernels disabled: %s", error)
        return BackendChoice("mlx", mlx_experts, f"Custom kernels disabled: {error}.")
    return BackendChoice("metal" if on_metal else "emulated-metal", kernels, "Self-test passed.")


def self_test(kernels: Callable[..., mx.array], seed: int = 0) -> str | None:
    """Runs both paths (decode and prefill) on a small random problem; None if they agree."""
    rng = np.random.default_rng(seed)
    E, D, I = 4, 64, 64
    w = ExpertWeights(
        mx.array(rng.integers(0, 2**32, (E, 2 * I, D // 8), dtype=np.uint32)),
        mx.array(rng.integers(118, 125, (E, 2 * I, D // 32), dtype=np.uint8)),
        mx.array(rng.normal(0, 0.1, (E, 2 * I)).astype(np.float32)),
        mx.array(rng.integers(0, 2**32, (E, D, I // 8), dtype=np.uint32)),
        mx.array(rng.integers(118, 125, (E, D, I // 32), dtype=np.uint8)),
        mx.array(rng.normal(0, 0.1, (E, D)).astype(np.float32)),
        7.0,
    )
    for n in (1, DECODE_MAX_TOKENS + 5):
        x = mx.array(rng.normal(0, 1, (n, D)).astype(np.float32))
        idx = mx.array(np.argsort(rng.random((n, E)), axis=1)[:, :2].astype(np.uint32))
        route = mx.softmax(mx.array(rng.normal(0, 1, (n, 2)).astype(np.float32)), axis=-1)
        got = np.array(kernels(x, idx, route, w))
        want = np.array(mlx_experts(x, idx, route, w))
        scale = float(np.abs(want).max()) or 1.0
        err = float(np.abs(got - want).max()) / scale
        if not np.isfinite(err) or err > SELF_TEST_TOLERANCE:
            return f"results differ from MLX's by {err:.2e} (relative) at {n} tokens"
    return None
