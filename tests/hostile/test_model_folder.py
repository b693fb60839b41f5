"""Hostile model folders: each is refused with a clear ModelLoadError, quickly, by the engine's
load_model and by the setup dialog's folder check, and the runner behind
benchmarks/hostile_models.py reports them as refused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.memory_check import check_model_folder, describe_fit
from engine import MachineBudget, ModelLoadError, load_model
from engine.testing.hostile_models import (
    FOLDER_CASES,
    INDEX,
    FolderCase,
    make_folder,
    run_all,
    write_base,
)

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 3.0  # each refusal; they take milliseconds, a regression takes forever
GiB = 2**30
MAC_16GB = MachineBudget(16 * 10**9, 16 * 10**9, int(10.67 * GiB), reserve=0)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_base(tmp_path_factory.mktemp("hostile") / "base")


@pytest.mark.timeout(30)  # a FIFO opened without O_NONBLOCK would block here for good
@pytest.mark.parametrize("case", FOLDER_CASES, ids=lambda c: c.name)
def test_the_loader_refuses_it_clearly(case: FolderCase, base: Path, tmp_path: Path) -> None:
    folder = make_folder(case, base, tmp_path / case.name)
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError) as refused:
        load_model(folder, dtype="float32")
    assert time.perf_counter() - t0 < LIMIT_S
    assert case.expect in str(refused.value)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", FOLDER_CASES, ids=lambda c: c.name)
def test_the_setup_check_answers_in_words(case: FolderCase, base: Path, tmp_path: Path) -> None:
    """What the setup dialog runs on the UI thread: no exception, no hang, a message naming the
    problem for what it reads (config.json and the index; headers are the loader's)."""
    folder = make_folder(case, base, tmp_path / case.name)
    t0 = time.perf_counter()
    problem = check_model_folder(folder)
    fit = describe_fit(folder, budget=MAC_16GB)
    assert time.perf_counter() - t0 < LIMIT_S
    if case.level == "config":
        assert problem is not None and case.expect in problem
        assert not fit.fits and case.expect in fit.message
    elif case.level == "index":
        assert problem is not None and INDEX in problem and case.expect in problem, problem
        assert "ownload the model again" in problem
    elif case.name.startswith("shard-"):
        assert problem is not None and "model-00001-of-00002.safetensors is missing" in problem
    else:
        assert problem is None  # only the loader reads the headers
        assert fit.fits


def test_the_runner_reports_each_case_with_time_and_memory(tmp_path: Path) -> None:
    rows = run_all(tmp_path, only={"layers-1e9", "overlapping-tensors", "name-nul"})
    assert [r.case for r in rows] == ["layers-1e9", "overlapping-tensors", "name-nul"]
    for row in rows:
        assert row.outcome.startswith("ok: "), row
        assert 0 < row.seconds < LIMIT_S and 0 <= row.peak_mib < 64
    assert "ModelLoadError" in rows[0].outcome and "InvalidListing" in rows[2].outcome


def test_the_benchmark_prints_the_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.hostile_models",
            "--only",
            "config-fifo",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["case", "outcome", "seconds", "peak", "MiB"]
    assert lines[-2].startswith("config-fifo") and "ok: ModelLoadError" in lines[-2]
    assert lines[-1] == "1 of 1 cases refused as expected."
