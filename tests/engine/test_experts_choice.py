"""Choosing the expert backend: self-test, fallback, the environment switch, speed, the cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

import metal_kernels.mxfp4_moe as moe
from engine import load_model
from engine.expert_backends import (
    KernelExperts,
    PhaseExperts,
    choose_backend,
    choose_by_speed,
    machine_key,
    self_test,
)
from engine.experts import ExpertBackend, ExpertWeights, mlx_experts
from metal_kernels.dispatch import BackendChoice, last_choice
from metal_kernels.emulator import metal_kernel
from metal_kernels.mxfp4_moe import MoeKernels


def test_without_metal_auto_uses_mlx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSS_DESK_EXPERTS", raising=False)
    choice = choose_backend()
    assert choice.name == "mlx" and choice.backend is mlx_experts and not choice.timed
    assert "No Metal device" in choice.reason
    assert last_choice() == choice


def test_self_test_passes_for_the_real_kernels() -> None:
    assert self_test(KernelExperts(MoeKernels(metal_kernel))) is None
    choice = choose_backend("auto", make_kernel=metal_kernel)
    assert choice.name == "emulated-metal" and isinstance(choice.backend, KernelExperts)
    assert choice.timed  # auto mode: the engine times it against MLX next


def _sabotage(monkeypatch: pytest.MonkeyPatch, name: str, old: str, new: str) -> None:
    real = moe.kernel_source
    broken = real(name).replace(old, new)
    assert broken != real(name), f"{old!r} is not in {name}"
    monkeypatch.setattr(moe, "kernel_source", lambda n: broken if n == name else real(n))


def test_wrong_results_disable_the_custom_path(monkeypatch: pytest.MonkeyPatch) -> None:
    _sabotage(
        monkeypatch,
        "mxfp4w_moe_gemv_combine.metal",
        "acc[j] += r * part[j];",
        "acc[j] += 2.0f * r * part[j];",
    )
    choice = choose_backend("auto", make_kernel=metal_kernel)
    assert choice.name == "mlx" and not choice.timed
    assert "Custom kernels disabled: results differ" in choice.reason


def check_self_test_rejects_nan(self_test: Callable[[ExpertBackend], str | None]) -> None:
    """A NaN anywhere must fail the self-test: `nan > tolerance` is False, so a careless compare
    would pass it. (Also run against a planted bug by tests/metal_kernels/test_mutants.py.)"""

    def nan_in_one_place(x: mx.array, idx: mx.array, route: mx.array, w: ExpertWeights) -> mx.array:
        y = np.array(mlx_experts(x, idx, route, w))
        y[0, 3] = np.nan
        return mx.array(y)

    def all_nan(x: mx.array, idx: mx.array, route: mx.array, w: ExpertWeights) -> mx.array:
        return mx.full((x.shape[0], x.shape[1]), np.nan)

    assert "NaN" in (self_test(nan_in_one_place) or "")
    assert "NaN" in (self_test(all_nan) or "")
    assert self_test(mlx_experts) is None


def test_self_test_rejects_nan() -> None:
    check_self_test_rejects_nan(self_test)


def test_a_compile_error_disables_the_custom_path(monkeypatch: pytest.MonkeyPatch) -> None:
    real = moe.kernel_source
    monkeypatch.setattr(
        moe, "kernel_source", lambda n: real(n) + ("\n  this is not metal;" if "gemm" in n else "")
    )
    choice = choose_backend("auto", make_kernel=metal_kernel)
    assert choice.name == "mlx" and "failed to build or run" in choice.reason


def test_environment_forces_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSS_DESK_EXPERTS", "mlx")
    assert choose_backend(make_kernel=metal_kernel).name == "mlx"
    monkeypatch.setenv("OSS_DESK_EXPERTS", "metal")
    forced = choose_backend()
    assert forced.name == "emulated-metal" and not forced.timed
    monkeypatch.setenv("OSS_DESK_EXPERTS", "fastest")
    with pytest.raises(ValueError, match="auto, mlx or metal"):
        choose_backend()


def _weights() -> ExpertWeights:
    rng = np.random.default_rng(0)
    E, D, I = 4, 64, 64
    return ExpertWeights(
        mx.array(rng.integers(0, 2**32, (E, 2 * I, D // 8), dtype=np.uint32)),
        mx.array(rng.integers(118, 125, (E, 2 * I, D // 32), dtype=np.uint8)),
        mx.zeros((E, 2 * I)),
        mx.array(rng.integers(0, 2**32, (E, D, I // 8), dtype=np.uint32)),
        mx.array(rng.integers(118, 125, (E, D, I // 32), dtype=np.uint8)),
        mx.zeros((E, D)),
        7.0,
    )


class FakeTimer:
    """Seconds per (path, tokens): the custom backend is told apart from MLX's by identity."""

    def __init__(self, custom: dict[int, float], mlx: dict[int, float]) -> None:
        self.table = {"custom": custom, "mlx": mlx}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, backend: object, tokens: int, w: ExpertWeights, top_k: int) -> float:
        path = "mlx" if backend is mlx_experts else "custom"
        self.calls.append((path, tokens))
        return self.table[path][tokens]


def _candidate() -> BackendChoice:
    def custom(*args: object) -> mx.array:
        raise AssertionError("not run: timings are fake")

    return BackendChoice("metal", custom, "Self-test passed.", timed=True)


@pytest.mark.parametrize(
    ("custom", "mlx", "name"),
    [
        ({1: 1e-3, 512: 0.02}, {1: 2e-3, 512: 0.03}, "metal"),
        ({1: 3e-3, 512: 0.05}, {1: 2e-3, 512: 0.03}, "mlx"),
        ({1: 1e-3, 512: 0.05}, {1: 2e-3, 512: 0.03}, "metal decode, mlx prefill"),
        ({1: 3e-3, 512: 0.02}, {1: 2e-3, 512: 0.03}, "mlx decode, metal prefill"),
    ],
)
def test_auto_picks_the_faster_path_per_phase(
    tmp_path: Path, custom: dict[int, float], mlx: dict[int, float], name: str
) -> None:
    candidate = _candidate()
    timer = FakeTimer(custom, mlx)
    choice = choose_by_speed(candidate, _weights(), 4, timer=timer, cache_path=tmp_path / "c.json")
    assert choice.name == name
    assert sorted(timer.calls) == [("custom", 1), ("custom", 512), ("mlx", 1), ("mlx", 512)]
    assert choice.timings["decode"] == {"custom": custom[1], "mlx": mlx[1]}
    assert f"custom {custom[512] * 1e3:.2f} ms, MLX {mlx[512] * 1e3:.2f} ms" in choice.reason
    assert last_choice() == choice
    if name == "metal":
        assert choice.backend is candidate.backend
    elif name == "mlx":
        assert choice.backend is mlx_experts
    else:
        assert isinstance(choice.backend, PhaseExperts)
        want = candidate.backend if name.startswith("metal") else mlx_experts
        assert choice.backend.decode is want


def test_phase_backend_routes_by_token_count() -> None:
    seen: list[str] = []

    def tag(label: str) -> Callable[..., mx.array]:
        def backend(x: mx.array, *args: object) -> mx.array:
            seen.append(label)
            return x

        return backend

    both = PhaseExperts(tag("decode"), tag("prefill"))
    w = _weights()
    idx = mx.zeros((1, 4), dtype=mx.uint32)
    both(mx.zeros((1, 64)), idx, mx.zeros((1, 4)), w)
    both(mx.zeros((moe.DECODE_MAX_TOKENS, 64)), idx, mx.zeros((1, 4)), w)
    both(mx.zeros((moe.DECODE_MAX_TOKENS + 1, 64)), idx, mx.zeros((1, 4)), w)
    assert seen == ["decode", "decode", "prefill"]


def test_the_choice_is_cached_per_machine_and_sources(tmp_path: Path) -> None:
    cache = tmp_path / "sub" / "expert-backend.json"
    fast_custom = FakeTimer({1: 1e-3, 512: 0.02}, {1: 2e-3, 512: 0.03})
    first = choose_by_speed(_candidate(), _weights(), 4, timer=fast_custom, cache_path=cache)
    assert "(measured)" in first.reason and len(fast_custom.calls) == 4
    # Same key: the cached verdict, no timing at all (a timer that would flip the choice is unused)
    slow_custom = FakeTimer({1: 9.0, 512: 9.0}, {1: 1e-3, 512: 1e-3})
    again = choose_by_speed(_candidate(), _weights(), 4, timer=slow_custom, cache_path=cache)
    assert again.name == "metal" and "(cached)" in again.reason and slow_custom.calls == []
    # Another key (other chip, macOS, MLX or kernel sources): measured again
    other = choose_by_speed(
        _candidate(), _weights(), 4, timer=slow_custom, cache_path=cache, key="other"
    )
    assert other.name == "mlx" and len(slow_custom.calls) == 4
    assert len(json.loads(cache.read_text())["entries"]) == 2
    cache.write_text("{not json")  # damaged: measured again, never a crash
    assert choose_by_speed(_candidate(), _weights(), 4, timer=fast_custom, cache_path=cache)


def test_cache_key_changes_with_the_kernel_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    w = _weights()
    before = machine_key(w, 4)
    assert machine_key(w, 4) == before
    assert machine_key(w, 2) != before  # shapes are part of it
    real = moe.kernel_source
    monkeypatch.setattr(moe, "kernel_source", lambda n: real(n) + "\n// tuned")
    assert machine_key(w, 4) != before


def test_untimed_choices_pass_through(tmp_path: Path) -> None:
    mlx_choice = BackendChoice("mlx", mlx_experts, "No Metal device.")
    timer = FakeTimer({}, {})
    assert choose_by_speed(mlx_choice, _weights(), 4, timer=timer, cache_path=tmp_path / "c") is (
        mlx_choice
    )
    assert timer.calls == []


def test_whole_model_logits_equal_with_emulated_kernels(tiny_checkpoint: Path) -> None:
    """Decode-sized and prefill-sized inputs through the custom kernels vs MLX's gather_qmm."""
    ids = [int(t) for t in np.random.default_rng(5).integers(0, 512, size=40)]
    mlx_model = load_model(tiny_checkpoint, expert_backend="mlx")
    kernel_model = load_model(tiny_checkpoint, expert_backend="metal")
    assert kernel_model.expert_backend == "emulated-metal"
    np.testing.assert_allclose(kernel_model.logits(ids), mlx_model.logits(ids), atol=2e-5)
    np.testing.assert_allclose(kernel_model.logits(ids[:3]), mlx_model.logits(ids[:3]), atol=2e-5)


def test_mac_benchmark_exits_cleanly_without_metal(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.kernels_mac import main

    assert main([]) == 0
    assert "No Metal GPU here" in capsys.readouterr().out
