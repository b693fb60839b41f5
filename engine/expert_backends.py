"""Which expert backend runs: the custom Metal kernels or MLX's built-in ops, chosen by speed.

OSS_DESK_EXPERTS=auto (default): on a Metal device the custom kernels are built and checked against
MLX's gather_qmm on a small problem; if they agree, both paths are timed at the loaded model's
shapes for decode (1 token) and prefill (512 tokens) and the faster one runs each phase. The choice
is cached per chip, macOS, MLX version, kernel sources and shapes, so timing happens once.
=mlx forces MLX's ops; =metal forces the custom kernels without the self-test (through the CPU
emulator where there is no Metal: slow, meant for tests).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import mlx.core as mx
import numpy as np

from engine.experts import ExpertBackend, ExpertWeights, mlx_experts
from metal_kernels.dispatch import (
    BackendChoice,
    emulator_kernel,
    metal_available,
    record_choice,
)
from metal_kernels.mxfp4_moe import DECODE_MAX_TOKENS, MakeKernel, MoeKernels, Mxfp4Matrix
from metal_kernels.mxfp4_moe import source_hash as kernel_source_hash

log = logging.getLogger(__name__)
ENV = "OSS_DESK_EXPERTS"
SELF_TEST_TOLERANCE = 1e-3  # relative to the output's largest magnitude, in float32
PHASE_TOKENS = {"decode": 1, "prefill": 512}
CACHE_VERSION = 1

# (backend, tokens, weights, experts per token) -> seconds per call
Timer = Callable[[ExpertBackend, int, ExpertWeights, int], float]


class KernelExperts:
    """The engine's expert backend on top of the custom kernels (which take plain arrays)."""

    def __init__(self, kernels: MoeKernels) -> None:
        self.kernels = kernels

    def __call__(
        self, x: mx.array, indices: mx.array, route_weights: mx.array, w: ExpertWeights
    ) -> mx.array:
        gate_up = Mxfp4Matrix(w.gate_up_blocks, w.gate_up_scales, w.gate_up_bias)
        down = Mxfp4Matrix(w.down_blocks, w.down_scales, w.down_bias)
        return self.kernels(x, indices, route_weights, gate_up, down, w.swiglu_limit)


class PhaseExperts:
    """One backend for decode-sized calls, another for prefill-sized ones."""

    def __init__(self, decode: ExpertBackend, prefill: ExpertBackend) -> None:
        self.decode = decode
        self.prefill = prefill

    def __call__(
        self, x: mx.array, indices: mx.array, route_weights: mx.array, w: ExpertWeights
    ) -> mx.array:
        path = self.decode if x.shape[0] <= DECODE_MAX_TOKENS else self.prefill
        return path(x, indices, route_weights, w)


def choose_backend(mode: str | None = None, make_kernel: MakeKernel | None = None) -> BackendChoice:
    """Decides what can run, once per model load; `make_kernel` overrides the kernel factory.

    In auto mode a custom path that passes the self-test comes back with `timed=True`: call
    `choose_by_speed` once the weights are loaded.
    """
    mode = (mode or os.environ.get(ENV) or "auto").lower()
    if mode not in ("auto", "mlx", "metal"):
        raise ValueError(f"{ENV} must be auto, mlx or metal, not {mode!r}")
    choice = _decide(mode, make_kernel)
    log.info("expert backend: %s (%s)", choice.name, choice.reason)
    record_choice(choice)
    return choice


def _decide(mode: str, make_kernel: MakeKernel | None) -> BackendChoice:
    if mode == "mlx":
        return BackendChoice("mlx", mlx_experts, f"{ENV}=mlx asks for MLX's built-in kernels.")
    on_metal = make_kernel is None and metal_available()
    factory: MakeKernel | None = make_kernel or (mx.fast.metal_kernel if on_metal else None)
    name = "metal" if on_metal else "emulated-metal"
    if mode == "metal":
        kernels = KernelExperts(MoeKernels(factory or emulator_kernel()))
        return BackendChoice(name, kernels, f"{ENV}=metal forces the custom kernels.")
    if factory is None:
        return BackendChoice("mlx", mlx_experts, "No Metal device: MLX's CPU kernels are used.")
    try:
        backend = KernelExperts(MoeKernels(factory))
        error = self_test(backend)
    except Exception as e:  # a compile failure surfaces here, whatever its type
        error = f"the custom kernels failed to build or run ({type(e).__name__}: {e})"
    if error:
        log.warning("custom Metal kernels disabled: %s", error)
        return BackendChoice("mlx", mlx_experts, f"Custom kernels disabled: {error}.")
    return BackendChoice(name, backend, "Self-test passed.", timed=True)


def self_test(backend: ExpertBackend, seed: int = 0) -> str | None:
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
        got = np.array(backend(x, idx, route, w))
        want = np.array(mlx_experts(x, idx, route, w))
        if got.shape != want.shape:
            return f"results have shape {got.shape} instead of {want.shape} at {n} tokens"
        if not np.isfinite(got).all():  # NaN would slip through a plain `err > tolerance`
            return f"results hold NaN or infinity at {n} tokens"
        scale = float(np.abs(want).max()) or 1.0
        err = float(np.abs(got - want).max()) / scale
        if not err <= SELF_TEST_TOLERANCE:
            return f"results differ from MLX's by {err:.2e} (relative) at {n} tokens"
    return None


def measure(backend: ExpertBackend, tokens: int, w: ExpertWeights, top_k: int) -> float:
    """Median seconds of one call on random activations at the weights' shapes."""
    rng = np.random.default_rng(tokens)
    E, D = w.gate_up_blocks.shape[0], w.down_blocks.shape[1]
    x = mx.array(rng.normal(0, 1, (tokens, D)).astype(np.float32)).astype(w.gate_up_bias.dtype)
    idx = mx.array(np.argsort(rng.random((tokens, E)), axis=1)[:, :top_k].astype(np.uint32))
    route = mx.softmax(mx.array(rng.normal(0, 1, (tokens, top_k)).astype(np.float32)), axis=-1)
    mx.eval(backend(x, idx, route, w))  # warm-up: compiles
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        mx.eval(backend(x, idx, route, w))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def default_cache_path() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("OSS_DESK_CACHE_DIR") or user_cache_dir("OSS Desk")) / (
        "expert-backend.json"
    )


def _mlx_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlx")
    except PackageNotFoundError:
        return "unknown"


def machine_key(w: ExpertWeights, top_k: int) -> str:
    """Chip, macOS, MLX version, kernel sources and shapes: what a cached choice depends on."""
    info = mx.device_info() if metal_available() else {}
    parts = {
        "chip": str(info.get("device_name", platform.processor() or platform.machine())),
        "os": platform.mac_ver()[0] or platform.platform(),
        "mlx": _mlx_version(),
        "kernels": kernel_source_hash(),
        "shapes": [list(w.gate_up_blocks.shape), list(w.down_blocks.shape), top_k],
        "dtype": str(w.gate_up_bias.dtype),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def choose_by_speed(
    choice: BackendChoice,
    w: ExpertWeights,
    top_k: int,
    *,
    timer: Timer = measure,
    cache_path: Path | None = None,
    key: str | None = None,
) -> BackendChoice:
    """Times the custom path against MLX's per phase (or reads a cached verdict) and keeps the
    faster of each. Does nothing unless `choice.timed` (auto mode after a passed self-test)."""
    if not choice.timed:
        return choice
    path = cache_path or default_cache_path()
    key = key or machine_key(w, top_k)
    timings = _read_cache(path).get(key)
    cached = timings is not None
    if timings is None:
        paths = {"custom": choice.backend, "mlx": mlx_experts}
        timings = {
            phase: {name: timer(fn, n, w, top_k) for name, fn in paths.items()}
            for phase, n in PHASE_TOKENS.items()
        }
        _write_cache(path, key, timings)
    faster = {phase: min(t, key=t.__getitem__) for phase, t in timings.items()}
    label = {"custom": choice.name, "mlx": "mlx"}
    backends = {"custom": choice.backend, "mlx": mlx_experts}
    if faster["decode"] == faster["prefill"]:
        name = label[faster["decode"]]
        backend: ExpertBackend = backends[faster["decode"]]
    else:
        name = f"{label[faster['decode']]} decode, {label[faster['prefill']]} prefill"
        backend = PhaseExperts(backends[faster["decode"]], backends[faster["prefill"]])
    reason = (
        f"Self-test passed; faster path per phase {'(cached)' if cached else '(measured)'}: "
        f"{timings_text(timings)}."
    )
    result = replace(choice, name=name, backend=backend, reason=reason, timings=timings)
    log.info("expert backend by speed: %s (%s)", result.name, result.reason)
    record_choice(result)
    return result


def timings_text(timings: Mapping[str, Mapping[str, float]]) -> str:
    """e.g. "decode (1 token) custom 0.41 ms, MLX 0.52 ms; prefill (512 tokens) ..."."""
    return "; ".join(
        f"{phase} ({PHASE_TOKENS.get(phase, '?')} token{'s' if phase != 'decode' else ''}) "
        f"custom {t['custom'] * 1e3:.2f} ms, MLX {t['mlx'] * 1e3:.2f} ms"
        for phase, t in timings.items()
    )


def _read_cache(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: time again
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _write_cache(path: Path, key: str, timings: dict[str, dict[str, float]]) -> None:
    entries = _read_cache(path)
    entries[key] = timings
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": entries}), "utf-8")
        os.replace(tmp, path)  # atomic: a crash never leaves half a file
    except OSError as e:  # a read-only cache folder costs a re-measure next time, nothing more
        log.warning("could not cache the expert backend choice in %s: %s", path, e)
