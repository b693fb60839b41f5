"""Choosing the expert backend: self-test, fallback, the environment switch, whole-model parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import metal_kernels.mxfp4_moe as moe
from engine import load_model
from engine.experts import mlx_experts
from metal_kernels.dispatch import choose_backend, last_choice, self_test
from metal_kernels.emulator import metal_kernel
from metal_kernels.mxfp4_moe import MoeKernels


def test_without_metal_auto_uses_mlx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSS_DESK_EXPERTS", raising=False)
    choice = choose_backend()
    assert choice.name == "mlx" and choice.backend is mlx_experts
    assert "No Metal device" in choice.reason
    assert last_choice() == choice


def test_self_test_passes_for_the_real_kernels() -> None:
    assert self_test(MoeKernels(metal_kernel)) is None
    choice = choose_backend("auto", make_kernel=metal_kernel)
    assert choice.name == "emulated-metal" and isinstance(choice.backend, MoeKernels)


def test_wrong_results_disable_the_custom_path(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = moe.kernel_source("mxfp4w_moe_gemv_combine.metal").replace(
        "acc += r * part;", "acc += 2.0f * r * part;"
    )
    real = moe.kernel_source

    def sabotaged(name: str) -> str:
        return broken if name == "mxfp4w_moe_gemv_combine.metal" else real(name)

    monkeypatch.setattr(moe, "kernel_source", sabotaged)
    choice = choose_backend("auto", make_kernel=metal_kernel)
    assert choice.name == "mlx"
    assert "Custom kernels disabled: results differ" in choice.reason


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
    assert choose_backend().name == "emulated-metal"
    monkeypatch.setenv("OSS_DESK_EXPERTS", "fastest")
    with pytest.raises(ValueError, match="auto, mlx or metal"):
        choose_backend()


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
