"""Carrying out a DownloadPlan: fetch what is missing, verify every file, report as it goes."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import build_hf_headers

from engine.download.failures import DownloadCancelled, disk_error, hub_error
from engine.download.layout import (
    HashCancelled,
    Manifest,
    RemoteFile,
    file_digest,
    partial_files,
    partial_path,
)
from engine.download.plan import (
    LIBRARY_NAME,
    DiskUsage,
    DownloadPlan,
    PlannedFile,
    check_disk,
    inspect_local,
)
from engine.download.progress import DownloadProgress, ProgressReporter
from engine.download.transfer import DEFAULT_RETRY, RetryPolicy, fetch_file
from engine.errors import DownloadError

DEFAULT_CHUNK_BYTES = 1 << 20

log = logging.getLogger(__name__)


def download(
    plan: DownloadPlan,
    on_progress: Callable[[DownloadProgress], None],
    cancel: threading.Event,
    *,
    token: str | bool | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress_interval_s: float = 0.1,
    disk_usage: DiskUsage = shutil.disk_usage,
) -> Path:
    """Downloads and verifies what `plan` lacks into `plan.dest`; returns the model folder.

    Blocking: run it off the UI thread. Setting `cancel` stops it between chunks with
    DownloadCancelled, keeping partial files so the next call resumes. A file whose hash does
    not match the Hub's is deleted and the remaining files still download; the call then raises
    DownloadError(kind="checksum") naming only the bad files. It never re-fetches a bad file on
    its own, so a broken mirror cannot burn a metered connection in a loop.
    """
    disk = check_disk(plan, disk_usage=disk_usage)
    if not disk.ok:
        raise DownloadError(disk.message, kind="disk_full")
    dest = plan.dest
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise disk_error(e, dest / ".") from e
    manifest = Manifest(dest)
    # The folder may have changed since planning (another run, a user copying files in).
    files = [inspect_local(dest, f.remote, manifest) for f in plan.files]
    reporter = ProgressReporter(
        on_progress,
        total_bytes=plan.total_bytes,
        done_bytes=sum(f.present_bytes for f in files),
        interval_s=progress_interval_s,
    )
    headers = build_hf_headers(token=token, library_name=LIBRARY_NAME)
    job = _Job(plan, manifest, reporter, cancel, headers, retry, chunk_bytes)
    failed = [f.name for f in files if not job.complete(f)]
    if failed:
        raise DownloadError(_mismatch_message(failed), kind="checksum", files=failed)
    _remove_stale_partials(plan)
    reporter.report("done", force=True)
    return dest


@dataclass
class _Job:
    """The state shared by the per-file steps of one `download` call."""

    plan: DownloadPlan
    manifest: Manifest
    reporter: ProgressReporter
    cancel: threading.Event
    headers: dict[str, str]
    retry: RetryPolicy
    chunk_bytes: int

    def complete(self, f: PlannedFile) -> bool:
        """Makes `f` present and verified; False when its download failed verification."""
        final = self.plan.dest / f.name
        if f.status == "verified":
            return True
        if f.status == "unverified":
            if self._verify(final, f.remote):
                return True
            # Complete-looking but wrong (copied in, or damaged on disk): this run replaces it.
            self._delete(final, f.remote)
        part = partial_path(self.plan.dest, f.remote)
        self._fetch(f.remote, part)
        if not self._verify(part, f.remote, mark=False):
            self._delete(part, f.remote)
            return False
        try:
            os.replace(part, final)
        except OSError as e:
            raise disk_error(e, final) from e
        self.manifest.mark_verified(final, f.remote)
        return True

    def _fetch(self, remote: RemoteFile, part: Path) -> None:
        plan, reporter = self.plan, self.reporter
        url = hf_hub_url(plan.repo_id, remote.name, revision=plan.commit, endpoint=plan.endpoint)

        def on_position(file_done: int, delta: int) -> None:
            if delta >= 0:
                reporter.downloaded(remote.name, file_done, remote.size, delta)
            else:
                reporter.discarded(-delta)

        def on_retry(error: BaseException, wait_s: float) -> None:
            log.warning("%s: %s; resuming in %.1f s", remote.name, error, wait_s)
            have = part.stat().st_size if part.exists() else 0
            reporter.report("retrying", remote.name, have, remote.size, force=True)

        try:
            fetch_file(
                remote.name,
                url,
                part,
                remote.size,
                headers=self.headers,
                cancel=self.cancel,
                on_position=on_position,
                on_retry=on_retry,
                policy=self.retry,
                chunk_bytes=self.chunk_bytes,
            )
        except (HfHubHTTPError, httpx2.RequestError, OfflineModeIsEnabled) as e:
            raise hub_error(
                e,
                repo_id=plan.repo_id,
                revision=plan.revision,
                endpoint=plan.endpoint,
                file=remote.name,
            ) from e

    def _verify(self, path: Path, remote: RemoteFile, *, mark: bool = True) -> bool:
        def on_bytes(done: int) -> None:
            self.reporter.report("verifying", remote.name, done, remote.size)

        self.reporter.report("verifying", remote.name, 0, remote.size, force=True)
        try:
            digest = file_digest(path, remote, cancel=self.cancel, on_bytes=on_bytes)
        except HashCancelled:
            raise DownloadCancelled from None
        ok = digest == remote.oid
        if ok and mark:
            self.manifest.mark_verified(path, remote)
        return ok

    def _delete(self, path: Path, remote: RemoteFile) -> None:
        path.unlink(missing_ok=True)
        self.manifest.forget(remote)
        self.reporter.discarded(remote.size)


def _mismatch_message(failed: list[str]) -> str:
    names = ", ".join(failed)
    if len(failed) == 1:
        return (
            f"The downloaded file {names} does not match the Hub's checksum, so it was deleted. "
            "Every other file is kept and verified; try again to download this one anew."
        )
    return (
        f"{len(failed)} downloaded files do not match the Hub's checksum, so they were deleted: "
        f"{names}. Every other file is kept and verified; try again to download these anew."
    )


def _remove_stale_partials(plan: DownloadPlan) -> None:
    """Partials of files no longer in the plan (an older revision) are dropped once all is done."""
    keep = {partial_path(plan.dest, f.remote) for f in plan.files}
    for part in partial_files(plan.dest):
        if part not in keep:
            part.unlink(missing_ok=True)
