"""What people read when a download fails: the first sentence names the cause and the remedy."""

from __future__ import annotations

import errno
from pathlib import Path

from huggingface_hub.errors import OfflineModeIsEnabled

from engine.download.failures import disk_error, hub_error


def test_offline_mode_says_how_to_switch_it_off() -> None:
    error = hub_error(
        OfflineModeIsEnabled("offline"),
        repo_id="openai/gpt-oss-20b",
        revision="main",
        endpoint="https://huggingface.co",
    )
    assert error.kind == "network" and "HF_HUB_OFFLINE" in str(error)


def test_disk_errors_tell_full_from_unwritable(tmp_path: Path) -> None:
    full = disk_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x.part")
    assert full.kind == "disk_full" and str(full).startswith(f"The disk holding {tmp_path} is full")
    denied = disk_error(PermissionError(errno.EACCES, "Permission denied"), tmp_path / "x.part")
    assert denied.kind == "disk" and "Permission denied" in str(denied)
