"""Which Macs can run a model, from the command line: one Mac of each size and N equal Macs,
with the per-rank bytes of engine.memory.planner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import ModelArgs
from engine.memory.macs import MAC_MEMORY_GB, mac_budget, main
from engine.memory.planner import GiB, recommend, recommend_split
from engine.testing.synthetic import GPT_OSS_120B


@pytest.fixture
def config_120b(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(GPT_OSS_120B))
    return tmp_path


def test_the_command_prints_every_mac_size_alone_and_split(
    config_120b: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(config_120b)]) == 0
    out = capsys.readouterr().out
    args = ModelArgs.from_model_dir(config_120b)
    rows = {int(line.split()[0]): line for line in out.splitlines() if " GB  " in line}
    assert sorted(rows) == sorted(MAC_MEMORY_GB)
    for gb, line in rows.items():
        alone = recommend(args, mac_budget(gb), "bfloat16", 8192)
        split = recommend_split(args, mac_budget(gb), "bfloat16", 8192)
        assert (" no " in line.split("GB", 1)[1][:40]) == (not alone.fits), line
        shares = ", ".join(f"{p.total / GiB:.2f}" for p in split.plans)
        assert (f"{split.machines} Mac" in line and shares in line) == bool(split.machines), line
    smallest: dict[int, int] = {}  # machines -> the smallest Mac size with which they suffice
    for gb in sorted(MAC_MEMORY_GB):
        smallest.setdefault(recommend_split(args, mac_budget(gb)).machines, gb)
    smallest.pop(0, None)
    groups = ", ".join(f"{n} x {smallest[n]} GB" for n in sorted(smallest, reverse=True))
    assert f"Smallest groups: {groups}." in out
    assert "8 x 16 GB, 4 x 32 GB, 2 x 48 GB, 1 x 96 GB" in out  # the README's answer


def test_a_folder_without_a_config_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 1
    assert "config.json is missing" in capsys.readouterr().err
