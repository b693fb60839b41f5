"""A tiny gpt-oss repo served by a loopback Hub, fresh per test; retries fast enough for tests."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.download import DownloadPlan, DownloadProgress, RetryPolicy, download, plan_download
from engine.download.plan import DiskUsage
from engine.testing.fake_hub import FakeHub

SHARD_1 = "model-00001-of-00002.safetensors"
SHARD_2 = "model-00002-of-00002.safetensors"
CHUNK = 16 << 10  # client read size: several chunks per tiny shard, so cancels land mid-file
FAST = RetryPolicy(max_retries=3, wait_s=0.01, stall_timeout_s=0.5, connect_timeout_s=2.0)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "gpt-oss-20b"


class Run:
    """One download call and everything it reported."""

    def __init__(self, hub: FakeHub, dest: Path) -> None:
        self.hub = hub
        self.dest = dest
        self.events: list[DownloadProgress] = []
        self.cancel = threading.Event()

    def plan(self) -> DownloadPlan:
        return plan_download(self.dest, endpoint=self.hub.endpoint, token=False)

    def __call__(
        self,
        retry: RetryPolicy = FAST,
        *,
        token: str | bool = False,
        disk_usage: DiskUsage = shutil.disk_usage,
        on_progress: Callable[[DownloadProgress], None] | None = None,
    ) -> Path:
        """Plans, then downloads; `on_progress` sees each event after it is recorded."""
        self.events.clear()
        self.cancel.clear()

        def record(event: DownloadProgress) -> None:
            self.events.append(event)
            if on_progress is not None:
                on_progress(event)

        plan = self.plan()
        return download(
            plan,
            record,
            self.cancel,
            token=token,
            retry=retry,
            chunk_bytes=CHUNK,
            progress_interval_s=0.0,
            disk_usage=disk_usage,
        )


@pytest.fixture
def run(hub: FakeHub, dest: Path) -> Run:
    return Run(hub, dest)
