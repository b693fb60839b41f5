"""Downloading over a real loopback connection: resume, cancel, verify, refuse, report."""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import engine
from engine.download import DownloadCancelled, DownloadError, DownloadProgress, download
from engine.download.layout import partial_files, partial_path
from engine.tokenizer import HarmonyTokenizer
from tests.engine.download.conftest import CHUNK, FAST, SHARD_1, SHARD_2, Run

CUT = 6 * CHUNK  # a whole number of client chunks, so every byte sent before the cut is kept
ROOT = Path(__file__).resolve().parents[3]
KILLED_SCRIPT = """
import sys, threading
from engine.download import download, plan_download
plan = plan_download(sys.argv[1], endpoint=sys.argv[2], token=False)
download(plan, lambda event: None, threading.Event(), token=False, chunk_bytes=int(sys.argv[3]))
"""


class Usage(NamedTuple):
    total: int
    used: int
    free: int


def partial_of(run: Run, name: str) -> Path:
    planned = next(f for f in run.plan().files if f.name == name)
    return partial_path(run.dest, planned.remote)


def test_full_download_loads_as_a_model(run: Run, tiny_repo: Path) -> None:
    out = run()
    assert out == run.dest
    for f in run.plan().files:
        assert (out / f.name).read_bytes() == (tiny_repo / f.name).read_bytes()
    assert not (out / "original").exists() and not (out / "metal").exists()
    assert partial_files(out) == []
    loaded = engine.load_model(out)
    assert loaded.args.num_hidden_layers == 4
    tokenizer = HarmonyTokenizer.from_model_dir(out)
    assert tokenizer.decode(tokenizer.encode("hello world")) == "hello world"
    assert run.events[-1].phase == "done"
    assert run.events[-1].done_bytes == run.events[-1].total_bytes


def test_progress_is_monotonic_with_sensible_speed_and_eta(run: Run) -> None:
    run.hub.bytes_per_second = 2_000_000
    started = time.monotonic()
    run()
    elapsed = time.monotonic() - started
    downloading = [e for e in run.events if e.phase == "downloading"]
    assert len(downloading) > 10
    done = [e.done_bytes for e in run.events]
    assert done == sorted(done) and done[-1] == run.events[0].total_bytes
    for a, b in itertools.pairwise(downloading):
        if a.file == b.file:
            assert a.file_done <= b.file_done <= b.file_total
    late = [e for e in downloading if e.done_bytes > e.total_bytes // 2]
    assert all(1e5 < e.speed_bytes_per_s < 2e7 for e in late)  # the server's 2 MB/s, roughly
    for e in late:
        assert e.eta_s is not None and 0 <= e.eta_s < 2 * elapsed
    assert run.events[-1].eta_s == 0.0


def test_a_cut_connection_resumes_within_the_same_call(run: Run) -> None:
    run.hub.cut(SHARD_1, CUT, times=2)
    run()
    gets = run.hub.file_gets(SHARD_1)
    assert [g.range for g in gets] == [None, f"bytes={CUT}-", f"bytes={2 * CUT}-"]
    assert run.hub.served_bytes(SHARD_1) == run.hub.files[SHARD_1].size
    assert any(e.phase == "retrying" for e in run.events)


def test_a_killed_download_resumes_from_its_partial_file(run: Run) -> None:
    run.hub.bytes_per_second = 200_000  # the shard takes over a second: the kill lands mid-file
    part = partial_of(run, SHARD_1)
    args = [sys.executable, "-c", KILLED_SCRIPT, str(run.dest), run.hub.endpoint, str(CHUNK)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    with subprocess.Popen(args, cwd=ROOT, env=env) as proc:
        try:
            deadline = time.monotonic() + 20
            while not part.exists() or part.stat().st_size < 3 * CHUNK:
                assert proc.poll() is None, "the download ended before it could be killed"
                assert time.monotonic() < deadline, "the download never started"
                time.sleep(0.01)
        finally:
            proc.kill()
    kept = part.stat().st_size
    size = run.hub.files[SHARD_1].size
    assert 3 * CHUNK <= kept < size
    assert run.plan().present_bytes >= kept

    run.hub.reset()
    run()
    [resumed] = run.hub.file_gets(SHARD_1)
    assert resumed.range == f"bytes={kept}-" and resumed.body_bytes == size - kept
    assert (run.dest / SHARD_1).stat().st_size == size


def test_a_stalled_connection_is_dropped_and_resumed(run: Run) -> None:
    run.hub.stall(SHARD_2, CUT, seconds=10)
    started = time.monotonic()
    run()
    assert time.monotonic() - started < 5  # stall_timeout_s is 0.5 in the test policy
    assert [g.range for g in run.hub.file_gets(SHARD_2)] == [None, f"bytes={CUT}-"]


def test_cancel_keeps_the_partial_file_and_the_next_run_resumes(run: Run) -> None:
    run.hub.bytes_per_second = 1_000_000

    def cancel_mid_shard(event: DownloadProgress) -> None:
        if event.file == SHARD_1 and event.file_done >= 3 * CHUNK:
            run.cancel.set()

    with pytest.raises(DownloadCancelled) as info:
        run(on_progress=cancel_mid_shard)
    assert info.value.kind == "cancelled"
    kept = partial_of(run, SHARD_1).stat().st_size
    assert 3 * CHUNK <= kept < run.hub.files[SHARD_1].size
    assert not (run.dest / SHARD_1).exists()

    run.hub.reset()
    run()
    [resumed] = run.hub.file_gets(SHARD_1)
    assert resumed.range == f"bytes={kept}-"
    assert resumed.body_bytes == run.hub.files[SHARD_1].size - kept


def test_a_corrupted_file_is_deleted_alone_and_fetched_again_next_time(run: Run) -> None:
    run.hub.corrupt(SHARD_1)
    with pytest.raises(DownloadError) as info:
        run()
    assert info.value.kind == "checksum" and info.value.files == (SHARD_1,)
    assert SHARD_1 in str(info.value)
    assert not (run.dest / SHARD_1).exists() and partial_files(run.dest) == []
    assert (run.dest / SHARD_2).exists()
    statuses = {f.name: f.status for f in run.plan().files}
    assert statuses.pop(SHARD_1) == "missing"
    assert set(statuses.values()) == {"verified"}

    run.hub.reset()
    run()
    assert {r.file for r in run.hub.requests if r.body_bytes} == {SHARD_1}
    assert run.plan().is_complete


def test_a_complete_folder_needs_nothing(run: Run) -> None:
    run()
    run.hub.reset()
    plan = run.plan()
    assert plan.is_complete and plan.remaining_bytes == 0
    run()
    assert [r for r in run.hub.requests if r.file is not None] == []
    assert [e.phase for e in run.events] == ["done"]


def test_files_copied_in_by_hand_are_verified_not_fetched(run: Run, tiny_repo: Path) -> None:
    run.dest.mkdir()
    for f in run.plan().files:
        shutil.copy(tiny_repo / f.name, run.dest / f.name)
    damaged = bytearray((run.dest / SHARD_2).read_bytes())
    damaged[100] ^= 1
    (run.dest / SHARD_2).write_bytes(damaged)
    assert {f.status for f in run.plan().files} == {"unverified"}

    run()
    assert {r.file for r in run.hub.requests if r.body_bytes} == {SHARD_2}
    assert any(e.phase == "verifying" and e.file == SHARD_1 for e in run.events)
    assert run.plan().is_complete


def test_a_partial_from_another_revision_is_never_appended_to(run: Run) -> None:
    planned = next(f for f in run.plan().files if f.name == SHARD_1)
    stale = partial_path(run.dest, planned.remote).with_name(f"{SHARD_1}.0123456789abcdef.part")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"bytes of an older revision")
    run()
    assert [g.range for g in run.hub.file_gets(SHARD_1)] == [None]
    assert not stale.exists()


def test_gated_files_ask_for_sign_in(run: Run) -> None:
    run.hub.gate()
    with pytest.raises(DownloadError, match="gated") as info:
        run()
    assert info.value.kind == "unauthorized"


def test_the_token_goes_to_the_hub_but_not_to_the_cdn(run: Run) -> None:
    run(token="hf_test_token")
    hub_side = [r for r in run.hub.requests if "/resolve/" in r.path]
    cdn_side = [r for r in run.hub.requests if r.path.startswith("/cdn/")]
    assert hub_side and all(r.authorized for r in hub_side)
    assert cdn_side and not any(r.authorized for r in cdn_side)


def test_the_disk_check_stops_the_download_before_any_byte(run: Run) -> None:
    def usage(path: Path) -> Usage:
        return Usage(10**12, 10**12 - 10**6, 10**6)

    with pytest.raises(DownloadError, match="Not enough free space") as info:
        run(disk_usage=usage)
    assert info.value.kind == "disk_full"
    assert run.hub.served_bytes() == 0


def test_losing_the_hub_after_planning_is_a_network_error(run: Run) -> None:
    plan = run.plan()
    run.hub.close()
    events: list[DownloadProgress] = []
    with pytest.raises(DownloadError, match="Cannot reach") as info:
        download(plan, events.append, run.cancel, retry=FAST, token=False)
    assert info.value.kind == "network"
    assert [e.phase for e in events].count("retrying") == FAST.max_retries


def test_a_full_disk_while_writing_is_reported(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    def open_on_full_disk(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self.suffix == ".part" and mode in ("ab", "wb"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_on_full_disk)
    with pytest.raises(DownloadError, match="is full") as info:
        run()
    assert info.value.kind == "disk_full"
