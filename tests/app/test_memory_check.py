"""The memory check on simulated Macs, and the model-folder check on synthetic folders."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from app.memory_check import check_model_folder, describe_fit
from engine import MachineBudget
from engine.testing.synthetic import GPT_OSS_20B, GPT_OSS_120B, tiny_config, write_checkpoint
from engine.testing.synthetic_tokenizer import (
    synthetic_mergeable_ranks,
    write_synthetic_tokenizer,
    write_tiktoken_file,
)

GiB = 2**30
# A 16 GB Apple Silicon Mac: Metal lets the GPU keep about 10.7 GiB resident.
MAC_16GB = MachineBudget(16 * 10**9, 16 * 10**9, int(10.67 * GiB), reserve=0)
LINUX_32GB = MachineBudget(32 * GiB, 24 * GiB, None, reserve=0)


def config_folder(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_20b_fits_a_16gb_mac_with_the_16gb_profile(tmp_path: Path) -> None:
    fit = describe_fit(config_folder(tmp_path / "20b", GPT_OSS_20B), budget=MAC_16GB)
    assert fit.fits and fit.profile == "16gb"
    assert fit.max_context >= 8192
    assert fit.headline == (
        f"Fits this Mac with the 16 GB Mac profile, up to {fit.max_context:,} tokens of context."
    )
    assert "16 GB Mac" in fit.message
    lines = fit.details.splitlines()
    assert lines[0] == "Memory at 8,192 tokens, 16 GB Mac profile, bfloat16:"
    assert any(line.startswith("experts") and line.endswith(" GiB") for line in lines)
    assert any(line.startswith("total") for line in lines)
    assert lines[-1].startswith("This machine can give the model 10.7 GiB: Metal's working set")


def test_a_long_wanted_context_is_reported_as_the_limit(tmp_path: Path) -> None:
    folder = config_folder(tmp_path / "20b", GPT_OSS_20B)
    fit = describe_fit(folder, wanted_context=65536, budget=MAC_16GB)
    assert fit.fits and 0 < fit.max_context < 65536
    assert fit.headline.startswith("Fits this Mac only with a short context")
    assert "65,536 would need" in fit.message


def test_120b_does_not_fit_a_16gb_mac_and_says_so(tmp_path: Path) -> None:
    fit = describe_fit(config_folder(tmp_path / "120b", GPT_OSS_120B), budget=MAC_16GB)
    assert not fit.fits and fit.max_context == 0
    assert fit.headline == "This model does not fit in this Mac's memory."
    assert "does not fit, even with the smallest settings" in fit.message


def test_without_metal_the_cpu_plan_uses_float32_and_available_ram(tmp_path: Path) -> None:
    fit = describe_fit(config_folder(tmp_path / "20b", GPT_OSS_20B), budget=LINUX_32GB)
    assert "float32" in fit.details.splitlines()[0]
    assert "24.0 GiB available now (32.0 GiB of RAM, no Metal GPU)" in fit.details


def test_a_folder_without_a_config_is_described_as_no_model(tmp_path: Path) -> None:
    fit = describe_fit(tmp_path, budget=MAC_16GB)
    assert not fit.fits and fit.profile == "" and fit.max_context == 0
    assert fit.headline == "This folder does not hold a gpt-oss model."
    assert "config.json is missing" in fit.message


def test_a_complete_synthetic_checkpoint_passes_the_folder_check(tmp_path: Path) -> None:
    single = write_checkpoint(tmp_path / "single", tiny_config())
    sharded = write_checkpoint(tmp_path / "sharded", tiny_config(), num_shards=3)
    write_synthetic_tokenizer(single)
    write_tiktoken_file(sharded / "o200k_base.tiktoken", synthetic_mergeable_ranks())
    assert check_model_folder(single) is None
    assert check_model_folder(sharded) is None


def test_a_folder_without_a_tokenizer_is_refused_in_one_sentence(tmp_path: Path) -> None:
    folder = write_checkpoint(tmp_path / "m", tiny_config())
    (folder / "tokenizer_config.json").write_text("{}")  # not a tokenizer the engine can read
    problem = check_model_folder(folder)
    assert problem is not None
    assert problem.startswith(f"{folder} has no tokenizer.json:")
    assert problem.count(". ") == 0 and problem.endswith(".")  # one sentence, no path list
    assert "tiktoken" not in problem and "data-gym-cache" not in problem
    (folder / "tokenizer.json").mkdir()  # a folder by that name is not the file
    assert check_model_folder(folder) == problem


def test_a_missing_shard_is_named(tmp_path: Path) -> None:
    folder = write_checkpoint(tmp_path / "m", tiny_config(), num_shards=3)
    (folder / "model-00002-of-00003.safetensors").unlink()
    problem = check_model_folder(folder)
    assert problem is not None and "model-00002-of-00003.safetensors is missing" in problem


def broken_config(folder: Path) -> None:
    config_folder(folder, {})
    (folder / "config.json").write_text("{")


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda d: None, "not a folder"),
        (lambda d: d.mkdir(), "not a model folder"),
        (lambda d: (d / ".oss-desk" / "partial").mkdir(parents=True), "has not finished"),
        (lambda d: config_folder(d, GPT_OSS_20B), "no weights"),
        (lambda d: config_folder(d, {"model_type": "llama"}), "gpt-oss models only"),
        (broken_config, "not valid JSON"),
    ],
    ids=["missing", "empty", "paused-download", "config-only", "other-model", "broken-json"],
)
def test_folder_problems_are_explained(tmp_path: Path, setup: Any, expected: str) -> None:
    folder = tmp_path / "candidate"
    setup(folder)
    problem = check_model_folder(folder)
    assert problem is not None and expected in problem


# -- hostile folders: the check runs on the UI thread, so it must answer, quickly, in words -------


@pytest.mark.timeout(30)  # a FIFO opened for reading without O_NONBLOCK would block for good
@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda c: os.mkfifo(c), "config.json is a named pipe"),
        (lambda c: c.symlink_to("/dev/zero"), "config.json is a device"),
        (lambda c: c.mkdir(), "config.json is a folder"),
        (lambda c: c.write_text("[" * 100_000 + "]" * 100_000), "nests its JSON too deeply"),
    ],
    ids=["fifo", "dev-zero", "folder", "nested"],
)
def test_a_config_that_is_not_a_small_json_file_is_refused_at_once(
    tmp_path: Path, setup: Any, expected: str
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    setup(folder / "config.json")
    t0 = time.perf_counter()
    problem = check_model_folder(folder)
    fit = describe_fit(folder, budget=MAC_16GB)
    assert time.perf_counter() - t0 < 1.0
    assert problem is not None and expected in problem
    assert not fit.fits and expected in fit.message


def test_a_billion_layers_are_refused_before_any_arithmetic(tmp_path: Path) -> None:
    config = dict(GPT_OSS_20B, num_hidden_layers=1e9)
    del config["layer_types"]  # derived per layer: this froze the dialog for a minute
    folder = config_folder(tmp_path / "m", config)
    t0 = time.perf_counter()
    problem = check_model_folder(folder)
    fit = describe_fit(folder, budget=MAC_16GB)
    assert time.perf_counter() - t0 < 1.0
    assert problem is not None and "num_hidden_layers is 1000000000.0" in problem
    assert not fit.fits and fit.max_context == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("make_index", "expected"),
    [
        (lambda i: os.mkfifo(i), "is a named pipe, not an ordinary file"),
        (lambda i: i.symlink_to("/dev/zero"), "is a device, not an ordinary file"),
        (lambda i: i.write_text("[" * 100_000), "nests its JSON too deeply"),
        (lambda i: i.write_text("{"), "is not valid JSON"),
        (lambda i: i.write_text('{"weight_map": []}'), "it has no weight_map"),
        (
            lambda i: i.write_text('{"weight_map": {"a": "../../x.safetensors"}}'),
            "it lists '../../x.safetensors'",
        ),
        (
            lambda i: i.write_text('{"weight_map": {"a": "/dev/zero"}}'),
            "it lists '/dev/zero', which is a path rather than a file name",
        ),
        (
            lambda i: i.write_text('{"weight_map": {"a": ["x"]}}'),
            "it lists a list as a file",
        ),
    ],
    ids=["fifo", "dev-zero", "nested", "broken", "no-map", "escape", "absolute", "list"],
)
def test_a_hostile_index_is_refused_in_words(
    tmp_path: Path, make_index: Any, expected: str
) -> None:
    folder = write_checkpoint(tmp_path / "m", tiny_config(), num_shards=2)
    index = folder / "model.safetensors.index.json"
    index.unlink()
    make_index(index)
    problem = check_model_folder(folder)
    assert problem is not None
    assert "model.safetensors.index.json" in problem and expected in problem
    assert problem.endswith("download the model again.") or problem.endswith(
        "Download the model again."
    )


def test_many_missing_shards_are_summarized(tmp_path: Path) -> None:
    folder = write_checkpoint(tmp_path / "m", tiny_config(), num_shards=5)
    for shard in folder.glob("model-*.safetensors"):
        shard.unlink()
    problem = check_model_folder(folder)
    assert problem is not None and problem.endswith(" and 2 more are missing.")


def test_a_model_that_fits_only_a_few_hundred_tokens_does_not_fit(tmp_path: Path) -> None:
    folder = config_folder(tmp_path / "20b", GPT_OSS_20B)
    fit = describe_fit(folder, budget=MachineBudget(16 * 10**9, 16 * 10**9, int(10.25 * GiB), 0))
    assert 0 < fit.max_context < 4096
    assert not fit.fits and fit.headline == "This model does not fit in this Mac's memory."
    assert "for 4,096 tokens of context" in fit.message
